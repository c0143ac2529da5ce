/*
 * cmd_bundle.c - `flotilla bundle build|verify|inspect`: making and
 * checking signed migration bundles (docs/bundles.md).
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/parse.h"
#include "proto/bundle.h"

static const char s_usage[] =
    "Usage: flotilla bundle build DIR --sign KEYFILE --out FILE\n"
    "                             [--expires DURATION] [--note TEXT]\n"
    "                             [--created UNIX_SECONDS]\n"
    "       flotilla bundle verify FILE --trust PATH\n"
    "       flotilla bundle inspect FILE [--trust PATH] [--json]\n"
    "\n"
    "build    packs the NNNN_name.sql files of DIR into FILE, signed with the\n"
    "         secret key KEYFILE (made by \"flotilla keygen\").  --expires\n"
    "         makes the bundle invalid DURATION (e.g. 30d) after its creation\n"
    "         time; --created fixes that time (default: now), so the same\n"
    "         directory gives the same bytes.\n"
    "verify   checks FILE against the trusted public keys in PATH (a .pub\n"
    "         file or a directory of them): exit 0 and one line naming the\n"
    "         bundle and its signer, or exit 1 and the reason.\n"
    "inspect  shows the header, migrations and checksums of FILE, and with\n"
    "         --trust whether it verifies; --json for scripts.\n"
    "\n"
    "Exit codes: 0 ok, 1 failed (or not valid), 2 usage.\n";

static int
s_fail(const char *sub, fl_error_t *err)
{
    char *cmd = fl_asprintf("bundle %s", sub);
    int rc = fl_cli_report(cmd, err, FL_EXIT_FAILED);

    free(cmd);
    fl_error_clear(err);
    return rc;
}

/* Writes data to path through a temporary file and rename. */
static int
s_write_file(const char *path, const void *data, size_t len, fl_error_t *err)
{
    char *tmp = fl_asprintf("%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    int rc = 0;

    if (f == NULL) {
        rc = FL_ERR(err, FL_EIO, "could not create \"%s\": %s", tmp,
                    strerror(errno));
        goto cleanup;
    }
    if (fwrite(data, 1, len, f) != len || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        rc = FL_ERR(err, FL_EIO, "could not write \"%s\": %s", tmp,
                    strerror(errno));
        fclose(f);
        goto cleanup;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0)
        rc = FL_ERR(err, FL_EIO, "could not write \"%s\": %s", path,
                    strerror(errno));
cleanup:
    if (rc != 0)
        unlink(tmp);
    free(tmp);
    return rc;
}

static void
s_versions(char *out, size_t n, const fl_migration_list_t *l)
{
    snprintf(out, n, "%zu migration%s, versions %lld..%lld", l->count,
             l->count == 1 ? "" : "s", (long long)l->items[0].version,
             (long long)l->items[l->count - 1].version);
}

typedef struct {
    const char *dir;
    const char *key;
    const char *out;
    const char *expires;
    const char *note;
    const char *created;
} s_build_args;

static int
s_build(const s_build_args *a)
{
    fl_error_t err = FL_ERROR_INIT;
    fl_migration_list_t migs = {NULL, 0};
    fl_key_t *key = NULL;
    fl_buf_t bytes = FL_BUF_INIT(FL_BUNDLE_MAX_SIZE);
    fl_bundle_opts_t opts = FL_BUNDLE_OPTS_INIT;
    int64_t ms = 0;
    char when[64];
    char what[128];
    int rc = FL_EXIT_OK;

    opts.created = (int64_t)time(NULL);
    opts.note = a->note;
    if (a->created &&
        fl_parse_int(&opts.created, a->created, 1, INT64_MAX / 2, &err) != 0) {
        fl_error_prefix(&err, "invalid --created: ");
        rc = s_fail("build", &err);
        goto cleanup;
    }
    if (a->expires) {
        if (fl_parse_duration(&ms, a->expires, &err) != 0 || ms <= 0) {
            if (!fl_error_is_set(&err))
                FL_ERR(&err, FL_EINVAL, "duration \"%s\" is zero", a->expires);
            fl_error_prefix(&err, "invalid --expires: ");
            rc = s_fail("build", &err);
            goto cleanup;
        }
        opts.expires = opts.created + (ms + 999) / 1000;
    }
    if (fl_migration_dir_load(&migs, a->dir, &err) != 0 ||
        fl_key_load(&key, a->key, &err) != 0 ||
        fl_bundle_build(&bytes, &migs, key, &opts, &err) != 0 ||
        s_write_file(a->out, bytes.data, bytes.len, &err) != 0) {
        rc = s_fail("build", &err);
        goto cleanup;
    }
    fl_bundle_format_time(when, sizeof(when), opts.expires);
    s_versions(what, sizeof(what), &migs);
    printf("wrote %s: %s, signed by key %s, expires %s\n", a->out, what,
           fl_key_id(key), when);
cleanup:
    fl_buf_release(&bytes);
    fl_key_destroy(&key);
    fl_migration_list_release(&migs);
    return rc;
}

static int
s_verify(const char *file, const char *trust_path)
{
    fl_error_t err = FL_ERROR_INIT;
    fl_trust_t *trust = NULL;
    fl_bundle_t *b = NULL;
    char when[64];
    char what[128];
    int rc = FL_EXIT_OK;

    if (fl_trust_load(&trust, trust_path, &err) != 0 ||
        fl_bundle_load(&b, file, trust, (int64_t)time(NULL), &err) != 0) {
        fl_error_prefix(&err, "\"%s\": ", file);
        rc = s_fail("verify", &err);
        goto cleanup;
    }
    fl_bundle_format_time(when, sizeof(when), fl_bundle_expires(b));
    s_versions(what, sizeof(what), fl_bundle_migrations(b));
    printf("%s: valid bundle %s (%s) signed by trusted key %s, expires %s\n",
           file, fl_bundle_id(b), what, fl_bundle_signer(b), when);
cleanup:
    fl_bundle_destroy(&b);
    fl_trust_destroy(&trust);
    return rc;
}

static json_t *
s_migration_json(const fl_migration_t *m)
{
    json_t *sections = json_array();
    json_t *allows = json_array();
    const char *names[4] = {"up", "down", "validate", "verify"};
    const char *texts[4] = {m->up, m->down, m->validate, m->verify};

    for (int i = 0; i < 4; i++)
        if (texts[i] != NULL)
            json_array_append_new(sections, json_string(names[i]));
    for (size_t i = 0; i < m->nallows; i++)
        json_array_append_new(allows,
                              fl_json_pack("{s:s, s:s}", "rule", m->allows[i].rule,
                                        "reason", m->allows[i].reason));
    return fl_json_pack("{s:I, s:s, s:s, s:s, s:o, s:b, s:I, s:I, s:o}",
                     "version", (json_int_t)m->version, "name", m->name,
                     "file", m->file, "checksum", m->checksum_hex,
                     "sections", sections, "no_transaction", m->no_transaction,
                     "lock_timeout_ms", (json_int_t)m->lock_timeout_ms,
                     "statement_timeout_ms",
                     (json_int_t)m->statement_timeout_ms, "allow", allows);
}

static void
s_print_json(const fl_bundle_t *b, const char *trust_state,
             const char *trust_error)
{
    const fl_migration_list_t *l = fl_bundle_migrations(b);
    json_t *migs = json_array();
    json_t *o = NULL;
    char *s = NULL;

    for (size_t i = 0; i < l->count; i++)
        json_array_append_new(migs, s_migration_json(&l->items[i]));
    o = fl_json_pack("{s:s, s:i, s:s, s:s, s:I, s:I, s:s, s:s, s:o*, s:o}",
                  "id", fl_bundle_id(b), "format", fl_bundle_format(b),
                  "digest", fl_bundle_digest_hex(b), "signer",
                  fl_bundle_signer(b), "created",
                  (json_int_t)fl_bundle_created(b), "expires",
                  (json_int_t)fl_bundle_expires(b), "note", fl_bundle_note(b),
                  "trusted", trust_state, "trust_error",
                  trust_error ? json_string(trust_error) : json_null(),
                  "migrations", migs);
    s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("%s\n", s);
    free(s);
    json_decref(o);
}

static void
s_print_text(const fl_bundle_t *b, const char *trust_state,
             const char *trust_error)
{
    const fl_migration_list_t *l = fl_bundle_migrations(b);
    char created[64];
    char expires[64];

    fl_bundle_format_time(created, sizeof(created), fl_bundle_created(b));
    fl_bundle_format_time(expires, sizeof(expires), fl_bundle_expires(b));
    printf("bundle   %s\nformat   %d\ndigest   %s\nsigner   %s\n"
           "created  %s\nexpires  %s\nnote     %s\ntrusted  %s%s%s%s\n"
           "migrations:\n",
           fl_bundle_id(b), fl_bundle_format(b), fl_bundle_digest_hex(b),
           fl_bundle_signer(b), created, expires, fl_bundle_note(b),
           trust_state, trust_error ? " (" : "", trust_error ? trust_error : "",
           trust_error ? ")" : "");
    for (size_t i = 0; i < l->count; i++) {
        const fl_migration_t *m = &l->items[i];

        printf("  %-6lld %-32s sha256:%s%s%s%s%s%s\n", (long long)m->version,
               m->name, m->checksum_hex, m->down ? " down" : "",
               m->validate ? " validate" : "", m->verify ? " verify" : "",
               m->no_transaction ? " no-transaction" : "",
               m->nallows ? " allow" : "");
    }
}

static int
s_inspect(const char *file, const char *trust_path, int json)
{
    fl_error_t err = FL_ERROR_INIT;
    fl_error_t terr = FL_ERROR_INIT;
    fl_trust_t *trust = NULL;
    fl_bundle_t *b = NULL;
    unsigned char *data = NULL;
    size_t len = 0;
    const char *state = "not checked";
    int rc = FL_EXIT_OK;

    if (fl_bundle_read_file(&data, &len, file, &err) != 0 ||
        (trust_path && fl_trust_load(&trust, trust_path, &err) != 0)) {
        rc = s_fail("inspect", &err);
        goto cleanup;
    }
    if (trust != NULL) {
        if (fl_bundle_verify_bytes(&b, data, len, trust, (int64_t)time(NULL),
                                   &terr) == 0)
            state = "yes";
        else
            state = "no";
    }
    if (b == NULL && fl_bundle_decode_unverified(&b, data, len, &err) != 0) {
        fl_error_prefix(&err, "\"%s\": ", file);
        rc = s_fail("inspect", &err);
        goto cleanup;
    }
    if (json)
        s_print_json(b, state, terr.message);
    else
        s_print_text(b, state, terr.message);
cleanup:
    fl_error_clear(&terr);
    fl_bundle_destroy(&b);
    fl_trust_destroy(&trust);
    free(data);
    return rc;
}

int
fl_cmd_bundle(int argc, char **argv)
{
    static const struct option opts[] = {
        {"sign", required_argument, NULL, 's'},
        {"out", required_argument, NULL, 'o'},
        {"expires", required_argument, NULL, 'e'},
        {"note", required_argument, NULL, 'n'},
        {"created", required_argument, NULL, 'c'},
        {"trust", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    s_build_args ba = {NULL, NULL, NULL, NULL, NULL, NULL};
    const char *trust = NULL;
    const char *sub = NULL;
    int json = 0;
    int c;

    if (argc >= 2 && argv[1][0] != '-')
        sub = argv[1];
    /* Parse the options after the subcommand as a program of its own. */
    argc -= sub ? 1 : 0;
    argv += sub ? 1 : 0;
    while ((c = getopt_long(argc, argv, "s:o:e:n:c:t:jh", opts, NULL)) != -1) {
        switch (c) {
        case 's': ba.key = optarg; break;
        case 'o': ba.out = optarg; break;
        case 'e': ba.expires = optarg; break;
        case 'n': ba.note = optarg; break;
        case 'c': ba.created = optarg; break;
        case 't': trust = optarg; break;
        case 'j': json = 1; break;
        case 'h':
            fputs(s_usage, stdout);
            return FL_EXIT_OK;
        default:
            return fl_cli_usage_error("bundle", "invalid option");
        }
    }
    if (sub == NULL)
        return fl_cli_usage_error("bundle", "a subcommand is required: build, "
                                            "verify or inspect");
    if (optind != argc - 1)
        return fl_cli_usage_error("bundle", "\"bundle %s\" takes exactly one "
                                            "%s argument", sub,
                                  strcmp(sub, "build") == 0 ? "DIR" : "FILE");
    if (strcmp(sub, "build") == 0) {
        if (ba.key == NULL || ba.out == NULL || trust || json)
            return fl_cli_usage_error("bundle", "\"bundle build\" needs "
                                                "--sign and --out, and takes "
                                                "no --trust or --json");
        ba.dir = argv[optind];
        return s_build(&ba);
    }
    if (ba.key || ba.out || ba.expires || ba.note || ba.created)
        return fl_cli_usage_error("bundle", "\"bundle %s\" takes only --trust "
                                            "and --json", sub);
    if (strcmp(sub, "verify") == 0) {
        if (trust == NULL || json)
            return fl_cli_usage_error("bundle", "\"bundle verify\" needs "
                                                "--trust PATH");
        return s_verify(argv[optind], trust);
    }
    if (strcmp(sub, "inspect") == 0)
        return s_inspect(argv[optind], trust, json);
    return fl_cli_usage_error("bundle", "unknown subcommand \"%s\"", sub);
}
