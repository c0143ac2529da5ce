/*
 * runner.c - runs one statement of a migration on the target: in the
 * migration's settings, with lock-timeout retries (jittered backoff) and
 * a report of the sessions that block it, and errors placed at
 * file:line:col.  Also the migration's own validate and verify sections
 * and the parse of its up section.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/pipeline_internal.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/json.h"

/*
 * Maps a 1-based character position inside stmt to file:line:col, using
 * the statement's own line and column in the migration file.
 */
static char *
s_position(const fl_migration_t *m, const fl_stmt_t *st, int pos)
{
    int line = st->line, col = st->column;
    int chars = 0;

    for (const char *s = st->sql; *s && pos > 0; s++) {
        if (((unsigned char)*s & 0xC0) == 0x80)
            continue; /* UTF-8 continuation byte: same character */
        if (++chars >= pos)
            break;
        if (*s == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
    }
    return fl_asprintf("%s:%d:%d", m ? m->file : "?", line, col);
}

fl__fault
fl__classify(fl_pipeline_t *p, const fl_error_t *err)
{
    const char *s = err->sqlstate;

    if (err->code == FL_ECANCELLED)
        return FL__FAULT_CANCEL;
    if (strcmp(s, "55P03") == 0)
        return FL__FAULT_LOCK;
    if (strcmp(s, "57014") == 0)
        return fl__cancelled(p) ? FL__FAULT_CANCEL : FL__FAULT_TIMEOUT;
    if (strncmp(s, "08", 2) == 0 || strcmp(s, "57P01") == 0 ||
        strcmp(s, "57P02") == 0 || strcmp(s, "57P03") == 0 ||
        (err->code == FL_EDB && !fl_pg_is_open(p->pg)))
        return FL__FAULT_CONNECTION;
    if (strncmp(s, "53", 2) == 0 || strncmp(s, "58", 2) == 0 ||
        strncmp(s, "XX", 2) == 0)
        return FL__FAULT_SERVER;
    return FL__FAULT_OTHER;
}

int
fl__fault_code(fl_pipeline_t *p, fl_error_t *err, const char *doing)
{
    switch (fl__classify(p, err)) {
    case FL__FAULT_CANCEL:
        err->code = FL_ECANCELLED;
        break;
    case FL__FAULT_CONNECTION:
        if (err->code != FL_EDB || !strstr(err->message, "lost the connection"))
            fl_error_prefix(err, "lost the connection to %s while %s: ",
                            p->described, doing);
        err->code = FL_EDB;
        break;
    case FL__FAULT_LOCK:
        if (err->code != FL_ETIMEOUT)
            err->code = FL_EDB;
        break;
    case FL__FAULT_TIMEOUT:
    case FL__FAULT_SERVER:
        err->code = FL_EDB;
        break;
    case FL__FAULT_OTHER:
        break;
    }
    return err->code;
}

/*
 * The sessions holding locks on the tables of statement index (or of
 * every statement, index FL__ALL_STATEMENTS), for a report.
 */
char *
fl__blockers(fl_pipeline_t *p, const fl_stmt_list_t *stmts, int index)
{
    fl_buf_t b = FL_BUF_INIT(4096), arr = FL_BUF_INIT(0);
    size_t n = 0, cap = 0;
    const char **schemas = NULL, **names = NULL;
    uint32_t *oids = NULL;
    char *kinds = NULL;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    fl_error_t err = FL_ERROR_INIT;

    for (size_t s = 0; s < stmts->count; s++)
        cap += stmts->items[s].ntables;
    schemas = fl_calloc(cap + 1, sizeof(char *));
    names = fl_calloc(cap + 1, sizeof(char *));
    for (size_t s = 0; s < stmts->count; s++) {
        const fl_stmt_t *st = &stmts->items[s];
        if (index >= 0 && (int)s != index)
            continue;
        for (size_t i = 0; i < st->ntables; i++) {
            schemas[n] = st->tables[i].schema;
            names[n++] = st->tables[i].name;
        }
    }
    oids = fl_calloc(n + 1, sizeof(uint32_t));
    kinds = fl_calloc(n + 1, 1);
    if (n && fl__resolve(p, schemas, names, n, oids, kinds, &err) == 0) {
        const char *params[1];
        fl_buf_adds(&arr, "{");
        for (size_t i = 0; i < n; i++)
            fl_buf_addf(&arr, "%s%u", i ? "," : "", oids[i]);
        fl_buf_adds(&arr, "}");
        params[0] = fl_buf_str(&arr);
        if (fl_pg_query(p->pg, &r,
                "SELECT DISTINCT a.pid, COALESCE(a.application_name, ''),"
                " COALESCE(a.state, ''),"
                " COALESCE(pg_catalog.to_char(pg_catalog.now() OPERATOR("
                "pg_catalog.-) a.xact_start, 'HH24:MI:SS'), ''),"
                /* The statement's first word alone: its text is another
                 * role's, and may hold secrets (a key it writes). */
                " pg_catalog.upper(COALESCE(pg_catalog.substring(a.query,"
                " '^[[:space:]]*([A-Za-z]+)'), '')),"
                " pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.'"
                " OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)"
                " FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a"
                " ON a.pid OPERATOR(pg_catalog.=) l.pid"
                " JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=)"
                " l.relation JOIN pg_catalog.pg_namespace n ON n.oid"
                " OPERATOR(pg_catalog.=) c.relnamespace"
                " WHERE l.granted AND l.pid OPERATOR(pg_catalog.<>)"
                " pg_catalog.pg_backend_pid() AND l.locktype = 'relation'"
                " AND l.relation OPERATOR(pg_catalog.=) ANY"
                " ($1::pg_catalog.oid[])", 1, params, &err) == 0) {
            /* At most 4 KiB of them: the rest are counted. */
            for (size_t j = 0; j < r.nrows; j++)
                if (fl_buf_printf(&b, "%sPID %s (application \"%s\", %s, "
                                  "transaction age %s) on %s: statement %s",
                                  b.len ? "; " : "", fl_pg_value(&r, j, 0),
                                  fl_pg_value(&r, j, 1), fl_pg_value(&r, j, 2),
                                  fl_pg_value(&r, j, 3), fl_pg_value(&r, j, 5),
                                  *fl_pg_value(&r, j, 4)
                                      ? fl_pg_value(&r, j, 4) : "unknown")
                    != 0) {
                    b.max = 0;
                    fl_buf_addf(&b, "; and %zu more", r.nrows - j);
                    break;
                }
        }
    }
    fl_pg_result_release(&r);
    fl_error_clear(&err);
    fl_buf_release(&arr);
    free(schemas);
    free(names);
    free(oids);
    free(kinds);
    if (b.len == 0)
        fl_buf_adds(&b, "no session holds a lock on the statement's "
                              "tables any more");
    return fl_buf_detach(&b);
}

int
fl__lock_conflict(const fl_error_t *err)
{
    return strcmp(err->sqlstate, "55P03") == 0 ||
           strcmp(err->sqlstate, "40P01") == 0;
}

int
fl__lock_retry(fl_pipeline_t *p, const fl_migration_t *m,
               const fl_stmt_list_t *stmts, int index, int attempt,
               int retries, int64_t t0, int rolled_back, fl__stats_t *stats,
               fl_error_t *err)
{
    char *who = fl__blockers(p, stmts, index);
    const char *where = stats->error_position ? stats->error_position
                                              : m->file;

    if (attempt < retries && !fl__cancelled(p)) {
        int64_t wait = fl__pipeline_backoff(p, p->opts.retry_base_ms, attempt);

        fl__event(p, FL_STEP_EXECUTE, FL_STEP_RETRY, m, fl__now_ms() - t0,
                  NULL, "%s at %s (attempt %d of %d); %sretrying in %lld ms;"
                  " blocked by %s",
                  strcmp(err->sqlstate, "40P01") == 0 ? "deadlock"
                                                      : "lock timeout",
                  where, attempt + 1, retries + 1,
                  rolled_back ? "rolled back, " : "", (long long)wait, who);
        free(who);
        fl_error_clear(err);
        stats->lock_wait_ms += fl__now_ms() - t0 + wait;
        stats->retries++;
        fl__sleep(p, wait);
        return 1;
    }
    fl_error_set_detail(err, "Gave up after %d attempt%s; blocked by %s.",
                        attempt + 1, attempt ? "s" : "", who);
    fl_error_set_hint(err, "Retry when the blocking sessions are done, or "
                           "see \"flotilla locks\".");
    err->code = FL_ETIMEOUT;
    free(who);
    return 0;
}

/*
 * Runs statement index of stmts in the migration's settings, retrying a
 * lock timeout up to `retries` times outside a transaction.  Inside one
 * the caller passes 0 and retries its whole transaction instead, so that
 * it holds no lock and is not idle in a transaction while it waits (see
 * s_run_unit in apply.c and the rollback's downs).
 */
int
fl__run(fl_pipeline_t *p, const fl_migration_t *m, const fl_stmt_list_t *stmts,
        int index, int in_tx, int retries, fl__stats_t *stats, fl_error_t *err)
{
    const fl_stmt_t *st = &stmts->items[index];

    if (in_tx)
        retries = 0;
    for (int attempt = 0;; attempt++) {
        int64_t t0 = fl__now_ms();
        int rc = 0;

        if (fl__cancelled(p))
            return FL_ERR(err, FL_ECANCELLED, "migration %s cancelled before "
                          "statement %d", m->file, index + 1);
        if ((rc = fl__session_enter(p->pg, &p->session, err)) != 0)
            return rc;
        if ((rc = fl_pg_run(p->pg, st->sql, err)) == 0)
            return 0;
        {
            /* Where it failed, read before anything else runs. */
            char *where = s_position(m, st, fl_pg_last_position(p->pg));
            free(stats->error_position);
            stats->error_position = where;
        }
        if (!in_tx) {
            fl_error_t ignore = FL_ERROR_INIT;
            FL_IGNORE(fl__session_leave(p->pg, &p->session, &ignore));
            fl_error_clear(&ignore);
        }
        if (strcmp(err->sqlstate, "55P03") == 0 &&
            fl__lock_retry(p, m, stmts, index, attempt, retries, t0, 0, stats,
                           err))
            continue;
        /* Final failure: say where, and why. */
        {
            int lock = err->code == FL_ETIMEOUT;
            int cancel = strcmp(err->sqlstate, "57014") == 0;

            if (lock && retries > 0) {
                /* fl__lock_retry said why it gives up. */
            } else if (cancel && fl__cancelled(p)) {
                err->code = FL_ECANCELLED;
            } else if (cancel && strstr(err->message, "statement timeout")) {
                /* Else pg.c said who cancelled it (another session; before,
                 * this hint replaced that with a timeout nothing set). */
                fl_error_set_hint(err, "The statement ran into "
                                       "statement_timeout; it is not retried. "
                                       "Raise statement_timeout in the "
                                       "migration's options if it is expected.");
            }
            fl_error_prefix(err, "%s: ", stats->error_position);
            return err->code;
        }
    }
}

/*
 * Deallocates the statements a migration's up or down (stmts) PREPAREd:
 * prepared statements are not transactional, so one outlived the
 * rollback of a run, and running it again (after a lock timeout, or with
 * a backup of what a hidden statement destroyed) failed at its PREPARE
 * ("already exists"), as did the next migration's PREPARE of the same
 * name.  Before a run again (again), always: a tenant's trigger that a
 * plain statement fires may have prepared; when the migration ends, only
 * when it may have (a PREPARE, or a statement whose effects are opaque),
 * which saves a round trip a migration.
 * Flotilla's own are prepared through the protocol, never by SQL
 * (pg_prepared_statements.from_sql), and stay.  Best effort: a failure
 * here shows at the PREPARE that needed it.
 */
void
fl__forget_prepared(fl_pipeline_t *p, const fl_stmt_list_t *stmts, int again)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    fl_error_t ignore = FL_ERROR_INIT;
    int may = again;

    for (size_t i = 0; i < stmts->count && !may; i++)
        may = stmts->items[i].opaque ||
              (stmts->items[i].kind &&
               strcmp(stmts->items[i].kind, "PREPARE") == 0);
    if (!may || fl_pg_query(p->pg, &r, "SELECT pg_catalog.quote_ident(name)"
                            " FROM pg_catalog.pg_prepared_statements"
                            " WHERE from_sql", 0, NULL, &ignore) != 0) {
        fl_error_clear(&ignore);
        return;
    }
    if (r.nrows > 0) {
        fl_buf_t sql = FL_BUF_INIT(0);

        /* One round trip; each name quoted by the server. */
        for (size_t i = 0; i < r.nrows; i++)
            fl_buf_addf(&sql, "DEALLOCATE %s;", fl_pg_value(&r, i, 0));
        FL_IGNORE(fl_pg_exec(p->pg, fl_buf_str(&sql), &ignore));
        fl_buf_release(&sql);
    }
    fl_error_clear(&ignore);
    fl_pg_result_release(&r);
}

/*
 * Runs the migration's validate statements: each must return exactly one
 * row whose first column is true.
 */
int
fl__custom_validate(fl_pipeline_t *p, const fl_migration_t *m, json_t *report,
                    fl_error_t *err)
{
    fl_stmt_list_t vs = {NULL, 0};
    int rc = 0;

    if (m->validate == NULL)
        return 0;
    rc = fl_facts_analyze(&vs, m->validate, m->validate_line - 1,
                          fl_pg_server_version(p->pg), err);
    if (rc == 0)
        rc = fl__session_enter(p->pg, &p->session, err);
    for (size_t i = 0; rc == 0 && i < vs.count; i++) {
        fl_pg_result_t r = FL_PG_RESULT_INIT;
        const fl_stmt_t *st = &vs.items[i];
        const char *v = NULL;
        char *where = fl_asprintf("%s:%d:%d", m->file, st->line, st->column);
        size_t rows = 0;

        /* Its first row only: one that returns millions is counted. */
        rc = fl_pg_run_head(p->pg, st->sql, &r, 1, &rows, err);
        if (rc != 0) {
            fl_error_prefix(err, "validate statement at %s: ", where);
        } else {
            v = rows == 1 && r.ncols >= 1 ? fl_pg_value(&r, 0, 0) : NULL;
            if (report)
                json_array_append_new(report, fl_json_pack("{s:s, s:s, s:b, s:s?}",
                    "statement", st->sql, "at", where,
                    "ok", v && strcmp(v, "t") == 0, "result", v));
            if (v == NULL || strcmp(v, "t") != 0) {
                char n[32];

                snprintf(n, sizeof(n), "%zu rows", rows);
                rc = FL_ERR(err, FL_EINVAL, "validate statement at %s did not "
                            "hold", where);
                fl_error_set_detail(err, "The statement %s returned %s%s%s.",
                                    st->sql, rows != 1 ? "" : "\"",
                                    rows != 1 ? (rows ? n : "no rows")
                                              : (v ? v : "NULL"),
                                    rows != 1 ? "" : "\"");
                fl_error_set_hint(err, "Each validate statement must return "
                                       "one row whose first column is true.");
            }
        }
        fl_pg_result_release(&r);
        free(where);
    }
    fl_stmt_list_release(&vs);
    return rc;
}

const char *
fl__timeouts_sql(fl_pipeline_t *p, const fl_migration_t *m, int local,
                 char *buf, size_t size)
{
    char lt[24], st[24];

    fl__timeout_values(p, m, lt, st);
    snprintf(buf, size, "SET %s lock_timeout = %s; SET %s "
             "statement_timeout = %s", local ? "LOCAL" : "SESSION", lt,
             local ? "LOCAL" : "SESSION", st);
    return buf;
}

void
fl__timeout_values(fl_pipeline_t *p, const fl_migration_t *m, char lt[24],
                   char st[24])
{
    int64_t l = m->lock_timeout_ms >= 0 ? m->lock_timeout_ms
                                        : p->opts.lock_timeout_ms;
    int64_t t = m->statement_timeout_ms >= 0 ? m->statement_timeout_ms
                                             : p->opts.statement_timeout_ms;

    snprintf(lt, 24, "%lld", (long long)l);
    snprintf(st, 24, "%lld", (long long)t);
    /* Flotilla's own while m runs: what leaving its statements restores. */
    snprintf(p->session.own_lt, sizeof(p->session.own_lt), "%s", lt);
    snprintf(p->session.own_st, sizeof(p->session.own_st), "%s", st);
}

int
fl__set_timeouts(fl_pipeline_t *p, const fl_migration_t *m, int local,
                 fl_error_t *err)
{
    return fl__begin_with_timeouts(p, m, NULL, local, err);
}

int
fl__begin_with_timeouts(fl_pipeline_t *p, const fl_migration_t *m,
                        const char *before, int local, fl_error_t *err)
{
    char buf[160];

    return fl_pg_execf(p->pg, err, "%s%s", before ? before : "",
                       fl__timeouts_sql(p, m, local, buf, sizeof(buf)));
}

int
fl__own_timeouts(fl_pipeline_t *p, fl_error_t *err)
{
    long long lt = (long long)(p->opts.lock_timeout_ms > 0
                                   ? p->opts.lock_timeout_ms
                                   : FL__DEFAULT_LOCK_TIMEOUT_MS);

    /* The same again after each COMMIT (fl__session_repin). */
    snprintf(p->session.run_lt, sizeof(p->session.run_lt), "%lld", lt);
    return fl_pg_execf(p->pg, err, "SET SESSION lock_timeout = %lld; RESET "
                       "statement_timeout", lt);
}

/*
 * Statements no allow= lets into a migration, and why: those that end or
 * start a transaction (each migration runs in a transaction of its own,
 * a no-transaction migration each statement that can, committed with its
 * ledger row: a COMMIT inside it would commit part of it under a ledger
 * that says otherwise; savepoints stay inside the transaction and are
 * allowed), and those that remove what flotilla keeps on the connection
 * between its queries (the statements it prepared, the temporary tables
 * of its schema snapshots).
 */
static const struct {
    const char *kind;
    int session; /* 0: transaction control; 1: removes session state */
} s_banned[] = {
    {"BEGIN", 0}, {"START TRANSACTION", 0}, {"COMMIT", 0}, {"ROLLBACK", 0},
    {"PREPARE TRANSACTION", 0}, {"COMMIT PREPARED", 0},
    {"ROLLBACK PREPARED", 0},
    {"DEALLOCATE", 1}, {"DISCARD ALL", 1}, {"DISCARD TEMP", 1},
};

static const char *const s_banned_detail[2] = {
    "Flotilla runs each migration in a transaction of its own with its "
    "ledger row; a statement that ends or starts a transaction would commit "
    "part of it while the ledger says otherwise.  No allow= option changes "
    "this.",
    "Flotilla keeps prepared statements and temporary tables on the "
    "migration's connection between its statements; this one removes them, "
    "and the migration would fail at flotilla's next query.  No allow= "
    "option changes this.",
};

static const char *const s_banned_hint[2] = {
    "Remove it.  For statements that cannot run in a transaction, write "
    "\"-- flotilla:options no-transaction\".",
    "Remove it: the connection ends with the run.",
};

/* The index in s_banned of st's kind, or -1. */
static int
s_banned_kind(const fl_stmt_t *st)
{
    for (size_t i = 0; st->kind && i < sizeof(s_banned) / sizeof(s_banned[0]);
         i++)
        if (strcmp(st->kind, s_banned[i].kind) == 0)
            return (int)i;
    return -1;
}

int
fl__parse_section(fl_pipeline_t *p, const fl_migration_t *m, const char *text,
                  int line, const char *what, fl_stmt_list_t *out,
                  fl_error_t *err)
{
    int rc = fl_facts_analyze(out, text, line > 0 ? line - 1 : 0,
                              fl_pg_server_version(p->pg), err);

    if (rc != 0) {
        fl_error_prefix(err, "%s: %s section: ", m->file, what);
        return rc;
    }
    for (size_t i = 0; i < out->count && rc == 0; i++) {
        const fl_stmt_t *st = &out->items[i];
        if (st->too_deep) {
            rc = FL_ERR(err, FL_EINVAL, "%s:%d: the %s section: %s",
                        m->file, st->error_line, what, st->error);
            fl_error_set_hint(err, "PostgreSQL refuses much less deep "
                                   "statements at its default "
                                   "max_stack_depth (2MB).");
        } else if (st->parse_error) {
            rc = FL_ERR(err, FL_EINVAL, "%s:%d:%d: syntax error in the %s "
                        "section: %s", m->file,
                        st->error_line ? st->error_line : st->line,
                        st->error_line ? st->error_column : st->column, what,
                        st->error ? st->error : "");
            fl_error_set_hint(err, "Every section is parsed with the "
                                   "PostgreSQL %d grammar when the migration "
                                   "is applied; a missing \";\" joins two "
                                   "statements.",
                              fl_pg_server_version(p->pg) / 10000);
        } else if (st->copy_client) {
            int in = st->copy_client == FL_COPY_FROM_CLIENT;

            rc = FL_ERR(err, FL_EINVAL, "%s:%d:%d: COPY ... %s is not allowed "
                        "in a migration (the %s section)", m->file, st->line,
                        st->column, in ? "FROM STDIN" : "TO STDOUT", what);
            fl_error_set_detail(err, in
                ? "COPY FROM STDIN reads its rows from the client (psql sends "
                  "the lines that follow the statement, up to \\.); flotilla "
                  "sends SQL only, so the COPY would fail with no data.  No "
                  "allow= option changes this."
                : "COPY TO STDOUT sends its rows to the client, which flotilla "
                  "does not read.  No allow= option changes this.");
            fl_error_set_hint(err, "%s", in
                ? "Write the rows as INSERT ... VALUES, or COPY them FROM a "
                  "file on the database server (COPY ... FROM '/path')."
                : "Remove it, or COPY TO a file on the database server.");
        } else if (s_banned_kind(st) >= 0) {
            int why = s_banned[s_banned_kind(st)].session;

            rc = FL_ERR(err, FL_EINVAL, "%s:%d:%d: %s is not allowed in a "
                        "migration (the %s section)", m->file, st->line,
                        st->column, st->kind, what);
            fl_error_set_detail(err, "%s", s_banned_detail[why]);
            fl_error_set_hint(err, "%s", s_banned_hint[why]);
        }
    }
    if (rc != 0)
        fl_stmt_list_release(out);
    return rc;
}

/* Parses up into statements, refusing text the PG 15 grammar rejects. */
int
fl__statements(fl_pipeline_t *p, const fl_migration_t *m, fl_stmt_list_t *out,
               fl_error_t *err)
{
    int rc = fl__parse_section(p, m, m->up, m->up_line, "up", out, err);

    /*
     * Another tool's migration may be empty: the tool runs it, doing
     * nothing (before, it was refused, and a database built from such a
     * history stopped there: found by an audit).  Flotilla's own is a
     * scaffold not filled in.
     */
    if (rc == 0 && out->count == 0 && !m->other_tool) {
        fl_stmt_list_release(out);
        rc = FL_ERR(err, FL_EINVAL, "%s: the up section holds no statement",
                    m->file);
    }
    return rc;
}

void
fl__stats_release(fl__stats_t *s)
{
    fl_free(&s->error_position);
}

/* The migration's verify statements, in its settings. */
int
fl__verify_statements(fl_pipeline_t *p, const fl_migration_t *m,
                      fl_error_t *err)
{
    fl_stmt_list_t vs = {NULL, 0};
    int rc = 0;

    if (m->verify == NULL)
        return 0;
    rc = fl_facts_analyze(&vs, m->verify, m->verify_line - 1,
                          fl_pg_server_version(p->pg), err);
    if (rc == 0 && vs.count)
        rc = fl__session_enter(p->pg, &p->session, err);
    for (size_t i = 0; rc == 0 && i < vs.count; i++) {
        rc = fl_pg_run(p->pg, vs.items[i].sql, err);
        if (rc != 0)
            fl_error_prefix(err, "verify statement at %s:%d:%d: ", m->file,
                            vs.items[i].line, vs.items[i].column);
    }
    fl_stmt_list_release(&vs);
    return rc;
}

/*
 * Resolves names (schema may be NULL) to OIDs as the migration's next
 * statement would: qualified names directly, others through the
 * migration's effective schemas.  oids[i] = 0 for a name that does not
 * exist; relkinds[i] its relkind.
 */
int
fl__resolve(fl_pipeline_t *p, const char *const *schemas,
            const char *const *names, size_t n, uint32_t *oids, char *relkinds,
            fl_error_t *err)
{
    json_t *a = json_array();
    char *text = NULL;
    const char *params[2];
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, fl_json_pack("[s?, s]", schemas[i], names[i]));
    text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    params[0] = text;
    params[1] = fl__session_schemas(&p->session);
    rc = fl_pg_query(p->pg, &r,
        "SELECT x.oid, x.relkind FROM pg_catalog.json_array_elements("
        " $1::pg_catalog.json) WITH ORDINALITY AS u(e, i)"
        " LEFT JOIN LATERAL (SELECT c.oid, c.relkind FROM pg_catalog.pg_class c"
        "  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=)"
        "  c.relnamespace WHERE c.relname OPERATOR(pg_catalog.=)"
        "  (u.e OPERATOR(pg_catalog.->>) 1)::pg_catalog.name AND CASE WHEN"
        "  (u.e OPERATOR(pg_catalog.->>) 0) IS NOT NULL THEN n.nspname"
        "  OPERATOR(pg_catalog.=) (u.e OPERATOR(pg_catalog.->>) 0)::pg_catalog.name"
        "  ELSE n.nspname::pg_catalog.text OPERATOR(pg_catalog.=) ANY"
        "  (ARRAY(SELECT pg_catalog.json_array_elements_text($2::pg_catalog.json)))"
        "  END ORDER BY pg_catalog.array_position(ARRAY(SELECT"
        "  pg_catalog.json_array_elements_text($2::pg_catalog.json)),"
        "  n.nspname::pg_catalog.text) LIMIT 1) x ON true ORDER BY u.i",
        2, params, err);
    for (size_t i = 0; rc == 0 && i < n && i < r.nrows; i++) {
        const char *o = fl_pg_value(&r, i, 0);
        const char *k = fl_pg_value(&r, i, 1);
        oids[i] = o ? (uint32_t)strtoul(o, NULL, 10) : 0;
        relkinds[i] = k ? k[0] : '\0';
    }
    fl_pg_result_release(&r);
    free(text);
    return rc;
}

/* How long an in-doubt COMMIT waits for its old session to end. */
#define R_DOUBT_WAIT_MS 10000

/*
 * The session of PID $1 (its stats row), if it is one of flotilla's on
 * this database as the session whose COMMIT is in doubt was.
 */
#define R_OLD_SESSION                                                       \
    " pg_catalog.pg_stat_activity a WHERE a.pid OPERATOR(pg_catalog.=)"     \
    " $1::pg_catalog.int4 AND a.application_name OPERATOR(pg_catalog.=)"    \
    " 'flotilla' AND a.datname OPERATOR(pg_catalog.=)"                      \
    " pg_catalog.current_database()"

int
fl__commit_in_doubt(fl_pipeline_t *p, const fl_migration_t *m,
                    const char *status, int down, int done, int *committed,
                    fl_error_t *err)
{
    fl_pg_t *pg = NULL;
    fl_pg_result_t row = FL_PG_RESULT_INIT;
    char pid[16], *v = NULL;
    const char *params[3];
    int64_t until = fl__now_ms() + R_DOUBT_WAIT_MS;
    int rc;

    *committed = 0;
    snprintf(pid, sizeof(pid), "%d", fl_pg_backend_pid(p->pg));
    if ((rc = fl_pg_open(&pg, p->opts.dsn, "flotilla", err)) != 0)
        return rc;
    params[0] = pid;
    /* Only if that PID is still a session like it (not one reusing it). */
    if ((rc = fl_pg_query_value(pg, &v, "SELECT pg_catalog.count("
                                "pg_catalog.pg_terminate_backend(a.pid))"
                                " FROM " R_OLD_SESSION, 1, params,
                                err)) != 0)
        goto cleanup;
    for (;;) {
        int gone;

        free(v);
        v = NULL;
        if ((rc = fl_pg_query_value(pg, &v, "SELECT NOT EXISTS (SELECT FROM"
                                    R_OLD_SESSION ")", 1, params,
                                    err)) != 0)
            goto cleanup;
        gone = v != NULL && strcmp(v, "t") == 0;
        if (gone)
            break;
        if (fl__now_ms() > until) {
            rc = FL_ERR(err, FL_ETIMEOUT, "its session (PID %s) was still "
                        "running %d s after it was told to end", pid,
                        R_DOUBT_WAIT_MS / 1000);
            goto cleanup;
        }
        fl_clock_sleep_ms(20);
    }
    params[0] = p->target;
    params[1] = m->repeatable ? m->name : m->version.text;
    params[2] = m->checksum_hex;
    if ((rc = fl_pg_query(pg, &row, m->repeatable
                          ? "SELECT status, statements_done FROM"
                            " flotilla.repeatable_migrations WHERE target"
                            " OPERATOR(pg_catalog.=) $1 AND name"
                            " OPERATOR(pg_catalog.=) $2 AND checksum"
                            " OPERATOR(pg_catalog.=) $3"
                          : down
                          ? "SELECT status, down_done FROM"
                            " flotilla.schema_migrations WHERE target"
                            " OPERATOR(pg_catalog.=) $1 AND version"
                            " OPERATOR(pg_catalog.=) $2"
                          : "SELECT status, statements_done FROM"
                            " flotilla.schema_migrations WHERE target"
                            " OPERATOR(pg_catalog.=) $1 AND version"
                            " OPERATOR(pg_catalog.=) $2 AND checksum"
                            " OPERATOR(pg_catalog.=) $3",
                          down && !m->repeatable ? 2 : 3, params,
                          err)) != 0)
        goto cleanup;
    if (row.nrows == 1) {
        char n[16];
        snprintf(n, sizeof(n), "%d", done);
        *committed = strcmp(fl_pg_value(&row, 0, 0), status) == 0 &&
                     fl_pg_value(&row, 0, 1) != NULL &&
                     strcmp(fl_pg_value(&row, 0, 1), n) == 0;
    }
cleanup:
    free(v);
    fl_pg_result_release(&row);
    fl_pg_close(&pg);
    return rc;
}

void
fl__say_lost_alone(fl_pipeline_t *p, const fl_migration_t *m,
                   const fl_stmt_list_t *stmts, size_t i, fl_error_t *err)
{
    if (fl_pg_is_open(p->pg) || i >= stmts->count ||
        !stmts->items[i].no_transaction)
        return;
    fl_error_add_detail(err, "Statement %zu (%s:%d) ran outside a "
                        "transaction when the connection was lost: it may "
                        "have taken effect.", i + 1, m->file,
                        stmts->items[i].line);
}
