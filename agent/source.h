/*
 * source.h - where migrations come from: a signed bundle (verified
 * against trusted keys) or, for development, a migrations directory.
 */
#ifndef FL_AGENT_SOURCE_H
#define FL_AGENT_SOURCE_H

#include <stdint.h>

#include "common/error.h"
#include "proto/bundle.h"
#include "proto/migration.h"

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
} fl_source_t;

#define FL_SOURCE_INIT {NULL, NULL, NULL, {NULL, 0}, NULL, 0}
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
void fl_source_close(fl_source_t *src);

#endif
