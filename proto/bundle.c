/*
 * bundle.c - signed migration bundles and the trust store (see bundle.h).
 *
 * The signature covers the raw bytes exactly as they sit in the file, and
 * the digest covers the raw bytes of the body exactly as they sit in the
 * payload: nothing is re-encoded before it is checked, so encoder and
 * verifier cannot disagree about canonical forms.
 */
#include "proto/bundle.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common/alloc.h"
#include "common/hash.h"
#include "common/parse.h"
#include "common/perm.h"
#include "common/str.h"
#include "proto/codec.h"
#include "proto/proto_internal.h"

#define S_MAGIC_LEN 8
#define S_MAX_MIGRATIONS 100000
#define S_MAX_ALLOWS 256

struct fl_trust {
    struct {
        unsigned char pk[FL_KEY_PUBLIC_BYTES];
        unsigned char id[FL_KEY_ID_BYTES];
    } *keys;
    size_t count;
};

struct fl_bundle {
    int format;
    int verified;
    char id[FL_BUNDLE_ID_HEX];
    char signer[FL_KEY_ID_HEX];
    int64_t created;
    int64_t expires;
    char *note;
    char *channel;
    int64_t sequence;
    char *environment;
    char *selector;     /* canonical; "" for any target */
    fl_selector_t sel;  /* selector parsed */
    char *lint_enforce_from; /* NULL when the bundle carries no gate */
    fl_migration_list_t migs;
    fl_migration_list_t reps; /* repeatable migrations (format 3) */
    unsigned char digest[32];
    char digest_hex[65];
};

/* The decoded "body" map. */
typedef struct {
    int64_t format;
    int64_t created;
    int64_t expires;
    char *signer;
    char *channel;
    int64_t sequence;
    char *environment;
    char *selector; /* NULL when absent */
    char *note;
    char *lint_enforce_from; /* NULL when absent */
    fl_migration_list_t migs;
    fl_migration_list_t reps; /* format 3 only */
} s_body;

#define S_F(key, type, flags, st, field)                                    \
    {key, type, flags, offsetof(st, field), 0, 0, NULL}
#define S_REQ FL_CODEC_REQUIRED

static const fl_codec_field_t s_allow_fields[] = {
    S_F("rule", FL_CODEC_STR, S_REQ, fl_migration_allow_t, rule),
    S_F("reason", FL_CODEC_STR, S_REQ, fl_migration_allow_t, reason),
};
static const fl_codec_schema_t s_allow_schema = {
    "allow", s_allow_fields, 2, sizeof(fl_migration_allow_t)};

static const fl_codec_field_t s_migration_fields[] = {
    S_F("version", FL_CODEC_VERSION, S_REQ, fl_migration_t, version),
    S_F("name", FL_CODEC_STR, S_REQ, fl_migration_t, name),
    S_F("file", FL_CODEC_STR, S_REQ, fl_migration_t, file),
    S_F("up", FL_CODEC_STR, S_REQ, fl_migration_t, up),
    S_F("down", FL_CODEC_STR, 0, fl_migration_t, down),
    S_F("validate", FL_CODEC_STR, 0, fl_migration_t, validate),
    S_F("verify", FL_CODEC_STR, 0, fl_migration_t, verify),
    S_F("up_line", FL_CODEC_INT, S_REQ, fl_migration_t, up_line),
    S_F("down_line", FL_CODEC_INT, S_REQ, fl_migration_t, down_line),
    S_F("validate_line", FL_CODEC_INT, S_REQ, fl_migration_t, validate_line),
    S_F("verify_line", FL_CODEC_INT, S_REQ, fl_migration_t, verify_line),
    S_F("no_transaction", FL_CODEC_BOOL, S_REQ, fl_migration_t,
        no_transaction),
    S_F("lock_timeout_ms", FL_CODEC_I64, S_REQ, fl_migration_t,
        lock_timeout_ms),
    S_F("statement_timeout_ms", FL_CODEC_I64, S_REQ, fl_migration_t,
        statement_timeout_ms),
    {"allow", FL_CODEC_ARRAY, S_REQ, offsetof(fl_migration_t, allows),
     offsetof(fl_migration_t, nallows), S_MAX_ALLOWS, &s_allow_schema},
    S_F("checksum", FL_CODEC_BIN32, S_REQ, fl_migration_t, checksum),
    /* Another tool's migration: where it came from (agent/source.h).
     * Left out when absent, so other bundles' bytes are unchanged, and
     * ignored by readers older than them. */
    S_F("note", FL_CODEC_STR, 0, fl_migration_t, note),
    {"parts", FL_CODEC_STRLIST, 0, offsetof(fl_migration_t, parts),
     offsetof(fl_migration_t, nparts), FL_MIGRATION_MAX_PARTS, NULL},
    /* Its up may hold no statement (it runs nothing, as under the tool);
     * left out when false. */
    S_F("other_tool", FL_CODEC_BOOL, 0, fl_migration_t, other_tool),
};
static const fl_codec_schema_t s_migration_schema = {
    "migration", s_migration_fields,
    sizeof(s_migration_fields) / sizeof(s_migration_fields[0]),
    sizeof(fl_migration_t)};

/* A repeatable migration: no version, no down. */
static const fl_codec_field_t s_repeatable_fields[] = {
    S_F("name", FL_CODEC_STR, S_REQ, fl_migration_t, name),
    S_F("file", FL_CODEC_STR, S_REQ, fl_migration_t, file),
    S_F("up", FL_CODEC_STR, S_REQ, fl_migration_t, up),
    S_F("validate", FL_CODEC_STR, 0, fl_migration_t, validate),
    S_F("verify", FL_CODEC_STR, 0, fl_migration_t, verify),
    S_F("up_line", FL_CODEC_INT, S_REQ, fl_migration_t, up_line),
    S_F("validate_line", FL_CODEC_INT, S_REQ, fl_migration_t, validate_line),
    S_F("verify_line", FL_CODEC_INT, S_REQ, fl_migration_t, verify_line),
    S_F("no_transaction", FL_CODEC_BOOL, S_REQ, fl_migration_t,
        no_transaction),
    S_F("lock_timeout_ms", FL_CODEC_I64, S_REQ, fl_migration_t,
        lock_timeout_ms),
    S_F("statement_timeout_ms", FL_CODEC_I64, S_REQ, fl_migration_t,
        statement_timeout_ms),
    {"allow", FL_CODEC_ARRAY, S_REQ, offsetof(fl_migration_t, allows),
     offsetof(fl_migration_t, nallows), S_MAX_ALLOWS, &s_allow_schema},
    S_F("checksum", FL_CODEC_BIN32, S_REQ, fl_migration_t, checksum),
    S_F("note", FL_CODEC_STR, 0, fl_migration_t, note),
};
static const fl_codec_schema_t s_repeatable_schema = {
    "repeatable migration", s_repeatable_fields,
    sizeof(s_repeatable_fields) / sizeof(s_repeatable_fields[0]),
    sizeof(fl_migration_t)};

static const fl_codec_field_t s_body_fields[] = {
    S_F("format", FL_CODEC_I64, S_REQ, s_body, format),
    S_F("created", FL_CODEC_I64, S_REQ, s_body, created),
    S_F("expires", FL_CODEC_I64, S_REQ, s_body, expires),
    S_F("signer", FL_CODEC_STR, S_REQ, s_body, signer),
    S_F("channel", FL_CODEC_STR, S_REQ, s_body, channel),
    S_F("sequence", FL_CODEC_I64, S_REQ, s_body, sequence),
    S_F("environment", FL_CODEC_STR, S_REQ, s_body, environment),
    S_F("selector", FL_CODEC_STR, 0, s_body, selector),
    S_F("note", FL_CODEC_STR, 0, s_body, note),
    S_F("lint_enforce_from", FL_CODEC_STR, 0, s_body, lint_enforce_from),
    {"migrations", FL_CODEC_ARRAY, S_REQ, offsetof(s_body, migs.items),
     offsetof(s_body, migs.count), S_MAX_MIGRATIONS, &s_migration_schema},
    {"repeatables", FL_CODEC_ARRAY, 0, offsetof(s_body, reps.items),
     offsetof(s_body, reps.count), S_MAX_MIGRATIONS, &s_repeatable_schema},
};
static const fl_codec_schema_t s_body_schema = {
    "bundle body", s_body_fields, sizeof(s_body_fields) / sizeof(s_body_fields[0]),
    sizeof(s_body)};

/* Trust store. */

fl_trust_t *
fl_trust_new(void)
{
    fl_proto_sodium_init();
    return fl_calloc(1, sizeof(fl_trust_t));
}

void
fl_trust_add(fl_trust_t *t, const unsigned char pk[FL_KEY_PUBLIC_BYTES])
{
    for (size_t i = 0; i < t->count; i++)
        if (memcmp(t->keys[i].pk, pk, FL_KEY_PUBLIC_BYTES) == 0)
            return;
    t->keys = fl_reallocarray(t->keys, t->count + 1, sizeof(*t->keys));
    memcpy(t->keys[t->count].pk, pk, FL_KEY_PUBLIC_BYTES);
    fl_key_id_of(t->keys[t->count].id, pk);
    t->count++;
}

size_t
fl_trust_count(const fl_trust_t *t)
{
    return t->count;
}

void
fl_trust_destroy(fl_trust_t **t)
{
    if (t == NULL || *t == NULL)
        return;
    free((*t)->keys);
    free(*t);
    *t = NULL;
}

/*
 * Adds the key in the .pub file at path after the StrictModes check,
 * reading the resolved path that was checked.
 */
static int
s_trust_add_file(fl_trust_t *t, const char *path, fl_error_t *err)
{
    unsigned char pk[FL_KEY_PUBLIC_BYTES];
    char *real = NULL;
    int rc = 0;

    if ((rc = fl_perm_check(&real, path, "trusted key file", geteuid(),
                            err)) != 0)
        return rc;
    if (fl_key_load_public(pk, real, err) != 0)
        rc = FL_EINVAL;
    else
        fl_trust_add(t, pk);
    free(real);
    return rc;
}

static int
s_trust_add_dir(fl_trust_t *t, const char *dir, fl_error_t *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;

    if (d == NULL)
        return FL_ERR(err, FL_EIO, "could not open trust directory \"%s\": %s",
                      dir, strerror(errno));
    while (rc == 0 && (e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char *path = NULL;

        if (e->d_name[0] == '.' || n < 5 ||
            strcmp(e->d_name + n - 4, ".pub") != 0)
            continue;
        path = fl_asprintf("%s/%s", dir, e->d_name);
        rc = s_trust_add_file(t, path, err);
        free(path);
    }
    closedir(d);
    if (rc == 0 && t->count == 0) {
        rc = FL_ERR(err, FL_EINVAL, "trust directory \"%s\" holds no .pub "
                                    "files", dir);
        fl_error_set_hint(err, "Copy the release keys' .pub files (made by "
                               "\"flotilla keygen\") into it.");
    }
    return rc;
}

static const char s_trust_hint[] =
    "The trust store is a release key's public file (PREFIX.pub, written by "
    "flotilla keygen) or a directory of them.";

int
fl_trust_load(fl_trust_t **out, const char *path, fl_error_t *err)
{
    fl_trust_t *t = fl_trust_new();
    char *real = NULL;
    struct stat st;
    int rc = 0;

    if ((rc = fl_perm_check(&real, path, "trust store", geteuid(), err)) != 0) {
        if (rc == FL_ENOTFOUND && err && err->hint == NULL)
            fl_error_set_hint(err, "%s", s_trust_hint);
        goto cleanup;
    }
    if (stat(real, &st) != 0) {
        rc = FL_ERR(err, errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
                    "could not open trust store \"%s\": %s", path,
                    strerror(errno));
        fl_error_set_hint(err, "%s", s_trust_hint);
        goto cleanup; /* (gone between the two looks) */
    }
    if (S_ISDIR(st.st_mode))
        rc = s_trust_add_dir(t, real, err);
    else
        rc = s_trust_add_file(t, real, err);
    if (rc == 0) {
        *out = t;
        t = NULL;
    }
cleanup:
    free(real);
    fl_trust_destroy(&t);
    return rc;
}

static const unsigned char *
s_trust_find(const fl_trust_t *t, const unsigned char id[FL_KEY_ID_BYTES])
{
    for (size_t i = 0; i < t->count; i++)
        if (memcmp(t->keys[i].id, id, FL_KEY_ID_BYTES) == 0)
            return t->keys[i].pk;
    return NULL;
}

int
fl_trust_has_signer(const fl_trust_t *t, const char *key_id)
{
    char hex[FL_KEY_ID_HEX];

    for (size_t i = 0; t != NULL && key_id != NULL && i < t->count; i++) {
        fl_key_id_format(hex, t->keys[i].id);
        if (strcmp(hex, key_id) == 0)
            return 1;
    }
    return 0;
}

/* Building. */

static void
s_id_from_digest(char out[FL_BUNDLE_ID_HEX], const unsigned char digest[32])
{
    sodium_bin2hex(out, FL_BUNDLE_ID_HEX, digest, 16);
}

static int
s_check_order(const fl_migration_list_t *migs, const char *what,
              fl_error_t *err)
{
    if (migs->count == 0)
        return FL_ERR(err, FL_EINVAL, "%s holds no migrations", what);
    for (size_t i = 0; i < migs->count; i++)
        if (!fl_version_is_set(&migs->items[i].version) ||
            (i > 0 && fl_version_cmp(&migs->items[i].version,
                                     &migs->items[i - 1].version) <= 0)) {
            FL_ERR(err, FL_EPROTO, "%s has migration versions out of order",
                   what);
            fl_error_set_detail(err, "Version \"%s\" (\"%s\") follows "
                                     "version \"%s\"; versions must be set "
                                     "and strictly increasing.",
                                migs->items[i].version.text,
                                migs->items[i].file ? migs->items[i].file : "",
                                i > 0 ? migs->items[i - 1].version.text : "");
            return FL_EPROTO;
        }
    return 0;
}

/*
 * Every migration of migs and reps (NULL: none) by the rules a reader
 * holds a bundle's to (fl_migration_check(), which agent/source.c runs
 * on every bundle it opens): a bundle is never built that apply and the
 * agents would refuse (before, a name with a control character was
 * signed, and refused only where it was to run).
 */
static int
s_check_contents(const fl_migration_list_t *migs,
                 const fl_migration_list_t *reps, fl_error_t *err)
{
    size_t nreps = reps ? reps->count : 0;

    for (size_t i = 0; i < migs->count + nreps; i++) {
        const fl_migration_t *m = i < migs->count
                                      ? &migs->items[i]
                                      : &reps->items[i - migs->count];
        char *shown = NULL;

        if (fl_migration_check(m, err) == 0)
            continue;
        /* Its name may be what is wrong: shown escaped. */
        shown = fl_str_escape_controls(m->file ? m->file : "", 0);
        fl_error_prefix(err, "\"%s\" cannot go into a bundle: ", shown);
        free(shown);
        if (err && err->hint == NULL)
            fl_error_set_hint(err, "Rename or fix it as the error says: "
                                   "flotilla apply and every agent refuse "
                                   "a bundle that holds it.");
        return FL_EINVAL;
    }
    return 0;
}

/* Release and scope. */

/* True for a channel or environment name: 1 to 64 of [A-Za-z0-9._-]. */
static int
s_valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > FL_BUNDLE_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/*
 * Checks a channel or environment name (what: "release channel",
 * "environment"); code is FL_EINVAL when building, FL_EPROTO when
 * decoding.  The value is escaped: a hostile one may hold anything.
 */
static int
s_check_name(const char *what, const char *value, int code, fl_error_t *err)
{
    char *shown = NULL;

    if (s_valid_name(value))
        return 0;
    shown = fl_str_escape_controls(value, 0);
    FL_ERR(err, code, "%sinvalid %s \"%s\"",
           code == FL_EPROTO ? "bundle has an " : "", what, shown);
    fl_error_set_detail(err, "A %s is 1 to %d characters from A-Z, a-z, 0-9, "
                             "\".\", \"_\" and \"-\".", what,
                        FL_BUNDLE_NAME_MAX);
    free(shown);
    return code;
}

/* Writes sel as "k=v,k!=v,k" (new string; "" when it has no terms). */
static char *
s_selector_format(const fl_selector_t *sel)
{
    fl_buf_t b = FL_BUF_INIT(0);

    for (size_t i = 0; i < sel->nterms; i++) {
        const fl_selector_term_t *t = &sel->terms[i];

        /* Keys and values are at most 63 characters: this always fits. */
        FL_IGNORE(fl_buf_printf(&b, "%s%s%s%s", i ? "," : "", t->key,
                                t->op == FL_SELECTOR_EQ   ? "="
                                : t->op == FL_SELECTOR_NE ? "!="
                                                          : "",
                                t->value ? t->value : ""));
    }
    return fl_buf_detach(&b);
}

/*
 * Checks channel, sequence, environment and selector, and parses the
 * selector into *sel (released by the caller).  code as s_check_name().
 */
static int
s_check_release(const char *channel, int64_t sequence,
                const char *environment, const char *selector,
                fl_selector_t *sel, int code, fl_error_t *err)
{
    char *shown = NULL;

    if (s_check_name("release channel", channel, code, err) != 0)
        return code;
    if (sequence < 1) {
        FL_ERR(err, code, "%sinvalid release sequence %lld",
               code == FL_EPROTO ? "bundle has an " : "", (long long)sequence);
        fl_error_set_detail(err, "The sequence numbers the releases of a "
                                 "channel and must be 1 or more.");
        return code;
    }
    if (environment == NULL) {
        FL_ERR(err, code, "%s", code == FL_EPROTO
                                    ? "bundle names no environment"
                                    : "a bundle needs an environment");
        fl_error_set_hint(err, "Pass --environment NAME (for example "
                               "production): where the bundle may be "
                               "applied.");
        return code;
    }
    if (s_check_name("environment", environment, code, err) != 0)
        return code;
    if (fl_selector_parse(sel, selector ? selector : "", err) != 0) {
        if (code == FL_EPROTO) {
            shown = fl_str_escape_controls(selector, 0);
            FL_ERR(err, code, "bundle has an invalid selector \"%s\"", shown);
            free(shown);
        }
        return code;
    }
    return 0;
}

int
fl_bundle_build(fl_buf_t *out, const fl_migration_list_t *migs,
                const fl_key_t *key, const fl_bundle_opts_t *opts,
                fl_error_t *err)
{
    fl_buf_t body_buf = FL_BUF_INIT(FL_BUNDLE_MAX_SIZE);
    fl_codec_writer_t w;
    s_body body;
    fl_selector_t sel = {NULL, 0};
    fl_version_t gate = FL_VERSION_INIT;
    char *selector = NULL;
    const char *channel = opts->channel ? opts->channel
                                        : FL_BUNDLE_DEFAULT_CHANNEL;
    int64_t sequence = opts->sequence ? opts->sequence : opts->created;
    unsigned char digest[32];
    char id[FL_BUNDLE_ID_HEX];
    unsigned char hdr[FL_BUNDLE_HEADER_BYTES];
    unsigned char sig[FL_KEY_SIGNATURE_BYTES];
    size_t start = out->len;
    size_t plen_pos;
    int rc = 0;

    fl_proto_sodium_init();
    if ((rc = s_check_order(migs, "bundle", err)) != 0 ||
        (rc = s_check_contents(migs, opts->repeatables, err)) != 0 ||
        (rc = s_check_release(channel, sequence, opts->environment,
                              opts->selector, &sel, FL_EINVAL, err)) != 0)
        goto cleanup;
    if (opts->expires <= opts->created) {
        char created[64];
        char expires[64];

        fl_bundle_format_time(created, sizeof(created), opts->created);
        fl_bundle_format_time(expires, sizeof(expires), opts->expires);
        rc = FL_ERR(err, FL_EINVAL, "bundle expiry %s is not after its "
                                    "creation time %s", expires, created);
        fl_error_set_hint(err, "Every bundle expires: give it a positive "
                               "lifetime (--expires).");
        goto cleanup;
    }
    if (opts->lint_enforce_from &&
        (rc = fl_bundle_check_gate(opts->lint_enforce_from, FL_EINVAL,
                                   err)) != 0)
        goto cleanup;
    selector = s_selector_format(&sel);
    memset(&body, 0, sizeof(body));
    body.format = FL_BUNDLE_FORMAT;
    body.created = opts->created;
    body.expires = opts->expires;
    body.signer = (char *)fl_key_id(key);
    body.channel = (char *)channel;
    body.sequence = sequence;
    body.environment = (char *)opts->environment;
    body.selector = selector[0] ? selector : NULL;
    body.note = (char *)opts->note;
    if (opts->lint_enforce_from) {
        /* Signed canonical ("0003" is "3"), as decoding requires. */
        fl_error_t ignore = FL_ERROR_INIT;
        FL_IGNORE(fl_version_parse_tool(&gate, opts->lint_enforce_from,
                                        &ignore)); /* checked above */
        fl_error_clear(&ignore);
        body.lint_enforce_from = gate.text;
    }
    body.migs = *migs;
    if (opts->repeatables && opts->repeatables->count > 0) {
        for (size_t i = 0; i < opts->repeatables->count; i++)
            if (!opts->repeatables->items[i].repeatable) {
                rc = FL_ERR(err, FL_EINVAL, "\"%s\" is not a repeatable "
                            "migration", opts->repeatables->items[i].file);
                goto cleanup;
            }
        body.reps = *opts->repeatables;
        body.format = FL_BUNDLE_FORMAT_REPEATABLE;
    }
    fl_codec_writer_init(&w, &body_buf);
    if ((rc = fl_codec_encode(&w, &s_body_schema, &body, err)) != 0 ||
        (rc = fl_codec_writer_finish(&w, "bundle", err)) != 0)
        goto cleanup;
    fl_hash_sha256(digest, body_buf.data, body_buf.len);
    s_id_from_digest(id, digest);

    memcpy(hdr, FL_BUNDLE_MAGIC, S_MAGIC_LEN);
    fl_proto_put_be(hdr + 8, (uint64_t)body.format, 2);
    memcpy(hdr + 10, fl_key_id_bytes(key), FL_KEY_ID_BYTES);
    fl_proto_put_be(hdr + 18, 0, 4); /* payload length, filled in below */
    fl_codec_writer_init(&w, out);
    fl_codec_write_raw(&w, hdr, sizeof(hdr));
    plen_pos = start + 18;
    fl_codec_write_map(&w, 3);
    fl_codec_write_str(&w, "body");
    fl_codec_write_raw(&w, body_buf.data, body_buf.len);
    fl_codec_write_str(&w, "digest");
    fl_codec_write_bin(&w, digest, sizeof(digest));
    fl_codec_write_str(&w, "id");
    fl_codec_write_str(&w, id);
    if ((rc = fl_codec_writer_finish(&w, "bundle", err)) != 0)
        goto cleanup;
    if (out->len - start + sizeof(sig) > FL_BUNDLE_MAX_SIZE) {
        rc = FL_ERR(err, FL_EINVAL, "bundle would be larger than %zu bytes",
                    FL_BUNDLE_MAX_SIZE);
        fl_error_set_hint(err, "Split the migrations into several bundles.");
        goto cleanup;
    }
    fl_proto_put_be((unsigned char *)out->data + plen_pos,
             out->len - start - FL_BUNDLE_HEADER_BYTES, 4);
    fl_key_sign(key, sig, (unsigned char *)out->data + start,
                out->len - start);
    fl_codec_write_raw(&w, sig, sizeof(sig));
    rc = fl_codec_writer_finish(&w, "bundle", err);
cleanup:
    if (rc != 0 && out->len > start) {
        out->len = start;
        out->data[start] = '\0';
    }
    fl_buf_release(&body_buf);
    fl_selector_release(&sel);
    free(selector);
    return rc;
}

/* Verification. */

static int
s_truncated(fl_error_t *err, size_t len, const char *detail)
{
    FL_ERR(err, FL_EPROTO, "bundle is truncated");
    fl_error_set_detail(err, "It has %zu bytes; %s.", len, detail);
    fl_error_set_hint(err, "Copy the bundle file again; it was cut short.");
    return FL_EPROTO;
}

/*
 * Checks size, magic, format version and length of the envelope; sets
 * *payload_len.  Reads nothing beyond the fixed header.
 */
static int
s_check_envelope(const unsigned char *data, size_t len, size_t *payload_len,
                 fl_error_t *err)
{
    uint64_t version;
    uint64_t plen;

    if (len > FL_BUNDLE_MAX_SIZE) {
        FL_ERR(err, FL_EPROTO, "bundle is too large");
        fl_error_set_detail(err, "It has %zu bytes; the limit is %zu.", len,
                            FL_BUNDLE_MAX_SIZE);
        return FL_EPROTO;
    }
    if (len == 0 ||
        memcmp(data, FL_BUNDLE_MAGIC, len < S_MAGIC_LEN ? len : S_MAGIC_LEN)) {
        FL_ERR(err, FL_EPROTO, "not a flotilla bundle");
        fl_error_set_detail(err, "It does not start with \"%s\".",
                            FL_BUNDLE_MAGIC);
        fl_error_set_hint(err, "Make bundles with \"flotilla bundle build\".");
        return FL_EPROTO;
    }
    if (len < 10)
        return s_truncated(err, len, "the header alone takes 22");
    version = fl_proto_get_be(data + 8, 2);
    if (version == 1) {
        FL_ERR(err, FL_EPROTO, "bundle format 1 is no longer accepted");
        fl_error_set_detail(err, "Format 1 bundles carry no release channel, "
                                 "sequence or scope and need not expire, so "
                                 "they could be replayed or applied where "
                                 "they were not meant to run. This flotilla "
                                 "reads format %d.", FL_BUNDLE_FORMAT);
        fl_error_set_hint(err, "Rebuild the bundle from its migrations: "
                               "flotilla bundle build DIR --sign KEY "
                               "--environment NAME --out FILE");
        return FL_EPROTO;
    }
    if (version != FL_BUNDLE_FORMAT && version != FL_BUNDLE_FORMAT_REPEATABLE) {
        FL_ERR(err, FL_EPROTO, "bundle format version %u is not supported",
               (unsigned)version);
        fl_error_set_detail(err, "This flotilla reads format versions %d "
                            "and %d.", FL_BUNDLE_FORMAT,
                            FL_BUNDLE_FORMAT_REPEATABLE);
        if (version > FL_BUNDLE_FORMAT_REPEATABLE)
            fl_error_set_hint(err, "Upgrade flotilla on this host to read "
                                   "bundles from a newer release.");
        return FL_EPROTO;
    }
    if (len < FL_BUNDLE_HEADER_BYTES + FL_KEY_SIGNATURE_BYTES)
        return s_truncated(err, len, "the header and signature alone take 86");
    plen = fl_proto_get_be(data + 18, 4);
    if (plen > len - FL_BUNDLE_HEADER_BYTES - FL_KEY_SIGNATURE_BYTES)
        return s_truncated(err, len, "its header announces a longer payload");
    if (plen < len - FL_BUNDLE_HEADER_BYTES - FL_KEY_SIGNATURE_BYTES) {
        FL_ERR(err, FL_EPROTO, "bundle has %zu unexpected bytes after its "
                               "signature",
               len - FL_BUNDLE_HEADER_BYTES - FL_KEY_SIGNATURE_BYTES -
                   (size_t)plen);
        return FL_EPROTO;
    }
    *payload_len = (size_t)plen;
    return 0;
}

static int
s_check_signature(const unsigned char *data, size_t len,
                  const fl_trust_t *trust, fl_error_t *err)
{
    const unsigned char *pk = s_trust_find(trust, data + 10);
    char id[FL_KEY_ID_HEX];

    fl_key_id_format(id, data + 10);
    if (pk == NULL) {
        FL_ERR(err, FL_EPROTO, "bundle is signed by unknown key \"%s\"", id);
        fl_error_set_detail(err, "The trust store holds %zu key(s), none of "
                                 "them \"%s\".", trust->count, id);
        fl_error_set_hint(err, "Add the signer's .pub file to the trust "
                               "store, or sign with a trusted key.");
        return FL_EPROTO;
    }
    if (crypto_sign_verify_detached(data + len - FL_KEY_SIGNATURE_BYTES, data,
                                    len - FL_KEY_SIGNATURE_BYTES, pk) != 0) {
        FL_ERR(err, FL_EPROTO, "bundle signature is not valid");
        fl_error_set_detail(err, "The bytes do not match the signature of "
                                 "key \"%s\": the bundle was changed after it "
                                 "was signed, or is corrupt.", id);
        fl_error_set_hint(err, "Rebuild and sign the bundle again; never edit "
                               "a bundle file.");
        return FL_EPROTO;
    }
    return 0;
}

/* Decodes the payload map: {"body", "digest", "id"}, any order. */
static int
s_decode_payload(fl_codec_reader_t *r, s_body *body, const unsigned char **raw,
                 size_t *rawlen, unsigned char digest[32], char **id)
{
    static const char *const keys[3] = {"body", "digest", "id"};
    fl_codec_keys_t seen = FL_CODEC_KEYS_INIT;
    size_t n = 0;

    if (fl_codec_read_map(r, &n) != 0)
        return FL_EPROTO;
    for (size_t i = 0; i < n; i++) {
        int k = -1;
        const unsigned char *p = NULL;
        size_t plen = 0;

        if (fl_codec_read_key(r, keys, 3, &seen, &k) != 0)
            return FL_EPROTO;
        if (k == 0) {
            *raw = r->data + r->pos;
            if (fl_codec_decode(r, &s_body_schema, body) != 0)
                return FL_EPROTO;
            *rawlen = (size_t)(r->data + r->pos - *raw);
        } else if (k == 1) {
            if (fl_codec_read_bin(r, &p, &plen) != 0)
                return FL_EPROTO;
            if (plen != 32)
                return fl_codec_fail(r, "digest has %zu bytes instead of 32",
                                     plen);
            memcpy(digest, p, 32);
        } else if (k == 2) {
            if (fl_codec_read_strdup(r, id) != 0)
                return FL_EPROTO;
        } else if (fl_codec_skip(r) != 0) {
            return FL_EPROTO;
        }
    }
    for (int k = 0; k < 3; k++)
        if (!(seen.seen & ((uint64_t)1 << k)))
            return fl_codec_fail(r, "payload lacks the required field \"%s\"",
                                 keys[k]);
    return fl_codec_reader_finish(r);
}

/*
 * The repeatable migrations of a bundle of format (decoded): none in
 * format 2, at least one in format 3 (the writer uses 3 only for them),
 * each with the checksum of its content.
 */
/*
 * Migration m of a signed bundle by the rules every reader holds it to
 * (fl_migration_check: its file name, name, texts, parts, timeouts), so
 * that a bundle verify calls valid is one apply and the agents run.
 * Before, verify exited 0 for a re-signed bundle whose file name or
 * timeout every executor refused (found by an audit).
 */
static int
s_check_one(const fl_migration_t *m, fl_error_t *err)
{
    if (fl_migration_check(m, err) == 0)
        return 0;
    fl_error_prefix(err, "bundle content: ");
    if (err)
        err->code = FL_EPROTO;
    return FL_EPROTO;
}

static int
s_check_repeatables(fl_migration_list_t *reps, int64_t format,
                    fl_error_t *err)
{
    if ((format == FL_BUNDLE_FORMAT) != (reps->count == 0)) {
        FL_ERR(err, FL_EPROTO, "bundle of format %lld %s repeatable "
               "migrations", (long long)format,
               reps->count ? "carries" : "carries no");
        fl_error_set_detail(err, "Format %d carries none, format %d at least "
                                 "one.", FL_BUNDLE_FORMAT,
                            FL_BUNDLE_FORMAT_REPEATABLE);
        return FL_EPROTO;
    }
    for (size_t i = 0; i < reps->count; i++) {
        fl_migration_t *m = &reps->items[i];
        unsigned char stored[32];

        m->repeatable = 1;
        memcpy(stored, m->checksum, sizeof(stored));
        fl_migration_compute_checksum(m);
        if (sodium_memcmp(stored, m->checksum, sizeof(stored)) != 0) {
            FL_ERR(err, FL_EPROTO, "checksum of repeatable migration \"%s\" "
                   "in the bundle does not match its content", m->file);
            return FL_EPROTO;
        }
        if (s_check_one(m, err) != 0)
            return FL_EPROTO;
        for (size_t k = 0; k < i; k++)
            if (strcmp(reps->items[k].name, m->name) == 0) {
                FL_ERR(err, FL_EPROTO, "bundle carries two repeatable "
                       "migrations named \"%s\"", m->name);
                return FL_EPROTO;
            }
    }
    return 0;
}

static int
s_check_migrations(fl_migration_list_t *migs, fl_error_t *err)
{
    if (s_check_order(migs, "bundle", err) != 0)
        return FL_EPROTO;
    for (size_t i = 0; i < migs->count; i++) {
        fl_migration_t *m = &migs->items[i];
        unsigned char stored[32];

        memcpy(stored, m->checksum, sizeof(stored));
        fl_migration_compute_checksum(m);
        if (sodium_memcmp(stored, m->checksum, sizeof(stored)) != 0) {
            FL_ERR(err, FL_EPROTO, "checksum of migration %s \"%s\" in the "
                                   "bundle does not match its content",
                   m->version.text, m->file);
            return FL_EPROTO;
        }
        if (s_check_one(m, err) != 0)
            return FL_EPROTO;
    }
    return 0;
}

/* Decodes and checks everything after the signature. */
static int
s_decode(fl_bundle_t **out, const unsigned char *data, size_t len,
         size_t plen, fl_error_t *err)
{
    fl_codec_reader_t r;
    s_body body;
    const unsigned char *raw = NULL;
    size_t rawlen = 0;
    unsigned char stored[32];
    unsigned char digest[32];
    char *id = NULL;
    char want_id[FL_BUNDLE_ID_HEX];
    char signer[FL_KEY_ID_HEX];
    fl_selector_t sel = {NULL, 0};
    fl_bundle_t *b = NULL;
    int rc = 0;

    memset(&body, 0, sizeof(body));
    fl_codec_reader_init(&r, data + FL_BUNDLE_HEADER_BYTES, plen, plen,
                         "bundle payload", err);
    if ((rc = s_decode_payload(&r, &body, &raw, &rawlen, stored, &id)) != 0)
        goto cleanup;
    /* Required fields: decoding fails without them. */
    FL_ASSERT(id != NULL && body.signer != NULL);
    fl_hash_sha256(digest, raw, rawlen);
    s_id_from_digest(want_id, digest);
    fl_key_id_format(signer, data + 10);
    if (sodium_memcmp(digest, stored, sizeof(digest)) != 0) {
        rc = FL_ERR(err, FL_EPROTO, "bundle digest does not match its content");
        goto cleanup;
    }
    if (strcmp(id, want_id) != 0) {
        /* Before, said as a digest that does not match (found by an
         * audit). */
        char *shown = fl_str_escape_controls(id, 0);

        rc = FL_ERR(err, FL_EPROTO, "bundle id \"%.40s\" does not match its "
                    "digest, whose first 16 bytes make the id %s", shown,
                    want_id);
        free(shown);
        goto cleanup;
    }
    if (body.format != (int64_t)fl_proto_get_be(data + 8, 2) ||
        strcmp(body.signer, signer) != 0) {
        rc = FL_ERR(err, FL_EPROTO, "bundle body does not match its header");
        fl_error_set_detail(err, "The header says format %d and signer \"%s\"; "
                                 "the body says format %lld and signer "
                                 "\"%s\".", (int)fl_proto_get_be(data + 8, 2),
                            signer,
                            (long long)body.format, body.signer);
        goto cleanup;
    }
    if ((rc = s_check_migrations(&body.migs, err)) != 0 ||
        (rc = s_check_repeatables(&body.reps, body.format, err)) != 0 ||
        (rc = s_check_release(body.channel, body.sequence, body.environment,
                              body.selector, &sel, FL_EPROTO, err)) != 0 ||
        (body.lint_enforce_from &&
         (rc = fl_bundle_check_gate(body.lint_enforce_from, FL_EPROTO,
                                    err)) != 0))
        goto cleanup;
    b = fl_calloc(1, sizeof(*b));
    b->format = (int)body.format;
    memcpy(b->id, want_id, sizeof(b->id));
    memcpy(b->signer, signer, sizeof(b->signer));
    b->created = body.created;
    b->expires = body.expires;
    b->note = body.note ? body.note : fl_strdup("");
    body.note = NULL;
    b->lint_enforce_from = body.lint_enforce_from;
    body.lint_enforce_from = NULL;
    b->channel = body.channel;
    body.channel = NULL;
    b->sequence = body.sequence;
    b->environment = body.environment;
    body.environment = NULL;
    b->selector = s_selector_format(&sel);
    b->sel = sel;
    sel.terms = NULL;
    sel.nterms = 0;
    b->migs = body.migs;
    body.migs.items = NULL;
    body.migs.count = 0;
    b->reps = body.reps;
    body.reps.items = NULL;
    body.reps.count = 0;
    memcpy(b->digest, digest, sizeof(digest));
    sodium_bin2hex(b->digest_hex, sizeof(b->digest_hex), digest, 32);
    *out = b;
cleanup:
    free(id);
    fl_selector_release(&sel);
    fl_codec_release(&s_body_schema, &body);
    return rc;
}

void
fl_bundle_format_time(char *out, size_t n, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;

    if (t == 0)
        snprintf(out, n, "never");
    else if (gmtime_r(&tt, &tm) == NULL ||
             strftime(out, n, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(out, n, "%lld", (long long)t);
}

/* Formats seconds as a duration ("30d"); signed values may be huge. */
static void
s_format_seconds(char *out, size_t n, int64_t s)
{
    if (s > -INT64_MAX / 1000 && s < INT64_MAX / 1000)
        fl_format_duration(out, n, s * 1000);
    else
        snprintf(out, n, "%llds", (long long)s);
}

/*
 * The checks of time, in this order: the signed times agree with each
 * other (expires after created), then with this verifier's policy
 * (lifetime), then with its clock (created not in the future, not
 * expired).  A clock that is wrong thus never hides a malformed bundle.
 */
static int
s_check_times(const fl_bundle_t *b, const fl_bundle_verify_opts_t *o,
              int64_t now, fl_error_t *err)
{
    char created[64];
    char expires[64];
    char clock[64];
    char a[32];
    char c[32];
    int64_t lifetime = 0;

    fl_bundle_format_time(created, sizeof(created), b->created);
    fl_bundle_format_time(expires, sizeof(expires), b->expires);
    fl_bundle_format_time(clock, sizeof(clock), now);
    if (b->expires <= b->created) {
        FL_ERR(err, FL_EPROTO, "bundle \"%s\" expires at %s, not after its "
                               "creation at %s", b->id, expires, created);
        fl_error_set_hint(err, "The tool that built it is faulty: rebuild it "
                               "with \"flotilla bundle build\".");
        return FL_EPROTO;
    }
    if (__builtin_sub_overflow(b->expires, b->created, &lifetime) ||
        lifetime > o->max_lifetime_s) {
        s_format_seconds(c, sizeof(c), o->max_lifetime_s);
        FL_ERR(err, FL_EPROTO, "bundle \"%s\" is valid for longer than this "
                               "host accepts", b->id);
        if (lifetime > 0) {
            s_format_seconds(a, sizeof(a), lifetime);
            fl_error_set_detail(err, "It is valid for %s, from %s to %s; the "
                                     "most accepted here is %s.", a, created,
                                expires, c);
        } else {
            fl_error_set_detail(err, "It is valid from %s to %s; the most "
                                     "accepted here is %s.", created, expires,
                                c);
        }
        fl_error_set_hint(err, "Rebuild it with --expires %s or less, or raise "
                               "the maximum lifetime this host accepts.", c);
        return FL_EPROTO;
    }
    if (b->created > now && b->created - now > o->max_skew_s) {
        s_format_seconds(a, sizeof(a), b->created - now);
        s_format_seconds(c, sizeof(c), o->max_skew_s);
        FL_ERR(err, FL_EPROTO, "bundle \"%s\" was created in the future",
               b->id);
        fl_error_set_detail(err, "It was created at %s, %s ahead of this "
                                 "host's clock (%s); the clock skew allowed "
                                 "is %s.", created, a, clock, c);
        fl_error_set_hint(err, "Check the clocks of this host and of the "
                               "machine that built the bundle (NTP).");
        return FL_EPROTO;
    }
    if (now >= b->expires && !o->allow_expired) {
        FL_ERR(err, FL_EPROTO, "bundle \"%s\" expired at %s", b->id, expires);
        fl_error_set_detail(err, "This host's clock says %s.", clock);
        fl_error_set_hint(err, "Build and sign a new bundle of the same "
                               "migrations.");
        return FL_EPROTO;
    }
    return 0;
}

int
fl_bundle_verify_bytes(fl_bundle_t **out, const unsigned char *data,
                       size_t len, const fl_trust_t *trust,
                       const fl_bundle_verify_opts_t *opts, fl_error_t *err)
{
    static const fl_bundle_verify_opts_t defaults = FL_BUNDLE_VERIFY_OPTS_INIT;
    const fl_bundle_verify_opts_t *o = opts ? opts : &defaults;
    int64_t now = o->now_s ? o->now_s : (int64_t)time(NULL);
    size_t plen = 0;
    fl_bundle_t *b = NULL;

    FL_ASSERT(o->max_lifetime_s > 0 && o->max_skew_s >= 0);
    fl_proto_sodium_init();
    if (s_check_envelope(data, len, &plen, err) != 0 ||
        s_check_signature(data, len, trust, err) != 0 ||
        s_decode(&b, data, len, plen, err) != 0)
        return FL_EPROTO;
    FL_ASSERT(b != NULL);
    if (s_check_times(b, o, now, err) != 0) {
        fl_bundle_destroy(&b);
        return FL_EPROTO;
    }
    b->verified = 1;
    *out = b;
    return 0;
}

int
fl_bundle_decode_unverified(fl_bundle_t **out, const unsigned char *data,
                            size_t len, fl_error_t *err)
{
    size_t plen = 0;

    fl_proto_sodium_init();
    if (s_check_envelope(data, len, &plen, err) != 0)
        return FL_EPROTO;
    return s_decode(out, data, len, plen, err);
}

/*
 * path opened for reading without waiting: a FIFO (or a device that
 * would block) opens at once instead of hanging until a writer comes;
 * its callers then refuse what is not a regular file.  NULL with errno.
 */
static FILE *
s_open_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    FILE *f = NULL;

    if (fd < 0)
        return NULL;
    if ((f = fdopen(fd, "rb")) == NULL)
        close(fd);
    return f;
}

int
fl_bundle_read_file(unsigned char **data, size_t *len, const char *path,
                    fl_error_t *err)
{
    /* O_NONBLOCK: a FIFO opens at once, and is refused below. */
    FILE *f = s_open_file(path);
    struct stat st;
    unsigned char *buf = NULL;
    int rc = 0;

    if (f == NULL)
        return FL_ERR(err, errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
                      "could not open bundle file \"%s\": %s", path,
                      strerror(errno));
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        rc = FL_ERR(err, FL_EIO, "bundle \"%s\" is not a regular file", path);
        goto cleanup;
    }
    if ((uint64_t)st.st_size > FL_BUNDLE_MAX_SIZE) {
        rc = FL_ERR(err, FL_EPROTO, "bundle is too large");
        fl_error_set_detail(err, "File \"%s\" has %lld bytes; the limit is "
                                 "%zu.", path, (long long)st.st_size,
                            FL_BUNDLE_MAX_SIZE);
        goto cleanup;
    }
    buf = fl_malloc((size_t)st.st_size);
    if (fread(buf, 1, (size_t)st.st_size, f) != (size_t)st.st_size) {
        rc = FL_ERR(err, FL_EIO, "could not read bundle file \"%s\"", path);
        goto cleanup;
    }
    *data = buf;
    *len = (size_t)st.st_size;
    buf = NULL;
cleanup:
    free(buf);
    fclose(f);
    return rc;
}

int
fl_bundle_load_opts(fl_bundle_t **out, const char *path,
                    const fl_trust_t *trust,
                    const fl_bundle_verify_opts_t *opts, fl_error_t *err)
{
    unsigned char *data = NULL;
    size_t len = 0;
    int rc;

    if ((rc = fl_bundle_read_file(&data, &len, path, err)) != 0)
        return rc;
    rc = fl_bundle_verify_bytes(out, data, len, trust, opts, err);
    free(data);
    return rc;
}

int
fl_bundle_load(fl_bundle_t **out, const char *path, const fl_trust_t *trust,
               int64_t now_s, fl_error_t *err)
{
    fl_bundle_verify_opts_t opts = FL_BUNDLE_VERIFY_OPTS_INIT;

    opts.now_s = now_s;
    return fl_bundle_load_opts(out, path, trust, &opts, err);
}

/* Writes the target's labels as "k=v, k2=v2" (new string). */
static char *
s_labels_text(const char *const *labels, size_t nlabels)
{
    fl_buf_t b = FL_BUF_INIT(0);

    for (size_t i = 0; i < nlabels; i++) {
        char *shown = fl_str_escape_controls(labels[i], 0);

        /* Labels are short; a failure to grow only shortens the detail. */
        FL_IGNORE(fl_buf_printf(&b, "%s%s", i ? ", " : "", shown));
        free(shown);
    }
    return fl_buf_detach(&b);
}

int
fl_bundle_scope_admits(const fl_bundle_t *b, const char *environment,
                       const char *const *labels, size_t nlabels,
                       fl_error_t *err)
{
    const char **keys = NULL;
    const char **values = NULL;
    char *shown = NULL;
    int rc = 0;

    FL_ASSERT(b->verified);
    if (environment == NULL || strcmp(environment, b->environment) != 0) {
        shown = environment ? fl_str_escape_controls(environment, 0) : NULL;
        if (shown)
            FL_ERR(err, FL_EPROTO, "bundle \"%s\" is for environment \"%s\", "
                                   "not \"%s\"", b->id, b->environment, shown);
        else
            FL_ERR(err, FL_EPROTO, "bundle \"%s\" is for environment \"%s\", "
                                   "and this target names no environment",
                   b->id, b->environment);
        fl_error_set_detail(err, "The environment is part of the bundle's "
                                 "signed scope.");
        fl_error_set_hint(err, "Apply a bundle built for this target's "
                               "environment (bundle build --environment).");
        rc = FL_EPROTO;
        goto cleanup;
    }
    keys = fl_calloc(nlabels + 1, sizeof(*keys));
    values = fl_calloc(nlabels + 1, sizeof(*values));
    for (size_t i = 0; i < nlabels; i++) {
        const char *eq = strchr(labels[i], '=');

        if (eq == NULL) {
            shown = fl_str_escape_controls(labels[i], 0);
            rc = FL_ERR(err, FL_EINVAL, "invalid target label \"%s\"", shown);
            fl_error_set_detail(err, "A label is written key=value.");
            goto cleanup;
        }
        keys[i] = fl_strndup(labels[i], (size_t)(eq - labels[i]));
        values[i] = eq + 1;
    }
    for (size_t i = 0; i < b->sel.nterms; i++) {
        fl_selector_t one = {&b->sel.terms[i], 1};
        char *term = NULL;
        char *have = NULL;

        if (fl_selector_matches(&one, keys, values, nlabels))
            continue;
        term = s_selector_format(&one);
        have = s_labels_text(labels, nlabels);
        FL_ERR(err, FL_EPROTO, "bundle \"%s\" does not select this target",
               b->id);
        fl_error_set_detail(err, "Its selector \"%s\" requires %s, which the "
                                 "target's labels (%s) do not satisfy.",
                            b->selector, term, nlabels ? have : "none");
        fl_error_set_hint(err, "Apply a bundle whose --selector matches this "
                               "target, or correct the target's labels.");
        free(term);
        free(have);
        rc = FL_EPROTO;
        goto cleanup;
    }
cleanup:
    if (keys != NULL)
        for (size_t i = 0; i < nlabels; i++)
            free((char *)keys[i]);
    free(keys);
    free(values);
    free(shown);
    return rc;
}

int
fl_bundle_is_bundle_file(const char *path)
{
    FILE *f = s_open_file(path);
    char magic[S_MAGIC_LEN];
    struct stat st;
    int yes;

    if (f == NULL)
        return 0;
    yes = fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
          fread(magic, 1, sizeof(magic), f) == sizeof(magic) &&
          memcmp(magic, FL_BUNDLE_MAGIC, sizeof(magic)) == 0;
    fclose(f);
    return yes;
}

const fl_migration_list_t *
fl_bundle_migrations(const fl_bundle_t *b)
{
    return &b->migs;
}

const fl_migration_list_t *
fl_bundle_repeatables(const fl_bundle_t *b)
{
    return &b->reps;
}

const char *
fl_bundle_id(const fl_bundle_t *b)
{
    return b->id;
}

const char *
fl_bundle_signer(const fl_bundle_t *b)
{
    return b->signer;
}

int64_t
fl_bundle_created(const fl_bundle_t *b)
{
    return b->created;
}

int64_t
fl_bundle_expires(const fl_bundle_t *b)
{
    return b->expires;
}

const char *
fl_bundle_lint_enforce_from(const fl_bundle_t *b)
{
    return b->lint_enforce_from;
}

int
fl_bundle_check_gate(const char *version, int code, fl_error_t *err)
{
    fl_version_t v = FL_VERSION_INIT;

    /* An operator's gate may be written as the tool writes versions in
     * names (diesel's 2019-02-26-002946); a bundle's is signed canonical. */
    if ((code == FL_EPROTO
             ? fl_version_parse_str(&v, version ? version : "", err)
             : fl_version_parse_tool(&v, version ? version : "", err)) != 0) {
        if (err)
            err->code = code;
        fl_error_prefix(err, "invalid lint.enforce_from: ");
        fl_error_set_hint(err, "Give a version as the ledger writes it "
                               "(digits, runs separated by dots: 42, "
                               "20190226002946, 1.2) or as the tool names "
                               "its files (diesel's 2019-02-26-002946, "
                               "Flyway's 1_2).");
        return code;
    }
    /* A bundle's is signed as it is compared: canonical. */
    if (code == FL_EPROTO && strcmp(v.text, version) != 0)
        return FL_ERR(err, code, "invalid lint.enforce_from \"%.80s\" in a "
                      "bundle: not a canonical version", version);
    return 0;
}

const char *
fl_bundle_note(const fl_bundle_t *b)
{
    return b->note;
}

const char *
fl_bundle_channel(const fl_bundle_t *b)
{
    return b->channel;
}

int64_t
fl_bundle_sequence(const fl_bundle_t *b)
{
    return b->sequence;
}

const char *
fl_bundle_environment(const fl_bundle_t *b)
{
    return b->environment;
}

const char *
fl_bundle_selector(const fl_bundle_t *b)
{
    return b->selector;
}

const char *
fl_bundle_digest_hex(const fl_bundle_t *b)
{
    return b->digest_hex;
}

int
fl_bundle_format(const fl_bundle_t *b)
{
    return b->format;
}

int
fl_bundle_is_verified(const fl_bundle_t *b)
{
    return b->verified;
}

void
fl_bundle_destroy(fl_bundle_t **b)
{
    if (b == NULL || *b == NULL)
        return;
    free((*b)->note);
    free((*b)->lint_enforce_from);
    free((*b)->channel);
    free((*b)->environment);
    free((*b)->selector);
    fl_selector_release(&(*b)->sel);
    fl_migration_list_release(&(*b)->migs);
    fl_migration_list_release(&(*b)->reps);
    free(*b);
    *b = NULL;
}
