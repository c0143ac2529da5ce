/*
 * schema.h - what rollback proves about the schema: snapshots of the
 * catalog, the objects a migration changed, their re-creation after
 * `down`, and the proof that nothing else differs (DESIGN.md, guarantees
 * 3 and 6).
 *
 * A snapshot describes the managed schemas as rows (kind, ident, def) in
 * the session's temporary table pg_temp.flotilla_schema_snap, under a
 * generation number the caller picks.  One row per object; ident is a
 * stable identity with names quoted as format('%I') quotes them, columns
 * by name (never by position); def is everything that must match:
 *
 *   kind        ident                          def
 *   schema      app                            "" (owner and acl: own rows)
 *   table       app.t                          relkind, unlogged, partition
 *                                              key/bound, inheritance, access
 *                                              method, options, tablespace,
 *                                              row security, replica identity,
 *                                              foreign server
 *   view        app.v                          options + pg_get_viewdef
 *   matview     app.m                          (not populated) + viewdef
 *   column      app.t.c                        type, COLLATE (non-default),
 *                                              NOT NULL, identity, DEFAULT or
 *                                              generated expression, storage,
 *                                              compression, statistics, options
 *   constraint  app.t.c                        pg_get_constraintdef
 *   index       app.t.i                        pg_get_indexdef, after flags:
 *                                              (constraint) (partition)
 *                                              (invalid) (clustered)
 *                                              (replica identity)
 *   trigger     app.t.tr                       pg_get_triggerdef after
 *                                              (disabled) (replica) (always)
 *   sequence    app.s                          type, start, increment, min,
 *                                              max, cache, cycle, "owned by
 *                                              app.t.c" or "identity of ..."
 *   type        app.ty                         enum labels in order; domain
 *                                              base, default, NOT NULL and
 *                                              constraints; composite
 *                                              attributes; range subtype
 *   function    app.f(integer, text)           kind and sha256 of
 *                                              pg_get_functiondef (settings
 *                                              included) or the aggregate
 *   policy      app.t.p                        permissive, command, roles,
 *                                              USING, WITH CHECK
 *   rule        app.t.r                        pg_get_ruledef and its state
 *   statistics  app.st                         pg_get_statisticsobjdef
 *   comment     <kind> <ident>, e.g.           the comment text, for schemas,
 *               "column app.t.c"               tables, views, sequences,
 *                                              columns, constraints, indexes,
 *                                              triggers, policies, rules,
 *                                              types, functions, statistics
 *   owner       <kind> <ident>                 the owner, quoted (schemas,
 *                                              relations but sequences linked
 *                                              to a column, whose owner is
 *                                              the table's, types, functions,
 *                                              statistics)
 *   acl         <kind> <ident>                 "grantee=PRIV,PRIV* ..." sorted,
 *                                              '*' for grant option, grantor
 *                                              left out, NULL acl shown as the
 *                                              default; PUBLIC unquoted.  For
 *                                              relations, columns (only when
 *                                              some grant exists), schemas,
 *                                              types and functions
 *   snapshot    ""                             the scope ("*" or the schema):
 *                                              comparisons refuse generations
 *                                              of different scopes
 *
 * Managed schemas: all but pg_catalog, information_schema, pg_toast*,
 * pg_temp*, flotilla and flotilla_backup, or the one schema asked for.
 *
 * Not compared: objects that belong to an extension (pg_depend 'e') and
 * functions internal to a type (range constructors); sequence positions
 * and rows (the data restore proves those); default privileges, event
 * triggers, publications, casts, operators, collations, text search
 * objects, foreign servers; comments on domain constraints; tablespaces of
 * indexes beyond what pg_get_indexdef prints.  Catalog text is rendered
 * under pinned settings, so defs do not depend on the caller's session.
 *
 * Session: every function here runs on the pipeline's own connection (the
 * temporary tables and the migration's transaction are per session), one
 * thread at a time.  The functions work inside and outside a transaction;
 * outside one, each call is its own transaction.  The calls that read the
 * catalog (snapshot, recreate, prove) pin search_path (empty), DateStyle,
 * IntervalStyle, TimeZone, extra_float_digits, quote_all_identifiers,
 * standard_conforming_strings, jit (off), plan_cache_mode (generic plans)
 * and enable_sort (off) as transaction-local settings, and inside the
 * caller's transaction set the caller's values back before returning.
 * record_changes and fingerprint render nothing and run as one statement
 * under the caller's settings.  Every function, catalog and cast named is
 * schema-qualified besides, and so is every operator of record_changes
 * and fingerprint: nothing a tenant creates runs in their place.  A
 * snapshot taken in a transaction that rolls back is lost with it.  The
 * first snapshot of a session creates the temporary tables, which a
 * read-only transaction cannot do.
 *
 * Refresh: every catalog row PostgreSQL writes carries the writing
 * transaction's id (xmin), and a deleted one is gone, so the count and the
 * xmin sum of the catalog rows that belong to a relation change whenever
 * one of them is written or deleted.  fl_schema_refresh() keeps them per
 * relation and generation and describes again only the relations whose
 * figures moved.  What it does not see, and a full snapshot does: a
 * change in the text of a relation's objects that comes from an object
 * outside the managed schemas (a renamed collation, tablespace, access
 * method or foreign server, a type or function of another schema) or
 * from a renamed role named only in a policy; and a catalog row written
 * by a transaction whose id is below the one it replaces while the
 * counts and sums of that relation move back to equal (concurrent
 * transactions committing in the opposite order, at once deleting and
 * adding rows of the same relation).  Freezing, VACUUM FULL of a catalog
 * and the like only make it describe more.  The rollback's own snapshots
 * (agent/rollback.c) are full.
 *
 * After a transactional migration the pipeline computes those figures
 * only for the relations the migrations since the generation may have
 * changed (fl_schema_dirty_t): those their transactions held a lock on
 * above ROW EXCLUSIVE before COMMIT (every ALTER, CREATE, DROP, COMMENT,
 * and what a trigger, DO block or cascade did), whose columns they wrote
 * (a column's GRANT takes no lock), whose pg_class row is not the one
 * the generation saw (a table's GRANT takes no lock), and any the
 * generation does not know; the roles' names are hashed with signature 0
 * (a renamed grantee).  What this adds to the limits above: a change
 * another session made meanwhile to a relation none of those name is
 * not seen until a snapshot computes every relation's figures (the next
 * connection's first, or after a no-transaction migration, a rollback,
 * a failure to record), so it is not attributed to the migration.
 *
 * Cost (bench/schema.sh): a snapshot reads pg_class and pg_namespace,
 * and the other catalogs' rows of the managed objects through indexes,
 * and writes only the rows that differ from the generation it replaces:
 * what it costs grows with the managed objects, not with the catalogs'
 * built-in rows.  Its fingerprint is computed with it, in the round trip
 * of its COMMIT.  The pipeline's first snapshot of a run is copied to a
 * twin generation (fl_schema_snapshot_twin) rather than described twice,
 * and a record of changes compares only the rows of the relations where
 * its two generations can differ, which the snapshots keep exactly
 * (schema.c, "Pairs"): after a small migration on a schema of 1,000
 * tables, the record costs 0.3 ms instead of 9 (bench/apply.sh, part 4).  Types and functions are found through the dependency
 * on their schema that PostgreSQL records for every one it did not
 * create itself, so a snapshot of pg_catalog (only_schema) lists none of
 * its built-in types and functions.
 *
 * Trust: flotilla.schema_changes lives in the target and can be edited by
 * whoever may write the flotilla schema.  fl_schema_recreate never runs
 * its text unchecked: comments, grants, owners and sequence ownership are
 * generated from parsed values and catalog names, quoted; index, trigger
 * and constraint definitions must parse (the PostgreSQL 15 grammar) as one
 * statement of the expected kind on the table the change names, and run
 * as one statement (a CHECK, whose expression runs while the constraint
 * is validated, as the table's owner).  A tampered definition is refused
 * before anything runs.  What such a writer can still do is choose which
 * comment, grant or owner a rollback restores on managed objects.
 *
 * Targets: the ledger rows of flotilla.schema_changes belong to a target
 * ("" the whole database, or a schema of a schema-per-tenant database;
 * agent/ledger.c); the functions that read or write them take it.
 *
 * Errors: 0 or a negative fl_code; FL_EDB with PostgreSQL's fields when a
 * query fails, FL_EINVAL for a refused change, FL_ECONFLICT for
 * generations of different scopes, FL_ENOTFOUND for a generation never
 * taken.  Written for PostgreSQL 15.
 */
#ifndef FL_AGENT_SCHEMA_H
#define FL_AGENT_SCHEMA_H

#include <stddef.h>
#include <stdint.h>

#include "agent/pg.h"
#include "common/error.h"
#include "proto/version.h"

/*
 * Describes the managed schemas (or only only_schema when not NULL) into
 * pg_temp.flotilla_schema_snap under generation gen, replacing rows of the
 * same gen (writing only those that differ), and computes its fingerprint
 * (kept in pg_temp.flotilla_schema_gen).  Creates the temporary tables
 * when missing.  Generations live until the session ends; reuse numbers
 * to keep the tables small.
 */
int fl_schema_snapshot(fl_pg_t *pg, int gen, const char *only_schema,
                       fl_error_t *err) FL_NODISCARD;
/*
 * fl_schema_snapshot() into gen, and generation twin (not gen) made the
 * same, rows, signatures and fingerprint, in the same transaction.  For
 * a caller that alternates two generations (the pipeline: the snapshot
 * before each migration is the one after the migration before): the
 * first refresh of twin then describes only what changed, where a twin
 * never taken would be described whole a second time (on a schema of
 * 1,000 tables, some 250 ms against the copy's few).
 */
int fl_schema_snapshot_twin(fl_pg_t *pg, int gen, int twin,
                            const char *only_schema,
                            fl_error_t *err) FL_NODISCARD;
/*
 * The statement behind a snapshot (and a refresh) describes only the
 * kinds of object a census in the same transaction finds in the schemas
 * (triggers, policies, rules, sequences, types, functions, statistics):
 * a variant cheaper to parse and plan on each new connection.  This one
 * describes every kind without asking: the reference the variants are
 * tested against (tests/integration/test_schema.c).
 */
/*
 * The census: which kinds of object the snapshot must describe in the
 * managed schemas ($1 NULL), or in schema $1, one row and column.  Every
 * operator is spelled out: it may run with the caller's search_path.
 * fl_schema_census_kinds() reads its result: the kinds, or
 * FL_SCHEMA_KINDS_ASK when r is not its row.
 */
#define FL_SCHEMA_KINDS_ASK (-1)
/* The census's bit for sequences. */
#define FL_SCHEMA_KIND_SEQUENCE 8
extern const char fl_schema_census_sql[];
int fl_schema_census_kinds(const fl_pg_result_t *r);

int fl_schema_snapshot_every_kind(fl_pg_t *pg, int gen,
                                  const char *only_schema,
                                  fl_error_t *err) FL_NODISCARD;

/*
 * Brings generation gen up to date as fl_schema_snapshot() would, but
 * describes again only the relations whose catalog rows changed since gen
 * was last taken or refreshed in this session, and those with an object
 * that depends on one of them (a view, a foreign key, a column default,
 * an owned sequence, a partition); the rows of the others are kept.
 * Everything is described again when gen was never taken, or when a
 * schema, type, function, statistics object, extension membership or
 * the owner or grants of one of them changed.  The result equals a full
 * snapshot's, rows and fingerprint (tests/integration/test_schema.c
 * checks it after generated migrations), within the limits of "Refresh"
 * above.  *fp (may be NULL) gets the new fingerprint, a new string the
 * caller frees (NULL on error).
 */
int fl_schema_refresh(fl_pg_t *pg, int gen, const char *only_schema,
                      char **fp, fl_error_t *err) FL_NODISCARD;

/*
 * The fingerprint of generation gen (hex, 64 digits, computed by the
 * server when the snapshot was taken): the XOR of the SHA-256 of each
 * row, written "len:kind len:ident len:def" (lengths in bytes).  An XOR
 * of hashes does not depend on the rows' order and can be updated row by
 * row; it detects any change of the rows, but unlike one hash over all
 * of them it is not collision-resistant against someone who chooses many
 * objects to cancel out a change: it is a change detector, not a
 * signature.  *out is a new string the caller frees; NULL on error.
 * FL_ENOTFOUND when gen was never taken in this session.
 */
int fl_schema_fingerprint(fl_pg_t *pg, int gen, char **out,
                          fl_error_t *err) FL_NODISCARD;

/*
 * The DDL of flotilla.schema_changes: one row per object a migration
 * version changed, its def before and after (NULL: absent on that side).
 * Run by the ledger's creation, after the flotilla schema exists.
 */
extern const char fl_schema_ledger_sql[];

/*
 * Stores in flotilla.schema_changes every object whose def differs between
 * generations gen_before and gen_after, replacing the rows of version.
 * *count (may be NULL) gets the number of rows stored.  FL_ENOTFOUND when
 * a generation was never taken; FL_ECONFLICT when their scopes differ.
 */
int fl_schema_record_changes(fl_pg_t *pg, const char *target,
                             const fl_version_t *version, int gen_before, int gen_after,
                             int *count, fl_error_t *err) FL_NODISCARD;

/*
 * Which relations may have changed since a generation was taken, so that
 * its refresh computes the signatures of those only (schema.c,
 * S_DETECT_SQL) instead of every relation's.  since[g - 1], for
 * generations 1 and 2: an array of relation OIDs as PostgreSQL writes it
 * ("{16385,16390}"), or NULL when anything may have changed (a change
 * nobody listed: no-transaction statements, a rollback, another
 * session).  A refresh also takes every relation whose pg_class row is
 * not the one it last saw, and every relation it does not know.
 */
typedef struct {
    char *since[2];
} fl_schema_dirty_t;

#define FL_SCHEMA_DIRTY_INIT {{NULL, NULL}}

/* Anything may have changed, for every generation (also: release). */
void fl_schema_dirty_forget(fl_schema_dirty_t *d);
/* Generation gen was just taken or refreshed: nothing changed since. */
void fl_schema_dirty_taken(fl_schema_dirty_t *d, int gen);
/* A transaction committed that may have changed oids (NULL: anything). */
void fl_schema_dirty_add(fl_schema_dirty_t *d, const char *oids);
/* What the refresh of gen passes (NULL: every relation); lent. */
const char *fl_schema_dirty_of(const fl_schema_dirty_t *d, int gen);

/*
 * Run in a migration's transaction after its last statement, before
 * COMMIT: the relations it may have changed, as one value for
 * fl_schema_dirty_add.  Every relation this transaction holds a lock on
 * that a change of the catalog takes (anything above ROW EXCLUSIVE: ALTER,
 * CREATE INDEX, COMMENT, a DROP, a relation made; an index counts as its
 * table), and $1, an array of the relations whose pg_attribute rows it
 * wrote (a column's GRANT takes no lock; the net knows them).  A table's
 * GRANT takes no lock either: it rewrites the pg_class row, which the
 * refresh compares itself.
 */
extern const char fl_schema_dirty_sql[];

/*
 * What the pipeline does after a migration's COMMIT, in one transaction
 * and one round trip: fl_schema_refresh() of gen_after,
 * fl_schema_record_changes() from gen_before, and the fingerprint stored
 * in version's ledger row (flotilla.schema_migrations, marked recorded).
 * Must be called outside a transaction, after gen_before was taken in
 * this session (else FL_ENOTFOUND).  *fp gets the fingerprint (a new
 * string, NULL on error); *count (may be NULL) the changes recorded.
 * FL_ECONFLICT when the generations' scopes differ (the refresh is then
 * kept, nothing recorded).  kinds: fl_schema_census_kinds() of
 * fl_schema_census_sql run after the migration's last change (with its
 * COMMIT, in the same round trip), or FL_SCHEMA_KINDS_ASK: the census is
 * then asked here, in one more round trip.  dirty: fl_schema_dirty_of
 * gen_after (NULL: every relation's signature is computed).
 */
int fl_schema_record_after(fl_pg_t *pg, const char *target,
                           const fl_version_t *version,
                           int gen_before, int gen_after,
                           const char *only_schema, int kinds,
                           const char *dirty, char **fp,
                           int *count, fl_error_t *err) FL_NODISCARD;

/*
 * fl_schema_record_after for a repeatable migration (name): the refresh
 * of gen_after, the objects that differ from gen_before added to those
 * of its earlier runs (flotilla.repeatable_objects, never removed), and
 * the fingerprint in its repeatable_migrations row.  As
 * fl_schema_record_after otherwise.
 */
int fl_schema_record_repeatable(fl_pg_t *pg, const char *target,
                                const char *name, int gen_before,
                                int gen_after, const char *only_schema,
                                int kinds, const char *dirty, char **fp,
                                int *count, fl_error_t *err) FL_NODISCARD;

/*
 * Reports one re-created object.  kind and ident are lent for the call.
 */
typedef void (*fl_schema_note_fn)(const char *kind, const char *ident,
                                  void *arg);

/*
 * Re-creates, after `down` and the data restore, what version's changes
 * say existed before it and is not so now: indexes (not those backing a
 * constraint, which come back with it; with their clustered and replica
 * identity marks), constraints, triggers and their enabled state,
 * sequence ownership (OWNED BY), owners, grants and comments, in that
 * order.  An index, constraint or trigger that exists with another
 * definition is left alone for the proof to report, as is anything whose
 * table is gone.  Every definition is checked before the first statement
 * runs: a refused one fails the call with FL_EINVAL (naming kind, ident
 * and version) and nothing is executed.  Outside a transaction the work
 * is one transaction of its own.  note (may be NULL) hears of each object
 * re-created; *count (may be NULL) gets their number.
 */
int fl_schema_recreate(fl_pg_t *pg, const char *target,
                       const fl_version_t *version,
                       fl_schema_note_fn note, void *arg, int *count,
                       fl_error_t *err) FL_NODISCARD;

/* One object whose def is not the expected one. */
typedef struct {
    char *kind;
    char *ident;
    char *expected; /* NULL: should not exist */
    char *actual;   /* NULL: missing */
} fl_schema_diff_t;

typedef struct {
    fl_schema_diff_t *items; /* ordered by kind, then ident */
    size_t count;
} fl_schema_diff_list_t;

#define FL_SCHEMA_DIFF_LIST_INIT {NULL, 0}

/*
 * The kinds of object a migration's recorded changes cover, kept in its
 * ledger row (schema_format) when they are recorded: 1, relations and
 * what hangs on them, schemas, types, functions, statistics objects;
 * 2 adds publications and their tables and schemas, extensions, casts,
 * event triggers, collations, conversions, operators, operator classes
 * and families, text search configurations and dictionaries, and default
 * privileges.
 */
#define FL_SCHEMA_FORMAT 2

/*
 * The schema as flotilla left it.  After each migration it applies (and
 * each repeatable migration's run), in the transaction that records the
 * migration's changes, and after each rollback whose schema it proved,
 * in the rollback's transaction, the fingerprint of the target's schema
 * is kept in flotilla.schema_state with what left it so ("apply 5",
 * "rollback 5", "repeatable R__views.sql").  A snapshot that differs
 * from it later was changed by someone else: a DBA's CREATE INDEX, a
 * hand-run ALTER, an application's DDL, or a migration without a
 * transaction that failed after some of its statements committed (the
 * record is made only after a migration that succeeded).  `status` says
 * so, and `apply` warns before it runs anything.  The fingerprint is a
 * change detector (schema.c): it says that something differs, not what.
 */
#define FL_SCHEMA_STATE_SQL                                                 \
    "CREATE TABLE IF NOT EXISTS flotilla.schema_state ("                   \
    "  target pg_catalog.text PRIMARY KEY,"                                 \
    "  fingerprint pg_catalog.text NOT NULL,"                               \
    "  format pg_catalog.int4 NOT NULL,"                                    \
    "  after pg_catalog.text NOT NULL,"                                     \
    "  recorded_at pg_catalog.timestamptz NOT NULL);"

typedef struct {
    int known;         /* a state of this schema format was recorded */
    int changed;       /* the snapshot's fingerprint is not that state's */
    char *after;       /* what left it: "apply 5", "rollback 5", ... */
    char *recorded_at; /* UTC, ISO 8601 */
} fl_schema_state_t;

#define FL_SCHEMA_STATE_INIT {0, 0, NULL, NULL}

/*
 * Records generation gen's fingerprint as target's schema as flotilla
 * left it, after what ("rollback 5").  In the caller's transaction.
 */
int fl_schema_state_record(fl_pg_t *pg, const char *target, int gen,
                           const char *after, fl_error_t *err) FL_NODISCARD;

/*
 * Compares generation gen (a snapshot of target's whole scope) with the
 * schema as flotilla last left target: fills out (released with
 * fl_schema_state_release).  out->known is 0 when no state of the current
 * format was recorded (a ledger older than version 10, or nothing applied
 * since): nothing can be said.
 */
int fl_schema_state_check(fl_pg_t *pg, const char *target, int gen,
                          fl_schema_state_t *out,
                          fl_error_t *err) FL_NODISCARD;

/*
 * What st says, in the words status, plan and apply use ("the schema
 * differs from the one flotilla left after apply 5 at ...: ..."): a new
 * string, or NULL when st is not known to have changed.
 */
char *fl_schema_state_text(const fl_schema_state_t *st);

void fl_schema_state_release(fl_schema_state_t *st);

/*
 * The proof of a rollback.  Expected: generation gen_before_down (taken
 * just before `down`) except for the objects version changed, which are
 * expected as their before_def says.  Fills out (which the caller
 * releases; empty when nothing differs) with every object of generation
 * gen_now whose def is not the expected one.  format is the one the
 * version's changes were recorded in: kinds it did not cover are left
 * out of the comparison (the migration may have changed them, unrecorded,
 * and its down change them back).  Differences are not an error: the
 * caller decides; fl_schema_diff_describe() words them.
 */
int fl_schema_prove(fl_pg_t *pg, const char *target,
                    const fl_version_t *version,
                    int gen_before_down, int gen_now, int format,
                    fl_schema_diff_list_t *out, fl_error_t *err) FL_NODISCARD;

/* Frees the items; l can be reused.  Accepts NULL. */
void fl_schema_diff_list_release(fl_schema_diff_list_t *l);

/*
 * A readable detail, one object per line ("index app.t.i: missing",
 * "... unexpected", "... differs: expected X, found Y"), each def on one
 * line and cut at 120 bytes, at most 50 lines and then a count of the
 * rest.  Returns a new string ("" for an empty list).
 */
char *fl_schema_diff_describe(const fl_schema_diff_list_t *l);

#endif
