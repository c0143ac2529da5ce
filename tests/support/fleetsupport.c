/*
 * fleetsupport.c - the fleet integration tests' harness (see
 * fleetsupport.h).
 */
#include "fleetsupport.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/clock.h"

char *
fl_fleet_path(const fl_fleet_t *f, const char *name)
{
    return fl_asprintf("%s/%s", f->dir, name);
}

static int64_t
s_deadline(int timeout_s)
{
    return fl_clock_ms() + (int64_t)(timeout_s * 1000.0 *
                                     fl_test_timeout_scale());
}

/* Runs flotilla with argv and fails the test unless it exits 0. */
static void
s_flotilla_ok(const char *const *argv)
{
    fl_test_proc_t res = {0, NULL, NULL};

    fl_test_run(&res, "flotilla", argv, NULL, 60);
    if (res.status != 0)
        fail_msg("flotilla %s: exit %d\n%s%s", argv[1], res.status, res.out,
                 res.err);
    fl_test_proc_release(&res);
}

static void
s_cert(const fl_fleet_t *f, const char *prefix, const char *name)
{
    const char *argv[] = {"flotilla", "cert", "--out", prefix, "--name",
                          name, NULL};
    (void)f;
    s_flotilla_ok(argv);
}

static void
s_copy(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb"), *out = NULL;
    char buf[4096];
    size_t n;

    if (in == NULL || (out = fopen(to, "wb")) == NULL)
        fail_msg("copy %s to %s: %s", from, to, strerror(errno));
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        if (fwrite(buf, 1, n, out) != n)
            fail_msg("copy %s: short write", to);
    fclose(in);
    fclose(out);
}

void
fl_fleet_open(fl_fleet_t *f, const char *prefix, const char *coord_extra)
{
    const char *shards = getenv("FLOTILLA_TEST_SHARDS");
    char *copy = NULL, *save = NULL, *tok = NULL, *p = NULL, *q = NULL;
    const char *dirs[] = {"agents", "operators", "trust", "coord-trust",
                          "certs", NULL};

    memset(f, 0, sizeof(*f));
    if (shards == NULL || *shards == '\0')
        fail_msg("FLOTILLA_TEST_SHARDS is not set: run the tests through "
                 "tests/run.sh, which starts three PostgreSQL shards");
    copy = fl_strdup(shards);
    for (tok = strtok_r(copy, ";", &save); tok && f->nshards < 3;
         tok = strtok_r(NULL, ";", &save))
        f->shards[f->nshards++] = fl_strdup(tok);
    free(copy);
    if (f->nshards < 3)
        fail_msg("FLOTILLA_TEST_SHARDS names %d servers; 3 are needed",
                 f->nshards);
    f->prefix = fl_strdup(prefix);
    f->dir = fl_test_tmpdir();
    chmod(f->dir, 0700);
    for (int i = 0; dirs[i]; i++) {
        p = fl_fleet_path(f, dirs[i]);
        if (mkdir(p, 0700) != 0)
            fail_msg("mkdir %s: %s", p, strerror(errno));
        free(p);
    }
    p = fl_fleet_path(f, "coord");
    s_cert(f, p, "coordinator");
    free(p);
    p = fl_fleet_path(f, "certs/operator");
    s_cert(f, p, "operator");
    q = fl_fleet_path(f, "operators/operator.cert");
    free(p);
    p = fl_fleet_path(f, "certs/operator.cert");
    s_copy(p, q);
    free(p);
    free(q);
    /* Release keys: "rel" trusted by all, "evil" by the coordinator only. */
    f->key = fl_fleet_path(f, "rel.key");
    f->evil_key = fl_fleet_path(f, "evil.key");
    {
        char *rel = fl_fleet_path(f, "rel"), *evil = fl_fleet_path(f, "evil");
        const char *a1[] = {"flotilla", "keygen", "--out", rel, NULL};
        const char *a2[] = {"flotilla", "keygen", "--out", evil, NULL};
        char *from = NULL, *to = NULL;

        s_flotilla_ok(a1);
        s_flotilla_ok(a2);
        from = fl_asprintf("%s.pub", rel);
        to = fl_fleet_path(f, "trust/rel.pub");
        s_copy(from, to);
        free(to);
        to = fl_fleet_path(f, "coord-trust/rel.pub");
        s_copy(from, to);
        free(to);
        free(from);
        from = fl_asprintf("%s.pub", evil);
        to = fl_fleet_path(f, "coord-trust/evil.pub");
        s_copy(from, to);
        free(to);
        free(from);
        free(rel);
        free(evil);
    }
    fl_test_db_create(&f->ctl, prefix);
    f->coord_extra = fl_strdup(coord_extra ? coord_extra : "");
    f->coord_yaml = fl_fleet_path(f, "coordinator.yaml");
    f->coord_log = fl_fleet_path(f, "coordinator.log");
    f->coord_out = fl_fleet_path(f, "coordinator.out");
    /* The CLI finds the coordinator through the environment. */
    p = fl_fleet_path(f, "certs/operator.cert_secret");
    setenv("FLOTILLA_CERT", p, 1);
    free(p);
    p = fl_fleet_path(f, "coord.cert");
    setenv("FLOTILLA_SERVER_CERT", p, 1);
    free(p);
}

static pid_t
s_spawn(const char *bin, const char *const *argv, const char *out)
{
    const char *bindir = getenv("FLOTILLA_BIN_DIR");
    char *path = fl_asprintf("%s/%s", bindir ? bindir : ".", bin);
    size_t argc = 0;
    char **args = NULL;
    pid_t pid;

    while (argv[argc])
        argc++;
    args = fl_calloc(argc + 1, sizeof(char *));
    args[0] = path;
    for (size_t i = 1; i < argc; i++)
        args[i] = (char *)argv[i];
    pid = fork();
    if (pid < 0)
        fail_msg("fork: %s", strerror(errno));
    if (pid == 0) {
        int fd = open(out, O_WRONLY | O_CREAT | O_APPEND, 0600);
        int nul = open("/dev/null", O_RDONLY);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (nul >= 0)
            dup2(nul, 0);
        execv(path, args);
        _exit(127);
    }
    free(args);
    free(path);
    return pid;
}

int
fl_fleet_wait_pid(pid_t pid, int timeout_s)
{
    int64_t deadline = s_deadline(timeout_s);
    int status = 0;

    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            break;
        if (r < 0)
            fail_msg("waitpid %ld: %s", (long)pid, strerror(errno));
        if (fl_clock_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            fail_msg("process %ld did not exit within %d s", (long)pid,
                     timeout_s);
        }
        fl_clock_sleep_ms(20);
    }
    return WIFEXITED(status) ? WEXITSTATUS(status)
                             : 128 + WTERMSIG(status);
}

/* Line "key: value\n", unless tail sets key itself. */
static const char *
s_unless_set(const char *tail, const char *line)
{
    size_t key = strcspn(line, ":") + 1;
    const char *p = tail;

    while (p != NULL && *p != '\0') {
        if (strncmp(p, line, key) == 0)
            return "";
        p = strchr(p, '\n');
        if (p != NULL)
            p++;
    }
    return line;
}

static void
s_write_coord_yaml(fl_fleet_t *f)
{
    char *text = fl_asprintf(
        "name: test-coordinator\n"
        "agent_endpoint: \"%s\"\n"
        "control_endpoint: \"%s\"\n"
        "state_dsn: \"%s\"\n"
        "cert: %s/coord.cert_secret\n"
        "agents_dir: %s/agents\n"
        "operators_dir: %s/operators\n"
        "trust: %s/coord-trust\n"
        "heartbeat: 100ms\n"
        "%s%s"
        /* The start-up self-test is the first CURVE handshake of a
         * sanitizer build; on a loaded machine it can take longer than
         * the 5 s default, and the coordinator then refuses to start. */
        "selftest_timeout: 60s\n"
        "log_file: %s\n"
        "log_level: debug\n"
        "%s",
        f->agent_endpoint ? f->agent_endpoint : "tcp://127.0.0.1:!",
        f->control_endpoint ? f->control_endpoint : "tcp://127.0.0.1:!",
        f->ctl.conninfo, f->dir, f->dir, f->dir, f->dir,
        s_unless_set(f->coord_extra, "heartbeat_timeout: 1500ms\n"),
        s_unless_set(f->coord_extra, "restart_grace: 1500ms\n"),
        f->coord_log, f->coord_extra);

    fl_test_write_file(f->coord_yaml, text);
    free(text);
}

/* The value of "key":"..." in a JSON log line (new string). */
static char *
s_field(const char *line, const char *key)
{
    char *needle = fl_asprintf("\"%s\":\"", key);
    const char *p = strstr(line, needle);
    const char *e = NULL;
    char *v = NULL;

    if (p != NULL) {
        p += strlen(needle);
        e = strchr(p, '"');
        if (e != NULL)
            v = fl_strndup(p, (size_t)(e - p));
    }
    free(needle);
    return v;
}

/* The last line of path containing needle (new), or NULL. */
static char *
s_last_line(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    char *line = NULL, *found = NULL;
    size_t cap = 0;

    if (fp == NULL)
        return NULL;
    while (getline(&line, &cap, fp) > 0)
        if (strstr(line, needle) != NULL) {
            free(found);
            found = fl_strdup(line);
        }
    free(line);
    fclose(fp);
    return found;
}

void
fl_fleet_start_coordinator(fl_fleet_t *f)
{
    const char *argv[] = {"flotilla-coordinator", "--config", f->coord_yaml,
                          NULL};
    int64_t deadline = s_deadline(30);
    int before = fl_fleet_log_count(f->coord_log, "\"message\":\"ready:");

    s_write_coord_yaml(f);
    f->coord_pid = s_spawn("flotilla-coordinator", argv, f->coord_out);
    for (;;) {
        int status = 0;
        if (fl_fleet_log_count(f->coord_log, "\"message\":\"ready:") > before)
            break;
        if (waitpid(f->coord_pid, &status, WNOHANG) == f->coord_pid) {
            f->coord_pid = 0;
            fail_msg("the coordinator exited at start (see %s and %s)",
                     f->coord_log, f->coord_out);
        }
        if (fl_clock_ms() > deadline)
            fail_msg("the coordinator was not ready within 30 s (%s)",
                     f->coord_log);
        fl_clock_sleep_ms(20);
    }
    if (f->agent_endpoint == NULL) {
        char *line = s_last_line(f->coord_log, "\"message\":\"ready:");
        f->agent_endpoint = s_field(line, "agent_endpoint");
        f->control_endpoint = s_field(line, "control_endpoint");
        free(line);
        assert_non_null(f->agent_endpoint);
        assert_non_null(f->control_endpoint);
        /* A restart listens where the agents were told to connect. */
        s_write_coord_yaml(f);
        setenv("FLOTILLA_COORDINATOR", f->control_endpoint, 1);
    }
}

void
fl_fleet_signal_coordinator(fl_fleet_t *f, int sig)
{
    if (f->coord_pid <= 0)
        return;
    kill(f->coord_pid, sig);
    if (sig != SIGSTOP && sig != SIGCONT && sig != SIGHUP) {
        fl_fleet_wait_pid(f->coord_pid, 30);
        f->coord_pid = 0;
    }
}

/* The path of BEFORE NAME AFTER in the fleet's directory (new). */
static char *
s_named(const fl_fleet_t *f, const char *before, const char *name,
        const char *after)
{
    char *file = fl_asprintf("%s%s%s", before, name, after);
    char *path = fl_fleet_path(f, file);

    free(file);
    return path;
}

int
fl_fleet_add_agent(fl_fleet_t *f, const char *name, int shard, int enrolled,
                   const char *yaml_tail)
{
    fl_fleet_agent_t *a = &f->agents[f->nagents];
    char *file = NULL, *text = NULL, *from = NULL, *to = NULL;

    assert_true(f->nagents < FL_FLEET_MAX_AGENTS);
    assert_non_null(f->agent_endpoint); /* start the coordinator first */
    a->name = fl_strdup(name);
    a->shard = shard;
    a->yaml = s_named(f, "", name, ".yaml");
    a->log = s_named(f, "", name, ".log");
    a->out = s_named(f, "", name, ".out");
    a->state = s_named(f, "state-", name, "");
    a->cert = s_named(f, "certs/", name, "");
    s_cert(f, a->cert, name);
    if (enrolled) {
        from = fl_asprintf("%s.cert", a->cert);
        file = fl_asprintf("agents/%s.cert", name);
        to = fl_fleet_path(f, file);
        s_copy(from, to);
        free(file);
        free(from);
        free(to);
        /* Enrolment is the file and a SIGHUP: wait for the reload. */
        if (f->coord_pid > 0) {
            int before = fl_fleet_log_count(f->coord_log, "\"reloaded: ");
            int64_t deadline = s_deadline(30);

            kill(f->coord_pid, SIGHUP);
            while (fl_fleet_log_count(f->coord_log, "\"reloaded: ") <= before) {
                if (fl_clock_ms() > deadline)
                    fail_msg("the coordinator did not reload within 30 s");
                fl_clock_sleep_ms(20);
            }
        }
    }
    text = fl_asprintf(
        "name: %s\n"
        "coordinator:\n"
        "  endpoint: %s\n"
        "  public_cert: %s/coord.cert\n"
        "cert: %s.cert_secret\n"
        "environment: test\n"
        "labels: [agent=%s]\n"
        "trust: %s/trust\n"
        "state_dir: %s\n"
        "log_file: %s\n"
        "log_level: debug\n"
        "server: \"%s dbname=postgres\"\n"
        "%s"
        "max_connections: 6\n"
        "%s%s%s"
        "reconnect_min: 50ms\n"
        "reconnect_max: 400ms\n"
        "lock_wait: 60s\n"
        "fsync: false\n"
        "%s",
        name, f->agent_endpoint, f->dir, a->cert, name, f->dir, a->state,
        a->log, f->shards[shard],
        s_unless_set(yaml_tail, "max_parallel: 4\n"),
        s_unless_set(yaml_tail, "discovery_interval: 5s\n"),
        s_unless_set(yaml_tail, "state_interval: 5s\n"),
        s_unless_set(yaml_tail, "hello_timeout: 2s\n"),
        yaml_tail ? yaml_tail : "");
    fl_test_write_file(a->yaml, text);
    free(text);
    return f->nagents++;
}

/* The agent's start line (agent/daemon.c), logged once it handles signals. */
#define S_STARTED "static targets, "

void
fl_fleet_start_agent(fl_fleet_t *f, int i)
{
    const char *argv[] = {"flotilla-agent", "--config", f->agents[i].yaml,
                          NULL};

    f->agents[i].starts = fl_fleet_log_count(f->agents[i].log, S_STARTED);
    f->agents[i].pid = s_spawn("flotilla-agent", argv, f->agents[i].out);
}

void
fl_fleet_signal_agent(fl_fleet_t *f, int i, int sig)
{
    if (f->agents[i].pid <= 0)
        return;
    kill(f->agents[i].pid, sig);
    if (sig != SIGSTOP && sig != SIGCONT && sig != SIGHUP) {
        fl_fleet_wait_pid(f->agents[i].pid, 30);
        f->agents[i].pid = 0;
    }
}

void
fl_fleet_rediscover(fl_fleet_t *f, int64_t *asked_ms)
{
    int64_t now = fl_clock_ms();

    if (*asked_ms != 0 && now - *asked_ms < 1000)
        return;
    *asked_ms = now;
    for (int i = 0; i < f->nagents; i++)
        if (fl_fleet_log_count(f->agents[i].log, S_STARTED) >
            f->agents[i].starts)
            fl_fleet_signal_agent(f, i, SIGHUP);
}

void
fl_fleet_cli(fl_fleet_t *f, fl_test_proc_t *res, const char *const *argv)
{
    (void)f;
    fl_test_run(res, "flotilla", argv, NULL, 60);
}

pid_t
fl_fleet_cli_spawn(fl_fleet_t *f, const char *const *argv, const char *out)
{
    (void)f;
    return s_spawn("flotilla", argv, out);
}

pid_t
fl_fleet_spawn(const char *bin, const char *const *argv, const char *out)
{
    return s_spawn(bin, argv, out);
}

json_t *
fl_fleet_json(fl_fleet_t *f, const char *cmd, const char *selector)
{
    const char *argv[] = {"flotilla", cmd, "--json", "--selector", selector,
                          NULL};
    fl_test_proc_t res = {0, NULL, NULL};
    json_t *j = NULL;

    if (selector == NULL)
        argv[3] = NULL;
    fl_fleet_cli(f, &res, argv);
    if (res.status != 0)
        fail_msg("flotilla %s: exit %d\n%s", cmd, res.status, res.err);
    j = json_loads(res.out, 0, NULL);
    if (j == NULL)
        fail_msg("flotilla %s printed no JSON:\n%s", cmd, res.out);
    fl_test_proc_release(&res);
    return j;
}

void
fl_fleet_wait(fl_fleet_t *f, const char *cmd, fl_fleet_pred_fn pred,
              void *arg, int timeout_s, const char *what)
{
    int64_t deadline = s_deadline(timeout_s);
    int pause = 50;

    for (;;) {
        json_t *rows = fl_fleet_json(f, cmd, NULL);
        int ok = pred(rows, arg);

        if (ok) {
            json_decref(rows);
            return;
        }
        if (fl_clock_ms() > deadline) {
            char *text = json_dumps(rows, JSON_INDENT(1));
            fail_msg("not within %d s: %s\nlast `flotilla %s`:\n%s",
                     timeout_s, what, cmd, text);
        }
        json_decref(rows);
        /* Each poll is a process and a CURVE handshake: from 50 ms,
         * doubling up to 400 ms. */
        fl_clock_sleep_ms(pause);
        if (pause < 400)
            pause *= 2;
    }
}

const json_t *
fl_fleet_row(const json_t *rows, const char *key, const char *name)
{
    size_t i;
    const json_t *r = NULL;

    json_array_foreach(rows, i, r) {
        const char *v = json_string_value(json_object_get(r, key));
        if (v != NULL && strcmp(v, name) == 0)
            return r;
    }
    return NULL;
}

int
fl_fleet_log_count(const char *path, const char *needle)
{
    FILE *fp = fopen(path, "r");
    char *line = NULL;
    size_t cap = 0;
    int n = 0;

    if (fp == NULL)
        return 0;
    while (getline(&line, &cap, fp) > 0)
        n += strstr(line, needle) != NULL;
    free(line);
    fclose(fp);
    return n;
}

void
fl_fleet_wait_log(const char *path, const char *needle, int timeout_s)
{
    fl_fleet_wait_log_more(path, needle, 0, timeout_s);
}

void
fl_fleet_wait_log_more(const char *path, const char *needle, int than,
                       int timeout_s)
{
    int64_t deadline = s_deadline(timeout_s);

    while (fl_fleet_log_count(path, needle) <= than) {
        if (fl_clock_ms() > deadline)
            fail_msg("%s has no more than %d lines with \"%s\" after %d s",
                     path, than, needle, timeout_s);
        fl_clock_sleep_ms(50);
    }
}

PGconn *
fl_fleet_connect(fl_fleet_t *f, int shard, const char *db)
{
    /* The shard's connection string, then the database by name, whatever
     * its bytes (libpq's own keyword, not a string built here). */
    const char *const keys[] = {"dbname", "dbname", NULL};
    const char *const vals[] = {f->shards[shard], db, NULL};
    char *ci = fl_asprintf("%s dbname=%s", f->shards[shard], db);
    PGconn *c = PQconnectdbParams(keys, vals, 1);

    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("connect %s: %s", ci, PQerrorMessage(c));
    free(ci);
    return c;
}

void
fl_fleet_createdb(fl_fleet_t *f, int shard, const char *name)
{
    fl_fleet_createdb_from(f, shard, name, NULL);
}

void
fl_fleet_createdb_from(fl_fleet_t *f, int shard, const char *name,
                       const char *template_db)
{
    PGconn *c = fl_fleet_connect(f, shard, "postgres");
    char *sql = template_db
                    ? fl_asprintf("CREATE DATABASE \"%s\" TEMPLATE \"%s\"",
                                  name, template_db)
                    : fl_asprintf("CREATE DATABASE \"%s\"", name);

    assert_true(f->ndbs < FL_FLEET_MAX_DBS);
    fl_test_exec(c, sql);
    f->dbs[f->ndbs].shard = shard;
    snprintf(f->dbs[f->ndbs].name, sizeof(f->dbs[f->ndbs].name), "%s", name);
    f->ndbs++;
    free(sql);
    PQfinish(c);
}

void
fl_fleet_dropdb(fl_fleet_t *f, int shard, const char *name)
{
    PGconn *c = fl_fleet_connect(f, shard, "postgres");
    char *sql = fl_asprintf("DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)",
                            name);

    fl_test_exec(c, sql);
    free(sql);
    PQfinish(c);
}

char *
fl_fleet_query(fl_fleet_t *f, int shard, const char *db, const char *sql)
{
    PGconn *c = fl_fleet_connect(f, shard, db);
    char *v = fl_test_query_value(c, sql);

    PQfinish(c);
    return v;
}

long
fl_fleet_sleepers(fl_fleet_t *f, int shard)
{
    char *sql = fl_asprintf("SELECT count(*) FROM pg_stat_activity WHERE"
                            " state = 'active' AND query LIKE '%%pg_sleep%%'"
                            " AND application_name = 'flotilla' AND"
                            " starts_with(datname, '%s')", f->prefix);
    char *v = fl_fleet_query(f, shard, "postgres", sql);
    long n = v ? strtol(v, NULL, 10) : 0;

    free(v);
    free(sql);
    return n;
}

int
fl_fleet_journal_files(const fl_fleet_t *f, int i, const char *suffix)
{
    char *dir = fl_asprintf("%s/journal", f->agents[i].state);
    DIR *d = opendir(dir);
    struct dirent *de = NULL;
    int n = 0;

    while (d != NULL && (de = readdir(d)) != NULL) {
        size_t len = strlen(de->d_name);
        n += len > strlen(suffix) &&
             strcmp(de->d_name + len - strlen(suffix), suffix) == 0;
    }
    if (d != NULL)
        closedir(d);
    free(dir);
    return n;
}

char **
fl_fleet_table_migrations(int n)
{
    char **files = fl_calloc(2 * (size_t)n + 1, sizeof(*files));

    for (int i = 0; i < n; i++) {
        files[2 * i] = fl_asprintf("%04d_m%d.sql", i + 1, i + 1);
        files[2 * i + 1] = fl_asprintf(
            "-- flotilla:up\nCREATE TABLE m%d (i int);\n"
            "-- flotilla:down\nDROP TABLE m%d;\n", i + 1, i + 1);
    }
    return files;
}

void
fl_fleet_files_free(char **files)
{
    for (size_t i = 0; files != NULL && files[i] != NULL; i++)
        free(files[i]);
    free(files);
}

fl_test_proxy_t *
fl_fleet_proxy_to_shard(fl_fleet_t *f, int shard)
{
    PQconninfoOption *o = PQconninfoParse(f->shards[shard], NULL);
    const char *host = NULL, *port = NULL;
    fl_test_proxy_t *px = NULL;

    assert_non_null(o);
    for (const PQconninfoOption *i = o; i->keyword != NULL; i++) {
        if (strcmp(i->keyword, "host") == 0)
            host = i->val;
        else if (strcmp(i->keyword, "port") == 0)
            port = i->val;
    }
    px = fl_test_proxy_start_to(host, port);
    PQconninfoFree(o);
    return px;
}

void
fl_fleet_bundle(fl_fleet_t *f, const char *key, const char *dir,
                const char *out)
{
    fl_fleet_bundle_with(f, key, dir, out, NULL);
}

void
fl_fleet_bundle_with(fl_fleet_t *f, const char *key, const char *dir,
                     const char *out, const char *const *extra)
{
    char seq[24];
    const char *argv[24] = {"flotilla", "bundle", "build", dir, "--sign", key,
                            "--environment", "test", "--sequence", seq,
                            "--out", out};
    size_t n = 12;

    for (size_t i = 0; extra && extra[i] && n < 23; i++)
        argv[n++] = extra[i];
    argv[n] = NULL;
    /* Each bundle a release of its own, even two built in one second. */
    snprintf(seq, sizeof(seq), "%d", ++f->bundles);
    s_flotilla_ok(argv);
}

static void
s_stop_clean(pid_t *pid, const char *who, const char *out)
{
    int status;

    if (*pid > 0) {
        kill(*pid, SIGCONT);
        kill(*pid, SIGTERM);
        status = fl_fleet_wait_pid(*pid, 60);
        *pid = 0;
        if (status != 0)
            fail_msg("%s exited with %d on SIGTERM; see %s", who, status,
                     out);
    }
    if (fl_fleet_log_count(out, "Sanitizer") > 0 ||
        fl_fleet_log_count(out, "runtime error:") > 0)
        fail_msg("%s reported a sanitizer error; see %s", who, out);
}

void
fl_fleet_stop_clean(fl_fleet_t *f)
{
    for (int i = 0; i < f->nagents; i++)
        s_stop_clean(&f->agents[i].pid, f->agents[i].name, f->agents[i].out);
    s_stop_clean(&f->coord_pid, "the coordinator", f->coord_out);
}

void
fl_fleet_close(fl_fleet_t *f)
{
    int keep = getenv("FLOTILLA_KEEP_FLEET") != NULL;

    for (int i = 0; i < f->nagents; i++) {
        if (f->agents[i].pid > 0) {
            kill(f->agents[i].pid, SIGCONT);
            fl_fleet_signal_agent(f, i, SIGTERM);
        }
    }
    if (f->coord_pid > 0) {
        kill(f->coord_pid, SIGCONT);
        fl_fleet_signal_coordinator(f, SIGTERM);
    }
    for (int i = 0; i < f->ndbs; i++)
        fl_fleet_dropdb(f, f->dbs[i].shard, f->dbs[i].name);
    fl_test_db_drop(&f->ctl);
    if (keep)
        fprintf(stderr, "fleet test directory kept: %s\n", f->dir);
    else
        fl_test_rmtree(f->dir);
    for (int i = 0; i < f->nagents; i++) {
        free(f->agents[i].name);
        free(f->agents[i].yaml);
        free(f->agents[i].log);
        free(f->agents[i].out);
        free(f->agents[i].state);
        free(f->agents[i].cert);
    }
    for (int i = 0; i < f->nshards; i++)
        free(f->shards[i]);
    free(f->prefix);
    free(f->dir);
    free(f->coord_yaml);
    free(f->coord_log);
    free(f->coord_out);
    free(f->coord_extra);
    free(f->agent_endpoint);
    free(f->control_endpoint);
    free(f->key);
    free(f->evil_key);
    memset(f, 0, sizeof(*f));
}
