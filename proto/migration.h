/*
 * migration.h - migration sources: the NNNN_name.sql files of a migrations
 * directory and the migrations carried inside a bundle.
 *
 * A file holds sections marked by comment lines (see docs/migrations.md):
 *
 *   -- flotilla:options lock_timeout=2s statement_timeout=5min
 *   -- flotilla:validate
 *   -- flotilla:up
 *   -- flotilla:down
 *   -- flotilla:verify
 *
 * `up` is required.  Options: no-transaction, lock_timeout=DURATION,
 * statement_timeout=DURATION, allow=RULE REASON (the reason is required).
 * Every error names the file and the line.
 *
 * CONTRACT used by agent/ (the pipeline): the fields below are fixed; the
 * implementation may add fields but not change these.
 */
#ifndef FL_PROTO_MIGRATION_H
#define FL_PROTO_MIGRATION_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "proto/version.h"

typedef struct {
    char *rule;   /* lint rule id */
    char *reason; /* why it is allowed; never empty */
} fl_migration_allow_t;

/* The most files one migration groups (fl_migration_t.parts). */
#define FL_MIGRATION_MAX_PARTS 1000

/* The longest lock_timeout or statement_timeout PostgreSQL takes (ms). */
#define FL_MIGRATION_MAX_TIMEOUT_MS 2147483647

typedef struct {
    fl_version_t version; /* NNNN of the file name, or the version
                             of another tool's migration (version.h) */
    char *name;           /* the file name without "NNNN_" and ".sql" */
    char *file;           /* the file name, e.g. "0003_add_email.sql" */
    char *up;             /* section texts; NULL when the section is absent */
    char *down;
    char *validate;
    char *verify;
    int up_line;          /* 1-based line in the file where each section's */
    int down_line;        /* text begins (the line after its marker); 0   */
    int validate_line;    /* when absent                                   */
    int verify_line;
    int no_transaction;             /* option no-transaction */
    int64_t lock_timeout_ms;        /* -1 when not set */
    int64_t statement_timeout_ms;   /* -1 when not set */
    fl_migration_allow_t *allows;
    size_t nallows;
    unsigned char checksum[32];     /* SHA-256 of the canonical encoding */
    char checksum_hex[65];          /* the same in lower-case hex */
    /* Another tool's migration (agent/source.h): why it runs without a
     * transaction when no_transaction was inferred; NULL otherwise.  Not
     * in the checksum (it says where the source came from), but in a
     * bundle.  pop's groups (parts below) have one whatever their
     * transaction. */
    char *note;
    /* A repeatable migration (R__name.sql; see fl_migration_parse_repeatable):
     * no version (empty), no down, run after the versioned ones whenever
     * its checksum changes.  Hashed under a domain of its own. */
    int repeatable;
    /* Another tool's migration made of several files (pop's files sharing
     * one name, agent/source.h): the versions the tool records for them,
     * in order, the last one the migration's own version; NULL and 0
     * otherwise.  Read by `flotilla baseline` to map the tool's per-file
     * ledger rows to the migration.  Not in the checksum; in a bundle. */
    char **parts;
    size_t nparts;
    /* Read from another tool's tree (agent/source.h): an up that holds no
     * statement runs nothing, as under the tool.  Not in the checksum; in
     * a bundle when set. */
    int other_tool;
} fl_migration_t;

typedef struct {
    fl_migration_t *items; /* ordered by strictly increasing version */
    size_t count;
} fl_migration_list_t;

/*
 * The line of the file that an error of fl_migration_parse() or
 * fl_migration_parse_repeatable() names (its message ends "line N"), or
 * 0 when it names none.
 */
int fl_migration_error_line(const fl_error_t *err);

/*
 * Parses one migration file's text.  file_name must match NNNN_name.sql.
 * The checksum covers version, name, every section and the options, in a
 * canonical encoding, so the same migration has the same checksum whether
 * it comes from a directory or from a bundle.  Fails with FL_EINVAL naming
 * file and line: missing up, unknown section or option, bad duration,
 * non-UTF-8 text, an allow without a reason.
 */
int fl_migration_parse(fl_migration_t *out, const char *file_name,
                       const char *text, size_t len, fl_error_t *err) FL_NODISCARD;

/*
 * Parses a repeatable migration's file (issue 14): file_name is
 * R__name.sql (name: letters, digits, '_' and '-'), its sections and
 * options those of a versioned file but down, which is refused: a
 * repeatable migration is never rolled back (docs/migrations.md,
 * "Repeatable migrations").  out->repeatable is set, out->version empty.
 */
int fl_migration_parse_repeatable(fl_migration_t *out, const char *file_name,
                                  const char *text, size_t len,
                                  fl_error_t *err) FL_NODISCARD;

/* Whether file_name is named as a repeatable migration: "R__" and ".sql". */
int fl_migration_is_repeatable_name(const char *file_name);

/*
 * The order repeatable migrations run in: Flyway's, by description (the
 * name with '_' read as a space), byte by byte.  For qsort.
 */
int fl_migration_repeatable_cmp(const void *a, const void *b);

/*
 * 1 when the line [line, line+n) is one the parser takes for a section
 * marker: blanks, "--", blanks, "flotilla:" (what a file written for it
 * must never hold inside a section).
 */
int fl_migration_marker_line(const char *line, size_t n);

/*
 * Whether text holds only blanks and newlines: what the parser refuses as
 * an empty section (so a file written for it must not hold one).
 */
int fl_migration_text_is_blank(const char *text);

/*
 * Loads every NNNN_name.sql of dir, ordered by version.  Files not ending
 * in .sql are ignored; a .sql file whose name does not match, a duplicate
 * version, or an empty directory is an error; so is an R__name.sql file
 * (a repeatable migration, which this caller does not take: it would be
 * left out silently).
 */
int fl_migration_dir_load(fl_migration_list_t *out, const char *dir,
                          fl_error_t *err) FL_NODISCARD;

/*
 * The same, with the repeatable migrations of dir (R__name.sql) into
 * *repeatables, in fl_migration_repeatable_cmp's order (empty when none).
 * A directory of repeatable migrations alone is an error: they run after
 * versioned ones.  On failure neither list is changed.
 */
int fl_migration_dir_load_all(fl_migration_list_t *out,
                              fl_migration_list_t *repeatables,
                              const char *dir, fl_error_t *err) FL_NODISCARD;

/*
 * Checks a migration that did not come from a file of this machine (a
 * bundle's) against the rules a directory's obey: its file name is
 * NNNN_name.sql with its version and name, the name's characters, every
 * section and allow reason valid UTF-8 without NUL.  Another tool's
 * migration (a file name that does not start with digits and '_' and end
 * in ".sql" with a flotilla name, e.g. "V1_2__add.sql" or diesel's
 * folder) has a name and a file name of at most 255 bytes without
 * control characters, '/' or "..".  A group's parts are canonical
 * versions, strictly increasing, the last one the migration's own, at
 * most FL_MIGRATION_MAX_PARTS.  Its timeouts are -1 (not set) or 0 to
 * FL_MIGRATION_MAX_TIMEOUT_MS.  FL_EINVAL naming the migration and what
 * is wrong.
 */
int fl_migration_check(const fl_migration_t *m, fl_error_t *err) FL_NODISCARD;

/* Computes m->checksum and m->checksum_hex from the other fields (a
 * repeatable migration's under the domain "flotilla-repeatable-v1"). */
void fl_migration_compute_checksum(fl_migration_t *m);

/*
 * Separate up and down checksums (issue 14).  The up checksum covers
 * every field m->checksum covers except the down section, so a down
 * fixed after the migration was applied leaves it unchanged while any
 * change to what apply runs (up, validate, verify, options, version,
 * name) changes it.  The down checksum covers one down text (NULL: the
 * section is absent, which differs from an empty one).  SHA-256, under
 * domains of their own so neither equals a full checksum.
 */
void fl_migration_up_checksum(unsigned char out[32], const fl_migration_t *m);
void fl_migration_down_checksum(unsigned char out[32], const char *down);
/* sum in lower-case hex, NUL-terminated. */
void fl_migration_hex(char out[65], const unsigned char sum[32]);
/*
 * Whether sum, as a ledger recorded it for m's version, says m is the
 * migration applied: m's full checksum (an older ledger row, or a report
 * of one), or its up checksum (a newer one, whatever its down was).
 */
int fl_migration_is_applied_as(const fl_migration_t *m,
                               const unsigned char sum[32]);

void fl_migration_release(fl_migration_t *m);
void fl_migration_list_release(fl_migration_list_t *l);

#endif
