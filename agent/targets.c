/*
 * targets.c - the agent daemon's targets: static ones from the settings,
 * discovered ones (every database of the server matching a pattern, or
 * every schema of one database), and reading a target's ledger.
 *
 * Discovery and ledger reads run on worker threads, each within one of
 * the max_connections slots, on a connection made for the read and
 * closed after it: an agent beside a server of 500 tenant databases
 * holds no idle connection to any of them.
 */
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agentd_internal.h"
#include "agent/ledger.h"
#include "agent/pg.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/dsn.h"
#include "common/log.h"

#define S_CONNECT_MS 10000

static char **
s_labels(const fl_ag_settings_t *cfg, const fl_conf_strlist_t *own,
         size_t *n)
{
    char **out = fl_calloc(cfg->labels.count + own->count + 1,
                           sizeof(char *));

    *n = 0;
    /* The target's own labels win over the agent's of the same key. */
    for (size_t i = 0; i < cfg->labels.count; i++) {
        size_t klen = strcspn(cfg->labels.items[i], "=");
        int overridden = 0;
        for (size_t k = 0; k < own->count && !overridden; k++)
            overridden = strncmp(own->items[k], cfg->labels.items[i],
                                 klen + 1) == 0;
        if (!overridden)
            out[(*n)++] = fl_strdup(cfg->labels.items[i]);
    }
    for (size_t i = 0; i < own->count; i++)
        out[(*n)++] = fl_strdup(own->items[i]);
    return out;
}

static fl_ag_target_t *
s_add(fl_ag_daemon_t *d, const char *name, const char *dsn,
      const char *schema, const char *database, const char *environment,
      const fl_conf_strlist_t *labels, int rule)
{
    fl_ag_target_t *t = fl_calloc(1, sizeof(*t));

    t->name = fl_strdup(name);
    t->dsn = fl_strdup(dsn);
    t->schema = schema ? fl_strdup(schema) : NULL;
    t->database = fl_strdup(database ? database : "");
    t->environment = fl_strdup(environment ? environment
                                           : d->cfg->environment);
    t->labels = s_labels(d->cfg, labels, &t->nlabels);
    t->kv = fl_calloc(t->nlabels + 1, sizeof(*t->kv));
    for (size_t i = 0; i < t->nlabels; i++) {
        const char *eq = strchr(t->labels[i], '=');
        t->kv[i].key = fl_strndup(t->labels[i], (size_t)(eq - t->labels[i]));
        t->kv[i].value = fl_strdup(eq + 1);
    }
    t->rule = rule;
    t->present = 1;
    fl_map_puts(d->targets, t->name, t);
    return t;
}

int
fl_ag_targets_init(fl_ag_daemon_t *d, fl_error_t *err)
{
    for (size_t i = 0; i < d->cfg->targets.count; i++) {
        const fl_ag_target_conf_t *c =
            (const fl_ag_target_conf_t *)d->cfg->targets.items + i;
        char *db = NULL;

        if (fl_map_gets(d->targets, c->name) != NULL)
            return FL_ERR(err, FL_EINVAL, "targets: \"%s\" is named twice",
                          c->name);
        if (fl_dsn_check(c->dsn, err) != 0) {
            fl_error_prefix(err, "target \"%s\": ", c->name);
            return FL_EINVAL;
        }
        db = fl_dsn_describe(c->dsn);
        s_add(d, c->name, c->dsn, c->schema, db, c->environment, &c->labels,
              -1);
        free(db);
    }
    return 0;
}

void
fl_ag_target_free(fl_ag_target_t *t)
{
    if (t == NULL)
        return;
    free(t->name);
    free(t->dsn);
    free(t->schema);
    free(t->database);
    free(t->environment);
    for (size_t i = 0; i < t->nlabels; i++) {
        free(t->labels[i]);
        free(t->kv[i].key);
        free(t->kv[i].value);
    }
    free(t->labels);
    free(t->kv);
    for (size_t i = 0; i < t->nrows; i++) {
        free(t->rows[i].status);
        free(t->rows[i].rollout);
    }
    free(t->rows);
    free(t->error);
    free(t);
}

/*
 * A database's or schema's name in a target name: PostgreSQL allows any
 * character in one, a target name [A-Za-z0-9._/:@+-] and "%" (agentconf.c),
 * so every other byte (and "%") is written %XX.  Before, a tenant whose
 * name had one (a space, a letter outside ASCII) was skipped by
 * discovery, and never migrated.
 */
static int
s_put_encoded(fl_buf_t *b, const char *v)
{
    static const char hex[] = "0123456789ABCDEF";
    int rc = 0;

    for (const unsigned char *c = (const unsigned char *)v; *c && rc == 0;
         c++) {
        if (*c < 0x80 && *c != '%' &&
            strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                   "0123456789._/:@+-", *c) != NULL) {
            rc = fl_buf_append(b, (const char *)c, 1);
        } else {
            char x[3] = {'%', hex[*c >> 4], hex[*c & 15]};
            rc = fl_buf_append(b, x, 3);
        }
    }
    return rc;
}

/* {agent}, {database}, {schema} in tmpl; a new string. */
static char *
s_name(const char *tmpl, const char *agent, const char *database,
       const char *schema)
{
    fl_buf_t b = FL_BUF_INIT(4096);

    for (const char *p = tmpl; *p;) {
        const char *v = NULL;
        size_t skip = 0;

        if (strncmp(p, "{agent}", 7) == 0)
            v = agent, skip = 7;
        else if (strncmp(p, "{database}", 10) == 0)
            v = database, skip = 10;
        else if (strncmp(p, "{schema}", 8) == 0)
            v = schema ? schema : "", skip = 8;
        if (v != NULL) {
            if ((v == agent ? fl_buf_puts(&b, v) : s_put_encoded(&b, v)) !=
                0)
                break;
            p += skip;
        } else {
            if (fl_buf_append(&b, p, 1) != 0)
                break;
            p++;
        }
    }
    return fl_buf_detach(&b);
}

static void
s_found(fl_ag_job_t *job, const fl_ag_discover_conf_t *rule,
        const char *agent, const char *dsn, const char *database,
        const char *schema)
{
    const char *tmpl = rule->name ? rule->name
                       : schema   ? "{agent}/{database}/{schema}"
                                  : "{agent}/{database}";
    fl_ag_found_t *f = NULL;

    job->found = fl_reallocarray(job->found, job->nfound + 1,
                                 sizeof(*job->found));
    f = &job->found[job->nfound++];
    f->name = s_name(tmpl, agent, database, schema);
    f->dsn = fl_strdup(dsn);
    f->schema = schema ? fl_strdup(schema) : NULL;
    f->database = fl_strdup(database);
}

void
fl_ag_discover(fl_ag_daemon_t *d, fl_ag_job_t *job)
{
    const fl_ag_discover_conf_t *rule =
        (const fl_ag_discover_conf_t *)d->cfg->discover.items + job->rule;
    fl_pg_connect_opts_t co = FL_PG_CONNECT_OPTS_INIT;
    fl_pg_t *pg = NULL;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char *dsn = NULL;

    co.timeout_ms = S_CONNECT_MS;
    dsn = rule->schemas ? fl_dsn_with_dbname(d->cfg->server, rule->database)
                        : fl_strdup(d->cfg->server);
    if (dsn == NULL) {
        job->rc = FL_ERR(&job->err, FL_EINVAL, "the key \"server\" is not a "
                         "valid connection string");
        return;
    }
    fl_workers_conn_acquire(d->workers);
    if ((job->rc = fl_pg_open_opts(&pg, dsn, "flotilla-agent", &co,
                                   &job->err)) != 0)
        goto cleanup;
    fl_ag_job_set_pg(job, pg);
    if (rule->databases != NULL)
        job->rc = fl_pg_query(pg, &r, "SELECT datname FROM"
                              " pg_catalog.pg_database WHERE datallowconn AND"
                              " NOT datistemplate ORDER BY 1", 0, NULL,
                              &job->err);
    else
        /* Flotilla's own schemas (the ledger, backups) are no tenants;
         * a tenant's whose name begins like them is one. */
        job->rc = fl_pg_query(pg, &r, "SELECT nspname FROM"
                              " pg_catalog.pg_namespace WHERE nspname"
                              " OPERATOR(pg_catalog.!~) '^pg_' AND nspname"
                              " OPERATOR(pg_catalog.<>) ALL (ARRAY["
                              "'information_schema', 'flotilla',"
                              " 'flotilla_backup']::pg_catalog.name[])"
                              " ORDER BY 1", 0, NULL, &job->err);
    if (job->rc != 0)
        goto cleanup;
    for (size_t i = 0; i < r.nrows; i++) {
        const char *v = fl_pg_value(&r, i, 0);

        if (rule->databases != NULL) {
            char *one = NULL;
            if (fnmatch(rule->databases, v, 0) != 0)
                continue;
            one = fl_dsn_with_dbname(d->cfg->server, v);
            s_found(job, rule, d->cfg->name, one, v, NULL);
            free(one);
        } else if (fnmatch(rule->schemas, v, 0) == 0) {
            s_found(job, rule, d->cfg->name, dsn, rule->database, v);
        }
    }
cleanup:
    fl_pg_result_release(&r);
    fl_ag_job_set_pg(job, NULL);
    fl_pg_close(&pg);
    fl_workers_conn_release(d->workers);
    free(dsn);
}

int
fl_ag_targets_merge(fl_ag_daemon_t *d, fl_ag_job_t *job)
{
    const fl_ag_discover_conf_t *rule =
        (const fl_ag_discover_conf_t *)d->cfg->discover.items + job->rule;
    fl_ag_target_t *t = NULL, **gone = NULL;
    size_t pos = 0, ngone = 0;
    int changed = 0;

    if (job->rc != 0) {
        /* What was found before stays: a failed run removes nothing. */
        fl_log_warning("agent", "discovery rule %zu could not run: %s",
                       job->rule, job->err.message);
        return 0;
    }
    while ((t = fl_map_next(d->targets, &pos)) != NULL)
        if (t->rule == (int)job->rule)
            t->present = 0;
    for (size_t i = 0; i < job->nfound; i++) {
        const fl_ag_found_t *f = &job->found[i];
        fl_log_field fields[1] = {{"target", f->name}};

        t = fl_map_gets(d->targets, f->name);
        if (!fl_ag_valid_target_name(f->name)) {
            fl_log_emit(FL_LOG_WARNING, "agent", fields, 1, "discovered "
                        "\"%s\", which is not a valid target name; skipped",
                        f->name);
        } else if (t != NULL && t->rule != (int)job->rule) {
            fl_log_emit(FL_LOG_WARNING, "agent", fields, 1, "discovery rule "
                        "%zu found \"%s\", a name another rule or a static "
                        "target has; skipped", job->rule, f->name);
        } else if (t == NULL) {
            s_add(d, f->name, f->dsn, f->schema, f->database,
                  rule->environment, &rule->labels, (int)job->rule);
            fl_log_emit(FL_LOG_INFO, "agent", fields, 1, "discovered target "
                        "\"%s\"", f->name);
            changed = 1;
        } else {
            t->present = 1;
        }
    }
    pos = 0;
    while ((t = fl_map_next(d->targets, &pos)) != NULL)
        if (t->rule == (int)job->rule && !t->present && t->running == NULL &&
            t->wait_head == NULL && !t->gathering) {
            gone = fl_reallocarray(gone, ngone + 1, sizeof(*gone));
            gone[ngone++] = t;
        }
    for (size_t i = 0; i < ngone; i++) {
        fl_log_info("agent", "target \"%s\" is gone (discovery no longer "
                    "finds it)", gone[i]->name);
        fl_map_removes(d->targets, gone[i]->name);
        fl_ag_target_free(gone[i]);
        changed = 1;
    }
    free(gone);
    return changed;
}

/* Hex to 32 bytes; zeros when the text is not 64 hex digits. */
static void
s_unhex(unsigned char out[32], const char *hex)
{
    memset(out, 0, 32);
    if (hex == NULL || strlen(hex) != 64)
        return;
    for (int i = 0; i < 32; i++) {
        unsigned int x = 0;
        if (sscanf(hex + 2 * i, "%2x", &x) != 1) {
            memset(out, 0, 32);
            return;
        }
        out[i] = (unsigned char)x;
    }
}

/*
 * The ledger of a target: the database's rows, or (schema-per-tenant)
 * the rows of that schema (ledger version 4 keys every row by target).
 */
static int
s_load_ledger(fl_pg_t *pg, const char *schema, fl_ledger_t *l,
              fl_error_t *err)
{
    return fl_ledger_load(pg, schema ? schema : "", l, err);
}

void
fl_ag_state_set(fl_wire_target_t *state, const fl_ledger_t *l,
                const fl_error_t *err)
{
    state->known = 0;
    state->applied = NULL;
    state->napplied = 0;
    state->error = NULL;
    if (l == NULL) {
        state->error =
            fl_strdup(err != NULL && err->message ? err->message : "failed");
        return;
    }
    state->known = 1;
    if (l->count > 0)
        state->applied = fl_calloc(l->count, sizeof(*state->applied));
    for (size_t i = 0; i < l->count; i++) {
        fl_wire_applied_t *a = &state->applied[i];
        a->version = l->items[i].version;
        /*
         * The up checksum where the row has one (ledger v7): a down fixed
         * since is not drift; the coordinator accepts either
         * (fl_migration_is_applied_as).
         */
        s_unhex(a->checksum, l->items[i].up_checksum ? l->items[i].up_checksum
                                                     : l->items[i].checksum);
        a->status = fl_strdup(l->items[i].status);
        a->rollout = l->items[i].rollout_id && l->items[i].rollout_id[0]
                         ? fl_strdup(l->items[i].rollout_id)
                         : NULL;
    }
    state->napplied = l->count;
}

void
fl_ag_read_state(fl_ag_job_t *job, fl_wire_target_t *state)
{
    fl_pg_connect_opts_t co = FL_PG_CONNECT_OPTS_INIT;
    fl_pg_t *pg = NULL;
    fl_ledger_t l = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;

    co.timeout_ms = S_CONNECT_MS;
    if (fl_pg_open_opts(&pg, job->dsn, "flotilla-agent", &co, &err) == 0)
        fl_ag_job_set_pg(job, pg);
    if (pg == NULL || s_load_ledger(pg, job->schema, &l, &err) != 0)
        fl_ag_state_set(state, NULL, &err);
    else
        fl_ag_state_set(state, &l, NULL);
    fl_ledger_release(&l);
    fl_ag_job_set_pg(job, NULL);
    fl_pg_close(&pg);
    fl_error_clear(&err);
}

void
fl_ag_state_release(fl_wire_target_t *state)
{
    for (size_t i = 0; i < state->napplied; i++) {
        free(state->applied[i].status);
        free(state->applied[i].rollout);
    }
    fl_free(&state->applied);
    state->napplied = 0;
    fl_free(&state->error);
    state->known = 0;
}

void
fl_ag_target_take_state(fl_ag_target_t *t, fl_wire_target_t *state)
{
    for (size_t i = 0; i < t->nrows; i++) {
        free(t->rows[i].status);
        free(t->rows[i].rollout);
    }
    free(t->rows);
    free(t->error);
    t->known = state->known;
    t->rows = state->applied;
    t->nrows = state->napplied;
    t->error = state->error;
    state->applied = NULL;
    state->napplied = 0;
    state->error = NULL;
    state->known = 0;
}

void
fl_ag_target_wire(const fl_ag_target_t *t, fl_wire_target_t *out)
{
    memset(out, 0, sizeof(*out));
    out->target = t->name;
    out->kind = t->schema ? "schema" : "database";
    out->environment = t->environment;
    out->labels = t->kv;
    out->nlabels = t->nlabels;
    out->known = t->known;
    out->applied = t->rows;
    out->napplied = t->nrows;
    out->error = t->error;
}
