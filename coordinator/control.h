/*
 * control.h - the operators' control API: requests on the control
 * endpoint (CURVE, operator certificates only), answered from memory.
 *
 * Commands (a control_request's "command", with string arguments):
 *   agents                     every agent: name, key, state, version,
 *                              labels, targets, last seen
 *   targets [selector]         every target: agent, labels, kind,
 *                              environment, reachability, applied
 *                              version, drift against the newest
 *                              dispatch's bundle
 *   dispatch selector action to_version, bundle bytes in data
 *                              (dispatch.h)
 *   dispatch.wait id after timeout_ms   (dispatch.h)
 *   status                     counters: agents, targets, store writes,
 *                              messages, handshakes refused
 * The reply's status is a cli.h exit code; its payload JSON.
 */
#ifndef FL_COORDINATOR_CONTROL_H
#define FL_COORDINATOR_CONTROL_H

#include "coordinator/coordinator_internal.h"

/*
 * Handles one message received on the control endpoint.  Messages whose
 * User-Id is not an enrolled operator's key are dropped and logged.
 */
void fl_control_message(fl_co_server_t *s, const fl_link_msg_t *m);

#endif
