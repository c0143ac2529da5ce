/*
 * cmd_lint.c - `flotilla lint PATH...`: migration safety analysis.
 *
 * Each PATH is a directory tree, a file, a bundle, or "-" for standard
 * input.  Trees and files are read by proto/layout.h, which knows the
 * layouts of flotilla, diesel, golang-migrate, pop, sqlx, dbmate and
 * Flyway: every migration is linted as its tool runs it (up and down,
 * each with the tool's transaction rule), any other .sql file as plain
 * SQL.  A file its tool would refuse is reported (invalid-migration) and
 * the others are still linted.
 *
 * The files are linted in parallel, one job per migration or file, on
 * --jobs threads; findings are printed in the order the jobs were listed,
 * so output does not depend on scheduling.  libpg_query keeps a parser
 * memory context per thread and frees it itself when the thread exits (a
 * thread-specific key's destructor), so no thread calls pg_query_exit():
 * in a worker that would free the context twice, and in a thread that
 * never parsed libpg_query 15-4.0.0 crashes in it.
 *
 * Exit status: 0 nothing fails the run, 1 a finding at error level (or
 * any with --fail-on-warning), 2 lint could not do its job (bad usage, a
 * PATH that cannot be read, nothing to lint without --allow-empty).
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/lintcheck.h"
#include "cli/cli.h"
#include "cli/commands.h"
#include "cli/dbcmd.h"
#include "common/thread.h"
#include "cli/lintout.h"
#include "common/alloc.h"
#include "common/config.h"
#include "common/parse.h"
#include "lint/lint.h"
#include "proto/bundle.h"
#include "proto/layout.h"
#include "proto/migration.h"

#define S_MAX_STDIN ((size_t)64 * 1024 * 1024)
#define S_MAX_JOBS 64

typedef struct {
    char *pg_version;
    fl_conf_strlist_t rules;
    fl_conf_strlist_t exclude_rules;
    fl_conf_strlist_t errors;
    fl_conf_strlist_t warnings;
    int assume_in_transaction;
    char *layout;
    int fail_on_warning;
    int allow_empty;
    char *enforce_from;
} s_conf_t;

static const fl_conf_option s_conf_table[] = {
    {"pg_version", FL_CONF_STRING, offsetof(s_conf_t, pg_version), "15", 0, 0,
     0, 0, "target PostgreSQL version, 10 to 18", NULL, 0},
    {"rules", FL_CONF_STRLIST, offsetof(s_conf_t, rules), NULL, 0, 0, 0, 0,
     "rules to enable (opt-in rules included)", NULL, 0},
    {"exclude_rules", FL_CONF_STRLIST, offsetof(s_conf_t, exclude_rules), NULL,
     0, 0, 0, 0, "rules to turn off", NULL, 0},
    {"errors", FL_CONF_STRLIST, offsetof(s_conf_t, errors), NULL, 0, 0, 0, 0,
     "rules reported as errors", NULL, 0},
    {"warnings", FL_CONF_STRLIST, offsetof(s_conf_t, warnings), NULL, 0, 0, 0, 0,
     "rules reported as warnings", NULL, 0},
    {"assume_in_transaction", FL_CONF_BOOL,
     offsetof(s_conf_t, assume_in_transaction), "false", 0, 0, 0, 0,
     "plain SQL files run inside one transaction", NULL, 0},
    {"layout", FL_CONF_STRING, offsetof(s_conf_t, layout), "auto", 0, 0, 0, 0,
     "the tool for names several tools share (sqlx, golang-migrate, sql)",
     NULL, 0},
    {"fail_on_warning", FL_CONF_BOOL, offsetof(s_conf_t, fail_on_warning),
     "false", 0, 0, 0, 0, "exit 1 on warnings too", NULL, 0},
    {"allow_empty", FL_CONF_BOOL, offsetof(s_conf_t, allow_empty), "false", 0,
     0, 0, 0, "exit 0 when there is no SQL to lint", NULL, 0},
    {"enforce_from", FL_CONF_STRING, offsetof(s_conf_t, enforce_from), NULL, 0,
     0, 0, 0, "lint errors of migrations before this version are warnings "
     "(lint.enforce_from; apply, plan and bundle build read it too)", NULL,
     0},
    {NULL, 0, 0, NULL, 0, 0, 0, 0, NULL, NULL, 0},
};

/* ---- jobs ---- */

typedef enum {
    S_JOB_SQL,       /* plain SQL: text, file */
    S_JOB_FLOTILLA,  /* a flotilla migration: mig */
    S_JOB_MIGRATION, /* another tool's migration: lm */
    S_JOB_PROBLEM    /* nothing to lint, only problem to report */
} s_job_kind;

typedef struct {
    s_job_kind kind;
    const char *file;              /* name in findings (lent) */
    const char *text;              /* S_JOB_SQL (lent) */
    int tx;                        /* S_JOB_SQL: FL_LINT_TX_* */
    const fl_migration_t *mig;     /* S_JOB_FLOTILLA (lent) */
    fl_lint_migration_t lm;        /* S_JOB_MIGRATION (strings lent) */
    const char *layout;            /* tool name for help texts */
    int tool;                      /* fl_layout_tool of version */
    const char *version;           /* as its tool orders it, or NULL (lent) */
    const char *problem;           /* reported before the findings */
    const char *problem_file;
    int problem_line;
    fl_finding_list_t found;       /* the job's result */
    char *error;                   /* an internal failure, or NULL */
} s_job_t;

typedef struct {
    s_job_t *items;
    size_t count;
    const fl_lint_options_t *opts;
    atomic_size_t next;
} s_jobs_t;

static s_job_t *
s_job_add(s_jobs_t *jobs, s_job_kind kind, const char *file)
{
    s_job_t *j;

    jobs->items = fl_reallocarray(jobs->items, jobs->count + 1, sizeof(*j));
    j = &jobs->items[jobs->count++];
    memset(j, 0, sizeof(*j));
    j->kind = kind;
    j->file = file;
    return j;
}

static void
s_job_run(s_job_t *j, const fl_lint_options_t *base)
{
    fl_lint_options_t o = *base;
    fl_error_t err = FL_ERROR_INIT;
    int rc = 0;

    if (j->problem)
        fl_finding_list_add(&j->found, "invalid-migration", j->problem_file,
                            j->problem_line, j->problem, base);
    o.layout = j->layout;
    o.lint_down = 1;
    switch (j->kind) {
    case S_JOB_SQL:
        o.assume_in_transaction = j->tx;
        rc = fl_lint_sql(&j->found, j->text, j->file, 0, &o, &err);
        break;
    case S_JOB_FLOTILLA:
        rc = fl_lintcheck_migration(&j->found, j->mig, j->file, &o, &err);
        break;
    case S_JOB_MIGRATION:
        rc = fl_lint_migration(&j->found, &j->lm, &o, &err);
        break;
    case S_JOB_PROBLEM:
        break;
    }
    if (rc != 0)
        j->error = fl_asprintf("%s: %s", j->file, err.message);
    fl_error_clear(&err);
}

/* A worker: jobs in list order from a shared counter until none is left. */
static void *
s_worker(void *arg)
{
    s_jobs_t *jobs = arg;
    size_t i;

    while ((i = atomic_fetch_add(&jobs->next, 1)) < jobs->count)
        s_job_run(&jobs->items[i], jobs->opts);
    return NULL; /* libpg_query frees this thread's context now */
}

/* Runs every job on up to nthreads threads (this one when one suffices). */
static int
s_run_jobs(s_jobs_t *jobs, int nthreads)
{
    pthread_t th[S_MAX_JOBS];
    int n = 0, k;

    atomic_init(&jobs->next, 0);
    if ((size_t)nthreads > jobs->count)
        nthreads = (int)jobs->count;
    if (nthreads <= 1) {
        /* No pg_query_exit() here: the main thread keeps its context to
         * the end of the process (tests/lsan.supp). */
        for (size_t i = 0; i < jobs->count; i++)
            s_job_run(&jobs->items[i], jobs->opts);
        return 0;
    }
    for (k = 0; k < nthreads; k++) {
        if (fl_thread_create_deep(&th[n], s_worker, jobs) != 0)
            break;
        n++;
    }
    if (n == 0) {
        s_worker(jobs); /* could start no thread: do it here */
        return 0;
    }
    for (k = 0; k < n; k++)
        (void)pthread_join(th[k], NULL); /* cannot fail: joinable, ours */
    return 0;
}

/* ---- from layouts to jobs ---- */

static int
s_tx(fl_layout_tx tx)
{
    switch (tx) {
    case FL_LAYOUT_TX_WRAPPED: return FL_LINT_TX_WRAPPED;
    case FL_LAYOUT_TX_IMPLICIT: return FL_LINT_TX_IMPLICIT;
    case FL_LAYOUT_TX_AUTO: return FL_LINT_TX_AUTO;
    default: return FL_LINT_TX_NONE;
    }
}

static void
s_migration_jobs(s_jobs_t *jobs, const fl_layout_migration_t *m,
                 int assume_tx)
{
    const char *file = m->up.path ? m->up.path : m->down.path;
    s_job_t *j;

    if (!file)
        file = m->problem_path ? m->problem_path : "";
    if (m->tool == FL_LAYOUT_FLOTILLA && m->flotilla) {
        j = s_job_add(jobs, S_JOB_FLOTILLA, file);
        j->mig = m->flotilla;
        j->layout = "flotilla";
        j->tool = FL_LAYOUT_FLOTILLA;
        j->version = m->version;
    } else if (m->tool == FL_LAYOUT_SQL && m->up.text) {
        j = s_job_add(jobs, S_JOB_SQL, file);
        j->text = m->up.text;
        j->tx = assume_tx ? FL_LINT_TX_WRAPPED : FL_LINT_TX_NONE;
    } else if (m->tool != FL_LAYOUT_SQL && m->tool != FL_LAYOUT_FLOTILLA &&
               (m->up.text || m->down.text)) {
        j = s_job_add(jobs, S_JOB_MIGRATION, file);
        j->layout = fl_layout_tool_name(m->tool);
        j->tool = (int)m->tool;
        j->version = m->version;
        j->lm.file = file;
        j->lm.up = m->up.text;
        j->lm.up_line = m->up.line;
        j->lm.up_tx = s_tx(m->up.tx);
        j->lm.down = m->down.text;
        j->lm.down_line = m->down.line;
        j->lm.down_tx = s_tx(m->down.tx);
        j->lm.down_file = m->down.path;
    } else {
        j = s_job_add(jobs, S_JOB_PROBLEM, file);
    }
    if (m->problem) {
        j->problem = m->problem;
        j->problem_file = m->problem_path ? m->problem_path : file;
        j->problem_line = m->problem_line;
    }
}

/* ---- inputs ---- */

typedef struct {
    fl_layout_t *layouts;
    size_t nlayouts;
    fl_bundle_t **bundles;
    size_t nbundles;
    char **names;       /* "BUNDLE:FILE" names of bundle migrations */
    size_t nnames;
    char *stdin_text;
} s_inputs_t;

static void
s_inputs_release(s_inputs_t *in)
{
    size_t i;

    for (i = 0; i < in->nlayouts; i++)
        fl_layout_release(&in->layouts[i]);
    free(in->layouts);
    for (i = 0; i < in->nbundles; i++)
        fl_bundle_destroy(&in->bundles[i]);
    free(in->bundles);
    for (i = 0; i < in->nnames; i++)
        free(in->names[i]);
    free(in->names);
    free(in->stdin_text);
}

static int
s_read_stdin(char **out, fl_error_t *err)
{
    size_t cap = 65536, len = 0, n;
    char *buf = fl_malloc(cap);

    while ((n = fread(buf + len, 1, cap - len - 1, stdin)) > 0) {
        len += n;
        if (len + 1 == cap) {
            if (cap > S_MAX_STDIN) {
                free(buf);
                return FL_ERR(err, FL_EINVAL, "standard input is too large to "
                                              "lint (more than %zu bytes)",
                              S_MAX_STDIN);
            }
            cap *= 2;
            buf = fl_realloc(buf, cap);
        }
    }
    if (ferror(stdin)) {
        free(buf);
        return FL_ERR(err, FL_EIO, "could not read standard input: %m");
    }
    buf[len] = '\0';
    if (memchr(buf, '\0', len)) {
        free(buf);
        return FL_ERR(err, FL_EINVAL, "standard input contains a NUL byte");
    }
    *out = buf;
    return 0;
}

/* A bundle: each migration linted as the pipeline runs it.  Lint reads it
 * without verifying its signature (nothing is executed). */
static int
s_bundle_jobs(s_jobs_t *jobs, s_inputs_t *in, const char *path,
              fl_error_t *err)
{
    unsigned char *data = NULL;
    size_t len = 0, i;
    fl_bundle_t *b = NULL;
    const fl_migration_list_t *migs;
    int rc;

    if ((rc = fl_bundle_read_file(&data, &len, path, err)) != 0)
        return rc;
    rc = fl_bundle_decode_unverified(&b, data, len, err);
    free(data);
    if (rc != 0)
        return rc;
    in->bundles = fl_reallocarray(in->bundles, in->nbundles + 1, sizeof(b));
    in->bundles[in->nbundles++] = b;
    for (int rep = 0; rep < 2; rep++) {
        /* The versioned migrations, then the repeatable ones. */
        migs = rep ? fl_bundle_repeatables(b) : fl_bundle_migrations(b);
        for (i = 0; i < migs->count; i++) {
            s_job_t *j;
            in->names = fl_reallocarray(in->names, in->nnames + 1,
                                        sizeof(char *));
            in->names[in->nnames] = fl_asprintf("%s:%s", path,
                                                migs->items[i].file);
            j = s_job_add(jobs, S_JOB_FLOTILLA, in->names[in->nnames++]);
            j->mig = &migs->items[i];
            j->layout = "flotilla";
            j->tool = FL_LAYOUT_FLOTILLA;
            j->version = rep ? NULL : migs->items[i].version.text;
        }
    }
    return 0;
}

/* ---- options ---- */

/* Reports err (then cleared; json: on stdout too) and returns code. */
static int
s_fail(fl_error_t *err, int code, int json)
{
    int rc = fl_dbcmd_report("lint", err, code, json);
    fl_error_clear(err);
    return rc;
}

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

static void
s_help(void)
{
    size_t n, i;
    const fl_lint_rule_t *r = fl_lint_rules(&n);

    printf("Usage: flotilla lint [OPTION]... PATH...\n\n"
           "Checks SQL for statements that would lock, rewrite or break a live\n"
           "PostgreSQL database.  PATH is a directory (walked recursively), a\n"
           "file, a bundle, or - for standard input.  Migrations of flotilla,\n"
           "diesel, golang-migrate, pop, sqlx, dbmate and Flyway are recognised\n"
           "by their names and folders and linted as their tool runs them, up\n"
           "and down; any other .sql file is plain SQL.\n\n"
           "  --format FORMAT          human (default), json or sarif\n"
           "  --json                   the same as --format json\n"
           "  --pg-version V           target PostgreSQL version, 10 to 18 (default 15)\n"
           "  --rule ID[=SEVERITY]     enable a rule, or set it to error, warning or off\n"
           "  --exclude-rule ID        turn a rule off\n"
           "  --assume-in-transaction  plain SQL files (and -) run in one transaction\n"
           "  --layout TOOL            the tool for names several tools share:\n"
           "                           sqlx, golang-migrate, or sql (all plain SQL)\n"
           "  --fail-on-warning        exit 1 on warnings too\n"
           "  --allow-empty            exit 0 when there is no SQL to lint\n"
           "  --stdin-name NAME        the file name findings in - carry (default <stdin>)\n"
           "  --jobs N                 lint on N threads (default: the CPUs)\n"
           "  --lint-enforce-from V    lint errors of migrations before version V\n"
           "                           (as the ledger writes it, or as the tool\n"
           "                           names it: 2019-02-26-002946) are\n"
           "                           reported as warnings, counted, and fail\n"
           "                           nothing: the gate starts where you adopt it\n"
           "  --config FILE            YAML with pg_version, rules, exclude_rules,\n"
           "                           errors, warnings, assume_in_transaction, layout,\n"
           "                           fail_on_warning, allow_empty, enforce_from\n"
           "                           (command line wins)\n"
           "  --help                   print this help\n\n"
           "Exit status: 0 nothing fails, 1 an error-level finding (or a warning\n"
           "with --fail-on-warning), 2 lint could not run: bad usage, a PATH that\n"
           "cannot be read, or no SQL found (without --allow-empty).\n\n"
           "Rules (default severity):\n");
    for (i = 0; i < n; i++)
        printf("  %-45s %s%s\n", r[i].id, fl_lint_severity_name(r[i].severity),
               r[i].opt_in ? " (opt-in)" : "");
}

typedef struct {
    const char *format, *config, *pgv, *layout, *stdin_name, *gate;
    char **rule_args, **excl_args;
    size_t nrule, nexcl;
    int assume_tx, fail_on_warning, allow_empty, jobs;
} s_args_t;

/* --format json: a failure is said on stdout too. */
#define S_JSON(a) (strcmp((a)->format, "json") == 0)

/* Parses argv into a; FL_EXIT_OK, a usage error, or -1 after --help. */
static int
s_parse_args(s_args_t *a, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"format", required_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'J'},
        {"pg-version", required_argument, NULL, 'p'},
        {"rule", required_argument, NULL, 'r'},
        {"exclude-rule", required_argument, NULL, 'x'},
        {"config", required_argument, NULL, 'c'},
        {"assume-in-transaction", no_argument, NULL, 't'},
        {"layout", required_argument, NULL, 'l'},
        {"fail-on-warning", no_argument, NULL, 'w'},
        {"allow-empty", no_argument, NULL, 'e'},
        {"stdin-name", required_argument, NULL, 's'},
        {"jobs", required_argument, NULL, 'j'},
        {"lint-enforce-from", required_argument, NULL, 'g'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c, json = 0, format = 0;
    int64_t v;
    fl_error_t err = FL_ERROR_INIT;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "f:p:r:x:c:tl:wes:j:g:h", longopts,
                            NULL)) != -1) {
        switch (c) {
        case 'f': a->format = optarg; format = 1; break;
        case 'J': json = 1; break;
        case 'p': a->pgv = optarg; break;
        case 'r':
            a->rule_args = fl_reallocarray(a->rule_args, a->nrule + 1, sizeof(char *));
            a->rule_args[a->nrule++] = optarg;
            break;
        case 'x':
            a->excl_args = fl_reallocarray(a->excl_args, a->nexcl + 1, sizeof(char *));
            a->excl_args[a->nexcl++] = optarg;
            break;
        case 'c': a->config = optarg; break;
        case 't': a->assume_tx = 1; break;
        case 'l': a->layout = optarg; break;
        case 'w': a->fail_on_warning = 1; break;
        case 'e': a->allow_empty = 1; break;
        case 's': a->stdin_name = optarg; break;
        case 'g':
            if (fl_bundle_check_gate(optarg, FL_EINVAL, &err) != 0)
                return fl_cli_bad_option("lint", "--lint-enforce-from", &err);
            a->gate = optarg;
            break;
        case 'j':
            if (fl_parse_int(&v, optarg, 1, S_MAX_JOBS, &err) != 0)
                return fl_cli_bad_option("lint", "--jobs", &err);
            a->jobs = (int)v;
            break;
        case 'h':
            s_help();
            return -1;
        default:
            return fl_cli_option_error("lint", longopts, argv);
        }
    }
    if (json && format && strcmp(a->format, "json") != 0)
        return fl_cli_usage_error("lint", "--json is --format json: it "
                                          "cannot go with --format %.16s",
                                  a->format);
    if (json)
        a->format = "json";
    if (strcmp(a->format, "human") != 0 && strcmp(a->format, "json") != 0 &&
        strcmp(a->format, "sarif") != 0)
        return fl_cli_usage_error("lint", "invalid format \"%s\" (use human, "
                                          "json or sarif)", a->format);
    if (optind >= argc)
        return fl_cli_usage_error("lint", "no PATH given (use - for standard "
                                          "input)");
    return FL_EXIT_OK;
}

/*
 * The lint options from defaults, the config file, then the command line;
 * sets *prefer.  Returns FL_EXIT_OK or the exit code of the error it
 * reported.
 */
static int
s_options(fl_lint_options_t *opts, fl_layout_tool *prefer, s_conf_t *conf,
          s_args_t *a)
{
    fl_error_t err = FL_ERROR_INIT;
    const char *layout;
    size_t i;

    if (a->config && fl_conf_load_file(s_conf_table, conf, a->config, &err) != 0)
        return s_fail(&err, FL_EXIT_USAGE, S_JSON(a));
    if (fl_lint_parse_pg_version(&opts->pg_version, conf->pg_version, &err) != 0 ||
        s_apply_list(opts, &conf->rules, NULL, &err) != 0 ||
        s_apply_list(opts, &conf->exclude_rules, "off", &err) != 0 ||
        s_apply_list(opts, &conf->errors, "error", &err) != 0 ||
        s_apply_list(opts, &conf->warnings, "warning", &err) != 0 ||
        (conf->enforce_from &&
         fl_bundle_check_gate(conf->enforce_from, FL_EINVAL, &err) != 0)) {
        fl_error_prefix(&err, "%s: ", a->config ? a->config : "configuration");
        return s_fail(&err, FL_EXIT_USAGE, S_JSON(a));
    }
    a->assume_tx |= conf->assume_in_transaction;
    a->fail_on_warning |= conf->fail_on_warning;
    a->allow_empty |= conf->allow_empty;
    layout = a->layout ? a->layout : conf->layout;
    if (fl_layout_tool_from_name(prefer, layout, &err) != 0)
        return fl_cli_bad_option("lint", a->layout ? "--layout" : "layout", &err);
    if (a->pgv && fl_lint_parse_pg_version(&opts->pg_version, a->pgv, &err) != 0)
        return fl_cli_bad_option("lint", "--pg-version", &err);
    for (i = 0; i < a->nrule; i++) {
        char *id = fl_strdup(a->rule_args[i]), *eq = strchr(id, '=');
        int r;
        if (eq)
            *eq++ = '\0';
        r = fl_lint_options_set(opts, id, eq, &err);
        free(id);
        if (r != 0)
            return fl_cli_bad_option("lint", "--rule", &err);
    }
    for (i = 0; i < a->nexcl; i++)
        if (fl_lint_options_set(opts, a->excl_args[i], "off", &err) != 0)
            return fl_cli_bad_option("lint", "--exclude-rule", &err);
    return FL_EXIT_OK;
}

/* Lists the jobs of every PATH; FL_EXIT_OK or the exit code reported. */
static int
s_collect(s_jobs_t *jobs, s_inputs_t *in, int argc, char **argv,
          const s_args_t *a, fl_layout_tool prefer, size_t *skipped)
{
    fl_layout_options_t lo = FL_LAYOUT_OPTIONS_INIT;
    fl_error_t err = FL_ERROR_INIT;
    size_t i, s, k;

    lo.prefer = prefer;
    in->layouts = fl_calloc((size_t)argc, sizeof(*in->layouts));
    for (i = (size_t)optind; i < (size_t)argc; i++) {
        const char *path = argv[i];
        fl_layout_t *l;

        if (strcmp(path, "-") == 0) {
            s_job_t *j;
            if (in->stdin_text)
                return fl_cli_usage_error("lint", "- given twice");
            if (s_read_stdin(&in->stdin_text, &err) != 0)
                return s_fail(&err, FL_EXIT_USAGE, S_JSON(a));
            j = s_job_add(jobs, S_JOB_SQL, a->stdin_name ? a->stdin_name : "<stdin>");
            j->text = in->stdin_text;
            j->tx = a->assume_tx ? FL_LINT_TX_WRAPPED : FL_LINT_TX_NONE;
            continue;
        }
        if (fl_bundle_is_bundle_file(path)) {
            if (s_bundle_jobs(jobs, in, path, &err) != 0)
                return s_fail(&err, FL_EXIT_USAGE, S_JSON(a));
            continue;
        }
        l = &in->layouts[in->nlayouts];
        if (fl_layout_scan(l, path, &lo, &err) != 0) {
            fl_layout_release(l);
            if (err.hint == NULL)
                fl_error_set_hint(&err, "Name migration files or "
                                        "directories, or signed bundles, "
                                        "that exist (relative paths are "
                                        "read from the current directory).");
            return s_fail(&err, FL_EXIT_USAGE, S_JSON(a));
        }
        in->nlayouts++;
        for (s = 0; s < l->count; s++)
            for (k = 0; k < l->sources[s].count; k++)
                s_migration_jobs(jobs, &l->sources[s].items[k], a->assume_tx);
        *skipped += l->nskipped;
    }
    return FL_EXIT_OK;
}

/* Moves every job's findings into out, in job order; reports a failure. */
static int
s_gather(fl_finding_list_t *out, s_jobs_t *jobs)
{
    size_t i, n = 0;
    int rc = FL_EXIT_OK;

    for (i = 0; i < jobs->count; i++)
        n += jobs->items[i].found.count;
    if (n)
        out->items = fl_reallocarray(NULL, n, sizeof(*out->items));
    for (i = 0; i < jobs->count; i++) {
        s_job_t *j = &jobs->items[i];
        if (j->found.count && out->items)
            memcpy(out->items + out->count, j->found.items,
                   j->found.count * sizeof(*out->items));
        out->count += j->found.count;
        free(j->found.items);
        j->found.items = NULL;
        j->found.count = 0;
        if (j->error && rc == FL_EXIT_OK) {
            fprintf(stderr, "flotilla lint: error: could not lint %s\n", j->error);
            rc = FL_EXIT_USAGE;
        }
        free(j->error);
    }
    return rc;
}

/* Files the jobs read: a migration of two files counts two. */
static size_t
s_count_files(const s_jobs_t *jobs)
{
    size_t i, n = 0;

    for (i = 0; i < jobs->count; i++) {
        const s_job_t *j = &jobs->items[i];
        n++;
        if (j->kind == S_JOB_MIGRATION && j->lm.up && j->lm.down &&
            j->lm.down_file && strcmp(j->lm.down_file, j->lm.file) != 0)
            n++;
    }
    return n;
}

int
fl_cmd_lint(int argc, char **argv)
{
    s_args_t a;
    s_conf_t conf;
    s_inputs_t in;
    s_jobs_t jobs;
    fl_lint_options_t opts;
    fl_finding_list_t found = {NULL, 0};
    fl_lintout_summary_t sum = {0, 0, NULL, 0};
    fl_version_t gate = FL_VERSION_INIT;
    fl_layout_tool prefer = FL_LAYOUT_AUTO;
    fl_error_t err = FL_ERROR_INIT;
    int rc, have_conf = 0, nthreads;
    long cpus;
    static char outbuf[1 << 16];

    memset(&a, 0, sizeof(a));
    memset(&conf, 0, sizeof(conf));
    memset(&in, 0, sizeof(in));
    memset(&jobs, 0, sizeof(jobs));
    a.format = "human";
    fl_lint_options_init(&opts);
    rc = s_parse_args(&a, argc, argv);
    if (rc != FL_EXIT_OK) {
        rc = rc < 0 ? FL_EXIT_OK : rc;
        goto cleanup;
    }
    /* Precedence: defaults, then the config file, then the command line. */
    if (fl_conf_defaults(s_conf_table, &conf, &err) != 0) {
        rc = s_fail(&err, FL_EXIT_USAGE, S_JSON(&a));
        goto cleanup;
    }
    have_conf = 1;
    if ((rc = s_options(&opts, &prefer, &conf, &a)) != FL_EXIT_OK)
        goto cleanup;
    if ((rc = s_collect(&jobs, &in, argc, argv, &a, prefer, &sum.skipped)) !=
        FL_EXIT_OK)
        goto cleanup;
    if (jobs.count == 0 && !a.allow_empty) {
        FL_ERR(&err, FL_EINVAL, "no SQL found to lint%s",
               sum.skipped ? " (only files of other databases or fizz)" : "");
        fl_error_set_hint(&err, "Check the PATH; lint reads .sql files and "
                                "the migration layouts listed in --help.  "
                                "Pass --allow-empty if nothing to lint is "
                                "expected.");
        rc = s_fail(&err, FL_EXIT_USAGE, S_JSON(&a));
        goto cleanup;
    }
    sum.files = s_count_files(&jobs);
    jobs.opts = &opts;
    cpus = sysconf(_SC_NPROCESSORS_ONLN);
    nthreads = a.jobs ? a.jobs : cpus > 0 ? (int)(cpus < S_MAX_JOBS ? cpus : S_MAX_JOBS) : 1;
    (void)s_run_jobs(&jobs, nthreads); /* cannot fail: falls back to this thread */
    sum.gate = a.gate ? a.gate : conf.enforce_from;
    /* Checked when read: a version, maybe as the tool names its files. */
    if (sum.gate)
        FL_IGNORE(fl_version_parse_tool(&gate, sum.gate, NULL));
    for (size_t i = 0; sum.gate && i < jobs.count; i++) {
        s_job_t *j = &jobs.items[i];
        fl_version_t v = FL_VERSION_INIT;
        /* History before the gate: its errors are warnings.  Compared as
         * apply and plan compare them (proto/version.h's order). */
        if (j->version && fl_version_parse_str(&v, j->version, NULL) == 0 &&
            fl_version_cmp(&v, &gate) < 0)
            sum.not_enforced += fl_lintcheck_demote(&j->found, 0);
    }
    rc = s_gather(&found, &jobs);
    setvbuf(stdout, outbuf, _IOFBF, sizeof(outbuf));
    if (strcmp(a.format, "json") == 0)
        fl_lintout_json(stdout, &found, &sum);
    else if (strcmp(a.format, "sarif") == 0)
        fl_lintout_sarif(stdout, &found, &opts);
    else
        fl_lintout_human(stdout, &found, &sum);
    if (rc == FL_EXIT_OK &&
        (fl_finding_list_count(&found, FL_LINT_ERROR) ||
         (a.fail_on_warning && fl_finding_list_count(&found, FL_LINT_WARNING))))
        rc = FL_EXIT_FAILED;

cleanup:
    fflush(stdout);
    setvbuf(stdout, NULL, _IOLBF, 0);
    fl_finding_list_release(&found);
    for (size_t i = 0; i < jobs.count; i++)
        fl_finding_list_release(&jobs.items[i].found);
    free(jobs.items);
    s_inputs_release(&in);
    if (have_conf)
        fl_conf_release(s_conf_table, &conf);
    fl_error_clear(&err);
    free(a.rule_args);
    free(a.excl_args);
    /* No pg_query_exit(): see the top. */
    return rc;
}

int
fl_lint_conf_enforce_from(char *out, size_t n, const char *path,
                          fl_error_t *err)
{
    s_conf_t conf;
    int rc;

    memset(&conf, 0, sizeof(conf));
    out[0] = '\0';
    if ((rc = fl_conf_defaults(s_conf_table, &conf, err)) != 0)
        return rc;
    rc = fl_conf_load_file(s_conf_table, &conf, path, err);
    if (rc == 0 && conf.enforce_from) {
        rc = fl_bundle_check_gate(conf.enforce_from, FL_EINVAL, err);
        if (rc == 0)
            snprintf(out, n, "%s", conf.enforce_from);
        else
            fl_error_prefix(err, "%s: enforce_from: ", path);
    }
    fl_conf_release(s_conf_table, &conf);
    return rc;
}
