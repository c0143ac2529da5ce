/*
 * pgproxy.h - a proxy between a client and the test PostgreSQL that cuts
 * the connection at the worst moment, for tests of what a client says
 * when the network fails between the server's work and its answer.
 *
 * It listens on a Unix socket in a directory of its own (a libpq "host")
 * and forwards every connection to the server of PGHOST and PGPORT (a
 * socket directory; or another, fl_test_proxy_start_to), the client's
 * bytes as they come, the server's message by message.  Armed with a command tag and a number n, it cuts
 * every connection it holds (closes both sides) at the n-th
 * CommandComplete message with that tag the server sends (with the tag
 * "", at the n-th ReadyForQuery: the end of any statement or round
 * trip), counted over all connections: before forwarding it (the server
 * did the work, the client never hears of it) or just after it (the
 * client hears of it, and of nothing more).  A connection opened after
 * the cut is forwarded as usual (or refused: fl_test_proxy_refuse_after_
 * cut).  Clients should connect with sslmode=disable and
 * gssencmode=disable (nothing else is spoken on a Unix socket anyway).
 */
#ifndef FL_TEST_PGPROXY_H
#define FL_TEST_PGPROXY_H

typedef struct fl_test_proxy fl_test_proxy_t;

/* Starts a proxy; fails the test (cmocka) when it cannot. */
fl_test_proxy_t *fl_test_proxy_start(void);
/* The same to the server at host (a socket directory) and port. */
fl_test_proxy_t *fl_test_proxy_start_to(const char *host, const char *port);
/* "host=DIR port=PORT sslmode=disable gssencmode=disable": to a conninfo. */
const char *fl_test_proxy_conninfo(const fl_test_proxy_t *p);
/*
 * Arms the cut at the n-th CommandComplete tagged tag from now on
 * (before: the client does not get it; else it does, then the cut), and
 * starts the count again; n 0 disarms it.
 */
void fl_test_proxy_arm(fl_test_proxy_t *p, const char *tag, int n,
                       int before);
/*
 * Arms a hold instead of a cut: the n-th CommandComplete tagged tag from
 * now on, and every message after it on that connection, wait in the
 * proxy (the server did the work; the client hears nothing of it) until
 * fl_test_proxy_release.  Other connections go on as usual.
 * fl_test_proxy_cut says whether the hold began.
 */
void fl_test_proxy_hold(fl_test_proxy_t *p, const char *tag, int n);
/* Forwards what a hold kept, and everything after it. */
void fl_test_proxy_release(fl_test_proxy_t *p);
/*
 * Stops (stall 1) or resumes accepting connections: while stopped, a new
 * connection waits in the listening socket's queue, connected, its bytes
 * sent, never answered (a server that hangs); resumed, it is forwarded.
 */
void fl_test_proxy_stall(fl_test_proxy_t *p, int stall);
/*
 * Freezes (1) or thaws every connection as well: while frozen, nothing
 * is accepted, read or forwarded, and nothing is closed (a server whose
 * host is up but whose processes do not run); thawed, what waited goes.
 */
void fl_test_proxy_freeze(fl_test_proxy_t *p, int freeze);
/* After the cut, refuse every new connection (closed at once) or not. */
void fl_test_proxy_refuse_after_cut(fl_test_proxy_t *p, int refuse);
/* CommandCompletes tagged as armed seen since the arm. */
int fl_test_proxy_count(fl_test_proxy_t *p);
/*
 * Connections that ended because one side closed them (not a cut, not
 * the stop): a cancel request's, once the server has acted on it.
 */
int fl_test_proxy_ended(fl_test_proxy_t *p);
/* Whether the armed cut happened. */
int fl_test_proxy_cut(fl_test_proxy_t *p);
/* Stops it, closing every connection, and frees it; accepts NULL. */
void fl_test_proxy_stop(fl_test_proxy_t **p);

#endif
