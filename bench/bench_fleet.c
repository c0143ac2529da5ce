/*
 * bench_fleet.c - the coordinator against simulated agents (bench/fleet.sh).
 *
 * For 1,000, 10,000 and 100,000 targets spread over 100 agents, a fresh
 * flotilla-coordinator (the real binary, its control database on a real
 * PostgreSQL) is started; 100 simulated agents (this program: real CURVE
 * DEALER sockets speaking the protocol, enrolled certificates, no
 * PostgreSQL, answering every command at once) say hello with their
 * targets; then an operator dispatches a bundle to every target and the
 * clock runs from the dispatch request until the coordinator reports the
 * last outcome written (dispatch.wait: done, every result committed to
 * the control database).  Measured with it: the coordinator's peak RSS
 * (VmHWM) and its memory per target, and the control database's
 * transactions and rows during the dispatch.
 *
 * Baselines, in the same run, for the same number of commands:
 *   transport  the same 100 agents against a bare CURVE ROUTER in this
 *              process that encodes each command, sends it, and decodes
 *              each result: the messaging floor, with nothing written;
 *   writes     one COPY of N command rows and one UPDATE of N rows from
 *              a COPY'd table, on the same PostgreSQL: the durable-write
 *              floor of a dispatch.
 *
 * Usage: bench_fleet BIN_DIR [N...]   (PostgreSQL from the PG* variables)
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>
#include <libpq-fe.h>

#include "bench/benchutil.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "proto/bundle.h"
#include "proto/key.h"
#include "proto/transport.h"
#include "proto/wire.h"

#define AGENTS 100

typedef struct {
    char id[40];
    char rollout[40];
    char target[64];
} s_cmd;

typedef struct {
    fl_link_t *link;
    char name[16];
    int online;
    int have_bundle;
    int asked;
    s_cmd *waiting;
    size_t nwaiting, capwaiting;
    fl_buf_t *out;           /* results not yet taken by the socket */
    size_t nout, capout;
} s_agent;

static char *s_dir;
static char s_server_key[FL_KEY_Z85_LEN + 1];
static fl_cert_t *s_certs[AGENTS];
static fl_cert_t *s_operator;

static void
s_die(const char *what, const char *why)
{
    fprintf(stderr, "bench_fleet: %s: %s\n", what, why ? why : "?");
    exit(1);
}

static void
s_check(int rc, const char *what, const fl_error_t *err)
{
    if (rc != 0)
        s_die(what, err->message);
}

static char *
s_path(const char *name)
{
    return fl_asprintf("%s/%s", s_dir, name);
}

static void
s_write(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");

    if (f == NULL || fputs(text, f) < 0)
        s_die(path, strerror(errno));
    fclose(f);
}

static void
s_copy(const char *from, const char *to)
{
    unsigned char *data = NULL;
    size_t len = 0;
    fl_error_t err = FL_ERROR_INIT;
    FILE *f = NULL;

    s_check(fl_bundle_read_file(&data, &len, from, &err), from, &err);
    f = fopen(to, "wb");
    if (f == NULL || fwrite(data, 1, len, f) != len)
        s_die(to, strerror(errno));
    fclose(f);
    free(data);
}

/* Certificates, keys and directories, made once for every size. */
static void
s_setup(unsigned char **bundle, size_t *blen)
{
    fl_error_t err = FL_ERROR_INIT;
    char key[FL_KEY_Z85_LEN + 1], id[FL_KEY_ID_HEX];
    char *p = NULL, *q = NULL;
    fl_key_t *rel = NULL;
    fl_migration_t m;
    fl_migration_list_t l = {&m, 1};
    fl_bundle_opts_t bo = FL_BUNDLE_OPTS_INIT;
    fl_buf_t out = FL_BUF_INIT(0);
    static const char text[] =
        "-- flotilla:up\nCREATE TABLE bench_t (id int);\n"
        "-- flotilla:down\nDROP TABLE bench_t;\n";

    for (const char *d = "agents\0operators\0trust\0certs\0"; *d;
         d += strlen(d) + 1) {
        p = s_path(d);
        if (mkdir(p, 0700) != 0)
            s_die(p, strerror(errno));
        free(p);
    }
    p = s_path("coord");
    s_check(fl_cert_generate(p, "coordinator", 0, s_server_key, &err),
            "certificate", &err);
    free(p);
    p = s_path("certs/operator");
    s_check(fl_cert_generate(p, "operator", 0, key, &err), "certificate",
            &err);
    free(p);
    p = s_path("certs/operator.cert_secret");
    s_check(fl_cert_load_secret(&s_operator, p, &err), "certificate", &err);
    free(p);
    p = s_path("certs/operator.cert");
    q = s_path("operators/operator.cert");
    s_copy(p, q);
    free(p);
    free(q);
    for (int i = 0; i < AGENTS; i++) {
        char name[64];
        snprintf(name, sizeof(name), "certs/a%02d", i);
        p = s_path(name);
        s_check(fl_cert_generate(p, name + 6, 0, key, &err), "certificate",
                &err);
        free(p);
        snprintf(name, sizeof(name), "certs/a%02d.cert_secret", i);
        p = s_path(name);
        s_check(fl_cert_load_secret(&s_certs[i], p, &err), "certificate",
                &err);
        free(p);
        snprintf(name, sizeof(name), "certs/a%02d.cert", i);
        p = s_path(name);
        snprintf(name, sizeof(name), "agents/a%02d.cert", i);
        q = s_path(name);
        s_copy(p, q);
        free(p);
        free(q);
    }
    p = s_path("trust/rel");
    s_check(fl_key_generate_files(p, 0, id, &err), "release key", &err);
    free(p);
    p = s_path("trust/rel.key");
    s_check(fl_key_load(&rel, p, &err), "release key", &err);
    unlink(p);
    free(p);
    s_check(fl_migration_parse(&m, "0001_bench.sql", text, strlen(text),
                               &err), "migration", &err);
    bo.created = (int64_t)time(NULL);
    bo.expires = bo.created + 86400;
    bo.environment = "bench";
    s_check(fl_bundle_build(&out, &l, rel, &bo, &err), "bundle", &err);
    *blen = out.len;
    *bundle = (unsigned char *)fl_buf_detach(&out);
    fl_migration_release(&m);
    fl_key_destroy(&rel);
}

static long
s_status_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    FILE *f = NULL;
    long kb = -1;

    snprintf(path, sizeof(path), "/proc/%ld/status", (long)pid);
    f = fopen(path, "r");
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, strlen(field)) == 0)
            kb = strtol(line + strlen(field) + 1, NULL, 10);
    if (f != NULL)
        fclose(f);
    return kb;
}

static void
s_sql(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);

    if (PQresultStatus(r) != PGRES_COMMAND_OK &&
        PQresultStatus(r) != PGRES_TUPLES_OK &&
        PQresultStatus(r) != PGRES_COPY_IN)
        s_die(sql, PQresultErrorMessage(r));
    PQclear(r);
}

static void
s_send(fl_link_t *l, const fl_wire_msg_t *m)
{
    fl_buf_t out = FL_BUF_INIT(0);
    fl_error_t err = FL_ERROR_INIT;

    s_check(fl_wire_encode(&out, m, &err), "encode", &err);
    while (fl_link_send(l, NULL, 0, out.data, out.len, NULL) == FL_ETIMEOUT)
        fl_clock_sleep_ms(1);
    fl_buf_release(&out);
}

static void
s_result(s_agent *a, const s_cmd *c)
{
    fl_wire_msg_t m;
    fl_buf_t out = FL_BUF_INIT(0);

    memset(&m, 0, sizeof(m));
    m.type = FL_WIRE_RESULT;
    m.u.result.id = (char *)c->id;
    m.u.result.rollout = (char *)c->rollout;
    m.u.result.target = (char *)c->target;
    m.u.result.action = "apply";
    m.u.result.status = "ok";
    fl_version_set_u64(&m.u.result.version, 1);
    m.u.result.duration_ms = 0;
    if (fl_wire_encode(&out, &m, NULL) != 0)
        s_die("encode", "result");
    if (a->nout == 0 &&
        fl_link_send(a->link, NULL, 0, out.data, out.len, NULL) == 0) {
        fl_buf_release(&out);
        return;
    }
    if (a->nout == a->capout) {
        a->capout = a->capout ? a->capout * 2 : 64;
        a->out = fl_reallocarray(a->out, a->capout, sizeof(*a->out));
    }
    a->out[a->nout++] = out;
}

static void
s_flush(s_agent *a)
{
    size_t i = 0;

    while (i < a->nout && fl_link_send(a->link, NULL, 0, a->out[i].data,
                                       a->out[i].len, NULL) == 0)
        fl_buf_release(&a->out[i++]);
    memmove(a->out, a->out + i, (a->nout - i) * sizeof(*a->out));
    a->nout -= i;
}

/* One message to a simulated agent; the number of commands answered. */
static size_t
s_agent_message(s_agent *a, const fl_link_msg_t *lm)
{
    fl_wire_msg_t m;
    size_t answered = 0;

    if (fl_wire_decode(&m, lm->data, lm->len, NULL) != 0)
        return 0;
    switch (m.type) {
    case FL_WIRE_WELCOME:
        a->online = 1;
        break;
    case FL_WIRE_APPLY: {
        s_cmd c;

        snprintf(c.id, sizeof(c.id), "%s", m.u.command.id);
        snprintf(c.rollout, sizeof(c.rollout), "%s", m.u.command.rollout);
        snprintf(c.target, sizeof(c.target), "%s", m.u.command.target);
        if (a->have_bundle) {
            s_result(a, &c);
            answered++;
            break;
        }
        if (a->nwaiting == a->capwaiting) {
            a->capwaiting = a->capwaiting ? a->capwaiting * 2 : 64;
            a->waiting = fl_reallocarray(a->waiting, a->capwaiting,
                                         sizeof(*a->waiting));
        }
        a->waiting[a->nwaiting++] = c;
        if (!a->asked) {
            fl_wire_msg_t r;
            memset(&r, 0, sizeof(r));
            r.type = FL_WIRE_BUNDLE_REQUEST;
            r.u.bundle_request.bundle_id = m.u.command.bundle_id;
            s_send(a->link, &r);
            a->asked = 1;
        }
        break;
    }
    case FL_WIRE_BUNDLE:
        a->have_bundle = 1;
        for (size_t i = 0; i < a->nwaiting; i++)
            s_result(a, &a->waiting[i]);
        answered += a->nwaiting;
        a->nwaiting = 0;
        break;
    default:
        break;
    }
    fl_wire_msg_release(&m);
    return answered;
}

static void
s_agents_connect(s_agent *ag, const char *endpoint, int ntargets)
{
    fl_link_opts_t o = FL_LINK_OPTS_INIT;
    fl_error_t err = FL_ERROR_INIT;

    o.linger_ms = 0;
    o.sndhwm = o.rcvhwm = 100000;
    for (int i = 0; i < AGENTS; i++) {
        memset(&ag[i], 0, sizeof(ag[i]));
        snprintf(ag[i].name, sizeof(ag[i].name), "a%02d", i);
        s_check(fl_link_client(&ag[i].link, endpoint, s_certs[i],
                               s_server_key, &o, 0, &err), "connect", &err);
    }
    (void)ntargets;
}

static void
s_agents_close(s_agent *ag)
{
    for (int i = 0; i < AGENTS; i++) {
        fl_link_close(&ag[i].link);
        for (size_t k = 0; k < ag[i].nout; k++)
            fl_buf_release(&ag[i].out[k]);
        free(ag[i].out);
        free(ag[i].waiting);
    }
}

static void
s_hello(s_agent *a, int first, int n)
{
    fl_wire_msg_t m;
    fl_wire_target_t *t = fl_calloc((size_t)n + 1, sizeof(*t));
    char **names = fl_calloc((size_t)n + 1, sizeof(char *));
    static fl_codec_kv_t label = {"kind", "bench"};

    for (int i = 0; i < n; i++) {
        names[i] = fl_asprintf("%s/t%06d", a->name, first + i);
        t[i].target = names[i];
        t[i].kind = "database";
        t[i].environment = "bench";
        t[i].labels = &label;
        t[i].nlabels = 1;
        t[i].known = 1;
    }
    memset(&m, 0, sizeof(m));
    m.type = FL_WIRE_HELLO;
    m.u.hello.agent = a->name;
    m.u.hello.agent_version = "bench";
    m.u.hello.targets = t;
    m.u.hello.ntargets = (size_t)n;
    s_send(a->link, &m);
    for (int i = 0; i < n; i++)
        free(names[i]);
    free(names);
    free(t);
}

/* Polls every agent (and the operator) once for up to ms. */
static size_t
s_pump(s_agent *ag, fl_link_t *op, int64_t ms, fl_wire_msg_t *reply)
{
    fl_poll_item_t it[AGENTS + 1];
    size_t answered = 0;

    for (int i = 0; i < AGENTS; i++)
        it[i] = (fl_poll_item_t){ag[i].link, -1, 0, 0};
    it[AGENTS] = (fl_poll_item_t){op, -1, 0, 0};
    if (fl_link_poll(it, op ? AGENTS + 1 : AGENTS, ms, NULL) < 0)
        s_die("poll", NULL);
    for (int i = 0; i < AGENTS; i++) {
        fl_link_msg_t m;

        s_flush(&ag[i]);
        while (it[i].ready && fl_link_recv(ag[i].link, &m, NULL) == 1) {
            answered += s_agent_message(&ag[i], &m);
            fl_link_msg_release(&m);
        }
        s_flush(&ag[i]);
    }
    if (op != NULL && reply != NULL) {
        fl_link_msg_t m;
        while (fl_link_recv(op, &m, NULL) == 1) {
            fl_wire_msg_t w;
            if (fl_wire_decode(&w, m.data, m.len, NULL) == 0) {
                if (w.type == FL_WIRE_CONTROL_REPLY && reply->type == 0)
                    *reply = w;
                else
                    fl_wire_msg_release(&w);
            }
            fl_link_msg_release(&m);
        }
    }
    return answered;
}

static void
s_heartbeats(s_agent *ag)
{
    fl_wire_msg_t m;

    memset(&m, 0, sizeof(m));
    m.type = FL_WIRE_HEARTBEAT;
    for (int i = 0; i < AGENTS; i++)
        if (ag[i].online)
            s_send(ag[i].link, &m);
}

static int s_reqs;

/* Sends a control request; the reply comes through s_pump. */
static void
s_request(fl_link_t *op, const char *command, fl_codec_kv_t *args,
          size_t nargs, const unsigned char *data, size_t len)
{
    fl_wire_msg_t m;
    char id[16];

    snprintf(id, sizeof(id), "r%d", ++s_reqs);
    memset(&m, 0, sizeof(m));
    m.type = FL_WIRE_CONTROL_REQUEST;
    m.u.control_request.id = id;
    m.u.control_request.command = (char *)command;
    m.u.control_request.args = args;
    m.u.control_request.nargs = nargs;
    m.u.control_request.data = (unsigned char *)data;
    m.u.control_request.len = len;
    s_send(op, &m);
}

/* Waits for the reply to the request just sent; its payload as JSON. */
static json_t *
s_reply(s_agent *ag, fl_link_t *op)
{
    fl_wire_msg_t reply;
    json_t *j = NULL;
    int64_t deadline = fl_clock_ms() + 600000, hb = fl_clock_ms();

    memset(&reply, 0, sizeof(reply));
    while (reply.type == 0) {
        if (fl_clock_ms() > deadline)
            s_die("control", "no reply within 10 minutes");
        s_pump(ag, op, 20, &reply);
        if (fl_clock_ms() - hb > 300) {
            s_heartbeats(ag);
            hb = fl_clock_ms();
        }
    }
    if (reply.u.control_reply.status != 0)
        s_die("control request refused", reply.u.control_reply.payload);
    j = json_loads(reply.u.control_reply.payload, 0, NULL);
    fl_wire_msg_release(&reply);
    return j;
}

static long
s_int(const json_t *j, const char *key)
{
    return (long)json_integer_value(json_object_get(j, key));
}

/* The bare ROUTER of the transport baseline, on its own thread. */
typedef struct {
    fl_link_t *server;
    int n;
    double seconds;
} s_bare;

static void *
s_bare_run(void *arg)
{
    s_bare *b = arg;
    unsigned char rids[AGENTS][FL_LINK_PEER_MAX];
    size_t ridlen[AGENTS];
    int known = 0, sent = 0, got = 0;
    double t0 = 0;

    /* Each agent says one word first, so the ROUTER knows its id. */
    while (known < AGENTS) {
        fl_poll_item_t it = {b->server, -1, 0, 0};
        fl_link_msg_t m;

        FL_IGNORE(fl_link_poll(&it, 1, 100, NULL));
        while (fl_link_recv(b->server, &m, NULL) == 1) {
            memcpy(rids[known], m.peer, m.peer_len);
            ridlen[known++] = m.peer_len;
            fl_link_msg_release(&m);
        }
    }
    t0 = fl_bench_now();
    while (got < b->n) {
        fl_poll_item_t it = {b->server, -1, 0, 0};
        fl_link_msg_t m;

        while (sent < b->n && sent - got < AGENTS * 1000) {
            fl_wire_msg_t c;
            fl_buf_t out = FL_BUF_INIT(0);
            char id[40], target[64];

            snprintf(id, sizeof(id), "%032x", sent);
            snprintf(target, sizeof(target), "a%02d/t%06d", sent % AGENTS,
                     sent);
            memset(&c, 0, sizeof(c));
            c.type = FL_WIRE_APPLY;
            c.u.command = (fl_wire_command_t){id, "baseline", target,
                                              "0123456789abcdef0123456789abcdef",
                                              FL_VERSION_INIT, NULL, 0, NULL};
            if (fl_wire_encode(&out, &c, NULL) != 0)
                s_die("encode", "command");
            if (fl_link_send(b->server, rids[sent % AGENTS],
                             ridlen[sent % AGENTS], out.data, out.len,
                             NULL) != 0) {
                fl_buf_release(&out);
                break;
            }
            fl_buf_release(&out);
            sent++;
        }
        FL_IGNORE(fl_link_poll(&it, 1, 10, NULL));
        while (fl_link_recv(b->server, &m, NULL) == 1) {
            fl_wire_msg_t r;
            if (fl_wire_decode(&r, m.data, m.len, NULL) == 0) {
                got += r.type == FL_WIRE_RESULT;
                fl_wire_msg_release(&r);
            }
            fl_link_msg_release(&m);
        }
    }
    b->seconds = fl_bench_now() - t0;
    return NULL;
}

static double
s_transport_baseline(int n)
{
    fl_link_opts_t o = FL_LINK_OPTS_INIT;
    fl_certset_t *keys = fl_certset_new();
    fl_zap_t *zap = NULL;
    fl_cert_t *coord = NULL;
    fl_error_t err = FL_ERROR_INIT;
    s_bare b = {NULL, n, 0};
    s_agent ag[AGENTS];
    pthread_t th;
    char *p = s_path("coord.cert_secret");
    int answered = 0;

    s_check(fl_cert_load_secret(&coord, p, &err), "certificate", &err);
    free(p);
    for (int i = 0; i < AGENTS; i++)
        fl_certset_add(keys, fl_cert_public(s_certs[i]), "agent");
    s_check(fl_zap_start(&zap, &err), "zap", &err);
    fl_zap_set_keys(zap, "bench", keys);
    o.linger_ms = 0;
    o.sndhwm = o.rcvhwm = 100000;
    s_check(fl_link_server(&b.server, "tcp://127.0.0.1:*", coord, "bench", &o,
                           &err), "bind", &err);
    s_agents_connect(ag, fl_link_endpoint(b.server), 0);
    for (int i = 0; i < AGENTS; i++) {
        fl_wire_msg_t m;
        memset(&m, 0, sizeof(m));
        m.type = FL_WIRE_HEARTBEAT;
        s_send(ag[i].link, &m);
        ag[i].have_bundle = 1;
    }
    pthread_create(&th, NULL, s_bare_run, &b);
    while (answered < n)
        answered += (int)s_pump(ag, NULL, 10, NULL);
    pthread_join(th, NULL);
    s_agents_close(ag);
    fl_link_close(&b.server);
    fl_zap_stop(&zap);
    fl_certset_destroy(&keys);
    fl_cert_destroy(&coord);
    return b.seconds;
}

static double
s_write_baseline(PGconn *c, int n)
{
    fl_buf_t rows = FL_BUF_INIT(0);
    double t0;

    s_sql(c, "SET client_min_messages = warning");
    s_sql(c, "DROP TABLE IF EXISTS bench_cmd; CREATE TABLE bench_cmd (id text "
             "PRIMARY KEY, dispatch_id text, rollout text, target text, "
             "agent_key text, action text, status text DEFAULT 'pending', "
             "version bigint)");
    for (int i = 0; i < n; i++)
        fl_buf_addf(&rows, "%032x\td\td\ta%02d/t%06d\tkey\tapply\n", i,
                    i % AGENTS, i);
    t0 = fl_bench_now();
    s_sql(c, "BEGIN");
    s_sql(c, "COPY bench_cmd (id, dispatch_id, rollout, target, agent_key, "
             "action) FROM STDIN");
    if (PQputCopyData(c, rows.data, (int)rows.len) != 1 ||
        PQputCopyEnd(c, NULL) != 1)
        s_die("copy", PQerrorMessage(c));
    PQclear(PQgetResult(c));
    s_sql(c, "COMMIT");
    fl_buf_reset(&rows);
    for (int i = 0; i < n; i++)
        fl_buf_addf(&rows, "%032x\tok\t1\n", i);
    s_sql(c, "BEGIN; CREATE TEMP TABLE r (id text, status text, version "
             "bigint) ON COMMIT DROP");
    s_sql(c, "COPY r FROM STDIN");
    if (PQputCopyData(c, rows.data, (int)rows.len) != 1 ||
        PQputCopyEnd(c, NULL) != 1)
        s_die("copy", PQerrorMessage(c));
    PQclear(PQgetResult(c));
    s_sql(c, "UPDATE bench_cmd b SET status = r.status, version = r.version "
             "FROM r WHERE b.id = r.id; COMMIT");
    fl_buf_release(&rows);
    return fl_bench_now() - t0;
}

static char *
s_field(const char *line, const char *key)
{
    char *needle = fl_asprintf("\"%s\":\"", key);
    const char *p = strstr(line, needle), *e = NULL;
    char *v = NULL;

    if (p != NULL && (e = strchr(p + strlen(needle), '"')) != NULL)
        v = fl_strndup(p + strlen(needle), (size_t)(e - p - strlen(needle)));
    free(needle);
    return v;
}

/* What one size measured, for the growth between sizes. */
typedef struct {
    int n;
    double seconds;
    long peak_kb;
} s_size;

static void
s_run(s_size *out, const char *bindir, PGconn *admin, int n,
      const unsigned char *bundle, size_t blen)
{
    char db[64], *yaml = NULL, *log = NULL, *text = NULL, *bin = NULL;
    char *agent_ep = NULL, *control_ep = NULL;
    s_agent ag[AGENTS];
    fl_link_t *op = NULL;
    fl_link_opts_t o = FL_LINK_OPTS_INIT;
    fl_error_t err = FL_ERROR_INIT;
    json_t *j = NULL;
    long idle_kb, base_kb, before_kb, peak_kb, tx0, rows0, tx1, rows1;
    double t0, seconds, transport, writes;
    pid_t pid;
    char *sql = NULL, *id = NULL;
    int64_t cursor = 0;

    snprintf(db, sizeof(db), "bench_fleet_%d", n);
    sql = fl_asprintf("DROP DATABASE IF EXISTS %s", db);
    s_sql(admin, sql);
    free(sql);
    sql = fl_asprintf("CREATE DATABASE %s", db);
    s_sql(admin, sql);
    free(sql);
    yaml = s_path("coordinator.yaml");
    log = fl_asprintf("%s/coordinator-%d.log", s_dir, n);
    text = fl_asprintf("agent_endpoint: tcp://127.0.0.1:*\n"
                       "control_endpoint: tcp://127.0.0.1:*\n"
                       "state_dsn: \"dbname=%s\"\n"
                       "cert: %s/coord.cert_secret\n"
                       "agents_dir: %s/agents\n"
                       "operators_dir: %s/operators\n"
                       "trust: %s/trust\n"
                       "log_file: %s\n"
                       "log_level: notice\n"
                       "heartbeat_timeout: 60s\n",
                       db, s_dir, s_dir, s_dir, s_dir, log);
    s_write(yaml, text);
    free(text);
    bin = fl_asprintf("%s/flotilla-coordinator", bindir);
    pid = fork();
    if (pid == 0) {
        /* Its log goes to log_file; the terminal keeps the table. */
        int fd = open("/dev/null", O_WRONLY);
        if (fd >= 0) {
            dup2(fd, STDOUT_FILENO);
            dup2(fd, STDERR_FILENO);
        }
        execl(bin, bin, "--config", yaml, (char *)NULL);
        _exit(127);
    }
    for (int tries = 0; agent_ep == NULL; tries++) {
        FILE *f = fopen(log, "r");
        char line[2048];
        while (f != NULL && fgets(line, sizeof(line), f) != NULL)
            if (strstr(line, "\"message\":\"ready:") != NULL) {
                agent_ep = s_field(line, "agent_endpoint");
                control_ep = s_field(line, "control_endpoint");
            }
        if (f != NULL)
            fclose(f);
        if (tries > 3000)
            s_die("coordinator", "not ready within 30 s");
        if (agent_ep == NULL)
            fl_clock_sleep_ms(10);
    }
    idle_kb = s_status_kb(pid, "VmRSS:");
    s_agents_connect(ag, agent_ep, n / AGENTS);
    o.linger_ms = 0;
    o.max_message = FL_WIRE_MAX_SIZE;
    s_check(fl_link_client(&op, control_ep, s_operator, s_server_key, &o, 0,
                           &err), "operator", &err);
    /* The baseline of memory per target: every connection made (CURVE
     * handshakes and their buffers), no target known yet. */
    for (int64_t until = fl_clock_ms() + 1000; fl_clock_ms() < until;)
        s_pump(ag, NULL, 20, NULL);
    base_kb = s_status_kb(pid, "VmRSS:");
    for (int i = 0; i < AGENTS; i++)
        s_hello(&ag[i], i * (n / AGENTS), n / AGENTS);
    /* Every agent online, every target written. */
    for (;;) {
        int online = 0;
        s_pump(ag, NULL, 20, NULL);
        for (int i = 0; i < AGENTS; i++)
            online += ag[i].online;
        if (online < AGENTS)
            continue;
        s_request(op, "status", NULL, 0, NULL, 0);
        j = s_reply(ag, op);
        if (s_int(j, "targets") == n && s_int(j, "store_backlog") == 0) {
            tx0 = s_int(j, "store_transactions");
            rows0 = s_int(j, "store_rows");
            json_decref(j);
            break;
        }
        json_decref(j);
    }
    before_kb = s_status_kb(pid, "VmRSS:");
    {
        fl_codec_kv_t args[1] = {{"selector", ""}};
        t0 = fl_bench_now();
        s_request(op, "dispatch", args, 1, bundle, blen);
        j = s_reply(ag, op);
        id = fl_strdup(json_string_value(json_object_get(j, "id")));
        json_decref(j);
    }
    for (;;) {
        char after[24];
        fl_codec_kv_t args[3] = {{"id", id}, {"after", after},
                                 {"timeout_ms", "10000"}};
        snprintf(after, sizeof(after), "%lld", (long long)cursor);
        s_request(op, "dispatch.wait", args, 3, NULL, 0);
        j = s_reply(ag, op);
        cursor = json_integer_value(json_object_get(j, "cursor"));
        if (strcmp(json_string_value(json_object_get(j, "status")), "done") ==
                0 &&
            s_int(j, "ok") == n) {
            json_decref(j);
            break;
        }
        if (s_int(j, "failed") + s_int(j, "refused") > 0)
            s_die("dispatch", "some targets did not succeed");
        json_decref(j);
    }
    seconds = fl_bench_now() - t0;
    peak_kb = s_status_kb(pid, "VmHWM:");
    s_request(op, "status", NULL, 0, NULL, 0);
    j = s_reply(ag, op);
    tx1 = s_int(j, "store_transactions");
    rows1 = s_int(j, "store_rows");
    json_decref(j);
    kill(pid, SIGTERM);
    waitpid(pid, NULL, 0);
    fl_link_close(&op);
    s_agents_close(ag);
    transport = s_transport_baseline(n);
    {
        char *ci = fl_asprintf("dbname=%s", db);
        PGconn *c = PQconnectdb(ci);
        if (PQstatus(c) != CONNECTION_OK)
            s_die(ci, PQerrorMessage(c));
        writes = s_write_baseline(c, n);
        PQfinish(c);
        free(ci);
    }
    printf("%8d %8.3f %7.1f %9.3f %7.3f %6.2fx %6.1f %6.1f %7.1f %7.1f %6.0f"
           " %4ld %8ld\n",
           n, seconds, seconds * 1e6 / n, transport, writes,
           seconds / (transport + writes), idle_kb / 1024.0,
           base_kb / 1024.0, before_kb / 1024.0, peak_kb / 1024.0,
           (double)(peak_kb - base_kb) * 1024.0 / n, tx1 - tx0,
           rows1 - rows0);
    out->n = n;
    out->seconds = seconds;
    out->peak_kb = peak_kb;
    fflush(stdout);
    free(id);
    free(agent_ep);
    free(control_ep);
    free(bin);
    free(log);
    free(yaml);
}

int
main(int argc, char **argv)
{
    static const int defaults[] = {1000, 10000, 100000};
    PGconn *admin = NULL;
    unsigned char *bundle = NULL;
    size_t blen = 0;
    char tmpl[] = "/tmp/flotilla-bench-fleet.XXXXXX";
    fl_error_t err = FL_ERROR_INIT;
    s_size *sizes = NULL;
    int nsizes = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: bench_fleet BIN_DIR [N...]\n");
        return 2;
    }
    s_check(fl_transport_init(&err), "transport", &err);
    s_dir = mkdtemp(tmpl);
    if (s_dir == NULL)
        s_die("mkdtemp", strerror(errno));
    chmod(s_dir, 0700);
    s_setup(&bundle, &blen);
    admin = PQconnectdb("dbname=postgres options='-c client_min_messages="
                        "warning'");
    if (PQstatus(admin) != CONNECTION_OK)
        s_die("postgres", PQerrorMessage(admin));
    printf("%8s %8s %7s %9s %7s %7s %6s %6s %7s %7s %6s %4s %8s\n",
           "targets", "seconds", "us/tgt", "transport", "writes", "ratio",
           "idle", "conn", "known", "peak", "B/tgt", "tx", "rows");
    nsizes = argc > 2 ? argc - 2 : 3;
    sizes = fl_calloc((size_t)nsizes, sizeof(*sizes));
    for (int i = 0; i < nsizes; i++)
        s_run(&sizes[i], argv[1], admin,
              argc > 2 ? (int)strtol(argv[i + 2], NULL, 10) : defaults[i],
              bundle, blen);
    for (int i = 1; i < nsizes; i++) {
        double dn = sizes[i].n - sizes[i - 1].n;
        if (dn > 0)
            printf("from %d to %d targets: %.1f us and %.0f bytes of peak "
                   "RSS per added target\n", sizes[i - 1].n, sizes[i].n,
                   (sizes[i].seconds - sizes[i - 1].seconds) * 1e6 / dn,
                   (double)(sizes[i].peak_kb - sizes[i - 1].peak_kb) *
                       1024.0 / dn);
    }
    free(sizes);
    PQfinish(admin);
    free(bundle);
    for (int i = 0; i < AGENTS; i++)
        fl_cert_destroy(&s_certs[i]);
    fl_cert_destroy(&s_operator);
    {
        char *cmd = fl_asprintf("rm -rf '%s'", s_dir);
        if (system(cmd) != 0)
            fprintf(stderr, "bench_fleet: could not remove %s\n", s_dir);
        free(cmd);
    }
    return 0;
}
