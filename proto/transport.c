/*
 * transport.c - CurveZMQ certificates, ROUTER/DEALER links, the ZAP
 * handler, monitors and polling over libzmq and CZMQ (see transport.h).
 *
 * Why our own ZAP handler rather than CZMQ's zauth: zauth checks one
 * certificate store for every ZAP domain, so an operator's key would pass
 * the agents' handshake and the reverse; it logs refusals only in verbose
 * mode, through zsys; and its directory store reloads only when a file's
 * size or mtime changes (czmq #2113).  The handler below keeps one key set
 * per domain, in memory, replaced whole on reload through the actor's
 * pipe (so the set is never read and written by two threads), and logs
 * each refusal with address and key.  It is a CZMQ actor like zauth, and
 * speaks ZAP 1.0 (RFC 27) the same way.
 */
#include "proto/transport.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <czmq.h>

#include "common/alloc.h"
#include "common/file.h"
#include "common/log.h"
#include "common/map.h"
#include "common/perm.h"
#include "common/secret.h"

#define S_ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define S_CERT_MAX 65536
#define S_CERTSET_MAX 100000

_Static_assert(sizeof(zmq_msg_t) <= sizeof(((fl_link_msg_t *)0)->frame),
               "fl_link_msg_t.frame holds a zmq_msg_t");

/* CZMQ initialised, and logging nowhere (zsys_init sets stdout). */
static void
s_czmq_quiet(void)
{
    (void)zsys_init();
    zsys_set_logstream(NULL);
}

int
fl_transport_init(fl_error_t *err)
{
    /* The daemons install their own handlers: CZMQ must not.  Nor log
     * on stdout: what it would say (a line of a certificate it cannot
     * parse) may be a secret, and Flotilla says its own errors. */
    zsys_handler_set(NULL);
    s_czmq_quiet();
    if (!zmq_has("curve")) {
        FL_ERR(err, FL_EFAIL, "this libzmq was built without CURVE security");
        fl_error_set_hint(err, "Install Debian's libzmq5, which has it; "
                               "flotilla never talks to peers in clear.");
        return FL_EFAIL;
    }
    return 0;
}

int
fl_key_z85_valid(const char *s)
{
    uint8_t key[32];

    if (s == NULL || strlen(s) != FL_KEY_Z85_LEN)
        return 0;
    return zmq_z85_decode(key, s) != NULL;
}

/* Certificates. */

struct fl_cert {
    zcert_t *cert;
};

/*
 * Writes cert's file at path in zcert_save's format (with the secret key
 * when secret): a new file (or, with force, one renamed into place over
 * what is there), mode 0600, or 0644 for the public one.
 */
static int
s_cert_write(const char *path, zcert_t *cert, const char *name, int secret,
             int force, fl_error_t *err)
{
    fl_secret_t text = FL_SECRET_INIT;
    char when[32];
    time_t now = time(NULL);
    struct tm tm;
    int n, rc;

    strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", gmtime_r(&now, &tm));
    fl_secret_alloc(&text, 1024);
    n = snprintf((char *)text.data, text.len,
                 "#   ****  Generated on %s UTC by flotilla  ****\n"
                 "#   ZeroMQ CURVE %s Certificate\n"
                 "#   %s\n\n"
                 "%s%s%s"
                 "curve\n"
                 "    public-key = \"%s\"\n"
                 "%s%s%s",
                 when, secret ? "**Secret**" : "Public",
                 secret ? "DO NOT PROVIDE THIS FILE TO OTHER USERS nor "
                          "change its permissions."
                        : "Exchange securely, or use a secure mechanism to "
                          "verify the contents of this file after exchange.",
                 name ? "metadata\n    name = \"" : "", name ? name : "",
                 name ? "\"\n" : "", zcert_public_txt(cert),
                 secret ? "    secret-key = \"" : "",
                 secret ? zcert_secret_txt(cert) : "", secret ? "\"\n" : "");
    if (n < 0 || (size_t)n >= text.len) {
        fl_secret_release(&text);
        return FL_ERR(err, FL_EINVAL, "certificate name too long");
    }
    rc = secret ? fl_secret_save(path, text.data, (size_t)n, force, err)
                : fl_file_save_public(path, text.data, (size_t)n, force, err);
    fl_secret_release(&text);
    return rc;
}

int
fl_cert_generate(const char *prefix, const char *name, int force,
                 char public_out[FL_KEY_Z85_LEN + 1], fl_error_t *err)
{
    char *pub = fl_asprintf("%s.cert", prefix);
    char *sec = fl_asprintf("%s.cert_secret", prefix);
    zcert_t *cert = NULL;
    struct stat st;
    int rc = 0;

    if (strlen(sec) >= 250) {
        /* CZMQ builds the secret file's name in a 256-byte buffer. */
        rc = FL_ERR(err, FL_EINVAL, "certificate path \"%s\" is too long",
                    prefix);
        goto cleanup;
    }
    /* lstat: a link to nothing is there too (before, access followed it,
     * and the secret was written before the public one was refused). */
    if (!force && (lstat(pub, &st) == 0 || lstat(sec, &st) == 0)) {
        rc = FL_ERR(err, FL_ECONFLICT, "certificate \"%s\" already exists",
                    lstat(pub, &st) == 0 ? pub : sec);
        fl_error_set_hint(err, "Pass --force to replace it: every peer "
                               "that enrolled or pinned the old key must "
                               "then be given the new one.");
        goto cleanup;
    }
    if (name != NULL && name[strcspn(name, "\"\\")] != '\0') {
        rc = FL_ERR(err, FL_EINVAL, "a certificate's name may not hold '\"' "
                    "or '\\'");
        goto cleanup;
    }
    for (const char *c = name; c != NULL && *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            rc = FL_ERR(err, FL_EINVAL, "a certificate's name may not hold "
                        "control characters");
            goto cleanup;
        }
    cert = zcert_new();
    if (cert == NULL) {
        rc = FL_ERR(err, FL_EFAIL, "could not make a CURVE key pair");
        goto cleanup;
    }
    /*
     * Written here in zcert_save's format, each file through a new one
     * renamed into place (fl_secret_save): zcert_save opened the paths,
     * so --force wrote the secret key through a link there, or into a
     * file another user owned.
     */
    rc = s_cert_write(sec, cert, name, 1, force, err);
    if (rc == 0)
        rc = s_cert_write(pub, cert, name, 0, force, err);
    if (rc != 0)
        goto cleanup;
    memcpy(public_out, zcert_public_txt(cert), FL_KEY_Z85_LEN + 1);
cleanup:
    zcert_destroy(&cert);
    free(pub);
    free(sec);
    return rc;
}

/*
 * 0 when every line of text has a shape zcert_save writes: empty, a
 * comment, a section name at the margin, or four spaces, a name, " = "
 * and a quoted value under a section; else the number of the first line
 * that has not (counted from 1).
 */
static size_t
s_zpl_shape(const char *text)
{
    static const char name_chars[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-";
    size_t line = 0;
    int in_section = 0;

    for (const char *p = text; *p != '\0';) {
        size_t len = strcspn(p, "\n"), n;

        line++;
        if (len == 0 || *p == '#') {
            /* empty, or a comment */
        } else if ((n = strspn(p, name_chars)) == len) {
            in_section = 1;
        } else if (in_section && len > 4 && strncmp(p, "    ", 4) == 0 &&
                   (n = strspn(p + 4, name_chars)) > 0 &&
                   strncmp(p + 4 + n, " = \"", 4) == 0 &&
                   len >= 4 + n + 5 && p[len - 1] == '"' &&
                   memchr(p + 4 + n + 4, '"', len - (4 + n + 4) - 1) ==
                       NULL) {
            /* a key of the section */
        } else {
            return line;
        }
        p += len + (p[len] == '\n');
    }
    return 0;
}

/*
 * Parses certificate text (ZPL, CZMQ's zconfig format): the public key,
 * and the secret key when want_secret.  where names the file in errors.
 */
static int
s_cert_parse(zcert_t **out, char *name_out, size_t name_cap, const char *text,
             int want_secret, const char *where, fl_error_t *err)
{
    zconfig_t *root = NULL;
    const char *pub = NULL, *sec = NULL, *name = NULL;
    size_t bad;
    uint8_t pk[32];
    fl_secret_t sk = FL_SECRET_INIT;
    int rc = 0;

    fl_secret_alloc(&sk, 32);
    /* CZMQ's parser prints a line it cannot parse, quoted, on stdout (a
     * secret certificate's key, for one): it sees only text of the shape
     * zcert_save writes, and Flotilla says its own errors. */
    if ((bad = s_zpl_shape(text)) > 0) {
        rc = FL_ERR(err, FL_EINVAL, "\"%s\" is not a certificate: line %zu "
                    "is not a comment, a section or an indented key = "
                    "\"value\"", where, bad);
        goto cleanup;
    }
    root = zconfig_str_load(text);
    if (root == NULL) {
        rc = FL_ERR(err, FL_EINVAL, "\"%s\" is not a certificate: it does "
                    "not parse as ZPL", where);
        goto cleanup;
    }
    pub = zconfig_get(root, "/curve/public-key", NULL);
    sec = zconfig_get(root, "/curve/secret-key", NULL);
    name = zconfig_get(root, "/metadata/name", NULL);
    if (!fl_key_z85_valid(pub)) {
        rc = FL_ERR(err, FL_EINVAL, "\"%s\" is not a certificate: no valid "
                    "curve/public-key", where);
        goto cleanup;
    }
    if (want_secret && !fl_key_z85_valid(sec)) {
        rc = FL_ERR(err, FL_EINVAL, "\"%s\" holds no valid curve/secret-key",
                    where);
        fl_error_set_hint(err, "Give the secret certificate "
                               "(PREFIX.cert_secret), not the public one.");
        goto cleanup;
    }
    zmq_z85_decode(pk, pub);
    if (want_secret)
        zmq_z85_decode(sk.data, sec);
    if (name_out != NULL && name != NULL)
        snprintf(name_out, name_cap, "%s", name);
    if (out != NULL) {
        *out = zcert_new_from(pk, sk.data);
        if (*out == NULL)
            rc = FL_ERR(err, FL_EFAIL, "could not use the keys of \"%s\"",
                        where);
    }
cleanup:
    fl_secret_release(&sk);
    zconfig_destroy(&root);
    return rc;
}

/* Reads a public file of at most S_CERT_MAX bytes, not through a link. */
static int
s_read_small(char **out, const char *path, fl_error_t *err)
{
    unsigned char *data = NULL;
    size_t len = 0;
    int rc = fl_file_read(&data, &len, path, S_CERT_MAX, "certificate", err);

    *out = (char *)data;
    return rc;
}

int
fl_cert_load_secret(fl_cert_t **out, const char *path, fl_error_t *err)
{
    fl_secret_t raw = FL_SECRET_INIT, text = FL_SECRET_INIT;
    zcert_t *cert = NULL;
    int rc = 0;

    *out = NULL;
    if ((rc = fl_secret_load(&raw, path, S_CERT_MAX, err)) != 0)
        return rc;
    /* zconfig needs a NUL-terminated string (zeroed by the allocation). */
    fl_secret_alloc(&text, raw.len + 1);
    memcpy(text.data, raw.data, raw.len);
    rc = s_cert_parse(&cert, NULL, 0, (const char *)text.data, 1, path, err);
    fl_secret_release(&text);
    fl_secret_release(&raw);
    if (rc != 0)
        return rc;
    *out = fl_calloc(1, sizeof(**out));
    (*out)->cert = cert;
    return 0;
}

int
fl_cert_load_pinned(char out[FL_KEY_Z85_LEN + 1], const char *path,
                    fl_error_t *err)
{
    char *real = NULL;
    int rc = fl_perm_check(&real, path, "pinned coordinator certificate",
                           geteuid(), err);

    if (rc == 0)
        rc = fl_cert_load_public(out, real, err);
    free(real);
    return rc;
}

int
fl_cert_load_public(char out[FL_KEY_Z85_LEN + 1], const char *path,
                    fl_error_t *err)
{
    char *text = NULL;
    zcert_t *cert = NULL;
    int rc = s_read_small(&text, path, err);

    if (rc == 0)
        rc = s_cert_parse(&cert, NULL, 0, text, 0, path, err);
    if (rc == 0)
        memcpy(out, zcert_public_txt(cert), FL_KEY_Z85_LEN + 1);
    zcert_destroy(&cert);
    free(text);
    return rc;
}

const char *
fl_cert_public(const fl_cert_t *c)
{
    return zcert_public_txt(c->cert);
}

void
fl_cert_destroy(fl_cert_t **c)
{
    if (c == NULL || *c == NULL)
        return;
    zcert_destroy(&(*c)->cert);
    fl_free(c);
}

/* Key sets. */

struct fl_certset {
    fl_map_t *map; /* key (Z85) -> fl_cert_entry_t */
};

fl_certset_t *
fl_certset_new(void)
{
    fl_certset_t *s = fl_calloc(1, sizeof(*s));

    s->map = fl_map_new();
    return s;
}

static void
s_certset_put(fl_certset_t *s, const char *key, const char *name,
              const char *file)
{
    fl_cert_entry_t *e = fl_calloc(1, sizeof(*e));

    memcpy(e->key, key, FL_KEY_Z85_LEN + 1);
    e->name = fl_strdup(name ? name : "");
    e->file = fl_strdup(file ? file : "");
    FL_ASSERT(fl_map_puts(s->map, e->key, e) == NULL);
}

void
fl_certset_add(fl_certset_t *s, const char *key, const char *name)
{
    if (fl_map_gets(s->map, key) == NULL)
        s_certset_put(s, key, name, NULL);
}

const fl_cert_entry_t *
fl_certset_find(const fl_certset_t *s, const char *key)
{
    return fl_map_gets(s->map, key);
}

size_t
fl_certset_count(const fl_certset_t *s)
{
    return fl_map_count(s->map);
}

const fl_cert_entry_t *
fl_certset_next(const fl_certset_t *s, size_t *pos)
{
    return fl_map_next(s->map, pos);
}

fl_certset_t *
fl_certset_copy(const fl_certset_t *s)
{
    fl_certset_t *c = fl_certset_new();
    const fl_cert_entry_t *e = NULL;
    size_t pos = 0;

    while ((e = fl_certset_next(s, &pos)) != NULL)
        s_certset_put(c, e->key, e->name, e->file);
    return c;
}

void
fl_certset_destroy(fl_certset_t **s)
{
    fl_cert_entry_t *e = NULL;
    size_t pos = 0;

    if (s == NULL || *s == NULL)
        return;
    while ((e = fl_map_next((*s)->map, &pos)) != NULL) {
        free(e->name);
        free(e->file);
        free(e);
    }
    fl_map_destroy(&(*s)->map);
    fl_free(s);
}

/* Loads one enrolled certificate file into s. */
static int
s_certset_load_file(fl_certset_t *s, const char *file, const char *what,
                    fl_error_t *err)
{
    char *real = NULL, *text = NULL;
    char name[128] = "";
    zcert_t *cert = NULL;
    const fl_cert_entry_t *dup = NULL;
    int rc = 0;

    /* Whoever could change this file could enrol a key. */
    if ((rc = fl_perm_check(&real, file, what, geteuid(), err)) != 0 ||
        (rc = s_read_small(&text, real, err)) != 0 ||
        (rc = s_cert_parse(&cert, name, sizeof(name), text, 0, file, err)) != 0)
        goto cleanup;
    if ((dup = fl_certset_find(s, zcert_public_txt(cert))) != NULL) {
        rc = FL_ERR(err, FL_EINVAL, "%s: \"%s\" and \"%s\" hold the same key",
                    what, dup->file, file);
        fl_error_set_hint(err, "Remove one of them: one key enrols one peer.");
        goto cleanup;
    }
    if (name[0] == '\0') {
        const char *base = strrchr(file, '/');
        size_t n = strlen(base ? base + 1 : file) - strlen(".cert");
        snprintf(name, sizeof(name), "%.*s", (int)n, base ? base + 1 : file);
    }
    s_certset_put(s, zcert_public_txt(cert), name, file);
cleanup:
    zcert_destroy(&cert);
    free(text);
    free(real);
    return rc;
}

static int
s_has_suffix(const char *name, const char *suffix)
{
    size_t n = strlen(name), k = strlen(suffix);

    return n > k && strcmp(name + n - k, suffix) == 0;
}

int
fl_certset_load(fl_certset_t **out, const char *dir, const char *what,
                fl_error_t *err)
{
    char *real = NULL;
    DIR *d = NULL;
    struct dirent *de = NULL;
    fl_certset_t *s = NULL;
    size_t n = 0;
    int rc = 0;

    *out = NULL;
    if ((rc = fl_perm_check(&real, dir, what, geteuid(), err)) != 0)
        return rc;
    if ((d = opendir(real)) == NULL) {
        rc = FL_ERR(err, FL_EIO, "could not list %s \"%s\": %s", what, dir,
                    strerror(errno));
        goto cleanup;
    }
    s = fl_certset_new();
    while (rc == 0 && (de = readdir(d)) != NULL) {
        char *file = NULL;

        if (s_has_suffix(de->d_name, ".cert_secret")) {
            rc = FL_ERR(err, FL_EINVAL, "%s \"%s\" holds a secret "
                        "certificate, \"%s\"", what, dir, de->d_name);
            fl_error_set_hint(err, "Only public certificates (.cert) are "
                                   "enrolled; move the secret one where only "
                                   "its owner reads it.");
            break;
        }
        if (!s_has_suffix(de->d_name, ".cert"))
            continue;
        if (++n > S_CERTSET_MAX) {
            rc = FL_ERR(err, FL_EINVAL, "%s \"%s\" holds more than %d "
                        "certificates", what, dir, S_CERTSET_MAX);
            break;
        }
        file = fl_asprintf("%s/%s", real, de->d_name);
        rc = s_certset_load_file(s, file, what, err);
        free(file);
    }
    if (rc == 0) {
        *out = s;
        s = NULL;
    }
cleanup:
    if (d != NULL)
        closedir(d);
    fl_certset_destroy(&s);
    free(real);
    return rc;
}

/* The ZAP handler: a CZMQ actor. */

typedef struct {
    char *domain;
    fl_certset_t *keys;
} s_domain;

typedef struct {
    zsock_t *pipe;
    zsock_t *handler;
    s_domain *domains;
    size_t ndomains;
    /* Read by fl_zap_counts from another thread. */
    uint64_t admitted, refused;
    int quiet; /* atomic: refusals are not logged */
    /* The last refusal logged, so that a client retrying every 100 ms
     * does not flood the log. */
    char last_refused[FL_KEY_Z85_LEN + 64];
    int64_t last_logged_ms;
    uint64_t suppressed;
} s_zap_state;

struct fl_zap {
    zactor_t *actor;
    s_zap_state *state;
};

static s_domain *
s_zap_domain(s_zap_state *st, const char *domain)
{
    for (size_t i = 0; i < st->ndomains; i++)
        if (strcmp(st->domains[i].domain, domain) == 0)
            return &st->domains[i];
    return NULL;
}

static void
s_zap_log_refusal(s_zap_state *st, const char *domain, const char *address,
                  const char *mechanism, const char *key)
{
    char what[sizeof(st->last_refused)];
    int64_t now = zclock_mono();
    fl_log_field f[4] = {{"domain", domain}, {"address", address},
                         {"mechanism", mechanism}, {"key", key}};

    snprintf(what, sizeof(what), "%s %s %s", domain, address, key);
    if (strcmp(what, st->last_refused) == 0 &&
        now - st->last_logged_ms < 10000) {
        st->suppressed++;
        return;
    }
    fl_log_emit(FL_LOG_WARNING, "auth", f, 4,
                "refused a %s handshake from %s: key %s is not enrolled for "
                "\"%s\"%s", mechanism, address, key, domain,
                st->suppressed ? " (and earlier refusals not shown)" : "");
    snprintf(st->last_refused, sizeof(st->last_refused), "%s", what);
    st->last_logged_ms = now;
    st->suppressed = 0;
}

/* Answers one ZAP request (RFC 27) on the handler socket. */
static void
s_zap_handle(s_zap_state *st)
{
    zmsg_t *req = zmsg_recv(st->handler);
    char *version = NULL, *seq = NULL, *domain = NULL, *address = NULL,
         *identity = NULL, *mechanism = NULL;
    zframe_t *cred = NULL;
    char key[FL_KEY_Z85_LEN + 1] = "";
    const char *status = "400", *text = "not enrolled";
    zmsg_t *rep = NULL;

    if (req == NULL)
        return;
    version = zmsg_popstr(req);
    seq = zmsg_popstr(req);
    domain = zmsg_popstr(req);
    address = zmsg_popstr(req);
    identity = zmsg_popstr(req);
    mechanism = zmsg_popstr(req);
    if (mechanism != NULL && strcmp(mechanism, "CURVE") == 0)
        cred = zmsg_pop(req);
    if (cred != NULL && zframe_size(cred) == 32) {
        s_domain *d = s_zap_domain(st, domain ? domain : "");
        zmq_z85_encode(key, zframe_data(cred), 32);
        if (d != NULL && fl_certset_find(d->keys, key) != NULL) {
            status = "200";
            text = "OK";
        }
    } else {
        text = "only CURVE is accepted";
    }
    if (strcmp(status, "200") == 0) {
        __atomic_add_fetch(&st->admitted, 1, __ATOMIC_RELAXED);
    } else {
        __atomic_add_fetch(&st->refused, 1, __ATOMIC_RELAXED);
        if (!__atomic_load_n(&st->quiet, __ATOMIC_SEQ_CST))
            s_zap_log_refusal(st, domain ? domain : "", address ? address : "?",
                          mechanism ? mechanism : "?",
                          key[0] ? key : "(none)");
    }
    rep = zmsg_new();
    zmsg_addstr(rep, "1.0");
    zmsg_addstr(rep, seq ? seq : "");
    zmsg_addstr(rep, status);
    zmsg_addstr(rep, text);
    zmsg_addstr(rep, strcmp(status, "200") == 0 ? key : "");
    zmsg_addmem(rep, "", 0);
    if (zmsg_send(&rep, st->handler) != 0)
        zmsg_destroy(&rep);
    zframe_destroy(&cred);
    free(version);
    free(seq);
    free(domain);
    free(address);
    free(identity);
    free(mechanism);
    zmsg_destroy(&req);
}

/* Handles a command on the actor pipe; returns 1 on $TERM. */
static int
s_zap_command(s_zap_state *st)
{
    char *cmd = NULL, *domain = NULL;
    void *keys = NULL;
    int term = 0;

    /* Missing frames come back NULL: a $TERM has one. */
    if (zsock_recv(st->pipe, "ssp", &cmd, &domain, &keys) != 0 ||
        cmd == NULL)
        return 1;
    if (strcmp(cmd, "$TERM") == 0 || domain == NULL) {
        term = 1;
    } else if (strcmp(cmd, "KEYS") == 0) {
        s_domain *d = s_zap_domain(st, domain);
        if (d == NULL) {
            st->domains = fl_reallocarray(st->domains, st->ndomains + 1,
                                          sizeof(*st->domains));
            d = &st->domains[st->ndomains++];
            d->domain = fl_strdup(domain);
            d->keys = NULL;
        }
        fl_certset_destroy(&d->keys);
        d->keys = keys;
        zsock_signal(st->pipe, 0);
    }
    free(cmd);
    free(domain);
    return term;
}

static void
s_zap_actor(zsock_t *pipe, void *arg)
{
    s_zap_state *st = arg;
    zpoller_t *poller = zpoller_new(pipe, st->handler, NULL);

    st->pipe = pipe;
    zsock_signal(pipe, 0);
    for (;;) {
        void *which = zpoller_wait(poller, -1);
        if (which == pipe) {
            if (s_zap_command(st))
                break;
        } else if (which == st->handler) {
            s_zap_handle(st);
        } else if (zpoller_terminated(poller)) {
            break;
        }
    }
    zpoller_destroy(&poller);
}

int
fl_zap_start(fl_zap_t **out, fl_error_t *err)
{
    fl_zap_t *z = fl_calloc(1, sizeof(*z));

    *out = NULL;
    z->state = fl_calloc(1, sizeof(*z->state));
    /* Bound here, so that a failure is ours to report; the socket then
     * belongs to the actor's thread (thread creation is the barrier
     * libzmq asks for when a socket changes threads). */
    z->state->handler = zsock_new(ZMQ_REP);
    FL_ASSERT(z->state->handler != NULL);
    zsock_set_linger(z->state->handler, 0);
    if (zsock_bind(z->state->handler, S_ZAP_ENDPOINT) != 0) {
        FL_ERR(err, FL_EIO, "could not start the ZAP handler: %s: %s",
               S_ZAP_ENDPOINT, zmq_strerror(zmq_errno()));
        zsock_destroy(&z->state->handler);
        free(z->state);
        free(z);
        return FL_EIO;
    }
    /* zactor_new returns once the actor has signalled that it runs. */
    z->actor = zactor_new(s_zap_actor, z->state);
    FL_ASSERT(z->actor != NULL);
    *out = z;
    return 0;
}

void
fl_zap_set_keys(fl_zap_t *z, const char *domain, const fl_certset_t *keys)
{
    fl_certset_t *copy = fl_certset_copy(keys);

    FL_ASSERT(zsock_send(z->actor, "ssp", "KEYS", domain, copy) == 0);
    FL_ASSERT(zsock_wait(z->actor) == 0);
}

void
fl_zap_set_logging(fl_zap_t *z, int on)
{
    __atomic_store_n(&z->state->quiet, !on, __ATOMIC_SEQ_CST);
}

void
fl_zap_counts(fl_zap_t *z, uint64_t *admitted, uint64_t *refused)
{
    *admitted = __atomic_load_n(&z->state->admitted, __ATOMIC_RELAXED);
    *refused = __atomic_load_n(&z->state->refused, __ATOMIC_RELAXED);
}

void
fl_zap_stop(fl_zap_t **z)
{
    if (z == NULL || *z == NULL)
        return;
    /* zactor_destroy sends $TERM and waits for the actor to end. */
    zactor_destroy(&(*z)->actor);
    zsock_unbind((*z)->state->handler, S_ZAP_ENDPOINT);
    zsock_destroy(&(*z)->state->handler);
    for (size_t i = 0; i < (*z)->state->ndomains; i++) {
        free((*z)->state->domains[i].domain);
        fl_certset_destroy(&(*z)->state->domains[i].keys);
    }
    free((*z)->state->domains);
    free((*z)->state);
    fl_free(z);
}

/* Links. */

struct fl_link {
    zsock_t *sock;
    int server;
    zsock_t *monitor;
    char *endpoint;
};

static void
s_link_options(zsock_t *s, const fl_link_opts_t *o)
{
    zsock_set_linger(s, (int)o->linger_ms);
    zsock_set_sndhwm(s, o->sndhwm);
    zsock_set_rcvhwm(s, o->rcvhwm);
    zsock_set_maxmsgsize(s, (int)(o->max_message > INT32_MAX
                                      ? INT32_MAX
                                      : o->max_message));
    zsock_set_sndtimeo(s, 0);
    zsock_set_handshake_ivl(s, (int)o->handshake_ms);
    zsock_set_tcp_keepalive(s, 1);
    if (o->heartbeat_ms > 0) {
        zsock_set_heartbeat_ivl(s, (int)o->heartbeat_ms);
        zsock_set_heartbeat_timeout(s, (int)o->heartbeat_timeout_ms);
        zsock_set_heartbeat_ttl(s, (int)o->heartbeat_timeout_ms);
    }
}

static int
s_monitor(fl_link_t *l, fl_error_t *err)
{
    /* A name never used before in this process: a link freed and another
     * made at the same address would find the old name still bound (a
     * closed monitor unbinds asynchronously). */
    static uint64_t counter;
    char *ep = fl_asprintf("inproc://flotilla-monitor-%llu",
                           (unsigned long long)__atomic_add_fetch(
                               &counter, 1, __ATOMIC_RELAXED));
    int rc = 0;

    if (zmq_socket_monitor(zsock_resolve(l->sock), ep,
                           ZMQ_EVENT_CONNECTED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_HANDSHAKE_SUCCEEDED |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0 ||
        (l->monitor = zsock_new(ZMQ_PAIR)) == NULL ||
        zsock_connect(l->monitor, "%s", ep) != 0)
        rc = FL_ERR(err, FL_EIO, "could not monitor the connection to "
                    "\"%s\": %s", l->endpoint, zmq_strerror(zmq_errno()));
    free(ep);
    return rc;
}

int
fl_link_server(fl_link_t **out, const char *endpoint, const fl_cert_t *cert,
               const char *zap_domain, const fl_link_opts_t *o,
               fl_error_t *err)
{
    fl_link_t *l = fl_calloc(1, sizeof(*l));

    *out = NULL;
    l->server = 1;
    l->sock = zsock_new(ZMQ_ROUTER);
    FL_ASSERT(l->sock != NULL);
    zsock_set_router_mandatory(l->sock, 1);
    s_link_options(l->sock, o);
    zsock_set_zap_domain(l->sock, zap_domain);
    zcert_apply(cert->cert, l->sock);
    zsock_set_curve_server(l->sock, 1);
    if (zsock_bind(l->sock, "%s", endpoint) < 0) {
        FL_ERR(err, FL_EIO, "could not listen on \"%s\": %s", endpoint,
               zmq_strerror(zmq_errno()));
        fl_error_set_hint(err, "Another process may hold the port, or the "
                               "address is not of this host.");
        fl_link_close(&l);
        return FL_EIO;
    }
    l->endpoint = fl_strdup(zsock_endpoint(l->sock));
    *out = l;
    return 0;
}

int
fl_link_client(fl_link_t **out, const char *endpoint, const fl_cert_t *cert,
               const char *server_key, const fl_link_opts_t *o, int monitor,
               fl_error_t *err)
{
    fl_link_t *l = fl_calloc(1, sizeof(*l));
    int rc = 0;

    *out = NULL;
    if (!fl_key_z85_valid(server_key)) {
        free(l);
        return FL_ERR(err, FL_EINVAL, "the server key to pin is not a valid "
                      "CURVE public key");
    }
    l->endpoint = fl_strdup(endpoint);
    l->sock = zsock_new(ZMQ_DEALER);
    FL_ASSERT(l->sock != NULL);
    s_link_options(l->sock, o);
    zsock_set_immediate(l->sock, 1);
    zsock_set_reconnect_ivl(l->sock, (int)o->reconnect_ms);
    zsock_set_reconnect_ivl_max(l->sock, (int)o->reconnect_max_ms);
    zcert_apply(cert->cert, l->sock);
    zsock_set_curve_serverkey(l->sock, server_key);
    if (monitor && (rc = s_monitor(l, err)) != 0) {
        fl_link_close(&l);
        return rc;
    }
    if (zsock_connect(l->sock, "%s", endpoint) != 0) {
        FL_ERR(err, FL_EINVAL, "could not connect to \"%s\": %s", endpoint,
               zmq_strerror(zmq_errno()));
        fl_error_set_hint(err, "Endpoints look like tcp://HOST:PORT.");
        fl_link_close(&l);
        return FL_EINVAL;
    }
    *out = l;
    return 0;
}

void
fl_link_close(fl_link_t **l)
{
    if (l == NULL || *l == NULL)
        return;
    if ((*l)->monitor != NULL) {
        zmq_socket_monitor(zsock_resolve((*l)->sock), NULL, 0);
        zsock_destroy(&(*l)->monitor);
    }
    zsock_destroy(&(*l)->sock);
    free((*l)->endpoint);
    fl_free(l);
}

const char *
fl_link_endpoint(const fl_link_t *l)
{
    return l->endpoint;
}

int
fl_link_send(fl_link_t *l, const void *peer, size_t peer_len, const void *data,
             size_t len, fl_error_t *err)
{
    void *s = zsock_resolve(l->sock);

    if (l->server) {
        if (zmq_send(s, peer, peer_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
            goto failed;
    }
    /* After the routing id is taken the payload always goes: a ROUTER
     * checks the peer's pipe on the first frame. */
    if (zmq_send(s, data, len, ZMQ_DONTWAIT) < 0)
        goto failed;
    return 0;
failed:
    if (zmq_errno() == EAGAIN)
        return FL_ETIMEOUT;
    if (zmq_errno() == EHOSTUNREACH)
        return FL_ENOTFOUND;
    return FL_ERR(err, FL_EIO, "could not send on \"%s\": %s", l->endpoint,
                  zmq_strerror(zmq_errno()));
}

/* Reads and drops the remaining frames of a multipart message. */
static size_t
s_drain(void *s)
{
    size_t n = 0;
    int more = 1;

    while (more) {
        zmq_msg_t m;
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, s, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            break;
        }
        more = zmq_msg_more(&m);
        zmq_msg_close(&m);
        n++;
    }
    return n;
}

int
fl_link_recv(fl_link_t *l, fl_link_msg_t *out, fl_error_t *err)
{
    void *s = zsock_resolve(l->sock);
    zmq_msg_t *frame = (zmq_msg_t *)out->frame;
    const char *uid = NULL;
    int rc;

    out->peer_len = 0;
    out->user_id[0] = '\0';
    out->data = NULL;
    out->len = 0;
    out->has_frame = 0;
    zmq_msg_init(frame);
    if (l->server) {
        rc = zmq_msg_recv(frame, s, ZMQ_DONTWAIT);
        if (rc < 0) {
            zmq_msg_close(frame);
            if (zmq_errno() == EAGAIN || zmq_errno() == EINTR)
                return 0;
            return FL_ERR(err, FL_EIO, "could not receive on \"%s\": %s",
                          l->endpoint, zmq_strerror(zmq_errno()));
        }
        out->peer_len = zmq_msg_size(frame) > FL_LINK_PEER_MAX
                            ? FL_LINK_PEER_MAX
                            : zmq_msg_size(frame);
        memcpy(out->peer, zmq_msg_data(frame), out->peer_len);
        if (!zmq_msg_more(frame)) {
            zmq_msg_close(frame);
            return FL_ERR(err, FL_EPROTO, "a message without a body");
        }
        zmq_msg_close(frame);
        zmq_msg_init(frame);
    }
    rc = zmq_msg_recv(frame, s, l->server ? 0 : ZMQ_DONTWAIT);
    if (rc < 0) {
        zmq_msg_close(frame);
        if (!l->server && (zmq_errno() == EAGAIN || zmq_errno() == EINTR))
            return 0;
        return FL_ERR(err, FL_EIO, "could not receive on \"%s\": %s",
                      l->endpoint, zmq_strerror(zmq_errno()));
    }
    uid = zmq_msg_gets(frame, "User-Id");
    if (uid != NULL && strlen(uid) == FL_KEY_Z85_LEN)
        memcpy(out->user_id, uid, FL_KEY_Z85_LEN + 1);
    if (zmq_msg_more(frame)) {
        size_t extra = s_drain(s);
        zmq_msg_close(frame);
        return FL_ERR(err, FL_EPROTO, "a message of %zu frames; one was "
                      "expected", extra + 1);
    }
    out->data = zmq_msg_data(frame);
    out->len = zmq_msg_size(frame);
    out->has_frame = 1;
    return 1;
}

void
fl_link_msg_release(fl_link_msg_t *m)
{
    if (m == NULL || !m->has_frame)
        return;
    zmq_msg_close((zmq_msg_t *)m->frame);
    m->has_frame = 0;
    m->data = NULL;
    m->len = 0;
}

int
fl_link_event(fl_link_t *l, fl_link_event_kind *kind, int *value)
{
    *kind = FL_LINK_EV_NONE;
    *value = 0;
    if (l->monitor == NULL)
        return 0;
    /* Events this module does not report (connect retries, closes, ...)
     * are skipped; a loop, so a burst of them cannot deepen the stack. */
    for (;;) {
        zmq_msg_t m;
        uint16_t ev = 0;
        uint32_t v = 0;

        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, zsock_resolve(l->monitor), ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&m);
            return 0;
        }
        if (zmq_msg_size(&m) >= 6) {
            memcpy(&ev, zmq_msg_data(&m), 2);
            memcpy(&v, (char *)zmq_msg_data(&m) + 2, 4);
        }
        zmq_msg_close(&m);
        s_drain(zsock_resolve(l->monitor)); /* the endpoint frame */
        *value = (int)v;
        switch (ev) {
        case ZMQ_EVENT_CONNECTED:
            *kind = FL_LINK_EV_CONNECTED;
            return 1;
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
            *kind = FL_LINK_EV_READY;
            return 1;
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
            *kind = FL_LINK_EV_REFUSED;
            return 1;
        case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
        case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
            *kind = FL_LINK_EV_FAILED;
            return 1;
        case ZMQ_EVENT_DISCONNECTED:
            *kind = FL_LINK_EV_DISCONNECTED;
            return 1;
        default:
            *value = 0;
            break;
        }
    }
}

int
fl_link_poll(fl_poll_item_t *items, size_t n, int64_t timeout_ms,
             fl_error_t *err)
{
    zmq_pollitem_t stack[16];
    zmq_pollitem_t *pi = n * 2 <= 16 ? stack : fl_calloc(n * 2, sizeof(*pi));
    size_t np = 0;
    int rc, ready = 0;

    for (size_t i = 0; i < n; i++) {
        zmq_pollitem_t p = {NULL, -1, ZMQ_POLLIN, 0};
        if (items[i].link != NULL)
            p.socket = zsock_resolve(items[i].link->sock);
        else
            p.fd = items[i].fd;
        pi[np++] = p;
        if (items[i].link != NULL && items[i].link->monitor != NULL) {
            zmq_pollitem_t m = {zsock_resolve(items[i].link->monitor), -1,
                                ZMQ_POLLIN, 0};
            pi[np++] = m;
        }
    }
    rc = zmq_poll(pi, (int)np, timeout_ms < 0 ? -1 : (long)timeout_ms);
    if (rc < 0 && zmq_errno() != EINTR) {
        rc = FL_ERR(err, FL_EIO, "poll failed: %s", zmq_strerror(zmq_errno()));
        goto cleanup;
    }
    np = 0;
    for (size_t i = 0; i < n; i++) {
        items[i].ready = rc > 0 && (pi[np++].revents & ZMQ_POLLIN);
        items[i].event = 0;
        if (items[i].link != NULL && items[i].link->monitor != NULL)
            items[i].event = rc > 0 && (pi[np++].revents & ZMQ_POLLIN);
        ready += items[i].ready || items[i].event;
    }
    rc = ready;
cleanup:
    if (pi != stack)
        free(pi);
    return rc;
}

int
fl_link_selftest(const char *endpoint, const char *server_key,
                 int64_t timeout_ms, fl_error_t *err)
{
    zcert_t *stranger = zcert_new();
    fl_cert_t cert = {stranger};
    fl_link_opts_t o = FL_LINK_OPTS_INIT;
    fl_link_t *l = NULL;
    int64_t deadline = zclock_mono() + timeout_ms;
    int rc = FL_ETIMEOUT;

    o.linger_ms = 0;
    o.reconnect_ms = 50;
    o.reconnect_max_ms = 50;
    if ((rc = fl_link_client(&l, endpoint, &cert, server_key, &o, 1,
                             err)) != 0)
        goto cleanup;
    FL_ASSERT(l != NULL); /* set whenever fl_link_client succeeds */
    rc = FL_ETIMEOUT;
    while (rc == FL_ETIMEOUT && zclock_mono() < deadline) {
        fl_poll_item_t it = {l, -1, 0, 0};
        fl_link_event_kind kind;
        int value;

        if (fl_link_poll(&it, 1, deadline - zclock_mono(), NULL) < 0)
            break;
        while (rc == FL_ETIMEOUT && fl_link_event(l, &kind, &value) == 1) {
            if (kind == FL_LINK_EV_REFUSED)
                rc = 0;
            else if (kind == FL_LINK_EV_READY)
                rc = FL_EFAIL;
        }
    }
    if (rc == FL_EFAIL) {
        FL_ERR(err, FL_EFAIL, "\"%s\" admitted a key that is enrolled "
               "nowhere", endpoint);
        fl_error_set_detail(err, "A CURVE server without a working ZAP "
                                 "handler lets any client in.");
    } else if (rc == FL_ETIMEOUT) {
        FL_ERR(err, FL_ETIMEOUT, "could not check that \"%s\" refuses "
               "unknown keys: no handshake outcome within %lld ms", endpoint,
               (long long)timeout_ms);
    }
cleanup:
    fl_link_close(&l);
    zcert_destroy(&stranger);
    return rc;
}
