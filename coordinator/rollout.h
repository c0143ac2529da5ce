/*
 * rollout.h - staged rollouts: one bundle, a target set frozen at start,
 * a policy (waves, order, caps, failure budgets, bake, gates, timeouts,
 * what to do on failure); halt, resume, fleet-wide rollback and the
 * fleet-wide plan (a rollout of kind "plan": one wave of rehearsals that
 * change nothing).  rollout.c documents the state machine.
 *
 * Built on dispatch.h: a rollout's forward dispatch (its id is the
 * rollout's, so the targets' ledgers record the rollout) holds one command
 * per frozen target, held until the engine releases it; a rollback is a
 * dispatch of its own over exactly the touched targets.  Loop thread
 * only.
 */
#ifndef FL_COORDINATOR_ROLLOUT_H
#define FL_COORDINATOR_ROLLOUT_H

#include "common/error.h"
#include "coordinator/coordinator_internal.h"

/*
 * Loads every unfinished rollout and the newest finished ones, with their
 * dispatches, after fl_dispatch_load() and before the loop starts.
 */
int fl_rollout_load(fl_co_server_t *s, fl_error_t *err) FL_NODISCARD;

/*
 * An operator's "rollout.*" request (start, status, list, halt, resume,
 * rollback); every reply, error or not, goes to rid.
 */
void fl_rollout_request(fl_co_server_t *s, const unsigned char *rid,
                        size_t rid_len, const char *operator_name,
                        const fl_wire_control_request_t *req);

/* Periodic: bake times, manual gates, target timeouts, long-polls. */
void fl_rollout_tick(fl_co_server_t *s);

/* A command of a rollout's dispatch has its outcome written. */
void fl_rollout_command_done(fl_co_server_t *s, fl_co_command_t *c);

/* A released command was taken back (halt latch, failed write). */
void fl_rollout_command_held(fl_co_server_t *s, fl_co_command_t *c);

/*
 * The halt latch and the rollout's state, checked before every send: 0
 * when c (a command of a rollout's dispatch) must not be sent now.
 */
int fl_rollout_may_send(const fl_co_command_t *c);

/*
 * 1 when c's rollout is halted with --abort: a run of it an agent says it
 * holds (at its hello, back after being offline at the halt) is
 * cancelled.
 */
int fl_rollout_aborted(const fl_co_command_t *c);

/*
 * The rollout a command of a rollout's rollback undoes (its id: the agent
 * rolls back what that rollout applied), or NULL for any other command.
 */
const char *fl_rollout_undoes(const fl_co_command_t *c);

/* The static name of a pipeline step ("validate", ...), or "other". */
const char *fl_rollout_step_name(const char *step);

/*
 * A plan's verdict from its report (JSON text, may be NULL): "would
 * apply", "already applied", "would fail" or "drift"; *why gets the
 * reason (new string, or NULL).
 */
const char *fl_rollout_plan_verdict(const char *report, char **why);

/* Frees every rollout (at shutdown, before the dispatches). */
void fl_rollout_free_all(fl_co_server_t *s);

#endif
