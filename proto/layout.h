/*
 * layout.h - the migration layouts of the common tools, recognised in a
 * directory tree from names and folders, and the migrations found there
 * listed as each tool would run them: in its order, with its transaction
 * rules.  `flotilla lint` reads every tree through this module, and
 * `flotilla apply` can take other tools' migrations as sources with it.
 *
 * The layouts (docs/lint.md has a tree of each):
 *
 *   flotilla        NNNN_name.sql with "-- flotilla:up" sections, and
 *                   R__name.sql with them (repeatable)
 *   diesel          <version>_<name>/up.sql, down.sql, metadata.toml
 *   golang-migrate  N_name.up.sql, N_name.down.sql
 *   pop (and kratos's popx)
 *                   N_name[.dialect][.autocommit].up.sql (or .down, .fizz)
 *   sqlx            N_name.sql, or N_name.up.sql and N_name.down.sql
 *   dbmate          N_name.sql with "-- migrate:up" and "-- migrate:down"
 *   flyway          V1__name.sql, U1__name.sql (undo), R__name.sql
 *                   (repeatable), B1__name.sql (baseline), with an
 *                   optional V1__name.sql.conf
 *
 * Any other .sql file is plain SQL.  golang-migrate and sqlx share the
 * N_name.up.sql names, and sqlx's N_name.sql is also the name of a plain
 * script: such a directory is sqlx when the file starts with
 * "-- no-transaction" or when the nearest enclosing project is a Rust one
 * (Cargo.toml before go.mod), else golang-migrate and plain SQL;
 * fl_layout_options_t.prefer decides instead when set.  Pop files carry a
 * dialect: PostgreSQL's (postgres, postgresql, pg), else the
 * dialect-neutral file, are taken; other dialects and .fizz files are
 * skipped and listed in fl_layout_t.skipped.
 *
 * Directories are walked recursively, in name order; names starting with
 * '.' and node_modules are skipped, and symbolic links to directories are
 * not followed (so no walk loops), but for a link to a diesel migration
 * folder (one holding up.sql), which is a migration as diesel follows it,
 * read when its real path is inside the directory scanned (else a
 * migration with problem set, naming the link).  Each directory yields
 * one source per tool found in it; a diesel migration's own folder
 * belongs to its parent's source.
 *
 * Nothing in a tree makes a scan fail: an unreadable file, a file the
 * tool would refuse (a flotilla file that does not parse, a down without
 * its up, two files for one version, a dbmate file without
 * "-- migrate:up") is a migration with problem set, and the rest is
 * listed as usual.  Thread safety: no global state.
 */
#ifndef FL_PROTO_LAYOUT_H
#define FL_PROTO_LAYOUT_H

#include <stddef.h>

#include "common/error.h"
#include "proto/migration.h"

typedef enum {
    FL_LAYOUT_AUTO = 0, /* options only: recognise from names and folders */
    FL_LAYOUT_SQL,      /* plain SQL, not a migration of any tool */
    FL_LAYOUT_FLOTILLA,
    FL_LAYOUT_DIESEL,
    FL_LAYOUT_GOLANG_MIGRATE,
    FL_LAYOUT_POP,
    FL_LAYOUT_SQLX,
    FL_LAYOUT_DBMATE,
    FL_LAYOUT_FLYWAY
} fl_layout_tool;

/* "auto", "sql", "flotilla", "diesel", "golang-migrate", "pop", "sqlx",
 * "dbmate", "flyway" (static strings). */
const char *fl_layout_tool_name(fl_layout_tool tool);

/* The tool of that name; FL_EINVAL listing the names when there is none. */
int fl_layout_tool_from_name(fl_layout_tool *out, const char *name,
                             fl_error_t *err) FL_NODISCARD;

/* How a tool runs one file (or section) of a migration. */
typedef enum {
    /* Statement by statement, each committing on its own (flotilla's
     * no-transaction, Flyway outside a transaction, psql -f). */
    FL_LAYOUT_TX_NONE = 0,
    /* Inside BEGIN ... COMMIT (the default of every tool but
     * golang-migrate). */
    FL_LAYOUT_TX_WRAPPED,
    /* Sent to the server as one query string, which PostgreSQL runs as
     * one implicit transaction when it holds more than one statement:
     * golang-migrate always, and diesel's run_in_transaction = false,
     * pop's .autocommit., sqlx's -- no-transaction, dbmate's
     * transaction:false. */
    FL_LAYOUT_TX_IMPLICIT,
    /* Flyway: wrapped, unless a statement it knows cannot run in a
     * transaction is in the file, then none. */
    FL_LAYOUT_TX_AUTO
} fl_layout_tx;

/* One part (up or down) of a migration. */
typedef struct {
    char *path;      /* the file holding it; NULL when there is no such part */
    char *text;      /* its SQL (NUL-terminated); NULL when path is NULL or
                        the file could not be read */
    int line;        /* 1-based line of path where text begins */
    fl_layout_tx tx; /* how the tool runs it */
} fl_layout_part_t;

typedef struct {
    fl_layout_tool tool;
    /* As the tool records it in its ledger: "20190226002946" for diesel's
     * 2019-02-26-002946 (diesel drops the dashes), pop's 20 digits as they
     * are, "1.2" for Flyway's V1_2.  NULL for plain SQL and Flyway's
     * repeatable migrations. */
    char *version;
    char *name;       /* the description part of the name, as written */
    char *label;      /* the file or folder name that holds it */
    int repeatable;   /* Flyway's or flotilla's R__: runs after the
                         versioned ones whenever its text changes */
    fl_layout_part_t up;   /* for plain SQL: the whole file */
    fl_layout_part_t down; /* Flyway: the U file; path NULL when none */
    /* FLOTILLA only: the file as fl_migration_parse() read it (owned);
     * NULL otherwise and when the file does not parse. */
    fl_migration_t *flotilla;
    /* Why the tool would refuse it, or NULL.  problem_path and
     * problem_line (1-based, 0 when unknown) say where. */
    char *problem;
    char *problem_path;
    int problem_line;
} fl_layout_migration_t;

/* The migrations of one tool in one directory, in the order it runs them. */
typedef struct {
    char *dir;
    fl_layout_tool tool;
    fl_layout_migration_t *items;
    size_t count;
} fl_layout_source_t;

/* A file the scan saw and left alone, with why (static string). */
typedef struct {
    char *path;
    const char *why;
} fl_layout_skip_t;

typedef struct {
    fl_layout_source_t *sources; /* in walk order */
    size_t count;
    fl_layout_skip_t *skipped;
    size_t nskipped;
} fl_layout_t;

typedef struct {
    /* The tool for names several tools share (N_name.up.sql: sqlx or
     * golang-migrate; N_name.sql: sqlx or plain SQL); FL_LAYOUT_SQL takes
     * every file for plain SQL.  FL_LAYOUT_AUTO guesses as above. */
    fl_layout_tool prefer;
    int recursive;   /* walk subdirectories (default 1) */
    /* A single up file named is its whole migration, its down file too
     * (what runs it needs); 0 (default): the file alone (what lint
     * reads).  A down file named is the down alone either way. */
    int whole;
} fl_layout_options_t;

#define FL_LAYOUT_OPTIONS_INIT {FL_LAYOUT_AUTO, 1, 0}

/*
 * Scans path, a directory or one file, into out (released by the caller
 * with fl_layout_release(), also after a failure).  A single file is
 * recognised with its folder as context: a diesel up.sql belongs to its
 * migration folder, a golang-migrate down file is that migration's down.
 * Fails only when path itself cannot be read: FL_ENOTFOUND when it does
 * not exist, FL_EIO otherwise.  opts may be NULL (defaults).
 */
int fl_layout_scan(fl_layout_t *out, const char *path,
                   const fl_layout_options_t *opts, fl_error_t *err) FL_NODISCARD;

/* The number of migrations in all sources. */
size_t fl_layout_count(const fl_layout_t *layout);

void fl_layout_release(fl_layout_t *layout);

/*
 * Compares two versions as the tool orders them (<0, 0, >0): by value for
 * flotilla, golang-migrate and sqlx (digits of any length); as strings
 * for diesel, pop and dbmate (as their sorts do); part by part for Flyway
 * ("1.10" after "1.9").  NULL (plain SQL, repeatables) sorts last.
 */
int fl_layout_version_cmp(fl_layout_tool tool, const char *a, const char *b);

#endif
