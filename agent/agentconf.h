/*
 * agentconf.h - flotilla-agent's configuration: one table (agentconf.c)
 * from which the YAML file, the environment (FLOTILLA_AGENT_*), --set,
 * --help and --sample-config come.  Loaded once at start, then immutable.
 */
#ifndef FL_AGENT_AGENTCONF_H
#define FL_AGENT_AGENTCONF_H

#include <stdint.h>

#include "common/config.h"

/* A static target: one database, or one schema of a database. */
typedef struct {
    char *name;
    char *dsn;
    char *schema;          /* NULL: the whole database */
    char *environment;     /* NULL: the agent's */
    fl_conf_strlist_t labels; /* "key=value" */
} fl_ag_target_conf_t;

/*
 * A discovery rule: every database of the server whose name matches
 * databases, or every schema of database whose name matches schemas.
 */
typedef struct {
    char *databases;       /* glob (fnmatch) over database names */
    char *schemas;         /* glob over schema names of database */
    char *database;        /* with schemas: the database they are in */
    char *name;            /* template: {agent}, {database}, {schema} */
    char *environment;     /* NULL: the agent's */
    fl_conf_strlist_t labels;
} fl_ag_discover_conf_t;

typedef struct {
    char *name;
    char *endpoint;        /* coordinator.endpoint */
    char *server_cert;     /* coordinator.public_cert */
    char *cert;
    fl_conf_strlist_t labels;
    char *environment;
    char *trust;
    char *state_dir;
    char *backup_dir;
    char *log_file;
    char *log_level;
    int64_t max_parallel;
    int64_t max_connections;
    char *server;          /* libpq connection string of the PostgreSQL
                              server, for discovery */
    int64_t discovery_interval_ms;
    int64_t state_interval_ms;
    int64_t lock_wait_ms;
    int64_t lock_timeout_ms;
    int64_t statement_timeout_ms;
    int64_t cancel_timeout_ms;
    int64_t read_timeout_ms;
    int64_t max_bundle_lifetime_ms;
    int64_t hello_timeout_ms;
    int64_t reconnect_min_ms;
    int64_t reconnect_max_ms;
    int64_t max_message;
    int fsync;
    fl_conf_list_t targets;   /* fl_ag_target_conf_t */
    fl_conf_list_t discover;  /* fl_ag_discover_conf_t */
} fl_ag_settings_t;

/* The table (its coordinator section is nested). */
extern const fl_conf_option fl_ag_settings_table[];

#define FL_AG_ENV_PREFIX "FLOTILLA_AGENT_"

/*
 * Checks what the table cannot: names and labels, each discovery rule
 * has exactly one of databases and schemas (schemas with a database),
 * discovery rules need server, max_connections at least 1, the log
 * level, reconnect bounds.  FL_EINVAL naming the key.
 */
int fl_ag_settings_check(const fl_ag_settings_t *s, fl_error_t *err) FL_NODISCARD;

/*
 * Target names: 1 to 255 of [A-Za-z0-9._/:@+-%], as the coordinator
 * accepts them (discovery writes other bytes of a name %XX).  Labels:
 * "key=value", key [A-Za-z0-9._/-]{1,63}, value [A-Za-z0-9._-]{0,63}.
 */
int fl_ag_valid_target_name(const char *name);
int fl_ag_valid_label(const char *label);

#endif
