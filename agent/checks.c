/*
 * checks.c - live-data checks run before a statement changes anything,
 * and where they run (fl__run_checks in pipeline_internal.h).
 *
 * Each check counts the rows that would make the statement fail or do
 * harm, and shows up to three of them, so that the refusal says what to
 * fix: NULLs before SET NOT NULL, a NOT NULL column or a primary key;
 * duplicate groups before a unique index (of columns or expressions,
 * within its WHERE, NULLs equal under NULLS NOT DISTINCT) or a unique or
 * primary key constraint; orphans before a validated foreign key;
 * violations before a validated CHECK; dependents before a DROP.
 *
 * The aim is that a check refuses exactly what PostgreSQL would fail
 * (tests/integration/test_checks.c holds that against the server on
 * generated tables and generated sequences of statements).
 *
 * Where the checks run.  A check depends on everything before it in the
 * migration, so each statement's checks run at the statement's place:
 * inside the migration's transaction, after every statement before it
 * has run, under the search_path it set, on the tables it created,
 * renamed or filled, just before the statement itself.  apply and plan
 * both go through fl__run_checks at that point, so they refuse the same
 * things.  A refusal rolls the transaction back, so for a transactional
 * migration it still means "nothing changed" (exit 3).
 *
 * Within one statement its sub-commands cannot be run one by one:
 * PostgreSQL applies an ALTER TABLE in passes, not in the order written
 * (DROP COLUMN first, then type changes, then added columns, then every
 * constraint and NOT NULL validated in one scan), so a check reads the
 * table as the whole statement leaves it: a derived table where an added
 * column holds its DEFAULT (or NULL, or a generated column its
 * expression) and a retyped one its new value (facts.h, fl_check_col_t).
 * A value only the statement can compute (nextval, random, a function
 * of the database's own) is not guessed: the checks that need it are
 * skipped and reported so, and PostgreSQL has the last word.  Nor does a
 * check run code of the database's own in an expression (s_own_code):
 * PostgreSQL builds an index as the table's owner, and a check runs as
 * flotilla's role.  Also rejected for that: switching to the owner's role
 * for the check, since the tenant's code could RESET ROLE back to
 * flotilla's (PostgreSQL forbids that within its security-restricted
 * operation; SQL cannot enter one).
 *
 * Rejected: running the statement first under a savepoint and explaining
 * a failure afterwards.  It would take the statement's ACCESS EXCLUSIVE
 * lock and do its whole scan or rewrite before knowing that it fails,
 * where a check reads under ACCESS SHARE and blocks no one; a
 * no-transaction statement (CREATE UNIQUE INDEX CONCURRENTLY) cannot be
 * undone, and sequences do not roll back.  Also rejected: splitting an
 * ALTER TABLE into one statement per sub-command, which changes what it
 * does (the passes above) and rewrites the table once per part.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/pipeline_internal.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/str.h"
#include "lint/facts.h"

#define S_SAMPLE_ROWS 3
#define S_SAMPLE_CHARS 200

int64_t
fl__now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *
fl__qualify(fl_pg_t *pg, const char *schema, const char *table)
{
    char *t = fl_pg_quote_ident(pg, table);
    char *s = NULL;
    char *out = NULL;

    if (schema == NULL)
        return t;
    s = fl_pg_quote_ident(pg, schema);
    out = fl_asprintf("%s.%s", s, t);
    free(s);
    free(t);
    return out;
}

static const char *
s_kind_name(fl_check_kind kind)
{
    switch (kind) {
    case FL_CHECK_TABLE_EXISTS:  return "table-exists";
    case FL_CHECK_COLUMN_EXISTS: return "column-exists";
    case FL_CHECK_NOT_NULL:      return "not-null";
    case FL_CHECK_UNIQUE:        return "unique";
    case FL_CHECK_FOREIGN_KEY:   return "foreign-key";
    case FL_CHECK_CHECK:         return "check";
    case FL_CHECK_DEPENDENTS:    return "dependents";
    case FL_CHECK_RETYPED:       return "retyped";
    case FL_CHECK_VALIDATE:      return "validate";
    case FL_CHECK_PRIMARY_INDEX: return "primary-key-index";
    }
    return "?";
}

char *
fl__check_describe(const fl_check_t *c)
{
    fl_buf_t b = FL_BUF_INIT(0);

    fl_buf_addf(&b, "%s on %s%s%s", s_kind_name(c->kind),
                  c->schema ? c->schema : "", c->schema ? "." : "", c->table);
    if (c->ncolumns) {
        fl_buf_addf(&b, "(");
        for (size_t i = 0; i < c->ncolumns; i++)
            fl_buf_addf(&b, "%s%s", i ? ", " : "", c->columns[i]);
        fl_buf_addf(&b, ")");
    }
    if (c->kind == FL_CHECK_UNIQUE && c->nulls_not_distinct)
        fl_buf_addf(&b, " NULLS NOT DISTINCT");
    if (c->kind == FL_CHECK_UNIQUE && c->predicate)
        fl_buf_addf(&b, " WHERE %s", c->predicate);
    if (c->kind == FL_CHECK_FOREIGN_KEY)
        fl_buf_addf(&b, " -> %s%s%s", c->ref_schema ? c->ref_schema : "",
                      c->ref_schema ? "." : "", c->ref_table);
    if (c->kind == FL_CHECK_CHECK && c->expr)
        fl_buf_addf(&b, " (%s)", c->expr);
    return fl_buf_detach(&b);
}

/* "a, b" of quoted identifiers, each prefixed with alias if given. */
static char *
s_column_list(fl_pg_t *pg, char *const *cols, size_t n, const char *alias)
{
    fl_buf_t b = FL_BUF_INIT(0);

    for (size_t i = 0; i < n; i++) {
        char *q = fl_pg_quote_ident(pg, cols[i]);
        fl_buf_addf(&b, "%s%s%s%s", i ? ", " : "", alias ? alias : "",
                      alias ? "." : "", q);
        free(q);
    }
    return fl_buf_detach(&b);
}

/*
 * The keys of a UNIQUE check as SQL: with sql, quoted columns and
 * "(expression)"s; without, as a message shows them.
 */
static char *
s_key_list(fl_pg_t *pg, const fl_check_t *c, int sql)
{
    fl_buf_t b = FL_BUF_INIT(0);

    for (size_t i = 0; i < c->ncolumns; i++) {
        if (c->exprs && c->exprs[i]) {
            fl_buf_addf(&b, sql ? "%s(%s)" : "%s%s", i ? ", " : "",
                        c->exprs[i]);
        } else {
            char *q = fl_pg_quote_ident(pg, c->columns[i]);
            fl_buf_addf(&b, "%s%s", i ? ", " : "", q);
            free(q);
        }
    }
    return fl_buf_detach(&b);
}

/*
 * The code of the database's own that query sql would run: the
 * functions, operators and domains it calls that no superuser owns (a
 * tenant's, not PostgreSQL's nor an extension a superuser installed).
 * PostgreSQL records them as the dependencies of a view when it analyzes
 * its query, under the same search_path, without running it: the query
 * becomes a temporary view in a savepoint (or a transaction) rolled back
 * at once.
 */
#define S_OWN_CODE_SQL                                                      \
    "SELECT pg_catalog.string_agg(DISTINCT x.what, '; ') FROM (SELECT"      \
    " CASE WHEN d.refclassid OPERATOR(pg_catalog.=)"                        \
    " 'pg_catalog.pg_proc'::pg_catalog.regclass THEN pg_catalog.concat("    \
    " 'function ', d.refobjid::pg_catalog.regprocedure)"                   \
    " WHEN d.refclassid OPERATOR(pg_catalog.=)"                             \
    " 'pg_catalog.pg_operator'::pg_catalog.regclass THEN pg_catalog.concat("\
    " 'operator ', d.refobjid::pg_catalog.regoperator)"                    \
    " ELSE pg_catalog.concat('domain ', d.refobjid::pg_catalog.regtype)"    \
    " END AS what"                                                          \
    " FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite w"             \
    " ON w.oid OPERATOR(pg_catalog.=) d.objid"                              \
    " WHERE d.classid OPERATOR(pg_catalog.=)"                               \
    " 'pg_catalog.pg_rewrite'::pg_catalog.regclass"                         \
    " AND w.ev_class OPERATOR(pg_catalog.=)"                                \
    " 'pg_temp.flotilla_probe'::pg_catalog.regclass"                        \
    " AND NOT COALESCE((SELECT r.rolsuper FROM pg_catalog.pg_roles r"       \
    " WHERE r.oid OPERATOR(pg_catalog.=) CASE WHEN d.refclassid"            \
    " OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::pg_catalog.regclass"     \
    " THEN (SELECT f.proowner FROM pg_catalog.pg_proc f"                    \
    " WHERE f.oid OPERATOR(pg_catalog.=) d.refobjid)"                       \
    " WHEN d.refclassid OPERATOR(pg_catalog.=)"                             \
    " 'pg_catalog.pg_operator'::pg_catalog.regclass"                        \
    " THEN (SELECT o.oprowner FROM pg_catalog.pg_operator o"                \
    " WHERE o.oid OPERATOR(pg_catalog.=) d.refobjid)"                       \
    " ELSE (SELECT t.typowner FROM pg_catalog.pg_type t"                    \
    " WHERE t.oid OPERATOR(pg_catalog.=) d.refobjid"                        \
    " AND t.typtype OPERATOR(pg_catalog.=) 'd') END), true)"                \
    " AND d.refclassid OPERATOR(pg_catalog.=) ANY (ARRAY["                  \
    " 'pg_catalog.pg_proc'::pg_catalog.regclass,"                           \
    " 'pg_catalog.pg_operator'::pg_catalog.regclass,"                       \
    " 'pg_catalog.pg_type'::pg_catalog.regclass])) x"

/*
 * Runs the n steps in a savepoint flotilla_check (or, outside a
 * transaction, in one) rolled back after them, in one round trip:
 * nothing they do or SET outlives them, and the migration's transaction
 * and settings are as they were.  On a failure the same is done, and the
 * failure returned.
 */
#define S_MAX_INNER 3

static int
s_rolled_back(fl_pg_t *pg, const fl_pg_step_t *inner, size_t n,
              fl_error_t *err)
{
    int intx = fl_pg_in_transaction(pg);
    fl_pg_step_t steps[S_MAX_INNER + 3];
    size_t k = 0;
    int rc;

    steps[k++] = (fl_pg_step_t){NULL, intx ? "SAVEPOINT flotilla_check"
                                           : "BEGIN", 0, NULL, NULL};
    for (size_t i = 0; i < n && i < S_MAX_INNER; i++)
        steps[k++] = inner[i];
    steps[k++] = (fl_pg_step_t){NULL, intx
                                    ? "ROLLBACK TO SAVEPOINT flotilla_check"
                                    : "ROLLBACK", 0, NULL, NULL};
    if (intx)
        steps[k++] = (fl_pg_step_t){NULL, "RELEASE SAVEPOINT flotilla_check",
                                    0, NULL, NULL};
    rc = fl_pg_batch(pg, steps, k, err);
    if (rc != 0 && fl_pg_is_open(pg)) {
        fl_error_t ignore = FL_ERROR_INIT;
        FL_IGNORE(fl_pg_exec(pg, intx ? "ROLLBACK TO SAVEPOINT flotilla_check;"
                                        " RELEASE SAVEPOINT flotilla_check"
                                      : "ROLLBACK", &ignore));
        fl_error_clear(&ignore);
    }
    return rc;
}

/*
 * *own: a new "; "-joined list of what of the database's own the check
 * query sql would run (see S_OWN_CODE_SQL), or NULL when nothing.  A
 * check runs as flotilla's role, where PostgreSQL builds an index as the
 * table's owner: a tenant's function in a key would run with flotilla's
 * rights.  A query PostgreSQL cannot make a view of counts as one, its
 * error named.
 */
static int
s_own_code(fl_pg_t *pg, const char *sql, char **own, fl_error_t *err)
{
    char *view = fl_asprintf("CREATE TEMPORARY VIEW flotilla_probe AS %s",
                             sql);
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const fl_pg_step_t inner[3] = {
        {NULL, view, 0, NULL, NULL},
        /* Names qualified in what it says (and put back with the rest). */
        {NULL, "SELECT pg_catalog.set_config('search_path', '', true)", 0,
         NULL, NULL},
        {NULL, S_OWN_CODE_SQL, 0, NULL, &r},
    };
    fl_error_t probe = FL_ERROR_INIT;
    int rc = s_rolled_back(pg, inner, 3, &probe);

    *own = NULL;
    if (rc != 0 && !fl_pg_is_open(pg)) {
        /* A connection lost is the caller's, with what it said. */
        if (err)
            fl_error_move(err, &probe);
    } else if (rc != 0) {
        *own = fl_asprintf("what it would run could not be told (%s)",
                           probe.message);
        rc = 0;
    } else if (r.nrows == 1 && fl_pg_value(&r, 0, 0)) {
        *own = fl_strdup(fl_pg_value(&r, 0, 0));
    }
    fl_error_clear(&probe);
    fl_pg_result_release(&r);
    free(view);
    return rc;
}

/*
 * Runs check query sql with row_security off, rolled back after it
 * (s_rolled_back) so that the migration's own value comes back: as for
 * flotilla's other reads (session.c), a policy neither hides rows from a
 * check nor runs the tenant's code as flotilla's role, and where one
 * would apply PostgreSQL refuses the query (pg.c says what to do).  Its
 * rows in *out.
 */
static int
s_query_quiet(fl_pg_t *pg, const char *sql, fl_pg_result_t *out,
              fl_error_t *err)
{
    const fl_pg_step_t inner[2] = {
        {NULL, "SELECT pg_catalog.set_config('row_security', 'off', true)",
         0, NULL, NULL},
        {NULL, sql, 0, NULL, out},
    };

    return s_rolled_back(pg, inner, 2, err);
}

/*
 * 1 when the expressions of check c (its keys, predicate, CHECK and the
 * values of the columns its statement adds or retypes) can run no code of
 * the database's own (fl_facts_expr_runs_nothing), so that s_own_code
 * need not look: plain columns, and the built-in operators of their
 * types (a foreign key's, from an operator class only a superuser makes).
 */
static int
s_runs_nothing(const fl_check_t *c)
{
    if (!fl_facts_expr_runs_nothing(c->expr) ||
        !fl_facts_expr_runs_nothing(c->predicate))
        return 0;
    for (size_t i = 0; c->exprs && i < c->ncolumns; i++)
        if (!fl_facts_expr_runs_nothing(c->exprs[i]))
            return 0;
    for (size_t i = 0; i < c->npending; i++)
        if (!fl_facts_expr_runs_nothing(c->pending[i].value))
            return 0;
    return 1;
}

/*
 * FL_ECANCELLED when o's cancel flag is set: checked before each query
 * of a check that reads a table's rows (s_count_and_sample), which may
 * run as long as the table is big or its expressions slow.  A cancel
 * request stops only a statement that runs when it reaches the server
 * (one that comes while the backend waits for its client is dropped),
 * and a check is several round trips: one that came after the probe of
 * s_own_code was lost, and the count ran to its end (a CHECK calling
 * pg_sleep(600): ten minutes).  The flag is set before the request goes
 * out, so a query begun after the request arrived is never begun.
 */
static int
s_cancelled(const fl_check_t *c, const fl_check_opts_t *o, fl_error_t *err)
{
    char *label = NULL;
    int rc;

    if (o->cancel == NULL || !__atomic_load_n(o->cancel, __ATOMIC_SEQ_CST))
        return 0;
    label = fl__check_describe(c);
    rc = FL_ERR(err, FL_ECANCELLED, "check %s cancelled before it read the "
                "table", label);
    free(label);
    return rc;
}

/*
 * Runs a count query and, when the count is nonzero, a sample query;
 * fills *count and a new "; "-joined sample string.  Neither runs when
 * the count query would run code of the database's own (s_own_code):
 * *skip then says why, and PostgreSQL has the last word.  Nor when the
 * run was cancelled (s_cancelled).
 */
static int
s_count_and_sample(fl_pg_t *pg, const fl_check_t *c, const fl_check_opts_t *o,
                   const char *count_sql, const char *sample_sql,
                   long long *count, char **sample, char **skip,
                   fl_error_t *err)
{
    const char *v = NULL;
    char *own = NULL;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    fl_buf_t b = FL_BUF_INIT(0);
    int rc = 0;

    if (!s_runs_nothing(c))
        rc = s_own_code(pg, count_sql, &own, err);

    *sample = NULL;
    *count = 0;
    if (rc != 0)
        return rc;
    if (own) {
        *skip = fl_asprintf("it would run, with flotilla's rights, code of "
                            "the database's own: %s", own);
        free(own);
        return 0;
    }
    if ((rc = s_cancelled(c, o, err)) != 0)
        return rc;
    rc = s_query_quiet(pg, count_sql, &r, err);
    if (rc != 0) {
        fl_pg_result_release(&r);
        return rc;
    }
    v = r.nrows == 1 ? fl_pg_value(&r, 0, 0) : NULL;
    *count = v ? strtoll(v, NULL, 10) : 0;
    fl_pg_result_release(&r);
    if (*count == 0 || sample_sql == NULL)
        return 0;
    if ((rc = s_cancelled(c, o, err)) != 0)
        return rc;
    {
        char *sendable = fl_pg_sendable_text_sql(pg, sample_sql);
        rc = s_query_quiet(pg, sendable, &r, err);
        free(sendable);
    }
    if (rc != 0) {
        fl_pg_result_release(&r);
        return rc;
    }
    for (size_t i = 0; i < r.nrows; i++) {
        const char *s = fl_pg_value(&r, i, 0);
        /* At most S_SAMPLE_CHARS bytes, cut where a character starts. */
        if (s == NULL)
            s = "NULL";
        fl_buf_addf(&b, "%s%.*s", i ? "; " : "",
                    (int)fl_str_utf8_prefix(s, S_SAMPLE_CHARS), s);
    }
    fl_pg_result_release(&r);
    *sample = fl_buf_detach(&b);
    return 0;
}

static int s_primary_key(fl_pg_t *pg, const char *qualified,
                         fl_pg_result_t *out, fl_error_t *err);

/*
 * The sample query of a check: the rows of from (a FROM item whose alias
 * is alias) matching where (owned, freed), shown as their key and the
 * check's columns only (a whole row may hold what should not reach a log
 * or a coordinator), or as the key alone when samples are redacted.
 * NULL when there is nothing to show.
 */
static char *
s_sample_sql(fl_pg_t *pg, const char *qt, const char *from, const char *alias,
             const fl_check_t *c, const fl_check_opts_t *o, char *where)
{
    fl_pg_result_t pk = FL_PG_RESULT_INIT;
    fl_error_t ignore = FL_ERROR_INIT;
    fl_buf_t b = FL_BUF_INIT(0);
    char *sql = NULL;
    size_t n = 0;

    /* The key, when the table has one (a failed lookup: no key shown). */
    if (s_primary_key(pg, qt, &pk, &ignore) == 0)
        for (size_t i = 0; i < pk.nrows; i++) {
            char *q = fl_pg_quote_ident(pg, fl_pg_value(&pk, i, 0));
            fl_buf_addf(&b, "%s%s.%s", n++ ? ", " : "", alias, q);
            free(q);
        }
    for (size_t i = 0; !o->redact_samples && i < c->ncolumns; i++) {
        int in_key = 0;
        char *q = NULL;
        for (size_t k = 0; k < pk.nrows; k++)
            in_key |= strcmp(fl_pg_value(&pk, k, 0), c->columns[i]) == 0;
        if (in_key)
            continue;
        q = fl_pg_quote_ident(pg, c->columns[i]);
        fl_buf_addf(&b, "%s%s.%s", n++ ? ", " : "", alias, q);
        free(q);
    }
    if (n > 0)
        sql = fl_asprintf("SELECT ROW(%s)::pg_catalog.text FROM %s WHERE %s"
                          " LIMIT %d", fl_buf_str(&b), from, where,
                          S_SAMPLE_ROWS);
    fl_buf_release(&b);
    fl_pg_result_release(&pk);
    fl_error_clear(&ignore);
    free(where);
    return sql;
}

/*
 * The redacted sample of a UNIQUE check: the keys of up to three rows
 * that share their values with another (new string), or NULL when the
 * table has no key.  named: the keys as "expr AS k1, ..."; refs: "k.k1,
 * ..."; a window over them groups as GROUP BY does (NULLs together).
 */
static char *
s_unique_keys_sql(fl_pg_t *pg, const char *qt, const char *from,
                  const char *alias, const char *named, const char *where,
                  const char *refs)
{
    fl_pg_result_t pk = FL_PG_RESULT_INIT;
    fl_error_t ignore = FL_ERROR_INIT;
    fl_buf_t keys = FL_BUF_INIT(0), outer = FL_BUF_INIT(0);
    char *sql = NULL;

    if (s_primary_key(pg, qt, &pk, &ignore) == 0 && pk.nrows > 0) {
        for (size_t i = 0; i < pk.nrows; i++) {
            char *q = fl_pg_quote_ident(pg, fl_pg_value(&pk, i, 0));
            fl_buf_addf(&keys, "%s.%s AS p%zu, ", alias, q, i + 1);
            fl_buf_addf(&outer, "%ss.p%zu", i ? ", " : "", i + 1);
            free(q);
        }
        sql = fl_asprintf(
            "SELECT ROW(%s)::pg_catalog.text FROM (SELECT k.*,"
            " pg_catalog.count(*) OVER (PARTITION BY %s) AS n FROM"
            " (SELECT %s%s FROM %s WHERE %s) AS k) AS s"
            " WHERE s.n OPERATOR(pg_catalog.>) 1 ORDER BY 1 LIMIT %d",
            fl_buf_str(&outer), refs, fl_buf_str(&keys), named, from, where,
            S_SAMPLE_ROWS);
    }
    fl_buf_release(&keys);
    fl_buf_release(&outer);
    fl_pg_result_release(&pk);
    fl_error_clear(&ignore);
    return sql;
}

static int
s_exists(fl_pg_t *pg, const char *qualified, const char *column, int *exists,
         fl_error_t *err)
{
    const char *params[2] = {qualified, column};
    char *v = NULL;
    int rc = fl_pg_query_value(pg, &v, column ?
        "SELECT pg_catalog.count(*) FROM pg_catalog.pg_attribute WHERE attrelid"
        " OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1::pg_catalog.text)"
        " AND attname OPERATOR(pg_catalog.=) $2::pg_catalog.name"
        " AND attnum OPERATOR(pg_catalog.>) 0 AND NOT attisdropped" :
        "SELECT pg_catalog.count(*) FROM pg_catalog.pg_class WHERE oid"
        " OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1::pg_catalog.text)",
        column ? 2 : 1, params, err);

    if (rc == 0)
        *exists = v && strcmp(v, "0") != 0;
    free(v);
    return rc;
}

/* Primary key columns of a table, for a foreign key naming none. */
static int
s_primary_key(fl_pg_t *pg, const char *qualified, fl_pg_result_t *out,
              fl_error_t *err)
{
    const char *params[1] = {qualified};

    return fl_pg_query(pg, out,
        "SELECT a.attname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_attribute a"
        " ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid AND a.attnum"
        " OPERATOR(pg_catalog.=) ANY (i.indkey::pg_catalog.int2[])"
        " WHERE i.indrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass("
        "$1::pg_catalog.text) AND i.indisprimary"
        " ORDER BY pg_catalog.array_position(i.indkey::pg_catalog.int2[],"
        " a.attnum)", 1, params, err);
}

/*
 * What a check reads.  from is a FROM item named alias: the table, or,
 * when the check's ALTER TABLE adds or retypes columns, the table as that
 * statement leaves it (a derived table over the live one, each added
 * column its value in the rows already there, each retyped one its new
 * value).  skip says why the check cannot be known before the statement
 * runs; holds, that it holds whatever the rows (a column filled from a
 * sequence is distinct and never NULL); new_column, that the check's
 * first column is one the statement adds.
 */
typedef struct {
    char *from;
    char *skip;
    int holds;
    int new_column;
} s_rel_t;

static void
s_rel_release(s_rel_t *r)
{
    fl_free(&r->from);
    fl_free(&r->skip);
}

/* The pending column of c named name (the last one), or NULL. */
static const fl_check_col_t *
s_pending(const fl_check_t *c, const char *name, int added)
{
    const fl_check_col_t *p = NULL;

    for (size_t i = 0; i < c->npending; i++)
        if (c->pending[i].added == added &&
            strcmp(c->pending[i].name, name) == 0)
            p = &c->pending[i];
    return p;
}

/* True when typesql (SQL of a type) names a domain (whose own default and
 * constraints then apply to a column added without a DEFAULT). */
static int
s_is_domain(fl_pg_t *pg, const char *typesql, int *domain, fl_error_t *err)
{
    const char *params[1] = {typesql};
    char *v = NULL;
    int rc = fl_pg_query_value(pg, &v,
        "SELECT pg_catalog.count(*) FROM pg_catalog.pg_type WHERE oid"
        " OPERATOR(pg_catalog.=) pg_catalog.to_regtype($1::pg_catalog.text)"
        " AND typtype OPERATOR(pg_catalog.=) 'd'", 1, params, err);

    if (rc == 0)
        *domain = v && strcmp(v, "0") != 0;
    free(v);
    return rc;
}

/* True when name is one of the n names. */
static int
s_among(const char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/*
 * "ONLY " when the check reads the rows of table qt alone (own: see
 * fl_check_t.only) and qt is a table with inheritance children, whose
 * rows a query of qt also returns; "" otherwise.  Never for a
 * partitioned table: its rows are its partitions', and PostgreSQL checks
 * them all (FROM ONLY of it returns nothing).
 */
static int
s_only(fl_pg_t *pg, const char *qt, int own, const char **only,
       fl_error_t *err)
{
    const char *params[1] = {qt};
    char *v = NULL;
    int rc = 0;

    *only = "";
    if (!own)
        return 0;
    rc = fl_pg_query_value(pg, &v,
        "SELECT c.relkind OPERATOR(pg_catalog.=) 'r' AND c.relhassubclass"
        " FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=)"
        " pg_catalog.to_regclass($1::pg_catalog.text)", 1, params, err);
    if (rc == 0 && v && strcmp(v, "t") == 0)
        *only = "ONLY ";
    free(v);
    return rc;
}

/* Whether check c reads the rows of its table alone (see s_only). */
static int
s_own_rows(const fl_check_t *c)
{
    return c->kind == FL_CHECK_UNIQUE || c->kind == FL_CHECK_FOREIGN_KEY ||
           c->only;
}

/*
 * Fills rel for check c on table qt (quoted) read as alias; reads names
 * the columns the check's queries use (n of them).
 */
static int
s_relation(fl_pg_t *pg, const char *qt, const char *alias, const fl_check_t *c,
           char *const *reads, size_t nreads, s_rel_t *rel, fl_error_t *err)
{
    const char *params[1] = {qt};
    fl_pg_result_t live = FL_PG_RESULT_INIT;
    fl_buf_t list = FL_BUF_INIT(0);
    /* Columns whose values only the statement knows; from a sequence. */
    const char **unknown = fl_calloc(c->npending + 1, sizeof(char *));
    const char **sequence = fl_calloc(c->npending + 1, sizeof(char *));
    size_t nunknown = 0, nsequence = 0;
    const char *only = "";
    int exists = 0, rc = 0;

    memset(rel, 0, sizeof(*rel));
    /* DROP COLUMN x, ADD COLUMN IF NOT EXISTS x: x is added again. */
    if (c->if_added && !(s_pending(c, c->if_added, 1) &&
                         s_pending(c, c->if_added, 1)->replaces)) {
        if ((rc = s_exists(pg, qt, c->if_added, &exists, err)) != 0)
            goto cleanup;
        if (exists) {
            rel->skip = fl_asprintf("column \"%s\" exists, and ADD COLUMN IF "
                                    "NOT EXISTS skips it with its "
                                    "constraints", c->if_added);
            goto cleanup;
        }
    }
    if ((rc = s_only(pg, qt, s_own_rows(c), &only, err)) != 0)
        goto cleanup;
    if (c->kind == FL_CHECK_UNIQUE && c->only) {
        /*
         * A unique index ON ONLY a partitioned table is made invalid on
         * the table alone, reading no row: its partitions' indexes,
         * attached later, check theirs.  Before, the partitions' rows
         * were counted and duplicates refused it (found by an audit).
         */
        char *kind = NULL;
        const char *kp[1] = {qt};

        rc = fl_pg_query_value(pg, &kind, "SELECT c.relkind FROM"
            " pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=)"
            " pg_catalog.to_regclass($1::pg_catalog.text)", 1, kp, err);
        if (rc == 0 && kind != NULL && strcmp(kind, "p") == 0)
            rel->skip = fl_asprintf("a unique index ON ONLY a partitioned "
                                    "table reads no row: its partitions' "
                                    "indexes check theirs when attached");
        free(kind);
        if (rc != 0 || rel->skip != NULL)
            goto cleanup;
    }
    if (c->npending == 0) {
        rel->from = fl_asprintf("%s%s AS %s", only, qt, alias);
        goto cleanup;
    }
    rc = fl_pg_query(pg, &live,
        "SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid"
        " OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1::pg_catalog.text)"
        " AND attnum OPERATOR(pg_catalog.>) 0 AND NOT attisdropped"
        " ORDER BY attnum", 1, params, err);
    if (rc != 0)
        goto cleanup;
    for (size_t i = 0; i < live.nrows; i++) {
        const char *name = fl_pg_value(&live, i, 0);
        const fl_check_col_t *p = s_pending(c, name, 0);
        const fl_check_col_t *added = s_pending(c, name, 1);
        char *q = NULL;

        /* Dropped by the statement before it adds it again. */
        if (added && added->replaces)
            continue;
        q = fl_pg_quote_ident(pg, name);
        if (p && !p->value)
            unknown[nunknown++] = p->name;
        else if (p)
            fl_buf_addf(&list, "%s(%s) AS %s", list.len ? ", " : "",
                        p->value, q);
        else
            fl_buf_addf(&list, "%s%s.%s", list.len ? ", " : "", alias, q);
        free(q);
    }
    for (size_t i = 0; i < c->npending; i++) {
        const fl_check_col_t *p = &c->pending[i];
        int found = 0, domain = 0;
        char *q = NULL;

        for (size_t k = 0; k < live.nrows && !found && !p->replaces; k++)
            found = strcmp(fl_pg_value(&live, k, 0), p->name) == 0;
        /* An existing column stays (IF NOT EXISTS; without it the
         * statement fails on its own), and so does the first of two. */
        if (!p->added || found || s_pending(c, p->name, 1) != p)
            continue;
        if (p->sequence) {
            sequence[nsequence++] = p->name;
            continue;
        }
        if (p->value && p->type &&
            (rc = s_is_domain(pg, p->type, &domain, err)) != 0)
            goto cleanup;
        if (!p->value || domain) {
            unknown[nunknown++] = p->name;
            continue;
        }
        q = fl_pg_quote_ident(pg, p->name);
        fl_buf_addf(&list, "%s(%s) AS %s", list.len ? ", " : "", p->value, q);
        free(q);
    }
    for (size_t i = 0; i < nreads && !rel->skip && !rel->holds; i++) {
        int seq = s_among(sequence, nsequence, reads[i]);
        if (seq && (c->kind == FL_CHECK_NOT_NULL ||
                    c->kind == FL_CHECK_UNIQUE))
            rel->holds = 1;
        else if (seq || s_among(unknown, nunknown, reads[i]))
            rel->skip = fl_asprintf("the values column \"%s\" gets in the "
                                    "rows already there are known only "
                                    "when the statement runs", reads[i]);
    }
    for (size_t i = 0; i < nreads && !rel->new_column; i++)
        rel->new_column = s_pending(c, reads[i], 1) != NULL;
    if (!rel->skip && !rel->holds)
        rel->from = fl_asprintf("(SELECT %s FROM %s%s AS %s) AS %s",
                                fl_buf_str(&list), only, qt, alias, alias);
cleanup:
    fl_pg_result_release(&live);
    fl_buf_release(&list);
    free(unknown);
    free(sequence);
    return rc;
}

/*
 * How a foreign key from column fcol of table ft to column col of table
 * qt compares, as PostgreSQL's check of it does: with the equality
 * operator of the default btree operator class of col's type (citext's
 * own "=", not text's), whose schema, quoted, is *ns (new); NULL when
 * there is none (a domain, varchar, a column not there yet), where
 * pg_catalog's applies.  When that class's family has no operator from
 * col's type to fcol's, the referencing value is cast to col's type
 * first: *cast (new) is that type's name, without a type modifier (a
 * char(3) key compares with a text column as bpchar does, blanks at the
 * end ignored; before, as text, and such rows were counted orphans,
 * found by an audit); else NULL.  Never a name the search_path resolves.
 */
static int
s_equality(fl_pg_t *pg, const char *qt, const char *col, const char *ft,
           const char *fcol, char **ns, char **cast, fl_error_t *err)
{
    const char *params[4] = {qt, col, ft, fcol};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    *ns = *cast = NULL;
    rc = fl_pg_query(pg, &r,
        "SELECT pg_catalog.quote_ident(n.nspname),"
        " CASE WHEN ft.oid IS NOT NULL AND ft.base"
        "   OPERATOR(pg_catalog.<>) a.atttypid AND NOT EXISTS (SELECT FROM"
        "   pg_catalog.pg_amop x WHERE x.amopfamily OPERATOR(pg_catalog.=)"
        "   c.opcfamily AND x.amopstrategy OPERATOR(pg_catalog.=) 3"
        "   AND x.amoplefttype OPERATOR(pg_catalog.=) c.opcintype"
        "   AND x.amoprighttype OPERATOR(pg_catalog.=) ft.base)"
        "   THEN pg_catalog.format('%I.%I', tn.nspname, t.typname) END"
        " FROM pg_catalog.pg_attribute a"
        " JOIN pg_catalog.pg_opclass c ON c.opcintype OPERATOR(pg_catalog.=)"
        "   a.atttypid AND c.opcdefault AND c.opcmethod OPERATOR(pg_catalog.=)"
        "   (SELECT oid FROM pg_catalog.pg_am WHERE amname"
        "   OPERATOR(pg_catalog.=) 'btree')"
        " JOIN pg_catalog.pg_amop o ON o.amopfamily OPERATOR(pg_catalog.=)"
        "   c.opcfamily AND o.amopstrategy OPERATOR(pg_catalog.=) 3"
        "   AND o.amoplefttype OPERATOR(pg_catalog.=) c.opcintype"
        "   AND o.amoprighttype OPERATOR(pg_catalog.=) c.opcintype"
        " JOIN pg_catalog.pg_operator p ON p.oid OPERATOR(pg_catalog.=)"
        "   o.amopopr"
        " JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=)"
        "   p.oprnamespace"
        " JOIN pg_catalog.pg_type t ON t.oid OPERATOR(pg_catalog.=)"
        "   a.atttypid"
        " JOIN pg_catalog.pg_namespace tn ON tn.oid OPERATOR(pg_catalog.=)"
        "   t.typnamespace"
        " LEFT JOIN pg_catalog.pg_attribute f ON f.attrelid"
        "   OPERATOR(pg_catalog.=) pg_catalog.to_regclass($3::pg_catalog.text)"
        "   AND f.attname OPERATOR(pg_catalog.=) $4::pg_catalog.name"
        "   AND f.attnum OPERATOR(pg_catalog.>) 0 AND NOT f.attisdropped"
        /* A domain's base type, as PostgreSQL looks operators up. */
        " LEFT JOIN (SELECT y.oid, CASE WHEN y.typtype OPERATOR(pg_catalog.=)"
        "   'd' THEN y.typbasetype ELSE y.oid END AS base"
        "   FROM pg_catalog.pg_type y) ft"
        "   ON ft.oid OPERATOR(pg_catalog.=) f.atttypid"
        " WHERE a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass("
        "   $1::pg_catalog.text) AND a.attname OPERATOR(pg_catalog.=)"
        "   $2::pg_catalog.name AND a.attnum OPERATOR(pg_catalog.>) 0"
        " LIMIT 1", 4, params, err);
    if (rc == 0 && r.nrows == 1) {
        *ns = fl_strdup_or_null(fl_pg_value(&r, 0, 0));
        *cast = fl_strdup_or_null(fl_pg_value(&r, 0, 1));
    }
    fl_pg_result_release(&r);
    return rc;
}

/* "and" of NOT NULL over the keys, unless NULLs are equal (NND). */
static char *
s_unique_where(const fl_check_t *c, const char *keys)
{
    if (c->predicate && !c->nulls_not_distinct)
        return fl_asprintf("(%s) AND pg_catalog.num_nulls(%s)"
                           " OPERATOR(pg_catalog.=) 0", c->predicate, keys);
    if (c->predicate)
        return fl_asprintf("(%s)", c->predicate);
    if (!c->nulls_not_distinct)
        return fl_asprintf("pg_catalog.num_nulls(%s) OPERATOR(pg_catalog.=) 0",
                           keys);
    return fl_strdup("true");
}

/*
 * The constraints of table qt that its ALTER COLUMN ... TYPE validates
 * again over the column's new values (check c, a RETYPED one): its NOT
 * NULL, the unique indexes with it among their key columns (not those on
 * expressions, which are left to the statement), its validated CHECKs
 * and foreign keys (not those of other tables that reference it).  One
 * row per constraint and column: kind, name, column, predicate, NULLS NOT
 * DISTINCT, expression, position, and a foreign key's referenced schema,
 * table and column.
 */
static const char s_retyped_sql[] =
    "SELECT 'n', '', a.attname, NULL, false, NULL, 0, NULL, NULL, NULL"
    " FROM pg_catalog.pg_attribute a WHERE a.attrelid OPERATOR(pg_catalog.=)"
    " pg_catalog.to_regclass($1::pg_catalog.text) AND a.attname"
    " OPERATOR(pg_catalog.=) $2::pg_catalog.name AND a.attnotnull"
    " UNION ALL"
    " SELECT 'u', (SELECT relname FROM pg_catalog.pg_class WHERE oid"
    "   OPERATOR(pg_catalog.=) i.indexrelid), a.attname,"
    "   pg_catalog.pg_get_expr(i.indpred, i.indrelid), i.indnullsnotdistinct,"
    "   NULL, k.n, NULL, NULL, NULL"
    " FROM pg_catalog.pg_index i, LATERAL pg_catalog.unnest("
    "   i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, n)"
    " JOIN pg_catalog.pg_attribute a ON a.attnum OPERATOR(pg_catalog.=)"
    "   k.attnum"
    " WHERE i.indrelid OPERATOR(pg_catalog.=)"
    "   pg_catalog.to_regclass($1::pg_catalog.text) AND i.indisunique"
    "   AND i.indexprs IS NULL AND a.attrelid OPERATOR(pg_catalog.=) i.indrelid"
    "   AND k.n OPERATOR(pg_catalog.<=) i.indnkeyatts"
    "   AND (SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid"
    "   OPERATOR(pg_catalog.=) i.indrelid AND attname OPERATOR(pg_catalog.=)"
    "   $2::pg_catalog.name) OPERATOR(pg_catalog.=) ANY ((i.indkey::"
    "   pg_catalog.int2[])[0:i.indnkeyatts OPERATOR(pg_catalog.-) 1])"
    " UNION ALL"
    " SELECT 'c', k.conname, a.attname, NULL, false,"
    "   pg_catalog.pg_get_expr(k.conbin, k.conrelid), 0, NULL, NULL, NULL"
    " FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_attribute a"
    "   ON a.attrelid OPERATOR(pg_catalog.=) k.conrelid AND a.attnum"
    "   OPERATOR(pg_catalog.=) ANY (k.conkey)"
    " WHERE k.conrelid OPERATOR(pg_catalog.=)"
    "   pg_catalog.to_regclass($1::pg_catalog.text) AND k.contype"
    "   OPERATOR(pg_catalog.=) 'c' AND k.convalidated"
    "   AND (SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid"
    "   OPERATOR(pg_catalog.=) k.conrelid AND attname OPERATOR(pg_catalog.=)"
    "   $2::pg_catalog.name) OPERATOR(pg_catalog.=) ANY (k.conkey)"
    " UNION ALL"
    " SELECT 'f', k.conname, a.attname, NULL, false, NULL, u.n, rn.nspname,"
    "   r.relname, ra.attname"
    " FROM pg_catalog.pg_constraint k, LATERAL ROWS FROM (pg_catalog.unnest("
    "   k.conkey), pg_catalog.unnest(k.confkey)) WITH ORDINALITY AS"
    "   u(ak, rk, n)"
    " JOIN pg_catalog.pg_attribute a ON a.attnum OPERATOR(pg_catalog.=) u.ak"
    " JOIN pg_catalog.pg_attribute ra ON ra.attnum OPERATOR(pg_catalog.=) u.rk"
    " JOIN pg_catalog.pg_class r ON r.oid OPERATOR(pg_catalog.=) ra.attrelid"
    " JOIN pg_catalog.pg_namespace rn ON rn.oid OPERATOR(pg_catalog.=)"
    "   r.relnamespace"
    " WHERE k.conrelid OPERATOR(pg_catalog.=)"
    "   pg_catalog.to_regclass($1::pg_catalog.text) AND k.contype"
    "   OPERATOR(pg_catalog.=) 'f' AND k.convalidated"
    "   AND a.attrelid OPERATOR(pg_catalog.=) k.conrelid"
    "   AND ra.attrelid OPERATOR(pg_catalog.=) k.confrelid"
    "   AND (SELECT attnum FROM pg_catalog.pg_attribute WHERE attrelid"
    "   OPERATOR(pg_catalog.=) k.conrelid AND attname OPERATOR(pg_catalog.=)"
    "   $2::pg_catalog.name) OPERATOR(pg_catalog.=) ANY (k.conkey)"
    " ORDER BY 1, 2, 7";

/*
 * Runs, for retyped check c, the checks of the constraints its statement
 * validates again (s_retyped_sql), each on the table as the statement
 * leaves it (c's pending columns).  Stops at the first that fails, which
 * then refuses for itself (as fl__check_run).
 */
static int
s_retyped(fl_pg_t *pg, const char *qt, const fl_check_t *c,
          const fl_check_opts_t *o, json_t *report, fl_error_t *err)
{
    const char *params[2] = {qt, c->columns[0]};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char **cols = NULL, **refs = NULL;
    int rc = fl_pg_query(pg, &r, s_retyped_sql, 2, params, err);

    cols = fl_calloc(r.nrows + 1, sizeof(char *));
    refs = fl_calloc(r.nrows + 1, sizeof(char *));
    for (size_t i = 0; rc == 0 && i < r.nrows;) {
        const char *kind = fl_pg_value(&r, i, 0);
        const char *id = fl_pg_value(&r, i, 1);
        fl_check_t k;
        size_t n = 0;

        memset(&k, 0, sizeof(k));
        k.kind = kind[0] == 'n' ? FL_CHECK_NOT_NULL
                 : kind[0] == 'u' ? FL_CHECK_UNIQUE
                 : kind[0] == 'f' ? FL_CHECK_FOREIGN_KEY : FL_CHECK_CHECK;
        k.ref_schema = (char *)fl_pg_value(&r, i, 7);
        k.ref_table = (char *)fl_pg_value(&r, i, 8);
        k.schema = c->schema;
        k.table = c->table;
        k.predicate = (char *)fl_pg_value(&r, i, 3);
        k.nulls_not_distinct = strcmp(fl_pg_value(&r, i, 4), "t") == 0;
        k.expr = (char *)fl_pg_value(&r, i, 5);
        k.pending = c->pending;
        k.npending = c->npending;
        int dropped = 0;

        for (; i < r.nrows && strcmp(fl_pg_value(&r, i, 0), kind) == 0 &&
               strcmp(fl_pg_value(&r, i, 1), id) == 0; i++) {
            refs[n] = (char *)fl_pg_value(&r, i, 9);
            cols[n++] = (char *)fl_pg_value(&r, i, 2);
        }
        /* Dropped by the same statement ("": its DROP NOT NULL). */
        for (size_t d = 0; d < c->ndropped_with; d++)
            dropped |= strcmp(c->dropped_with[d].name, id) == 0;
        k.columns = cols;
        k.ncolumns = n;
        if (k.kind == FL_CHECK_FOREIGN_KEY) {
            k.ref_columns = refs;
            k.nref_columns = n;
        }
        if (!dropped)
            rc = fl__check_run(pg, &k, o, report, err);
    }
    free(cols);
    free(refs);
    fl_pg_result_release(&r);
    return rc;
}

/*
 * The CHECK or foreign key columns[0] of table qt, not validated yet, as
 * the catalog defines it: its expression, or its columns and the
 * referenced table's, one row a column (in key order).
 */
static const char s_validate_sql[] =
    "SELECT k.contype, pg_catalog.pg_get_expr(k.conbin, k.conrelid),"
    " a.attname, rn.nspname, r.relname, ra.attname, k.confmatchtype"
    " FROM pg_catalog.pg_constraint k"
    " LEFT JOIN LATERAL ROWS FROM (pg_catalog.unnest(k.conkey),"
    "   pg_catalog.unnest(k.confkey)) WITH ORDINALITY AS u(ak, rk, n)"
    "   ON k.contype OPERATOR(pg_catalog.=) 'f'"
    " LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid"
    "   OPERATOR(pg_catalog.=) k.conrelid AND a.attnum"
    "   OPERATOR(pg_catalog.=) u.ak"
    " LEFT JOIN pg_catalog.pg_attribute ra ON ra.attrelid"
    "   OPERATOR(pg_catalog.=) k.confrelid AND ra.attnum"
    "   OPERATOR(pg_catalog.=) u.rk"
    " LEFT JOIN pg_catalog.pg_class r ON r.oid OPERATOR(pg_catalog.=)"
    "   k.confrelid"
    " LEFT JOIN pg_catalog.pg_namespace rn ON rn.oid OPERATOR(pg_catalog.=)"
    "   r.relnamespace"
    " WHERE k.conrelid OPERATOR(pg_catalog.=)"
    "   pg_catalog.to_regclass($1::pg_catalog.text) AND k.conname"
    "   OPERATOR(pg_catalog.=) $2::pg_catalog.name AND NOT k.convalidated"
    "   AND k.contype OPERATOR(pg_catalog.=) ANY ('{c,f}'::pg_catalog.char[])"
    " ORDER BY u.n";

/*
 * VALIDATE CONSTRAINT of a constraint added NOT VALID before this source
 * (check c): the constraint's own check, built from the catalog, run as
 * fl__check_run runs it (it refuses for itself).  Nothing when the
 * constraint is not there or is validated already (the statement does
 * nothing).
 * Before, such a VALIDATE over rows that break it failed at execute
 * (exit 1) instead of being refused with the count (found by an audit).
 */
static int
s_validate(fl_pg_t *pg, const char *qt, const fl_check_t *c,
           const fl_check_opts_t *o, json_t *report, fl_error_t *err)
{
    const char *params[2] = {qt, c->columns[0]};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char **cols = NULL, **refs = NULL;
    fl_check_t k;
    int rc = fl_pg_query(pg, &r, s_validate_sql, 2, params, err);

    if (rc != 0 || r.nrows == 0) {
        fl_pg_result_release(&r);
        return rc;
    }
    memset(&k, 0, sizeof(k));
    k.schema = c->schema;
    k.table = c->table;
    k.only = c->only;
    if (fl_pg_value(&r, 0, 0)[0] == 'c') {
        k.kind = FL_CHECK_CHECK;
        k.expr = (char *)fl_pg_value(&r, 0, 1);
    } else {
        k.kind = FL_CHECK_FOREIGN_KEY;
        cols = fl_calloc(r.nrows + 1, sizeof(char *));
        refs = fl_calloc(r.nrows + 1, sizeof(char *));
        for (size_t i = 0; i < r.nrows; i++) {
            cols[i] = (char *)fl_pg_value(&r, i, 2);
            refs[i] = (char *)fl_pg_value(&r, i, 5);
        }
        k.ref_schema = (char *)fl_pg_value(&r, 0, 3);
        k.ref_table = (char *)fl_pg_value(&r, 0, 4);
        k.columns = cols;
        k.ncolumns = r.nrows;
        k.ref_columns = refs;
        k.nref_columns = r.nrows;
        k.match_full = strcmp(fl_pg_value(&r, 0, 6), "f") == 0;
    }
    k.validates = 1;
    rc = fl__check_run(pg, &k, o, report, err);
    free(cols);
    free(refs);
    fl_pg_result_release(&r);
    return rc;
}

/*
 * The key columns of the index columns[0] of check c (a PRIMARY_INDEX),
 * looked up in the schema of table $1 as PostgreSQL looks it up, that
 * are not NOT NULL yet, in key order.
 */
static const char s_primary_index_sql[] =
    "SELECT a.attname FROM pg_catalog.pg_index i, LATERAL pg_catalog.unnest("
    "   i.indkey::pg_catalog.int2[]) WITH ORDINALITY AS k(attnum, n)"
    " JOIN pg_catalog.pg_attribute a ON a.attnum OPERATOR(pg_catalog.=)"
    "   k.attnum"
    " WHERE i.indrelid OPERATOR(pg_catalog.=)"
    "   pg_catalog.to_regclass($1::pg_catalog.text)"
    "   AND i.indexrelid OPERATOR(pg_catalog.=) (SELECT c.oid FROM"
    "   pg_catalog.pg_class c WHERE c.relname OPERATOR(pg_catalog.=)"
    "   $2::pg_catalog.name AND c.relnamespace OPERATOR(pg_catalog.=)"
    "   (SELECT relnamespace FROM pg_catalog.pg_class WHERE oid"
    "   OPERATOR(pg_catalog.=) i.indrelid))"
    "   AND a.attrelid OPERATOR(pg_catalog.=) i.indrelid"
    "   AND k.n OPERATOR(pg_catalog.<=) i.indnkeyatts AND NOT a.attnotnull"
    " ORDER BY k.n";

/*
 * ADD PRIMARY KEY USING INDEX (check c): the statement makes the index's
 * key columns NOT NULL, so each that is not yet is checked as SET NOT
 * NULL is (it refuses for itself).  Nothing when the index is not there
 * (the statement fails on it, whatever the rows).
 * Before, a NULL in such a column failed at execute (exit 1) instead of
 * being refused with the count.
 */
static int
s_primary_index(fl_pg_t *pg, const char *qt, const fl_check_t *c,
                const fl_check_opts_t *o, json_t *report, fl_error_t *err)
{
    const char *params[2] = {qt, c->columns[0]};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc = fl_pg_query(pg, &r, s_primary_index_sql, 2, params, err);

    for (size_t i = 0; rc == 0 && i < r.nrows; i++) {
        char *col = (char *)fl_pg_value(&r, i, 0);
        fl_check_t k;

        memset(&k, 0, sizeof(k));
        k.kind = FL_CHECK_NOT_NULL;
        k.schema = c->schema;
        k.table = c->table;
        k.columns = &col;
        k.ncolumns = 1;
        k.only = c->only;
        k.pending = c->pending;
        k.npending = c->npending;
        rc = fl__check_run(pg, &k, o, report, err);
    }
    fl_pg_result_release(&r);
    return rc;
}

/*
 * *why (new string) when the statement of check c will do nothing, so
 * that there is nothing to check: ALTER TABLE IF EXISTS of no table,
 * CREATE INDEX IF NOT EXISTS of a name taken in the table's schema.
 */
static int
s_statement_skips(fl_pg_t *pg, const char *qt, const fl_check_t *c,
                  char **why, fl_error_t *err)
{
    const char *params[2] = {qt, c->if_no_relation};
    char *v = NULL;
    int exists = 0, rc = 0;

    *why = NULL;
    if (c->if_table) {
        if ((rc = s_exists(pg, qt, NULL, &exists, err)) != 0)
            return rc;
        if (!exists)
            *why = fl_asprintf("table %s does not exist, and ALTER TABLE IF "
                               "EXISTS does nothing", qt);
        return 0;
    }
    if (c->if_no_relation == NULL)
        return 0;
    rc = fl_pg_query_value(pg, &v,
        "SELECT pg_catalog.count(*) FROM pg_catalog.pg_class WHERE relname"
        " OPERATOR(pg_catalog.=) $2::pg_catalog.name AND relnamespace"
        " OPERATOR(pg_catalog.=) (SELECT relnamespace FROM pg_catalog.pg_class"
        " WHERE oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass("
        "$1::pg_catalog.text))", 2, params, err);
    if (rc == 0 && v && strcmp(v, "0") != 0)
        *why = fl_asprintf("relation \"%s\" exists, and CREATE INDEX IF NOT "
                           "EXISTS does nothing", c->if_no_relation);
    free(v);
    return rc;
}

int
fl__check_run(fl_pg_t *pg, const fl_check_t *c, const fl_check_opts_t *o,
              json_t *report, fl_error_t *err)
{
    int cascades = o->cascades;
    char *qt = fl__qualify(pg, c->schema, c->table);
    /* The table under its own name, so that an expression written
     * "t.col" reads it. */
    char *alias = fl_pg_quote_ident(pg, c->table);
    char *label = fl__check_describe(c);
    char *cols = s_column_list(pg, c->columns, c->ncolumns, NULL);
    char *count_sql = NULL, *sample_sql = NULL, *sample = NULL;
    char *why = NULL;
    const char *hint = NULL;
    s_rel_t rel = {NULL, NULL, 0, 0};
    long long count = 0;
    int exists = 0;
    int rc = 0;

    if ((rc = s_statement_skips(pg, qt, c, &rel.skip, err)) != 0)
        goto cleanup;
    if (rel.skip)
        goto done;
    if (c->kind == FL_CHECK_NOT_NULL || c->kind == FL_CHECK_UNIQUE ||
        c->kind == FL_CHECK_FOREIGN_KEY || c->kind == FL_CHECK_CHECK ||
        c->kind == FL_CHECK_RETYPED) {
        if (c->kind == FL_CHECK_FOREIGN_KEY) {
            free(alias);
            alias = fl_strdup("t");
        }
        rc = s_relation(pg, qt, alias, c, c->columns,
                        c->kind == FL_CHECK_NOT_NULL && c->ncolumns ? 1
                                                       : c->ncolumns, &rel,
                        err);
        if (rc != 0)
            goto cleanup;
        if (rel.skip || rel.holds)
            goto done;
    }
    switch (c->kind) {
    case FL_CHECK_TABLE_EXISTS:
        if ((rc = s_exists(pg, qt, NULL, &exists, err)) != 0)
            goto cleanup;
        if (!exists) {
            why = fl_asprintf("table %s does not exist", qt);
            hint = "Check the table name and the search_path, or the order of "
                   "the migrations.";
        }
        break;
    case FL_CHECK_COLUMN_EXISTS:
        for (size_t i = 0; i < c->ncolumns && !why; i++) {
            if ((rc = s_exists(pg, qt, c->columns[i], &exists, err)) != 0)
                goto cleanup;
            if (!exists)
                why = fl_asprintf("column \"%s\" of table %s does not exist",
                                  c->columns[i], qt);
        }
        hint = "Check the column name, or the order of the migrations.";
        break;
    case FL_CHECK_NOT_NULL: {
        char *col = fl_pg_quote_ident(pg, c->ncolumns ? c->columns[0] : "");
        count_sql = fl_asprintf("SELECT pg_catalog.count(*) FROM %s WHERE %s"
                                " IS NULL", rel.from, col);
        sample_sql = s_sample_sql(pg, qt, rel.from, alias, c, o,
                                  fl_asprintf("%s.%s IS NULL", alias, col));
        free(col);
        if ((rc = s_count_and_sample(pg, c, o, count_sql, sample_sql, &count,
                                &sample, &rel.skip, err)) != 0)
            goto cleanup;
        if (count) {
            why = fl_asprintf("%lld row%s of %s %s NULL in column \"%s\"",
                              count, count == 1 ? "" : "s", qt,
                              count == 1 ? "is" : "are",
                              c->ncolumns ? c->columns[0] : "");
            hint = rel.new_column
                ? "Give the new column a DEFAULT, or add it NULL, fill it, "
                  "and SET NOT NULL afterwards."
                : "Fill the NULLs first (an UPDATE in this migration before "
                  "SET NOT NULL, or an earlier migration).";
        }
        break;
    }
    case FL_CHECK_UNIQUE: {
        /*
         * The keys are computed in a derived table and grouped by its
         * columns: GROUP BY an expression itself would read a constant
         * key, ((true)) or ((1)), as an error or an output position.
         */
        char *keys = s_key_list(pg, c, 1);
        char *shown = s_key_list(pg, c, 0);
        char *where = s_unique_where(c, keys);
        fl_buf_t named = FL_BUF_INIT(0), refs = FL_BUF_INIT(0);
        char *inner = NULL;

        for (size_t i = 0; i < c->ncolumns; i++) {
            if (c->exprs && c->exprs[i]) {
                fl_buf_addf(&named, "%s(%s) AS k%zu", i ? ", " : "",
                            c->exprs[i], i + 1);
            } else {
                char *q = fl_pg_quote_ident(pg, c->columns[i]);
                fl_buf_addf(&named, "%s%s AS k%zu", i ? ", " : "", q, i + 1);
                free(q);
            }
            fl_buf_addf(&refs, "%sk.k%zu", i ? ", " : "", i + 1);
        }
        inner = fl_asprintf("(SELECT %s FROM %s WHERE %s) AS k",
                            fl_buf_str(&named), rel.from, where);
        count_sql = fl_asprintf("SELECT pg_catalog.count(*) FROM (SELECT 1 FROM"
                                " %s GROUP BY %s HAVING pg_catalog.count(*)"
                                " OPERATOR(pg_catalog.>) 1) d", inner,
                                fl_buf_str(&refs));
        /* The duplicated values are the offending columns themselves;
         * redacted, the keys of rows that share them. */
        sample_sql = o->redact_samples
            ? s_unique_keys_sql(pg, qt, rel.from, alias, fl_buf_str(&named),
                                where, fl_buf_str(&refs))
            : fl_asprintf(
            "SELECT ROW(%s)::pg_catalog.text OPERATOR(pg_catalog.||) ' x'"
            " OPERATOR(pg_catalog.||) pg_catalog.count(*)::pg_catalog.text"
            " FROM %s GROUP BY %s HAVING pg_catalog.count(*)"
            " OPERATOR(pg_catalog.>) 1 LIMIT %d", fl_buf_str(&refs), inner,
            fl_buf_str(&refs), S_SAMPLE_ROWS);
        free(where);
        free(inner);
        fl_buf_release(&named);
        fl_buf_release(&refs);
        rc = s_count_and_sample(pg, c, o, count_sql, sample_sql, &count,
                                &sample, &rel.skip, err);
        if (rc == 0 && count) {
            why = fl_asprintf("%lld duplicate group%s in %s(%s)%s%s%s", count,
                              count == 1 ? "" : "s", qt, shown,
                              c->nulls_not_distinct ? " NULLS NOT DISTINCT" : "",
                              c->predicate ? " WHERE " : "",
                              c->predicate ? c->predicate : "");
            hint = "Remove or merge the duplicates before adding the unique "
                   "index or constraint.";
        }
        free(keys);
        free(shown);
        if (rc != 0)
            goto cleanup;
        break;
    }
    case FL_CHECK_FOREIGN_KEY: {
        char *rt = fl__qualify(pg, c->ref_schema, c->ref_table);
        fl_pg_result_t pk = FL_PG_RESULT_INIT;
        char **refcols = c->ref_columns;
        size_t nref = c->nref_columns;
        fl_buf_t cond = FL_BUF_INIT(0), nn = FL_BUF_INIT(0);
        char *conds = NULL, *nns = NULL;
        const char *only = "";
        s_rel_t rrel = {NULL, NULL, 0, 0};

        if ((rc = s_exists(pg, rt, NULL, &exists, err)) != 0) {
            free(rt);
            goto cleanup;
        }
        if (!exists) {
            why = fl_asprintf("the referenced table %s does not exist", rt);
            hint = "Check the table name and the search_path, or the order "
                   "of the statements.";
            free(rt);
            break;
        }
        if (nref == 0) {
            if ((rc = s_primary_key(pg, rt, &pk, err)) != 0) {
                free(rt);
                goto cleanup;
            }
            refcols = pk.values;
            nref = pk.nrows;
        }
        /*
         * A key of the same table may be a column the statement adds.
         * Its own rows, as PostgreSQL's check of a foreign key reads them.
         */
        if (strcmp(rt, qt) == 0)
            rc = s_relation(pg, rt, "r", c, refcols, nref, &rrel, err);
        else if ((rc = s_only(pg, rt, 1, &only, err)) == 0)
            rrel.from = fl_asprintf("%s%s AS r", only, rt);
        if (rc == 0 && (rrel.skip || rrel.holds)) {
            rel.skip = rrel.skip ? rrel.skip : fl_asprintf(
                "the referenced key is filled from a sequence by the "
                "statement");
            rrel.skip = NULL;
        } else if (rc == 0 && nref != c->ncolumns) {
            why = fl_asprintf("foreign key from %s(%s) names %zu column%s but "
                              "%s has %zu key column%s", qt, cols, c->ncolumns,
                              c->ncolumns == 1 ? "" : "s", rt, nref,
                              nref == 1 ? "" : "s");
        } else if (rc == 0) {
            for (size_t i = 0; i < nref && rc == 0; i++) {
                char *a = fl_pg_quote_ident(pg, c->columns[i]);
                char *b = fl_pg_quote_ident(pg, refcols[i]);
                char *ns = NULL, *cast = NULL;
                rc = s_equality(pg, rt, refcols[i], qt, c->columns[i], &ns,
                                &cast, err);
                fl_buf_addf(&cond, "%s(r.%s OPERATOR(%s.=) %st.%s%s%s%s)",
                            i ? " AND " : "", b, ns ? ns : "pg_catalog",
                            cast ? "CAST(" : "", a, cast ? " AS " : "",
                            cast ? cast : "", cast ? ")" : "");
                fl_buf_addf(&nn, "%st.%s IS NOT NULL", i ? " AND " : "", a);
                free(ns);
                free(cast);
                free(a);
                free(b);
            }
            conds = fl_buf_detach(&cond);
            nns = fl_buf_detach(&nn);
        }
        if (rc == 0 && conds && c->match_full && nref > 1) {
            /* MATCH FULL: a key NULL in some columns, not all, breaks it
             * too (before, such rows failed at execute). */
            char *keys = s_column_list(pg, c->columns, c->ncolumns, "t");
            char *more = fl_asprintf("(%s) OR (pg_catalog.num_nulls(%s)"
                                     " OPERATOR(pg_catalog.>) 0 AND"
                                     " pg_catalog.num_nonnulls(%s)"
                                     " OPERATOR(pg_catalog.>) 0)", nns, keys,
                                     keys);
            free(keys);
            free(nns);
            nns = more;
        }
        if (rc == 0 && conds) {
            count_sql = fl_asprintf("SELECT pg_catalog.count(*) FROM %s WHERE"
                                    " (%s) AND NOT EXISTS (SELECT 1 FROM %s"
                                    " WHERE %s)", rel.from, nns, rrel.from,
                                    conds);
            sample_sql = s_sample_sql(pg, qt, rel.from, "t", c, o, fl_asprintf(
                "(%s) AND NOT EXISTS (SELECT 1 FROM %s WHERE %s)", nns,
                rrel.from, conds));
            rc = s_count_and_sample(pg, c, o, count_sql, sample_sql, &count,
                                &sample, &rel.skip, err);
            if (rc == 0 && count) {
                why = fl_asprintf("%lld row%s of %s reference%s no row of %s",
                                  count, count == 1 ? "" : "s", qt,
                                  count == 1 ? "s" : "", rt);
                hint = c->validates
                           ? "Delete or fix the orphan rows first, then "
                             "validate the constraint."
                           : "Delete or fix the orphan rows first, or add "
                             "the constraint NOT VALID and validate it "
                             "later.";
            }
        }
        free(conds);
        free(nns);
        fl_buf_release(&cond);
        fl_buf_release(&nn);
        fl_pg_result_release(&pk);
        s_rel_release(&rrel);
        free(rt);
        if (rc != 0)
            goto cleanup;
        break;
    }
    case FL_CHECK_CHECK:
        count_sql = fl_asprintf("SELECT pg_catalog.count(*) FROM %s WHERE NOT"
                                " (%s)", rel.from, c->expr ? c->expr : "true");
        sample_sql = s_sample_sql(pg, qt, rel.from, alias, c, o, fl_asprintf(
            "NOT (%s)", c->expr ? c->expr : "true"));
        if ((rc = s_count_and_sample(pg, c, o, count_sql, sample_sql, &count,
                                &sample, &rel.skip, err)) != 0)
            goto cleanup;
        if (count) {
            why = fl_asprintf("%lld row%s of %s violate%s CHECK (%s)", count,
                              count == 1 ? "" : "s", qt, count == 1 ? "s" : "",
                              c->expr ? c->expr : "");
            hint = c->validates
                       ? "Fix the rows first, then validate the constraint."
                       : "Fix the rows first, or add the constraint NOT VALID "
                         "and validate it later.";
        }
        break;
    case FL_CHECK_RETYPED:
        /* The table's own constraints, each checked on the new values;
         * the first that fails reports and refuses for itself. */
        if ((rc = s_retyped(pg, qt, c, o, report, err)) != 0)
            goto cleanup;
        break;
    case FL_CHECK_VALIDATE:
        /* The constraint as the catalog defines it: its check refuses for
         * itself. */
        if ((rc = s_validate(pg, qt, c, o, report, err)) != 0)
            goto cleanup;
        break;
    case FL_CHECK_PRIMARY_INDEX:
        /* Each key column of the index as SET NOT NULL checks it. */
        if ((rc = s_primary_index(pg, qt, c, o, report, err)) != 0)
            goto cleanup;
        break;
    case FL_CHECK_DEPENDENTS: {
        fl_pg_result_t r = FL_PG_RESULT_INIT;
        /*
         * With CASCADE the foreign keys go with the table; they are
         * recorded as changes of the migration and re-created by its
         * rollback.  Views are not, so they still refuse it.  A foreign
         * key of a table the same DROP removes goes with that table.
         */
        size_t nparams = 3 + c->ndropped_with;
        const char **params = fl_calloc(nparams, sizeof(char *));
        char **with = fl_calloc(c->ndropped_with + 1, sizeof(char *));
        fl_buf_t b = FL_BUF_INIT(0), others = FL_BUF_INIT(0);
        char *sql = NULL;

        params[0] = qt;
        params[1] = c->ncolumns ? c->columns[0] : NULL;
        params[2] = cascades ? "true" : "false";
        for (size_t i = 0; i < c->ndropped_with; i++) {
            with[i] = fl__qualify(pg, c->dropped_with[i].schema,
                                  c->dropped_with[i].name);
            params[3 + i] = with[i];
            fl_buf_addf(&others, ", pg_catalog.to_regclass($%zu::pg_catalog."
                        "text)::pg_catalog.oid", 4 + i);
        }
        sql = fl_asprintf(
            "SELECT DISTINCT 'view ' OPERATOR(pg_catalog.||)"
            " v.oid::pg_catalog.regclass::pg_catalog.text"
            " FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_rewrite w"
            " ON w.oid OPERATOR(pg_catalog.=) d.objid"
            " JOIN pg_catalog.pg_class v ON v.oid OPERATOR(pg_catalog.=) w.ev_class"
            " WHERE d.classid OPERATOR(pg_catalog.=)"
            "   'pg_catalog.pg_rewrite'::pg_catalog.regclass"
            "   AND d.refobjid OPERATOR(pg_catalog.=)"
            "   pg_catalog.to_regclass($1::pg_catalog.text)"
            "   AND v.oid OPERATOR(pg_catalog.<>) d.refobjid"
            "   AND ($2::pg_catalog.text IS NULL OR d.refobjsubid"
            "   OPERATOR(pg_catalog.=) (SELECT attnum FROM pg_catalog.pg_attribute"
            "   WHERE attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass("
            "   $1::pg_catalog.text) AND attname OPERATOR(pg_catalog.=)"
            "   $2::pg_catalog.name))"
            " UNION ALL"
            " SELECT 'foreign key ' OPERATOR(pg_catalog.||)"
            "   pg_catalog.quote_ident(conname) OPERATOR(pg_catalog.||) ' on '"
            "   OPERATOR(pg_catalog.||)"
            "   conrelid::pg_catalog.regclass::pg_catalog.text"
            " FROM pg_catalog.pg_constraint"
            " WHERE contype OPERATOR(pg_catalog.=) 'f' AND confrelid"
            "   OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1::pg_catalog.text)"
            "   AND NOT $3::pg_catalog.bool"
            "   AND conrelid OPERATOR(pg_catalog.<>) confrelid"
            "   AND NOT (conrelid OPERATOR(pg_catalog.=) ANY"
            "   (ARRAY[0::pg_catalog.oid%s]))"
            "   AND ($2::pg_catalog.text IS NULL OR (SELECT attnum FROM"
            "   pg_catalog.pg_attribute WHERE attrelid OPERATOR(pg_catalog.=)"
            "   pg_catalog.to_regclass($1::pg_catalog.text) AND attname"
            "   OPERATOR(pg_catalog.=) $2::pg_catalog.name)"
            "   OPERATOR(pg_catalog.=) ANY (confkey))"
            /*
             * Anything else that depends on the table or column in the
             * normal way (a generated column, a trigger's or policy's
             * column, a function's SQL body) makes PostgreSQL refuse
             * the DROP without CASCADE, unless it also depends on what
             * goes automatically (a CHECK of the table, an object of a
             * table the same DROP removes), and then it goes with it.
             */
            " UNION ALL"
            " SELECT DISTINCT pg_catalog.pg_describe_object(d.classid, d.objid,"
            "   0)"
            " FROM pg_catalog.pg_depend d"
            " WHERE d.refclassid OPERATOR(pg_catalog.=)"
            "   'pg_catalog.pg_class'::pg_catalog.regclass"
            "   AND d.refobjid OPERATOR(pg_catalog.=)"
            "   pg_catalog.to_regclass($1::pg_catalog.text)"
            "   AND d.deptype OPERATOR(pg_catalog.=) 'n' AND NOT $3::pg_catalog.bool"
            "   AND ($2::pg_catalog.text IS NULL OR d.refobjsubid"
            "   OPERATOR(pg_catalog.=) (SELECT attnum FROM pg_catalog.pg_attribute"
            "   WHERE attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass("
            "   $1::pg_catalog.text) AND attname OPERATOR(pg_catalog.=)"
            "   $2::pg_catalog.name))"
            "   AND d.classid OPERATOR(pg_catalog.<>)"
            "   'pg_catalog.pg_rewrite'::pg_catalog.regclass"
            "   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint k"
            "   WHERE d.classid OPERATOR(pg_catalog.=)"
            "   'pg_catalog.pg_constraint'::pg_catalog.regclass AND k.oid"
            "   OPERATOR(pg_catalog.=) d.objid AND k.contype OPERATOR(pg_catalog.=) 'f')"
            "   AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend a"
            "   WHERE a.classid OPERATOR(pg_catalog.=) d.classid AND a.objid"
            "   OPERATOR(pg_catalog.=) d.objid AND a.deptype IN ('a', 'i')"
            "   AND a.refclassid OPERATOR(pg_catalog.=)"
            "   'pg_catalog.pg_class'::pg_catalog.regclass"
            "   AND CASE WHEN $2::pg_catalog.text IS NULL THEN a.refobjid"
            "   OPERATOR(pg_catalog.=) ANY (ARRAY[d.refobjid%s])"
            "   ELSE a.refobjid OPERATOR(pg_catalog.=) d.refobjid AND"
            "   a.refobjsubid OPERATOR(pg_catalog.=) d.refobjsubid END)"
            /*
             * A whole table's drop takes its row type: what uses that
             * type (a function returning SETOF the table, a column of
             * another table of it) refuses it too.  Before, such a DROP
             * failed at execute (found by an audit).
             */
            " UNION ALL"
            " SELECT DISTINCT pg_catalog.pg_describe_object(d.classid,"
            "   d.objid, d.objsubid)"
            " FROM pg_catalog.pg_depend d"
            " WHERE $2::pg_catalog.text IS NULL AND NOT $3::pg_catalog.bool"
            "   AND d.refclassid OPERATOR(pg_catalog.=)"
            "   'pg_catalog.pg_type'::pg_catalog.regclass"
            "   AND d.refobjid OPERATOR(pg_catalog.=) (SELECT reltype FROM"
            "   pg_catalog.pg_class WHERE oid OPERATOR(pg_catalog.=)"
            "   pg_catalog.to_regclass($1::pg_catalog.text))"
            "   AND d.deptype OPERATOR(pg_catalog.=) 'n'"
            "   AND NOT (d.classid OPERATOR(pg_catalog.=)"
            "   'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid"
            "   OPERATOR(pg_catalog.=) ANY (ARRAY[pg_catalog.to_regclass("
            "   $1::pg_catalog.text)::pg_catalog.oid%s]))"
            " ORDER BY 1", fl_buf_str(&others), fl_buf_str(&others),
            fl_buf_str(&others));
        if ((rc = s_exists(pg, qt, NULL, &exists, err)) == 0 && exists)
            rc = fl_pg_query(pg, &r, sql, (int)nparams, params, err);
        free(sql);
        for (size_t i = 0; i < c->ndropped_with; i++)
            free(with[i]);
        free(with);
        free(params);
        fl_buf_release(&others);
        if (rc != 0 || !exists) {
            /* Not there: the statement itself will say so (or IF EXISTS
             * skips it). */
            fl_buf_release(&b);
            if (rc != 0)
                goto cleanup;
            break;
        }
        count = (long long)r.nrows;
        for (size_t i = 0; i < r.nrows; i++)
            fl_buf_addf(&b, "%s%s", i ? "; " : "", fl_pg_value(&r, i, 0));
        sample = count ? fl_buf_detach(&b) : NULL;
        fl_buf_release(&b);
        fl_pg_result_release(&r);
        if (count) {
            why = fl_asprintf("%lld object%s depend%s on %s%s%s", count,
                              count == 1 ? "" : "s", count == 1 ? "s" : "", qt,
                              c->ncolumns ? " column " : "",
                              c->ncolumns ? c->columns[0] : "");
            hint = "Drop or change the dependent objects explicitly in this "
                   "migration first, so that its down can re-create them.";
        }
        break;
    }
    }
done:
    if (report) {
        json_t *jo = fl_json_pack("{s:s, s:s, s:b}", "check", s_kind_name(c->kind),
                              "target", label, "ok", why == NULL);
        if (rel.skip)
            json_object_set_new(jo, "skipped", json_string(rel.skip));
        if (rel.holds)
            json_object_set_new(jo, "holds", json_string(
                "a column filled from a sequence is distinct and never NULL"));
        if (count)
            json_object_set_new(jo, "count", json_integer(count));
        if (sample)
            json_object_set_new(jo, "sample", json_string(sample));
        if (why)
            json_object_set_new(jo, "problem", json_string(why));
        json_array_append_new(report, jo);
    }
    if (why) {
        rc = FL_ERR(err, FL_EINVAL, "check %s failed: %s", label, why);
        if (sample)
            fl_error_set_detail(err, "%s: %s",
                                c->kind == FL_CHECK_DEPENDENTS ? "Dependents"
                                                               : "Sample", sample);
        if (hint)
            fl_error_set_hint(err, "%s", hint);
    }
cleanup:
    s_rel_release(&rel);
    free(why);
    free(sample);
    free(count_sql);
    free(sample_sql);
    free(cols);
    free(label);
    free(alias);
    free(qt);
    return rc;
}

int
fl__run_checks(fl_pipeline_t *p, const fl_migration_t *m,
               const fl_stmt_list_t *stmts, size_t i, json_t *report,
               fl_error_t *err)
{
    const fl_stmt_t *st = &stmts->items[i];
    int rc = 0;

    if (st->nchecks == 0)
        return 0;
    /* The names in the checks are the migration's, resolved as it sees
     * them at this point (its SET search_path included). */
    if ((rc = fl__session_enter(p->pg, &p->session, err)) != 0)
        return rc;
    return fl__checks_run(p->pg, m ? m->file : NULL, st,
                          p->opts.redact_samples, &p->cancelled, report, err);
}

int
fl__checks_run(fl_pg_t *pg, const char *file, const fl_stmt_t *st,
               int redact_samples, const int *cancel, json_t *report,
               fl_error_t *err)
{
    fl_check_opts_t co = {st->cascades, redact_samples, cancel};
    int rc = 0;

    for (size_t k = 0; k < st->nchecks && rc == 0; k++) {
        rc = fl__check_run(pg, &st->checks[k], &co, report, err);
        /* Where: the statement that would have failed. */
        if (rc == FL_EINVAL && file)
            fl_error_prefix(err, "%s:%d:%d: ", file, st->line, st->column);
    }
    return rc;
}
