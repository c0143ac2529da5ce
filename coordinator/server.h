/*
 * server.h - flotilla-coordinator: start-up, the event loop, reloads and
 * shutdown.
 *
 * Start-up, in this order, each step refusing to go on when it fails:
 * logging; CURVE available; the coordinator's certificate, the agents
 * and operators directories and the trust store; the control database
 * (lock, schema) and the state in it; the ZAP handler with both key
 * sets; the agent and control endpoints bound; the self-test that an
 * unenrolled key is refused on both (the coordinator exits when it is
 * admitted); the store's writer thread.  Then "ready" is logged with the
 * endpoints.
 *
 * The loop polls the two endpoints, the store's finished jobs and a
 * self-pipe of signals, and never blocks on PostgreSQL (store.c) nor on
 * a peer (sends never wait; a full pipe is retried on the next tick).
 * SIGHUP reloads the directories and the trust store: an agent or
 * operator whose certificate left is refused from its next handshake and
 * an agent's session is dropped at once.  SIGTERM and SIGINT stop it:
 * the endpoints close (waiting at most linger), the store writes what is
 * queued, the ZAP handler stops last.
 */
#ifndef FL_COORDINATOR_SERVER_H
#define FL_COORDINATOR_SERVER_H

#include "coordinator/settings.h"

/*
 * Runs the coordinator until a signal stops it; returns the process exit
 * code: 0 after a clean stop, 1 when start-up failed (the reason is
 * logged).
 */
int fl_coordinator_run(const fl_co_settings_t *cfg);

#endif
