/*
 * source.h - where migrations come from: a signed bundle (verified
 * against trusted keys) or, for development, a migrations directory:
 * flotilla's own, or another tool's (diesel, golang-migrate, pop, sqlx,
 * dbmate, Flyway: proto/layout.h), read in that tool's order with its
 * transaction rules.
 */
#ifndef FL_AGENT_SOURCE_H
#define FL_AGENT_SOURCE_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"
#include "proto/bundle.h"
#include "proto/layout.h"
#include "proto/migration.h"
#include "proto/wire.h"

/*
 * The only way migrations reach the pipeline: fl_source_open builds one
 * after verification (a bundle's signature, digest and expiry; every
 * migration, from a bundle too, against the directory rules), and marks
 * it so; the pipeline refuses an unmarked one (a programmer error).
 */
typedef struct {
    const fl_migration_list_t *migs; /* lent from dir or bundle below */
    const char *bundle_id;           /* NULL for a directory */
    const char *signer;              /* key id; NULL for a directory */
    fl_migration_list_t dir;
    fl_bundle_t *bundle;
    uint32_t verified;               /* FL_SOURCE_VERIFIED once open */
    fl_layout_tool tool;             /* a directory's tool: FLOTILLA, or
                                        the one it was read as */
    char *left_out;                  /* what of another tool's directory
                                        is not run, and why; NULL when
                                        nothing */
    /* The repeatable migrations (issue 14: R__name.sql, Flyway's R__),
     * in the order they run (fl_migration_repeatable_cmp); never NULL
     * once open (empty when none).  Lent from rdir or bundle. */
    const fl_migration_list_t *repeatables;
    fl_migration_list_t rdir;
    /* Set before fl_source_open_dir by flotilla import, which writes new
     * names: a file name need not be UTF-8.  Every other reader refuses
     * one that is not (the ledger holds names as text). */
    int any_names;
} fl_source_t;

#define FL_SOURCE_INIT {NULL, NULL, NULL, {NULL, 0}, NULL, 0, 0, NULL, NULL, \
                        {NULL, 0}, 0}
#define FL_SOURCE_VERIFIED 0x56524659u

/*
 * Opens path: a directory of NNNN_name.sql files, or a bundle file
 * verified against trust (a .pub file or a directory of them; required
 * for bundles) at time now_s.  require_signed refuses directories.
 */
int fl_source_open(fl_source_t *src, const char *path, const char *trust,
                   int require_signed, int64_t now_s,
                   fl_error_t *err) FL_NODISCARD;
/*
 * The same with the bundle's verification limits (clock, maximum
 * lifetime, skew: proto/bundle.h); vo NULL means the defaults.
 */
int fl_source_open_opts(fl_source_t *src, const char *path, const char *trust,
                        int require_signed, const fl_bundle_verify_opts_t *vo,
                        fl_error_t *err) FL_NODISCARD;
/*
 * Opens a bundle from its bytes (data, lent for the call), as the agent
 * daemon holds them in its cache: verified against trust with vo (NULL:
 * the defaults), then every migration checked against the directory
 * rules, as fl_source_open_opts() does for a bundle file.  trust is a
 * loaded trust store (lent).  On failure src is left closed.
 */
int fl_source_open_bytes(fl_source_t *src, const unsigned char *data,
                         size_t len, const fl_trust_t *trust,
                         const fl_bundle_verify_opts_t *vo,
                         fl_error_t *err) FL_NODISCARD;

/*
 * Opens a bundle transfer received from a coordinator (lent for the
 * call): fl_wire_bundle_verify() (its SHA-256, the bundle against trust
 * with vo, and that the claimed id is the id of the verified bytes), then
 * the directory rules.  src->bundle_id is the verified id, the only one
 * to cache the bytes under.
 */
int fl_source_open_transfer(fl_source_t *src, const fl_wire_bundle_t *msg,
                            const fl_trust_t *trust,
                            const fl_bundle_verify_opts_t *vo,
                            fl_error_t *err) FL_NODISCARD;

/*
 * Opens the migrations directory dir as tool's (FL_LAYOUT_AUTO: the tool
 * its files show, flotilla's NNNN_name.sql when they show none).  Another
 * tool's migrations keep their version as the tool records it
 * (proto/version.h), its order, and its transaction rules: a migration
 * runs in one transaction unless the tool runs it outside one (diesel's
 * run_in_transaction = false, pop's .autocommit., sqlx's
 * -- no-transaction, dbmate's transaction:false, golang-migrate always,
 * Flyway unless told otherwise) and a statement of it cannot run in a
 * transaction (the linter's facts: CREATE INDEX CONCURRENTLY and
 * friends): then it is no-transaction, and fl_migration_t.note says why.
 * A file the tool would refuse, a version that is not one, or an order
 * the tool and Flotilla disagree on is FL_EINVAL naming the file.
 * Repeatable migrations (flotilla's R__name.sql, Flyway's R__) go to
 * src->repeatables, in Flyway's order (by description); two of one name
 * are FL_EINVAL.
 * pop's consecutive files sharing one name and one stamp (all but the
 * last six digits of the version) are one migration, so that no rollback
 * stops inside the group: the last file's version and file name, the
 * ups in order and the downs in reverse (a down only when every file has
 * one), no-transaction when a file is; fl_migration_t.parts lists the
 * files' versions and note says it is a group.
 */
int fl_source_open_dir(fl_source_t *src, const char *dir,
                       fl_layout_tool tool, fl_error_t *err) FL_NODISCARD;

void fl_source_close(fl_source_t *src);

#endif
