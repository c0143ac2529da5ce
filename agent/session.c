/*
 * session.c - the two faces of the pipeline's connection: flotilla's own
 * queries run on a pinned session, the migration's statements run under
 * the settings the migration asks for.
 *
 * Flotilla's queries (ledger, checks' bookkeeping, backups, checksums, the
 * before-commit net, restores) must not depend on anything a tenant or a
 * migration can set: a function planted in a schema on search_path would
 * run in place of a built-in, and the text form of a timestamptz, a date,
 * an interval, a float or a bytea depends on TimeZone, DateStyle,
 * IntervalStyle, extra_float_digits and bytea_output, so a checksum taken
 * under one client's settings would not match under another's.  So the
 * session is pinned when it opens (search_path = pg_catalog, pg_temp the
 * way pg_dump pins it, UTC, ISO dates, ...), at session level.
 *
 * The migration's own statements (up, down, validate, verify) must run as
 * they would under psql: with the settings the connection started with
 * (database and role defaults, PGTZ and friends from the environment),
 * plus whatever the migration itself SETs; but with the search_path the
 * target says (not the database's default, which a tenant may set).  fl__session_enter() switches
 * to those; fl__session_leave() records what they have become (a
 * `SET LOCAL search_path = app` in statement 1 still applies to statement
 * 2) and pins the session again.  Inside a transaction both switches use
 * set_config(..., true), so COMMIT or ROLLBACK puts the pinned session
 * values back by themselves; outside one they are session-level.
 *
 * A statement of a no-transaction migration runs in a transaction of its
 * own, and what it SET LOCAL ends with it, as under psql's autocommit:
 * so there (session_level) enter switches at session level, and after
 * the COMMIT fl__session_settle_step() reads the session's values (the
 * LOCAL ones gone) as the migration's and pins again.  Before, the values
 * read inside the transaction were carried on, and a SET LOCAL
 * search_path held for every later statement of the migration
 * (tests/integration/test_settings_gen.c).
 *
 * States: PINNED (after open, and after leave) and MIGRATION (after
 * enter).  enter and leave are no-ops when already in the state, so a run
 * of statements with nothing of flotilla's in between switches once.
 * fl__session_reset() starts the next migration from the connection's
 * original settings, so one migration's SET never leaks into the next.
 *
 * The role is one of those settings: a migration may SET ROLE so that
 * what it creates belongs to the application's role, and flotilla's own
 * queries still run as the role it connected as (role "none"), the one
 * that owns the ledger.  So is session_authorization (SET SESSION
 * AUTHORIZATION, as pg_dump --use-set-session-authorization writes it):
 * pinned to the user flotilla connected as, the migration's own for its
 * statements.
 */
#include <stdlib.h>
#include <string.h>

#include "agent/pipeline_internal.h"
#include "common/alloc.h"

/*
 * The pinned values, in the order of s_capture and s_apply; NULL: the
 * connection's own (session_authorization: the user flotilla connected
 * as), see fl_session_t.pins.
 */
static const char *const s_pinned[FL_SESSION_NSETTINGS] = {
    "pg_catalog, pg_temp", "UTC", "ISO, YMD", "postgres", "1", "hex", "on",
    NULL, "none", "off", NULL, "read committed", "on", "content",
};

static void
s_values_release(char **v)
{
    for (size_t i = 0; i < FL_SESSION_NSETTINGS; i++)
        fl_free(&v[i]);
}

/*
 * The settings set to $1..$14 in s_pinned's order, transaction-local when
 * $15 is true.  standard_conforming_strings: with it off, a backslash in
 * a literal of flotilla's SQL would be an escape.  session_authorization
 * comes before role: setting it makes role "none" again.  row_security
 * off: a policy neither runs as flotilla's role nor hides rows from it
 * (PostgreSQL refuses the read instead, as pg_dump's).
 * default_transaction_read_only: the connection's, so that a migration
 * that sets it does not make flotilla's own transactions after its COMMIT
 * read-only (its schema record and log rows were lost), while a database
 * its owner made read-only stays so for flotilla too.
 * default_transaction_isolation read committed: under a database default
 * of repeatable read, a transaction's snapshot was taken by flotilla's
 * first query, before its LOCK TABLE, so a backup missed rows committed
 * while flotilla waited for the lock, which the statement then destroyed
 * (found by an audit).  array_nulls on and xmloption content: the text
 * of a backup reads back as it was written (with them off a tenant made
 * every rollback of such a column fail).
 */
#define S_SET_SQL                                                           \
    " pg_catalog.set_config('search_path', $1, $15::pg_catalog.bool),"     \
    " pg_catalog.set_config('TimeZone', $2, $15::pg_catalog.bool),"        \
    " pg_catalog.set_config('DateStyle', $3, $15::pg_catalog.bool),"       \
    " pg_catalog.set_config('IntervalStyle', $4, $15::pg_catalog.bool),"   \
    " pg_catalog.set_config('extra_float_digits', $5,"                     \
    " $15::pg_catalog.bool),"                                              \
    " pg_catalog.set_config('bytea_output', $6, $15::pg_catalog.bool),"    \
    " pg_catalog.set_config('standard_conforming_strings', $7,"            \
    " $15::pg_catalog.bool),"                                              \
    " pg_catalog.set_config('session_authorization', $8,"                  \
    " $15::pg_catalog.bool),"                                              \
    " pg_catalog.set_config('role', $9, $15::pg_catalog.bool),"            \
    " pg_catalog.set_config('row_security', $10, $15::pg_catalog.bool),"    \
    " pg_catalog.set_config('default_transaction_read_only', $11,"          \
    " $15::pg_catalog.bool),"                                              \
    " pg_catalog.set_config('default_transaction_isolation', $12,"          \
    " $15::pg_catalog.bool),"                                              \
    " pg_catalog.set_config('array_nulls', $13, $15::pg_catalog.bool),"     \
    " pg_catalog.set_config('xmloption', $14, $15::pg_catalog.bool)"

/*
 * lock_timeout to $16 and statement_timeout to $17 ('' leaves one as it
 * is), after S_SET_SQL and with its $15.  Spelled out: leave runs it with
 * the migration's search_path.
 */
#define S_TIMEOUTS_SQL                                                      \
    ", CASE WHEN $16::pg_catalog.text OPERATOR(pg_catalog.<>) '' THEN"     \
    " pg_catalog.set_config('lock_timeout', $16, $15::pg_catalog.bool)"    \
    " END, CASE WHEN $17::pg_catalog.text OPERATOR(pg_catalog.<>) '' THEN" \
    " pg_catalog.set_config('statement_timeout', $17,"                     \
    " $15::pg_catalog.bool) END"

#define S_NPARAMS (FL_SESSION_NSETTINGS + 3)

/* The values of a row of s_capture's shape into v and *schemas. */
static void
s_keep_values(const fl_pg_result_t *r, char **v, char **schemas)
{
    const char *val = NULL;

    for (size_t i = 0; i < FL_SESSION_NSETTINGS; i++) {
        val = fl_pg_value(r, 0, i);
        free(v[i]);
        v[i] = fl_strdup(val ? val : "");
    }
    val = fl_pg_value(r, 0, FL_SESSION_NSETTINGS);
    free(*schemas);
    *schemas = fl_strdup(val ? val : "");
}

/* The timeouts a row of s_capture_and_pin_sql's shape read. */
static void
s_keep_timeouts(const fl_pg_result_t *r, fl_session_t *s)
{
    const char *lt = fl_pg_value(r, 0, FL_SESSION_NSETTINGS + 1);
    const char *st = fl_pg_value(r, 0, FL_SESSION_NSETTINGS + 2);

    free(s->mig_lt);
    free(s->mig_st);
    s->mig_lt = fl_strdup(lt ? lt : "");
    s->mig_st = fl_strdup(st ? st : "");
}

/*
 * Reads the current value of every setting into v and the effective
 * schema list (current_schemas(true), comma-separated) into *schemas,
 * replacing what they held, and statement_timeout into *st.
 */
static int
s_capture(fl_pg_t *pg, char **v, char **schemas, char **st, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc = fl_pg_query(pg, &r,
        "SELECT pg_catalog.current_setting('search_path'),"
        " pg_catalog.current_setting('TimeZone'),"
        " pg_catalog.current_setting('DateStyle'),"
        " pg_catalog.current_setting('IntervalStyle'),"
        " pg_catalog.current_setting('extra_float_digits'),"
        " pg_catalog.current_setting('bytea_output'),"
        " pg_catalog.current_setting('standard_conforming_strings'),"
        " pg_catalog.current_setting('session_authorization'),"
        " pg_catalog.current_setting('role'),"
        " pg_catalog.current_setting('row_security'),"
        " pg_catalog.current_setting('default_transaction_read_only'),"
        " pg_catalog.current_setting('default_transaction_isolation'),"
        " pg_catalog.current_setting('array_nulls'),"
        " pg_catalog.current_setting('xmloption'),"
        " pg_catalog.array_to_json(pg_catalog.current_schemas(true))::pg_catalog.text,"
        " pg_catalog.current_setting('statement_timeout')",
        0, NULL, err);

    if (rc != 0)
        return rc;
    s_keep_values(&r, v, schemas);
    free(*st);
    *st = fl_strdup(fl_pg_value(&r, 0, FL_SESSION_NSETTINGS + 1)
                        ? fl_pg_value(&r, 0, FL_SESSION_NSETTINGS + 1)
                        : "");
    fl_pg_result_release(&r);
    return 0;
}

/* s_capture, then s_apply of the pinned values, in one statement. */
static const char s_capture_and_pin_sql[] =
        "WITH cur AS MATERIALIZED (SELECT"
        " pg_catalog.current_setting('search_path') AS a,"
        " pg_catalog.current_setting('TimeZone') AS b,"
        " pg_catalog.current_setting('DateStyle') AS c,"
        " pg_catalog.current_setting('IntervalStyle') AS d,"
        " pg_catalog.current_setting('extra_float_digits') AS e,"
        " pg_catalog.current_setting('bytea_output') AS f,"
        " pg_catalog.current_setting('standard_conforming_strings') AS f0,"
        " pg_catalog.current_setting('session_authorization') AS f1,"
        " pg_catalog.current_setting('role') AS f2,"
        " pg_catalog.current_setting('row_security') AS f3,"
        " pg_catalog.current_setting('default_transaction_read_only') AS f4,"
        " pg_catalog.current_setting('default_transaction_isolation') AS f5,"
        " pg_catalog.current_setting('array_nulls') AS f6,"
        " pg_catalog.current_setting('xmloption') AS f7,"
        " pg_catalog.array_to_json(pg_catalog.current_schemas(true))"
        "::pg_catalog.text AS g,"
        " pg_catalog.current_setting('lock_timeout') AS h,"
        " pg_catalog.current_setting('statement_timeout') AS i)"
        " SELECT cur.a, cur.b, cur.c, cur.d, cur.e, cur.f, cur.f0, cur.f1,"
        " cur.f2, cur.f3, cur.f4, cur.f5, cur.f6, cur.f7, cur.g,"
        " cur.h, cur.i," S_SET_SQL S_TIMEOUTS_SQL " FROM cur";

/*
 * The pins, and the capture with the pins: prepared once a connection
 * (they run several times a migration).
 */
static const char s_set_sql[] = "SELECT" S_SET_SQL S_TIMEOUTS_SQL;
#define S_SET_NAME "flotilla_session_set"
#define S_LEAVE_NAME "flotilla_session_leave"

/*
 * The parameters of S_SET_SQL S_TIMEOUTS_SQL: the settings' vals, local,
 * then timeouts lt and st.
 */
static void
s_set_params(const char **p, const char *const *vals, int local,
             const char *lt, const char *st)
{
    for (size_t i = 0; i < FL_SESSION_NSETTINGS; i++)
        p[i] = vals[i];
    p[FL_SESSION_NSETTINGS] = local ? "true" : "false";
    p[FL_SESSION_NSETTINGS + 1] = lt ? lt : "";
    p[FL_SESSION_NSETTINGS + 2] = st ? st : "";
}

/*
 * Reads what the migration left (settings, schemas, timeouts) and pins
 * flotilla's, with its own timeouts for the migration under way.
 */
static int
s_capture_and_pin(fl_pg_t *pg, fl_session_t *s, int local, fl_error_t *err)
{
    const char *p[S_NPARAMS];
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    s_set_params(p, s->pins, local, s->own_lt, s->own_st);
    rc = fl_pg_query_prepared(pg, &r, S_LEAVE_NAME, s_capture_and_pin_sql,
                              S_NPARAMS, p, err);
    if (rc != 0)
        return rc;
    s_keep_values(&r, s->migration, &s->schemas);
    s_keep_timeouts(&r, s);
    fl_pg_result_release(&r);
    return 0;
}

/*
 * Sets every setting to vals[i] and the timeouts to lt and st ('' or
 * NULL: as they are), transaction-local when local.
 */
static int
s_apply(fl_pg_t *pg, const char *const *vals, int local, const char *lt,
        const char *st, fl_error_t *err)
{
    const char *p[S_NPARAMS];
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    s_set_params(p, vals, local, lt, st);
    rc = fl_pg_query_prepared(pg, &r, S_SET_NAME, s_set_sql, S_NPARAMS, p,
                              err);
    fl_pg_result_release(&r);
    return rc;
}

int
fl__session_pin(fl_pg_t *pg, fl_session_t *s, const char *search_path,
                fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *p[1] = {search_path};
    int rc;

    memset(s, 0, sizeof(*s));
    /*
     * The originals are read before anything is pinned: the migration's
     * statements run under them (TimeZone from PGTZ, a database's
     * DateStyle), except search_path.  That one is flotilla's choice, not
     * the database's: a tenant who owns the database can set its default
     * search_path, and would choose which of its functions the migration
     * calls.  fl_pg_open has already pinned it for flotilla's queries.
     */
    if ((rc = s_capture(pg, s->original, &s->original_schemas, &s->run_st,
                        err)) != 0)
        return rc;
    free(s->original[0]);
    s->original[0] = fl_strdup(search_path);
    for (size_t i = 0; i < FL_SESSION_NSETTINGS; i++)
        s->pins[i] = s_pinned[i] ? s_pinned[i] : s->original[i];
    /* The schemas that path gives the migration's names, for resolving. */
    rc = fl_pg_query(pg, &r, "SELECT pg_catalog.set_config('search_path', $1,"
                     " false)", 1, p, err);
    fl_pg_result_release(&r);
    fl_free(&s->original_schemas);
    if (rc == 0)
        rc = fl_pg_query_value(pg, &s->original_schemas, "SELECT"
            " pg_catalog.array_to_json(pg_catalog.current_schemas(true))"
            "::pg_catalog.text", 0, NULL, err);
    if (rc == 0)
        rc = s_apply(pg, s->pins, 0, NULL, NULL, err);
    if (rc != 0)
        return rc;
    fl__session_reset(s);
    return 0;
}

void
fl__session_reset(fl_session_t *s)
{
    s_values_release(s->migration);
    for (size_t i = 0; i < FL_SESSION_NSETTINGS; i++)
        s->migration[i] = fl_strdup(s->original[i] ? s->original[i] : "");
    free(s->schemas);
    s->schemas = fl_strdup(s->original_schemas ? s->original_schemas : "");
    /* Its statements start under flotilla's timeouts for it. */
    fl_free(&s->mig_lt);
    fl_free(&s->mig_st);
}

void
fl__session_mark(const fl_session_t *s, fl_session_mark_t *out)
{
    for (size_t i = 0; i < FL_SESSION_NSETTINGS; i++)
        out->migration[i] = fl_strdup_or_null(s->migration[i]);
    out->schemas = fl_strdup_or_null(s->schemas);
    out->mig_lt = fl_strdup_or_null(s->mig_lt);
    out->mig_st = fl_strdup_or_null(s->mig_st);
}

void
fl__session_restore(fl_session_t *s, fl_session_mark_t *mark)
{
    s_values_release(s->migration);
    for (size_t i = 0; i < FL_SESSION_NSETTINGS; i++) {
        s->migration[i] = mark->migration[i];
        mark->migration[i] = NULL;
    }
    free(s->schemas);
    free(s->mig_lt);
    free(s->mig_st);
    s->schemas = mark->schemas;
    s->mig_lt = mark->mig_lt;
    s->mig_st = mark->mig_st;
    mark->schemas = mark->mig_lt = mark->mig_st = NULL;
}

void
fl__session_mark_release(fl_session_mark_t *mark)
{
    s_values_release(mark->migration);
    fl_free(&mark->schemas);
    fl_free(&mark->mig_lt);
    fl_free(&mark->mig_st);
}

void
fl__session_release(fl_session_t *s)
{
    s_values_release(s->original);
    s_values_release(s->migration);
    fl_free(&s->schemas);
    fl_free(&s->original_schemas);
    fl_free(&s->mig_lt);
    fl_free(&s->mig_st);
    fl_free(&s->run_st);
    s->in_migration = 0;
}

int
fl__session_enter(fl_pg_t *pg, fl_session_t *s, fl_error_t *err)
{
    int rc;

    if (s->in_migration)
        return 0;
    /* The timeouts its statements SET (or LOCAL) hold for its next ones. */
    rc = s_apply(pg, (const char *const *)s->migration,
                 fl_pg_in_transaction(pg) && !s->session_level, s->mig_lt,
                 s->mig_st, err);
    if (rc == 0)
        s->in_migration = s->entered = 1;
    return rc;
}

/*
 * What a migration leaves on the session besides its settings, as the
 * statements that remove it: its held cursors (the unnamed portal listed
 * is this query's own), channels, SQL prepared
 * statements (flotilla's own are prepared through the protocol, not
 * from_sql), and its temporary relations, types and routines (the
 * temporary schema is searched first for relation and type names, so a
 * temporary "items" would take the next migration's INSERT INTO items),
 * found through their dependency on the temporary schema (an index scan
 * of pg_depend, where a scan of pg_class or pg_proc would grow with the
 * database; a relation's row type and an array type have none and go
 * with what they belong to).  Flotilla's own temporary tables (the
 * schema snapshots, agent/schema.c) stay.  Names are quoted by format('%I') and regprocedure; IF EXISTS
 * and CASCADE because dropping one may drop another (a view on a table).
 * And its temporary operators, collations, conversions and text search
 * configurations and dictionaries (the same dependency; pg_identify_object
 * names each as its DROP takes it), and its
 * session-level advisory locks (between migrations no
 * transaction holds one), each released as many times as it was taken,
 * but the target's lock ($1 the target, FL__OWN_LOCK): a migration that
 * took another target's key of flotilla's class would keep that target's
 * runs waiting.
 */
static const char s_leftovers_sql[] =
    "WITH t AS MATERIALIZED (SELECT d.classid, d.objid"
    " FROM pg_catalog.pg_depend d"
    " WHERE d.refclassid OPERATOR(pg_catalog.=)"
    " 'pg_catalog.pg_namespace'::pg_catalog.regclass"
    " AND d.refobjid OPERATOR(pg_catalog.=) pg_catalog.pg_my_temp_schema()"
    " AND d.refobjsubid OPERATOR(pg_catalog.=) 0"
    " AND d.deptype OPERATOR(pg_catalog.=) 'n')"
    " SELECT x.s FROM ("
    " SELECT 1 AS o, 0::pg_catalog.oid AS k, 'CLOSE ALL' AS s"
    " WHERE EXISTS (SELECT FROM pg_catalog.pg_cursors c"
    " WHERE c.name OPERATOR(pg_catalog.<>) '')"
    " UNION ALL SELECT 2, 0, 'UNLISTEN *'"
    " WHERE EXISTS (SELECT FROM pg_catalog.pg_listening_channels())"
    " UNION ALL SELECT 3, 0, pg_catalog.format('DEALLOCATE %I', p.name)"
    " FROM pg_catalog.pg_prepared_statements p WHERE p.from_sql"
    " UNION ALL SELECT 4, c.oid, pg_catalog.format('DROP %s IF EXISTS"
    " pg_temp.%I CASCADE', CASE c.relkind WHEN 'v' THEN 'VIEW'"
    " WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'"
    " WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, c.relname)"
    " FROM t JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=)"
    " t.objid WHERE t.classid OPERATOR(pg_catalog.=)"
    " 'pg_catalog.pg_class'::pg_catalog.regclass"
    " AND c.relname OPERATOR(pg_catalog.<>) ALL ('{flotilla_schema_snap,"
    "flotilla_schema_sig,flotilla_schema_gen}'::pg_catalog.name[])"
    " UNION ALL SELECT 5, y.oid, pg_catalog.format('DROP TYPE IF EXISTS"
    " pg_temp.%I CASCADE', y.typname)"
    " FROM t JOIN pg_catalog.pg_type y ON y.oid OPERATOR(pg_catalog.=)"
    " t.objid WHERE t.classid OPERATOR(pg_catalog.=)"
    " 'pg_catalog.pg_type'::pg_catalog.regclass"
    " AND y.typtype OPERATOR(pg_catalog.=) ANY"
    " ('{c,d,e,r}'::pg_catalog.\"char\"[])"
    " UNION ALL SELECT 6, f.oid, pg_catalog.format('DROP ROUTINE IF EXISTS"
    " %s CASCADE', f.oid::pg_catalog.regprocedure)"
    " FROM t JOIN pg_catalog.pg_proc f ON f.oid OPERATOR(pg_catalog.=)"
    " t.objid WHERE t.classid OPERATOR(pg_catalog.=)"
    " 'pg_catalog.pg_proc'::pg_catalog.regclass"
    " UNION ALL SELECT 7, 0, pg_catalog.format('DO $fl$BEGIN WHILE"
    " pg_catalog.pg_advisory_unlock%s(%s) LOOP END LOOP; END$fl$',"
    " CASE WHEN l.mode OPERATOR(pg_catalog.=) 'ShareLock' THEN '_shared'"
    " ELSE '' END, CASE WHEN l.objsubid OPERATOR(pg_catalog.=) 1"
    " THEN ((l.classid::pg_catalog.int8 OPERATOR(pg_catalog.<<) 32)"
    " OPERATOR(pg_catalog.|) l.objid::pg_catalog.int8)::pg_catalog.text"
    " ELSE pg_catalog.format('%s, %s', l.classid::pg_catalog.int4,"
    " l.objid::pg_catalog.int4) END)"
    " FROM pg_catalog.pg_locks l"
    " WHERE l.locktype OPERATOR(pg_catalog.=) 'advisory' AND l.granted"
    " AND l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid()"
    " AND NOT (" FL__OWN_LOCK("l") ")"
    " UNION ALL SELECT 8, t.objid, pg_catalog.format('DROP %s IF EXISTS %s"
    " CASCADE', pg_catalog.upper(i.type), i.identity)"
    " FROM t, LATERAL pg_catalog.pg_identify_object(t.classid, t.objid, 0) i"
    " WHERE t.classid OPERATOR(pg_catalog.=) ANY (ARRAY["
    "'pg_catalog.pg_operator', 'pg_catalog.pg_collation',"
    " 'pg_catalog.pg_conversion', 'pg_catalog.pg_ts_config',"
    " 'pg_catalog.pg_ts_dict']::pg_catalog.regclass[]::pg_catalog.oid[])) x"
    " ORDER BY x.o, x.k";

int
fl__session_reset_all(fl_pg_t *pg, fl_session_t *s, const char *target,
                      fl_error_t *err)
{
    const char *params[1] = {target};
    fl_pg_step_t steps[5] = {{NULL, "RESET ALL", 0, NULL, NULL}};
    fl_pg_result_t left = FL_PG_RESULT_INIT;
    int rc = 0;

    if (s->entered) {
        /*
         * A setting outside the pins (session_replication_role = replica,
         * which turns foreign keys off) would hold for the next migration;
         * so would its sequences' currval and what s_leftovers_sql finds.
         * One round trip, and one more to remove what it found.
         */
        fl__session_repin_step(s, &steps[1]);
        steps[2] = (fl_pg_step_t){NULL, "DISCARD SEQUENCES", 0, NULL, NULL};
        steps[3] = (fl_pg_step_t){"flotilla_session_leftovers",
                                  s_leftovers_sql, 1, params, &left};
        /* RESET ALL undid them too. */
        steps[4] = (fl_pg_step_t){NULL, fl_pg_liveness_sql(pg), 0, NULL,
                                  NULL};
        rc = fl_pg_batch(pg, steps, 5, err);
        if (rc == 0 && left.nrows > 0) {
            fl_pg_step_t *drop = fl_calloc(left.nrows, sizeof(*drop));

            for (size_t i = 0; i < left.nrows; i++)
                drop[i].sql = fl_pg_value(&left, i, 0);
            rc = fl_pg_batch(pg, drop, left.nrows, err);
            free(drop);
        }
        fl_pg_result_release(&left);
        if (rc == 0)
            s->entered = 0;
        else
            fl_error_prefix(err, "could not put the session back as it was "
                            "before the migration before: ");
    }
    if (rc == 0)
        fl__session_reset(s);
    return rc;
}

int
fl__session_leave(fl_pg_t *pg, fl_session_t *s, fl_error_t *err)
{
    int rc;

    if (!s->in_migration)
        return 0;
    /*
     * Read what the migration's statements left (its SET LOCAL
     * search_path applies to its next statement and to how flotilla
     * resolves that statement's table names), then pin: one round trip,
     * the values read in a CTE that is scanned before the pins run.
     */
    rc = s_capture_and_pin(pg, s, fl_pg_in_transaction(pg), err);
    if (rc == 0)
        s->in_migration = 0;
    return rc;
}

size_t
fl__session_leave_step(fl_session_t *s, int local, fl_pg_step_t *out,
                       fl_pg_result_t *res)
{
    if (!s->in_migration)
        return 0;
    s_set_params(s->repin, s->pins, local, s->own_lt, s->own_st);
    out->name = S_LEAVE_NAME;
    out->sql = s_capture_and_pin_sql;
    out->nparams = S_NPARAMS;
    out->params = s->repin;
    out->out = res;
    return 1;
}

void
fl__session_left(fl_session_t *s, const fl_pg_result_t *res)
{
    s_keep_values(res, s->migration, &s->schemas);
    s_keep_timeouts(res, s);
    s->in_migration = 0;
}

/*
 * The pins at session level with the run's timeouts, as one step; with
 * capture, after reading the settings into res (fl__session_settled).
 */
static void
s_run_pins_step(fl_session_t *s, fl_pg_step_t *out, int capture,
                fl_pg_result_t *res)
{
    s_set_params(s->repin, s->pins, 0, s->run_lt, s->run_st);
    s->in_migration = 0;
    out->name = capture ? S_LEAVE_NAME : S_SET_NAME;
    out->sql = capture ? s_capture_and_pin_sql : s_set_sql;
    out->nparams = S_NPARAMS;
    out->params = s->repin;
    out->out = res;
}

void
fl__session_repin_step(fl_session_t *s, fl_pg_step_t *out)
{
    /* A timeout the migration SET at session level outlives its COMMIT. */
    s_run_pins_step(s, out, 0, NULL);
}

void
fl__session_settle_step(fl_session_t *s, fl_pg_step_t *out,
                        fl_pg_result_t *res)
{
    s_run_pins_step(s, out, 1, res);
}

void
fl__session_settled(fl_session_t *s, const fl_pg_result_t *res)
{
    /* Not the timeouts: flotilla sets its own for each statement. */
    s_keep_values(res, s->migration, &s->schemas);
}

int
fl__session_repin(fl_pg_t *pg, fl_session_t *s, fl_error_t *err)
{
    s->in_migration = 0;
    return s_apply(pg, s->pins, 0, s->run_lt, s->run_st, err);
}

const char *
fl__session_schemas(const fl_session_t *s)
{
    return s->schemas;
}
