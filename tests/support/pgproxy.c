/*
 * pgproxy.c - a proxy that cuts PostgreSQL connections at the worst
 * moment (see pgproxy.h).
 *
 * One thread polls the listening socket, a wake-up pipe and both sides of
 * every connection.  The client's bytes go to the server as they come;
 * the server's are parsed into messages (a type byte and a length that
 * counts itself: every message a server sends after the startup packet
 * has that form, and on a Unix socket there is no SSL or GSS answer
 * before it), so that a cut (or a hold) falls between two messages.
 * Writes block: the tests move little data.  Every descriptor is
 * close-on-exec: a process the test starts while a connection is open
 * must not keep the client's end of it open past the cut.
 */
#include "pgproxy.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"

#define P_MAX_CONNS 32
#define P_PORT 5999

typedef struct {
    int cfd, sfd;            /* client, server; -1 when closed */
    unsigned char *buf;      /* the server's bytes not yet forwarded */
    size_t len, cap;
} p_conn_t;

struct fl_test_proxy {
    char *dir;
    char *path;              /* the listening socket */
    char *conninfo;
    char server[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int lfd;
    int wake[2];
    pthread_t thread;
    pthread_mutex_t lock;
    int stop;                /* guarded by lock, as is all up to conns */
    char tag[32];
    int n, before, seen, cut, refuse;
    int hold;                /* the armed event holds instead of cutting */
    int held;                /* the connection a hold keeps, or -1 */
    int release;             /* fl_test_proxy_release asked */
    int stall;               /* accept nothing */
    int frozen;              /* nor read anything */
    unsigned asked, taken;   /* changes of the two, and those the
                                proxy's thread acts on (p_main) */
    int ended;               /* connections ended by a side (p_main) */
    pthread_cond_t took;
    p_conn_t conns[P_MAX_CONNS];
};

static int
p_write_all(int fd, const unsigned char *b, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, b, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static void
p_close(p_conn_t *c)
{
    if (c->cfd >= 0)
        close(c->cfd);
    if (c->sfd >= 0)
        close(c->sfd);
    c->cfd = c->sfd = -1;
    free(c->buf);
    c->buf = NULL;
    c->len = c->cap = 0;
}

/* Closes every connection: the cut. */
static void
p_cut_all(fl_test_proxy_t *p)
{
    for (int i = 0; i < P_MAX_CONNS; i++)
        if (p->conns[i].cfd >= 0)
            p_close(&p->conns[i]);
}

/*
 * Forwards c's complete server messages; returns 1 when they made the
 * armed cut happen (every connection is then closed).  A connection a
 * hold keeps forwards nothing.
 */
static int
p_forward(fl_test_proxy_t *p, p_conn_t *c)
{
    size_t at = 0;
    int held;

    pthread_mutex_lock(&p->lock);
    held = p->held == (int)(c - p->conns);
    pthread_mutex_unlock(&p->lock);
    while (!held && c->len - at >= 5) {
        const unsigned char *m = c->buf + at;
        uint32_t len = ((uint32_t)m[1] << 24) | ((uint32_t)m[2] << 16) |
                       ((uint32_t)m[3] << 8) | (uint32_t)m[4];
        size_t total = 1 + (size_t)len;
        int cut = 0, before = 0;

        if (len < 4 || c->len - at < total)
            break;
        if (m[0] == 'C' || m[0] == 'Z') {
            pthread_mutex_lock(&p->lock);
            if (p->n > 0 && !p->cut &&
                (p->tag[0] == '\0'
                     ? m[0] == 'Z'
                     : m[0] == 'C' && len - 4 == strlen(p->tag) + 1 &&
                           memcmp(m + 5, p->tag, len - 4) == 0) &&
                ++p->seen == p->n) {
                p->cut = 1;
                if (p->hold) {
                    held = 1;
                    p->held = (int)(c - p->conns);
                } else {
                    cut = 1;
                    before = p->before;
                }
            }
            pthread_mutex_unlock(&p->lock);
        }
        if (held)
            break;
        if (cut) {
            if (!before)
                (void)p_write_all(c->cfd, m, total);
            p_cut_all(p);
            return 1;
        }
        if (p_write_all(c->cfd, m, total) != 0) {
            p_close(c);
            return 0;
        }
        at += total;
    }
    memmove(c->buf, c->buf + at, c->len - at);
    c->len -= at;
    return 0;
}

/* What fl_test_proxy_release asked, on the proxy's thread. */
static void
p_release(fl_test_proxy_t *p)
{
    int held = -1;

    pthread_mutex_lock(&p->lock);
    if (p->release) {
        held = p->held;
        p->held = -1;
        p->release = 0;
    }
    pthread_mutex_unlock(&p->lock);
    if (held >= 0 && p->conns[held].cfd >= 0)
        (void)p_forward(p, &p->conns[held]);
}

static void
p_accept(fl_test_proxy_t *p)
{
    struct sockaddr_un a;
    int cfd = accept4(p->lfd, NULL, NULL, SOCK_CLOEXEC), sfd = -1;
    p_conn_t *c = NULL;

    int refuse;

    if (cfd < 0)
        return;
    pthread_mutex_lock(&p->lock);
    refuse = p->cut && p->refuse;
    pthread_mutex_unlock(&p->lock);
    if (refuse) {
        close(cfd);
        return;
    }
    pthread_mutex_lock(&p->lock);
    for (int i = 0; i < P_MAX_CONNS && c == NULL; i++)
        if (p->conns[i].cfd < 0 && p->held != i)
            c = &p->conns[i];
    pthread_mutex_unlock(&p->lock);
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    memcpy(a.sun_path, p->server, sizeof(a.sun_path));
    if (c == NULL ||
        (sfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        connect(sfd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        if (sfd >= 0)
            close(sfd);
        close(cfd);
        return;
    }
    c->cfd = cfd;
    c->sfd = sfd;
}

static void *
p_main(void *arg)
{
    fl_test_proxy_t *p = arg;
    unsigned char chunk[65536];

    for (;;) {
        struct pollfd fds[2 + 2 * P_MAX_CONNS];
        int who[2 + 2 * P_MAX_CONNS];
        nfds_t n = 0;
        int stop, stall, frozen;

        pthread_mutex_lock(&p->lock);
        stop = p->stop;
        stall = p->stall || p->frozen;
        frozen = p->frozen;
        p->taken = p->asked;
        pthread_cond_broadcast(&p->took);
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
        fds[n] = (struct pollfd){p->wake[0], POLLIN, 0};
        who[n++] = -1;
        if (!stall) {
            fds[n] = (struct pollfd){p->lfd, POLLIN, 0};
            who[n++] = -2;
        }
        for (int i = 0; i < P_MAX_CONNS && !frozen; i++) {
            if (p->conns[i].cfd < 0)
                continue;
            fds[n] = (struct pollfd){p->conns[i].cfd, POLLIN, 0};
            who[n++] = 2 * i;
            fds[n] = (struct pollfd){p->conns[i].sfd, POLLIN, 0};
            who[n++] = 2 * i + 1;
        }
        if (poll(fds, n, 1000) <= 0)
            continue;
        for (nfds_t k = 0; k < n; k++) {
            p_conn_t *c = NULL;
            ssize_t r;

            if (fds[k].revents == 0)
                continue;
            if (who[k] == -1) {
                if (read(p->wake[0], chunk, sizeof(chunk)) < 0)
                    continue;
                p_release(p);
                continue;
            }
            if (who[k] == -2) {
                p_accept(p);
                continue;
            }
            c = &p->conns[who[k] / 2];
            if (c->cfd < 0)
                continue; /* closed by a cut this round */
            r = read(who[k] % 2 ? c->sfd : c->cfd, chunk, sizeof(chunk));
            if (r <= 0) {
                p_close(c);
                pthread_mutex_lock(&p->lock);
                p->ended++;
                pthread_mutex_unlock(&p->lock);
                continue;
            }
            if (who[k] % 2 == 0) {
                if (p_write_all(c->sfd, chunk, (size_t)r) != 0)
                    p_close(c);
                continue;
            }
            if (c->len + (size_t)r > c->cap) {
                c->cap = (c->len + (size_t)r) * 2;
                c->buf = fl_realloc(c->buf, c->cap);
            }
            memcpy(c->buf + c->len, chunk, (size_t)r);
            c->len += (size_t)r;
            (void)p_forward(p, c);
        }
    }
    p_cut_all(p);
    return NULL;
}

fl_test_proxy_t *
fl_test_proxy_start(void)
{
    return fl_test_proxy_start_to(getenv("PGHOST"), getenv("PGPORT"));
}

fl_test_proxy_t *
fl_test_proxy_start_to(const char *host, const char *port)
{
    fl_test_proxy_t *p = fl_calloc(1, sizeof(*p));
    struct sockaddr_un a;
    char tmpl[] = "/tmp/flproxy.XXXXXX";

    if (host == NULL || host[0] != '/' || port == NULL)
        fail_msg("the proxy needs a server's socket directory and port "
                 "(PGHOST and PGPORT)");
    if ((size_t)snprintf(p->server, sizeof(p->server), "%s/.s.PGSQL.%s",
                         host, port) >= sizeof(p->server))
        fail_msg("socket path too long: %s", host);
    if (mkdtemp(tmpl) == NULL)
        fail_msg("mkdtemp: %s", strerror(errno));
    p->dir = fl_strdup(tmpl);
    p->path = fl_asprintf("%s/.s.PGSQL.%d", p->dir, P_PORT);
    p->conninfo = fl_asprintf("host=%s port=%d sslmode=disable "
                              "gssencmode=disable", p->dir, P_PORT);
    for (int i = 0; i < P_MAX_CONNS; i++)
        p->conns[i].cfd = p->conns[i].sfd = -1;
    p->held = -1;
    memset(&a, 0, sizeof(a));
    a.sun_family = AF_UNIX;
    snprintf(a.sun_path, sizeof(a.sun_path), "%s", p->path);
    if ((p->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
        bind(p->lfd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(p->lfd, 16) != 0 || pipe2(p->wake, O_CLOEXEC) != 0)
        fail_msg("proxy socket %s: %s", p->path, strerror(errno));
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->took, NULL);
    if (pthread_create(&p->thread, NULL, p_main, p) != 0)
        fail_msg("proxy thread: %s", strerror(errno));
    return p;
}

const char *
fl_test_proxy_conninfo(const fl_test_proxy_t *p)
{
    return p->conninfo;
}

void
fl_test_proxy_arm(fl_test_proxy_t *p, const char *tag, int n, int before)
{
    pthread_mutex_lock(&p->lock);
    snprintf(p->tag, sizeof(p->tag), "%s", tag);
    p->n = n;
    p->before = before;
    p->seen = 0;
    p->cut = 0;
    p->hold = 0;
    pthread_mutex_unlock(&p->lock);
}

void
fl_test_proxy_hold(fl_test_proxy_t *p, const char *tag, int n)
{
    fl_test_proxy_arm(p, tag, n, 0);
    pthread_mutex_lock(&p->lock);
    p->hold = 1;
    pthread_mutex_unlock(&p->lock);
}

void
fl_test_proxy_release(fl_test_proxy_t *p)
{
    pthread_mutex_lock(&p->lock);
    p->release = 1;
    pthread_mutex_unlock(&p->lock);
    if (write(p->wake[1], "x", 1) != 1)
        fail_msg("proxy wake-up: %s", strerror(errno));
}

/*
 * Sets *flag to value and returns once the proxy's thread acts on it:
 * after it, nothing is accepted (or read) that the change forbids.
 */
static void
p_change(fl_test_proxy_t *p, int *flag, int value)
{
    unsigned want;

    pthread_mutex_lock(&p->lock);
    *flag = value;
    want = ++p->asked;
    pthread_mutex_unlock(&p->lock);
    if (write(p->wake[1], "x", 1) != 1)
        fail_msg("proxy wake-up: %s", strerror(errno));
    pthread_mutex_lock(&p->lock);
    while ((int)(p->taken - want) < 0)
        pthread_cond_wait(&p->took, &p->lock);
    pthread_mutex_unlock(&p->lock);
}

void
fl_test_proxy_stall(fl_test_proxy_t *p, int stall)
{
    p_change(p, &p->stall, stall);
}

void
fl_test_proxy_freeze(fl_test_proxy_t *p, int freeze)
{
    p_change(p, &p->frozen, freeze);
}

int
fl_test_proxy_ended(fl_test_proxy_t *p)
{
    int n;

    pthread_mutex_lock(&p->lock);
    n = p->ended;
    pthread_mutex_unlock(&p->lock);
    return n;
}

void
fl_test_proxy_refuse_after_cut(fl_test_proxy_t *p, int refuse)
{
    pthread_mutex_lock(&p->lock);
    p->refuse = refuse;
    pthread_mutex_unlock(&p->lock);
}

int
fl_test_proxy_count(fl_test_proxy_t *p)
{
    int n;

    pthread_mutex_lock(&p->lock);
    n = p->seen;
    pthread_mutex_unlock(&p->lock);
    return n;
}

int
fl_test_proxy_cut(fl_test_proxy_t *p)
{
    int cut;

    pthread_mutex_lock(&p->lock);
    cut = p->cut;
    pthread_mutex_unlock(&p->lock);
    return cut;
}

void
fl_test_proxy_stop(fl_test_proxy_t **pp)
{
    fl_test_proxy_t *p = *pp;

    if (p == NULL)
        return;
    pthread_mutex_lock(&p->lock);
    p->stop = 1;
    pthread_mutex_unlock(&p->lock);
    if (write(p->wake[1], "x", 1) != 1)
        fail_msg("proxy wake-up: %s", strerror(errno));
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->took);
    pthread_mutex_destroy(&p->lock);
    close(p->lfd);
    close(p->wake[0]);
    close(p->wake[1]);
    unlink(p->path);
    rmdir(p->dir);
    free(p->path);
    free(p->dir);
    free(p->conninfo);
    free(p);
    *pp = NULL;
}
