/*
 * Security of the pipeline against a hostile tenant (issue 9), through the
 * real `flotilla` executable: a tenant who owns its database plants
 * functions and operators in the schemas it can write, with the names of
 * the built-ins flotilla uses, and sets its database's default
 * search_path to reach them first; no command of flotilla's, run by a
 * superuser, may ever call one.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent/pg.h"
#include "agent/source.h"
#include "common/alloc.h"
#include "proto/bundle.h"
#include "testsupport.h"

typedef fl_test_ws_t s_env;

/*
 * Every built-in flotilla's own SQL calls, shadowed by the tenant: the
 * same signature (chosen when public comes first on the path), or a
 * better-matching one (chosen over pg_catalog's wherever public is on the
 * path at all, the CVE-2018-1058 trick).  Each records its call.
 */
static const char s_traps[] =
    "CREATE TABLE public.side_effects (what text);"
    "GRANT INSERT ON public.side_effects TO PUBLIC;"
    "CREATE FUNCTION public.trap(what text) RETURNS void LANGUAGE plpgsql"
    " AS $$BEGIN INSERT INTO public.side_effects VALUES (what); END$$;"
    "CREATE FUNCTION public.hashtext(n name) RETURNS int LANGUAGE plpgsql"
    " AS $$BEGIN PERFORM public.trap('hashtext'); RETURN 1; END$$;"
    "CREATE FUNCTION public.hashtext(t text) RETURNS int LANGUAGE plpgsql"
    " AS $$BEGIN PERFORM public.trap('hashtext'); RETURN 1; END$$;"
    "CREATE FUNCTION public.hashtextextended(t text, s bigint) RETURNS bigint"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('hashtextextended');"
    " RETURN 1; END$$;"
    "CREATE FUNCTION public.to_regclass(t text) RETURNS regclass"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('to_regclass');"
    " RETURN NULL; END$$;"
    "CREATE FUNCTION public.format(f text, a text) RETURNS text"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('format');"
    " RETURN f; END$$;"
    "CREATE FUNCTION public.quote_ident(t text) RETURNS text"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('quote_ident');"
    " RETURN t; END$$;"
    "CREATE FUNCTION public.quote_ident(n name) RETURNS text"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('quote_ident');"
    " RETURN n; END$$;"
    "CREATE FUNCTION public.sha256(b bytea) RETURNS bytea LANGUAGE plpgsql"
    " AS $$BEGIN PERFORM public.trap('sha256'); RETURN b; END$$;"
    "CREATE FUNCTION public.clock_timestamp() RETURNS timestamptz"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('clock_timestamp');"
    " RETURN now(); END$$;"
    "CREATE FUNCTION public.current_setting(t text) RETURNS text"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('current_setting');"
    " RETURN ''; END$$;"
    "CREATE FUNCTION public.set_config(a text, b text, c boolean)"
    " RETURNS text LANGUAGE plpgsql AS"
    " $$BEGIN PERFORM public.trap('set_config'); RETURN b; END$$;"
    "CREATE FUNCTION public.pg_try_advisory_lock(a int, b int)"
    " RETURNS boolean LANGUAGE plpgsql AS"
    " $$BEGIN PERFORM public.trap('pg_try_advisory_lock'); RETURN true;"
    " END$$;"
    "CREATE FUNCTION public.count_trap(s bigint, v anyelement) RETURNS bigint"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('count');"
    " RETURN s + 1; END$$;"
    "CREATE AGGREGATE public.count(anyelement) (sfunc = public.count_trap,"
    " stype = bigint, initcond = '0');"
    "CREATE FUNCTION public.text_eq(a text, b text) RETURNS boolean"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('=');"
    " RETURN a OPERATOR(pg_catalog.=) b; END$$;"
    "CREATE OPERATOR public.= (leftarg = text, rightarg = text,"
    " function = public.text_eq);"
    "CREATE FUNCTION public.name_eq(a name, b name) RETURNS boolean"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('=');"
    " RETURN a OPERATOR(pg_catalog.=) b; END$$;"
    "CREATE OPERATOR public.= (leftarg = name, rightarg = name,"
    " function = public.name_eq);"
    /* And those the schema census compares with (agent/schema.c). */
    "CREATE FUNCTION public.oid_eq(a oid, b oid) RETURNS boolean"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('= oid');"
    " RETURN a OPERATOR(pg_catalog.=) b; END$$;"
    "CREATE OPERATOR public.= (leftarg = oid, rightarg = oid,"
    " function = public.oid_eq);"
    "CREATE FUNCTION public.name_ne(a name, b name) RETURNS boolean"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('<> name');"
    " RETURN a OPERATOR(pg_catalog.<>) b; END$$;"
    "CREATE OPERATOR public.<> (leftarg = name, rightarg = name,"
    " function = public.name_ne);"
    "CREATE FUNCTION public.int_plus(a int, b int) RETURNS int"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('+ int');"
    " RETURN a OPERATOR(pg_catalog.+) b; END$$;"
    "CREATE OPERATOR public.+ (leftarg = int, rightarg = int,"
    " function = public.int_plus);"
    /* And those a rollback's reads of the rows written since compare. */
    "CREATE FUNCTION public.int2_gt(a smallint, b int) RETURNS boolean"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('> smallint');"
    " RETURN a OPERATOR(pg_catalog.>) b; END$$;"
    "CREATE OPERATOR public.> (leftarg = smallint, rightarg = int,"
    " function = public.int2_gt);"
    "CREATE FUNCTION public.int_gt(a int, b int) RETURNS boolean"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('> int');"
    " RETURN a OPERATOR(pg_catalog.>) b; END$$;"
    "CREATE OPERATOR public.> (leftarg = int, rightarg = int,"
    " function = public.int_gt);";

static int
s_setup(void **state)
{
    s_env *e = fl_calloc(1, sizeof(*e));
    char *sql = NULL;

    fl_test_ws_open(e, "sec");
    /* The tenant: not a superuser, owner of its database (so of public). */
    fl_test_exec(e->conn,
        "DO $$ BEGIN CREATE ROLE fl_tenant;"
        " EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$");
    sql = fl_asprintf("ALTER DATABASE %s OWNER TO fl_tenant", e->db.name);
    fl_test_exec(e->conn, sql);
    free(sql);
    fl_test_exec(e->conn, "SET ROLE fl_tenant");
    fl_test_exec(e->conn,
        "CREATE TABLE public.items (id int PRIMARY KEY, v text, old text);"
        "INSERT INTO public.items SELECT g, 'v' || g, 'o' || g"
        " FROM generate_series(1, 20) g;");
    fl_test_exec(e->conn, s_traps);
    sql = fl_asprintf("ALTER DATABASE %s SET search_path = public, pg_catalog",
                      e->db.name);
    fl_test_exec(e->conn, sql);
    free(sql);
    fl_test_exec(e->conn, "RESET ROLE");
    *state = e;
    return 0;
}

#define s_write fl_test_ws_write

/* Runs a flotilla command; expects exit status; fails with its output. */
static void
s_flotilla(s_env *e, int status, const char *says, const char *cmd,
           const char *const *extra, int with_source)
{
    fl_test_proc_t r;

    fl_test_ws_flotilla(e, &r, cmd, extra, with_source);
    fl_test_expect(&r, status, says);
    fl_test_proc_release(&r);
}

/* No trap ran: the side_effects table is empty. */
static void
s_assert_no_side_effect(s_env *e, const char *after)
{
    char *v = fl_test_query_value(e->conn,
        "SELECT coalesce(string_agg(DISTINCT what, ','), '')"
        " FROM public.side_effects");

    if (v == NULL || *v != '\0')
        fail_msg("after %s, the tenant's functions ran: %s", after,
                 v ? v : "NULL");
    free(v);
}

#define S_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

static void
test_tenant_functions_never_run_in_any_command(void **state)
{
    s_env *e = *state;

    /* The traps are armed: a session on the default path falls in. */
    {
        PGconn *c = fl_test_db_connect(&e->db);
        char *v = fl_test_query_value(c, "SELECT hashtext(current_database())");
        free(v);
        PQfinish(c);
        v = fl_test_query_value(e->conn, "SELECT count(*) FROM"
                                         " public.side_effects");
        if (v == NULL || strcmp(v, "0") == 0)
            fail_msg("the traps are not armed: the test would prove nothing");
        free(v);
        fl_test_exec(e->conn, "TRUNCATE public.side_effects");
    }
    s_write(e, "0001_items.sql",
            "-- flotilla:options allow=ban-drop-column the app stopped reading it\n"
            "-- flotilla:up\n"
            "CREATE TABLE public.tags (id int PRIMARY KEY, name text);\n"
            "UPDATE public.items SET v = 'changed' WHERE id <= 5;\n"
            "DELETE FROM public.items WHERE id > 15;\n"
            "ALTER TABLE public.items DROP COLUMN old;\n"
            /* What follows it in flotilla must not see the traps. */
            "SET search_path = public, pg_catalog;\n"
            "-- flotilla:down\n"
            "ALTER TABLE public.items ADD COLUMN old text;\n"
            /* A change of rows after a change of the table: kept rows. */
            "UPDATE public.items SET v = 'back' WHERE id"
            " OPERATOR(pg_catalog.<=) 5;\n"
            "DROP TABLE public.tags;\n");
    s_flotilla(e, 0, NULL, "plan", NULL, 1);
    s_assert_no_side_effect(e, "plan");
    s_flotilla(e, 0, NULL, "apply", S_ARGS("--backup-dump-above", "1"), 1);
    s_assert_no_side_effect(e, "apply");
    s_flotilla(e, 0, NULL, "status", NULL, 1);
    s_flotilla(e, 0, NULL, "log", NULL, 0);
    s_flotilla(e, 0, NULL, "backups", S_ARGS("list"), 0);
    s_assert_no_side_effect(e, "status, log and backups list");
    s_flotilla(e, 0, NULL, "rollback", S_ARGS("--last"), 1);
    s_assert_no_side_effect(e, "rollback");
    s_flotilla(e, 0, NULL, "apply", NULL, 1);
    s_flotilla(e, 0, NULL, "backups", S_ARGS("prune", "--older-than", "0s"), 0);
    s_assert_no_side_effect(e, "a second apply and backups prune");
    /* And the migration did run, as the tenant's schema expects. */
    {
        char *v = fl_test_query_value(e->conn, "SELECT count(*) FROM"
                                               " public.items");
        assert_string_equal(v, "15");
        free(v);
    }
}

/*
 * Rollback never runs text read back from the ledger: down comes from the
 * source, whose migration must be the one applied; the ledger's copy runs
 * only with --down-from-ledger, said in the log.
 */
static void
test_rollback_runs_down_from_the_source_not_the_ledger(void **state)
{
    s_env *e = *state;
    char *v = NULL;

    s_write(e, "0001_tags.sql",
            "-- flotilla:up\nCREATE TABLE public.tags (id int);\n"
            "-- flotilla:down\nDROP TABLE public.tags;\n");
    s_flotilla(e, 0, NULL, "apply", NULL, 1);
    /* Someone who can write the ledger plants a down of their own. */
    fl_test_exec(e->conn, "UPDATE flotilla.schema_migrations SET down_sql ="
                          " 'CREATE TABLE public.pwned (x int)'");
    /* Without a source: refused, with what to give. */
    s_flotilla(e, 2, "SOURCE", "rollback", S_ARGS("--last"), 0);
    /* A source whose migration is not the one applied: refused. */
    s_write(e, "0001_tags.sql",
            "-- flotilla:up\nCREATE TABLE public.tags (id bigint);\n"
            "-- flotilla:down\nDROP TABLE public.tags;\n");
    s_flotilla(e, 1, "is not the one applied", "rollback", S_ARGS("--last"), 1);
    /* The source that was applied: its down runs, not the planted one. */
    s_write(e, "0001_tags.sql",
            "-- flotilla:up\nCREATE TABLE public.tags (id int);\n"
            "-- flotilla:down\nDROP TABLE public.tags;\n");
    s_flotilla(e, 0, NULL, "rollback", S_ARGS("--last"), 1);
    v = fl_test_query_value(e->conn, "SELECT (to_regclass('public.pwned') IS"
                                     " NULL)::text || (to_regclass("
                                     "'public.tags') IS NULL)::text");
    assert_string_equal(v, "truetrue");
    free(v);
    /* The lost-source escape hatch runs the ledger's copy, and says so. */
    s_flotilla(e, 0, NULL, "apply", NULL, 1);
    fl_test_exec(e->conn, "UPDATE flotilla.schema_migrations SET down_sql ="
                          " 'DROP TABLE public.tags'");
    s_flotilla(e, 0, "--down-from-ledger", "rollback", S_ARGS("--last", "--down-from-ledger"), 0);
}

/*
 * Check samples show the key and the offending column, never the whole
 * row (which may hold what must not reach a log); --redact-samples shows
 * the key alone.
 */
static void
test_check_samples_show_key_and_column_only(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    fl_test_exec(e->conn,
        "CREATE TABLE public.accounts (id int PRIMARY KEY, email text,"
        " secret text);"
        "INSERT INTO public.accounts VALUES (7, NULL, 'hunter2'),"
        " (8, 'a@b', 'hunter3');");
    s_write(e, "0001_email.sql",
            "-- flotilla:options allow=adding-not-nullable-field checked\n"
            "-- flotilla:up\n"
            "ALTER TABLE public.accounts ALTER COLUMN email SET NOT NULL;\n"
            "-- flotilla:down\n"
            "ALTER TABLE public.accounts ALTER COLUMN email DROP NOT NULL;\n");
    fl_test_ws_flotilla(e, &r, "apply", NULL, 1);
    fl_test_expect(&r, 3, "(7,)");
    if (strstr(r.out, "hunter") || strstr(r.err, "hunter"))
        fail_msg("a sample shows a column the check is not about\n%s", r.err);
    fl_test_proc_release(&r);
    s_flotilla(e, 3, "(7)", "apply", S_ARGS("--redact-samples"), 1);
    {
        char *v = fl_test_query_value(e->conn,
            "SELECT count(*) FROM flotilla.migration_logs"
            " WHERE message LIKE '%hunter%'");
        assert_string_equal(v, "0");
        free(v);
    }
}

/* Migration text reaches a LATIN1 database as the characters it holds. */
static void
test_text_reaches_a_latin1_database_intact(void **state)
{
    s_env *e = *state;
    char *name = fl_asprintf("%s_latin1", e->db.name);
    char *sql = fl_asprintf("CREATE DATABASE %s ENCODING 'LATIN1'"
                            " LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0",
                            name);
    char *dsn = fl_asprintf("dbname=%s", name);
    char *drop = fl_asprintf("DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    fl_test_proc_t r;
    PGconn *c = NULL;
    char *v = NULL;

    fl_test_exec(e->conn, drop);
    fl_test_exec(e->conn, sql);
    s_write(e, "0001_cafe.sql",
            "-- flotilla:up\nCREATE TABLE public.menu (item text);\n"
            "INSERT INTO public.menu VALUES ('caf\xc3\xa9');\n"
            "-- flotilla:down\nDROP TABLE public.menu;\n");
    fl_test_flotilla(&r, e->dir, dsn, e->log, "apply", NULL, e->mdir);
    fl_test_expect(&r, 0, "applied 1");
    fl_test_proc_release(&r);
    c = PQconnectdb(dsn);
    assert_int_equal(PQstatus(c), CONNECTION_OK);
    PQsetClientEncoding(c, "UTF8");
    {
        PGresult *res = PQexec(c, "SELECT item = 'caf\xc3\xa9' AND"
                                  " length(item) = 4 FROM public.menu");
        v = fl_strdup(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    PQfinish(c);
    assert_string_equal(v, "t");
    free(v);
    fl_test_exec(e->conn, drop);
    free(drop);
    free(dsn);
    free(sql);
    free(name);
}

/* A server that never answers: connecting ends at the deadline. */
static int
s_silent_server(int *port)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);

    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(fd, 4) != 0 || getsockname(fd, (struct sockaddr *)&a, &len))
        fail_msg("could not start a silent server");
    *port = ntohs(a.sin_port);
    return fd;
}

static double
s_now(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef struct {
    int *flag;
} s_canceller;

static void *
s_cancel_soon(void *arg)
{
    s_canceller *c = arg;
    struct timespec ts = {0, 200000000L};

    nanosleep(&ts, NULL);
    __atomic_store_n(c->flag, 1, __ATOMIC_SEQ_CST);
    return NULL;
}

static void
test_connect_is_bounded_and_cancellable(void **state)
{
    int port = 0, fd = s_silent_server(&port), cancel = 0;
    char *dsn = fl_asprintf("host=127.0.0.1 port=%d dbname=x user=x"
                            " connect_timeout=60", port);
    fl_pg_connect_opts_t o = FL_PG_CONNECT_OPTS_INIT;
    fl_error_t err = FL_ERROR_INIT;
    fl_pg_t *pg = NULL;
    pthread_t th;
    s_canceller c = {&cancel};
    double t0;

    (void)state;
    o.timeout_ms = 300;
    t0 = s_now();
    assert_int_equal(fl_pg_open_opts(&pg, dsn, "t", &o, &err), FL_ETIMEOUT);
    assert_true(s_now() - t0 < 3.0);
    fl_error_clear(&err);
    o.timeout_ms = 30000;
    o.cancel = &cancel;
    pthread_create(&th, NULL, s_cancel_soon, &c);
    t0 = s_now();
    assert_int_equal(fl_pg_open_opts(&pg, dsn, "t", &o, &err), FL_ECANCELLED);
    assert_true(s_now() - t0 < 3.0);
    pthread_join(th, NULL);
    fl_error_clear(&err);
    close(fd);
    free(dsn);
}

/* A signed bundle is held to the rules a directory is (file names, UTF-8). */
static void
test_bundle_with_an_invalid_name_is_refused(void **state)
{
    s_env *e = *state;
    fl_key_t *key = NULL;
    fl_migration_list_t migs = {NULL, 0};
    fl_buf_t out = FL_BUF_INIT(0);
    fl_bundle_opts_t bo = FL_BUNDLE_OPTS_INIT;
    fl_source_t src = FL_SOURCE_INIT;
    fl_error_t err = FL_ERROR_INIT;
    char id[FL_KEY_ID_HEX];
    char *prefix = fl_asprintf("%s/release", e->dir);
    char *secret = fl_asprintf("%s.key", prefix);
    char *pub = fl_asprintf("%s.pub", prefix);
    char *path = fl_asprintf("%s/bad.bundle", e->dir);
    static const char text[] =
        "-- flotilla:up\nCREATE TABLE t (id int);\n-- flotilla:down\nSELECT 1;\n";
    FILE *f = NULL;

    assert_int_equal(fl_key_generate_files(prefix, 0, id, &err), 0);
    assert_int_equal(fl_key_load(&key, secret, &err), 0);
    migs.items = fl_calloc(1, sizeof(fl_migration_t));
    migs.count = 1;
    assert_int_equal(fl_migration_parse(&migs.items[0], "0001_ok.sql", text,
                                        sizeof(text) - 1, &err), 0);
    /* What a careless or hostile build tool could sign. */
    free(migs.items[0].name);
    migs.items[0].name = fl_strdup("bad\xff\x1b[2J");
    fl_migration_compute_checksum(&migs.items[0]);
    bo.created = (int64_t)time(NULL);
    bo.expires = bo.created + 3600;
    bo.environment = "test";
    if (fl_bundle_build(&out, &migs, key, &bo, &err) != 0) {
        /* A builder that refuses it is as good, if it says why. */
        assert_non_null(strstr(err.message, "name"));
    } else {
        f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(out.data, 1, out.len, f), out.len);
        fclose(f);
        assert_int_equal(fl_source_open(&src, path, pub, 0,
                                        (int64_t)time(NULL), &err), FL_EPROTO);
        assert_non_null(strstr(err.message, "migration 1"));
    }
    fl_error_clear(&err);
    fl_source_close(&src);
    fl_buf_release(&out);
    fl_migration_list_release(&migs);
    fl_key_destroy(&key);
    free(prefix);
    free(secret);
    free(pub);
    free(path);
}

/* Builds mdir into dir/NAME.bundle, signed with dir/release.key. */
static char *
s_bundle(s_env *e, const char *name, const char *const *args)
{
    char *out = fl_asprintf("%s/%s.bundle", e->dir, name);
    char *key = fl_asprintf("%s/release.key", e->dir);
    const char *argv[24] = {"flotilla", "bundle", "build", e->mdir, "--sign",
                            key, "--out", out};
    size_t n = 8;
    fl_test_proc_t r;

    for (size_t i = 0; args && args[i]; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    fl_test_run(&r, "flotilla", argv, NULL, 60);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    free(key);
    return out;
}

static void
s_keygen(s_env *e)
{
    char *prefix = fl_asprintf("%s/release", e->dir);
    const char *argv[] = {"flotilla", "keygen", "--out", prefix, NULL};
    fl_test_proc_t r;

    fl_test_run(&r, "flotilla", argv, NULL, 60);
    fl_test_expect(&r, 0, NULL);
    fl_test_proc_release(&r);
    free(prefix);
}

/* Runs apply BUNDLE --trust release.pub EXTRA...; checks status, says. */
static void
s_bundle_cmd(s_env *e, const char *cmd, const char *bundle, int status,
             const char *says, const char *const *extra)
{
    char *pub = fl_asprintf("%s/release.pub", e->dir);
    const char *argv[24] = {"--trust", pub};
    size_t n = 2;
    fl_test_proc_t r;

    for (size_t i = 0; extra && extra[i]; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    fl_test_flotilla(&r, e->dir, e->db.conninfo, e->log, cmd, argv, bundle);
    fl_test_expect(&r, status, says);
    fl_test_proc_release(&r);
    free(pub);
}

static void
s_apply_bundle(s_env *e, const char *bundle, int status, const char *says,
               const char *const *extra)
{
    s_bundle_cmd(e, "apply", bundle, status, says, extra);
}

/*
 * A bundle cannot be replayed: once release 5 of a channel is applied, a
 * lower release, or another bundle numbered 5, is refused; an explicit
 * override with a reason applies it and the ledger's log says so.
 */
static void
test_an_older_release_is_refused_unless_overridden(void **state)
{
    s_env *e = *state;
    char *b5 = NULL, *b4 = NULL, *b5b = NULL, *b6 = NULL;
    char *v = NULL;

    s_keygen(e);
    s_write(e, "0001_a.sql", "-- flotilla:up\nCREATE TABLE public.a (id int);\n"
                             "-- flotilla:down\nDROP TABLE public.a;\n");
    b4 = s_bundle(e, "b4", S_ARGS("--environment", "staging", "--channel",
                                  "web", "--sequence", "4"));
    s_write(e, "0002_b.sql", "-- flotilla:up\nCREATE TABLE public.b (id int);\n"
                             "-- flotilla:down\nDROP TABLE public.b;\n");
    b5 = s_bundle(e, "b5", S_ARGS("--environment", "staging", "--channel",
                                  "web", "--sequence", "5"));
    b5b = s_bundle(e, "b5b", S_ARGS("--environment", "staging", "--channel",
                                    "web", "--sequence", "5", "--note",
                                    "another build"));
    s_apply_bundle(e, b5, 0, "applied 2", S_ARGS("--environment", "staging"));
    v = fl_test_query_value(e->conn, "SELECT channel || ' ' || sequence"
                                     " FROM flotilla.release_marks");
    assert_string_equal(v, "web 5");
    free(v);
    /* An older release of the channel: refused, nothing changes. */
    s_apply_bundle(e, b4, 3, "older than release 5",
                   S_ARGS("--environment", "staging"));
    /* The same release number, another bundle: refused. */
    s_apply_bundle(e, b5b, 3, "another bundle",
                   S_ARGS("--environment", "staging"));
    /*
     * A baseline is held to the same order: an older release may not
     * write "applied" rows either (before, baseline never read the
     * release marks), nor a bundle outside its signed scope.
     */
    s_bundle_cmd(e, "baseline", b4, 3, "older than release 5",
                 S_ARGS("--environment", "staging", "--to", "1"));
    s_bundle_cmd(e, "baseline", b5, 3, "environment",
                 S_ARGS("--environment", "production", "--to", "1"));
    s_bundle_cmd(e, "baseline", b4, 0, NULL,
                 S_ARGS("--environment", "staging", "--to", "1",
                        "--allow-older-release", "--reason", "a test"));
    /* Re-applying the bundle applied is a no-op, not a refusal. */
    s_apply_bundle(e, b5, 0, NULL, S_ARGS("--environment", "staging"));
    /* Another channel has its own numbers. */
    s_write(e, "0003_c.sql", "-- flotilla:up\nCREATE TABLE public.c (id int);\n"
                             "-- flotilla:down\nDROP TABLE public.c;\n");
    b6 = s_bundle(e, "ops1", S_ARGS("--environment", "staging", "--channel",
                                    "ops", "--sequence", "1"));
    s_apply_bundle(e, b6, 0, "applied 1", S_ARGS("--environment", "staging"));
    /* The override needs a reason, and is logged with it. */
    s_apply_bundle(e, b4, 2, "--reason",
                   S_ARGS("--environment", "staging", "--allow-older-release"));
    s_apply_bundle(e, b4, 0, NULL,
                   S_ARGS("--environment", "staging", "--allow-older-release",
                          "--reason", "re-deploying 4 after a bad 5"));
    v = fl_test_query_value(e->conn,
        "SELECT count(*) FROM flotilla.migration_logs WHERE message LIKE"
        " '%older than release 5%re-deploying 4 after a bad 5%'");
    assert_string_equal(v, "1");
    free(v);
    /* The mark stays at the highest release applied. */
    v = fl_test_query_value(e->conn, "SELECT string_agg(channel || ' ' ||"
                                     " sequence, ',' ORDER BY channel)"
                                     " FROM flotilla.release_marks");
    assert_string_equal(v, "ops 1,web 5");
    free(v);
    free(b4);
    free(b5);
    free(b5b);
    free(b6);
}

/*
 * A bundle runs only where its signed scope says: its environment, and
 * targets whose labels its selector admits.
 */
static void
test_a_bundle_runs_only_in_its_scope(void **state)
{
    s_env *e = *state;
    char *prod = NULL, *canary = NULL, *v = NULL;

    s_keygen(e);
    s_write(e, "0001_a.sql", "-- flotilla:up\nCREATE TABLE public.a (id int);\n"
                             "-- flotilla:down\nDROP TABLE public.a;\n");
    prod = s_bundle(e, "prod", S_ARGS("--environment", "production"));
    canary = s_bundle(e, "canary", S_ARGS("--environment", "staging",
                                          "--selector", "tier=canary"));
    s_apply_bundle(e, prod, 3, "names no environment", NULL);
    s_apply_bundle(e, prod, 3, "not \"staging\"",
                   S_ARGS("--environment", "staging"));
    s_apply_bundle(e, canary, 3, "does not select this target",
                   S_ARGS("--environment", "staging", "--label", "tier=main"));
    v = fl_test_query_value(e->conn, "SELECT to_regclass('public.a') IS NULL");
    assert_string_equal(v, "t");
    free(v);
    s_apply_bundle(e, canary, 0, "applied 1",
                   S_ARGS("--environment", "staging", "--label", "tier=canary",
                          "--label", "region=eu"));
    free(prod);
    free(canary);
}

/*
 * A tenant who creates the schema "flotilla" before flotilla does, with a
 * trigger on the ledger table, would have it run with flotilla's rights:
 * a ledger not owned by flotilla's role (or a superuser) is refused.
 */
static void
test_a_ledger_the_tenant_planted_is_refused(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *v = NULL;

    fl_test_exec(e->conn,
        "SET ROLE fl_tenant;"
        "CREATE SCHEMA flotilla;"
        "CREATE TABLE flotilla.ledger_meta (ledger_version int NOT NULL,"
        " created_at timestamptz NOT NULL DEFAULT now());"
        "CREATE FUNCTION flotilla.grab() RETURNS trigger LANGUAGE plpgsql AS"
        " $$BEGIN PERFORM public.trap('ledger trigger'); RETURN NEW; END$$;"
        "CREATE TRIGGER grab BEFORE INSERT ON flotilla.ledger_meta"
        " FOR EACH ROW EXECUTE FUNCTION flotilla.grab();"
        "RESET ROLE");
    s_write(e, "0001_a.sql", "-- flotilla:up\nCREATE TABLE public.a (id int);\n"
                             "-- flotilla:down\nDROP TABLE public.a;\n");
    fl_test_ws_flotilla(e, &r, "apply", NULL, 1);
    fl_test_expect(&r, 1, "not owned by");
    fl_test_proc_release(&r);
    s_assert_no_side_effect(e, "apply on a planted ledger");
    v = fl_test_query_value(e->conn, "SELECT to_regclass('public.a') IS NULL");
    assert_string_equal(v, "t");
    free(v);
    /* Status and log read the ledger too: refused the same way. */
    s_flotilla(e, 1, "not owned by", "status", NULL, 1);
    s_assert_no_side_effect(e, "status on a planted ledger");

    /*
     * The backup schema alone, planted where no ledger is yet: not taken
     * for a database flotilla never touched (whose ledger is made without
     * the ownership check).
     */
    fl_test_exec(e->conn, "DROP SCHEMA flotilla CASCADE;"
                          "SET ROLE fl_tenant;"
                          "CREATE SCHEMA flotilla_backup;"
                          "RESET ROLE");
    fl_test_ws_flotilla(e, &r, "apply", NULL, 1);
    fl_test_expect(&r, 1, "not owned by");
    fl_test_expect(&r, 1, "schema flotilla_backup (owner fl_tenant)");
    fl_test_proc_release(&r);
    s_assert_no_side_effect(e, "apply on a planted backup schema");
    v = fl_test_query_value(e->conn, "SELECT to_regnamespace('flotilla') IS"
                                     " NULL AND to_regclass('public.a') IS NULL");
    assert_string_equal(v, "t");
    free(v);
}

/*
 * Text from the database reaches a terminal escaped: an error message
 * holding an escape sequence (which could clear the screen, or hide the
 * rest of a line) is shown as "\x1b", on the console of apply and in
 * the text of `flotilla log`.
 */
static void
test_terminal_output_escapes_control_characters(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    s_write(e, "0001_boom.sql",
            "-- flotilla:up\n"
            "DO $$BEGIN RAISE EXCEPTION 'boom%gone', chr(27) || '[2J' ||"
            " chr(13); END$$;\n"
            "-- flotilla:down\nSELECT 1;\n");
    fl_test_ws_flotilla(e, &r, "apply", NULL, 1);
    fl_test_expect(&r, 1, "boom\\x1b[2J\\rgone");
    if (strchr(r.out, 27) || strchr(r.err, 27) || strchr(r.err, '\r'))
        fail_msg("apply printed a raw control character:\n%s", r.err);
    fl_test_proc_release(&r);
    fl_test_ws_flotilla(e, &r, "log", NULL, 0);
    fl_test_expect(&r, 0, "boom\\x1b[2J\\rgone");
    if (strchr(r.out, 27) || strchr(r.out, '\r'))
        fail_msg("log printed a raw control character:\n%s", r.out);
    fl_test_proc_release(&r);
    /* JSON keeps the text exact, escaped the JSON way. */
    fl_test_ws_flotilla(e, &r, "log", S_ARGS("--json"), 0);
    fl_test_expect(&r, 0, NULL);
    if (!strstr(r.out, "boom\\u001b[2J\\rgone") &&
        !strstr(r.out, "boom\\u001B[2J\\rgone"))
        fail_msg("log --json lost the text:\n%s", r.out);
    fl_test_proc_release(&r);
}

/*
 * A migration's statements run under public, whatever default
 * search_path the database's owner set: an unqualified name never lands
 * in (or resolves from) a schema the owner put first.
 */
static void
test_migration_runs_under_its_own_search_path(void **state)
{
    s_env *e = *state;
    char *sql = fl_asprintf("ALTER DATABASE %s SET search_path = evil, public",
                            e->db.name);
    char *v = NULL;

    fl_test_exec(e->conn, "CREATE SCHEMA evil AUTHORIZATION fl_tenant");
    fl_test_exec(e->conn, sql);
    s_write(e, "0001_made.sql", "-- flotilla:up\nCREATE TABLE made (id int);\n"
                                "-- flotilla:down\nDROP TABLE made;\n");
    s_flotilla(e, 0, "applied 1", "apply", NULL, 1);
    v = fl_test_query_value(e->conn, "SELECT (to_regclass('public.made') IS"
                                     " NOT NULL)::text || (to_regclass("
                                     "'evil.made') IS NULL)::text");
    assert_string_equal(v, "truetrue");
    free(v);
    free(sql);
}

/*
 * --db-file keeps the connection string (and its password) off the
 * command line, where every local user can read it; the file must be
 * 0600 and flotilla's user's, like any secret.
 */
static void
test_db_file_keeps_the_password_off_the_command_line(void **state)
{
    s_env *e = *state;
    char *path = fl_asprintf("%s/db.conn", e->dir);
    const char *argv[] = {"flotilla", "status", "--db-file", path, NULL};
    fl_test_proc_t r;

    fl_test_write_file(path, e->db.conninfo);
    chmod(path, 0644);
    fl_test_run(&r, "flotilla", argv, NULL, 60);
    fl_test_expect(&r, 2, "group or world access");
    fl_test_proc_release(&r);
    chmod(path, 0600);
    fl_test_run(&r, "flotilla", argv, NULL, 60);
    fl_test_expect(&r, 0, "0 migrations");
    fl_test_proc_release(&r);
    /* At 0600 but another user's: they could rewrite it.  Root only. */
    if (geteuid() == 0) {
        assert_int_equal(chown(path, 65534, (gid_t)-1), 0);
        fl_test_run(&r, "flotilla", argv, NULL, 60);
        fl_test_expect(&r, 2, "is owned by another user");
        if (strstr(r.err, "chown ") == NULL ||
            strstr(r.err, e->db.conninfo) != NULL)
            fail_msg("no chown hint, or the secret shown:\n%s", r.err);
        fl_test_proc_release(&r);
    }
    free(path);
}

/*
 * The ledger names a dump backup's file; whoever edits that row cannot
 * make rollback read, or prune remove, any other file: the path must have
 * the shape flotilla writes, with no symbolic link on it.
 */
static void
test_a_tampered_backup_location_is_refused(void **state)
{
    s_env *e = *state;
    char *victim = fl_asprintf("%s/victim.txt", e->dir);
    char *loc = NULL, *sql = NULL, *linkdir = NULL, *real = NULL, *v = NULL;
    struct stat st;

    fl_test_exec(e->conn, "CREATE TABLE public.keep (id int PRIMARY KEY, v text);"
                          "INSERT INTO public.keep SELECT g, 'v' FROM"
                          " generate_series(1, 10) g;");
    s_write(e, "0001_trim.sql", "-- flotilla:up\nDELETE FROM public.keep"
                                " WHERE id > 5;\n-- flotilla:down\nSELECT 1;\n");
    s_flotilla(e, 0, NULL, "apply", S_ARGS("--backup-dump-above", "1"), 1);
    loc = fl_test_query_value(e->conn, "SELECT location FROM flotilla.backups");
    assert_int_equal(loc[0], '/');
    fl_test_write_file(victim, "not a backup\n");
    /* A file elsewhere: refused, and left alone. */
    sql = fl_asprintf("UPDATE flotilla.backups SET location = '%s'", victim);
    fl_test_exec(e->conn, sql);
    free(sql);
    s_flotilla(e, 1, "is not where flotilla keeps", "rollback",
               S_ARGS("--last"), 1);
    s_flotilla(e, 1, "is not where flotilla keeps", "backups",
               S_ARGS("prune", "--older-than", "0s", "--dry-run"), 0);
    /* The real file, reached through a symbolic link: refused too. */
    real = fl_strndup(loc, (size_t)(strrchr(loc, '/') - loc));
    linkdir = fl_asprintf("%s/x-0123456789ab", e->dir);
    assert_int_equal(symlink(real, linkdir), 0);
    sql = fl_asprintf("UPDATE flotilla.backups SET location = '%s%s'", linkdir,
                      strrchr(loc, '/'));
    fl_test_exec(e->conn, sql);
    free(sql);
    s_flotilla(e, 1, "symbolic link", "rollback", S_ARGS("--last"), 1);
    assert_int_equal(stat(victim, &st), 0);
    assert_int_equal(stat(loc, &st), 0);
    /* Put back as recorded, the rollback restores the rows. */
    sql = fl_asprintf("UPDATE flotilla.backups SET location = '%s'", loc);
    fl_test_exec(e->conn, sql);
    free(sql);
    s_flotilla(e, 0, "rolled back 1", "rollback", S_ARGS("--last"), 1);
    v = fl_test_query_value(e->conn, "SELECT count(*) FROM public.keep");
    assert_string_equal(v, "10");
    free(v);
    free(real);
    free(linkdir);
    free(loc);
    free(victim);
}

/*
 * The directories holding backup files are flotilla's user's alone: a
 * --backup-dir that others can write (without the sticky bit), or a
 * target's directory in it that another user owns, is refused by apply
 * before it writes a file there, and by rollback and backups prune before
 * they read or remove one (recorded or moved: --backup-dir).  Before,
 * they were used, and whoever could write them could remove or replace
 * the backups.  A sticky --backup-dir, as /tmp, is taken: there, others
 * cannot touch what is not theirs.  Giving a directory away takes root.
 */
static void
test_a_backup_directory_another_user_could_change_is_refused(void **state)
{
    s_env *e = *state;
    char *bdir = fl_asprintf("%s/bk", e->dir);
    char *moved = fl_asprintf("%s/moved", e->dir);
    char *loc = NULL, *sub = NULL, *there = NULL, *v = NULL;
    int root = geteuid() == 0;

    fl_test_exec(e->conn, "CREATE TABLE public.keep (id int PRIMARY KEY);"
                          "INSERT INTO public.keep SELECT g FROM"
                          " generate_series(1, 10) g;");
    s_write(e, "0001_trim.sql", "-- flotilla:up\nDELETE FROM public.keep"
                                " WHERE id > 5;\n"
                                "-- flotilla:down\nSELECT 1;\n");
    assert_int_equal(mkdir(bdir, 0700), 0);
    assert_int_equal(chmod(bdir, 0777), 0);
    s_flotilla(e, 1, "is in a directory writable by group and others",
               "apply", S_ARGS("--backup-dump-above", "1", "--backup-dir",
                               bdir), 1);
    fl_test_expect_value(e->conn, "SELECT count(*) FROM public.keep", "10");
    assert_int_equal(chmod(bdir, 01777), 0);
    s_flotilla(e, 0, "applied 1", "apply",
               S_ARGS("--backup-dump-above", "1", "--backup-dir", bdir), 1);
    loc = fl_test_query_value(e->conn, "SELECT location FROM"
                                       " flotilla.backups");
    sub = fl_strndup(loc, (size_t)(strrchr(loc, '/') - loc));
    there = fl_asprintf("%s%s", moved, strrchr(sub, '/'));
    if (root) {
        assert_int_equal(chown(sub, 65534, (gid_t)-1), 0);
        s_flotilla(e, 1, "is owned by another user", "rollback",
                   S_ARGS("--last"), 1);
        assert_int_equal(chown(sub, 0, (gid_t)-1), 0);
    }
    /* Moved to a directory others can write: refused there too. */
    assert_int_equal(mkdir(moved, 0700), 0);
    assert_int_equal(chmod(moved, 0777), 0);
    assert_int_equal(rename(sub, there), 0);
    s_flotilla(e, 1, "is in a directory writable by", "rollback",
               S_ARGS("--last", "--backup-dir", moved), 1);
    s_flotilla(e, 1, "is in a directory writable by", "backups",
               S_ARGS("prune", "--older-than", "0s", "--dry-run",
                      "--backup-dir", moved), 0);
    assert_int_equal(chmod(moved, 0700), 0);
    s_flotilla(e, 0, "rolled back 1", "rollback",
               S_ARGS("--last", "--backup-dir", moved), 1);
    fl_test_expect_value(e->conn, "SELECT count(*) FROM public.keep", "10");
    /* The target's directory, another user's: apply writes nothing there. */
    if (root) {
        assert_int_equal(mkdir(sub, 0700), 0);
        assert_int_equal(chown(sub, 65534, (gid_t)-1), 0);
        s_flotilla(e, 1, "is owned by another user", "apply",
                   S_ARGS("--backup-dump-above", "1", "--backup-dir", bdir),
                   1);
        v = fl_test_query_value(e->conn, "SELECT count(*) FROM public.keep");
        assert_string_equal(v, "10");
    }
    free(v);
    free(there);
    free(sub);
    free(loc);
    free(moved);
    free(bdir);
}

/*
 * The role set-up docs/SECURITY.md asks for: a login role of flotilla's
 * own (no BYPASSRLS), member of the tenant's role, with CONNECT, CREATE and
 * TEMPORARY on the database and SET on session_replication_role.  Returns
 * the connection string that logs in as it.
 */
static char *
s_runner(s_env *e)
{
    char *sql = fl_asprintf(
        "DO $$ BEGIN CREATE ROLE fl_runner LOGIN;"
        " EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$;"
        "ALTER ROLE fl_runner NOBYPASSRLS;"
        "GRANT fl_tenant TO fl_runner;"
        "GRANT CONNECT, CREATE, TEMPORARY ON DATABASE %s TO fl_runner;"
        "GRANT SET ON PARAMETER session_replication_role TO fl_runner;",
        e->db.name);

    fl_test_exec(e->conn, sql);
    free(sql);
    return fl_asprintf("%s user=fl_runner", e->db.conninfo);
}

/*
 * The role set-up docs/SECURITY.md asks for is enough: a login role of
 * flotilla's own, member of the tenant's role, with CONNECT, CREATE and
 * TEMPORARY on the database and SET on session_replication_role, applies
 * and rolls back with a backup; the tenant gets no access to the ledger.
 */
static void
test_a_dedicated_role_with_the_documented_privileges_is_enough(void **state)
{
    s_env *e = *state;
    char *dsn = s_runner(e);
    fl_test_proc_t r;
    char *v = NULL;

    fl_test_exec(e->conn, "ALTER TABLE public.items OWNER TO fl_tenant");
    s_write(e, "0001_trim.sql",
            "-- flotilla:up\nDELETE FROM public.items WHERE id > 10;\n"
            "CREATE TABLE public.extra (id int);\n"
            "-- flotilla:down\nDROP TABLE public.extra;\n");
    fl_test_flotilla(&r, e->dir, dsn, e->log, "apply", NULL, e->mdir);
    fl_test_expect(&r, 0, "applied 1");
    fl_test_proc_release(&r);
    v = fl_test_query_value(e->conn,
        "SELECT pg_catalog.has_schema_privilege('fl_tenant', 'flotilla',"
        " 'USAGE')::text || pg_catalog.has_table_privilege('fl_tenant',"
        " 'flotilla.schema_migrations', 'SELECT')::text ||"
        " pg_catalog.has_schema_privilege('fl_tenant', 'flotilla_backup',"
        " 'USAGE')::text");
    assert_string_equal(v, "falsefalsefalse");
    free(v);
    fl_test_flotilla(&r, e->dir, dsn, e->log, "rollback", S_ARGS("--last"),
                     e->mdir);
    fl_test_expect(&r, 0, "rolled back 1");
    fl_test_proc_release(&r);
    v = fl_test_query_value(e->conn, "SELECT count(*) FROM public.items");
    assert_string_equal(v, "20");
    free(v);
    fl_test_exec(e->conn, "REVOKE SET ON PARAMETER session_replication_role"
                          " FROM fl_runner");
    free(dsn);
}

/*
 * A table backup's location is only ever flotilla_backup.b<id>: a ledger
 * row pointing at a tenant's table is refused, and that table untouched.
 */
static void
test_a_tampered_backup_table_is_refused(void **state)
{
    s_env *e = *state;
    char *v = NULL;

    fl_test_exec(e->conn, "CREATE TABLE public.other (id int PRIMARY KEY);"
                          "INSERT INTO public.other VALUES (1), (2);");
    s_write(e, "0001_trim.sql", "-- flotilla:up\nDELETE FROM public.items"
                                " WHERE id > 10;\n-- flotilla:down\nSELECT 1;\n");
    s_flotilla(e, 0, NULL, "apply", NULL, 1);
    fl_test_exec(e->conn, "UPDATE flotilla.backups SET location ="
                          " 'public.other'");
    s_flotilla(e, 1, "unexpected location", "rollback", S_ARGS("--last"), 1);
    v = fl_test_query_value(e->conn, "SELECT count(*) FROM public.other");
    assert_string_equal(v, "2");
    free(v);
}

/*
 * A restore turns triggers off the way pg_restore --disable-triggers does
 * (session_replication_role = replica); but a trigger or a rule the tenant
 * marked ENABLE ALWAYS fires whatever that setting, and one marked ENABLE
 * REPLICA fires only under it: in the restore, as the role flotilla
 * connects as.  Neither may run, and both keep their marks.
 */
static void
test_a_tenants_always_and_replica_triggers_stay_quiet_in_a_restore(
    void **state)
{
    s_env *e = *state;
    char *v = NULL;

    fl_test_exec(e->conn, "SET ROLE fl_tenant");
    fl_test_exec(e->conn,
        "CREATE FUNCTION public.trg_trap() RETURNS trigger LANGUAGE plpgsql"
        " AS $$BEGIN PERFORM public.trap('trigger ' || TG_NAME);"
        " IF TG_OP = 'INSERT' THEN NEW.v := 'tampered'; RETURN NEW; END IF;"
        " RETURN OLD; END$$;"
        "CREATE TRIGGER always_ins BEFORE INSERT ON public.items"
        " FOR EACH ROW EXECUTE FUNCTION public.trg_trap();"
        "ALTER TABLE public.items ENABLE ALWAYS TRIGGER always_ins;"
        "CREATE TRIGGER replica_del BEFORE DELETE ON public.items"
        " FOR EACH ROW EXECUTE FUNCTION public.trg_trap();"
        "ALTER TABLE public.items ENABLE REPLICA TRIGGER replica_del;"
        "CREATE RULE always_rule AS ON INSERT TO public.items"
        " DO ALSO SELECT public.trap('rule always_rule');"
        "ALTER TABLE public.items ENABLE ALWAYS RULE always_rule;"
        "CREATE RULE replica_rule AS ON DELETE TO public.items"
        " DO ALSO SELECT public.trap('rule replica_rule');"
        "ALTER TABLE public.items ENABLE REPLICA RULE replica_rule;"
        /* Rows restored to a partitioned table go to its partitions. */
        "CREATE TABLE public.events (id int PRIMARY KEY, v text)"
        " PARTITION BY RANGE (id);"
        "CREATE TABLE public.events_1 PARTITION OF public.events"
        " FOR VALUES FROM (1) TO (11);"
        "CREATE TABLE public.events_2 PARTITION OF public.events"
        " FOR VALUES FROM (11) TO (21);"
        "INSERT INTO public.events SELECT g, 'v' || g"
        " FROM generate_series(1, 20) g;"
        "CREATE TRIGGER always_ins BEFORE INSERT ON public.events"
        " FOR EACH ROW EXECUTE FUNCTION public.trg_trap();"
        "ALTER TABLE public.events ENABLE ALWAYS TRIGGER always_ins;"
        "CREATE TRIGGER replica_del BEFORE DELETE ON public.events_2"
        " FOR EACH ROW EXECUTE FUNCTION public.trg_trap();"
        "ALTER TABLE public.events_2 ENABLE REPLICA TRIGGER replica_del;");
    fl_test_exec(e->conn, "RESET ROLE");
    s_write(e, "0001_items.sql",
            "-- flotilla:up\n"
            "UPDATE public.items SET v = 'changed' WHERE id <= 5;\n"
            "DELETE FROM public.items WHERE id > 15;\n"
            "UPDATE public.events SET v = 'changed' WHERE id % 3 = 0;\n"
            "-- flotilla:down\n"
            "SELECT 1;\n");
    s_flotilla(e, 0, NULL, "apply", NULL, 1);
    s_assert_no_side_effect(e, "apply");
    s_flotilla(e, 0, NULL, "rollback", S_ARGS("--last"), 1);
    s_assert_no_side_effect(e, "rollback");
    /* The rows are back as they were, not as a trigger would make them. */
    v = fl_test_query_value(e->conn,
        "SELECT count(*) || ' ' || count(*) FILTER (WHERE v = 'v' || id)"
        " FROM (SELECT id, v FROM public.items UNION ALL"
        " SELECT id, v FROM public.events) x");
    assert_string_equal(v, "40 40");
    free(v);
    /* And the tenant's marks are what the tenant set. */
    v = fl_test_query_value(e->conn,
        "SELECT string_agg(n || '=' || m, ',' ORDER BY n) FROM ("
        " SELECT tgrelid::regclass || '.' || tgname AS n,"
        " tgenabled::text AS m FROM pg_trigger WHERE NOT tgisinternal"
        " UNION ALL SELECT ev_class::regclass || '.' || rulename,"
        " ev_enabled::text FROM pg_rewrite"
        " WHERE ev_class = 'public.items'::regclass) x");
    assert_string_equal(v, "events.always_ins=A,events_1.always_ins=A,"
                           "events_2.always_ins=A,events_2.replica_del=R,"
                           "items.always_ins=A,items.always_rule=A,"
                           "items.replica_del=R,items.replica_rule=R");
    free(v);
}

/*
 * A policy on a table whose row security applies to flotilla's role (a
 * dedicated role that is not a superuser, a table with FORCE ROW LEVEL
 * SECURITY) runs, in flotilla's own reads of the table (its checks, its
 * backup), the tenant's code as that role, and hides from the backup the
 * rows it does not show.  Flotilla reads with row_security off, as pg_dump
 * does: refused with what to do, nothing changed; with BYPASSRLS the
 * migration applies and rolls back, the policy never having run under
 * flotilla's session.
 */
static void
test_row_security_never_runs_a_policy_in_flotillas_reads(void **state)
{
    s_env *e = *state;
    char *dsn = s_runner(e);
    fl_test_proc_t r;
    char *v = NULL;

    fl_test_exec(e->conn, "SET ROLE fl_tenant");
    /* The policy records a call made under flotilla's pinned path. */
    fl_test_exec(e->conn,
        "CREATE FUNCTION public.rls_trap(id int) RETURNS boolean"
        " LANGUAGE plpgsql AS $$BEGIN"
        " IF pg_catalog.current_setting('search_path') = 'pg_catalog, pg_temp'"
        " THEN PERFORM public.trap('policy'); END IF;"
        " RETURN id <= 15; END$$;"
        "ALTER TABLE public.items ENABLE ROW LEVEL SECURITY;"
        "ALTER TABLE public.items FORCE ROW LEVEL SECURITY;"
        "CREATE POLICY p ON public.items USING (public.rls_trap(id));");
    fl_test_exec(e->conn, "RESET ROLE");
    s_write(e, "0001_items.sql",
            "-- flotilla:up\n"
            "UPDATE public.items SET v = 'changed';\n"
            "-- flotilla:down\n"
            "SELECT 1;\n");
    fl_test_flotilla(&r, e->dir, dsn, e->log, "apply", NULL, e->mdir);
    fl_test_expect(&r, 1, "row-level security");
    if (!strstr(r.err, "BYPASSRLS"))
        fail_msg("the refusal does not say what to do:\n%s", r.err);
    fl_test_proc_release(&r);
    s_assert_no_side_effect(e, "an apply refused");
    v = fl_test_query_value(e->conn, "SELECT count(*) FROM public.items"
                                     " WHERE v = 'v' || id");
    assert_string_equal(v, "20");
    free(v);
    /* With BYPASSRLS: every row backed up, every row put back. */
    fl_test_exec(e->conn, "ALTER ROLE fl_runner BYPASSRLS");
    fl_test_flotilla(&r, e->dir, dsn, e->log, "apply", NULL, e->mdir);
    fl_test_expect(&r, 0, "applied 1");
    fl_test_proc_release(&r);
    v = fl_test_query_value(e->conn, "SELECT count(*) FROM public.items"
                                     " WHERE v = 'changed'");
    assert_string_equal(v, "20");
    free(v);
    fl_test_flotilla(&r, e->dir, dsn, e->log, "rollback", S_ARGS("--last"),
                     e->mdir);
    fl_test_expect(&r, 0, "rolled back 1");
    fl_test_proc_release(&r);
    v = fl_test_query_value(e->conn, "SELECT count(*) FROM public.items"
                                     " WHERE v = 'v' || id");
    assert_string_equal(v, "20");
    free(v);
    s_assert_no_side_effect(e, "apply and rollback");
    fl_test_exec(e->conn, "ALTER ROLE fl_runner NOBYPASSRLS;"
                          "REVOKE SET ON PARAMETER session_replication_role"
                          " FROM fl_runner");
    free(dsn);
}

/*
 * PostgreSQL builds an index as the table's owner: a function of the
 * tenant's in a key or a WHERE of CREATE UNIQUE INDEX runs with the
 * tenant's rights.  Flotilla's check of the duplicates, before it, ran the
 * same functions as the role flotilla connects as (here a superuser: the
 * tenant's code could do anything).  A check never runs code the database
 * owns (functions, operators, domains no superuser owns): it is skipped,
 * says so, and PostgreSQL has the last word.
 */
static void
test_a_check_never_runs_the_tenants_functions_with_flotillas_rights(
    void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    fl_test_exec(e->conn, "SET ROLE fl_tenant");
    /* Immutable, as an index needs; a call not as the owner is recorded. */
    fl_test_exec(e->conn,
        "CREATE FUNCTION public.norm(t text) RETURNS text LANGUAGE plpgsql"
        " IMMUTABLE AS $$BEGIN IF current_user <> 'fl_tenant' THEN"
        " PERFORM public.trap('norm as ' || current_user); END IF;"
        " RETURN pg_catalog.lower(t); END$$;"
        "CREATE FUNCTION public.live(t text) RETURNS boolean LANGUAGE plpgsql"
        " IMMUTABLE AS $$BEGIN IF current_user <> 'fl_tenant' THEN"
        " PERFORM public.trap('live as ' || current_user); END IF;"
        " RETURN t IS NOT NULL; END$$;"
        "CREATE FUNCTION public.same(a int, b int) RETURNS boolean"
        " LANGUAGE plpgsql IMMUTABLE AS $$BEGIN IF current_user <> 'fl_tenant'"
        " THEN PERFORM public.trap('=== as ' || current_user); END IF;"
        " RETURN a OPERATOR(pg_catalog.=) b; END$$;"
        "CREATE OPERATOR public.=== (leftarg = int, rightarg = int,"
        " function = public.same);");
    fl_test_exec(e->conn, "RESET ROLE");
    s_write(e, "0001_norm.sql",
            "-- flotilla:up\n"
            "CREATE UNIQUE INDEX items_norm ON public.items (public.norm(v))"
            " WHERE public.live(old);\n"
            "CREATE UNIQUE INDEX items_op ON public.items (id)"
            " WHERE id OPERATOR(public.===) id;\n"
            "-- flotilla:down\n"
            "DROP INDEX public.items_op;\n"
            "DROP INDEX public.items_norm;\n");
    s_flotilla(e, 0, NULL, "plan", S_ARGS("--allow-lint-errors"), 1);
    s_assert_no_side_effect(e, "plan");
    fl_test_ws_flotilla(e, &r, "apply", S_ARGS("--allow-lint-errors"), 1);
    fl_test_expect(&r, 0, "applied 1");
    fl_test_proc_release(&r);
    s_assert_no_side_effect(e, "apply");
    /* The plan says which checks it left to PostgreSQL, and why. */
    s_flotilla(e, 0, NULL, "rollback", S_ARGS("--last"), 1);
    fl_test_ws_flotilla(e, &r, "plan", S_ARGS("--allow-lint-errors", "--json"),
                        1);
    fl_test_expect(&r, 0, "function public.norm(text)");
    if (!strstr(r.out, "operator public.===(integer,integer)") ||
        !strstr(r.out, "function public.live(text)"))
        fail_msg("the plan does not name what it did not run:\n%s", r.out);
    fl_test_proc_release(&r);
    s_assert_no_side_effect(e, "a second plan");
}

/*
 * The live checks read the table too, under the migration's settings: a
 * NOT NULL check on a table whose row security applies to flotilla's
 * role ran the tenant's policy as that role (and counted only the rows it
 * showed).  They read with row_security off as well: refused (exit 3,
 * nothing changed), with what to do, and the policy never runs.
 */
static void
test_row_security_never_runs_a_policy_in_a_check(void **state)
{
    s_env *e = *state;
    char *dsn = s_runner(e);
    fl_test_proc_t r;

    fl_test_exec(e->conn, "SET ROLE fl_tenant");
    fl_test_exec(e->conn,
        "CREATE FUNCTION public.rls_any(id int) RETURNS boolean"
        " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('policy as '"
        " || current_user); RETURN true; END$$;"
        "ALTER TABLE public.items ENABLE ROW LEVEL SECURITY;"
        "ALTER TABLE public.items FORCE ROW LEVEL SECURITY;"
        "CREATE POLICY p ON public.items USING (public.rls_any(id));");
    fl_test_exec(e->conn, "RESET ROLE");
    s_write(e, "0001_nn.sql",
            "-- flotilla:options allow=adding-not-nullable-field small table\n"
            "-- flotilla:up\n"
            "ALTER TABLE public.items ALTER COLUMN v SET NOT NULL;\n"
            "-- flotilla:down\n"
            "ALTER TABLE public.items ALTER COLUMN v DROP NOT NULL;\n");
    fl_test_flotilla(&r, e->dir, dsn, e->log, "apply", NULL, e->mdir);
    fl_test_expect(&r, 3, "row-level security");
    if (!strstr(r.err, "BYPASSRLS"))
        fail_msg("the refusal does not say what to do:\n%s", r.err);
    fl_test_proc_release(&r);
    s_assert_no_side_effect(e, "an apply refused");
    fl_test_exec(e->conn, "REVOKE SET ON PARAMETER session_replication_role"
                          " FROM fl_runner");
    free(dsn);
}

/*
 * A database default of repeatable read (a tenant's ALTER DATABASE ...
 * SET) does not make a backup miss rows committed while flotilla waited
 * for its lock: its transactions run at read committed, so the copy
 * made once the lock is held has every row the statement then changes.
 * Before, the snapshot was taken by flotilla's first query, before the
 * lock: a row inserted meanwhile lost its column at apply and rollback
 * said "proved" (found by an audit).
 */
static void
test_a_repeatable_read_default_misses_no_row_in_a_backup(
    void **state)
{
    s_env *e = *state;
    fl_test_child_t c;
    fl_test_proc_t r;
    PGconn *holder = fl_test_db_connect(&e->db);
    char *sql = fl_asprintf("ALTER DATABASE %s SET"
                            " default_transaction_isolation ="
                            " 'repeatable read'", e->db.name);

    fl_test_exec(e->conn, sql);
    fl_test_ws_write(e, "0001_drop_old.sql",
        "-- flotilla:options allow=ban-drop-column the app stopped reading"
        " it\n"
        "-- flotilla:up\nALTER TABLE items DROP COLUMN old;\n"
        "-- flotilla:down\nALTER TABLE items ADD COLUMN old text;\n");
    fl_test_exec(holder, "BEGIN; INSERT INTO public.items VALUES (21, 'v21',"
                         " 'written while flotilla waited')");
    fl_test_ws_spawn(e, &c, "apply", NULL, 1);
    fl_test_ws_await_child(e, &c, "SELECT count(*) > 0 FROM pg_stat_activity"
                           " WHERE" FL_TEST_LOCK_WAITERS, 60);
    fl_test_exec(holder, "COMMIT");
    fl_test_child_wait(&c, &r, 60);
    fl_test_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    fl_test_ws_flotilla(e, &r, "rollback", S_ARGS("--last"), 1);
    fl_test_expect(&r, 0, "rolled back 1 migration");
    fl_test_proc_release(&r);
    fl_test_expect_value(e->conn, "SELECT old FROM public.items WHERE id = 21",
                         "written while flotilla waited");
    PQfinish(holder);
    free(sql);
}

/*
 * A tenant's array_nulls = off (or xmloption = document) for its
 * database does not make a rollback fail: the backup's text of an enum
 * array holding a NULL reads back as it was written.  Before, the
 * restore read "NULL" as an enum label and the rollback failed (found
 * by an audit).
 */
static void
test_array_nulls_off_does_not_stop_a_rollback(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *sql = fl_asprintf("ALTER DATABASE %s SET array_nulls = off;"
                            "ALTER DATABASE %s SET xmloption = document",
                            e->db.name, e->db.name);

    fl_test_exec(e->conn, "CREATE TYPE public.mood AS ENUM ('a', 'b');"
                          "CREATE TABLE public.moods (id int PRIMARY KEY,"
                          " m public.mood[]);"
                          "INSERT INTO public.moods VALUES"
                          " (1, ARRAY['a', NULL]::public.mood[])");
    fl_test_exec(e->conn, sql);
    fl_test_ws_write(e, "0001_drop_m.sql",
        "-- flotilla:options allow=ban-drop-column the app stopped reading"
        " it\n"
        "-- flotilla:up\nALTER TABLE moods DROP COLUMN m;\n"
        "-- flotilla:down\nALTER TABLE moods ADD COLUMN m public.mood[];\n");
    fl_test_ws_flotilla(e, &r, "apply", NULL, 1);
    fl_test_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    fl_test_ws_flotilla(e, &r, "rollback", S_ARGS("--last"), 1);
    fl_test_expect(&r, 0, "rolled back 1 migration");
    fl_test_proc_release(&r);
    fl_test_expect_value(e->conn, "SELECT m[2] IS NULL AND m[1] = 'a' FROM"
                                  " public.moods", "t");
    free(sql);
}

/*
 * A cast whose function a tenant owns (CREATE CAST (mood AS text) WITH
 * FUNCTION ..., allowed to the owner of the type) would run with
 * flotilla's rights wherever flotilla converts a value: its backups and
 * proofs keep a user type's values as text, baseline reads another
 * tool's versions as text.  Casts are not found through search_path, so
 * nothing else keeps them out: every command that reads or writes the
 * tenant's rows refuses such a database before anything runs, naming
 * the cast and its owner; with a superuser owning the function (a
 * superuser vouching for it), it runs.  Before, the apply's backup and
 * the rollback's proof ran it as the superuser (found by an audit: the
 * tenant made itself superuser).
 */
static void
test_a_tenants_cast_never_runs_with_flotillas_rights(void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;

    fl_test_exec(e->conn,
        "SET ROLE fl_tenant;"
        "CREATE TYPE public.mood AS ENUM ('happy', 'sad');"
        "CREATE TABLE public.feelings (id int PRIMARY KEY, m public.mood,"
        " note text);"
        "INSERT INTO public.feelings VALUES (1, 'happy', 'a'), (2, 'sad', 'b');"
        "CREATE FUNCTION public.mood_text(public.mood) RETURNS text"
        " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('cast');"
        " RETURN pg_catalog.format('%s', $1); END$$;"
        "CREATE CAST (public.mood AS text) WITH FUNCTION"
        " public.mood_text(public.mood);"
        "RESET ROLE");
    fl_test_ws_write(e, "0001_drop_note.sql",
        "-- flotilla:options allow=ban-drop-column the app stopped reading"
        " it\n"
        "-- flotilla:up\nALTER TABLE feelings DROP COLUMN note;\n"
        "-- flotilla:down\nALTER TABLE feelings ADD COLUMN note text;\n");
    fl_test_ws_flotilla(e, &r, "apply", NULL, 1);
    fl_test_expect(&r, 3, "public.mood_text(public.mood)");
    fl_test_expect(&r, 3, "fl_tenant");
    fl_test_proc_release(&r);
    fl_test_ws_flotilla(e, &r, "plan", NULL, 1);
    if (r.status == 0)
        fail_msg("plan said OK:\n%s", r.out);
    fl_test_proc_release(&r);
    s_assert_no_side_effect(e, "an apply and a plan refused");
    fl_test_expect_value(e->conn, "SELECT count(*) FROM public.feelings"
                                  " WHERE note IS NOT NULL", "2");
    /* Vouched for by a superuser: it runs, and it is the owner's. */
    fl_test_exec(e->conn, "ALTER FUNCTION public.mood_text(public.mood)"
                          " OWNER TO CURRENT_USER");
    fl_test_ws_flotilla(e, &r, "apply", NULL, 1);
    fl_test_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    /* The tenant's again: rollback and baseline refuse before anything
     * runs, the migration still applied and the trap quiet. */
    fl_test_exec(e->conn, "ALTER FUNCTION public.mood_text(public.mood)"
                          " OWNER TO fl_tenant;"
                          "DELETE FROM public.side_effects");
    fl_test_ws_flotilla(e, &r, "rollback", S_ARGS("--last"), 1);
    fl_test_expect(&r, 1, "public.mood_text(public.mood)");
    fl_test_proc_release(&r);
    fl_test_ws_flotilla(e, &r, "baseline", S_ARGS("--to", "1"), 1);
    fl_test_expect(&r, 3, "public.mood_text(public.mood)");
    fl_test_proc_release(&r);
    s_assert_no_side_effect(e, "a rollback and a baseline refused");
    fl_test_expect_value(e->conn, "SELECT status FROM"
                                  " flotilla.schema_migrations", "applied");
}

/*
 * A schema named after the role flotilla connects as, which a tenant may
 * create, does not come before public in a migration's search_path: an
 * unqualified CREATE TABLE lands in public.  Before, the migration path
 * was "$user", public, so the table went into the tenant's schema (and a
 * function there shadowed public's), and a role named flotilla put
 * migrations' tables into the ledger's schema (found by an audit).
 */
static void
test_a_schema_named_after_flotillas_role_does_not_shadow_public(
    void **state)
{
    s_env *e = *state;
    fl_test_proc_t r;
    char *me = fl_test_query_value(e->conn, "SELECT current_user");
    char *sql = fl_asprintf("CREATE SCHEMA \"%s\" AUTHORIZATION fl_tenant",
                            me);

    fl_test_exec(e->conn, sql);
    fl_test_ws_write(e, "0001_widgets.sql",
        "-- flotilla:up\nCREATE TABLE widgets (id bigint PRIMARY KEY);\n"
        "-- flotilla:down\nDROP TABLE widgets;\n");
    fl_test_ws_flotilla(e, &r, "apply", NULL, 1);
    fl_test_expect(&r, 0, "applied 1 migration");
    fl_test_proc_release(&r);
    fl_test_expect_value(e->conn, "SELECT to_regclass('public.widgets') IS"
                                  " NOT NULL", "t");
    free(sql);
    free(me);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_tenant_functions_never_run_in_any_command, s_setup,
            fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_rollback_runs_down_from_the_source_not_the_ledger, s_setup,
            fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_repeatable_read_default_misses_no_row_in_a_backup,
            s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_array_nulls_off_does_not_stop_a_rollback, s_setup,
            fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_tenants_cast_never_runs_with_flotillas_rights, s_setup,
            fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_schema_named_after_flotillas_role_does_not_shadow_public,
            s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_check_samples_show_key_and_column_only, s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_text_reaches_a_latin1_database_intact, s_setup, fl_test_ws_teardown),
        cmocka_unit_test(test_connect_is_bounded_and_cancellable),
        cmocka_unit_test_setup_teardown(
            test_bundle_with_an_invalid_name_is_refused, s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_an_older_release_is_refused_unless_overridden, s_setup,
            fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_bundle_runs_only_in_its_scope, s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_ledger_the_tenant_planted_is_refused, s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_terminal_output_escapes_control_characters, s_setup,
            fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_migration_runs_under_its_own_search_path, s_setup,
            fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_db_file_keeps_the_password_off_the_command_line, s_setup,
            fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_tampered_backup_location_is_refused, s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_backup_directory_another_user_could_change_is_refused,
            s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_dedicated_role_with_the_documented_privileges_is_enough,
            s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_tampered_backup_table_is_refused, s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_tenants_always_and_replica_triggers_stay_quiet_in_a_restore,
            s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_row_security_never_runs_a_policy_in_flotillas_reads,
            s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_check_never_runs_the_tenants_functions_with_flotillas_rights,
            s_setup, fl_test_ws_teardown),
        cmocka_unit_test_setup_teardown(
            test_row_security_never_runs_a_policy_in_a_check,
            s_setup, fl_test_ws_teardown),
    };

    if (!fl_test_have_postgres()) {
        fprintf(stderr, "no PostgreSQL (PGHOST unset): tests/run.sh starts one\n");
        return 1;
    }
    return cmocka_run_group_tests_name("security", tests, NULL, NULL);
}
