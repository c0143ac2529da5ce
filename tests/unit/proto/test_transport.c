/*
 * Unit tests for proto/transport over ipc:// sockets in a temporary
 * directory (no network; the integration tests use TCP): certificates (written in
 * CZMQ's format, secret mode 0600, never replaced silently), enrolment
 * directories, the ZAP handler admitting only enrolled keys per domain,
 * the User-Id every message carries, the start-up self-test (which must
 * catch a server running without a ZAP handler), a pinned key that is
 * not the server's, and oversized messages.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/file.h"
#include "proto/transport.h"
#include "testsupport.h"

typedef struct {
    char *dir;
    char *agents;     /* enrolment directory */
    char *endpoint;   /* ipc:// in dir, a new one for each server */
    int nendpoints;
    fl_cert_t *server, *client, *stranger;
} s_fixture;

static char *
s_path(const s_fixture *f, const char *name)
{
    return fl_asprintf("%s/%s", f->dir, name);
}

/* A fresh endpoint: closing a socket unbinds its path asynchronously. */
static const char *
s_endpoint(s_fixture *f)
{
    free(f->endpoint);
    f->endpoint = fl_asprintf("ipc://%s/server%d.sock", f->dir,
                              f->nendpoints++);
    return f->endpoint;
}

static fl_cert_t *
s_make(const s_fixture *f, const char *name)
{
    char *prefix = s_path(f, name);
    char *secret = fl_asprintf("%s.cert_secret", prefix);
    char key[FL_KEY_Z85_LEN + 1];
    fl_cert_t *c = NULL;
    fl_error_t err = FL_ERROR_INIT;

    if (fl_cert_generate(prefix, name, 0, key, &err) != 0 ||
        fl_cert_load_secret(&c, secret, &err) != 0)
        fail_msg("%s: %s", name, err.message);
    assert_string_equal(fl_cert_public(c), key);
    free(prefix);
    free(secret);
    return c;
}

static int
s_setup(void **state)
{
    s_fixture *f = fl_calloc(1, sizeof(*f));
    char *src = NULL, *dst = NULL;

    assert_int_equal(fl_transport_init(NULL), 0);
    f->dir = fl_test_tmpdir();
    chmod(f->dir, 0700);
    f->agents = s_path(f, "agents");

    mkdir(f->agents, 0700);
    f->server = s_make(f, "server");
    f->client = s_make(f, "client");
    f->stranger = s_make(f, "stranger");
    /* Enrol the client: its public certificate in the agents directory. */
    src = s_path(f, "client.cert");
    dst = fl_asprintf("%s/client.cert", f->agents);
    assert_int_equal(rename(src, dst), 0);
    free(src);
    free(dst);
    *state = f;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fixture *f = *state;

    fl_cert_destroy(&f->server);
    fl_cert_destroy(&f->client);
    fl_cert_destroy(&f->stranger);
    fl_test_rmtree(f->dir);
    free(f->dir);
    free(f->agents);
    free(f->endpoint);
    free(f);
    return 0;
}

static void
test_cert_files_are_zcert_and_never_replaced_silently(void **state)
{
    s_fixture *f = *state;
    char *prefix = s_path(f, "server");
    char *pub = s_path(f, "server.cert");
    char *sec = s_path(f, "server.cert_secret");
    char key[FL_KEY_Z85_LEN + 1], again[FL_KEY_Z85_LEN + 1];
    struct stat st;
    FILE *fp = NULL;
    char text[512] = "";
    fl_error_t err = FL_ERROR_INIT;

    assert_int_equal(stat(sec, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    fp = fopen(pub, "r");
    assert_non_null(fp);
    assert_true(fread(text, 1, sizeof(text) - 1, fp) > 0);
    fclose(fp);
    /* CZMQ's format: a curve section with a Z85 public key, no secret. */
    assert_non_null(strstr(text, "curve\n    public-key = \""));
    assert_null(strstr(text, "secret-key"));
    assert_int_equal(fl_cert_load_public(key, pub, NULL), 0);
    assert_string_equal(key, fl_cert_public(f->server));
    assert_int_equal(fl_cert_load_public(again, sec, NULL), 0);
    assert_string_equal(again, key);
    assert_int_equal(fl_cert_generate(prefix, NULL, 0, again, &err),
                     FL_ECONFLICT);
    assert_non_null(strstr(err.message, "already exists"));
    fl_error_clear(&err);
    assert_int_equal(fl_cert_load_public(again, pub, NULL), 0);
    assert_string_equal(again, key);
    /* A public certificate is not a secret one. */
    {
        fl_cert_t *c = NULL;
        chmod(pub, 0600);
        assert_int_equal(fl_cert_load_secret(&c, pub, &err), FL_EINVAL);
        assert_non_null(strstr(err.message, "secret-key"));
        fl_error_clear(&err);
        chmod(pub, 0644);
        /* A secret certificate others can read is refused. */
        chmod(sec, 0644);
        assert_int_not_equal(fl_cert_load_secret(&c, sec, &err), 0);
        fl_error_clear(&err);
        chmod(sec, 0600);
    }
    free(prefix);
    free(pub);
    free(sec);
}

static void
test_certset_load_enrols_public_certs_and_refuses_secrets(void **state)
{
    s_fixture *f = *state;
    fl_certset_t *s = NULL;
    char *bad = fl_asprintf("%s/junk.cert", f->agents);
    char *secret = fl_asprintf("%s/oops.cert_secret", f->agents);
    fl_error_t err = FL_ERROR_INIT;
    const fl_cert_entry_t *e = NULL;

    assert_int_equal(fl_certset_load(&s, f->agents, "agents directory", &err),
                     0);
    assert_int_equal(fl_certset_count(s), 1);
    e = fl_certset_find(s, fl_cert_public(f->client));
    assert_non_null(e);
    assert_string_equal(e->name, "client");
    assert_null(fl_certset_find(s, fl_cert_public(f->stranger)));
    fl_certset_destroy(&s);

    fl_test_write_file(bad, "curve\n    public-key = \"short\"\n");
    assert_int_equal(fl_certset_load(&s, f->agents, "agents directory", &err),
                     FL_EINVAL);
    assert_non_null(strstr(err.message, "junk.cert"));
    fl_error_clear(&err);
    unlink(bad);

    fl_test_write_file(secret, "x");
    chmod(secret, 0600);
    assert_int_equal(fl_certset_load(&s, f->agents, "agents directory", &err),
                     FL_EINVAL);
    assert_non_null(strstr(err.message, "secret certificate"));
    fl_error_clear(&err);
    unlink(secret);

    /* A directory others can write enrols nobody. */
    chmod(f->agents, 0777);
    assert_int_equal(fl_certset_load(&s, f->agents, "agents directory", &err),
                     FL_EINVAL);
    fl_error_clear(&err);
    chmod(f->agents, 0700);
    assert_null(s);
    free(bad);
    free(secret);
}

/* Waits up to 5 s for a message on l; fails the test when none comes. */
static void
s_recv(fl_link_t *l, fl_link_msg_t *m)
{
    for (int i = 0; i < 50; i++) {
        fl_poll_item_t it = {l, -1, 0, 0};
        assert_true(fl_link_poll(&it, 1, 100, NULL) >= 0);
        if (fl_link_recv(l, m, NULL) == 1)
            return;
    }
    fail_msg("no message within 5 s");
}

/* Waits up to 5 s for a monitor event of kind; returns its value. */
static int
s_event(fl_link_t *l, fl_link_event_kind want)
{
    for (int i = 0; i < 50; i++) {
        fl_poll_item_t it = {l, -1, 0, 0};
        fl_link_event_kind kind;
        int value;

        assert_true(fl_link_poll(&it, 1, 100, NULL) >= 0);
        while (fl_link_event(l, &kind, &value) == 1)
            if (kind == want)
                return value;
    }
    fail_msg("no event %d within 5 s", (int)want);
    return -1;
}

/* Sends until the link takes it (the connection may still be coming up). */
static void
s_send(fl_link_t *l, const void *peer, size_t plen, const char *text)
{
    for (int i = 0; i < 500; i++) {
        int rc = fl_link_send(l, peer, plen, text, strlen(text), NULL);
        if (rc == 0)
            return;
        assert_int_equal(rc, FL_ETIMEOUT);
        usleep(10000);
    }
    fail_msg("could not send");
}

/*
 * The hazard the self-test exists for: a CURVE server with no ZAP handler
 * admits any key.  Then, with the handler running, only enrolled keys get
 * in, every message says who sent it, and the self-test passes.
 */
static void
test_link_zap_admits_only_enrolled_keys_and_selftest_sees_it(void **state)
{
    s_fixture *f = *state;
    fl_link_opts_t o = FL_LINK_OPTS_INIT;
    fl_link_t *server = NULL, *client = NULL, *stranger = NULL;
    fl_link_msg_t m;
    fl_certset_t *agents = NULL;
    fl_zap_t *zap = NULL;
    fl_error_t err = FL_ERROR_INIT;
    uint64_t admitted = 0, refused = 0;
    unsigned char peer[FL_LINK_PEER_MAX];
    size_t plen;
    fl_test_log_t cap;

    fl_test_log_start(&cap);
    o.linger_ms = 0;
    assert_int_equal(fl_link_server(&server, s_endpoint(f), f->server,
                                    "agents", &o, &err), 0);
    assert_int_equal(fl_link_selftest(fl_link_endpoint(server),
                                      fl_cert_public(f->server), 5000, &err),
                     FL_EFAIL);
    assert_non_null(strstr(err.message, "enrolled nowhere"));
    fl_error_clear(&err);
    fl_link_close(&server);

    if (fl_zap_start(&zap, &err) != 0)
        fail_msg("%s", err.message);
    assert_int_equal(fl_certset_load(&agents, f->agents, "agents", NULL), 0);
    fl_zap_set_keys(zap, "agents", agents);
    assert_int_equal(fl_link_server(&server, s_endpoint(f), f->server,
                                    "agents", &o, &err), 0);
    assert_int_equal(fl_link_selftest(fl_link_endpoint(server),
                                      fl_cert_public(f->server), 5000, &err),
                     0);

    assert_int_equal(fl_link_client(&client, fl_link_endpoint(server),
                                    f->client, fl_cert_public(f->server), &o,
                                    1, &err), 0);
    s_event(client, FL_LINK_EV_READY);
    s_send(client, NULL, 0, "hello");
    s_recv(server, &m);
    assert_int_equal(m.len, 5);
    assert_memory_equal(m.data, "hello", 5);
    assert_string_equal(m.user_id, fl_cert_public(f->client));
    memcpy(peer, m.peer, m.peer_len);
    plen = m.peer_len;
    fl_link_msg_release(&m);
    s_send(server, peer, plen, "welcome");
    s_recv(client, &m);
    assert_memory_equal(m.data, "welcome", 7);
    fl_link_msg_release(&m);
    /* An unknown routing id is not silently dropped. */
    assert_int_equal(fl_link_send(server, "nobody", 6, "x", 1, NULL),
                     FL_ENOTFOUND);

    /* The stranger is refused with ZAP status 400 on the same domain, and
     * an operator's domain does not admit an agent's key either. */
    assert_int_equal(fl_link_client(&stranger, fl_link_endpoint(server),
                                    f->stranger, fl_cert_public(f->server),
                                    &o, 1, &err), 0);
    assert_int_equal(s_event(stranger, FL_LINK_EV_REFUSED), 400);
    fl_link_close(&stranger);
    fl_zap_counts(zap, &admitted, &refused);
    assert_true(admitted >= 1);
    assert_true(refused >= 2); /* the self-test and the stranger */

    /* Revoking (an empty set) refuses the next handshake. */
    fl_certset_destroy(&agents);
    agents = fl_certset_new();
    fl_zap_set_keys(zap, "agents", agents);
    fl_link_close(&client);
    assert_int_equal(fl_link_client(&client, fl_link_endpoint(server),
                                    f->client, fl_cert_public(f->server), &o,
                                    1, &err), 0);
    assert_int_equal(s_event(client, FL_LINK_EV_REFUSED), 400);

    fl_link_close(&client);
    fl_link_close(&server);
    fl_certset_destroy(&agents);
    fl_zap_stop(&zap);
    /* Every refusal is logged with the key that was refused. */
    assert_true(fl_test_log_contains(&cap, fl_cert_public(f->stranger)));
    assert_true(fl_test_log_contains(&cap, "is not enrolled for"));
    fl_test_log_stop(&cap);
}

/*
 * A client pinned to another server key never gets through; a message
 * larger than the server's limit disconnects its sender.
 */
static void
test_link_wrong_pin_and_oversized_message(void **state)
{
    s_fixture *f = *state;
    fl_link_opts_t o = FL_LINK_OPTS_INIT;
    fl_link_t *server = NULL, *client = NULL;
    fl_certset_t *agents = NULL;
    fl_zap_t *zap = NULL;
    fl_link_msg_t m;
    fl_error_t err = FL_ERROR_INIT;
    char *big = NULL;
    int got = 0;

    o.linger_ms = 0;
    o.max_message = 1024;
    if (fl_zap_start(&zap, &err) != 0)
        fail_msg("%s", err.message);
    assert_int_equal(fl_certset_load(&agents, f->agents, "agents", NULL), 0);
    fl_zap_set_keys(zap, "agents", agents);
    assert_int_equal(fl_link_server(&server, s_endpoint(f), f->server,
                                    "agents", &o, &err), 0);

    assert_int_equal(fl_link_client(&client, fl_link_endpoint(server),
                                    f->client, fl_cert_public(f->stranger),
                                    &o, 1, &err), 0);
    s_event(client, FL_LINK_EV_FAILED);
    assert_int_equal(fl_link_send(client, NULL, 0, "x", 1, NULL),
                     FL_ETIMEOUT);
    fl_link_close(&client);

    assert_int_equal(fl_link_client(&client, fl_link_endpoint(server),
                                    f->client, fl_cert_public(f->server), &o,
                                    1, &err), 0);
    s_event(client, FL_LINK_EV_READY);
    big = fl_calloc(1, 4096);
    memset(big, 'x', 4095);
    s_send(client, NULL, 0, big);
    s_event(client, FL_LINK_EV_DISCONNECTED);
    for (int i = 0; i < 5; i++) {
        fl_poll_item_t it = {server, -1, 0, 0};
        assert_true(fl_link_poll(&it, 1, 20, NULL) >= 0);
        got += fl_link_recv(server, &m, NULL) == 1;
    }
    assert_int_equal(got, 0);
    free(big);
    fl_link_close(&client);
    fl_link_close(&server);
    fl_certset_destroy(&agents);
    fl_zap_stop(&zap);
}

/*
 * --force replaces a certificate's files, never writes through them: a
 * link at PREFIX.cert_secret or PREFIX.cert is replaced, its target
 * untouched, and the secret file is a new one of mode 0600 (before,
 * zcert_save opened the path: the secret key went into the link's
 * target, or into a file another user owned and could read).
 */
/*
 * The same for a certificate: a link to nothing at PREFIX.cert is a file
 * there, refused before the secret certificate is written.  Before, the
 * secret was left behind (found by an audit).
 */
static void
test_cert_generate_refuses_a_dangling_link_leaving_nothing(void **state)
{
    s_fixture *f = *state;
    char *prefix = s_path(f, "c4");
    char *pub = s_path(f, "c4.cert");
    char *sec = s_path(f, "c4.cert_secret");
    char key[FL_KEY_Z85_LEN + 1];
    fl_error_t err = FL_ERROR_INIT;
    struct stat st;

    assert_int_equal(symlink("nowhere_cert", pub), 0);
    assert_int_equal(fl_cert_generate(prefix, NULL, 0, key, &err),
                     FL_ECONFLICT);
    assert_non_null(strstr(err.message, "already exists"));
    fl_error_clear(&err);
    assert_int_not_equal(lstat(sec, &st), 0);
    free(prefix);
    free(pub);
    free(sec);
}

static void
test_cert_force_replaces_links_never_writes_through_them(void **state)
{
    s_fixture *f = *state;
    char *prefix = s_path(f, "forced");
    char *sec = s_path(f, "forced.cert_secret");
    char *pub = s_path(f, "forced.cert");
    char *victim = s_path(f, "victim"), *victim2 = s_path(f, "victim2");
    char key[FL_KEY_Z85_LEN + 1], text[64] = "";
    struct stat st;
    fl_error_t err = FL_ERROR_INIT;
    FILE *fp = NULL;

    fl_test_write_file(victim, "victim\n");
    fl_test_write_file(victim2, "victim2\n");
    assert_int_equal(symlink(victim, sec), 0);
    assert_int_equal(symlink(victim2, pub), 0);
    assert_int_equal(fl_cert_generate(prefix, "forced", 1, key, &err), 0);
    fl_error_clear(&err);
    fp = fopen(victim, "r");
    assert_non_null(fp);
    assert_non_null(fgets(text, sizeof(text), fp));
    fclose(fp);
    assert_string_equal(text, "victim\n");
    fp = fopen(victim2, "r");
    assert_non_null(fp);
    assert_non_null(fgets(text, sizeof(text), fp));
    fclose(fp);
    assert_string_equal(text, "victim2\n");
    assert_int_equal(lstat(sec, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(lstat(pub, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0644);
    /* And what it wrote is a certificate of the key it printed. */
    {
        char again[FL_KEY_Z85_LEN + 1];
        fl_cert_t *c = NULL;
        assert_int_equal(fl_cert_load_public(again, pub, NULL), 0);
        assert_string_equal(again, key);
        assert_int_equal(fl_cert_load_secret(&c, sec, &err), 0);
        assert_string_equal(fl_cert_public(c), key);
        fl_cert_destroy(&c);
    }
    /* A name that would break the file's format is refused. */
    assert_int_equal(fl_cert_generate(prefix, "a\"b", 1, key, &err),
                     FL_EINVAL);
    fl_error_clear(&err);
    free(prefix);
    free(sec);
    free(pub);
    free(victim);
    free(victim2);
}

/*
 * A pinned certificate is checked as a trust store is: in a directory
 * others may write, or writable by others itself, it is refused (before,
 * whoever could replace the file chose the coordinator an operator or an
 * agent talked to).
 */
static void
test_cert_pinned_is_refused_where_others_may_replace_it(void **state)
{
    s_fixture *f = *state;
    char *pub = s_path(f, "server.cert");
    char *open_dir = s_path(f, "open");
    char *copy = s_path(f, "open/coord.cert");
    char key[FL_KEY_Z85_LEN + 1];
    unsigned char *text = NULL;
    size_t len = 0;
    fl_error_t err = FL_ERROR_INIT;

    assert_int_equal(fl_cert_load_pinned(key, pub, NULL), 0);
    assert_int_equal(mkdir(open_dir, 0700), 0);
    assert_int_equal(fl_file_read(&text, &len, pub, 1 << 16, "cert", NULL), 0);
    fl_test_write_file(copy, (const char *)text);
    free(text);
    assert_int_equal(chmod(copy, 0644), 0);
    assert_int_equal(fl_cert_load_pinned(key, copy, NULL), 0);
    assert_int_equal(chmod(copy, 0666), 0);
    assert_int_equal(fl_cert_load_pinned(key, copy, &err), FL_EINVAL);
    fl_error_clear(&err);
    assert_int_equal(chmod(copy, 0644), 0);
    assert_int_equal(chmod(open_dir, 0777), 0);
    assert_int_equal(fl_cert_load_pinned(key, copy, &err), FL_EINVAL);
    fl_error_clear(&err);
    assert_int_equal(chmod(open_dir, 0700), 0);
    free(pub);
    free(open_dir);
    free(copy);
}

/*
 * A secret certificate that does not parse says so, and nothing of it:
 * CZMQ's parser printed the offending line, the secret key, on stdout.
 */
static void
test_cert_a_broken_secret_certificate_is_not_echoed(void **state)
{
    s_fixture *f = *state;
    char *sec = s_path(f, "server.cert_secret");
    char *bad = s_path(f, "broken.cert_secret");
    char *out = s_path(f, "broken.out");
    char text[1024] = "", said[4096] = "", key[64] = "", *at = NULL;
    FILE *fp = fopen(sec, "r");
    fl_cert_t *c = NULL;
    fl_error_t err = FL_ERROR_INIT;
    int saved[2], fd;
    size_t n;

    assert_non_null(fp);
    n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    text[n] = '\0';
    at = strstr(text, "secret-key = \"");
    assert_non_null(at);
    memcpy(key, at + 14, 40);
    /* "secret-key "KEY"": the ZPL has no "=" there. */
    memmove(at + 10, at + 12, strlen(at + 12) + 1);
    fp = fopen(bad, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
    assert_int_equal(chmod(bad, 0600), 0);
    fflush(stdout);
    fflush(stderr);
    saved[0] = dup(1);
    saved[1] = dup(2);
    fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    dup2(fd, 1);
    dup2(fd, 2);
    assert_int_not_equal(fl_cert_load_secret(&c, bad, &err), 0);
    fflush(stdout);
    fflush(stderr);
    dup2(saved[0], 1);
    dup2(saved[1], 2);
    close(saved[0]);
    close(saved[1]);
    close(fd);
    fp = fopen(out, "r");
    assert_non_null(fp);
    n = fread(said, 1, sizeof(said) - 1, fp);
    fclose(fp);
    said[n] = '\0';
    if (strstr(said, key) != NULL || strstr(err.message, key) != NULL)
        fail_msg("the secret key was printed: %s / %s", said, err.message);
    fl_error_clear(&err);
    free(sec);
    free(bad);
    free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cert_files_are_zcert_and_never_replaced_silently),
        cmocka_unit_test(
            test_certset_load_enrols_public_certs_and_refuses_secrets),
        cmocka_unit_test(
            test_link_zap_admits_only_enrolled_keys_and_selftest_sees_it),
        cmocka_unit_test(test_link_wrong_pin_and_oversized_message),
        cmocka_unit_test(test_cert_a_broken_secret_certificate_is_not_echoed),
        cmocka_unit_test(
            test_cert_force_replaces_links_never_writes_through_them),
        cmocka_unit_test(
            test_cert_generate_refuses_a_dangling_link_leaving_nothing),
        cmocka_unit_test(
            test_cert_pinned_is_refused_where_others_may_replace_it),
    };
    return cmocka_run_group_tests_name("transport", tests, s_setup,
                                       s_teardown);
}
