/*
 * agentconf.c - flotilla-agent's option table (see agentconf.h).
 */
#include "agent/agentconf.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

#define S_OPT(st, name, type, field, def, min, max, req, desc)              \
    {name, type, offsetof(st, field), def, min, max, 0, req, desc, NULL, 0}

static const fl_conf_option s_coordinator[] = {
    S_OPT(fl_ag_settings_t, "endpoint", FL_CONF_STRING, endpoint, NULL, 0, 0,
          1, "the coordinator's agent endpoint, tcp://HOST:PORT"),
    S_OPT(fl_ag_settings_t, "public_cert", FL_CONF_STRING, server_cert, NULL,
          0, 0, 1, "the coordinator's public certificate, pinned: a server "
                   "holding another key is refused"),
    {NULL, 0, 0, NULL, 0, 0, 0, 0, NULL, NULL, 0},
};

static const fl_conf_option s_target[] = {
    S_OPT(fl_ag_target_conf_t, "name", FL_CONF_STRING, name, NULL, 0, 0, 1,
          "the target's name, unique in the fleet"),
    S_OPT(fl_ag_target_conf_t, "dsn", FL_CONF_STRING, dsn, NULL, 0, 0, 1,
          "libpq connection string of its database"),
    S_OPT(fl_ag_target_conf_t, "schema", FL_CONF_STRING, schema, NULL, 0, 0, 0,
          "a schema of that database: the target is that tenant's schema"),
    S_OPT(fl_ag_target_conf_t, "environment", FL_CONF_STRING, environment,
          NULL, 0, 0, 0, "its environment (default: the agent's)"),
    S_OPT(fl_ag_target_conf_t, "labels", FL_CONF_STRLIST, labels, NULL, 0, 0,
          0, "labels, key=value"),
    {NULL, 0, 0, NULL, 0, 0, 0, 0, NULL, NULL, 0},
};

static const fl_conf_option s_discover[] = {
    S_OPT(fl_ag_discover_conf_t, "databases", FL_CONF_STRING, databases, NULL,
          0, 0, 0, "every database of the server whose name matches this "
                   "pattern (tenant_*) is a target"),
    S_OPT(fl_ag_discover_conf_t, "schemas", FL_CONF_STRING, schemas, NULL, 0,
          0, 0, "every schema of database whose name matches this pattern "
                "is a target"),
    S_OPT(fl_ag_discover_conf_t, "database", FL_CONF_STRING, database, NULL,
          0, 0, 0, "with schemas: the database whose schemas are tenants"),
    S_OPT(fl_ag_discover_conf_t, "name", FL_CONF_STRING, name, NULL, 0, 0, 0,
          "target name template: {agent}, {database}, {schema} (default "
          "{agent}/{database}, or {agent}/{database}/{schema})"),
    S_OPT(fl_ag_discover_conf_t, "environment", FL_CONF_STRING, environment,
          NULL, 0, 0, 0, "their environment (default: the agent's)"),
    S_OPT(fl_ag_discover_conf_t, "labels", FL_CONF_STRLIST, labels, NULL, 0,
          0, 0, "labels of every target found, key=value"),
    {NULL, 0, 0, NULL, 0, 0, 0, 0, NULL, NULL, 0},
};

#define S_A(name, type, field, def, min, max, req, desc)                    \
    S_OPT(fl_ag_settings_t, name, type, field, def, min, max, req, desc)

const fl_conf_option fl_ag_settings_table[] = {
    S_A("name", FL_CONF_STRING, name, NULL, 0, 0, 1,
        "this agent's name, shown by the coordinator and recorded in the "
        "ledgers"),
    {"coordinator", FL_CONF_SECTION, 0, NULL, 0, 0, 0, 1,
     "the coordinator this agent serves", s_coordinator, 0},
    S_A("cert", FL_CONF_STRING, cert, NULL, 0, 0, 1,
        "this agent's secret certificate (PREFIX.cert_secret); its public "
        "half is enrolled in the coordinator's agents directory"),
    S_A("labels", FL_CONF_STRLIST, labels, NULL, 0, 0, 0,
        "labels of the agent, given to each of its targets, key=value"),
    S_A("environment", FL_CONF_STRING, environment, NULL, 0, 0, 1,
        "the environment of its targets, checked against each bundle's "
        "signed scope"),
    S_A("trust", FL_CONF_STRING, trust, NULL, 0, 0, 1,
        "trusted release keys (.pub file or directory): a bundle signed by "
        "any other key is refused, whoever sent it"),
    S_A("state_dir", FL_CONF_STRING, state_dir, NULL, 0, 0, 1,
        "where the agent keeps its journal of commands and results and its "
        "bundle cache"),
    S_A("backup_dir", FL_CONF_STRING, backup_dir, NULL, 0, 0, 0,
        "where backups too large for a table go (default STATE_DIR/backups)"),
    S_A("log_file", FL_CONF_STRING, log_file, NULL, 0, 0, 0,
        "a JSON-lines file receiving every log event"),
    S_A("log_level", FL_CONF_STRING, log_level, "info", 0, 0, 0,
        "error, warning, notice, info or debug"),
    S_A("max_parallel", FL_CONF_INT, max_parallel, "4", 1, 1024, 0,
        "targets worked on at once"),
    S_A("max_connections", FL_CONF_INT, max_connections, "8", 1, 10000, 0,
        "connections to the PostgreSQL server at once (made per target on "
        "demand, never kept idle)"),
    S_A("server", FL_CONF_STRING, server, NULL, 0, 0, 0,
        "libpq connection string of the PostgreSQL server, for discovery "
        "(its dbname is replaced per database)"),
    S_A("discovery_interval", FL_CONF_DURATION, discovery_interval_ms, "1min",
        10, (int64_t)86400000, 0,
        "how often discovery runs again, so new tenants appear"),
    S_A("state_interval", FL_CONF_DURATION, state_interval_ms, "1min", 10,
        (int64_t)86400000, 0,
        "how often every target's ledger is read again (one connection "
        "each); a new or unreachable target is read at every discovery"),
    S_A("lock_wait", FL_CONF_DURATION, lock_wait_ms, "30s", 0, 3600000, 0,
        "how long to wait for another run on the same target"),
    S_A("lock_timeout", FL_CONF_DURATION, lock_timeout_ms, "2s", 1, 3600000,
        0, "lock_timeout per statement unless the migration sets one"),
    S_A("statement_timeout", FL_CONF_DURATION, statement_timeout_ms, "0ms", 0,
        (int64_t)86400000, 0,
        "statement_timeout unless the migration sets one (0: none)"),
    S_A("cancel_timeout", FL_CONF_DURATION, cancel_timeout_ms, "30s", 100,
        3600000, 0,
        "how long a cancelled command's statement may take to end before "
        "its connection is closed (a server that takes no cancel request)"),
    S_A("read_timeout", FL_CONF_DURATION, read_timeout_ms, "1min", 100,
        3600000, 0,
        "how long a ledger read or a discovery may wait for its server "
        "before its connection is closed (a server that does not answer)"),
    S_A("max_bundle_lifetime", FL_CONF_DURATION, max_bundle_lifetime_ms, "90d",
        1000, (int64_t)3650 * 86400000, 0,
        "refuse a bundle valid for longer"),
    S_A("hello_timeout", FL_CONF_DURATION, hello_timeout_ms, "10s", 50,
        600000, 0, "how long to wait for the coordinator's welcome"),
    S_A("reconnect_min", FL_CONF_DURATION, reconnect_min_ms, "200ms", 10,
        600000, 0, "first delay before reconnecting; it doubles, with "
                   "jitter"),
    S_A("reconnect_max", FL_CONF_DURATION, reconnect_max_ms, "30s", 10,
        3600000, 0, "longest delay before reconnecting"),
    S_A("max_message", FL_CONF_SIZE, max_message, "80MiB", 65536,
        (int64_t)1 << 30, 0,
        "largest message the coordinator may send (a bundle)"),
    S_A("fsync", FL_CONF_BOOL, fsync, "true", 0, 0, 0,
        "fsync the journal before acting and answering"),
    {"targets", FL_CONF_LIST, offsetof(fl_ag_settings_t, targets), NULL, 0, 0,
     0, 0, "static targets", s_target, sizeof(fl_ag_target_conf_t)},
    {"discover", FL_CONF_LIST, offsetof(fl_ag_settings_t, discover), NULL, 0,
     0, 0, 0, "discovery rules, run at start and every discovery_interval",
     s_discover, sizeof(fl_ag_discover_conf_t)},
    {NULL, 0, 0, NULL, 0, 0, 0, 0, NULL, NULL, 0},
};

int
fl_ag_valid_target_name(const char *s)
{
    size_t n = strlen(s);

    return n > 0 && n <= 255 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._/:@+-%") == n;
}

int
fl_ag_valid_label(const char *s)
{
    const char *eq = strchr(s, '=');
    size_t k = eq ? (size_t)(eq - s) : 0;

    return eq != NULL && k > 0 && k <= 63 && strlen(eq + 1) <= 63 &&
           strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                     "0123456789._/-") == k &&
           strspn(eq + 1, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP"
                          "QRSTUVWXYZ0123456789._-") == strlen(eq + 1);
}

static int
s_labels(const fl_conf_strlist_t *l, const char *where, fl_error_t *err)
{
    for (size_t i = 0; i < l->count; i++)
        if (!fl_ag_valid_label(l->items[i])) {
            FL_ERR(err, FL_EINVAL, "%s: label \"%s\" is not key=value", where,
                   l->items[i]);
            fl_error_set_hint(err, "Keys are [A-Za-z0-9._/-]{1,63}, values "
                                   "[A-Za-z0-9._-]{0,63}.");
            return FL_EINVAL;
        }
    return 0;
}

/*
 * A discovery rule's name template: {agent}, {database} and {schema}
 * between characters a target name holds, with the placeholder that
 * tells its tenants apart.  Without it every tenant the rule found had the
 * first one's name, and the others were never targets, without a word.
 */
static int
s_template(const fl_ag_discover_conf_t *d, const char *agent,
           const char *where, fl_error_t *err)
{
    static const char *const names[] = {"{agent}", "{database}", "{schema}"};
    const char *need = d->schemas != NULL ? "{schema}" : "{database}";
    int found = 0;

    for (const char *p = d->name; *p;) {
        size_t k = 0, n = 0;

        for (k = 0; k < 3; k++)
            if (strncmp(p, names[k], strlen(names[k])) == 0)
                break;
        if (k < 3) {
            found |= strcmp(names[k], need) == 0;
            if (k == 0 && !fl_ag_valid_target_name(agent))
                return FL_ERR(err, FL_EINVAL, "%s: name \"%s\" has {agent}, "
                              "and the agent's name \"%s\" has a character "
                              "no target name holds", where, d->name, agent);
            p += strlen(names[k]);
            continue;
        }
        if (*p == '{') {
            n = strcspn(p, "}");
            return FL_ERR(err, FL_EINVAL, "%s: name \"%s\": \"%.*s\" is "
                          "no placeholder (they are {agent}, {database} and "
                          "{schema})", where, d->name,
                          (int)(p[n] == '}' ? n + 1 : n), p);
        }
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789._/:@+-", *p) == NULL)
            return FL_ERR(err, FL_EINVAL, "%s: name \"%s\" has \"%c\", "
                          "which no target name holds ([A-Za-z0-9._/:@+-])",
                          where, d->name, *p);
        p++;
    }
    if (!found) {
        FL_ERR(err, FL_EINVAL, "%s: name \"%s\" has no %s: every %s the rule "
               "finds would have the same name", where, d->name, need,
               d->schemas != NULL ? "schema" : "database");
        fl_error_set_hint(err, "Put %s in the template, as in the default "
                          "\"%s\".", need,
                          d->schemas != NULL ? "{agent}/{database}/{schema}"
                                             : "{agent}/{database}");
        return FL_EINVAL;
    }
    return 0;
}

int
fl_ag_settings_check(const fl_ag_settings_t *s, fl_error_t *err)
{
    fl_log_level level;

    if (fl_log_level_parse(&level, s->log_level, err) != 0) {
        fl_error_prefix(err, "key \"log_level\": ");
        return FL_EINVAL;
    }
    if (s->reconnect_max_ms < s->reconnect_min_ms)
        return FL_ERR(err, FL_EINVAL, "key \"reconnect_max\" is below "
                      "\"reconnect_min\"");
    if (s_labels(&s->labels, "labels", err) != 0)
        return FL_EINVAL;
    for (size_t i = 0; i < s->targets.count; i++) {
        const fl_ag_target_conf_t *t =
            (const fl_ag_target_conf_t *)s->targets.items + i;
        if (!fl_ag_valid_target_name(t->name))
            return FL_ERR(err, FL_EINVAL, "targets[%zu]: name \"%s\" is not "
                          "a valid target name ([A-Za-z0-9._/:@+-%%], at "
                          "most 255)", i, t->name);
        if (s_labels(&t->labels, t->name, err) != 0)
            return FL_EINVAL;
    }
    for (size_t i = 0; i < s->discover.count; i++) {
        const fl_ag_discover_conf_t *d =
            (const fl_ag_discover_conf_t *)s->discover.items + i;
        char where[32];

        snprintf(where, sizeof(where), "discover[%zu]", i);
        if ((d->databases == NULL) == (d->schemas == NULL))
            return FL_ERR(err, FL_EINVAL, "%s: give exactly one of "
                          "\"databases\" and \"schemas\"", where);
        if (d->schemas != NULL && d->database == NULL)
            return FL_ERR(err, FL_EINVAL, "%s: \"schemas\" needs "
                          "\"database\", the database they are in", where);
        if (s->server == NULL)
            return FL_ERR(err, FL_EINVAL, "%s: discovery needs the key "
                          "\"server\", the connection string of the "
                          "PostgreSQL server", where);
        if (d->name != NULL && s_template(d, s->name, where, err) != 0)
            return FL_EINVAL;
        if (s_labels(&d->labels, where, err) != 0)
            return FL_EINVAL;
    }
    return 0;
}
