/*
 * registry.h - the agents the coordinator knows, their sessions, and the
 * targets they report (coordinator_internal.h holds the structs).
 *
 * An agent is its CURVE public key: a message is taken as an agent's when
 * its ZAP User-Id is that key, whatever routing id or name it carries.  A
 * target belongs to the first agent that reports it; another agent that
 * reports the same name is refused that target (and it is logged), so a
 * misconfigured or hostile agent cannot take over another's databases.
 * Loop thread only.
 */
#ifndef FL_COORDINATOR_REGISTRY_H
#define FL_COORDINATOR_REGISTRY_H

#include "common/error.h"
#include "coordinator/coordinator_internal.h"

/* Loads agents and targets from the store (before the loop starts). */
int fl_registry_load(fl_co_server_t *s, fl_error_t *err) FL_NODISCARD;

/* The agent of key, created (state unknown) when create is set. */
fl_co_agent_t *fl_registry_agent(fl_co_server_t *s, const char *key,
                                 int create);

/*
 * A hello from agent a on routing id rid: opens its session (welcome),
 * takes its labels and targets (with their ledger state), writes them,
 * and lets the dispatcher reconcile the agent's open commands.
 */
void fl_registry_hello(fl_co_server_t *s, fl_co_agent_t *a,
                       const unsigned char *rid, size_t rid_len,
                       const fl_wire_hello_t *h);

/*
 * A hello message m of len bytes from agent a: a hello in one part is
 * fl_registry_hello()'s at once; the parts of one in several are kept,
 * in order, until the last, then handled as one hello.  A part out of
 * order drops those kept (logged; the agent's next hello starts again).
 * Returns 1 when it kept m (the caller must not release it), 0 when the
 * caller releases it.
 */
int fl_registry_hello_part(fl_co_server_t *s, fl_co_agent_t *a,
                           const unsigned char *rid, size_t rid_len,
                           fl_wire_msg_t *m, size_t len);

/* Frees the hello parts a holds. */
void fl_registry_hello_parts_drop(fl_co_agent_t *a);

/* An unsolicited ledger reply: one target's state changed. */
void fl_registry_target_state(fl_co_server_t *s, fl_co_agent_t *a,
                              const fl_wire_target_t *t);

/* Ends a's session (why is logged); its open commands wait for a hello. */
void fl_registry_offline(fl_co_server_t *s, fl_co_agent_t *a,
                         const char *why);

/*
 * After the agents directory was reloaded: every agent whose key left it
 * is revoked (its session dropped, told so, its frames ignored from now).
 */
void fl_registry_revoke_unenrolled(fl_co_server_t *s);

/* Heartbeats to online agents; agents silent too long go offline. */
void fl_registry_tick(fl_co_server_t *s);

/*
 * Reachability of a target: "reachable", "unreachable" (agent not
 * online), "error" (the agent cannot read its ledger), "unknown" (not
 * read yet), "gone" (its agent no longer reports it).
 */
const char *fl_registry_reachability(const fl_co_target_t *t);

/* The highest version the target's ledger records applied, or the empty
 * version. */
fl_version_t fl_registry_applied_version(const fl_co_target_t *t);

/* The ledger row of version, or NULL. */
const fl_co_row_t *fl_registry_row(const fl_co_target_t *t,
                                   const fl_version_t *version);

const char *fl_registry_state_name(fl_co_agent_state st);

#endif
