/*
 * cmd_bundle.c - `flotilla bundle build|verify|inspect`: making and
 * checking signed migration bundles (docs/bundles.md).
 *
 * Everything printed from a bundle (notes, names, errors that quote
 * them) goes through fl_str_escape_controls(): `inspect` exists to look
 * at bundles nobody trusts yet.
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
#include "cli/lintout.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "common/alloc.h"
#include "common/json.h"
#include "common/parse.h"
#include "common/secret.h"
#include "common/str.h"
#include "agent/source.h"
#include "proto/bundle.h"
#include "proto/layout.h"

static const char s_usage[] =
    "Usage: flotilla bundle build (DIR | --dir DIR [--layout TOOL])\n"
    "                             --sign KEYFILE --out FILE\n"
    "                             --environment NAME [--selector SELECTOR]\n"
    "                             [--channel NAME] [--sequence N]\n"
    "                             [--expires DURATION] [--max-lifetime DURATION]\n"
    "                             [--note TEXT] [--created UNIX_SECONDS]\n"
    "                             [--lint-enforce-from VERSION]\n"
    "                             [--lint-config FILE]\n"
    "       flotilla bundle verify FILE --trust PATH [--max-lifetime DURATION]\n"
    "                              [--json]\n"
    "       flotilla bundle inspect FILE [--trust PATH] [--max-lifetime DURATION]\n"
    "                               [--json]\n"
    "\n"
    "build    packs the NNNN_name.sql files of DIR into FILE, signed with the\n"
    "         secret key KEYFILE (made by \"flotilla keygen\").  The signed\n"
    "         scope says where it may be applied: --environment (e.g.\n"
    "         production) and, with --selector, only targets whose labels\n"
    "         match (e.g. tier=canary,region=eu).  The release is number\n"
    "         --sequence (default: the creation time in Unix seconds) on\n"
    "         --channel (default \"default\"); executors refuse a sequence\n"
    "         lower than one they applied on the channel.  The bundle\n"
    "         expires --expires after its creation (default 30d), which may\n"
    "         not exceed --max-lifetime (default 90d).  --created fixes the\n"
    "         creation time (default: now), so the same directory gives the\n"
    "         same bytes.  --dir DIR reads another tool's migrations\n"
    "         directory as apply --dir reads it (--layout TOOL: diesel,\n"
    "         golang-migrate, pop, sqlx, dbmate, flyway; default: recognised\n"
    "         from its files), each migration with its version text,\n"
    "         no-transaction flag and note.\n"
    "         --lint-enforce-from (or enforce_from in the\n"
    "         lint configuration --lint-config reads) signs the lint gate\n"
    "         into the bundle: lint errors of its migrations before VERSION\n"
    "         are warnings wherever it is applied, by an agent or locally.\n"
    "verify   checks FILE against the trusted public keys in PATH (a .pub\n"
    "         file or a directory of them, writable only by its owner) and\n"
    "         its times (--max-lifetime: the longest lifetime accepted,\n"
    "         default 90d): exit 0 and one line naming the bundle, or exit\n"
    "         1 and the reason; --json says either as one object.\n"
    "inspect  shows the header, release, scope, migrations and checksums of\n"
    "         FILE, and with --trust whether it verifies (exit 1 when it\n"
    "         does not); --json for scripts.\n"
    "\n"
    "Exit codes: 0 ok, 1 failed (or not valid), 2 usage.\n";

/* Replaces *field with its escaped form. */
static void
s_escape_field(char **field)
{
    char *shown = NULL;

    if (*field == NULL)
        return;
    shown = fl_str_escape_controls(*field, 0);
    free(*field);
    *field = shown;
}

static int
s_fail_code(const char *sub, fl_error_t *err, int json, int code)
{
    char *cmd = fl_asprintf("bundle %s", sub);
    int rc = 0;

    /* Messages may quote a bundle's strings: a file name, a selector. */
    s_escape_field(&err->message);
    s_escape_field(&err->detail);
    s_escape_field(&err->hint);
    rc = fl_dbcmd_report(cmd, err, code, json);
    free(cmd);
    fl_error_clear(err);
    return rc;
}

static int
s_fail(const char *sub, fl_error_t *err, int json)
{
    return s_fail_code(sub, err, json, FL_EXIT_FAILED);
}

/*
 * Parses a duration option into whole seconds (rounded up), refusing
 * zero.  Returns 0 or FL_EINVAL with err prefixed by the option.
 */
static int
s_parse_seconds(int64_t *out, const char *opt, const char *value,
                fl_error_t *err)
{
    int64_t ms = 0;

    if (fl_parse_duration(&ms, value, err) != 0 || ms <= 0) {
        if (!fl_error_is_set(err))
            FL_ERR(err, FL_EINVAL, "duration \"%s\" is zero", value);
        fl_error_prefix(err, "invalid %s: ", opt);
        return FL_EINVAL;
    }
    *out = ms / 1000 + (ms % 1000 != 0);
    return 0;
}

/* The verifier's clock, and --max-lifetime when given. */
static int
s_verify_opts(fl_bundle_verify_opts_t *opts, const char *max_lifetime,
              fl_error_t *err)
{
    opts->now_s = (int64_t)time(NULL);
    if (max_lifetime != NULL)
        return s_parse_seconds(&opts->max_lifetime_s, "--max-lifetime",
                               max_lifetime, err);
    return 0;
}

static void
s_versions(char *out, size_t n, const fl_migration_list_t *l)
{
    snprintf(out, n, "%zu migration%s, versions %s..%s", l->count,
             l->count == 1 ? "" : "s", l->items[0].version.text,
             l->items[l->count - 1].version.text);
}

typedef struct {
    const char *dir;
    const char *tree;       /* --dir: another tool's directory */
    const char *layout;     /* --layout */
    const char *key;
    const char *out;
    const char *expires;
    const char *max_lifetime;
    const char *note;
    const char *created;
    const char *channel;
    const char *sequence;
    const char *environment;
    const char *selector;
    const char *gate;       /* --lint-enforce-from */
    const char *lint_conf;  /* --lint-config */
} s_args;

/* Fills opts from the command line, the lifetime within the maximum. */
static int
s_build_opts(fl_bundle_opts_t *opts, const s_args *a, fl_error_t *err)
{
    int64_t lifetime = FL_BUNDLE_DEFAULT_LIFETIME_S;
    int64_t max = FL_BUNDLE_MAX_LIFETIME_S;
    char have[32];
    char most[32];

    opts->created = (int64_t)time(NULL);
    if (a->created &&
        fl_parse_int(&opts->created, a->created, 1, INT64_MAX / 2, err) != 0) {
        fl_error_prefix(err, "invalid --created: ");
        return FL_EINVAL;
    }
    if (a->sequence &&
        fl_parse_int(&opts->sequence, a->sequence, 1, INT64_MAX, err) != 0) {
        fl_error_prefix(err, "invalid --sequence: ");
        return FL_EINVAL;
    }
    if ((a->expires &&
         s_parse_seconds(&lifetime, "--expires", a->expires, err) != 0) ||
        (a->max_lifetime && s_parse_seconds(&max, "--max-lifetime",
                                            a->max_lifetime, err) != 0))
        return FL_EINVAL;
    if (lifetime > max) {
        fl_format_duration(have, sizeof(have), lifetime * 1000);
        fl_format_duration(most, sizeof(most), max * 1000);
        FL_ERR(err, FL_EINVAL, "invalid --expires: a lifetime of %s is longer "
                               "than the maximum of %s", have, most);
        fl_error_set_detail(err, "Agents refuse a bundle valid for longer "
                                 "than their own maximum lifetime (90 days "
                                 "unless configured otherwise).");
        fl_error_set_hint(err, "Use a shorter --expires, or raise "
                               "--max-lifetime if every agent accepts it.");
        return FL_EINVAL;
    }
    opts->expires = opts->created + lifetime;
    opts->note = a->note;
    opts->channel = a->channel;
    opts->environment = a->environment;
    opts->selector = a->selector;
    opts->lint_enforce_from = a->gate;
    return 0;
}

/*
 * The migrations to pack into *migs (lent by src): DIR's NNNN_name.sql
 * files, or the tree --dir names read as fl_source_open_dir() reads it
 * for apply (what it leaves out said on stderr); the repeatable ones
 * (R__name.sql, Flyway's R__) in src->repeatables.
 */
static int
s_build_source(const fl_migration_list_t **migs, fl_source_t *src,
               const s_args *a, fl_error_t *err)
{
    fl_layout_tool tool = FL_LAYOUT_AUTO;
    int rc;

    if (a->tree == NULL) {
        /* Repeatable migrations (R__name.sql) make a format 3 bundle. */
        if ((rc = fl_migration_dir_load_all(&src->dir, &src->rdir, a->dir,
                                            err)) != 0)
            return rc;
        *migs = &src->dir;
        src->repeatables = &src->rdir;
        return 0;
    }
    if (a->layout && (rc = fl_layout_tool_from_name(&tool, a->layout,
                                                    err)) != 0) {
        fl_error_prefix(err, "invalid --layout: ");
        return rc;
    }
    if ((rc = fl_source_open_dir(src, a->tree, tool, err)) != 0)
        return rc;
    if (src->left_out != NULL) {
        char *said = fl_str_escape_controls(src->left_out, 0);

        fprintf(stderr, "flotilla bundle build: warning: %s\n", said);
        free(said);
    }
    *migs = src->migs;
    return 0;
}

static int
s_build(const s_args *a)
{
    fl_error_t err = FL_ERROR_INIT;
    fl_source_t src = FL_SOURCE_INIT;
    const fl_migration_list_t *migs = NULL;
    fl_key_t *key = NULL;
    fl_buf_t bytes = FL_BUF_INIT(FL_BUNDLE_MAX_SIZE);
    fl_bundle_opts_t opts = FL_BUNDLE_OPTS_INIT;
    char when[64];
    char what[2 * FL_VERSION_MAX + 64];
    char gate[68];
    char more[64] = "";
    int rc = FL_EXIT_OK;

    gate[0] = '\0';
    /* --lint-enforce-from wins over the configuration file's. */
    if (a->gate == NULL && a->lint_conf &&
        fl_lint_conf_enforce_from(gate, sizeof(gate), a->lint_conf,
                                  &err) != 0) {
        rc = s_fail("build", &err, 0);
        goto cleanup;
    }
    /* A bad option's value is a usage error, exit 2, as elsewhere
     * (before, 1: found by an audit). */
    if (s_build_opts(&opts, a, &err) != 0) {
        rc = s_fail_code("build", &err, 0, FL_EXIT_USAGE);
        goto cleanup;
    }
    if (opts.lint_enforce_from == NULL && gate[0])
        opts.lint_enforce_from = gate;
    rc = s_build_source(&migs, &src, a, &err);
    opts.repeatables = src.repeatables;
    if (rc != 0 || fl_key_load(&key, a->key, &err) != 0 ||
        fl_bundle_build(&bytes, migs, key, &opts, &err) != 0 ||
        /* Never through a link planted at --out or its temporary file
         * (an O_EXCL, O_NOFOLLOW file of a random name, renamed). */
        fl_file_save_public(a->out, bytes.data, bytes.len, 1, &err) != 0) {
        rc = s_fail("build", &err, 0);
        goto cleanup;
    }
    fl_bundle_format_time(when, sizeof(when), opts.expires);
    s_versions(what, sizeof(what), migs);
    if (src.repeatables && src.repeatables->count > 0)
        snprintf(more, sizeof(more), " and %zu repeatable migration%s",
                 src.repeatables->count,
                 src.repeatables->count == 1 ? "" : "s");
    printf("wrote %s: %s%s%s%s%s, signed by key %s, channel %s sequence "
           "%lld, environment %s, expires %s\n", a->out, what, more,
           a->tree ? " (read as " : "",
           a->tree ? fl_layout_tool_name(src.tool) : "",
           a->tree ? "'s)" : "", fl_key_id(key),
           opts.channel ? opts.channel : FL_BUNDLE_DEFAULT_CHANNEL,
           (long long)(opts.sequence ? opts.sequence : opts.created),
           opts.environment, when);
cleanup:
    fl_buf_release(&bytes);
    fl_key_destroy(&key);
    fl_source_close(&src);
    return rc;
}

static int
s_verify(const char *file, const char *trust_path, const char *max_lifetime,
         int json)
{
    fl_error_t err = FL_ERROR_INIT;
    fl_bundle_verify_opts_t opts = FL_BUNDLE_VERIFY_OPTS_INIT;
    fl_trust_t *trust = NULL;
    fl_bundle_t *b = NULL;
    char when[64];
    char what[2 * FL_VERSION_MAX + 64];
    int rc = FL_EXIT_OK;

    if (s_verify_opts(&opts, max_lifetime, &err) != 0) {
        rc = s_fail_code("verify", &err, json, FL_EXIT_USAGE);
        goto cleanup;
    }
    /* The trust store's errors are its own, not the bundle's. */
    if (fl_trust_load(&trust, trust_path, &err) != 0) {
        rc = s_fail("verify", &err, json);
        goto cleanup;
    }
    if (fl_bundle_load_opts(&b, file, trust, &opts, &err) != 0) {
        fl_error_prefix(&err, "\"%s\": ", file);
        rc = s_fail("verify", &err, json);
        goto cleanup;
    }
    if (json) {
        json_t *o = fl_json_pack(
            "{s:b, s:s, s:s, s:s, s:I, s:s, s:o, s:I, s:I, s:I, s:I}", "ok", 1,
            "id", fl_bundle_id(b), "signer", fl_bundle_signer(b), "channel",
            fl_bundle_channel(b), "sequence",
            (json_int_t)fl_bundle_sequence(b), "environment",
            fl_bundle_environment(b), "selector",
            fl_bundle_selector(b)[0] ? json_string(fl_bundle_selector(b))
                                     : json_null(),
            "created", (json_int_t)fl_bundle_created(b), "expires",
            (json_int_t)fl_bundle_expires(b), "migrations",
            (json_int_t)fl_bundle_migrations(b)->count, "repeatables",
            (json_int_t)fl_bundle_repeatables(b)->count);
        fl_dbcmd_print_json(o);
        json_decref(o);
        goto cleanup;
    }
    fl_bundle_format_time(when, sizeof(when), fl_bundle_expires(b));
    s_versions(what, sizeof(what), fl_bundle_migrations(b));
    if (fl_bundle_repeatables(b)->count > 0) {
        size_t n = strlen(what), k = fl_bundle_repeatables(b)->count;
        snprintf(what + n, sizeof(what) - n, ", %zu repeatable migration%s",
                 k, k == 1 ? "" : "s");
    }
    printf("%s: valid bundle %s (%s; channel %s sequence %lld; environment "
           "%s%s%s) signed by trusted key %s, expires %s\n",
           file, fl_bundle_id(b), what, fl_bundle_channel(b),
           (long long)fl_bundle_sequence(b), fl_bundle_environment(b),
           fl_bundle_selector(b)[0] ? ", selector " : "",
           fl_bundle_selector(b), fl_bundle_signer(b), when);
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
                              fl_json_pack("{s:o, s:o}", "rule",
                                        fl_json_text(m->allows[i].rule),
                                        "reason",
                                        fl_json_text(m->allows[i].reason)));
    json_t *parts = json_array();

    for (size_t i = 0; i < m->nparts; i++)
        json_array_append_new(parts, fl_json_text(m->parts[i]));
    return fl_json_pack("{s:s, s:o, s:o, s:s, s:o, s:b, s:I, s:I, s:o, s:o, "
                     "s:o}",
                     "version", m->version.text, "name",
                     fl_json_text(m->name), "file", fl_json_text(m->file),
                     "checksum", m->checksum_hex,
                     "sections", sections, "no_transaction", m->no_transaction,
                     "lock_timeout_ms", (json_int_t)m->lock_timeout_ms,
                     "statement_timeout_ms",
                     (json_int_t)m->statement_timeout_ms, "allow", allows,
                     "note", m->note ? fl_json_text(m->note) : json_null(),
                     "parts", parts);
}

static int
s_print_json(const fl_bundle_t *b, const char *trust_state,
             const char *trust_error, fl_error_t *err)
{
    const fl_migration_list_t *l = fl_bundle_migrations(b);
    json_t *migs = json_array();
    json_t *o = NULL;
    char *s = NULL;
    int rc = 0;

    const fl_migration_list_t *reps = fl_bundle_repeatables(b);
    json_t *rj = json_array();

    for (size_t i = 0; i < l->count; i++)
        json_array_append_new(migs, s_migration_json(&l->items[i]));
    for (size_t i = 0; i < reps->count; i++)
        json_array_append_new(rj, s_migration_json(&reps->items[i]));
    o = fl_json_pack("{s:s, s:i, s:s, s:s, s:s, s:I, s:s, s:o, s:I, s:I, s:o, "
                  "s:s, s:o, s:o}",
                  "id", fl_bundle_id(b), "format", fl_bundle_format(b),
                  "digest", fl_bundle_digest_hex(b), "signer",
                  fl_bundle_signer(b), "channel", fl_bundle_channel(b),
                  "sequence", (json_int_t)fl_bundle_sequence(b),
                  "environment", fl_bundle_environment(b), "selector",
                  fl_bundle_selector(b)[0]
                      ? json_string(fl_bundle_selector(b))
                      : json_null(),
                  "created", (json_int_t)fl_bundle_created(b), "expires",
                  (json_int_t)fl_bundle_expires(b), "note",
                  fl_json_text(fl_bundle_note(b)), "trusted", trust_state,
                  "trust_error",
                  trust_error ? fl_json_text(trust_error) : json_null(),
                  "migrations", migs);
    json_object_set_new(o, "repeatables", rj);
    json_object_set_new(o, "lint_enforce_from",
                        fl_bundle_lint_enforce_from(b)
                            ? fl_json_text(fl_bundle_lint_enforce_from(b))
                            : json_null());
    /*
     * ENSURE_ASCII: C1 and bidirectional controls come out as \uXXXX,
     * as the C0 controls always do; the values read back unchanged.
     */
    if (o != NULL)
        s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                              JSON_ENSURE_ASCII);
    if (s == NULL)
        rc = FL_ERR(err, FL_EFAIL, "could not encode the bundle as JSON");
    else
        printf("%s\n", s);
    free(s);
    json_decref(o);
    return rc;
}

static void
s_print_text(const fl_bundle_t *b, const char *trust_state,
             const char *trust_error)
{
    const fl_migration_list_t *l = fl_bundle_migrations(b);
    const fl_migration_list_t *reps = fl_bundle_repeatables(b);
    char created[64];
    char expires[64];
    char *note = fl_str_escape_controls(fl_bundle_note(b), 0);
    char *why = trust_error ? fl_str_escape_controls(trust_error, 0) : NULL;

    fl_bundle_format_time(created, sizeof(created), fl_bundle_created(b));
    fl_bundle_format_time(expires, sizeof(expires), fl_bundle_expires(b));
    printf("bundle   %s\nformat   %d\ndigest   %s\nsigner   %s\n"
           "channel  %s\nsequence %lld\nenv      %s\nselector %s\n"
           "created  %s\nexpires  %s\nnote     %s\ntrusted  %s%s%s%s\n"
           "lint gate %s\nmigrations:\n",
           fl_bundle_id(b), fl_bundle_format(b), fl_bundle_digest_hex(b),
           fl_bundle_signer(b), fl_bundle_channel(b),
           (long long)fl_bundle_sequence(b), fl_bundle_environment(b),
           fl_bundle_selector(b)[0] ? fl_bundle_selector(b) : "(any target)",
           created, expires, note, trust_state, why ? " (" : "",
           why ? why : "", why ? ")" : "",
           fl_bundle_lint_enforce_from(b) ? fl_bundle_lint_enforce_from(b)
                                          : "(every migration)");
    for (size_t i = 0; i < l->count; i++) {
        const fl_migration_t *m = &l->items[i];
        char *name = fl_str_escape_controls(m->name, 0);

        printf("  %-6s %-32s sha256:%s%s%s%s%s", m->version.text,
               name, m->checksum_hex, m->down ? " down" : "",
               m->validate ? " validate" : "", m->verify ? " verify" : "",
               m->no_transaction ? " no-transaction" : "");
        /* Each option with its value (before, a bare "allow" and no
         * timeout: found by an audit). */
        if (m->lock_timeout_ms >= 0)
            printf(" lock_timeout=%lldms", (long long)m->lock_timeout_ms);
        if (m->statement_timeout_ms >= 0)
            printf(" statement_timeout=%lldms",
                   (long long)m->statement_timeout_ms);
        for (size_t k = 0; k < m->nallows; k++) {
            char *rule = fl_str_escape_controls(m->allows[k].rule, 0);
            char *reason = fl_str_escape_controls(m->allows[k].reason, 0);

            printf(" allow=%s (%s)", rule, reason);
            free(rule);
            free(reason);
        }
        printf("\n");
        free(name);
    }
    /* What runs on every target too: never left out of what is shown. */
    if (reps->count > 0)
        printf("repeatable migrations (run when their text changes):\n");
    for (size_t i = 0; i < reps->count; i++) {
        char *name = fl_str_escape_controls(reps->items[i].file, 0);

        printf("  %-39s sha256:%s%s\n", name, reps->items[i].checksum_hex,
               reps->items[i].no_transaction ? " no-transaction" : "");
        free(name);
    }
    free(note);
    free(why);
}

/*
 * Shows FILE; with a trust store, says whether it verifies and exits 1
 * when it does not, so that no script takes a shown bundle for a trusted
 * one.
 */
static int
s_inspect(const char *file, const char *trust_path, const char *max_lifetime,
          int json)
{
    fl_error_t err = FL_ERROR_INIT;
    fl_error_t terr = FL_ERROR_INIT;
    fl_bundle_verify_opts_t opts = FL_BUNDLE_VERIFY_OPTS_INIT;
    fl_trust_t *trust = NULL;
    fl_bundle_t *b = NULL;
    unsigned char *data = NULL;
    size_t len = 0;
    const char *state = "not checked";
    int rc = FL_EXIT_OK;

    if (s_verify_opts(&opts, max_lifetime, &err) != 0) {
        rc = s_fail_code("inspect", &err, json, FL_EXIT_USAGE);
        goto cleanup;
    }
    if (fl_bundle_read_file(&data, &len, file, &err) != 0 ||
        (trust_path && fl_trust_load(&trust, trust_path, &err) != 0)) {
        rc = s_fail("inspect", &err, json);
        goto cleanup;
    }
    if (trust != NULL) {
        if (fl_bundle_verify_bytes(&b, data, len, trust, &opts, &terr) == 0) {
            state = "yes";
        } else {
            state = "no";
            rc = FL_EXIT_FAILED;
        }
    }
    if (b == NULL && fl_bundle_decode_unverified(&b, data, len, &err) != 0) {
        fl_error_prefix(&err, "\"%s\": ", file);
        rc = s_fail("inspect", &err, json);
        goto cleanup;
    }
    if (json) {
        if (s_print_json(b, state, terr.message, &err) != 0)
            rc = s_fail("inspect", &err, json);
    } else {
        s_print_text(b, state, terr.message);
    }
cleanup:
    fl_error_clear(&terr);
    fl_bundle_destroy(&b);
    fl_trust_destroy(&trust);
    free(data);
    return rc;
}

/* Long options without a short form. */
enum {
    S_OPT_CHANNEL = 256,
    S_OPT_SEQUENCE,
    S_OPT_ENVIRONMENT,
    S_OPT_SELECTOR,
    S_OPT_MAX_LIFETIME,
    S_OPT_GATE,
    S_OPT_LINT_CONF,
    S_OPT_DIR,
    S_OPT_LAYOUT
};

int
fl_cmd_bundle(int argc, char **argv)
{
    static const struct option opts[] = {
        {"sign", required_argument, NULL, 's'},
        {"out", required_argument, NULL, 'o'},
        {"expires", required_argument, NULL, 'e'},
        {"note", required_argument, NULL, 'n'},
        {"created", required_argument, NULL, 'c'},
        {"channel", required_argument, NULL, S_OPT_CHANNEL},
        {"sequence", required_argument, NULL, S_OPT_SEQUENCE},
        {"environment", required_argument, NULL, S_OPT_ENVIRONMENT},
        {"selector", required_argument, NULL, S_OPT_SELECTOR},
        {"max-lifetime", required_argument, NULL, S_OPT_MAX_LIFETIME},
        {"lint-enforce-from", required_argument, NULL, S_OPT_GATE},
        {"lint-config", required_argument, NULL, S_OPT_LINT_CONF},
        {"dir", required_argument, NULL, S_OPT_DIR},
        {"layout", required_argument, NULL, S_OPT_LAYOUT},
        {"trust", required_argument, NULL, 't'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    s_args a;
    const char *trust = NULL;
    const char *sub = NULL;
    int json = 0;
    int c;

    memset(&a, 0, sizeof(a));
    if (argc >= 2 && argv[1][0] != '-')
        sub = argv[1];
    /* Parse the options after the subcommand as a program of its own. */
    argc -= sub ? 1 : 0;
    argv += sub ? 1 : 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "s:o:e:n:c:t:jh", opts, NULL)) != -1) {
        switch (c) {
        case 's': a.key = optarg; break;
        case 'o': a.out = optarg; break;
        case 'e': a.expires = optarg; break;
        case 'n': a.note = optarg; break;
        case 'c': a.created = optarg; break;
        case S_OPT_CHANNEL: a.channel = optarg; break;
        case S_OPT_SEQUENCE: a.sequence = optarg; break;
        case S_OPT_ENVIRONMENT: a.environment = optarg; break;
        case S_OPT_SELECTOR: a.selector = optarg; break;
        case S_OPT_MAX_LIFETIME: a.max_lifetime = optarg; break;
        case S_OPT_GATE: a.gate = optarg; break;
        case S_OPT_LINT_CONF: a.lint_conf = optarg; break;
        case S_OPT_DIR: a.tree = optarg; break;
        case S_OPT_LAYOUT: a.layout = optarg; break;
        case 't': trust = optarg; break;
        case 'j': json = 1; break;
        case 'h':
            fputs(s_usage, stdout);
            return FL_EXIT_OK;
        default:
            return fl_cli_option_error("bundle", opts, argv);
        }
    }
    if (sub == NULL)
        return fl_cli_usage_error("bundle", "a subcommand is required: build, "
                                            "verify or inspect");
    if (strcmp(sub, "build") != 0 && strcmp(sub, "verify") != 0 &&
        strcmp(sub, "inspect") != 0)
        return fl_cli_usage_error("bundle", "unknown subcommand \"%s\": "
                                  "build, verify or inspect", sub);
    if (a.layout != NULL) {
        fl_layout_tool tool;
        fl_error_t lerr = FL_ERROR_INIT;

        if (fl_layout_tool_from_name(&tool, a.layout, &lerr) != 0)
            return fl_cli_bad_option("bundle", "--layout", &lerr);
    }
    if (strcmp(sub, "build") == 0 && a.layout && a.tree == NULL)
        return fl_cli_usage_error("bundle", "--layout TOOL goes with --dir "
                                            "DIR (another tool's "
                                            "migrations)");
    if (strcmp(sub, "build") == 0 && (a.tree || a.layout)) {
        if (a.tree == NULL || optind != argc)
            return fl_cli_usage_error("bundle", "\"bundle build\" takes DIR "
                                                "or --dir DIR (another "
                                                "tool's, with --layout "
                                                "TOOL), not both");
    } else if (optind != argc - 1) {
        return fl_cli_usage_error("bundle", "\"bundle %s\" takes exactly one "
                                            "%s argument", sub,
                                  strcmp(sub, "build") == 0 ? "DIR" : "FILE");
    }
    if (strcmp(sub, "build") == 0) {
        if (a.key == NULL || a.out == NULL || a.environment == NULL || trust ||
            json)
            return fl_cli_usage_error("bundle", "\"bundle build\" needs "
                                                "--sign, --out and "
                                                "--environment, and takes no "
                                                "--trust or --json");
        a.dir = a.tree ? NULL : argv[optind];
        return s_build(&a);
    }
    if (a.key || a.out || a.expires || a.note || a.created || a.channel ||
        a.sequence || a.environment || a.selector || a.tree || a.layout)
        return fl_cli_usage_error("bundle", "\"bundle %s\" takes only "
                                            "--trust, --max-lifetime and "
                                            "--json", sub);
    if (strcmp(sub, "verify") == 0) {
        if (trust == NULL)
            return fl_cli_usage_error("bundle", "\"bundle verify\" needs "
                                                "--trust PATH");
        return s_verify(argv[optind], trust, a.max_lifetime, json);
    }
    if (strcmp(sub, "inspect") == 0)
        return s_inspect(argv[optind], trust, a.max_lifetime, json);
    return fl_cli_usage_error("bundle", "unknown subcommand \"%s\"", sub);
}
