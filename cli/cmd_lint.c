/*
 * cmd_lint.c - `flotilla lint PATH...`: migration safety analysis.
 *
 * PATH is a .sql file, a migrations directory or a bundle.  Each
 * migration (a file named NNNN_name.sql, or a bundle's) is linted as the
 * pipeline runs it: its up section with its options, plus the
 * migration-level checks.  Any other .sql file is linted as plain SQL.  Output is human,
 * JSON or SARIF 2.1.0; exit 0 when nothing is at error level, 1 when
 * something is, 2 for usage errors.
 */
#include <dirent.h>
#include <getopt.h>
#include <jansson.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "agent/lintcheck.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "common/alloc.h"
#include "common/config.h"
#include "common/json.h"
#include "common/parse.h"
#include "lint/lint.h"
#include "proto/bundle.h"
#include "proto/migration.h"

#define S_MAX_FILE ((long)64 * 1024 * 1024)

typedef struct {
    int64_t pg_version;
    fl_conf_strlist_t rules;
    fl_conf_strlist_t exclude_rules;
    fl_conf_strlist_t errors;
    fl_conf_strlist_t warnings;
} s_conf_t;

static const fl_conf_option s_conf_table[] = {
    {"pg_version", FL_CONF_INT, offsetof(s_conf_t, pg_version), "15", 9, 99, 0, 0,
     "target PostgreSQL major version", NULL, 0},
    {"rules", FL_CONF_STRLIST, offsetof(s_conf_t, rules), NULL, 0, 0, 0, 0,
     "rules to enable (opt-in rules included)", NULL, 0},
    {"exclude_rules", FL_CONF_STRLIST, offsetof(s_conf_t, exclude_rules), NULL,
     0, 0, 0, 0, "rules to turn off", NULL, 0},
    {"errors", FL_CONF_STRLIST, offsetof(s_conf_t, errors), NULL, 0, 0, 0, 0,
     "rules reported as errors", NULL, 0},
    {"warnings", FL_CONF_STRLIST, offsetof(s_conf_t, warnings), NULL, 0, 0, 0, 0,
     "rules reported as warnings", NULL, 0},
    {NULL, 0, 0, NULL, 0, 0, 0, 0, NULL, NULL, 0},
};

static int
s_read_file(char **out, const char *path, fl_error_t *err)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    long size;
    int rc = 0;

    *out = NULL;
    if (!f)
        return FL_ERR(err, FL_EIO, "could not open \"%s\": %m", path);
    if (fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 ||
        fseek(f, 0, SEEK_SET) != 0) {
        rc = FL_ERR(err, FL_EIO, "could not read \"%s\": %m", path);
        goto cleanup;
    }
    if (size > S_MAX_FILE) {
        rc = FL_ERR(err, FL_EINVAL, "file \"%s\" is too large to lint (%ld bytes)",
                    path, size);
        fl_error_set_hint(err, "split it; the limit is %ld bytes", S_MAX_FILE);
        goto cleanup;
    }
    buf = fl_malloc((size_t)size + 1);
    if (fread(buf, 1, (size_t)size, f) != (size_t)size) {
        rc = FL_ERR(err, FL_EIO, "could not read \"%s\": %m", path);
        goto cleanup;
    }
    buf[size] = '\0';
    if (memchr(buf, '\0', (size_t)size)) {
        rc = FL_ERR(err, FL_EINVAL, "file \"%s\" contains a NUL byte", path);
        goto cleanup;
    }
    *out = buf;
    buf = NULL;

cleanup:
    free(buf);
    fclose(f);
    return rc;
}

static int
s_is_migration_name(const char *name);

/*
 * A file named NNNN_name.sql is a migration: parsed by proto's strict
 * parser and linted as the pipeline runs it.  Any other file is plain SQL.
 */
static int
s_lint_file(fl_finding_list_t *out, const char *path,
            const fl_lint_options_t *opts, fl_error_t *err)
{
    const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    char *text = NULL;
    fl_migration_t m;
    int rc;

    if ((rc = s_read_file(&text, path, err)) != 0)
        return rc;
    FL_ASSERT(text != NULL);
    if (s_is_migration_name(base)) {
        memset(&m, 0, sizeof(m));
        rc = fl_migration_parse(&m, base, text, strlen(text), err);
        if (rc == 0)
            rc = fl_lintcheck_migration(out, &m, path, opts, err);
        fl_migration_release(&m);
    } else {
        rc = fl_lint_sql(out, text, path, 0, opts, err);
    }
    free(text);
    return rc;
}

/*
 * A bundle: each migration linted as above.  Lint reads the bundle
 * without verifying its signature (nothing is executed); findings name
 * "BUNDLE:FILE".
 */
static int
s_lint_bundle(fl_finding_list_t *out, const char *path,
              const fl_lint_options_t *opts, fl_error_t *err)
{
    unsigned char *data = NULL;
    size_t len = 0;
    fl_bundle_t *b = NULL;
    const fl_migration_list_t *migs = NULL;
    int rc;

    if ((rc = fl_bundle_read_file(&data, &len, path, err)) != 0)
        return rc;
    rc = fl_bundle_decode_unverified(&b, data, len, err);
    free(data);
    if (rc != 0)
        return rc;
    migs = fl_bundle_migrations(b);
    for (size_t i = 0; i < migs->count && rc == 0; i++) {
        char *name = fl_asprintf("%s:%s", path, migs->items[i].file);
        rc = fl_lintcheck_migration(out, &migs->items[i], name, opts, err);
        free(name);
    }
    fl_bundle_destroy(&b);
    return rc;
}

static int
s_is_migration_name(const char *name)
{
    size_t n = strlen(name), d = strspn(name, "0123456789");
    return d > 0 && name[d] == '_' && n > 4 && strcmp(name + n - 4, ".sql") == 0;
}

static int
s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
s_lint_dir(fl_finding_list_t *out, const char *dir,
           const fl_lint_options_t *opts, fl_error_t *err)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL;
    size_t n = 0, i;
    int rc = 0;

    if (!d)
        return FL_ERR(err, FL_EIO, "could not open directory \"%s\": %m", dir);
    while ((e = readdir(d)) != NULL) {
        if (!s_is_migration_name(e->d_name))
            continue;
        names = fl_reallocarray(names, n + 1, sizeof(char *));
        names[n++] = fl_asprintf("%s/%s", dir, e->d_name);
    }
    closedir(d);
    if (n > 0) /* qsort's array must not be NULL, even when empty */
        qsort(names, n, sizeof(char *), s_cmp_str);
    for (i = 0; i < n && rc == 0; i++)
        rc = s_lint_file(out, names[i], opts, err);
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* ---- output ---- */

static void
s_print_human(const fl_finding_list_t *list)
{
    size_t i;
    for (i = 0; i < list->count; i++) {
        const fl_finding_t *f = &list->items[i];
        printf("%s:%d:%d: %s %s: %s\n", f->file, f->line, f->column,
               fl_lint_severity_name(f->severity), f->rule, f->message);
        printf("  help: %s\n", f->help);
        if (f->excerpt && *f->excerpt)
            printf("  | %s\n", f->excerpt);
    }
    printf("%zu error(s), %zu warning(s)\n",
           fl_finding_list_count(list, FL_LINT_ERROR),
           fl_finding_list_count(list, FL_LINT_WARNING));
}

static void
s_dump(json_t *o)
{
    char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}

static void
s_print_json(const fl_finding_list_t *list)
{
    json_t *arr = json_array();
    size_t i;

    for (i = 0; i < list->count; i++) {
        const fl_finding_t *f = &list->items[i];
        json_array_append_new(arr, fl_json_pack(
            "{s:s, s:i, s:i, s:s, s:s, s:s, s:s, s:s}", "file", f->file,
            "line", f->line, "column", f->column, "severity",
            fl_lint_severity_name(f->severity), "rule", f->rule, "message",
            f->message, "help", f->help, "excerpt", f->excerpt));
    }
    s_dump(fl_json_pack("{s:o, s:I, s:I}", "findings", arr, "errors",
                     (json_int_t)fl_finding_list_count(list, FL_LINT_ERROR),
                     "warnings",
                     (json_int_t)fl_finding_list_count(list, FL_LINT_WARNING)));
}

static void
s_print_sarif(const fl_finding_list_t *list, const fl_lint_options_t *opts)
{
    json_t *rules = json_array(), *results = json_array();
    size_t i, nrules;
    const fl_lint_rule_t *table = fl_lint_rules(&nrules);

    for (i = 0; i < nrules; i++) {
        fl_lint_severity sev = fl_lint_options_severity(opts, &table[i]);
        json_array_append_new(rules, fl_json_pack(
            "{s:s, s:{s:s}, s:{s:s}, s:{s:s}}", "id", table[i].id,
            "shortDescription", "text", table[i].id, "help", "text",
            table[i].help, "defaultConfiguration", "level",
            sev == FL_LINT_OFF ? "none" : fl_lint_severity_name(sev)));
    }
    for (i = 0; i < list->count; i++) {
        const fl_finding_t *f = &list->items[i];
        const fl_lint_rule_t *r = fl_lint_rule_find(f->rule);
        json_array_append_new(results, fl_json_pack(
            "{s:s, s:I, s:s, s:{s:s}, s:[{s:{s:{s:s}, s:{s:i, s:i}}}]}",
            "ruleId", f->rule, "ruleIndex", (json_int_t)(r - table), "level",
            fl_lint_severity_name(f->severity), "message", "text", f->message,
            "locations", "physicalLocation", "artifactLocation", "uri", f->file,
            "region", "startLine", f->line, "startColumn", f->column));
    }
    s_dump(fl_json_pack(
        "{s:s, s:s, s:[{s:{s:{s:s, s:s, s:s, s:o}}, s:o}]}", "$schema",
        "https://json.schemastore.org/sarif-2.1.0.json", "version", "2.1.0",
        "runs", "tool", "driver", "name", "flotilla", "version",
        FLOTILLA_VERSION, "informationUri", "https://github.com/flotilla/flotilla",
        "rules", rules, "results", results));
}

/* ---- options ---- */

static int
s_apply_list(fl_lint_options_t *opts, const fl_conf_strlist_t *l,
             const char *sev, fl_error_t *err)
{
    size_t i;
    for (i = 0; i < l->count; i++)
        if (fl_lint_options_set(opts, l->items[i], sev, err) != 0)
            return FL_EINVAL;
    return 0;
}

static int
s_pg_version(int *out, const char *s, fl_error_t *err)
{
    int64_t v;
    if (fl_parse_int(&v, s, 9, 999999, err) != 0)
        return FL_EINVAL;
    if (v >= 90000)
        *out = (int)v;
    else if (v <= 99)
        *out = (int)v * 10000;
    else
        return FL_ERR(err, FL_EINVAL, "invalid PostgreSQL version \"%s\"", s);
    return 0;
}

static void
s_help(void)
{
    size_t n, i;
    const fl_lint_rule_t *r = fl_lint_rules(&n);

    printf("Usage: flotilla lint [OPTION]... PATH...\n\n"
           "Checks SQL files and migrations directories for statements that\n"
           "would lock, rewrite or break a live PostgreSQL database.\n\n"
           "  --format FORMAT       human (default), json or sarif\n"
           "  --pg-version N        target PostgreSQL major version (default 15)\n"
           "  --rule ID[=SEVERITY]  enable a rule, or set it to error, warning or off\n"
           "  --exclude-rule ID     turn a rule off\n"
           "  --config FILE         YAML file with pg_version, rules, exclude_rules,\n"
           "                        errors and warnings (command line wins)\n"
           "  --help                print this help\n\n"
           "Exit status: 0 no error-level finding, 1 some, 2 usage error.\n\n"
           "Rules (default severity):\n");
    for (i = 0; i < n; i++)
        printf("  %-45s %s%s\n", r[i].id, fl_lint_severity_name(r[i].severity),
               r[i].opt_in ? " (opt-in)" : "");
}

int
fl_cmd_lint(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},
        {"pg-version", required_argument, NULL, 'p'},
        {"rule", required_argument, NULL, 'r'},
        {"exclude-rule", required_argument, NULL, 'x'},
        {"config", required_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    fl_lint_options_t opts;
    fl_finding_list_t found = {NULL, 0};
    fl_error_t err = FL_ERROR_INIT;
    s_conf_t conf;
    const char *format = "human", *config = NULL, *pgv = NULL;
    char **rule_args = NULL, **excl_args = NULL;
    size_t nrule = 0, nexcl = 0, i;
    int c, rc = FL_EXIT_OK, have_conf = 0;

    memset(&conf, 0, sizeof(conf));
    fl_lint_options_init(&opts);
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:p:r:x:c:h", longopts, NULL)) != -1) {
        switch (c) {
        case 'f':
            format = optarg;
            break;
        case 'p':
            pgv = optarg;
            break;
        case 'r':
            rule_args = fl_reallocarray(rule_args, nrule + 1, sizeof(char *));
            rule_args[nrule++] = optarg;
            break;
        case 'x':
            excl_args = fl_reallocarray(excl_args, nexcl + 1, sizeof(char *));
            excl_args[nexcl++] = optarg;
            break;
        case 'c':
            config = optarg;
            break;
        case 'h':
            s_help();
            goto cleanup;
        default:
            rc = fl_cli_usage_error("lint", "invalid option");
            goto cleanup;
        }
    }
    if (strcmp(format, "human") != 0 && strcmp(format, "json") != 0 &&
        strcmp(format, "sarif") != 0) {
        rc = fl_cli_usage_error("lint", "invalid format \"%s\" (use human, json or sarif)",
                                format);
        goto cleanup;
    }
    if (optind >= argc) {
        rc = fl_cli_usage_error("lint", "no PATH given");
        goto cleanup;
    }
    /* Precedence: defaults, then the config file, then the command line. */
    if (fl_conf_defaults(s_conf_table, &conf, &err) != 0) {
        rc = fl_cli_report("lint", &err, FL_EXIT_FAILED);
        goto cleanup;
    }
    have_conf = 1;
    if (config && fl_conf_load_file(s_conf_table, &conf, config, &err) != 0) {
        rc = fl_cli_report("lint", &err, FL_EXIT_USAGE);
        goto cleanup;
    }
    opts.pg_version = (int)conf.pg_version * 10000;
    if (s_apply_list(&opts, &conf.rules, NULL, &err) != 0 ||
        s_apply_list(&opts, &conf.exclude_rules, "off", &err) != 0 ||
        s_apply_list(&opts, &conf.errors, "error", &err) != 0 ||
        s_apply_list(&opts, &conf.warnings, "warning", &err) != 0) {
        fl_error_prefix(&err, "%s: ", config ? config : "configuration");
        rc = fl_cli_report("lint", &err, FL_EXIT_USAGE);
        goto cleanup;
    }
    if (pgv && s_pg_version(&opts.pg_version, pgv, &err) != 0) {
        rc = fl_cli_bad_option("lint", "--pg-version", &err);
        goto cleanup;
    }
    for (i = 0; i < nrule; i++) {
        char *id = fl_strdup(rule_args[i]), *eq = strchr(id, '=');
        int r;
        if (eq)
            *eq++ = '\0';
        r = fl_lint_options_set(&opts, id, eq, &err);
        free(id);
        if (r != 0) {
            rc = fl_cli_bad_option("lint", "--rule", &err);
            goto cleanup;
        }
    }
    for (i = 0; i < nexcl; i++) {
        if (fl_lint_options_set(&opts, excl_args[i], "off", &err) != 0) {
            rc = fl_cli_bad_option("lint", "--exclude-rule", &err);
            goto cleanup;
        }
    }

    for (i = (size_t)optind; i < (size_t)argc; i++) {
        struct stat sb;
        int r;
        if (stat(argv[i], &sb) != 0) {
            FL_ERR(&err, FL_EIO, "could not read \"%s\": %m", argv[i]);
            rc = fl_cli_report("lint", &err, FL_EXIT_USAGE);
            goto cleanup;
        }
        r = S_ISDIR(sb.st_mode) ? s_lint_dir(&found, argv[i], &opts, &err)
            : fl_bundle_is_bundle_file(argv[i])
                ? s_lint_bundle(&found, argv[i], &opts, &err)
                : s_lint_file(&found, argv[i], &opts, &err);
        if (r != 0) {
            rc = fl_cli_report("lint", &err, FL_EXIT_FAILED);
            goto cleanup;
        }
    }
    if (strcmp(format, "json") == 0)
        s_print_json(&found);
    else if (strcmp(format, "sarif") == 0)
        s_print_sarif(&found, &opts);
    else
        s_print_human(&found);
    rc = fl_finding_list_count(&found, FL_LINT_ERROR) ? FL_EXIT_FAILED : FL_EXIT_OK;

cleanup:
    fflush(stdout);
    fl_finding_list_release(&found);
    if (have_conf)
        fl_conf_release(s_conf_table, &conf);
    fl_error_clear(&err);
    free(rule_args);
    free(excl_args);
    /*
     * No pg_query_exit(): libpg_query 15-4.0.0 crashes in it when this
     * thread parsed nothing (an empty directory), and its per-thread memory
     * context is freed with the process anyway (tests/lsan.supp).
     */
    return rc;
}
