/*
 * transport.h - the fleet's authenticated ZeroMQ transport: CurveZMQ
 * certificates, the coordinator's ROUTER and the agents' and operators'
 * DEALERs, a ZAP handler that admits only enrolled keys, socket monitors,
 * and polling.  The only module that includes libzmq's and CZMQ's
 * headers (STYLE.md §1).
 *
 * Security rules it enforces (control-plane research §3 and checklist b):
 *   - Every socket is CURVE; a server socket is created only after the
 *     ZAP handler (fl_zap_t) is running, and the coordinator checks at
 *     start that an unenrolled key is refused (fl_link_selftest): libzmq
 *     without a ZAP handler admits any client key, and a stopped handler
 *     admits everyone, so the handler lives as long as the process.
 *   - The ZAP handler answers from in-memory key sets, one per ZAP domain
 *     (agents, operators), replaced whole and synchronously on reload;
 *     it returns the client's public key (Z85) as the ZAP User-Id, which
 *     every received message carries (fl_link_msg_t.user_id): a peer is
 *     identified by its key, never by its routing id or what it says.
 *   - ROUTER_MANDATORY (no silent drops), sends that never block (a full
 *     pipe is FL_ETIMEOUT: try later), finite LINGER, MAXMSGSIZE, bounded
 *     high-water marks, ZMTP heartbeats, a handshake deadline, TCP
 *     keepalive, on every socket.
 *
 * Certificates are CZMQ's zcert files: PREFIX.cert (public) and
 * PREFIX.cert_secret (both keys, mode 0600).  Keys are shown and compared
 * as Z85 text (40 characters).
 *
 * Call fl_transport_init() once, before any other function, from the
 * main thread.  A link (socket) belongs to one thread; the ZAP handler
 * runs on its own thread.  Functions return 0 or a negative fl_code.
 */
#ifndef FL_PROTO_TRANSPORT_H
#define FL_PROTO_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

#define FL_KEY_Z85_LEN 40

/*
 * Checks that libzmq has CURVE and stops CZMQ from taking over SIGINT and
 * SIGTERM (the daemons own their signals).  FL_EFAIL when CURVE is
 * missing.
 */
int fl_transport_init(fl_error_t *err) FL_NODISCARD;

/* 1 when s is 40 characters of Z85 that decode to a 32-byte key. */
int fl_key_z85_valid(const char *s);

/* Certificates. */

typedef struct fl_cert fl_cert_t;

/*
 * Makes a new key pair and writes PREFIX.cert and PREFIX.cert_secret
 * (mode 0600), refusing to replace either unless force.  name (may be
 * NULL) goes into the certificate's metadata.  The public key goes to
 * public_out.  FL_ECONFLICT when a file exists, FL_EIO on write errors.
 */
int fl_cert_generate(const char *prefix, const char *name, int force,
                     char public_out[FL_KEY_Z85_LEN + 1],
                     fl_error_t *err) FL_NODISCARD;

/*
 * Loads a secret certificate (PREFIX.cert_secret: a regular file of mode
 * 0600 or stricter, at most 64 KiB) into *out (new).  FL_EINVAL naming
 * the file when it is not a valid secret certificate.
 */
int fl_cert_load_secret(fl_cert_t **out, const char *path,
                        fl_error_t *err) FL_NODISCARD;

/* Reads the public key (Z85) of a certificate file, public or secret. */
int fl_cert_load_public(char out[FL_KEY_Z85_LEN + 1], const char *path,
                        fl_error_t *err) FL_NODISCARD;

/*
 * The same for a pinned certificate (the coordinator's, which an agent
 * and an operator trust): first checked as the trust store is
 * (common/perm.h: the file and every directory above it owned by root or
 * this user, writable by no one else), since whoever can replace it
 * chooses whom they talk to.
 */
int fl_cert_load_pinned(char out[FL_KEY_Z85_LEN + 1], const char *path,
                        fl_error_t *err) FL_NODISCARD;

/* The certificate's public key in Z85, lent for its life. */
const char *fl_cert_public(const fl_cert_t *c);
void fl_cert_destroy(fl_cert_t **c);

/* Enrolled keys: every *.cert file of a directory. */

typedef struct {
    char key[FL_KEY_Z85_LEN + 1];
    char *name;  /* the certificate's metadata "name", else its file stem */
    char *file;  /* the file it came from */
} fl_cert_entry_t;

typedef struct fl_certset fl_certset_t;

/*
 * Loads every *.cert file (at most 100,000, each at most 64 KiB) of dir,
 * which must satisfy StrictModes (common/perm.h): whoever can write it
 * could enrol a key.  what names it in messages ("agents directory").  A
 * file that is not a valid certificate, a duplicate key, or a
 * *.cert_secret file in the directory (a secret key where only public
 * keys belong) is an error naming the file.  An empty directory gives an
 * empty set.
 */
int fl_certset_load(fl_certset_t **out, const char *dir, const char *what,
                    fl_error_t *err) FL_NODISCARD;
/* An empty set (never NULL). */
fl_certset_t *fl_certset_new(void);
/* Adds a key; a key already present is not added twice. */
void fl_certset_add(fl_certset_t *s, const char *key, const char *name);
/* The entry of a key, lent for the set's life, or NULL. */
const fl_cert_entry_t *fl_certset_find(const fl_certset_t *s,
                                       const char *key);
size_t fl_certset_count(const fl_certset_t *s);
/* Iterates (pos starts at 0); NULL at the end. */
const fl_cert_entry_t *fl_certset_next(const fl_certset_t *s, size_t *pos);
/* A copy of s (new). */
fl_certset_t *fl_certset_copy(const fl_certset_t *s);
void fl_certset_destroy(fl_certset_t **s);

/* The ZAP handler. */

typedef struct fl_zap fl_zap_t;

/*
 * Starts the ZAP handler on its own thread (bound to libzmq's ZAP
 * endpoint of this process), admitting no one until fl_zap_set_keys().
 * Only one may run per process.  FL_EIO when the endpoint cannot be
 * bound.
 */
int fl_zap_start(fl_zap_t **out, fl_error_t *err) FL_NODISCARD;

/*
 * Replaces the keys admitted for a ZAP domain (copied) and returns when
 * the handler uses them: a handshake after this call sees the new set.
 * Refusals are logged (component "auth") with the address and key.
 */
void fl_zap_set_keys(fl_zap_t *z, const char *domain,
                     const fl_certset_t *keys);

/*
 * Turns the logging of refusals off (0) or on (1, the default): off
 * while the self-test's stranger is refused on purpose.
 */
void fl_zap_set_logging(fl_zap_t *z, int on);

/* Handshakes admitted and refused so far, per process. */
void fl_zap_counts(fl_zap_t *z, uint64_t *admitted, uint64_t *refused);

/* Stops the handler (last, after every server socket is closed). */
void fl_zap_stop(fl_zap_t **z);

/* Links: sockets. */

typedef struct {
    int64_t heartbeat_ms;    /* ZMTP PING interval; 0: none */
    int64_t heartbeat_timeout_ms; /* close after this silence */
    int64_t max_message;     /* MAXMSGSIZE: larger inbound messages
                                disconnect the peer */
    int sndhwm, rcvhwm;      /* messages per peer */
    int64_t linger_ms;       /* how long close waits for unsent messages */
    int64_t handshake_ms;    /* deadline of the CURVE handshake */
    int64_t reconnect_ms;    /* client: first reconnect delay ... */
    int64_t reconnect_max_ms; /* ... doubling up to this */
} fl_link_opts_t;

#define FL_LINK_OPTS_INIT                                                   \
    {1000, 5000, (int64_t)16 * 1024 * 1024, 10000, 10000, 500, 5000, 100,   \
     5000}

typedef struct fl_link fl_link_t;

/*
 * A ROUTER bound to endpoint ("tcp://127.0.0.1:7400"; port "*" picks a
 * free one) as a CURVE server with cert, authenticated through the ZAP
 * handler for zap_domain.  fl_link_endpoint() gives the bound address.
 */
int fl_link_server(fl_link_t **out, const char *endpoint,
                   const fl_cert_t *cert, const char *zap_domain,
                   const fl_link_opts_t *o, fl_error_t *err) FL_NODISCARD;

/*
 * A DEALER connected to endpoint as a CURVE client with cert, trusting
 * only the server key server_key (Z85, pinned): a server holding another
 * key fails the handshake.  With monitor, handshake outcomes are reported
 * by fl_link_event().
 */
int fl_link_client(fl_link_t **out, const char *endpoint,
                   const fl_cert_t *cert, const char *server_key,
                   const fl_link_opts_t *o, int monitor,
                   fl_error_t *err) FL_NODISCARD;

/* Closes the socket (waiting at most its linger); accepts NULL. */
void fl_link_close(fl_link_t **l);

/* The endpoint bound or connected to, lent for the link's life. */
const char *fl_link_endpoint(const fl_link_t *l);

/*
 * Sends one message (len bytes) without blocking.  On a server link, to
 * the peer whose routing id is peer (peer_len bytes); on a client, peer
 * is ignored.  FL_ETIMEOUT: the peer's pipe is full, or (client) no
 * connection is up: nothing was sent, try later.  FL_ENOTFOUND: no such
 * peer (it disconnected).  FL_EIO otherwise.
 */
int fl_link_send(fl_link_t *l, const void *peer, size_t peer_len,
                 const void *data, size_t len, fl_error_t *err) FL_NODISCARD;

#define FL_LINK_PEER_MAX 255

/* One received message; release it with fl_link_msg_release(). */
typedef struct {
    unsigned char peer[FL_LINK_PEER_MAX]; /* server: the routing id */
    size_t peer_len;
    char user_id[FL_KEY_Z85_LEN + 1]; /* the peer's public key (server) */
    const unsigned char *data; /* lent until release */
    size_t len;
    unsigned char frame[64] __attribute__((aligned(8))); /* opaque */
    int has_frame;
} fl_link_msg_t;

/*
 * Receives one message without blocking: 1 when one was read into out,
 * 0 when none is waiting.  A message with the wrong number of frames is
 * read and dropped whole, and reported as FL_EPROTO with the peer (and
 * its User-Id) in out so the caller can log it and end that session.
 */
int fl_link_recv(fl_link_t *l, fl_link_msg_t *out,
                 fl_error_t *err) FL_NODISCARD;
void fl_link_msg_release(fl_link_msg_t *m);

typedef enum {
    FL_LINK_EV_NONE = 0,
    FL_LINK_EV_CONNECTED,    /* TCP connected; handshake starts */
    FL_LINK_EV_READY,        /* handshake succeeded */
    FL_LINK_EV_REFUSED,      /* the server refused our key (ZAP), value =
                                status code (400) */
    FL_LINK_EV_FAILED,       /* the handshake failed otherwise (a server
                                holding another key than the pinned one) */
    FL_LINK_EV_DISCONNECTED
} fl_link_event_kind;

/* Reads one monitor event without blocking: 1 (filling kind and value),
 * or 0 when none is waiting. */
int fl_link_event(fl_link_t *l, fl_link_event_kind *kind, int *value);

/* Polling links and file descriptors together. */
typedef struct {
    fl_link_t *link;  /* a link, or NULL for fd */
    int fd;
    int ready;        /* out: a message (or fd input) is waiting */
    int event;        /* out: a monitor event is waiting */
} fl_poll_item_t;

/*
 * Waits up to timeout_ms (negative: for ever) for input on any item;
 * returns the number of items ready (0 on timeout) or a negative code.
 * EINTR (a signal) returns 0.
 */
int fl_link_poll(fl_poll_item_t *items, size_t n, int64_t timeout_ms,
                 fl_error_t *err);

/*
 * Start-up self-test of a server link (research checklist b.6): connects
 * to endpoint with a freshly made key that is enrolled nowhere, trusting
 * server_key, and expects the handshake to be refused within timeout_ms.
 * 0 when refused; FL_EFAIL when the unknown key was admitted (the
 * coordinator must not run); FL_ETIMEOUT when no outcome came.
 */
int fl_link_selftest(const char *endpoint, const char *server_key,
                     int64_t timeout_ms, fl_error_t *err) FL_NODISCARD;

#endif
