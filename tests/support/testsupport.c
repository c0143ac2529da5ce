/*
 * testsupport.c - helpers shared by Flotilla's tests (see testsupport.h).
 */
#include "testsupport.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/error.h"
#include "common/file.h"

int
fl_test_run_part(const char *name, const struct CMUnitTest *tests, size_t n)
{
    const char *part = getenv("FLOTILLA_TEST_PART");
    struct CMUnitTest *mine = fl_calloc(n + 1, sizeof(*mine));
    long k = 1, of = 1;
    size_t m = 0;
    char *end = NULL;
    int rc;

    if (part != NULL) {
        k = strtol(part, &end, 10);
        if (*end == '/')
            of = strtol(end + 1, &end, 10);
        if (*end != '\0' || of < 1 || k < 1 || k > of) {
            fprintf(stderr, "FLOTILLA_TEST_PART=\"%s\": want K/N, 1 <= K "
                    "<= N\n", part);
            free(mine);
            return 1;
        }
    }
    for (size_t i = (size_t)(k - 1); i < n; i += (size_t)of)
        mine[m++] = tests[i];
    rc = _cmocka_run_group_tests(name, mine, m, NULL, NULL);
    free(mine);
    return rc;
}

int
fl_test_have_postgres(void)
{
    return getenv("PGHOST") != NULL;
}

static PGconn *
s_connect(const char *conninfo)
{
    PGconn *conn = PQconnectdb(conninfo);

    if (PQstatus(conn) != CONNECTION_OK) {
        char msg[512];
        snprintf(msg, sizeof(msg), "could not connect (%s): %s", conninfo,
                 PQerrorMessage(conn));
        PQfinish(conn);
        fail_msg("%s", msg);
    }
    return conn;
}

void
fl_test_exec(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType st = PQresultStatus(res);

    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "query failed: %s\n%s", sql,
                 PQresultErrorMessage(res));
        PQclear(res);
        fail_msg("%s", msg);
    }
    PQclear(res);
}

void
fl_test_expect_value(PGconn *conn, const char *sql, const char *expected)
{
    char *v = fl_test_query_value(conn, sql);

    if (v == NULL || strcmp(v, expected) != 0)
        fail_msg("%s: expected \"%s\", got \"%s\"", sql, expected,
                 v ? v : "NULL");
    free(v);
}

char *
fl_test_query_value(PGconn *conn, const char *sql)
{
    PGresult *res = PQexec(conn, sql);
    char *v = NULL;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) < 1) {
        char msg[1024];
        snprintf(msg, sizeof(msg), "query returned no row: %s\n%s", sql,
                 PQresultErrorMessage(res));
        PQclear(res);
        fail_msg("%s", msg);
    }
    if (!PQgetisnull(res, 0, 0))
        v = fl_strdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    return v;
}

void
fl_test_db_create(fl_test_db_t *db, const char *prefix)
{
    static unsigned counter;
    PGconn *admin = NULL;
    char sql[160];

    if (!fl_test_have_postgres())
        fail_msg("PGHOST is not set: run the tests through tests/run.sh, "
                 "which starts a throwaway PostgreSQL");
    snprintf(db->name, sizeof(db->name), "fl_%s_%ld_%u", prefix,
             (long)getpid(), counter++);
    admin = s_connect("dbname=postgres");
    snprintf(sql, sizeof(sql), "CREATE DATABASE \"%s\"", db->name);
    fl_test_exec(admin, sql);
    PQfinish(admin);
    db->conninfo = fl_asprintf("dbname=%s", db->name);
}

void
fl_test_db_drop(fl_test_db_t *db)
{
    PGconn *admin = NULL;
    char sql[160];

    if (db->conninfo == NULL)
        return;
    admin = s_connect("dbname=postgres");
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)",
             db->name);
    fl_test_exec(admin, sql);
    PQfinish(admin);
    fl_free(&db->conninfo);
}

void
fl_test_create_role(const char *name)
{
    PGconn *admin = s_connect("dbname=postgres");
    char *sql = fl_asprintf("DO $$ BEGIN CREATE ROLE \"%s\"; EXCEPTION WHEN"
                            " duplicate_object OR unique_violation THEN NULL;"
                            " END $$", name);

    fl_test_exec(admin, sql);
    free(sql);
    PQfinish(admin);
}

PGconn *
fl_test_db_connect(const fl_test_db_t *db)
{
    return s_connect(db->conninfo);
}

static void
s_capture_sink(const fl_log_record *rec, void *arg)
{
    fl_test_log_t *cap = arg;

    cap->lines = fl_reallocarray(cap->lines, cap->count + 1, sizeof(char *));
    cap->lines[cap->count++] = fl_log_record_json(rec);
}

void
fl_test_log_start(fl_test_log_t *cap)
{
    cap->lines = NULL;
    cap->count = 0;
    fl_log_set_sink(s_capture_sink, cap);
}

void
fl_test_log_stop(fl_test_log_t *cap)
{
    fl_log_set_sink(NULL, NULL);
    for (size_t i = 0; i < cap->count; i++)
        free(cap->lines[i]);
    fl_free(&cap->lines);
    cap->count = 0;
}

int
fl_test_log_contains(const fl_test_log_t *cap, const char *needle)
{
    for (size_t i = 0; i < cap->count; i++)
        if (strstr(cap->lines[i], needle))
            return 1;
    return 0;
}

double
fl_test_timeout_scale(void)
{
    const char *s = getenv("FLOTILLA_TEST_TIMEOUT_SCALE");
    double v = s ? strtod(s, NULL) : 1.0;

    return v > 0 ? v : 1.0;
}

void
fl_test_run(fl_test_proc_t *res, const char *name, const char *const *argv,
            const char *stdin_data, int timeout_s)
{
    fl_test_run_in(res, NULL, name, argv, stdin_data, timeout_s);
}

/*
 * The path of executable name (absolute, or under FLOTILLA_BIN_DIR) and
 * an argument vector for execv with it as argv[0]; both new.
 */
static char **
s_exec_args(const char *name, const char *const *argv, char **path)
{
    const char *bindir = getenv("FLOTILLA_BIN_DIR");
    size_t argc = 0;
    char **args = NULL;

    if (name[0] == '/')
        *path = fl_strdup(name);
    else if (bindir == NULL)
        fail_msg("FLOTILLA_BIN_DIR is not set");
    else
        *path = fl_asprintf("%s/%s", bindir, name);
    while (argv && argv[argc])
        argc++;
    args = fl_calloc(argc + 2, sizeof(char *));
    args[0] = *path;
    for (size_t i = 1; i < argc; i++)
        args[i] = (char *)argv[i];
    return args;
}

void
fl_test_run_pty(fl_test_proc_t *res, const char *name,
                const char *const *argv, int cols, int timeout_s)
{
    char *path = NULL;
    char **args = s_exec_args(name, argv, &path);
    struct winsize ws = {24, (unsigned short)cols, 0, 0};
    fl_buf_t ob = FL_BUF_INIT(0);
    time_t deadline = time(NULL) +
                      (time_t)(timeout_s * fl_test_timeout_scale());
    int master = -1, status = 0;
    pid_t pid = forkpty(&master, NULL, NULL, &ws);

    if (pid < 0)
        fail_msg("forkpty: %s", strerror(errno));
    if (pid == 0) {
        execv(path, args);
        fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    for (;;) {
        struct pollfd pfd = {master, POLLIN, 0};
        char chunk[4096];
        ssize_t r;

        if (time(NULL) > deadline) {
            kill(pid, SIGKILL);
            fail_msg("%s did not finish within %d s on a terminal; it "
                     "wrote:\n%s", name, timeout_s, fl_buf_str(&ob));
        }
        if (poll(&pfd, 1, 200) < 0 && errno != EINTR)
            fail_msg("poll: %s", strerror(errno));
        if (pfd.revents == 0)
            continue;
        /* EIO once the child has closed its side: the end. */
        if ((r = read(master, chunk, sizeof(chunk))) <= 0)
            break;
        if (fl_buf_append(&ob, chunk, (size_t)r) != 0)
            fail_msg("%s printed more than the buffer limit", name);
    }
    close(master);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    res->status = WIFEXITED(status) ? WEXITSTATUS(status)
                                    : 128 + WTERMSIG(status);
    res->out = fl_buf_detach(&ob);
    res->err = fl_strdup("");
    free(args);
    free(path);
}

void
fl_test_run_in(fl_test_proc_t *res, const char *cwd, const char *name,
               const char *const *argv, const char *stdin_data, int timeout_s)
{
    char *path = NULL;
    int in[2], out[2], errp[2];
    pid_t pid;
    fl_buf_t ob = FL_BUF_INIT(0), eb = FL_BUF_INIT(0);
    size_t in_off = 0, in_len = stdin_data ? strlen(stdin_data) : 0;
    time_t deadline = time(NULL) + (time_t)(timeout_s * fl_test_timeout_scale());
    int status = 0;
    char **args = s_exec_args(name, argv, &path);

    if (pipe(in) || pipe(out) || pipe(errp))
        fail_msg("pipe: %s", strerror(errno));
    pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        dup2(in[0], 0);
        dup2(out[1], 1);
        dup2(errp[1], 2);
        close(in[0]); close(in[1]); close(out[0]); close(out[1]);
        close(errp[0]); close(errp[1]);
        if (cwd != NULL && chdir(cwd) != 0) {
            fprintf(stderr, "chdir %s: %s\n", cwd, strerror(errno));
            _exit(127);
        }
        execv(path, args);
        fprintf(stderr, "exec %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    close(errp[1]);
    if (in_len == 0) {
        close(in[1]);
        in[1] = -1;
    }
    signal(SIGPIPE, SIG_IGN);
    for (;;) {
        struct pollfd fds[3];
        int n = 0;
        char chunk[4096];

        if (out[0] >= 0) fds[n++] = (struct pollfd){out[0], POLLIN, 0};
        if (errp[0] >= 0) fds[n++] = (struct pollfd){errp[0], POLLIN, 0};
        if (in[1] >= 0) fds[n++] = (struct pollfd){in[1], POLLOUT, 0};
        if (n == 0)
            break;
        if (time(NULL) > deadline) {
            kill(pid, SIGKILL);
            fail_msg("%s did not finish within %d s", name, timeout_s);
        }
        if (poll(fds, (nfds_t)n, 200) < 0 && errno != EINTR)
            fail_msg("poll: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            if (!fds[i].revents)
                continue;
            if (fds[i].fd == in[1]) {
                ssize_t w = write(in[1], stdin_data + in_off, in_len - in_off);
                if (w > 0)
                    in_off += (size_t)w;
                if (w < 0 || in_off >= in_len) {
                    close(in[1]);
                    in[1] = -1;
                }
                continue;
            }
            ssize_t r = read(fds[i].fd, chunk, sizeof(chunk));
            if (r <= 0) {
                close(fds[i].fd);
                if (fds[i].fd == out[0]) out[0] = -1; else errp[0] = -1;
            } else if (fl_buf_append(fds[i].fd == out[0] ? &ob : &eb, chunk,
                                     (size_t)r) != 0) {
                fail_msg("%s printed more than the buffer limit", name);
            }
        }
    }
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    res->status = WIFEXITED(status) ? WEXITSTATUS(status)
                                    : 128 + WTERMSIG(status);
    res->out = fl_buf_detach(&ob);
    res->err = fl_buf_detach(&eb);
    free(args);
    free(path);
}

/* Reads a whole file into a new string ("" when it cannot). */
static char *
s_slurp(const char *path)
{
    fl_buf_t b = FL_BUF_INIT(0);
    FILE *f = fopen(path, "rb");
    char chunk[4096];
    size_t n;

    while (f && (n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (fl_buf_append(&b, chunk, n) != 0)
            fail_msg("%s is larger than the buffer limit", path);
    if (f)
        fclose(f);
    return fl_buf_detach(&b);
}

void
fl_test_spawn(fl_test_child_t *c, const char *cwd, const char *name,
              const char *const *argv)
{
    char *path = NULL, *dir = fl_test_tmpdir();
    char **args = s_exec_args(name, argv, &path);
    pid_t pid;

    c->out_path = fl_asprintf("%s/stdout", dir);
    c->err_path = fl_asprintf("%s/stderr", dir);
    free(dir);
    pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        int in = open("/dev/null", O_RDONLY);
        int out = open(c->out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int er = open(c->err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

        if (in < 0 || out < 0 || er < 0)
            _exit(127);
        dup2(in, 0);
        dup2(out, 1);
        dup2(er, 2);
        if (cwd != NULL && chdir(cwd) != 0)
            _exit(127);
        execv(path, args);
        _exit(127);
    }
    c->pid = (int)pid;
    free(args);
    free(path);
}

void
fl_test_child_signal(const fl_test_child_t *c, int sig)
{
    if (kill((pid_t)c->pid, sig) != 0)
        fail_msg("kill %d: %s", c->pid, strerror(errno));
}

void
fl_test_child_wait(fl_test_child_t *c, fl_test_proc_t *res, int timeout_s)
{
    int64_t deadline_ms = (int64_t)time(NULL) * 1000 +
                          (int64_t)(timeout_s * fl_test_timeout_scale() * 1000);
    int status = 0;
    pid_t got = 0;
    char *dir = NULL;

    while ((got = waitpid((pid_t)c->pid, &status, WNOHANG)) == 0) {
        struct timespec ts = {0, 20 * 1000000L};
        if ((int64_t)time(NULL) * 1000 > deadline_ms) {
            kill((pid_t)c->pid, SIGKILL);
            waitpid((pid_t)c->pid, &status, 0);
            fail_msg("process %d did not end within %d s", c->pid, timeout_s);
        }
        nanosleep(&ts, NULL);
    }
    if (got < 0)
        fail_msg("waitpid %d: %s", c->pid, strerror(errno));
    res->status = WIFEXITED(status) ? WEXITSTATUS(status)
                                    : 128 + WTERMSIG(status);
    res->out = s_slurp(c->out_path);
    res->err = s_slurp(c->err_path);
    dir = fl_strdup(c->out_path);
    *strrchr(dir, '/') = '\0';
    fl_test_rmtree(dir);
    free(dir);
    fl_free(&c->out_path);
    fl_free(&c->err_path);
}

/* The argument vector of `flotilla CMD --db ... [--log-file LOG] ...`. */
static void
s_flotilla_argv(const char **argv, size_t cap, const char *conninfo,
                const char *log, const char *cmd, const char *const *extra,
                const char *source)
{
    size_t n = 0;

    argv[n++] = "flotilla";
    argv[n++] = cmd;
    argv[n++] = "--db";
    argv[n++] = conninfo;
    if (log != NULL && (strcmp(cmd, "apply") == 0 || strcmp(cmd, "rollback") == 0)) {
        argv[n++] = "--log-file";
        argv[n++] = log;
    }
    for (size_t i = 0; extra && extra[i]; i++) {
        if (n >= cap - 2)
            fail_msg("fl_test_flotilla: too many arguments");
        argv[n++] = extra[i];
    }
    if (source != NULL)
        argv[n++] = source;
    argv[n] = NULL;
}

void
fl_test_flotilla(fl_test_proc_t *res, const char *cwd, const char *conninfo,
                 const char *log, const char *cmd, const char *const *extra,
                 const char *source)
{
    const char *argv[40];

    s_flotilla_argv(argv, 40, conninfo, log, cmd, extra, source);
    fl_test_run_in(res, cwd, "flotilla", argv, NULL, 120);
}

void
fl_test_proc_release(fl_test_proc_t *res)
{
    fl_free(&res->out);
    fl_free(&res->err);
}

void
fl_test_ws_open(fl_test_ws_t *ws, const char *prefix)
{
    memset(ws, 0, sizeof(*ws));
    fl_test_db_create(&ws->db, prefix);
    ws->conn = fl_test_db_connect(&ws->db);
    ws->dir = fl_test_tmpdir();
    ws->mdir = fl_asprintf("%s/m", ws->dir);
    ws->log = fl_asprintf("%s/migration-execution.log", ws->dir);
    if (mkdir(ws->mdir, 0755) != 0)
        fail_msg("mkdir %s: %s", ws->mdir, strerror(errno));
}

void
fl_test_ws_close(fl_test_ws_t *ws)
{
    PQfinish(ws->conn);
    ws->conn = NULL;
    fl_test_db_drop(&ws->db);
    if (ws->dir != NULL)
        fl_test_rmtree(ws->dir);
    fl_free(&ws->dir);
    fl_free(&ws->mdir);
    fl_free(&ws->log);
}

int
fl_test_ws_setup(void **state)
{
    fl_test_ws_t *ws = fl_calloc(1, sizeof(*ws));

    fl_test_ws_open(ws, "ws");
    *state = ws;
    return 0;
}

int
fl_test_ws_teardown(void **state)
{
    fl_test_ws_t *ws = *state;

    fl_test_ws_close(ws);
    free(ws);
    *state = NULL;
    return 0;
}

void
fl_test_ws_write(fl_test_ws_t *ws, const char *file, const char *text)
{
    char *p = fl_asprintf("%s/%s", ws->mdir, file);

    fl_test_write_file(p, text);
    free(p);
}

void
fl_test_ws_flotilla(fl_test_ws_t *ws, fl_test_proc_t *res, const char *cmd,
                    const char *const *extra, int with_source)
{
    fl_test_flotilla(res, ws->dir, ws->db.conninfo, ws->log, cmd, extra,
                     with_source ? ws->mdir : NULL);
}

void
fl_test_ws_spawn(fl_test_ws_t *ws, fl_test_child_t *c, const char *cmd,
                 const char *const *extra, int with_source)
{
    const char *argv[40];

    s_flotilla_argv(argv, 40, ws->db.conninfo, ws->log, cmd, extra,
                    with_source ? ws->mdir : NULL);
    fl_test_spawn(c, ws->dir, "flotilla", argv);
}

/*
 * Polls sql on the workspace's database until it returns "t"; with a
 * child c, fails at once when c ends first, and says at the deadline what
 * c printed and what its sessions were doing.
 */
static void
s_await(fl_test_ws_t *ws, fl_test_child_t *c, const char *sql, int timeout_s)
{
    int64_t deadline_ms = (int64_t)time(NULL) * 1000 +
                          (int64_t)(timeout_s * fl_test_timeout_scale() * 1000);

    for (;;) {
        char *v = fl_test_query_value(ws->conn, sql);
        int done = v != NULL && strcmp(v, "t") == 0, status = 0;
        struct timespec ts = {0, 20 * 1000000L};
        char *out, *err, *sessions;

        free(v);
        if (done)
            return;
        if (c != NULL &&
            waitpid((pid_t)c->pid, &status, WNOHANG) == (pid_t)c->pid) {
            out = s_slurp(c->out_path);
            err = s_slurp(c->err_path);
            fail_msg("process %d ended (%s %d) before: %s\nstdout: %s\n"
                     "stderr: %s", c->pid,
                     WIFEXITED(status) ? "exit" : "signal",
                     WIFEXITED(status) ? WEXITSTATUS(status)
                                       : WTERMSIG(status),
                     sql, out, err);
        }
        if ((int64_t)time(NULL) * 1000 <= deadline_ms) {
            nanosleep(&ts, NULL);
            continue;
        }
        if (c == NULL)
            fail_msg("waited %d s in vain for: %s", timeout_s, sql);
        out = s_slurp(c->out_path);
        err = s_slurp(c->err_path);
        sessions = fl_test_query_value(ws->conn,
            "SELECT string_agg(format('%s %s/%s: %s', state,"
            " wait_event_type, wait_event, left(query, 80)), '; ')"
            " FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = 'flotilla'");
        fail_msg("waited %d s in vain for: %s\nprocess %d, stdout: %s\n"
                 "stderr: %s\nits sessions: %s", timeout_s, sql, c->pid, out,
                 err, sessions ? sessions : "(none)");
    }
}

void
fl_test_ws_await(fl_test_ws_t *ws, const char *sql, int timeout_s)
{
    s_await(ws, NULL, sql, timeout_s);
}

void
fl_test_ws_await_child(fl_test_ws_t *ws, fl_test_child_t *c, const char *sql,
                       int timeout_s)
{
    s_await(ws, c, sql, timeout_s);
}

void
fl_test_expect(const fl_test_proc_t *res, int status, const char *needle)
{
    if (res->status != status ||
        (needle != NULL && strstr(res->out, needle) == NULL &&
         strstr(res->err, needle) == NULL))
        fail_msg("expected exit %d%s%s%s, got %d\nstdout: %s\nstderr: %s",
                 status, needle ? " saying \"" : "", needle ? needle : "",
                 needle ? "\"" : "", res->status, res->out, res->err);
}

char *
fl_test_tmpdir(void)
{
    const char *base = getenv("TMPDIR");
    char *tmpl = fl_asprintf("%s/fltest.XXXXXX", base ? base : "/tmp");

    if (mkdtemp(tmpl) == NULL)
        fail_msg("mkdtemp: %s", strerror(errno));
    return tmpl;
}

void
fl_test_rmtree(const char *path)
{
    char *cmd = fl_asprintf("rm -rf '%s'", path);
    int rc = system(cmd);

    free(cmd);
    if (rc != 0)
        fail_msg("could not remove %s", path);
}

void
fl_test_write_file(const char *path, const char *content)
{
    FILE *f = fopen(path, "w");

    if (f == NULL)
        fail_msg("could not write %s: %s", path, strerror(errno));
    fputs(content, f);
    fclose(f);
}

char *
fl_test_source_path(const char *rel)
{
    const char *src = getenv("FLOTILLA_SOURCE_DIR");

    return fl_asprintf("%s/%s", src ? src : ".", rel);
}

/*
 * Every row of table (a quoted, qualified name), sorted, one a line: its
 * own rows (ONLY), not those of its inheritance children, which are
 * dumped as theirs.
 */
static void
s_append_rows(PGconn *conn, fl_buf_t *b, const char *table)
{
    /* jsonb sorts keys, so column order does not matter. */
    char *q = fl_asprintf("SELECT coalesce(string_agg(r, E'\\n' ORDER BY"
                          " r), '') FROM (SELECT to_jsonb(t)::text AS r"
                          " FROM ONLY %s t) x", table);
    char *rows = fl_test_query_value(conn, q);

    fl_buf_addf(b, "%s\n", rows ? rows : "");
    free(rows);
    free(q);
}

char *
fl_test_canonical_dump(PGconn *conn)
{
    static const char catalog[] =
        "WITH s AS (SELECT oid, nspname FROM pg_namespace WHERE nspname NOT IN"
        "  ('information_schema', 'flotilla', 'flotilla_backup')"
        "  AND nspname NOT LIKE 'pg\\_%')"
        " SELECT x FROM ("
        "  SELECT format('column %I.%I.%I %s notnull=%s default=%s', s.nspname,"
        "   c.relname, a.attname, format_type(a.atttypid, a.atttypmod),"
        "   a.attnotnull, pg_get_expr(d.adbin, d.adrelid)) AS x"
        "  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        "  JOIN s ON s.oid = c.relnamespace"
        "  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        "  WHERE a.attnum > 0 AND NOT a.attisdropped"
        "   AND c.relkind IN ('r', 'p', 'v', 'm')"
        "  UNION ALL SELECT format('constraint %I.%I %I %s', s.nspname,"
        "   c.relname, k.conname, pg_get_constraintdef(k.oid))"
        "  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
        "  JOIN s ON s.oid = c.relnamespace"
        "  UNION ALL SELECT format('index %s', pg_get_indexdef(i.indexrelid))"
        "  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
        "  JOIN s ON s.oid = c.relnamespace"
        "  UNION ALL SELECT format('view %I.%I %s', s.nspname, c.relname,"
        "   pg_get_viewdef(c.oid)) FROM pg_class c JOIN s ON"
        "   s.oid = c.relnamespace WHERE c.relkind IN ('v', 'm')"
        "  UNION ALL SELECT format('table %I.%I', s.nspname, c.relname)"
        "  FROM pg_class c JOIN s ON s.oid = c.relnamespace"
        "  WHERE c.relkind IN ('r', 'p')) f ORDER BY x";
    PGresult *res = PQexec(conn, catalog);
    fl_buf_t b = FL_BUF_INIT(0);

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("canonical dump failed: %s", PQresultErrorMessage(res));
    for (int i = 0; i < PQntuples(res); i++) {
        const char *line = PQgetvalue(res, i, 0);
        fl_buf_addf(&b, "%s\n", line);
        if (strncmp(line, "table ", 6) == 0)
            s_append_rows(conn, &b, line + 6);
    }
    PQclear(res);
    return fl_buf_detach(&b);
}

/* The user schemas, as a condition on the alias n of pg_namespace. */
#define S_USER_SCHEMA \
    "n.nspname NOT IN ('information_schema', 'flotilla', 'flotilla_backup')" \
    " AND n.nspname NOT LIKE 'pg\\_%'"

static int
s_cmp_lines(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
s_starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Whether a pg_dump line says nothing about the schema. */
static int
s_dump_noise(const char *line)
{
    return *line == '\0' || s_starts(line, "--") || s_starts(line, "SET ") ||
           s_starts(line, "SELECT pg_catalog.set_config(") ||
           s_starts(line, "\\restrict") || s_starts(line, "\\unrestrict");
}

/*
 * Appends pg_dump's text without noise, the lines inside each CREATE
 * TABLE (...) sorted and stripped of their trailing comma.
 */
static void
s_append_normalised(fl_buf_t *b, char *text)
{
    char **cols = NULL;
    size_t ncols = 0;
    int in_table = 0;
    char *save = NULL;

    for (char *line = text; line != NULL; line = save) {
        save = strchr(line, '\n');
        if (save != NULL)
            *save++ = '\0';
        if (in_table && s_starts(line, "    ")) {
            size_t len = strlen(line);
            if (len > 0 && line[len - 1] == ',')
                line[len - 1] = '\0';
            cols = fl_reallocarray(cols, ncols + 1, sizeof(char *));
            cols[ncols++] = line;
            continue;
        }
        if (in_table) {
            qsort(cols, ncols, sizeof(char *), s_cmp_lines);
            for (size_t i = 0; i < ncols; i++)
                fl_buf_addf(b, "%s\n", cols[i]);
            ncols = 0;
            in_table = 0;
        }
        if (s_dump_noise(line))
            continue;
        if ((s_starts(line, "CREATE TABLE ") ||
             s_starts(line, "CREATE UNLOGGED TABLE ")) &&
            line[strlen(line) - 1] == '(')
            in_table = 1;
        fl_buf_addf(b, "%s\n", line);
    }
    free(cols);
}

static void
s_append_schema(PGconn *conn, fl_buf_t *b)
{
    const char *bin = getenv("FL_PG_BIN");
    char *pg_dump = fl_asprintf("%s/pg_dump",
                                bin ? bin : "/usr/lib/postgresql/15/bin");
    const char *argv[] = {"pg_dump", "--schema-only", "--no-password",
                          "--exclude-schema=flotilla",
                          "--exclude-schema=flotilla_backup",
                          "-h", PQhost(conn), "-p", PQport(conn),
                          "-U", PQuser(conn), PQdb(conn), NULL};
    fl_test_proc_t r;

    fl_test_run(&r, pg_dump, argv, NULL, 120);
    if (r.status != 0)
        fail_msg("pg_dump failed (exit %d): %s", r.status, r.err);
    s_append_normalised(b, r.out);
    fl_test_proc_release(&r);
    free(pg_dump);
}

/* Runs a query of one text column; calls fn on each value. */
static void
s_each(PGconn *conn, const char *sql, fl_buf_t *b,
       void (*fn)(PGconn *, fl_buf_t *, const char *))
{
    PGresult *res = PQexec(conn, sql);

    if (PQresultStatus(res) != PGRES_TUPLES_OK)
        fail_msg("canonical dump failed: %s\n%s", sql, PQresultErrorMessage(res));
    for (int i = 0; i < PQntuples(res); i++)
        fn(conn, b, PQgetvalue(res, i, 0));
    PQclear(res);
}

static void
s_append_sequence(PGconn *conn, fl_buf_t *b, const char *seq)
{
    char *q = fl_asprintf("SELECT 'last_value=' || last_value || ' is_called='"
                          " || is_called FROM %s", seq);
    char *pos = fl_test_query_value(conn, q);

    fl_buf_addf(b, "sequence %s %s\n", seq, pos);
    free(pos);
    free(q);
}

static void
s_append_table(PGconn *conn, fl_buf_t *b, const char *table)
{
    fl_buf_addf(b, "rows of %s\n", table);
    s_append_rows(conn, b, table);
}

char *
fl_test_canonical_dump_full(PGconn *conn)
{
    fl_buf_t b = FL_BUF_INIT(0);

    s_append_schema(conn, &b);
    s_each(conn,
           "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
           " JOIN pg_namespace n ON n.oid = c.relnamespace"
           " WHERE c.relkind = 'S' AND " S_USER_SCHEMA " ORDER BY 1",
           &b, s_append_sequence);
    s_each(conn,
           "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c"
           " JOIN pg_namespace n ON n.oid = c.relnamespace"
           " WHERE c.relkind = 'r' AND " S_USER_SCHEMA " ORDER BY 1",
           &b, s_append_table);  /* a partitioned table's rows: its leaves' */
    return fl_buf_detach(&b);
}

void
fl_test_dump_without(char *dump, const char *prefix)
{
    char *in = dump, *out = dump;
    size_t plen = strlen(prefix);

    while (*in) {
        char *end = strchr(in, '\n');
        size_t len = end ? (size_t)(end - in) + 1 : strlen(in);
        if (strncmp(in, prefix, plen) != 0) {
            memmove(out, in, len);
            out += len;
        }
        in += len;
    }
    *out = '\0';
}

char *
fl_test_diff(const char *expected, const char *actual)
{
    char *dir = NULL, *fe = NULL, *fa = NULL, *out = NULL;
    fl_test_proc_t r;

    if (strcmp(expected, actual) == 0)
        return NULL;
    dir = fl_test_tmpdir();
    fe = fl_asprintf("%s/expected", dir);
    fa = fl_asprintf("%s/actual", dir);
    fl_test_write_file(fe, expected);
    fl_test_write_file(fa, actual);
    {
        const char *argv[] = {"diff", "-u", "--label", "expected", "--label",
                              "actual", fe, fa, NULL};
        fl_test_run(&r, "/usr/bin/diff", argv, NULL, 60);
    }
    out = r.out;
    r.out = NULL;
    fl_test_proc_release(&r);
    fl_test_rmtree(dir);
    free(fe);
    free(fa);
    free(dir);
    return out;
}

void
fl_test_assert_dumps_equal(const char *what, const char *expected,
                           const char *actual)
{
    char *diff = fl_test_diff(expected, actual);

    if (diff == NULL)
        return;
    fprintf(stderr, "%s: the dumps differ (- expected, + actual):\n%s\n", what,
            diff);
    free(diff);
    fail_msg("%s: the dumps differ (diff above)", what);
}

long
fl_test_env_long(const char *name, long dflt)
{
    const char *v = getenv(name);
    char *end = NULL;
    long n;

    if (v == NULL || *v == '\0')
        return dflt;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || *end != '\0' || n < 1)
        fail_msg("%s must be a positive number, not \"%s\"", name, v);
    return n;
}

uint64_t
fl_test_rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void
fl_test_gen_seeds(long dflt, fl_test_seed_fn seed, void *arg)
{
    long only = fl_test_env_long("FLOTILLA_GEN_SEED", 0);
    long nseeds = fl_test_env_long("FLOTILLA_GEN_SEEDS", dflt);
    long first = only ? only : 1, last = only ? only : nseeds;
    int failed = 0;

    for (long n = first; n <= last; n++)
        failed += seed(n, only != 0, arg) != 0;
    fprintf(stderr, "=== %ld seeds, %d failed\n", last - first + 1, failed);
    if (failed > 0)
        fail_msg("%d of %ld seeds failed (listed above); FLOTILLA_GEN_SEED=N"
                 " runs seed N alone", failed, last - first + 1);
}

void
fl_test_ws_ledger_v4(fl_test_ws_t *ws, const char *down10)
{
    const char *src = getenv("FLOTILLA_SOURCE_DIR");
    char *path = fl_asprintf("%s/tests/fixtures/ledger/v4.sql",
                             src ? src : ".");
    char *text = NULL;
    unsigned char *sql = NULL;
    size_t len = 0;
    fl_error_t err = FL_ERROR_INIT;

    if (fl_file_read(&sql, &len, path, 1024 * 1024, "ledger fixture",
                     &err) != 0)
        fail_msg("%s", err.message);
    fl_test_exec(ws->conn, (const char *)sql);
    fl_test_exec(ws->conn, "RESET ALL"); /* pg_dump's empty search_path */
    free(sql);
    free(path);
    fl_test_ws_write(ws, "0001_users.sql",
        "-- flotilla:up\n"
        "CREATE TABLE users (id int PRIMARY KEY, email text NOT NULL);\n"
        "INSERT INTO users SELECT g, 'u' || g || '@example.com' FROM"
        " generate_series(1, 4) g;\n"
        "-- flotilla:down\nDROP TABLE users;\n");
    fl_test_ws_write(ws, "0002_note.sql",
        "-- flotilla:up\nALTER TABLE users ADD COLUMN note text;\n"
        "-- flotilla:down\nALTER TABLE users DROP COLUMN note;\n");
    text = fl_asprintf("-- flotilla:up\nDELETE FROM users WHERE id > 2;\n"
                       "-- flotilla:down\n%s",
                       down10 ? down10 : "SELECT 1;\n");
    fl_test_ws_write(ws, "0010_prune.sql", text);
    free(text);
}
