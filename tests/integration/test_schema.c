/*
 * Integration tests of agent/schema.[ch] on a real PostgreSQL: snapshots
 * of a schema holding every kind of object, the changes of a migration,
 * their re-creation after a `down` that forgets them, the proof, refusal
 * of tampered ledger rows, and a tenant's planted functions that must
 * never run.  Also the module's usage example, in the order the pipeline
 * calls it:
 *
 *   apply:    snapshot(1); up; snapshot(2); record_changes(v, 1, 2)
 *   rollback: snapshot(3); down; restore; recreate(v); snapshot(4);
 *             prove(v, 3, 4) lists nothing
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "agent/ledger.h"
#include "agent/pg.h"
#include "agent/schema.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/hash.h"
#include "testsupport.h"

/* A version for the calls below. */
#define S_V(n) (&(const fl_version_t){{#n}})

/* Roles are cluster-wide: created once, kept for later tests. */
static const char s_roles_sql[] =
    "DO $$BEGIN"
    " IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fl_owner') THEN"
    "  CREATE ROLE fl_owner; END IF;"
    " IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fl_reader') THEN"
    "  CREATE ROLE fl_reader; END IF;"
    " IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'fl_tenant') THEN"
    "  CREATE ROLE fl_tenant; END IF;"
    "END$$";

/* One object of every kind a snapshot describes, in schema app. */
static const char s_fixture_sql[] =
    "CREATE SCHEMA app;"
    "COMMENT ON SCHEMA app IS 'application';"
    "GRANT USAGE ON SCHEMA app TO fl_reader, fl_owner;"
    "CREATE TYPE app.mood AS ENUM ('sad', 'ok', 'happy');"
    "CREATE DOMAIN app.qty AS integer DEFAULT 1 NOT NULL"
    " CONSTRAINT qty_positive CHECK (VALUE > 0);"
    "CREATE TYPE app.pair AS (a integer, b text COLLATE \"C\");"
    "CREATE TYPE app.span AS RANGE (subtype = integer);"
    "CREATE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql"
    " AS $$BEGIN NEW.touched_at := now(); RETURN NEW; END$$;"
    "CREATE FUNCTION app.audit() RETURNS trigger LANGUAGE plpgsql"
    " AS $$BEGIN RETURN NEW; END$$;"
    "CREATE FUNCTION app.double(x integer) RETURNS integer LANGUAGE sql"
    " IMMUTABLE AS 'SELECT x * 2';"
    "CREATE PROCEDURE app.noop() LANGUAGE sql AS 'SELECT 1';"
    "CREATE AGGREGATE app.total(integer) (sfunc = int4pl, stype = integer,"
    " initcond = '0');"
    "CREATE TABLE app.orders ("
    " id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
    " code text COLLATE \"C\" NOT NULL UNIQUE,"
    " mood app.mood DEFAULT 'ok',"
    " amount numeric(10,2) NOT NULL DEFAULT 0,"
    " doubled integer GENERATED ALWAYS AS (app.double(amount::integer)) STORED,"
    " note text,"
    " touched_at timestamptz,"
    " during app.span,"
    " CONSTRAINT orders_note_check CHECK (length(note) < 100),"
    " CONSTRAINT orders_no_overlap EXCLUDE USING gist (during WITH &&));"
    "ALTER TABLE app.orders ALTER COLUMN code SET STATISTICS 500;"
    "CREATE INDEX orders_note_idx ON app.orders (note);"
    "CREATE INDEX orders_lower_code ON app.orders (lower(code))"
    " WHERE amount > 0;"
    "CREATE TRIGGER orders_touch BEFORE UPDATE ON app.orders"
    " FOR EACH ROW EXECUTE FUNCTION app.touch();"
    "ALTER TABLE app.orders ENABLE ROW LEVEL SECURITY;"
    "CREATE POLICY orders_read ON app.orders FOR SELECT TO fl_reader"
    " USING (amount > 0);"
    "CREATE SEQUENCE app.ticket AS integer INCREMENT 5 START 10 CACHE 3"
    " CYCLE OWNED BY app.orders.id;"
    "CREATE RULE orders_keep AS ON DELETE TO app.orders"
    " WHERE old.amount > 1000 DO INSTEAD NOTHING;"
    "CREATE STATISTICS app.orders_stats ON code, amount FROM app.orders;"
    "CREATE TABLE app.items ("
    " id serial PRIMARY KEY,"
    " order_id bigint NOT NULL REFERENCES app.orders (id) ON DELETE CASCADE,"
    " sku text NOT NULL UNIQUE,"
    " qty app.qty,"
    " created_at timestamptz NOT NULL DEFAULT now(),"
    " CONSTRAINT items_qty_check CHECK (qty < 1000));"
    "CREATE INDEX items_created_idx ON app.items (created_at DESC);"
    "CREATE TRIGGER items_audit AFTER INSERT ON app.items"
    " FOR EACH ROW EXECUTE FUNCTION app.audit();"
    "ALTER TABLE app.items DISABLE TRIGGER items_audit;"
    "CREATE TABLE app.item_tags ("
    " item_id integer NOT NULL REFERENCES app.items (id),"
    " tag text NOT NULL, PRIMARY KEY (item_id, tag));"
    "CREATE VIEW app.big_orders WITH (security_barrier) AS"
    " SELECT id, code, amount FROM app.orders WHERE amount > 100;"
    "CREATE MATERIALIZED VIEW app.order_stats AS"
    " SELECT count(*) AS n FROM app.orders WITH NO DATA;"
    "CREATE TABLE app.events (at date NOT NULL, v integer)"
    " PARTITION BY RANGE (at);"
    "CREATE TABLE app.events_2024 PARTITION OF app.events"
    " FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');"
    "CREATE INDEX events_at ON app.events (at);"
    "CREATE UNLOGGED TABLE app.scratch (x integer) WITH (fillfactor = 70);"
    "COMMENT ON TABLE app.orders IS 'orders';"
    "COMMENT ON COLUMN app.orders.note IS 'free text';"
    "COMMENT ON CONSTRAINT orders_note_check ON app.orders IS 'short';"
    "COMMENT ON INDEX app.orders_note_idx IS 'by note';"
    "COMMENT ON TRIGGER orders_touch ON app.orders IS 'touch';"
    "COMMENT ON VIEW app.big_orders IS 'big';"
    "COMMENT ON MATERIALIZED VIEW app.order_stats IS 'stats';"
    "COMMENT ON SEQUENCE app.ticket IS 'tickets';"
    "COMMENT ON TYPE app.mood IS 'mood';"
    "COMMENT ON DOMAIN app.qty IS 'quantity';"
    "COMMENT ON FUNCTION app.double(integer) IS 'twice';"
    "COMMENT ON POLICY orders_read ON app.orders IS 'readers';"
    "COMMENT ON RULE orders_keep ON app.orders IS 'keep big ones';"
    "COMMENT ON STATISTICS app.orders_stats IS 'correlated';"
    "COMMENT ON TABLE app.items IS 'items';"
    "COMMENT ON COLUMN app.items.sku IS 'stock unit';"
    "COMMENT ON INDEX app.items_created_idx IS 'by time';"
    "COMMENT ON CONSTRAINT items_qty_check ON app.items IS 'bounded';"
    "COMMENT ON TRIGGER items_audit ON app.items IS 'audit, off';"
    "GRANT SELECT, INSERT ON app.orders TO fl_reader;"
    "GRANT SELECT (note), UPDATE (note) ON app.orders TO fl_reader;"
    "GRANT SELECT ON app.big_orders TO fl_reader WITH GRANT OPTION;"
    "GRANT USAGE ON SEQUENCE app.ticket TO fl_reader;"
    "REVOKE USAGE ON TYPE app.mood FROM PUBLIC;"
    "GRANT USAGE ON TYPE app.mood TO fl_reader;"
    "REVOKE EXECUTE ON FUNCTION app.double(integer) FROM PUBLIC;"
    "GRANT EXECUTE ON FUNCTION app.double(integer) TO fl_reader;"
    "GRANT SELECT ON app.items TO fl_reader;"
    "GRANT UPDATE (sku) ON app.items TO fl_reader;"
    "ALTER TABLE app.orders OWNER TO fl_owner;"
    "ALTER TABLE app.items OWNER TO fl_owner;"
    "CREATE PUBLICATION app_pub FOR TABLE app.orders (id, code)"
    " WHERE (amount > 0) WITH (publish = 'insert, update');"
    "CREATE COLLATION app.ci (provider = icu, locale = 'und',"
    " deterministic = false);"
    "CREATE TEXT SEARCH CONFIGURATION app.ts (copy = simple);"
    "ALTER TEXT SEARCH CONFIGURATION app.ts DROP MAPPING FOR asciiword;"
    "CREATE OPERATOR app.=== (leftarg = integer, rightarg = integer,"
    " function = int4eq, commutator = OPERATOR(app.===));"
    "ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT USAGE ON TYPES"
    " TO fl_reader;"
    "INSERT INTO app.orders (code, amount, note) VALUES ('a', 5, 'first'),"
    " ('b', 500, NULL);";

/* The migration under test, and a `down` that re-creates only the bare
 * column and table. */
static const char s_up_sql[] =
    "ALTER TABLE app.orders DROP COLUMN note;"
    "DROP TABLE app.items CASCADE;"
    "DROP INDEX app.events_at;";

static const char s_bare_down_sql[] =
    "ALTER TABLE app.orders ADD COLUMN note text;"
    "CREATE SEQUENCE app.items_id_seq AS integer;"
    "CREATE TABLE app.items ("
    " id integer NOT NULL DEFAULT nextval('app.items_id_seq'),"
    " order_id bigint NOT NULL, sku text NOT NULL, qty app.qty,"
    " created_at timestamptz NOT NULL DEFAULT now());";

typedef struct {
    fl_test_db_t db;
    fl_pg_t *pg;
} s_env_t;

static void
s_exec(fl_pg_t *pg, const char *sql)
{
    fl_error_t err = FL_ERROR_INIT;

    if (fl_pg_exec(pg, sql, &err) != 0)
        fail_msg("%s: %s", sql, err.message);
}

static char *
s_value(fl_pg_t *pg, const char *sql)
{
    fl_error_t err = FL_ERROR_INIT;
    char *v = NULL;

    if (fl_pg_query_value(pg, &v, sql, 0, NULL, &err) != 0)
        fail_msg("%s: %s", sql, err.message);
    return v;
}

static void
s_assert_value(fl_pg_t *pg, const char *sql, const char *want)
{
    char *v = s_value(pg, sql);

    if (v == NULL || strcmp(v, want) != 0) {
        /* In full: cmocka cuts long messages. */
        fprintf(stderr, "%s\ngot:\n%s\nwant:\n%s\n", sql, v ? v : "NULL",
                want);
        fail();
    }
    free(v);
}

static void
s_snapshot(fl_pg_t *pg, int gen, const char *only)
{
    fl_error_t err = FL_ERROR_INIT;

    if (fl_schema_snapshot(pg, gen, only, &err) != 0)
        fail_msg("snapshot %d: %s (%s)", gen, err.message,
                 err.detail ? err.detail : "");
}

static char *
s_fingerprint(fl_pg_t *pg, int gen)
{
    fl_error_t err = FL_ERROR_INIT;
    char *fp = NULL;

    if (fl_schema_fingerprint(pg, gen, &fp, &err) != 0)
        fail_msg("fingerprint %d: %s", gen, err.message);
    assert_int_equal(strlen(fp), 64);
    return fp;
}

static int
s_record(fl_pg_t *pg, int64_t version, int before, int after)
{
    fl_error_t err = FL_ERROR_INIT;
    int n = -1;

    fl_version_t v = FL_VERSION_INIT;

    fl_version_set_u64(&v, (uint64_t)version);
    if (fl_schema_record_changes(pg, "", &v, before, after, &n, &err) != 0)
        fail_msg("record %lld: %s", (long long)version, err.message);
    return n;
}

/* The proof as text ("" when nothing differs). */
static char *
s_prove(fl_pg_t *pg, int64_t version, int before, int now)
{
    fl_schema_diff_list_t diffs = FL_SCHEMA_DIFF_LIST_INIT;
    fl_error_t err = FL_ERROR_INIT;
    char *text = NULL;

    fl_version_t v = FL_VERSION_INIT;

    fl_version_set_u64(&v, (uint64_t)version);
    if (fl_schema_prove(pg, "", &v, before, now, FL_SCHEMA_FORMAT, &diffs, &err) != 0)
        fail_msg("prove %lld: %s", (long long)version, err.message);
    text = fl_schema_diff_describe(&diffs);
    fl_schema_diff_list_release(&diffs);
    return text;
}

static void
s_ledger(fl_pg_t *pg)
{
    s_exec(pg, "CREATE SCHEMA IF NOT EXISTS flotilla");
    s_exec(pg, fl_schema_ledger_sql);
}

/*
 * The pipeline's apply: snapshot 1, the migration up, snapshot 2, and the
 * difference recorded as version's changes; returns how many.
 */
static int
s_apply(fl_pg_t *pg, int64_t version, const char *up)
{
    s_ledger(pg);
    s_snapshot(pg, 1, NULL);
    s_exec(pg, up);
    s_snapshot(pg, 2, NULL);
    return s_record(pg, version, 1, 2);
}

static int
s_setup(void **state)
{
    s_env_t *env = fl_calloc(1, sizeof(*env));
    fl_error_t err = FL_ERROR_INIT;

    fl_test_db_create(&env->db, "schema");
    if (fl_pg_open(&env->pg, env->db.conninfo, "test_schema", &err) != 0)
        fail_msg("%s", err.message);
    s_exec(env->pg, s_roles_sql);
    *state = env;
    return 0;
}

static int
s_teardown(void **state)
{
    s_env_t *env = *state;

    fl_pg_close(&env->pg);
    fl_test_db_drop(&env->db);
    free(env);
    return 0;
}

static void
test_snapshot_unchanged_schema_keeps_its_fingerprint(void **state)
{
    s_env_t *env = *state;
    fl_error_t err = FL_ERROR_INIT;
    char *a = NULL, *b = NULL, *c = NULL, *fp = NULL;

    s_exec(env->pg, s_fixture_sql);
    s_exec(env->pg, "SET search_path = app, public");
    s_snapshot(env->pg, 1, NULL);
    /* The caller's settings come back; the defs did not depend on them. */
    s_assert_value(env->pg, "SHOW search_path", "app, public");
    a = s_fingerprint(env->pg, 1);
    /* Sequence positions and rows are not part of the schema. */
    s_exec(env->pg, "SELECT nextval('app.ticket');"
                    "INSERT INTO app.orders (code) VALUES ('c')");
    s_exec(env->pg, "SET search_path = public; SET DateStyle = 'SQL, DMY';"
                    "SET TimeZone = 'Asia/Tokyo'");
    s_snapshot(env->pg, 2, NULL);
    b = s_fingerprint(env->pg, 2);
    assert_string_equal(a, b);
    /* Inside a transaction; replacing a generation. */
    s_exec(env->pg, "BEGIN");
    s_snapshot(env->pg, 1, NULL);
    c = s_fingerprint(env->pg, 1);
    s_exec(env->pg, "COMMIT");
    assert_string_equal(a, c);
    s_assert_value(env->pg, "SHOW search_path", "public");
    s_assert_value(env->pg, "SHOW DateStyle", "SQL, DMY");
    /* A caller's SET LOCAL stays local. */
    s_exec(env->pg, "BEGIN; SET LOCAL search_path = app");
    s_snapshot(env->pg, 3, NULL);
    s_assert_value(env->pg, "SHOW search_path", "app");
    s_exec(env->pg, "COMMIT");
    s_assert_value(env->pg, "SHOW search_path", "public");
    /* Every kind is described. */
    s_assert_value(env->pg,
        "SELECT string_agg(DISTINCT kind, ',' ORDER BY kind)"
        " FROM pg_temp.flotilla_schema_snap WHERE gen = 1",
        "acl,collation,column,comment,constraint,default privileges,function,"
        "index,matview,operator,owner,policy,publication,publication table,"
        "rule,schema,sequence,snapshot,statistics,table,text search"
        " configuration,trigger,type,view");
    s_assert_value(env->pg,
        "SELECT string_agg(kind || ' ' || ident || ' = ' || def, E'\\n'"
        " ORDER BY kind, ident) FROM pg_temp.flotilla_schema_snap"
        " WHERE gen = 1 AND kind IN ('collation', 'default privileges',"
        " 'operator', 'publication', 'publication table',"
        " 'text search configuration')",
        "collation app.ci = icu locale 'und'"
        " nondeterministic owner postgres\n"
        "default privileges for role postgres in app on types ="
        " fl_reader=USAGE\n"
        "operator app.===(integer,integer) = function int4eq(integer,integer)"
        " returns boolean commutator app.===(integer,integer) owner postgres\n"
        "publication app_pub = publish insert, update owner postgres\n"
        "publication table app_pub app.orders = (id, code)"
        " where ((amount > (0)::numeric))\n"
        "text search configuration app.ts = parser pg_catalog.\"default\""
        " 2:simple, 3:simple, 4:simple, 5:simple, 6:simple, 7:simple,"
        " 8:simple, 9:simple, 10:simple, 11:simple, 15:simple, 16:simple,"
        " 17:simple, 18:simple, 19:simple, 20:simple, 21:simple, 22:simple"
        " owner postgres");
    s_assert_value(env->pg,
        "SELECT string_agg(kind || ' ' || ident || ' = ' || def, E'\\n'"
        " ORDER BY kind, ident) FROM pg_temp.flotilla_schema_snap"
        " WHERE gen = 1 AND (ident IN ('app.orders.code', 'app.orders.id',"
        " 'app.orders.doubled', 'app.orders.orders_touch', 'app.ticket',"
        " 'app.mood', 'app.qty', 'app.items.items_audit',"
        " 'column app.orders.note', 'table app.items',"
        " 'app.items.items_qty_check', 'app.orders.orders_lower_code',"
        " 'app.orders.orders_pkey')"
        " OR (kind = 'acl' AND ident = 'view app.big_orders'))",
        "acl column app.orders.note = fl_reader=SELECT,UPDATE\n"
        "acl table app.items = fl_owner=DELETE,INSERT,REFERENCES,SELECT,"
        "TRIGGER,TRUNCATE,UPDATE fl_reader=SELECT\n"
        "acl view app.big_orders = fl_reader=SELECT* postgres=DELETE,INSERT,"
        "REFERENCES,SELECT,TRIGGER,TRUNCATE,UPDATE\n"
        "column app.orders.code = text COLLATE pg_catalog.\"C\" NOT NULL"
        " STATISTICS 500\n"
        "column app.orders.doubled = integer GENERATED ALWAYS AS"
        " (app.double((amount)::integer)) STORED\n"
        "column app.orders.id = bigint NOT NULL GENERATED ALWAYS AS IDENTITY\n"
        "comment column app.orders.note = free text\n"
        "comment table app.items = items\n"
        "constraint app.items.items_qty_check = CHECK (((qty)::integer <"
        " 1000))\n"
        "constraint app.orders.orders_pkey = PRIMARY KEY (id)\n"
        "index app.orders.orders_lower_code = CREATE INDEX orders_lower_code"
        " ON app.orders USING btree (lower(code))"
        " WHERE (amount > (0)::numeric)\n"
        "index app.orders.orders_pkey = (constraint) CREATE UNIQUE INDEX"
        " orders_pkey ON app.orders USING btree (id)\n"
        "owner table app.items = fl_owner\n"
        "sequence app.ticket = as integer start 10 increment 5 minvalue 1"
        " maxvalue 2147483647 cache 3 cycle owned by app.orders.id\n"
        "trigger app.items.items_audit = (disabled) CREATE TRIGGER"
        " items_audit AFTER INSERT ON app.items FOR EACH ROW EXECUTE"
        " FUNCTION app.audit()\n"
        "trigger app.orders.orders_touch = CREATE TRIGGER orders_touch"
        " BEFORE UPDATE ON app.orders FOR EACH ROW EXECUTE FUNCTION"
        " app.touch()\n"
        "type app.mood = enum ('sad', 'ok', 'happy')\n"
        "type app.qty = domain integer NOT NULL DEFAULT 1 CONSTRAINT"
        " qty_positive CHECK ((VALUE > 0))");
    /* A generation never taken, and one schema alone. */
    assert_int_equal(fl_schema_fingerprint(env->pg, 9, &fp, &err),
                     FL_ENOTFOUND);
    assert_null(fp);
    fl_error_clear(&err);
    s_snapshot(env->pg, 5, "app");
    s_assert_value(env->pg, "SELECT count(*) FROM pg_temp.flotilla_schema_snap"
                            " WHERE gen = 5 AND ident LIKE '%public%'", "0");
    s_ledger(env->pg);
    assert_int_equal(fl_schema_record_changes(env->pg, "", S_V(1), 1, 5, NULL, &err),
                     FL_ECONFLICT);
    fl_error_clear(&err);
    free(a);
    free(b);
    free(c);
}

static void
test_snapshot_leaves_out_extension_objects(void **state)
{
    s_env_t *env = *state;
    char *have = s_value(env->pg, "SELECT count(*) FROM"
                                  " pg_available_extensions"
                                  " WHERE name = 'pg_trgm'");
    int available = strcmp(have, "0") != 0;

    free(have);
    if (!available)
        skip(); /* contrib is not installed */
    s_exec(env->pg, "CREATE EXTENSION pg_trgm SCHEMA public");
    s_snapshot(env->pg, 1, NULL);
    /* The extension is described, none of its members. */
    s_assert_value(env->pg, "SELECT string_agg(kind || ' ' || ident, ',')"
                            " FROM pg_temp.flotilla_schema_snap"
                            " WHERE ident LIKE '%trgm%' OR def LIKE '%trgm%'",
                   "extension pg_trgm");
}

/* Each change, as the proof words it against the snapshot before it. */
static void
test_each_kind_of_change_is_detected(void **state)
{
    s_env_t *env = *state;
    fl_schema_diff_list_t diffs = FL_SCHEMA_DIFF_LIST_INIT;
    fl_error_t err = FL_ERROR_INIT;
    fl_buf_t got = FL_BUF_INIT(0);
    int n = 0;

    s_exec(env->pg, s_fixture_sql);
    n = s_apply(env->pg, 5,
        "ALTER TABLE app.orders ALTER COLUMN touched_at TYPE timestamp,"
        " ALTER COLUMN touched_at SET DEFAULT now();"
        "ALTER TABLE app.orders ALTER COLUMN mood SET DEFAULT 'sad';"
        "ALTER TABLE app.orders DROP CONSTRAINT orders_note_check;"
        "DROP INDEX app.orders_lower_code;"
        "ALTER TABLE app.orders DISABLE TRIGGER orders_touch;"
        "CREATE OR REPLACE VIEW app.big_orders AS"
        " SELECT id, code, amount FROM app.orders WHERE amount > 200;"
        "ALTER SEQUENCE app.ticket INCREMENT 7;"
        "ALTER TYPE app.mood ADD VALUE 'ecstatic';"
        "CREATE OR REPLACE FUNCTION app.audit() RETURNS trigger"
        " LANGUAGE plpgsql AS $$BEGIN RETURN OLD; END$$;"
        "ALTER POLICY orders_read ON app.orders USING (amount > 1);"
        "COMMENT ON TABLE app.orders IS 'all orders';"
        "GRANT DELETE ON app.orders TO fl_reader;"
        "ALTER TABLE app.scratch OWNER TO fl_reader;"
        "ALTER TABLE app.scratch SET LOGGED;"
        "ALTER TABLE app.orders DISABLE RULE orders_keep;"
        "ALTER STATISTICS app.orders_stats SET STATISTICS 50;"
        "ALTER DOMAIN app.qty DROP DEFAULT;"
        "CREATE TABLE app.fresh (id int)");
    /* Version 999 changed nothing: the proof lists every difference. */
    assert_int_equal(fl_schema_prove(env->pg, "", S_V(999), 1, 2, FL_SCHEMA_FORMAT, &diffs, &err), 0);
    for (size_t i = 0; i < diffs.count; i++) {
        const fl_schema_diff_t *d = &diffs.items[i];
        fl_buf_addf(&got, "%s %s: %s\n", d->kind, d->ident,
                      !d->expected ? "unexpected"
                      : !d->actual ? "missing" : "differs");
    }
    assert_string_equal(fl_buf_str(&got),
        "acl table app.fresh: unexpected\n"
        "acl table app.orders: differs\n"
        "acl table app.scratch: differs\n"
        "column app.fresh.id: unexpected\n"
        "column app.orders.mood: differs\n"
        "column app.orders.touched_at: differs\n"
        "comment constraint app.orders.orders_note_check: missing\n"
        "comment table app.orders: differs\n"
        "constraint app.orders.orders_note_check: missing\n"
        "function app.audit(): differs\n"
        "index app.orders.orders_lower_code: missing\n"
        "owner table app.fresh: unexpected\n"
        "owner table app.scratch: differs\n"
        "policy app.orders.orders_read: differs\n"
        "rule app.orders.orders_keep: differs\n"
        "sequence app.ticket: differs\n"
        "statistics app.orders_stats: differs\n"
        "table app.fresh: unexpected\n"
        "table app.scratch: differs\n"
        "trigger app.orders.orders_touch: differs\n"
        "type app.mood: differs\n"
        "type app.qty: differs\n"
        "view app.big_orders: differs\n");
    assert_string_equal(diffs.items[5].expected, "timestamp with time zone");
    assert_string_equal(diffs.items[5].actual,
                        "timestamp without time zone DEFAULT now()");
    assert_string_equal(diffs.items[19].actual,
                        "(disabled) CREATE TRIGGER orders_touch BEFORE UPDATE"
                        " ON app.orders FOR EACH ROW EXECUTE FUNCTION"
                        " app.touch()");
    /*
     * The same objects are version 5's changes: against the state after
     * it, the proof of its rollback expects each as it was before, and
     * finds all 23 not so.
     */
    assert_int_equal(n, (int)diffs.count);
    fl_schema_diff_list_release(&diffs);
    assert_int_equal(fl_schema_prove(env->pg, "", S_V(5), 2, 2, FL_SCHEMA_FORMAT, &diffs, &err), 0);
    assert_int_equal(diffs.count, 23);
    fl_schema_diff_list_release(&diffs);
    assert_int_equal(fl_schema_prove(env->pg, "", S_V(999), 2, 2, FL_SCHEMA_FORMAT, &diffs, &err), 0);
    assert_int_equal(diffs.count, 0);
    fl_buf_release(&got);
}

/*
 * A foreign key switched off (DISABLE TRIGGER ALL, on the referencing
 * table or the referenced one: its triggers are PostgreSQL's own) is a
 * change of that constraint: rows that break it can go in from then on.
 * Before, the snapshot left internal triggers out and the schema was
 * "as flotilla left it" with the key not enforced (found by an audit).
 */
static void
test_a_foreign_key_switched_off_is_a_change(void **state)
{
    s_env_t *env = *state;
    char *text = NULL;

    s_exec(env->pg, s_fixture_sql);
    s_apply(env->pg, 5, "ALTER TABLE app.item_tags DISABLE TRIGGER ALL");
    text = s_prove(env->pg, 999, 1, 2);
    if (strstr(text, "constraint app.item_tags.item_tags_item_id_fkey") ==
        NULL || strstr(text, "(enforcement off)") == NULL)
        fail_msg("the key switched off on its table is not a change:\n%s",
                 text);
    free(text);
    s_exec(env->pg, "ALTER TABLE app.item_tags ENABLE TRIGGER ALL");
    s_apply(env->pg, 6, "ALTER TABLE app.orders DISABLE TRIGGER ALL");
    text = s_prove(env->pg, 999, 1, 2);
    if (strstr(text, "constraint app.items.items_order_id_fkey") == NULL)
        fail_msg("the key switched off on the referenced table is not a "
                 "change:\n%s", text);
    free(text);
}

/* What the note callback heard, one "kind ident" a line. */
static void
s_on_note(const char *kind, const char *ident, void *arg)
{
    fl_buf_t *b = arg;

    fl_buf_addf(b, "%s %s\n", kind, ident);
}

static void
test_recreate_after_bare_down_leaves_no_difference(void **state)
{
    s_env_t *env = *state;
    fl_buf_t notes = FL_BUF_INIT(0);
    fl_error_t err = FL_ERROR_INIT;
    char *before = NULL, *after = NULL, *got = NULL;
    int n = 0;

    s_exec(env->pg, s_fixture_sql);
    assert_true(s_apply(env->pg, 7, s_up_sql) > 30);
    /* rollback, as its own transaction */
    s_exec(env->pg, "BEGIN");
    s_snapshot(env->pg, 3, NULL);
    s_exec(env->pg, s_bare_down_sql);
    if (fl_schema_recreate(env->pg, "", S_V(7), s_on_note, &notes, &n, &err) != 0)
        fail_msg("recreate: %s (%s)", err.message,
                 err.detail ? err.detail : "");
    s_snapshot(env->pg, 4, NULL);
    got = s_prove(env->pg, 7, 3, 4);
    assert_string_equal(got, "");
    s_exec(env->pg, "COMMIT");
    /* Columns compare by name: the re-added note is at a new position. */
    before = s_fingerprint(env->pg, 1);
    after = s_fingerprint(env->pg, 4);
    assert_string_equal(before, after);
    assert_string_equal(fl_buf_str(&notes),
        "constraint app.items.items_pkey\n"
        "constraint app.items.items_sku_key\n"
        "index app.events.events_at\n"
        "index app.items.items_created_idx\n"
        "index app.orders.orders_note_idx\n"
        "constraint app.item_tags.item_tags_item_id_fkey\n"
        "constraint app.items.items_order_id_fkey\n"
        "constraint app.items.items_qty_check\n"
        "constraint app.orders.orders_note_check\n"
        "trigger app.items.items_audit\n"
        "sequence app.items_id_seq\n"
        "owner table app.items\n"
        "acl column app.items.sku\n"
        "acl column app.orders.note\n"
        "acl table app.items\n"
        "comment column app.items.sku\n"
        "comment column app.orders.note\n"
        "comment constraint app.items.items_qty_check\n"
        "comment constraint app.orders.orders_note_check\n"
        "comment index app.items.items_created_idx\n"
        "comment index app.orders.orders_note_idx\n"
        "comment table app.items\n"
        "comment trigger app.items.items_audit\n");
    assert_int_equal(n, 23);
    /* The CHECK on the tenant's table ran as its owner and is there. */
    s_assert_value(env->pg, "SELECT count(*) FROM pg_constraint"
                            " WHERE conname = 'orders_note_check'", "1");
    s_assert_value(env->pg, "SELECT current_user", "postgres");
    /* Nothing left to do: a second run re-creates nothing. */
    assert_int_equal(fl_schema_recreate(env->pg, "", S_V(7), NULL, NULL, &n, &err), 0);
    assert_int_equal(n, 0);
    fl_buf_release(&notes);
    free(before);
    free(after);
    free(got);
}

static void
test_down_with_another_type_is_reported_object_by_object(void **state)
{
    s_env_t *env = *state;
    fl_schema_diff_list_t diffs = FL_SCHEMA_DIFF_LIST_INIT;
    fl_error_t err = FL_ERROR_INIT;
    char *got = NULL;

    s_exec(env->pg, s_fixture_sql);
    (void)s_apply(env->pg, 8, "ALTER TABLE app.orders DROP COLUMN note");
    s_snapshot(env->pg, 3, NULL);
    s_exec(env->pg, "ALTER TABLE app.orders ADD COLUMN note varchar(10)");
    assert_int_equal(fl_schema_recreate(env->pg, "", S_V(8), NULL, NULL, NULL, &err),
                     0);
    s_snapshot(env->pg, 4, NULL);
    assert_int_equal(fl_schema_prove(env->pg, "", S_V(8), 3, 4, FL_SCHEMA_FORMAT, &diffs, &err), 0);
    assert_int_equal(diffs.count, 2);
    assert_string_equal(diffs.items[0].kind, "column");
    assert_string_equal(diffs.items[0].ident, "app.orders.note");
    assert_string_equal(diffs.items[0].expected, "text");
    assert_string_equal(diffs.items[0].actual, "character varying(10)");
    got = fl_schema_diff_describe(&diffs);
    assert_string_equal(got,
        "column app.orders.note: differs: expected text, found character"
        " varying(10)\n"
        "constraint app.orders.orders_note_check: differs: expected CHECK"
        " ((length(note) < 100)), found CHECK ((length((note)::text) <"
        " 100))");
    free(got);
    fl_schema_diff_list_release(&diffs);
    assert_null(diffs.items);
    fl_schema_diff_list_release(&diffs);
}

/*
 * A migration that changes grants, owners and comments of objects that
 * stay, and a `down` that forgets to change them back.
 */
static void
test_recreate_restores_grants_owners_and_comments(void **state)
{
    s_env_t *env = *state;
    fl_buf_t notes = FL_BUF_INIT(0);
    fl_error_t err = FL_ERROR_INIT;
    char *got = NULL;
    int n = 0;

    s_exec(env->pg, s_fixture_sql);
    (void)s_apply(env->pg, 4,
        "REVOKE SELECT ON app.big_orders FROM fl_reader;"
        "GRANT SELECT ON app.big_orders TO PUBLIC;"
        "GRANT DELETE ON app.orders TO fl_reader;"
        "GRANT INSERT ON app.orders TO fl_reader WITH GRANT OPTION;"
        "REVOKE USAGE ON SCHEMA app FROM fl_reader;"
        "GRANT EXECUTE ON FUNCTION app.double(integer) TO PUBLIC;"
        "REVOKE UPDATE (note) ON app.orders FROM fl_reader;"
        "ALTER FUNCTION app.double(integer) OWNER TO fl_owner;"
        "ALTER TYPE app.mood OWNER TO fl_owner;"
        "ALTER SCHEMA app OWNER TO fl_owner;"
        "COMMENT ON FUNCTION app.double(integer) IS 'changed';"
        "COMMENT ON POLICY orders_read ON app.orders IS NULL;"
        "COMMENT ON SCHEMA app IS 'it''s the app';"
        "COMMENT ON COLUMN app.orders.code IS 'new'");
    s_snapshot(env->pg, 3, NULL);
    assert_int_equal(fl_schema_recreate(env->pg, "", S_V(4), s_on_note, &notes, &n,
                                        &err), 0);
    s_snapshot(env->pg, 4, NULL);
    got = s_prove(env->pg, 4, 3, 4);
    /* The comment the migration added has no before: `down` drops it. */
    assert_string_equal(got, "comment column app.orders.code: unexpected");
    assert_string_equal(fl_buf_str(&notes),
        "owner function app.double(integer)\n"
        "owner schema app\n"
        "owner type app.mood\n"
        "acl column app.orders.note\n"
        "acl function app.double(integer)\n"
        "acl schema app\n"
        "acl table app.orders\n"
        "acl view app.big_orders\n"
        "comment function app.double(integer)\n"
        "comment policy app.orders.orders_read\n"
        "comment schema app\n");
    /* The type's grants came back with its owner. */
    assert_int_equal(n, 11);
    s_assert_value(env->pg, "SELECT array_to_string(relacl, ' ')"
                   " FROM pg_class WHERE oid = 'app.big_orders'::regclass",
                   "postgres=arwdDxt/postgres fl_reader=r*/postgres");
    fl_buf_release(&notes);
    free(got);
}

/*
 * A CHECK's expression runs while the constraint is validated: as the
 * table's owner, never as Flotilla's superuser.
 */
static void
test_recreated_check_runs_as_table_owner(void **state)
{
    s_env_t *env = *state;
    fl_error_t err = FL_ERROR_INIT;
    int n = 0;

    s_exec(env->pg,
        "CREATE SCHEMA app AUTHORIZATION fl_tenant;"
        "CREATE TABLE app.seen (who name);"
        "GRANT INSERT ON app.seen TO PUBLIC;"
        "CREATE FUNCTION app.spy(x int) RETURNS boolean LANGUAGE plpgsql"
        " AS $$BEGIN INSERT INTO app.seen VALUES (current_user);"
        " RETURN true; END$$;"
        "CREATE TABLE app.t (x int CONSTRAINT t_spy CHECK (app.spy(x)));"
        "ALTER TABLE app.t OWNER TO fl_tenant;"
        "INSERT INTO app.t VALUES (1);"
        "TRUNCATE app.seen");
    assert_int_equal(s_apply(env->pg, 3, "ALTER TABLE app.t"
                                         " DROP CONSTRAINT t_spy"), 1);
    assert_int_equal(fl_schema_recreate(env->pg, "", S_V(3), NULL, NULL, &n, &err), 0);
    assert_int_equal(n, 1);
    s_assert_value(env->pg, "SELECT string_agg(who, ',') FROM app.seen",
                   "fl_tenant");
    s_assert_value(env->pg, "SELECT current_user", "postgres");
    s_assert_value(env->pg, "SHOW role", "none");
}

/* A recorded definition rewritten in the ledger, and why it is refused. */
typedef struct {
    const char *kind;
    const char *ident;
    const char *def;
    const char *why;
} s_tamper_t;

static void
test_tampered_changes_are_refused_before_anything_runs(void **state)
{
    s_env_t *env = *state;
    static const s_tamper_t cases[] = {
        {"index", "app.orders.orders_note_idx",
         "CREATE INDEX orders_note_idx ON app.orders USING btree (note);"
         " DROP TABLE app.canary",
         "its recorded definition is 2 statements"},
        {"index", "app.orders.orders_note_idx",
         "CREATE INDEX orders_note_idx ON app.canary USING btree (x)",
         "its recorded definition is not on table app.orders alone"},
        {"index", "app.orders.orders_note_idx",
         "CREATE INDEX evil ON app.orders USING btree (note)",
         "its recorded definition does not create that index"},
        {"index", "app.orders.orders_note_idx",
         "CREATE INDEX orders_note_idx ON app.orders USING btree (note)"
         " WHERE (SELECT true FROM (DELETE FROM app.canary RETURNING 1) d)",
         "its recorded definition does not parse"},
        {"index", "app.orders.orders_note_idx; DROP TABLE app.canary",
         "CREATE INDEX x ON app.orders (note)",
         "its identity is not schema.table.name"},
        {"constraint", "app.orders.orders_note_check",
         "CHECK (length(note) < 100), DROP COLUMN code",
         "its recorded definition is not one clause"},
        {"constraint", "app.orders.orders_note_check",
         "CHECK (true); DROP TABLE app.canary",
         "its recorded definition is not one clause"},
        {"constraint", "app.orders.orders_note_check",
         "CHECK (E'\\', DROP COLUMN code, x' <> '')",
         "its recorded definition is not one clause"},
        {"trigger", "app.orders.orders_touch",
         "CREATE TRIGGER orders_touch BEFORE UPDATE ON app.canary"
         " FOR EACH ROW EXECUTE FUNCTION app.touch()",
         "its recorded definition is not on table app.orders alone"},
        {"acl", "table app.orders", "fl_reader=SELECT; DROP TABLE app.canary",
         "its recorded grants are not a list of grants"},
        {"acl", "table app.orders", "fl_reader=SELECT,ALTER SYSTEM",
         "its recorded grants are not a list of grants"},
        {"owner", "table app.orders", "fl_owner; DROP TABLE app.canary",
         "its recorded owner is not a role name"},
    };
    fl_error_t err = FL_ERROR_INIT;
    const char *params[4];
    fl_pg_result_t r = FL_PG_RESULT_INIT;

    s_exec(env->pg, s_fixture_sql);
    s_exec(env->pg, "CREATE TABLE app.canary (x int)");
    (void)s_apply(env->pg, 9, "DROP INDEX app.orders_note_idx;"
                  "DROP INDEX app.orders_lower_code;"
                  "ALTER TABLE app.orders DROP CONSTRAINT orders_note_check;"
                  "DROP TRIGGER orders_touch ON app.orders;"
                  "REVOKE ALL ON app.orders FROM fl_reader;"
                  "ALTER TABLE app.orders OWNER TO postgres");
    s_exec(env->pg, "CREATE TABLE flotilla.saved AS"
                    " SELECT * FROM flotilla.schema_changes");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const s_tamper_t *t = &cases[i];
        char want[512];
        int rc;

        s_exec(env->pg, "DELETE FROM flotilla.schema_changes;"
                        "INSERT INTO flotilla.schema_changes"
                        " SELECT * FROM flotilla.saved");
        params[0] = t->kind;
        params[1] = strchr(t->ident, ';') ? "app.orders.orders_note_idx"
                                          : t->ident;
        params[2] = t->def;
        params[3] = t->ident;
        if (fl_pg_query(env->pg, &r, "UPDATE flotilla.schema_changes"
                        " SET before_def = $3, ident = $4"
                        " WHERE kind = $1 AND ident = $2", 4, params,
                        &err) != 0)
            fail_msg("%s", err.message);
        fl_pg_result_release(&r);
        rc = fl_schema_recreate(env->pg, "", S_V(9), NULL, NULL, NULL, &err);
        if (rc != FL_EINVAL)
            fail_msg("case %zu: recreate returned %d (%s)", i, rc,
                     err.message ? err.message : "no error");
        snprintf(want, sizeof(want), "could not re-create %s %s of version"
                 " 9: %s", t->kind, t->ident, t->why);
        if (strncmp(err.message, want, strlen(want)) != 0)
            fail_msg("case %zu: %s\nwant: %s", i, err.message, want);
        assert_non_null(strstr(err.hint, "Nothing was executed"));
        fl_error_clear(&err);
        /* Nothing ran: not the tampered text, nor the sound changes. */
        s_assert_value(env->pg, "SELECT to_regclass('app.canary') IS NOT NULL"
                       " AND to_regclass('app.orders_lower_code') IS NULL"
                       " AND (SELECT count(*) FROM pg_attribute WHERE"
                       " attrelid = 'app.orders'::regclass"
                       " AND attname = 'code') = 1", "t");
    }
    /* A comment is a literal, whatever it holds. */
    s_exec(env->pg, "DELETE FROM flotilla.schema_changes;"
                    "INSERT INTO flotilla.schema_changes"
                    " SELECT * FROM flotilla.saved;"
                    "UPDATE flotilla.schema_changes SET before_def ="
                    " 'it''s''; DROP TABLE app.canary; --'"
                    " WHERE kind = 'comment'"
                    " AND ident = 'index app.orders.orders_note_idx'");
    assert_int_equal(fl_schema_recreate(env->pg, "", S_V(9), NULL, NULL, NULL, &err),
                     0);
    s_assert_value(env->pg, "SELECT obj_description("
                   "'app.orders_note_idx'::regclass, 'pg_class')",
                   "it's'; DROP TABLE app.canary; --");
    s_assert_value(env->pg, "SELECT to_regclass('app.canary') IS NOT NULL",
                   "t");
}

/* The tenant's traps: functions and an operator that shadow pg_catalog's
 * for a session whose search_path puts public first. */
static const char s_traps_sql[] =
    "CREATE TABLE public.side_effects (what text);"
    "GRANT INSERT ON public.side_effects TO PUBLIC;"
    "CREATE FUNCTION public.trap(what text) RETURNS void LANGUAGE plpgsql"
    " AS $$BEGIN INSERT INTO public.side_effects VALUES (what); END$$;"
    "CREATE FUNCTION public.format(f text, a name) RETURNS text"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('format');"
    " RETURN f; END$$;"
    "CREATE FUNCTION public.format(f text, a name, b name) RETURNS text"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('format');"
    " RETURN f; END$$;"
    "CREATE FUNCTION public.format(f text, a text) RETURNS text"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('format');"
    " RETURN f; END$$;"
    "CREATE FUNCTION public.format(f text, a text, b text) RETURNS text"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('format');"
    " RETURN f; END$$;"
    "CREATE FUNCTION public.sha256(b bytea) RETURNS bytea LANGUAGE plpgsql"
    " AS $$BEGIN PERFORM public.trap('sha256'); RETURN b; END$$;"
    "CREATE FUNCTION public.encode(b bytea, f text) RETURNS text"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('encode');"
    " RETURN f; END$$;"
    "CREATE FUNCTION public.quote_ident(n name) RETURNS text"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('quote_ident');"
    " RETURN n; END$$;"
    "CREATE FUNCTION public.pg_get_userbyid(o oid) RETURNS name"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('pg_get_userbyid');"
    " RETURN 'x'; END$$;"
    "CREATE FUNCTION public.lower(t text) RETURNS text LANGUAGE plpgsql"
    " IMMUTABLE AS $$BEGIN PERFORM public.trap('lower'); RETURN t; END$$;"
    "CREATE FUNCTION public.name_eq(a name, b text) RETURNS boolean"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('=');"
    " RETURN a::text OPERATOR(pg_catalog.=) b; END$$;"
    "CREATE OPERATOR public.= (leftarg = name, rightarg = text,"
    " function = public.name_eq);"
    "CREATE FUNCTION public.text_eq(a text, b text) RETURNS boolean"
    " LANGUAGE plpgsql AS $$BEGIN PERFORM public.trap('=');"
    " RETURN a OPERATOR(pg_catalog.=) b; END$$;"
    "CREATE OPERATOR public.= (leftarg = text, rightarg = text,"
    " function = public.text_eq);"
    "CREATE TABLE public.t (a text, b int);"
    "CREATE INDEX t_lower ON public.t (lower(a));"
    "COMMENT ON INDEX public.t_lower IS 'by lower a';";

static void
test_tenant_functions_never_run(void **state)
{
    s_env_t *env = *state;
    fl_pg_t *pg = NULL;
    fl_error_t err = FL_ERROR_INIT;
    char sql[256];
    char *a = NULL, *b = NULL, *got = NULL;

    /* The tenant owns the database (and so public) and sets its path. */
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s OWNER TO fl_tenant",
             env->db.name);
    s_exec(env->pg, sql);
    s_exec(env->pg, "SET ROLE fl_tenant");
    s_exec(env->pg, s_traps_sql);
    snprintf(sql, sizeof(sql), "ALTER DATABASE %s SET search_path ="
             " public, pg_catalog", env->db.name);
    s_exec(env->pg, sql);
    s_exec(env->pg, "RESET ROLE");
    /* The traps are armed for anyone who does not qualify names... */
    if (fl_pg_open(&pg, env->db.conninfo, "test_schema", &err) != 0)
        fail_msg("%s", err.message);
    /* fl_pg_open pins the path; a caller that set the tenant's back: */
    s_exec(pg, "SET search_path = public, pg_catalog");
    s_assert_value(pg, "SHOW search_path", "public, pg_catalog");
    free(s_value(pg, "SELECT format('%I', 'x'::name), quote_ident('x'::name),"
                     " pg_get_userbyid(10), 'x'::name = 'x'::text,"
                     " 'x'::text = 'x'::text"));
    s_assert_value(pg, "SELECT string_agg(what, ',' ORDER BY what)"
                       " FROM public.side_effects",
                   "=,=,format,pg_get_userbyid,quote_ident");
    s_exec(pg, "TRUNCATE public.side_effects");
    fl_pg_close(&pg);
    /*
     * ...and a superuser session of Flotilla's never falls into them, even
     * when its caller set the tenant's path (the module pins its own).
     */
    if (fl_pg_open(&pg, env->db.conninfo, "test_schema", &err) != 0)
        fail_msg("%s", err.message);
    s_exec(pg, "SET search_path = public, pg_catalog");
    s_ledger(pg);
    s_snapshot(pg, 1, NULL);
    a = s_fingerprint(pg, 1);
    s_exec(pg, "DROP INDEX public.t_lower");
    s_snapshot(pg, 2, NULL);
    assert_int_equal(s_record(pg, 1, 1, 2), 2);
    s_snapshot(pg, 3, NULL);
    assert_int_equal(fl_schema_recreate(pg, "", S_V(1), NULL, NULL, NULL, &err), 0);
    s_snapshot(pg, 4, NULL);
    got = s_prove(pg, 1, 3, 4);
    assert_string_equal(got, "");
    b = s_fingerprint(pg, 4);
    assert_string_equal(a, b);
    s_assert_value(pg, "SELECT count(*) FROM public.side_effects", "0");
    s_assert_value(pg, "SHOW search_path", "public, pg_catalog");
    fl_pg_close(&pg);
    free(a);
    free(b);
    free(got);
}

/* The rows of generation a that generation b lacks, and b's a lacks. */
static const char s_gens_differ_sql[] =
    "SELECT count(*) FROM ((SELECT kind, ident, def FROM"
    " pg_temp.flotilla_schema_snap WHERE gen = 1 EXCEPT SELECT kind, ident,"
    " def FROM pg_temp.flotilla_schema_snap WHERE gen = 7) UNION ALL"
    " (SELECT kind, ident, def FROM pg_temp.flotilla_schema_snap"
    " WHERE gen = 7 EXCEPT SELECT kind, ident, def FROM"
    " pg_temp.flotilla_schema_snap WHERE gen = 1)) d";

/*
 * The fingerprint of generation gen as the module defines it, computed
 * here without its SQL: the rows read raw, each written "len:kind
 * len:ident len:def" (lengths in bytes) and hashed with common/hash.h's
 * SHA-256, the hashes XORed, so a mistake in the module's SQL (its
 * escaping, its encoding, a row it forgets to add or take out of the
 * running XOR) cannot hide in the oracle too.
 */
static char *
s_fingerprint_oracle(fl_pg_t *pg, int gen)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    fl_error_t err = FL_ERROR_INIT;
    unsigned char digest[FL_HASH_SHA256_BYTES], acc[FL_HASH_SHA256_BYTES];
    char g[16], *hex = NULL;
    const char *params[1] = {g};

    memset(acc, 0, sizeof(acc));
    snprintf(g, sizeof(g), "%d", gen);
    if (fl_pg_query(pg, &r, "SELECT kind, ident, def FROM"
                    " pg_temp.flotilla_schema_snap WHERE gen = $1", 1, params,
                    &err) != 0)
        fail_msg("oracle: %s", err.message);
    for (size_t i = 0; i < r.nrows; i++) {
        const char *kind = fl_pg_value(&r, i, 0);
        const char *ident = fl_pg_value(&r, i, 1);
        const char *def = fl_pg_value(&r, i, 2);
        char *line = NULL;

        if (def == NULL)
            fail_msg("oracle: a row without a definition");
        line = fl_asprintf("%zu:%s %zu:%s %zu:%s", strlen(kind), kind,
                           strlen(ident), ident, strlen(def), def);
        fl_hash_sha256(digest, line, strlen(line));
        for (size_t j = 0; j < sizeof(acc); j++)
            acc[j] ^= digest[j];
        free(line);
    }
    hex = fl_calloc(2 * sizeof(acc) + 1, 1);
    for (size_t i = 0; i < sizeof(acc); i++)
        snprintf(hex + 2 * i, 3, "%02x", acc[i]);
    fl_pg_result_release(&r);
    return hex;
}

/*
 * A snapshot over an existing generation writes only the rows that
 * differ: the result must be the generation a fresh snapshot writes, with
 * its fingerprint, and the fingerprint the XOR of its rows' SHA-256.
 */
static void
test_snapshot_replaced_in_place_equals_a_fresh_one(void **state)
{
    s_env_t *env = *state;
    char *a = NULL, *b = NULL, *want = NULL;

    s_exec(env->pg, s_fixture_sql);
    s_snapshot(env->pg, 1, NULL);
    s_exec(env->pg, "ALTER TABLE app.orders DROP COLUMN note;"
                    "ALTER TABLE app.orders ALTER COLUMN touched_at"
                    " TYPE timestamp;"
                    "CREATE INDEX orders_amount ON app.orders (amount);"
                    "COMMENT ON TABLE app.orders IS 'changed';"
                    "COMMENT ON INDEX app.items_created_idx IS NULL;"
                    "GRANT UPDATE ON app.big_orders TO fl_owner;"
                    "ALTER TABLE app.scratch RENAME TO scratch2;"
                    "DROP TABLE app.item_tags");
    s_snapshot(env->pg, 1, NULL);
    s_snapshot(env->pg, 7, NULL);
    s_assert_value(env->pg, s_gens_differ_sql, "0");
    s_assert_value(env->pg,
        "SELECT string_agg(kind || ' ' || ident, ',' ORDER BY kind, ident)"
        " FROM pg_temp.flotilla_schema_snap WHERE gen = 1"
        " AND (ident ~ 'orders_amount|scratch|item_tags|note'"
        " OR (kind = 'comment' AND ident = 'table app.orders')"
        " OR ident LIKE '%items_created_idx')",
        "acl table app.scratch2,column app.scratch2.x,"
        "comment table app.orders,index app.items.items_created_idx,"
        "index app.orders.orders_amount,owner table app.scratch2,"
        "table app.scratch2");
    a = s_fingerprint(env->pg, 1);
    b = s_fingerprint(env->pg, 7);
    assert_string_equal(a, b);
    /* The fingerprint as the module defines it, computed without it. */
    want = s_fingerprint_oracle(env->pg, 7);
    assert_string_equal(a, want);
    /* And back: the old rows return, the new ones go. */
    s_exec(env->pg, "DROP INDEX app.orders_amount;"
                    "ALTER TABLE app.scratch2 RENAME TO scratch");
    s_snapshot(env->pg, 1, NULL);
    s_snapshot(env->pg, 7, NULL);
    s_assert_value(env->pg, s_gens_differ_sql, "0");
    free(a);
    free(b);
    free(want);
}

/*
 * A NULL acl compares equal to one written out as the default (each
 * distinct acl is normalised once, NULL ones through acldefault()); an
 * acl emptied by REVOKE ALL is "", and a column without grants has no
 * row.
 */
static void
test_default_acl_written_out_compares_equal(void **state)
{
    s_env_t *env = *state;

    s_exec(env->pg,
        "CREATE SCHEMA app;"
        "CREATE TABLE app.t (x int, y int);"
        "CREATE SEQUENCE app.s;"
        "CREATE FUNCTION app.f() RETURNS int LANGUAGE sql AS 'SELECT 1';"
        "CREATE TYPE app.e AS ENUM ('a');"
        "CREATE TABLE app.bare (x int);"
        "CREATE TABLE app.u (x int)");
    assert_int_equal(s_apply(env->pg, 1,
        "GRANT SELECT ON app.t TO fl_reader;"
        "REVOKE SELECT ON app.t FROM fl_reader;"
        "GRANT SELECT ON app.s TO fl_reader;"
        "REVOKE SELECT ON app.s FROM fl_reader;"
        "REVOKE EXECUTE ON FUNCTION app.f() FROM PUBLIC;"
        "GRANT EXECUTE ON FUNCTION app.f() TO PUBLIC;"
        "REVOKE USAGE ON TYPE app.e FROM PUBLIC;"
        "GRANT USAGE ON TYPE app.e TO PUBLIC;"
        "GRANT USAGE ON SCHEMA app TO fl_reader;"
        "REVOKE USAGE ON SCHEMA app FROM fl_reader;"
        "GRANT SELECT (x) ON app.t TO fl_reader;"
        "REVOKE SELECT (x) ON app.t FROM fl_reader"), 0);
    /* The acls are no longer NULL: only their text proves them equal. */
    s_assert_value(env->pg, "SELECT count(*) FROM pg_class"
                            " WHERE relname IN ('t', 's')"
                            " AND relacl IS NOT NULL", "2");
    s_assert_value(env->pg,
        "SELECT string_agg(ident || ' = ' || def, E'\\n' ORDER BY ident)"
        " FROM pg_temp.flotilla_schema_snap WHERE gen = 2 AND kind = 'acl'"
        " AND ident LIKE '% app.%'",
        "function app.f() = PUBLIC=EXECUTE postgres=EXECUTE\n"
        "sequence app.s = postgres=SELECT,UPDATE,USAGE\n"
        "table app.bare = postgres=DELETE,INSERT,REFERENCES,SELECT,TRIGGER,"
        "TRUNCATE,UPDATE\n"
        "table app.t = postgres=DELETE,INSERT,REFERENCES,SELECT,TRIGGER,"
        "TRUNCATE,UPDATE\n"
        "table app.u = postgres=DELETE,INSERT,REFERENCES,SELECT,TRIGGER,"
        "TRUNCATE,UPDATE\n"
        "type app.e = PUBLIC=USAGE postgres=USAGE");
    /* Emptied is not the default; a column grant is its own row. */
    assert_int_equal(s_apply(env->pg, 2,
        "REVOKE ALL ON app.u FROM postgres;"
        "GRANT UPDATE (y) ON app.t TO fl_reader"), 2);
    s_assert_value(env->pg,
        "SELECT string_agg(ident || ' = ' || def, E'\\n' ORDER BY ident)"
        " FROM pg_temp.flotilla_schema_snap WHERE gen = 2 AND kind = 'acl'"
        " AND (ident LIKE 'column %' OR ident = 'table app.u')",
        "column app.t.y = fl_reader=UPDATE\n"
        "table app.u = ");
}

/*
 * record_changes and fingerprint find generations through the session's
 * table: without it (a fresh session), inside or outside a transaction,
 * the generation was not taken, and the caller's transaction goes on.
 * Generations that cannot be compared leave the version's rows alone.
 */
static void
test_record_and_fingerprint_refuse_without_writing(void **state)
{
    s_env_t *env = *state;
    fl_error_t err = FL_ERROR_INIT;
    char *fp = NULL;
    int n = -1;

    s_ledger(env->pg);
    s_exec(env->pg, "INSERT INTO flotilla.schema_changes (version, kind,"
                    " ident, before_def, after_def, target) VALUES"
                    " (1, 'table', 'app.kept', 'x', NULL, '')");
    assert_int_equal(fl_schema_fingerprint(env->pg, 1, &fp, &err),
                     FL_ENOTFOUND);
    assert_null(fp);
    assert_non_null(strstr(err.message, "schema snapshot 1 was not taken"));
    fl_error_clear(&err);
    assert_int_equal(fl_schema_record_changes(env->pg, "", S_V(1), 1, 2, &n, &err),
                     FL_ENOTFOUND);
    assert_int_equal(n, 0);
    fl_error_clear(&err);
    s_exec(env->pg, "BEGIN");
    assert_int_equal(fl_schema_fingerprint(env->pg, 1, &fp, &err),
                     FL_ENOTFOUND);
    fl_error_clear(&err);
    assert_int_equal(fl_schema_record_changes(env->pg, "", S_V(1), 1, 2, NULL, &err),
                     FL_ENOTFOUND);
    fl_error_clear(&err);
    s_assert_value(env->pg, "SELECT 'still usable'", "still usable");
    s_exec(env->pg, "COMMIT");
    /* One generation taken, the other not; then different scopes. */
    s_snapshot(env->pg, 1, NULL);
    assert_int_equal(fl_schema_record_changes(env->pg, "", S_V(1), 1, 2, NULL, &err),
                     FL_ENOTFOUND);
    assert_non_null(strstr(err.message, "schema snapshot 2 was not taken"));
    fl_error_clear(&err);
    s_exec(env->pg, "CREATE SCHEMA app");
    s_snapshot(env->pg, 2, "app");
    assert_int_equal(fl_schema_record_changes(env->pg, "", S_V(1), 1, 2, NULL, &err),
                     FL_ECONFLICT);
    assert_string_equal(err.detail, "Snapshot 1 covers *, snapshot 2 covers"
                                    " app (\"*\": every managed schema).");
    fl_error_clear(&err);
    s_assert_value(env->pg, "SELECT string_agg(ident, ',')"
                            " FROM flotilla.schema_changes", "app.kept");
}

/* What the connection's notice callback heard, one message a line. */
static void
s_on_notice(const char *severity, const char *message, void *arg)
{
    fl_buf_t *b = arg;

    fl_buf_addf(b, "%s: %s\n", severity, message);
}

/*
 * The tables a session's first snapshot creates, and the later ones'
 * CREATE ... IF NOT EXISTS, say nothing to the caller's notice callback
 * (the pipeline logs what it hears).
 */
static void
test_snapshot_says_nothing(void **state)
{
    s_env_t *env = *state;
    fl_buf_t heard = FL_BUF_INIT(0);

    fl_pg_set_notice(env->pg, s_on_notice, &heard);
    s_exec(env->pg, "CREATE SCHEMA app; CREATE TABLE app.t (x int)");
    s_snapshot(env->pg, 1, NULL);
    s_snapshot(env->pg, 2, NULL);
    s_exec(env->pg, "BEGIN");
    s_snapshot(env->pg, 1, NULL);
    s_exec(env->pg, "COMMIT");
    assert_string_equal(fl_buf_str(&heard), "");
    /* The callback does hear the session's own notices. */
    s_exec(env->pg, "DROP TABLE IF EXISTS app.missing");
    assert_non_null(strstr(fl_buf_str(&heard), "NOTICE: "));
    fl_pg_set_notice(env->pg, NULL, NULL);
    fl_buf_release(&heard);
}

/* ---- the refresh against a full snapshot, after generated migrations -- */

/* Schema g, where the generated migrations work, and what they use. */
static const char s_gen_reset_sql[] =
    "DROP SCHEMA IF EXISTS g CASCADE; CREATE SCHEMA g;"
    "CREATE TYPE g.e AS ENUM ('a');"
    "CREATE FUNCTION g.trf() RETURNS trigger LANGUAGE plpgsql"
    " AS $$BEGIN RETURN NEW; END$$;"
    "CREATE TABLE g.t0 (id int PRIMARY KEY, a int, b text);"
    "CREATE TABLE g.t1 (id int PRIMARY KEY, a int, b text);";

/*
 * One generated statement, from r; "%1$d" and "%2$d" are two numbers
 * from 0 to 3 (tables g.t0..t3, other names).  Each runs in a DO block
 * that swallows its error, so that any sequence is a valid migration.
 */
static const char *const s_gen_stmts[] = {
    "CREATE TABLE g.t%1$d (id int PRIMARY KEY, a int, b text)",
    "DROP TABLE g.t%1$d CASCADE",
    "ALTER TABLE g.t%1$d ADD COLUMN c%2$d int DEFAULT %2$d",
    "ALTER TABLE g.t%1$d DROP COLUMN c%2$d",
    "ALTER TABLE g.t%1$d RENAME TO t%2$d",
    "CREATE INDEX i%1$d_%2$d ON g.t%1$d (a, id)",
    "DROP INDEX g.i%1$d_%2$d",
    "ALTER INDEX g.i%1$d_%2$d RENAME TO i%1$d_%2$dx",
    "COMMENT ON TABLE g.t%1$d IS 'c%2$d'",
    "COMMENT ON TABLE g.t%1$d IS NULL",
    "COMMENT ON COLUMN g.t%1$d.b IS 'b%2$d'",
    "COMMENT ON COLUMN g.t%1$d.b IS NULL",
    "ALTER TABLE g.t%1$d ADD CONSTRAINT k%1$d CHECK (a > -%2$d)",
    "ALTER TABLE g.t%1$d DROP CONSTRAINT k%1$d",
    "COMMENT ON CONSTRAINT k%1$d ON g.t%1$d IS 'k'",
    "ALTER TABLE g.t%1$d ADD CONSTRAINT f%1$d FOREIGN KEY (a)"
    " REFERENCES g.t%2$d (id)",
    "ALTER TABLE g.t%1$d DROP CONSTRAINT f%1$d",
    "ALTER TABLE g.t%1$d RENAME COLUMN a TO a%2$d",
    "ALTER TABLE g.t%1$d RENAME COLUMN a%2$d TO a",
    "ALTER TABLE g.t%1$d RENAME COLUMN id TO id%2$d",
    "ALTER TABLE g.t%1$d RENAME COLUMN id%2$d TO id",
    "CREATE OR REPLACE VIEW g.v%1$d AS SELECT id, a FROM g.t%2$d",
    "DROP VIEW g.v%1$d",
    "GRANT SELECT ON g.t%1$d TO fl_reader",
    "REVOKE SELECT ON g.t%1$d FROM fl_reader",
    "GRANT SELECT (b) ON g.t%1$d TO fl_reader",
    "REVOKE SELECT (b) ON g.t%1$d FROM fl_reader",
    "ALTER TABLE g.t%1$d ALTER COLUMN b SET DEFAULT 'd%2$d'",
    "ALTER TABLE g.t%1$d ALTER COLUMN b DROP DEFAULT",
    "ALTER TABLE g.t%1$d ALTER COLUMN a SET NOT NULL",
    "ALTER TABLE g.t%1$d ALTER COLUMN a DROP NOT NULL",
    "ALTER TABLE g.t%1$d ALTER COLUMN a TYPE bigint",
    "ALTER TABLE g.t%1$d ALTER COLUMN a TYPE int",
    "CREATE SEQUENCE g.s%1$d",
    "ALTER SEQUENCE g.s%1$d OWNED BY g.t%2$d.a",
    "ALTER SEQUENCE g.s%1$d OWNED BY NONE",
    "ALTER SEQUENCE g.s%1$d RENAME TO s%2$d",
    "ALTER SEQUENCE g.s%1$d INCREMENT %2$d",
    "ALTER TABLE g.t%1$d ALTER COLUMN a SET DEFAULT nextval('g.s%2$d')",
    "CREATE TRIGGER r%2$d BEFORE INSERT ON g.t%1$d"
    " FOR EACH ROW EXECUTE FUNCTION g.trf()",
    "DROP TRIGGER r%2$d ON g.t%1$d",
    "ALTER TABLE g.t%1$d DISABLE TRIGGER r%2$d",
    "ALTER TABLE g.t%1$d OWNER TO fl_owner",
    "ALTER TABLE g.t%1$d ENABLE ROW LEVEL SECURITY",
    "CREATE POLICY p%2$d ON g.t%1$d USING (a > %2$d)",
    "DROP POLICY p%2$d ON g.t%1$d",
    "ALTER TABLE g.t%1$d SET (fillfactor = %2$d0)",
    "ALTER TABLE g.t%1$d ADD COLUMN e%2$d g.e",
    "ALTER TYPE g.e ADD VALUE 'v%1$d%2$d'",
    "ALTER TYPE g.e RENAME TO e%2$d",
    "ALTER TYPE g.e%2$d RENAME TO e",
    "ALTER FUNCTION g.trf() RENAME TO trf%2$d",
    "ALTER FUNCTION g.trf%2$d() RENAME TO trf",
    "COMMENT ON SCHEMA g IS 'g%2$d'",
    "CREATE TABLE g.c%1$d PARTITION OF g.p FOR VALUES IN (%1$d)",
    "CREATE TABLE g.p (k int, v text) PARTITION BY LIST (k)",
    "ALTER TABLE g.p RENAME TO p%2$d",
    "ALTER TABLE g.p%2$d RENAME TO p",
    "CREATE TABLE g.h%1$d () INHERITS (g.t%2$d)",
    "INSERT INTO g.t%1$d (id, a) VALUES (%2$d, %2$d)",
    "CREATE STATISTICS g.st%1$d ON a, id FROM g.t%1$d",
    "ALTER TABLE g.t%1$d REPLICA IDENTITY FULL",
    "CREATE RULE u%2$d AS ON UPDATE TO g.t%1$d DO INSTEAD NOTHING",
    "DROP RULE u%2$d ON g.t%1$d",
    /* Objects that are neither relations, types nor functions. */
    "CREATE PUBLICATION pb%2$d FOR TABLE g.t%1$d",
    "ALTER PUBLICATION pb%2$d ADD TABLE g.t%1$d (id, a) WHERE (a > %2$d)",
    "ALTER PUBLICATION pb%2$d DROP TABLE g.t%1$d",
    "ALTER PUBLICATION pb%2$d SET (publish = 'insert')",
    "ALTER PUBLICATION pb%2$d ADD TABLES IN SCHEMA g",
    "DROP PUBLICATION pb%2$d",
    "ALTER PUBLICATION pb%1$d RENAME TO pb%2$d",
    "CREATE COLLATION g.co%1$d (provider = icu, locale = 'und')",
    "DROP COLLATION g.co%1$d",
    "CREATE TEXT SEARCH CONFIGURATION g.ts%1$d (copy = simple)",
    "ALTER TEXT SEARCH CONFIGURATION g.ts%1$d DROP MAPPING FOR word",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA g GRANT SELECT ON TABLES TO fl_reader",
    "ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC",
    "ALTER DEFAULT PRIVILEGES GRANT EXECUTE ON FUNCTIONS TO PUBLIC",
    "CREATE CAST (g.c%1$d AS text) WITH INOUT",
    "DO $d$BEGIN EXECUTE format('ALTER DATABASE %I SET work_mem = ''%1$d0MB''',"
    " current_database()); END$d$",
    "DO $d$BEGIN EXECUTE format('COMMENT ON DATABASE %I IS ''c%2$d''',"
    " current_database()); END$d$",
    "DO $d$BEGIN EXECUTE format('REVOKE CONNECT ON DATABASE %I FROM PUBLIC',"
    " current_database()); END$d$",
    "DO $d$BEGIN EXECUTE format('GRANT CONNECT ON DATABASE %I TO PUBLIC',"
    " current_database()); END$d$",
    "CREATE TYPE g.c%1$d AS (x int)",
    "DROP TYPE g.c%1$d CASCADE",
};

#define S_GEN_NSTMTS (sizeof(s_gen_stmts) / sizeof(s_gen_stmts[0]))

/* f with "%1$d" and "%2$d" replaced by a and b (0 to 9); a new string. */
static char *
s_gen_fill(const char *f, int a, int b)
{
    fl_buf_t out = FL_BUF_INIT(0);
    char *s = NULL;

    for (const char *p = f; *p != '\0'; p++) {
        if (strncmp(p, "%1$d", 4) == 0 || strncmp(p, "%2$d", 4) == 0) {
            fl_buf_addf(&out, "%d", p[1] == '1' ? a : b);
            p += 3;
        } else {
            fl_buf_addf(&out, "%c", *p);
        }
    }
    s = fl_strdup(fl_buf_str(&out));
    fl_buf_release(&out);
    return s;
}

/*
 * Rows of generation $1 (refreshed) that full snapshot $2 does not have,
 * and back; and the changes recorded for version $4 that differ from
 * those between full snapshots $3 and $2.
 */
static const char s_gen_diff_sql[] =
    "WITH g AS (SELECT kind, ident, def FROM pg_temp.flotilla_schema_snap"
    "  WHERE gen = $1::int), f AS (SELECT kind, ident, def"
    "  FROM pg_temp.flotilla_schema_snap WHERE gen = $2::int),"
    " p AS (SELECT kind, ident, def FROM pg_temp.flotilla_schema_snap"
    "  WHERE gen = $3::int AND kind <> 'snapshot'),"
    " want AS (SELECT coalesce(p.kind, f.kind) AS kind,"
    "  coalesce(p.ident, f.ident) AS ident, p.def AS b, f.def AS a"
    "  FROM p FULL JOIN (SELECT * FROM f WHERE kind <> 'snapshot') f"
    "  ON f.kind = p.kind AND f.ident = p.ident"
    "  WHERE f.def IS DISTINCT FROM p.def),"
    " got AS (SELECT kind, ident, before_def AS b, after_def AS a"
    "  FROM flotilla.schema_changes WHERE version = $4),"
    " d AS ((SELECT 'refresh' w, * FROM g EXCEPT SELECT 'refresh', * FROM f)"
    "  UNION ALL (SELECT 'full', * FROM f EXCEPT SELECT 'full', * FROM g)"
    "  UNION ALL (SELECT 'recorded', kind, ident, concat(b, ' -> ', a)"
    "  FROM (SELECT * FROM got EXCEPT SELECT * FROM want) x)"
    "  UNION ALL (SELECT 'expected', kind, ident, concat(b, ' -> ', a)"
    "  FROM (SELECT * FROM want EXCEPT SELECT * FROM got) x))"
    " SELECT count(*), string_agg(w || ' ' || kind || ' ' || ident || ': '"
    " || def, E'\\n') FROM d";

/* The seeds a generated test runs: *one when FLOTILLA_SCHEMA_SEED names one. */
static long
s_gen_seeds(long *one)
{
    *one = getenv("FLOTILLA_SCHEMA_SEED")
               ? fl_test_env_long("FLOTILLA_SCHEMA_SEED", 1) : 0;
    return *one ? 1 : fl_test_env_long("FLOTILLA_SCHEMA_SEEDS", 12);
}

/*
 * Appends to mig 1 to 3 statements drawn from forms (filled by
 * s_gen_fill), each in a DO block that swallows its error.
 */
static void
s_gen_statements(fl_pg_t *pg, uint64_t *rng, const char *const *forms,
                 size_t nforms, fl_buf_t *mig)
{
    int n = 1 + (int)(fl_test_rng_next(rng) % 3);

    for (int i = 0; i < n; i++) {
        const char *form = forms[fl_test_rng_next(rng) % nforms];
        int a = (int)(fl_test_rng_next(rng) % 4);
        int b = (int)(fl_test_rng_next(rng) % 4);
        char *stmt = s_gen_fill(form, a, b);
        char *lit = fl_pg_quote_literal(pg, stmt);

        fl_buf_addf(mig, "DO $m$BEGIN EXECUTE %s; EXCEPTION"
                    " WHEN OTHERS THEN NULL; END$m$;", lit);
        free(lit);
        free(stmt);
    }
}

/* The ledger row of generated migration version (in the caller's tx). */
static void
s_gen_ledger_row(fl_pg_t *pg, const char *version)
{
    fl_error_t err = FL_ERROR_INIT;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *params[1] = {version};

    if (fl_pg_query(pg, &r, "INSERT INTO flotilla.schema_migrations"
                    " (version, name, checksum, status, transactional, target)"
                    " VALUES ($1, 'gen', 'x', 'applied', true, '')",
                    1, params, &err) != 0)
        fail_msg("ledger row: %s", err.message);
    fl_pg_result_release(&r);
}

/*
 * In the migration's transaction, before COMMIT, as the pipeline does:
 * the relations it may have changed (fl_schema_dirty_sql, with the
 * relations whose columns it wrote, which the pipeline's net reads the
 * same way) added to d.
 */
static void
s_dirty_capture(fl_pg_t *pg, fl_schema_dirty_t *d)
{
    fl_error_t err = FL_ERROR_INIT;
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char *touched = NULL;

    if (fl_pg_query_value(pg, &touched, "SELECT coalesce(pg_catalog.array_agg("
                          "a.attrelid)::text, '{}') FROM pg_catalog.pg_attribute"
                          " a WHERE a.attnum > 0 AND pg_catalog.age(a.xmin) <= 0",
                          0, NULL, &err) != 0 ||
        fl_pg_query(pg, &r, fl_schema_dirty_sql, 1,
                    (const char *const[]){touched}, &err) != 0)
        fail_msg("dirty: %s", err.message);
    fl_schema_dirty_add(d, fl_pg_value(&r, 0, 0));
    fl_pg_result_release(&r);
    free(touched);
}

/*
 * Changes that take no lock on the relation they change, so that only
 * the refresh's own look finds them (fl_schema_dirty_t): a table's GRANT
 * and REVOKE (its pg_class row), a column's (its pg_attribute row, which
 * the pipeline's net reads), the rename of a role a table is granted to
 * (a role's name shows in the table's rows), two migrations before the
 * refresh that must see it.  Run as seed 0 before the generated seeds.
 */
static const char *const s_scripted_stmts[] = {
    "GRANT SELECT ON g.t0 TO fl_reader",
    "GRANT SELECT (b) ON g.t1 TO fl_reader",
    "REVOKE SELECT ON g.t0 FROM fl_reader",
    ("DROP ROLE IF EXISTS fl_gen_grantee2; DROP ROLE IF EXISTS fl_gen_grantee;"
     " CREATE ROLE fl_gen_grantee; GRANT SELECT ON g.t0 TO fl_gen_grantee"),
    "COMMENT ON COLUMN g.t1.b IS 'scripted'",
    "ALTER ROLE fl_gen_grantee RENAME TO fl_gen_grantee2",
    "COMMENT ON COLUMN g.t1.b IS 'scripted again'",
    "REVOKE ALL ON g.t0 FROM fl_gen_grantee2; DROP ROLE fl_gen_grantee2",
};

/*
 * After each migration, what the pipeline runs (fl_schema_record_after:
 * the refresh of the generation two migrations old, 1 and 2 in turn, 2
 * starting as 1's twin (fl_schema_snapshot_twin), and the changes
 * recorded against the other) must give what full snapshots
 * (8 and 9 in turn) give: the same rows, the same fingerprint (the
 * oracle's too, and the one stored in the ledger row), the same changes
 * recorded for the migration's rollback.  The refresh computes the
 * signatures of the relations the migrations since its generation may
 * have changed only (fl_schema_dirty_t), as the pipeline's does; seed 0
 * is s_scripted_stmts, what takes no lock.
 * Each seed starts schema g afresh and runs 8 migrations of 1 to 3
 * generated statements each (FLOTILLA_SCHEMA_SEEDS seeds, default 12;
 * FLOTILLA_SCHEMA_SEED=N runs seed N alone).  The seeds run one after
 * another on one session, whose generations carry over from seed to
 * seed: a failure may need the seeds before it (seed 8 after seed 7
 * found a record that missed a table dropped right after it was made
 * again the same; seed 8 alone passed).
 */
static void
test_refresh_equals_full_snapshot_after_generated_migrations(void **state)
{
    s_env_t *env = *state;
    long one = 0, seeds = s_gen_seeds(&one);
    int gen = 1, fullgen = 8;
    fl_error_t lerr = FL_ERROR_INIT;
    fl_schema_dirty_t dirty = FL_SCHEMA_DIRTY_INIT;

    if (fl_ledger_ensure(env->pg, &lerr) != 0)
        fail_msg("ledger: %s", lerr.message);
    s_exec(env->pg, s_fixture_sql);
    /* As the pipeline: generation 2 starts as generation 1's twin. */
    if (fl_schema_snapshot_twin(env->pg, gen, 2, NULL, &lerr) != 0)
        fail_msg("snapshot: %s", lerr.message);
    fl_schema_dirty_taken(&dirty, 1);
    fl_schema_dirty_taken(&dirty, 2);
    s_snapshot(env->pg, fullgen, NULL);
    for (long k = one ? 0 : -1; k < seeds; k++) {
        long seed = one ? one : k + 1;
        uint64_t rng = (uint64_t)seed;
        fl_buf_t mig = FL_BUF_INIT(0);

        for (int step = 0; step <= 8; step++) {
            fl_error_t err = FL_ERROR_INIT;
            fl_pg_result_t r = FL_PG_RESULT_INIT;
            char g[16], f[16], pf[16], v[24], *fp = NULL, *full = NULL,
                *want = NULL, *stored = NULL;
            const char *params[4] = {g, f, pf, v};
            long version = seed ? seed * 100 + step : 99000 + step;
            fl_version_t vv = FL_VERSION_INIT;
            int prev = gen, prevfull = fullgen;

            fl_buf_reset(&mig);
            if (step == 0)
                fl_buf_adds(&mig, s_gen_reset_sql);
            else if (seed == 0)
                fl_buf_adds(&mig, s_scripted_stmts[step - 1]);
            else
                s_gen_statements(env->pg, &rng, s_gen_stmts, S_GEN_NSTMTS,
                                 &mig);
            snprintf(v, sizeof(v), "%ld", version);
            s_exec(env->pg, "BEGIN");
            s_exec(env->pg, fl_buf_str(&mig));
            s_gen_ledger_row(env->pg, v);
            s_dirty_capture(env->pg, &dirty);
            s_exec(env->pg, "COMMIT");
            gen = prev == 1 ? 2 : 1;
            fullgen = prevfull == 8 ? 9 : 8;
            fl_version_set_u64(&vv, (uint64_t)version);
            if (fl_schema_record_after(env->pg, "", &vv, prev, gen, NULL,
                                       FL_SCHEMA_KINDS_ASK,
                                       fl_schema_dirty_of(&dirty, gen), &fp,
                                       NULL, &err) != 0)
                fail_msg("seed %ld step %d: record after: %s", seed, step,
                         err.message);
            fl_schema_dirty_taken(&dirty, gen);
            s_snapshot(env->pg, fullgen, NULL);
            full = s_fingerprint(env->pg, fullgen);
            want = s_fingerprint_oracle(env->pg, gen);
            snprintf(g, sizeof(g), "%d", gen);
            snprintf(f, sizeof(f), "%d", fullgen);
            snprintf(pf, sizeof(pf), "%d", prevfull);
            if (fl_pg_query_value(env->pg, &stored, "SELECT schema_fingerprint"
                                  " FROM flotilla.schema_migrations WHERE"
                                  " version = $1 AND schema_recorded",
                                  1, params + 3, &err) != 0)
                fail_msg("seed %ld step %d: the ledger row: %s", seed, step,
                         err.message);
            if (fl_pg_query(env->pg, &r, s_gen_diff_sql, 4, params, &err) != 0)
                fail_msg("diff: %s", err.message);
            if (strcmp(fl_pg_value(&r, 0, 0), "0") != 0 ||
                strcmp(fp, full) != 0 || strcmp(fp, want) != 0 ||
                stored == NULL || strcmp(fp, stored) != 0) {
                fprintf(stderr, "seed %ld step %d (FLOTILLA_SCHEMA_SEED=%ld):"
                        " after\n%s\nrefresh %s, full %s, oracle %s\n%s\n",
                        seed, step, seed, fl_buf_str(&mig), fp, full, want,
                        fl_pg_value(&r, 0, 1) ? fl_pg_value(&r, 0, 1) : "");
                fail_msg("seed %ld: the refresh differs from a full snapshot",
                         seed);
            }
            fl_pg_result_release(&r);
            free(fp);
            free(full);
            free(want);
            free(stored);
        }
        fl_buf_release(&mig);
    }
    fl_schema_dirty_forget(&dirty);
}

/* The rows of table t (columns cols) of generations a and b that differ. */
#define S_TWIN_DIFF(t, cols, a, b)                                          \
    "SELECT count(*) FROM ((SELECT " cols " FROM pg_temp." t                \
    " WHERE gen = " a " EXCEPT ALL SELECT " cols " FROM pg_temp." t         \
    " WHERE gen = " b ") UNION ALL (SELECT " cols " FROM pg_temp." t        \
    " WHERE gen = " b " EXCEPT ALL SELECT " cols " FROM pg_temp." t         \
    " WHERE gen = " a ")) d"

/*
 * fl_schema_snapshot_twin (what the pipeline takes before its first
 * migration): generation 2 becomes generation 1's copy, rows, signatures
 * and fingerprint, whatever it held before; and its first refresh after
 * a migration then describes only what the migration changed, as the
 * refresh of a generation taken whole would: only that table's signature
 * is written again (a generation never taken gets every signature).  The
 * refreshed twin equals a full snapshot.
 */
static void
test_twin_is_a_copy_and_its_refresh_describes_only_the_change(void **state)
{
    s_env_t *env = *state;
    fl_error_t err = FL_ERROR_INIT;
    char *a, *b, *was, *sql, *fp = NULL;

    s_exec(env->pg, s_fixture_sql);
    s_exec(env->pg, "DO $$ BEGIN FOR i IN 1..20 LOOP EXECUTE"
                    " format('CREATE TABLE app.w%s (id int PRIMARY KEY,"
                    " v text)', i); END LOOP; END $$");
    /* What generation 2 held is replaced, not added to. */
    s_exec(env->pg, "CREATE TABLE app.gone (id int)");
    s_snapshot(env->pg, 2, NULL);
    s_exec(env->pg, "DROP TABLE app.gone");
    if (fl_schema_snapshot_twin(env->pg, 1, 2, NULL, &err) != 0)
        fail_msg("twin: %s", err.message);
    s_assert_value(env->pg, "SELECT count(*) > 100 FROM"
                   " pg_temp.flotilla_schema_snap WHERE gen = 2", "t");
    s_assert_value(env->pg, "SELECT count(*) FROM pg_temp.flotilla_schema_snap"
                   " WHERE gen = 2 AND ident LIKE '%gone%'", "0");
    s_assert_value(env->pg, S_TWIN_DIFF("flotilla_schema_snap",
                                        "kind, ident, def, rel", "1", "2"),
                   "0");
    s_assert_value(env->pg, S_TWIN_DIFF("flotilla_schema_sig", "rel, sig",
                                        "1", "2"), "0");
    s_assert_value(env->pg, "SELECT count(*) > 20 FROM"
                   " pg_temp.flotilla_schema_sig WHERE gen = 2", "t");
    a = s_fingerprint(env->pg, 1);
    b = s_fingerprint(env->pg, 2);
    assert_string_equal(a, b);
    free(b);

    was = s_value(env->pg, "SELECT max(xmin::text) FROM"
                  " pg_temp.flotilla_schema_sig WHERE gen = 2");
    s_exec(env->pg, "ALTER TABLE app.w7 ADD COLUMN x int");
    if (fl_schema_refresh(env->pg, 2, NULL, &fp, &err) != 0)
        fail_msg("refresh: %s", err.message);
    sql = fl_asprintf("SELECT string_agg(rel::regclass::text, ',')"
                      " FROM pg_temp.flotilla_schema_sig WHERE gen = 2"
                      " AND xmin::text <> '%s'", was);
    s_assert_value(env->pg, sql, "app.w7");
    free(sql);
    assert_string_not_equal(fp, a);
    s_snapshot(env->pg, 3, NULL);
    b = s_fingerprint(env->pg, 3);
    assert_string_equal(fp, b);
    s_assert_value(env->pg, S_TWIN_DIFF("flotilla_schema_snap",
                                        "kind, ident, def", "2", "3"), "0");
    free(a);
    free(b);
    free(fp);
    free(was);
}

/*
 * One migration as the pipeline runs it: sql and its ledger row in a
 * transaction that captures what it may have changed, then
 * fl_schema_record_after from generation prev to gen.  Returns the
 * number of changes recorded.
 */
static int
s_pipeline_step(fl_pg_t *pg, fl_schema_dirty_t *dirty, const char *sql,
                long version, int prev, int gen)
{
    fl_error_t err = FL_ERROR_INIT;
    fl_version_t vv = FL_VERSION_INIT;
    char v[24], *fp = NULL;
    int n = -1;

    snprintf(v, sizeof(v), "%ld", version);
    s_exec(pg, "BEGIN");
    s_exec(pg, sql);
    s_gen_ledger_row(pg, v);
    s_dirty_capture(pg, dirty);
    s_exec(pg, "COMMIT");
    fl_version_set_u64(&vv, (uint64_t)version);
    if (fl_schema_record_after(pg, "", &vv, prev, gen, NULL,
                               FL_SCHEMA_KINDS_ASK,
                               fl_schema_dirty_of(dirty, gen), &fp, &n,
                               &err) != 0)
        fail_msg("version %ld: record after: %s", version, err.message);
    fl_schema_dirty_taken(dirty, gen);
    free(fp);
    return n;
}

/*
 * A record compares only the rows where its two generations can differ
 * (schema.c, "Pairs"): a table dropped and made again the same is no
 * change, but its rows moved to another relation, which the next record
 * must still compare: dropping it then is recorded, object by object.
 */
static void
test_record_after_a_table_made_again_the_same(void **state)
{
    s_env_t *env = *state;
    fl_error_t err = FL_ERROR_INIT;
    fl_schema_dirty_t dirty = FL_SCHEMA_DIRTY_INIT;

    if (fl_ledger_ensure(env->pg, &err) != 0)
        fail_msg("ledger: %s", err.message);
    s_exec(env->pg, "CREATE SCHEMA g; CREATE TABLE g.x (id int PRIMARY KEY)");
    if (fl_schema_snapshot_twin(env->pg, 1, 2, NULL, &err) != 0)
        fail_msg("snapshot: %s", err.message);
    fl_schema_dirty_taken(&dirty, 1);
    fl_schema_dirty_taken(&dirty, 2);
    assert_int_equal(s_pipeline_step(env->pg, &dirty, "DROP TABLE g.x;"
                                     " CREATE TABLE g.x (id int PRIMARY KEY)",
                                     801, 1, 2), 0);
    assert_int_equal(s_pipeline_step(env->pg, &dirty, "DROP TABLE g.x", 802,
                                     2, 1), 6);
    s_assert_value(env->pg, "SELECT string_agg(kind || ' ' || ident, ', '"
                   " ORDER BY kind, ident) FROM flotilla.schema_changes"
                   " WHERE version = '802' AND after_def IS NULL",
                   "acl table g.x, column g.x.id, constraint g.x.x_pkey,"
                   " index g.x.x_pkey, owner table g.x, table g.x");
    fl_schema_dirty_forget(&dirty);
}

/* ---- the census's variants against the statement of every kind ---- */

/*
 * Statements that make and take away each kind the census gates (see
 * fl_schema_snapshot_every_kind), in schema k, which starts empty; as
 * s_gen_stmts, "%1$d" and "%2$d" are 0 to 3, and failures are swallowed.
 */
static const char *const s_kind_stmts[] = {
    "CREATE TABLE k.t%1$d (id int PRIMARY KEY, a int)",
    "DROP TABLE k.t%1$d CASCADE",
    "CREATE SEQUENCE k.s%1$d",
    "DROP SEQUENCE k.s%1$d CASCADE",
    "CREATE TABLE k.x%1$d (id serial PRIMARY KEY)",
    "DROP TABLE k.x%1$d",
    "CREATE FUNCTION k.f%1$d() RETURNS trigger LANGUAGE plpgsql"
    " AS $$BEGIN RETURN NEW; END$$",
    "DROP FUNCTION k.f%1$d() CASCADE",
    "CREATE TRIGGER r%2$d BEFORE INSERT ON k.t%1$d"
    " FOR EACH ROW EXECUTE FUNCTION k.f%2$d()",
    "DROP TRIGGER r%2$d ON k.t%1$d",
    "CREATE POLICY p%2$d ON k.t%1$d USING (a > %2$d)",
    "DROP POLICY p%2$d ON k.t%1$d",
    "CREATE RULE u%2$d AS ON UPDATE TO k.t%1$d DO INSTEAD NOTHING",
    "DROP RULE u%2$d ON k.t%1$d",
    "CREATE TYPE k.e%1$d AS ENUM ('a', 'b%2$d')",
    "DROP TYPE k.e%1$d CASCADE",
    "CREATE DOMAIN k.d%1$d AS int CHECK (VALUE > %2$d)",
    "DROP DOMAIN k.d%1$d CASCADE",
    "CREATE TYPE k.c%1$d AS (x int, y text)",
    "DROP TYPE k.c%1$d CASCADE",
    "CREATE STATISTICS k.st%1$d ON a, id FROM k.t%1$d",
    "DROP STATISTICS k.st%1$d",
    "CREATE VIEW k.v%1$d AS SELECT %2$d AS n",
    "DROP VIEW k.v%1$d",
    "GRANT EXECUTE ON FUNCTION k.f%1$d() TO fl_reader",
    "COMMENT ON FUNCTION k.f%1$d() IS 'f%2$d'",
    "CREATE AGGREGATE k.sm%1$d (int) (sfunc = int4pl, stype = int)",
    "DROP AGGREGATE k.sm%1$d (int)",
    "CREATE COLLATION k.co%1$d (provider = icu, locale = 'und')",
    "DROP COLLATION k.co%1$d",
    "CREATE TEXT SEARCH CONFIGURATION k.ts%1$d (copy = simple)",
    "DROP TEXT SEARCH CONFIGURATION k.ts%1$d",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA k GRANT SELECT ON TABLES TO fl_reader",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA k REVOKE SELECT ON TABLES"
    " FROM fl_reader",
    "CREATE PUBLICATION pb%2$d FOR TABLE k.t%1$d",
    "DROP PUBLICATION pb%2$d",
};

#define S_KIND_NSTMTS (sizeof(s_kind_stmts) / sizeof(s_kind_stmts[0]))

/* Rows in one of generations $1 and $2 and not the other. */
static const char s_gens_apart_sql[] =
    "WITH a AS (SELECT kind, ident, def FROM pg_temp.flotilla_schema_snap"
    "  WHERE gen = $1::int), b AS (SELECT kind, ident, def"
    "  FROM pg_temp.flotilla_schema_snap WHERE gen = $2::int),"
    " d AS ((SELECT 'census', * FROM a EXCEPT SELECT 'census', * FROM b)"
    "  UNION ALL (SELECT 'every kind', * FROM b EXCEPT"
    "  SELECT 'every kind', * FROM a))"
    " SELECT count(*), string_agg(concat_ws(' ', d.*), E'\n') FROM d";

/*
 * The snapshot the census cuts to the kinds present gives the rows and
 * fingerprint of the statement of every kind, whatever comes and goes:
 * after each generated migration in schema k (which holds none of the
 * kinds at first), a full snapshot and the pipeline's refresh
 * (fl_schema_record_after), both scoped to k, against
 * fl_schema_snapshot_every_kind.  The seeds must also have prepared
 * several variants, or the census cut nothing and the test proved
 * nothing.  FLOTILLA_SCHEMA_SEEDS seeds (default 12), or
 * FLOTILLA_SCHEMA_SEED=N alone; a failure prints its seed.
 */
static void
test_census_variants_equal_the_statement_of_every_kind(void **state)
{
    s_env_t *env = *state;
    long one = 0, seeds = s_gen_seeds(&one);
    int gen = 1;
    fl_error_t lerr = FL_ERROR_INIT;
    fl_schema_dirty_t dirty = FL_SCHEMA_DIRTY_INIT;
    char *variants = NULL;

    if (fl_ledger_ensure(env->pg, &lerr) != 0)
        fail_msg("ledger: %s", lerr.message);
    s_exec(env->pg, "DROP SCHEMA IF EXISTS k CASCADE; CREATE SCHEMA k");
    s_snapshot(env->pg, gen, "k");
    fl_schema_dirty_taken(&dirty, gen);
    for (long n = 0; n < seeds; n++) {
        long seed = one ? one : n + 1;
        uint64_t rng = (uint64_t)seed * 7919;
        fl_buf_t mig = FL_BUF_INIT(0);

        for (int step = 1; step <= 10; step++) {
            fl_error_t err = FL_ERROR_INIT;
            fl_pg_result_t r = FL_PG_RESULT_INIT;
            char a[16], b[16], v[24], *fp = NULL, *every = NULL,
                *census = NULL;
            const char *params[2] = {a, b};
            long version = 100000 + seed * 100 + step;
            fl_version_t vv = FL_VERSION_INIT;
            int prev = gen, kinds;

            fl_buf_reset(&mig);
            s_gen_statements(env->pg, &rng, s_kind_stmts, S_KIND_NSTMTS, &mig);
            snprintf(v, sizeof(v), "%ld", version);
            s_exec(env->pg, "BEGIN");
            s_exec(env->pg, fl_buf_str(&mig));
            s_gen_ledger_row(env->pg, v);
            /*
             * As the pipeline: the census with the COMMIT, unpinned (odd
             * steps); or asked by the refresh itself (even ones).
             */
            kinds = FL_SCHEMA_KINDS_ASK;
            if (step % 2 == 1) {
                if (fl_pg_query(env->pg, &r, fl_schema_census_sql, 1,
                                (const char *const[]){"k"}, &err) != 0)
                    fail_msg("census: %s", err.message);
                kinds = fl_schema_census_kinds(&r);
                fl_pg_result_release(&r);
                assert_true(kinds >= 0);
            }
            s_dirty_capture(env->pg, &dirty);
            s_exec(env->pg, "COMMIT");
            /* The refresh (generations 1 and 2 in turn), 3 full, 4 every. */
            gen = prev == 1 ? 2 : 1;
            fl_version_set_u64(&vv, (uint64_t)version);
            if (fl_schema_record_after(env->pg, "", &vv, prev, gen, "k",
                                       kinds, fl_schema_dirty_of(&dirty, gen),
                                       &fp, NULL, &err) != 0)
                fail_msg("seed %ld step %d: record after: %s", seed, step,
                         err.message);
            fl_schema_dirty_taken(&dirty, gen);
            s_snapshot(env->pg, 3, "k");
            if (fl_schema_snapshot_every_kind(env->pg, 4, "k", &err) != 0)
                fail_msg("seed %ld step %d: every kind: %s", seed, step,
                         err.message);
            census = s_fingerprint(env->pg, 3);
            every = s_fingerprint(env->pg, 4);
            for (int w = 0; w < 2; w++) {
                snprintf(a, sizeof(a), "%d", w == 0 ? gen : 3);
                snprintf(b, sizeof(b), "%d", 4);
                if (fl_pg_query(env->pg, &r, s_gens_apart_sql, 2, params,
                                &err) != 0)
                    fail_msg("apart: %s", err.message);
                if (strcmp(fl_pg_value(&r, 0, 0), "0") != 0 ||
                    strcmp(fp, every) != 0 || strcmp(census, every) != 0) {
                    fprintf(stderr, "seed %ld step %d (FLOTILLA_SCHEMA_SEED="
                            "%ld), %s: after\n%s\nrefresh %s, census %s, every"
                            " kind %s\n%s\n", seed, step, seed,
                            w == 0 ? "refresh" : "snapshot", fl_buf_str(&mig),
                            fp, census, every,
                            fl_pg_value(&r, 0, 1) ? fl_pg_value(&r, 0, 1) : "");
                    fail_msg("seed %ld: a census variant differs from the"
                             " statement of every kind", seed);
                }
                fl_pg_result_release(&r);
            }
            free(fp);
            free(every);
            free(census);
        }
        fl_buf_release(&mig);
    }
    /* The variants this connection prepared: the census did cut. */
    if (fl_pg_query_value(env->pg, &variants, "SELECT count(*) FILTER (WHERE"
                          " name <> 'flotilla_schema_snapshot_ff') > 1 AND"
                          " count(*) FILTER (WHERE name ="
                          " 'flotilla_schema_snapshot_ff') = 1"
                          " FROM pg_prepared_statements WHERE name LIKE"
                          " 'flotilla\\_schema\\_snapshot\\_%'", 0, NULL,
                          &lerr) != 0)
        fail_msg("variants: %s", lerr.message);
    assert_string_equal(variants, "t");
    free(variants);
    fl_schema_dirty_forget(&dirty);
}

/*
 * fl_pg_batch (agent/pg.c), which fl_schema_record_after sends its
 * transaction through: the steps run in order in one round trip, a
 * statement is prepared on first use and reused, and the first failure is
 * the one reported, the steps after it skipped and the transaction left
 * aborted for the caller.
 */
static void
test_batch_runs_in_order_and_stops_at_the_first_failure(void **state)
{
    s_env_t *env = *state;
    fl_error_t err = FL_ERROR_INIT;
    fl_pg_result_t rows = FL_PG_RESULT_INIT, after = FL_PG_RESULT_INIT;
    const char *one[1] = {"1"}, *two[1] = {"2"};
    const fl_pg_step_t ok[] = {
        {NULL, "BEGIN", 0, NULL, NULL},
        {"batch_ins", "INSERT INTO batch_t VALUES ($1::int)", 1, one, NULL},
        {"batch_ins", "INSERT INTO batch_t VALUES ($1::int)", 1, two, NULL},
        {NULL, "SELECT string_agg(a::text, ',' ORDER BY a) FROM batch_t", 0,
         NULL, &rows},
        {NULL, "COMMIT", 0, NULL, NULL},
    };
    const fl_pg_step_t bad[] = {
        {NULL, "BEGIN", 0, NULL, NULL},
        {"batch_ins", "INSERT INTO batch_t VALUES ($1::int)", 1, one, NULL},
        {NULL, "SELECT 1 / (a - a) FROM batch_t", 0, NULL, NULL},
        {NULL, "SELECT count(*) FROM batch_t", 0, NULL, &after},
        {NULL, "COMMIT", 0, NULL, NULL},
    };

    s_exec(env->pg, "CREATE TEMPORARY TABLE batch_t (a int)");
    assert_int_equal(fl_pg_batch(env->pg, ok, 5, &err), 0);
    assert_string_equal(fl_pg_value(&rows, 0, 0), "1,2");
    assert_false(fl_pg_in_transaction(env->pg));
    fl_pg_result_release(&rows);
    /* Prepared once: the second batch executes it without preparing. */
    assert_int_equal(fl_pg_batch(env->pg, ok, 5, &err), 0);
    assert_string_equal(fl_pg_value(&rows, 0, 0), "1,1,2,2");
    fl_pg_result_release(&rows);
    assert_int_equal(fl_pg_batch(env->pg, bad, 5, &err), FL_EDB);
    assert_string_equal(err.sqlstate, "22012");
    assert_string_equal(err.message, "division by zero");
    assert_int_equal(after.nrows, 0);
    assert_true(fl_pg_in_transaction(env->pg));
    fl_error_clear(&err);
    s_exec(env->pg, "ROLLBACK");
    s_assert_value(env->pg, "SELECT count(*) FROM batch_t", "4");
}

/*
 * fl_pg_run, which runs a migration's statements, reads their rows one at
 * a time (libpq's single-row mode) and drops them; libpq keeps that mode
 * for the first command of a pipeline sent next, whose rows then came
 * one result at a time and were taken for a failure without a message
 * (a migration's EXECUTE followed by the net's batch failed with an empty
 * error).  A batch after it gets every row; a failure of fl_pg_run is
 * the statement's.
 */
static void
test_batch_after_a_statement_run_row_by_row_gets_every_row(void **state)
{
    s_env_t *env = *state;
    fl_error_t err = FL_ERROR_INIT;
    fl_pg_result_t rows = FL_PG_RESULT_INIT, more = FL_PG_RESULT_INIT;
    const fl_pg_step_t steps[] = {
        {NULL, "SELECT a, 'v' || a AS b FROM generate_series(1, 3) a", 0,
         NULL, &rows},
        {"run_then_batch", "SELECT count(*) FROM generate_series(1, 5)", 0,
         NULL, &more},
    };

    assert_int_equal(fl_pg_run(env->pg, "SELECT generate_series(1, 100000)",
                               &err), 0);
    if (fl_pg_batch(env->pg, steps, 2, &err) != 0)
        fail_msg("the batch after fl_pg_run: \"%s\"", err.message);
    assert_int_equal(rows.nrows, 3);
    assert_int_equal(rows.ncols, 2);
    assert_string_equal(rows.names[1], "b");
    assert_string_equal(fl_pg_value(&rows, 2, 1), "v3");
    assert_string_equal(fl_pg_value(&more, 0, 0), "5");
    fl_pg_result_release(&rows);
    fl_pg_result_release(&more);
    assert_int_equal(fl_pg_run(env->pg, "SELECT 1 / (a - 3) FROM"
                               " generate_series(1, 5) a", &err), FL_EDB);
    assert_string_equal(err.sqlstate, "22012");
    fl_error_clear(&err);
    assert_int_equal(fl_pg_batch(env->pg, steps, 2, &err), 0);
    assert_int_equal(rows.nrows, 3);
    fl_pg_result_release(&rows);
    fl_pg_result_release(&more);
}

static void
test_describe_words_each_difference_on_one_line(void **state)
{
    fl_schema_diff_t items[3] = {
        {"column", "app.t.a", "integer", "text"},
        {"index", "app.t.i", "CREATE INDEX i ON app.t USING btree (a)", NULL},
        {"view", "app.v", NULL, " SELECT t.a\n   FROM app.t;"},
    };
    fl_schema_diff_list_t l = {items, 3};
    fl_schema_diff_list_t many = {NULL, 0};
    fl_buf_t longdef = FL_BUF_INIT(0);
    char *got = fl_schema_diff_describe(&l);

    (void)state;
    assert_string_equal(got, "column app.t.a: differs: expected integer,"
                             " found text\n"
                             "index app.t.i: missing\n"
                             "view app.v: unexpected");
    free(got);
    /* Long defs are cut at a character boundary; long lists counted. */
    for (int i = 0; i < 60; i++)
        fl_buf_addf(&longdef, "\xc3\xa9t\xc3\xa9 ");
    many.count = 60;
    many.items = fl_calloc(60, sizeof(*many.items));
    for (size_t i = 0; i < 60; i++) {
        many.items[i].kind = fl_strdup("column");
        many.items[i].ident = fl_asprintf("app.t.c%zu", i);
        many.items[i].expected = fl_strdup(fl_buf_str(&longdef));
        many.items[i].actual = fl_strdup("text");
    }
    got = fl_schema_diff_describe(&many);
    assert_non_null(strstr(got, "\n... and 10 more"));
    assert_non_null(strstr(got, "column app.t.c0: differs: expected "
                                "\xc3\xa9t\xc3\xa9 \xc3\xa9t\xc3\xa9"));
    assert_non_null(strstr(got, "\xc3\xa9..., found text\n"));
    assert_null(strstr(got, "app.t.c50"));
    free(got);
    fl_schema_diff_list_release(&many);
    fl_buf_release(&longdef);
    got = fl_schema_diff_describe(&many);
    assert_string_equal(got, "");
    free(got);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_snapshot_unchanged_schema_keeps_its_fingerprint, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_snapshot_leaves_out_extension_objects, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_each_kind_of_change_is_detected,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_a_foreign_key_switched_off_is_a_change, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_recreate_after_bare_down_leaves_no_difference, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_down_with_another_type_is_reported_object_by_object, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_recreate_restores_grants_owners_and_comments, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_recreated_check_runs_as_table_owner, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_tampered_changes_are_refused_before_anything_runs, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(test_tenant_functions_never_run,
                                        s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_snapshot_replaced_in_place_equals_a_fresh_one, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_default_acl_written_out_compares_equal, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_record_and_fingerprint_refuse_without_writing, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(test_snapshot_says_nothing, s_setup,
                                        s_teardown),
        cmocka_unit_test_setup_teardown(
            test_refresh_equals_full_snapshot_after_generated_migrations,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_twin_is_a_copy_and_its_refresh_describes_only_the_change,
            s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(
            test_record_after_a_table_made_again_the_same, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_census_variants_equal_the_statement_of_every_kind, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_batch_runs_in_order_and_stops_at_the_first_failure, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_batch_after_a_statement_run_row_by_row_gets_every_row,
            s_setup, s_teardown),
        cmocka_unit_test(test_describe_words_each_difference_on_one_line),
    };
    return cmocka_run_group_tests_name("schema", tests, NULL, NULL);
}
