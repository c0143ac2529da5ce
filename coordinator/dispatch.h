/*
 * dispatch.h - sending one bundle to a set of targets and collecting one
 * outcome per target: the primitive the rollout engine builds on.
 *
 * A dispatch is an action (apply, rollback, plan) of one bundle on the
 * targets an operator's selector chose, frozen when it is created.  Each
 * target gets one command with a random id; the agent records the
 * dispatch's id as the rollout in the target's ledger.  dispatch.c
 * describes the states of a command and what survives a restart.
 * Loop thread only.
 */
#ifndef FL_COORDINATOR_DISPATCH_H
#define FL_COORDINATOR_DISPATCH_H

#include "common/error.h"
#include "common/parse.h"
#include "coordinator/coordinator_internal.h"

/*
 * Loads the dispatches still running (with every command) and the newest
 * dispatch's bundle, from the store, before the loop starts.
 */
int fl_dispatch_load(fl_co_server_t *s, fl_error_t *err) FL_NODISCARD;

/*
 * An operator's "dispatch" request (from routing id rid, operator name):
 * verifies the bundle, selects the targets, writes the decision and, once
 * it is committed, replies with the dispatch's id and queues the
 * commands.  Errors are replied at once.
 */
void fl_dispatch_create(fl_co_server_t *s, const unsigned char *rid,
                        size_t rid_len, const char *operator_name,
                        const fl_wire_control_request_t *req);

/*
 * "dispatch.wait": replies with the results after the operator's cursor,
 * at once when there are some (or the dispatch is done), else when some
 * come or the request's timeout passes.  The cursor ("after") is a
 * position in the dispatch's order of outcomes, which only grows; a
 * retried command has an outcome there for each attempt (the earlier
 * ones shown with its latest, or not while it runs again), so a reader
 * keeps each target's last.  The reply carries "cursor", "outcomes"
 * (where the cursor ends once all are read) and "life" (made at the
 * coordinator's start): a request whose "life" is another's reads from
 * the start, as the order is rebuilt after a restart.
 */
void fl_dispatch_wait(fl_co_server_t *s, const unsigned char *rid,
                      size_t rid_len, const fl_wire_control_request_t *req);

/* A result from agent a. */
void fl_dispatch_result(fl_co_server_t *s, fl_co_agent_t *a,
                        const fl_wire_result_t *r);

/* A step event from agent a: written with the events. */
void fl_dispatch_step_event(fl_co_server_t *s, fl_co_agent_t *a,
                            const fl_wire_step_event_t *e);

/* Agent a asks for a bundle. */
void fl_dispatch_bundle_request(fl_co_server_t *s, fl_co_agent_t *a,
                                const char *bundle_id);

/*
 * After a's hello: every open command of a is reconciled (held by the
 * agent: wait; outcome in the target's ledger: recorded from it; else
 * sent again with the same id) and its queue is pumped.
 */
void fl_dispatch_agent_back(fl_co_server_t *s, fl_co_agent_t *a);

/* A target's ledger became known: reconcile its open commands. */
void fl_dispatch_target_known(fl_co_server_t *s, fl_co_target_t *t);

/* Sends a's queued commands, up to its window. */
void fl_dispatch_pump(fl_co_server_t *s, fl_co_agent_t *a);

/*
 * Queues an event row (kind, and any of the other fields) into this
 * round's events job.
 */
void fl_dispatch_event(fl_co_server_t *s, const char *kind,
                       const char *agent_key, const char *target,
                       const char *dispatch_id, const char *step,
                       const char *status, const char *message);

/*
 * End of a loop round: submits the round's results and events jobs and
 * sends pending acknowledgements.
 */
void fl_dispatch_flush(fl_co_server_t *s);

/*
 * Periodic: answers long-polls whose time is up, retries sends that found
 * a full pipe, forgets dispatches finished longer than the retention.
 */
void fl_dispatch_tick(fl_co_server_t *s);

/* What drift the target shows against the newest dispatch's bundle. */
char *fl_dispatch_drift(const fl_co_server_t *s, const fl_co_target_t *t);

/*
 * The rollout engine's primitives (rollout.c).
 */

/*
 * What a dispatch and a rollout request share (what names it in errors):
 * parses its "selector", verifies its bundle against the coordinator's
 * trust store (*cb: the bundle's entry, added and its row queued when
 * new), and selects the reported, unrevoked targets whose labels match,
 * sorted by name (*targets: a new array of lent targets).  On failure
 * err and *status (the reply's: usage, refused or failed) are set.
 */
int fl_dispatch_prepare(fl_co_server_t *s,
                        const fl_wire_control_request_t *req,
                        const char *what, fl_co_bundle_t **cb,
                        fl_co_target_t ***targets, size_t *n, int *status,
                        fl_error_t *err) FL_NODISCARD;

/*
 * Creates dispatch id with one held command per target (targets[i] in
 * wave waves[i]; commands[i] of the result), and queues the rows of the
 * dispatch and its commands (released = false).  Nothing is ever sent
 * before fl_dispatch_release().  The dispatch belongs to s.
 */
/* from: a baseline's tool (copied), else NULL; to: a baseline's --to
 * (NULL or empty: all; recorded as the dispatch's to_version). */
fl_co_dispatch_t *fl_dispatch_new_held(fl_co_server_t *s, const char *id,
                                       fl_co_bundle_t *cb, const char *action,
                                       const char *from,
                                       const fl_version_t *to,
                                       const char *selector,
                                       const char *operator_name,
                                       fl_co_target_t *const *targets,
                                       const int32_t *waves, size_t n,
                                       const char *rollout_id);

/*
 * Loads dispatch id with its commands from the store (before the loop
 * starts), unless it is in memory; NULL with err when it is missing.
 */
fl_co_dispatch_t *fl_dispatch_load_id(fl_co_server_t *s, const char *id,
                                      fl_error_t *err);

/* Drops a dispatch from memory (a rollout that could not be written). */
void fl_dispatch_forget(fl_co_server_t *s, fl_co_dispatch_t *d);

/*
 * Releases held commands (lent): their state becomes writing, the
 * decision (released = true) is written, and once it is committed each
 * one still writing is queued for its agent.  The pump checks the
 * rollout's halt latch again before each send.
 */
void fl_dispatch_release(fl_co_server_t *s, fl_co_command_t *const *cmds,
                         size_t n);

/*
 * Records an outcome the coordinator decided itself (unreachable, timed
 * out, never dispatched): written like a result, never acknowledged to an
 * agent.  Does nothing when c already has an outcome.
 */
void fl_dispatch_decide(fl_co_server_t *s, fl_co_command_t *c, int status,
                        const char *message, const char *error);

/*
 * Asks c's agent (when online) to cancel the run of c's dispatch on c's
 * target: queued, it never starts; running, its statement is cancelled
 * and its transaction rolls back.  The command's own result says what
 * happened.
 */
void fl_dispatch_cancel(fl_co_server_t *s, fl_co_command_t *c);

/*
 * Makes commands of one dispatch (lent) that have an outcome held again,
 * as retries: each gets attempt + 1, which its apply carries so that the
 * agent runs the pipeline rather than answering from the failed ledger
 * row the earlier run left, and a new id ("-rN" appended to its first
 * 32 characters), so that a late answer to the earlier run is not taken
 * for the retry's.  The outcome is cleared and taken out of the
 * dispatch's counts (its place in the order of outcomes stays, so no
 * dispatch.wait cursor skips one; the retry's outcome comes after);
 * a dispatch that had ended runs again.  The change is queued to the
 * store before the caller can release any of them (the store's jobs
 * commit in the order they are submitted): a restart finds them held.
 */
void fl_dispatch_retry(fl_co_server_t *s, fl_co_command_t *const *cmds,
                       size_t n);

/* Frees every dispatch and bundle (at shutdown). */
void fl_dispatch_free_all(fl_co_server_t *s);

#endif
