/*
 * settings.h - the coordinator's configuration: one table (settings.c)
 * from which the YAML file, the environment (FLOTILLA_COORDINATOR_*),
 * --set, --help and --sample-config all come.  Loaded once at start and
 * then immutable; SIGHUP reloads only the directories and trust store
 * the paths below name, never the settings themselves.
 */
#ifndef FL_COORDINATOR_SETTINGS_H
#define FL_COORDINATOR_SETTINGS_H

#include <stdint.h>

#include "common/config.h"

typedef struct {
    char *name;
    char *agent_endpoint;
    char *control_endpoint;
    char *state_dsn;
    char *state_dsn_file;
    char *cert;
    char *agents_dir;
    char *operators_dir;
    char *trust;
    int64_t heartbeat_ms;
    int64_t heartbeat_timeout_ms;
    int64_t restart_grace_ms;
    char *metrics_listen;
    char *log_file;
    char *log_level;
    int64_t max_message;
    int64_t control_max_message;
    int64_t hwm;
    int64_t linger_ms;
    int64_t handshake_ms;
    int64_t agent_window;
    int64_t store_batch_rows;
    int64_t max_bundle_lifetime_ms;
    int64_t selftest_timeout_ms;
    int64_t dispatch_retention_ms;
} fl_co_settings_t;

/* The option table, ended by a NULL name. */
extern const fl_conf_option fl_co_settings_table[];

#define FL_CO_ENV_PREFIX "FLOTILLA_COORDINATOR_"

/*
 * Checks what the table cannot: the heartbeat timeout longer than the
 * interval, exactly one of state_dsn and state_dsn_file, a known log
 * level.  FL_EINVAL naming the key.
 */
int fl_co_settings_check(const fl_co_settings_t *s,
                         fl_error_t *err) FL_NODISCARD;

#endif
