/*
 * dbcmd.c - shared plumbing of the single-database commands (see dbcmd.h).
 */
#include "cli/dbcmd.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/json.h"

#include "cli/cli.h"
#include "cli/lintout.h"
#include "common/log.h"
#include "common/parse.h"
#include "common/secret.h"
#include "common/str.h"
#include "proto/migration.h"

#define S_CONNECTION_HELP \
    "Connection:\n" \
    "  --db DSN               libpq connection string or URI (default: the\n" \
    "                         PGHOST, PGPORT, PGUSER, PGDATABASE" \
    " variables);\n" \
    "                         keep passwords out of it: use PGPASSFILE or\n" \
    "                         --db-file\n" \
    "  --db-file PATH         read DSN from a file of mode 0600\n"

#define S_SCHEMA_HELP \
    "  --schema NAME          a schema-per-tenant target: this schema of" \
    " the\n" \
    "                         database, with its own ledger rows, backups\n" \
    "                         and lock (default: the whole database)\n"

/* Every database command's (before, only flotilla --help said them:
 * found by an audit). */
#define S_EXIT_HELP \
    "Exit codes: 0 success, 1 failed, 2 usage, 3 refused by validation\n" \
    "(nothing changed), 4 could not connect, 5 lock not acquired, 6\n" \
    "interrupted (SIGINT or SIGTERM).\n"

#define S_OUTPUT_HELP \
    "Output:\n" \
    "  --json                 print the result as JSON on stdout\n" \
    "  --quiet                print only warnings and errors on stderr\n" \
    S_EXIT_HELP

const char fl_dbcmd_read_help[] = S_CONNECTION_HELP S_SCHEMA_HELP S_OUTPUT_HELP;

const char fl_dbcmd_server_help[] = S_CONNECTION_HELP S_OUTPUT_HELP;

#define S_SOURCE_HELP \
    "Source:\n" \
    "  --dir DIR              the migrations directory (instead of SOURCE):\n" \
    "                         flotilla's, or diesel's, golang-migrate's,\n" \
    "                         pop's, sqlx's, dbmate's or Flyway's\n" \
    "                         (docs/adopting.md)\n" \
    "  --layout TOOL          read it as TOOL's: flotilla, diesel,\n" \
    "                         golang-migrate, pop, sqlx, dbmate, flyway\n" \
    "                         (default: recognised from its files)\n"

const char fl_dbcmd_status_help[] =
    S_CONNECTION_HELP S_SCHEMA_HELP S_SOURCE_HELP
    "  --trust PATH           trusted signer keys (.pub file or directory);\n"
    "                         required when SOURCE is a bundle\n"
    S_OUTPUT_HELP;

const char fl_dbcmd_help[] =
    S_CONNECTION_HELP
    S_SCHEMA_HELP
    S_SOURCE_HELP
    "Logging:\n"
    "  --log-file PATH        JSON-lines log of every step (default\n"
    "                         migration-execution.log; \"\" for none)\n"
    "  --json                 print the result as JSON on stdout\n"
    "  --quiet                print only warnings and errors on stderr\n"
    S_EXIT_HELP;

const char fl_dbcmd_pipeline_help[] =
    "Pipeline:\n"
    "  --trust PATH           trusted signer keys (.pub file or directory);\n"
    "                         required when SOURCE is a bundle\n"
    "  --require-signed       refuse a migrations directory\n"
    "  --lock-wait DURATION   how long to wait for another flotilla run on\n"
    "                         the same database (default 30s)\n"
    "  --lock-timeout DURATION  lock_timeout per statement unless the\n"
    "                         migration sets one (default 2s)\n"
    "  --statement-timeout DURATION  statement_timeout unless the migration\n"
    "                         sets one (default none)\n"
    "  --lock-retries N       retries after a lock timeout (default 5)\n"
    "  --allow-out-of-order   apply a pending version below an applied one\n"
    "  --allow-lint-errors    report lint errors as warnings\n"
    "  --lint-enforce-from VERSION  lint.enforce_from: lint errors of\n"
    "                         migrations before VERSION are reported as\n"
    "                         warnings and refuse nothing; from VERSION on\n"
    "                         they refuse (a bundle is held to the gate it\n"
    "                         was signed with); VERSION as the ledger\n"
    "                         writes it or as the tool names it\n"
    "                         (diesel's 2019-02-26-002946)\n"
    "  --lint-config FILE     read enforce_from from this lint configuration\n"
    "                         (the YAML of flotilla lint --config)\n"
    "  --backup-dump-above SIZE  back up tables larger than SIZE to files\n"
    "                         instead of tables in flotilla_backup (default\n"
    "                         1GiB; 0 never)\n"
    "  --backup-dir DIR       where those files go (default flotilla-backups)\n"
    "  --redact-samples       a check that refuses shows the rows' keys, not\n"
    "                         their values\n"
    "\n"
    "Bundles (docs/bundles.md):\n"
    "  --environment NAME     this database's environment; a bundle runs\n"
    "                         only in the environment it was signed for\n"
    "  --label KEY=VALUE      this database's labels, for a bundle's\n"
    "                         selector (repeat for each)\n"
    "  --max-bundle-lifetime DURATION  refuse a bundle valid for longer\n"
    "                         (default 90d)\n";

int
fl_dbcmd_parse_own(fl_dbcmd_t *c, int argc, char **argv,
                   const struct option *opts, const char *usage,
                   fl_dbcmd_own_fn own, void *own_arg, int *first_arg)
{
    int opt;

    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        int r = 0;
        if (opt == FL_OPT_HELP) {
            printf("%s", usage);
            return -1;
        }
        if (opt == '?' || opt == ':')
            return fl_cli_option_error(c->cmd, opts, argv);
        if (own)
            r = own(c, opt, optarg, own_arg);
        if (r == 0)
            r = fl_dbcmd_option(c, opt, optarg);
        if (r < 0)
            return -r;
        if (r == 0)
            return fl_cli_usage_error(c->cmd, "invalid option \"%s\"",
                                      argv[optind - 1]);
    }
    *first_arg = optind;
    return 0;
}

int
fl_dbcmd_parse(fl_dbcmd_t *c, int argc, char **argv, const struct option *opts,
               const char *usage, int *first_arg)
{
    return fl_dbcmd_parse_own(c, argc, argv, opts, usage, NULL, NULL,
                              first_arg);
}

void
fl_dbcmd_init(fl_dbcmd_t *c, const char *cmd)
{
    fl_pipeline_opts_t init = FL_PIPELINE_OPTS_INIT;

    memset(c, 0, sizeof(*c));
    c->cmd = cmd;
    c->popts = init;
    c->popts.labels = c->labels;
    c->max_lifetime_s = FL_BUNDLE_MAX_LIFETIME_S;
}

static int
s_duration(fl_dbcmd_t *c, const char *opt, const char *arg, int64_t *out)
{
    fl_error_t err = FL_ERROR_INIT;

    if (fl_parse_duration(out, arg, &err) != 0)
        return -fl_cli_bad_option(c->cmd, opt, &err);
    return 1;
}

/* A duration PostgreSQL sets as lock_timeout or statement_timeout. */
static int
s_pg_timeout(fl_dbcmd_t *c, const char *opt, const char *arg, int64_t *out)
{
    int r = s_duration(c, opt, arg, out);

    if (r > 0 && *out > FL_MIGRATION_MAX_TIMEOUT_MS)
        return -fl_cli_usage_error(c->cmd, "%s %s is more than PostgreSQL's "
                                   "limit of %d ms (about 24.8 days)", opt,
                                   arg, FL_MIGRATION_MAX_TIMEOUT_MS);
    return r;
}

/*
 * --db-file: the connection string, password included, read from a file
 * of mode 0600 (so it is on no command line, where any user sees it in
 * ps), into secure memory kept until the process exits.
 */
static fl_secret_t s_db_secret = FL_SECRET_INIT;

static void
s_release_db_secret(void)
{
    fl_secret_release(&s_db_secret);
}

static int
s_load_db_file(const char **out, const char *path, fl_error_t *err)
{
    fl_secret_t raw = FL_SECRET_INIT;
    size_t len = 0;
    int rc;

    if ((rc = fl_secret_load(&raw, path, 8192, err)) != 0)
        return rc;
    len = raw.len;
    while (len > 0 && (raw.data[len - 1] == '\n' || raw.data[len - 1] == '\r'))
        len--;
    if (len == 0 || memchr(raw.data, '\n', len) || memchr(raw.data, '\0', len)) {
        fl_secret_release(&raw);
        return FL_ERR(err, FL_EINVAL, "\"%s\" must hold one line: a libpq "
                      "connection string or URI", path);
    }
    fl_secret_release(&s_db_secret);
    fl_secret_alloc(&s_db_secret, len + 1);
    memcpy(s_db_secret.data, raw.data, len);
    s_db_secret.data[len] = '\0';
    fl_secret_release(&raw);
    atexit(s_release_db_secret);
    *out = (const char *)s_db_secret.data;
    return 0;
}

int
fl_dbcmd_option(fl_dbcmd_t *c, int opt, const char *arg)
{
    int64_t v = 0;
    fl_error_t err = FL_ERROR_INIT;

    /* Two would leave one unused without a word (before: the last). */
    if ((opt == FL_OPT_DB || opt == FL_OPT_DB_FILE) && c->dsn_given++)
        return -fl_cli_usage_error(c->cmd, "the database is given twice "
                                   "(--db, --db-file): give one");
    switch (opt) {
    case FL_OPT_DB:
        c->dsn = arg;
        c->popts.dsn = arg;
        return 1;
    case FL_OPT_DB_FILE: {
        const char *dsn = NULL;
        if (s_load_db_file(&dsn, arg, &err) != 0)
            return -fl_cli_bad_option(c->cmd, "--db-file", &err);
        c->dsn = dsn;
        c->popts.dsn = dsn;
        return 1;
    }
    case FL_OPT_REDACT_SAMPLES:
        c->popts.redact_samples = 1;
        return 1;
    case FL_OPT_ENVIRONMENT:
        if (*arg == '\0')
            return -fl_cli_usage_error(c->cmd, "--environment needs a name");
        c->popts.environment = arg;
        return 1;
    case FL_OPT_LABEL: {
        const char *eq = strchr(arg, '=');
        if (eq == NULL || eq == arg)
            return -fl_cli_usage_error(c->cmd, "invalid --label \"%s\": "
                                       "expected KEY=VALUE", arg);
        if (c->popts.nlabels >= FL_DBCMD_MAX_LABELS)
            return -fl_cli_usage_error(c->cmd, "at most %d --label options",
                                       FL_DBCMD_MAX_LABELS);
        c->labels[c->popts.nlabels++] = arg;
        return 1;
    }
    case FL_OPT_MAX_LIFETIME: {
        int64_t ms = 0;
        int r = s_duration(c, "--max-bundle-lifetime", arg, &ms);
        if (r > 0 && ms < 1000)
            return -fl_cli_usage_error(c->cmd, "--max-bundle-lifetime must "
                                       "be at least 1s");
        c->max_lifetime_s = ms / 1000;
        return r;
    }
    case FL_OPT_REASON:
        c->popts.reason = arg;
        return 1;
    case FL_OPT_DIR:
        if (*arg == '\0')
            return -fl_cli_usage_error(c->cmd, "--dir needs a directory");
        c->dir = arg;
        return 1;
    case FL_OPT_LAYOUT:
        if (fl_layout_tool_from_name(&c->layout, arg, &err) != 0)
            return -fl_cli_bad_option(c->cmd, "--layout", &err);
        if (c->layout == FL_LAYOUT_SQL)
            return -fl_cli_usage_error(c->cmd, "--layout sql: plain SQL "
                                       "files are not migrations");
        return 1;
    case FL_OPT_LINT_ENFORCE_FROM:
        if (fl_bundle_check_gate(arg, FL_EINVAL, &err) != 0)
            return -fl_cli_bad_option(c->cmd, "--lint-enforce-from", &err);
        c->popts.lint_enforce_from = arg;
        c->gate_given = 1;
        return 1;
    case FL_OPT_LINT_CONFIG:
        if (fl_lint_conf_enforce_from(c->gate_conf, sizeof(c->gate_conf), arg,
                                      &err) != 0)
            return -fl_cli_bad_option(c->cmd, "--lint-config", &err);
        if (!c->gate_given && c->gate_conf[0])
            c->popts.lint_enforce_from = c->gate_conf;
        return 1;
    case FL_OPT_SCHEMA:
        if (*arg == '\0' || strlen(arg) > 63)
            return -fl_cli_usage_error(c->cmd, "--schema needs a schema name "
                                       "of 1 to 63 bytes");
        c->popts.schema = arg;
        return 1;
    case FL_OPT_ALLOW_OLDER:
        c->popts.allow_older_release = 1;
        return 1;
    case FL_OPT_NO_REHEARSE:
        c->popts.no_rehearse = 1;
        return 1;
    case FL_OPT_JSON:
        c->json = 1;
        return 1;
    case FL_OPT_QUIET:
        c->quiet = 1;
        return 1;
    case FL_OPT_LOG_FILE:
        c->log_file = arg;
        return 1;
    case FL_OPT_LOCK_WAIT:
        return s_duration(c, "--lock-wait", arg, &c->popts.lock_wait_ms);
    case FL_OPT_LOCK_TIMEOUT: {
        int r = s_pg_timeout(c, "--lock-timeout", arg,
                             &c->popts.lock_timeout_ms);
        /* PostgreSQL's lock_timeout 0 is no timeout at all. */
        if (r > 0 && c->popts.lock_timeout_ms <= 0)
            return -fl_cli_usage_error(c->cmd, "--lock-timeout %s would let "
                                       "every statement wait for its locks "
                                       "forever; give a duration above 0",
                                       arg);
        return r;
    }
    case FL_OPT_STATEMENT_TIMEOUT:
        return s_pg_timeout(c, "--statement-timeout", arg,
                            &c->popts.statement_timeout_ms);
    case FL_OPT_LOCK_RETRIES:
        if (fl_parse_int(&v, arg, 0, 100, &err) != 0)
            return -fl_cli_bad_option(c->cmd, "--lock-retries", &err);
        c->popts.lock_retries = (int)v;
        return 1;
    case FL_OPT_TRUST:
        c->trust = arg;
        return 1;
    case FL_OPT_REQUIRE_SIGNED:
        c->require_signed = 1;
        return 1;
    case FL_OPT_TO:
        if (fl_version_parse_str(&c->popts.to_version, arg, &err) != 0)
            return -fl_cli_bad_option(c->cmd, "--to", &err);
        return 1;
    case FL_OPT_ALLOW_OOO:
        c->popts.allow_out_of_order = 1;
        return 1;
    case FL_OPT_ALLOW_LINT:
        c->popts.allow_lint_errors = 1;
        return 1;
    case FL_OPT_BACKUP_DIR:
        c->popts.backup_dir = arg;
        c->popts.relocate_backups = 1;
        return 1;
    case FL_OPT_BACKUP_DUMP_ABOVE:
        if (fl_parse_size(&v, arg, &err) != 0)
            return -fl_cli_bad_option(c->cmd, "--backup-dump-above", &err);
        c->popts.backup_dump_above = v;
        return 1;
    default:
        return 0;
    }
}

/*
 * Every pipeline event becomes one log event: the console shows it (a
 * readable line on a terminal, JSON otherwise) and the log file keeps it
 * as JSON, with step, status, version and duration as fields.
 */
static void
s_on_event(const fl_pipeline_event_t *ev, void *arg)
{
    fl_dbcmd_t *c = arg;
    char duration[24];
    fl_log_field f[6];
    size_t n = 0;
    fl_log_level level = FL_LOG_INFO;

    if (ev->status == FL_STEP_FAILED || ev->status == FL_STEP_REFUSED)
        level = FL_LOG_ERROR;
    else if (ev->status == FL_STEP_RETRY || ev->status == FL_STEP_OVERRIDDEN)
        level = FL_LOG_WARNING;
    else if (ev->status == FL_STEP_STARTED)
        level = FL_LOG_DEBUG;
    f[n++] = (fl_log_field){"step", fl_step_name(ev->step)};
    f[n++] = (fl_log_field){"status", fl_step_status_name(ev->status)};
    if (fl_version_is_set(&ev->version))
        f[n++] = (fl_log_field){"version", ev->version.text};
    if (ev->status != FL_STEP_STARTED) {
        snprintf(duration, sizeof(duration), "%lld", (long long)ev->duration_ms);
        f[n++] = (fl_log_field){"duration_ms", duration};
    }
    if (ev->error && ev->error->sqlstate[0])
        f[n++] = (fl_log_field){"sqlstate", ev->error->sqlstate};
    if (c->popts.bundle_id)
        f[n++] = (fl_log_field){"bundle", c->popts.bundle_id};
    fl_log_emit_at(ev->time_us, level, c->cmd, f, n, "%s", ev->message);
}

int
fl_dbcmd_start(fl_dbcmd_t *c)
{
    const char *path = c->log_file ? c->log_file : "migration-execution.log";
    fl_error_t err = FL_ERROR_INIT;

    fl_log_set_level(c->quiet ? FL_LOG_WARNING : FL_LOG_INFO);
    if (*path && fl_log_open_file(path, &err) != 0) {
        fl_dbcmd_report(c->cmd, &err, FL_EXIT_FAILED, c->json);
        fl_error_clear(&err);
        return FL_EXIT_FAILED;
    }
    c->popts.on_event = s_on_event;
    c->popts.arg = c;
    fl_dbcmd_signals_start(c);
    return 0;
}

void
fl_dbcmd_stop(fl_dbcmd_t *c)
{
    (void)c;
    fl_dbcmd_signals_stop();
    fl_log_close_file();
}

void
fl_dbcmd_close_pipeline(fl_pipeline_t **p)
{
    fl_dbcmd_signals_watch(NULL);
    fl_pipeline_close(p);
}

json_t *
fl_dbcmd_error_json(const fl_error_t *err)
{
    return fl_json_pack("{s:s, s:s?, s:s?, s:s?}", "message",
                        err->message ? err->message : "", "detail",
                        err->detail, "hint", err->hint, "sqlstate",
                        err->sqlstate[0] ? err->sqlstate : NULL);
}

void
fl_dbcmd_print_json_error(const fl_error_t *err)
{
    json_t *o = fl_json_pack("{s:b, s:o}", "ok", 0, "error",
                             fl_dbcmd_error_json(err));

    fl_dbcmd_print_json(o);
    json_decref(o);
}

int
fl_dbcmd_report(const char *cmd, const fl_error_t *err, int code, int json)
{
    if (json)
        fl_dbcmd_print_json_error(err);
    return fl_cli_report(cmd, err, code);
}

int
fl_dbcmd_open_pipeline(fl_dbcmd_t *c, int argc, char **argv,
                       const struct option *opts, const char *usage,
                       fl_source_t *src, fl_pipeline_t **p)
{
    fl_error_t err = FL_ERROR_INIT;
    char *text = fl_asprintf("%s\n%s%s", usage, fl_dbcmd_pipeline_help,
                             fl_dbcmd_help);
    const char *path = NULL;
    int first = 0, code;

    code = fl_dbcmd_parse(c, argc, argv, opts, text, &first);
    free(text);
    if (code != 0)
        return code;
    path = fl_dbcmd_source_arg(c, argc, argv, first, &code);
    if (code != 0)
        return code;
    if (path == NULL || first < argc - (c->dir ? 0 : 1))
        return fl_cli_usage_error(c->cmd, "expected one SOURCE (a bundle or "
                                  "a migrations directory) or --dir DIR");
    if ((code = fl_dbcmd_start(c)) != 0)
        return code;
    if (c->popts.allow_older_release &&
        (c->popts.reason == NULL || *c->popts.reason == '\0'))
        return fl_cli_usage_error(c->cmd, "--allow-older-release needs "
                                  "--reason TEXT, which the log keeps");
    if ((code = fl_dbcmd_open_source(c, path, src)) == 0) {
        c->popts.bundle_id = src->bundle_id;
        if (fl_pipeline_open(p, &c->popts, &err) != 0) {
            code = fl_dbcmd_report(c->cmd, &err,
                                   fl_dbcmd_open_exit_code(&err), c->json);
        } else {
            fl_dbcmd_signals_watch(*p);
        }
    }
    fl_error_clear(&err);
    return code;
}

const char *
fl_dbcmd_target(const fl_dbcmd_t *c)
{
    return c->popts.schema ? c->popts.schema : "";
}

const char *
fl_dbcmd_source_arg(fl_dbcmd_t *c, int argc, char **argv, int first,
                    int *code)
{
    *code = 0;
    if (c->dir != NULL && first < argc) {
        *code = fl_cli_usage_error(c->cmd, "give the source as SOURCE or as "
                                   "--dir DIR, not both");
        return NULL;
    }
    if (c->layout != FL_LAYOUT_AUTO && c->dir == NULL) {
        *code = fl_cli_usage_error(c->cmd, "--layout TOOL reads a directory "
                                   "given with --dir DIR");
        return NULL;
    }
    return c->dir ? c->dir : first < argc ? argv[first] : NULL;
}

int
fl_dbcmd_open_source(fl_dbcmd_t *c, const char *path, fl_source_t *src)
{
    fl_bundle_verify_opts_t vo = FL_BUNDLE_VERIFY_OPTS_INIT;
    fl_error_t err = FL_ERROR_INIT;
    int code = 0, rc;

    vo.max_lifetime_s = c->max_lifetime_s;
    /* Expiry stops a bundle from being applied, never rolled back. */
    vo.allow_expired = strcmp(c->cmd, "rollback") == 0;
    /* A bundle without --trust is a usage error, exit 2 (before, 3, as
     * if the bundle were refused: found by an audit). */
    {
        struct stat st;

        if (c->dir == NULL && c->trust == NULL && stat(path, &st) == 0 &&
            S_ISREG(st.st_mode))
            return fl_cli_usage_error(c->cmd, "\"%s\" is a bundle: it "
                                      "needs --trust PATH, the release "
                                      "keys it is verified against", path);
    }
    if (c->dir != NULL && c->require_signed)
        rc = FL_ERR(&err, FL_EINVAL, "--require-signed accepts only signed "
                    "bundles, not --dir \"%s\"", c->dir);
    else if (c->dir != NULL)
        rc = fl_source_open_dir(src, c->dir, c->layout, &err);
    else
        rc = fl_source_open_opts(src, path, c->trust, c->require_signed, &vo,
                                 &err);
    if (rc == 0 && src->left_out != NULL && !c->quiet) {
        char *said = fl_str_escape_controls(src->left_out, 0);

        fprintf(stderr, "flotilla %s: warning: %s\n", c->cmd, said);
        free(said);
    }
    if (rc != 0) {
        /* An unverifiable or refused source changes nothing: exit 3. */
        code = fl_dbcmd_report(c->cmd, &err,
                               err.code == FL_EPROTO || err.code == FL_EINVAL
                                   ? FL_EXIT_REFUSED
                                   : FL_EXIT_FAILED,
                               c->json);
    }
    fl_error_clear(&err);
    return code;
}

int
fl_dbcmd_open_exit_code(const fl_error_t *err)
{
    /* A connection that failed: 4; a target that does not exist: 1. */
    return err && err->code == FL_ENOTFOUND ? FL_EXIT_FAILED : FL_EXIT_CONNECT;
}

/*
 * The signal thread.  The pipeline it may cancel is guarded by a mutex,
 * so that watch(NULL) returns only once no cancel of it is under way and
 * the caller may close it.  SIGUSR1, sent by fl_dbcmd_signals_stop, ends
 * the thread.
 */
static pthread_mutex_t s_sig_lock = PTHREAD_MUTEX_INITIALIZER;
static fl_pipeline_t *s_sig_pipeline;
static int s_sig_received;
static int s_sig_started;
static pthread_t s_sig_thread;
static const char *s_sig_cmd = "flotilla";

static void
s_sigset(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGINT);
    sigaddset(set, SIGTERM);
    sigaddset(set, SIGUSR1);
}

static void *
s_sig_main(void *arg)
{
    sigset_t set;

    (void)arg;
    s_sigset(&set);
    for (;;) {
        int sig = 0;

        if (sigwait(&set, &sig) != 0 || sig == SIGUSR1)
            return NULL;
        if (__atomic_exchange_n(&s_sig_received, sig, __ATOMIC_SEQ_CST) != 0) {
            /* The second: at once, by the signal itself. */
            struct sigaction sa;
            sigset_t one;

            memset(&sa, 0, sizeof(sa));
            sa.sa_handler = SIG_DFL;
            sigaction(sig, &sa, NULL);
            sigemptyset(&one);
            sigaddset(&one, sig);
            pthread_sigmask(SIG_UNBLOCK, &one, NULL);
            raise(sig);
            _exit(128 + sig);
        }
        fl_log_warning(s_sig_cmd, "interrupted by %s: cancelling the running "
                       "statement; what was done is recorded before flotilla "
                       "exits (a second signal stops it at once)",
                       sig == SIGINT ? "SIGINT" : "SIGTERM");
        pthread_mutex_lock(&s_sig_lock);
        fl_pipeline_cancel(s_sig_pipeline);
        pthread_mutex_unlock(&s_sig_lock);
    }
}

void
fl_dbcmd_signals_start(fl_dbcmd_t *c)
{
    sigset_t set;

    s_sig_cmd = c->cmd;
    s_sigset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (pthread_create(&s_sig_thread, NULL, s_sig_main, NULL) == 0)
        s_sig_started = 1;
}

void
fl_dbcmd_signals_watch(fl_pipeline_t *p)
{
    pthread_mutex_lock(&s_sig_lock);
    s_sig_pipeline = p;
    /* A signal that came while the pipeline was being opened. */
    if (p && __atomic_load_n(&s_sig_received, __ATOMIC_SEQ_CST))
        fl_pipeline_cancel(p);
    pthread_mutex_unlock(&s_sig_lock);
}

void
fl_dbcmd_signals_stop(void)
{
    fl_dbcmd_signals_watch(NULL);
    if (!s_sig_started)
        return;
    pthread_kill(s_sig_thread, SIGUSR1);
    pthread_join(s_sig_thread, NULL);
    s_sig_started = 0;
}

int
fl_dbcmd_signal_received(void)
{
    return __atomic_load_n(&s_sig_received, __ATOMIC_SEQ_CST);
}

int
fl_dbcmd_exit_code(const fl_error_t *err)
{
    /*
     * After SIGINT or SIGTERM, whatever stopped the run (the cancelled
     * statement, or flotilla's own query the cancel reached) says
     * interrupted: what was done is recorded all the same.
     */
    if ((err == NULL || err->code != FL_OK) && fl_dbcmd_signal_received())
        return FL_EXIT_INTERRUPTED;
    switch (err ? err->code : FL_EFAIL) {
    case FL_OK:
        return FL_EXIT_OK;
    case FL_ECANCELLED:
        return FL_EXIT_INTERRUPTED;
    case FL_EINVAL:
        return FL_EXIT_REFUSED;
    case FL_ECONFLICT:
    case FL_ETIMEOUT:
        return FL_EXIT_LOCKED;
    default:
        return FL_EXIT_FAILED;
    }
}

json_t *
fl_dbcmd_json_text(const char *v)
{
    return v == NULL || *v == '\0' ? json_null() : fl_json_text(v);
}

json_t *
fl_dbcmd_json_int(const char *v)
{
    return v == NULL || *v == '\0' ? json_null()
                                    : json_integer(strtoll(v, NULL, 10));
}

void
fl_dbcmd_print_json(const json_t *value)
{
    char *s = json_dumps(value, JSON_INDENT(2) | JSON_PRESERVE_ORDER |
                         JSON_ENSURE_ASCII);

    if (s) {
        printf("%s\n", s);
        free(s);
    }
}
