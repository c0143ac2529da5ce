/*
 * settings.c - the coordinator's option table (see settings.h).
 */
#include "coordinator/settings.h"

#include <stddef.h>
#include <string.h>

#include "common/log.h"

#define S_OPT(name, type, field, def, min, max, req, desc)                  \
    {name, type, offsetof(fl_co_settings_t, field), def, min, max, 0, req,  \
     desc, NULL, 0}

const fl_conf_option fl_co_settings_table[] = {
    S_OPT("name", FL_CONF_STRING, name, "coordinator", 0, 0, 0,
          "this coordinator's name, sent to agents in the welcome"),
    S_OPT("agent_endpoint", FL_CONF_STRING, agent_endpoint, NULL, 0, 0, 1,
          "where agents connect (ROUTER, CURVE): tcp://ADDRESS:PORT"),
    S_OPT("control_endpoint", FL_CONF_STRING, control_endpoint, NULL, 0, 0, 1,
          "where operators connect (ROUTER, CURVE): tcp://ADDRESS:PORT"),
    S_OPT("state_dsn", FL_CONF_STRING, state_dsn, NULL, 0, 0, 0,
          "libpq connection string of the control database (no password: "
          "use PGPASSFILE or state_dsn_file)"),
    S_OPT("state_dsn_file", FL_CONF_STRING, state_dsn_file, NULL, 0, 0, 0,
          "a file of mode 0600 holding the control database's connection "
          "string"),
    S_OPT("cert", FL_CONF_STRING, cert, NULL, 0, 0, 1,
          "this coordinator's secret certificate (PREFIX.cert_secret)"),
    S_OPT("agents_dir", FL_CONF_STRING, agents_dir, NULL, 0, 0, 1,
          "enrolled agents: one public certificate (.cert) each"),
    S_OPT("operators_dir", FL_CONF_STRING, operators_dir, NULL, 0, 0, 1,
          "enrolled operators: one public certificate (.cert) each"),
    S_OPT("trust", FL_CONF_STRING, trust, NULL, 0, 0, 1,
          "trusted release keys (.pub file or directory) a bundle must be "
          "signed by to be dispatched"),
    S_OPT("heartbeat", FL_CONF_DURATION, heartbeat_ms, "1s", 10, 600000, 0,
          "how often heartbeats go both ways"),
    S_OPT("heartbeat_timeout", FL_CONF_DURATION, heartbeat_timeout_ms, "10s",
          50, 3600000, 0,
          "silence after which an agent is offline and its targets "
          "unreachable"),
    S_OPT("restart_grace", FL_CONF_DURATION, restart_grace_ms, "60s", 50,
          3600000, 0,
          "after a start, how long an agent not heard from yet is waited "
          "for before a rollout counts its targets unreachable (at least "
          "heartbeat_timeout); longer than the agents' reconnect_max"),
    S_OPT("metrics_listen", FL_CONF_STRING, metrics_listen, NULL, 0, 0, 0,
          "address for the metrics endpoint (reserved: not served yet)"),
    S_OPT("log_file", FL_CONF_STRING, log_file, NULL, 0, 0, 0,
          "a JSON-lines file receiving every log event"),
    S_OPT("log_level", FL_CONF_STRING, log_level, "info", 0, 0, 0,
          "error, warning, notice, info or debug"),
    S_OPT("max_message", FL_CONF_SIZE, max_message, "16MiB", 4096,
          (int64_t)1 << 30,
          0, "largest message an agent may send; larger disconnects it"),
    S_OPT("control_max_message", FL_CONF_SIZE, control_max_message, "80MiB",
          4096, (int64_t)1 << 30, 0,
          "largest message an operator may send (a bundle to dispatch)"),
    S_OPT("hwm", FL_CONF_INT, hwm, "10000", 100, 10000000, 0,
          "high-water mark of messages queued per peer, each way"),
    S_OPT("linger", FL_CONF_DURATION, linger_ms, "1s", 0, 60000, 0,
          "how long stopping waits to deliver queued messages"),
    S_OPT("handshake_timeout", FL_CONF_DURATION, handshake_ms, "5s", 100,
          600000, 0, "deadline of a peer's CURVE handshake"),
    S_OPT("agent_window", FL_CONF_INT, agent_window, "1000", 1, 1000000, 0,
          "commands sent to one agent before its results come back"),
    S_OPT("store_batch_rows", FL_CONF_INT, store_batch_rows, "20000", 1,
          10000000, 0, "most rows written to the control database in one "
                       "transaction"),
    S_OPT("max_bundle_lifetime", FL_CONF_DURATION, max_bundle_lifetime_ms,
          "90d", 1000, (int64_t)3650 * 86400000, 0,
          "refuse to dispatch a bundle valid for longer"),
    S_OPT("selftest_timeout", FL_CONF_DURATION, selftest_timeout_ms, "5s",
          100, 600000, 0,
          "how long the start-up check that an unknown key is refused may "
          "take"),
    S_OPT("dispatch_retention", FL_CONF_DURATION, dispatch_retention_ms, "1h",
          0, (int64_t)30 * 86400000, 0,
          "how long a finished dispatch stays in memory for "
          "\"flotilla dispatch --attach\""),
    {NULL, 0, 0, NULL, 0, 0, 0, 0, NULL, NULL, 0},
};

int
fl_co_settings_check(const fl_co_settings_t *s, fl_error_t *err)
{
    fl_log_level level;

    if (s->heartbeat_timeout_ms <= s->heartbeat_ms) {
        FL_ERR(err, FL_EINVAL, "key \"heartbeat_timeout\" must be longer "
               "than \"heartbeat\"");
        fl_error_set_hint(err, "Allow a few missed heartbeats: a timeout of "
                               "three to ten intervals.");
        return FL_EINVAL;
    }
    if ((s->state_dsn == NULL) == (s->state_dsn_file == NULL))
        return FL_ERR(err, FL_EINVAL, "give exactly one of the keys "
                      "\"state_dsn\" and \"state_dsn_file\"");
    if (fl_log_level_parse(&level, s->log_level, err) != 0) {
        fl_error_prefix(err, "key \"log_level\": ");
        return FL_EINVAL;
    }
    return 0;
}
