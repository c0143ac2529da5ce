/*
 * daemon.h - flotilla-agent: the daemon beside one PostgreSQL server that
 * runs the pipeline on the targets it owns, for a coordinator.
 *
 * It connects a DEALER to the coordinator over CurveZMQ, pinning the
 * coordinator's key, says hello with its targets and their ledger state,
 * keeps heartbeats both ways, reconnects with jittered backoff, and
 * carries out the commands it receives on worker threads (workers.h),
 * within max_parallel targets and max_connections connections.  Every
 * command is journaled before it is acted on and every result before it
 * is sent, and forgotten only when the coordinator acknowledges it
 * (journal.h), so a kill -9 loses nothing and a restart re-sends what was
 * not acknowledged.  daemon.c describes the session's states.
 */
#ifndef FL_AGENT_DAEMON_H
#define FL_AGENT_DAEMON_H

#include "agent/agentconf.h"

/*
 * Runs the agent until SIGTERM or SIGINT; returns the exit code: 0 after
 * a clean stop, 1 when start-up failed (the reason is logged).  SIGHUP
 * reloads the trust store (a bundle refused before may be verified again),
 * runs discovery at once and then reads every target's ledger.  Apart from
 * that, discovery runs every discovery_interval (reading the ledgers of
 * the targets it finds new, and of those unreachable), and every ledger
 * is read every state_interval.
 */
int fl_agent_run(const fl_ag_settings_t *cfg);

#endif
