/*
 * source.c - opening a migrations directory or a signed bundle (see
 * source.h).
 */
#include "agent/source.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "proto/bundle.h"

int
fl_source_open(fl_source_t *src, const char *path, const char *trust,
               int require_signed, int64_t now_s, fl_error_t *err)
{
    fl_bundle_verify_opts_t vo = FL_BUNDLE_VERIFY_OPTS_INIT;

    vo.now_s = now_s;
    return fl_source_open_opts(src, path, trust, require_signed, &vo, err);
}

int
fl_source_open_opts(fl_source_t *src, const char *path, const char *trust,
                    int require_signed, const fl_bundle_verify_opts_t *vo,
                    fl_error_t *err)
{
    struct stat st;
    fl_trust_t *keys = NULL;
    int rc = 0;

    memset(src, 0, sizeof(*src));
    if (stat(path, &st) != 0)
        return FL_ERR(err, errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
                      "could not open migration source \"%s\": %s", path,
                      strerror(errno));
    if (S_ISDIR(st.st_mode)) {
        if (require_signed) {
            FL_ERR(err, FL_EINVAL, "\"%s\" is a migrations directory, but "
                   "--require-signed accepts only signed bundles", path);
            fl_error_set_hint(err, "Build one with \"flotilla bundle build %s "
                                   "--sign KEY --out FILE\".", path);
            return FL_EINVAL;
        }
        if ((rc = fl_migration_dir_load(&src->dir, path, err)) != 0)
            return rc;
        src->migs = &src->dir;
        src->verified = FL_SOURCE_VERIFIED;
        return 0;
    }
    if (trust == NULL) {
        FL_ERR(err, FL_EINVAL, "bundle \"%s\" cannot be verified without "
               "trusted keys", path);
        fl_error_set_hint(err, "Pass --trust with a .pub file or a directory "
                               "of them.");
        return FL_EINVAL;
    }
    if ((rc = fl_trust_load(&keys, trust, err)) != 0)
        return rc;
    rc = fl_bundle_load_opts(&src->bundle, path, keys, vo, err);
    fl_trust_destroy(&keys);
    if (rc != 0)
        return rc;
    src->migs = fl_bundle_migrations(src->bundle);
    src->bundle_id = fl_bundle_id(src->bundle);
    src->signer = fl_bundle_signer(src->bundle);
    /*
     * A signed bundle is trusted to be what its signer meant, not to be
     * well-formed: its migrations obey the rules a directory's do.
     */
    for (size_t i = 0; i < src->migs->count; i++) {
        if ((rc = fl_migration_check(&src->migs->items[i], err)) != 0) {
            fl_error_prefix(err, "bundle \"%s\": ", path);
            if (err)
                err->code = FL_EPROTO;
            fl_source_close(src);
            return FL_EPROTO;
        }
    }
    src->verified = FL_SOURCE_VERIFIED;
    return 0;
}

void
fl_source_close(fl_source_t *src)
{
    if (src == NULL)
        return;
    fl_migration_list_release(&src->dir);
    fl_bundle_destroy(&src->bundle);
    src->migs = NULL;
    src->bundle_id = NULL;
    src->signer = NULL;
    src->verified = 0;
}
