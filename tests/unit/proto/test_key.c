/*
 * Unit tests for proto/key: generating key files (modes, refusal to
 * overwrite), strict parsing of key files, key ids and signatures.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/alloc.h"
#include "proto/key.h"
#include "testsupport.h"

static void
test_key_generate_writes_0600_secret_and_matching_public(void **state)
{
    char *dir = fl_test_tmpdir();
    char *prefix = fl_asprintf("%s/rel", dir);
    char *kpath = fl_asprintf("%s.key", prefix);
    char *ppath = fl_asprintf("%s.pub", prefix);
    char id[FL_KEY_ID_HEX];
    unsigned char pk[FL_KEY_PUBLIC_BYTES];
    unsigned char sig[FL_KEY_SIGNATURE_BYTES];
    fl_key_t *k = NULL;
    fl_error_t err = FL_ERROR_INIT;
    struct stat st;

    (void)state;
    assert_int_equal(fl_key_generate_files(prefix, 0, id, &err), 0);
    assert_int_equal(strlen(id), 16);
    assert_int_equal(stat(kpath, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(fl_key_load(&k, kpath, &err), 0);
    assert_string_equal(fl_key_id(k), id);
    assert_int_equal(fl_key_load_public(pk, ppath, &err), 0);
    assert_memory_equal(pk, fl_key_public(k), sizeof(pk));
    fl_key_sign(k, sig, (const unsigned char *)"msg", 3);
    assert_int_equal(crypto_sign_verify_detached(sig, (const unsigned char *)"msg",
                                                 3, pk), 0);
    fl_key_destroy(&k);
    assert_null(k);
    fl_key_destroy(&k);

    /* Never overwritten without force; with force, a new key. */
    assert_int_equal(fl_key_generate_files(prefix, 0, id, &err), FL_ECONFLICT);
    assert_non_null(strstr(err.message, "already exists"));
    assert_non_null(strstr(err.hint, "--force"));
    fl_error_clear(&err);
    assert_int_equal(fl_key_generate_files(prefix, 1, id, &err), 0);
    assert_int_equal(fl_key_load(&k, kpath, &err), 0);
    assert_memory_not_equal(pk, fl_key_public(k), sizeof(pk));
    fl_key_destroy(&k);

    /* A readable secret key file is refused. */
    chmod(kpath, 0644);
    assert_int_equal(fl_key_load(&k, kpath, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "group or world access"));
    fl_error_clear(&err);
    fl_test_rmtree(dir);
    free(dir);
    free(prefix);
    free(kpath);
    free(ppath);
}

static void
test_key_files_are_parsed_strictly(void **state)
{
    static const char *const bad[] = {
        "",
        "flotilla-ed25519-public\n",
        "flotilla-ed25519-public AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n",
        "flotilla-ed25519-public  AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        "flotilla-ed25519-public AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\n",
        "flotilla-ed25519-secret AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n",
        "flotilla-ed25519-public AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA==\n",
        NULL,
    };
    char *dir = fl_test_tmpdir();
    char *path = fl_asprintf("%s/k.pub", dir);
    unsigned char pk[FL_KEY_PUBLIC_BYTES];
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    fl_test_write_file(path, "flotilla-ed25519-public "
                             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n");
    assert_int_equal(fl_key_load_public(pk, path, &err), 0);
    for (int i = 0; bad[i]; i++) {
        fl_test_write_file(path, bad[i]);
        if (fl_key_load_public(pk, path, &err) != FL_EINVAL)
            fail_msg("accepted bad key file %d", i);
        assert_non_null(strstr(err.message, "invalid public key file"));
        fl_error_clear(&err);
    }
    fl_test_rmtree(dir);
    free(dir);
    free(path);
}

/*
 * A FIFO where a public key file is (or in a trust directory) is refused
 * at once as not a regular file, never waited on: the alarm ends the
 * test if the open blocks.  Before, verify, inspect and apply hung on it
 * (found by an audit).
 */
/*
 * A link to nothing at PREFIX.pub (or PREFIX.key) counts as a file there:
 * refused before either is written, so the refusal leaves no secret key
 * behind.  Before, stat followed the link, found nothing, and the .key
 * was written before the .pub's O_EXCL refused (found by an audit).
 */
static void
test_key_generate_refuses_a_dangling_link_leaving_nothing(void **state)
{
    char *dir = fl_test_tmpdir();
    char *prefix = fl_asprintf("%s/k4", dir);
    char *kpath = fl_asprintf("%s.key", prefix);
    char *ppath = fl_asprintf("%s.pub", prefix);
    char id[FL_KEY_ID_HEX];
    fl_error_t err = FL_ERROR_INIT;
    struct stat st;

    (void)state;
    assert_int_equal(symlink("nowhere_pub", ppath), 0);
    assert_int_equal(fl_key_generate_files(prefix, 0, id, &err), FL_ECONFLICT);
    assert_non_null(strstr(err.message, "already exists"));
    fl_error_clear(&err);
    assert_int_not_equal(lstat(kpath, &st), 0);
    fl_test_rmtree(dir);
    free(dir);
    free(prefix);
    free(kpath);
    free(ppath);
}

static void
test_key_file_that_is_a_fifo_is_refused_at_once(void **state)
{
    char *dir = fl_test_tmpdir();
    char *path = fl_asprintf("%s/k.pub", dir);
    unsigned char pk[FL_KEY_PUBLIC_BYTES];
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(10);
    assert_int_equal(fl_key_load_public(pk, path, &err), FL_EINVAL);
    alarm(0);
    assert_non_null(strstr(err.message, "not a regular file"));
    fl_error_clear(&err);
    fl_test_rmtree(dir);
    free(dir);
    free(path);
}

static void
test_key_id_is_a_digest_of_the_public_key(void **state)
{
    unsigned char seed[32] = {7};
    unsigned char id[FL_KEY_ID_BYTES];
    unsigned char h[16];
    char hex[FL_KEY_ID_HEX];
    fl_key_t *k = fl_key_new_from_seed(seed);
    fl_key_t *k2 = fl_key_new_from_seed(seed);

    (void)state;
    crypto_generichash(h, sizeof(h), fl_key_public(k), FL_KEY_PUBLIC_BYTES,
                       NULL, 0);
    fl_key_id_of(id, fl_key_public(k));
    assert_memory_equal(id, h, FL_KEY_ID_BYTES);
    fl_key_id_format(hex, id);
    assert_string_equal(hex, fl_key_id(k));
    assert_string_equal(fl_key_id(k), fl_key_id(k2));
    fl_key_destroy(&k);
    fl_key_destroy(&k2);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_generate_writes_0600_secret_and_matching_public),
        cmocka_unit_test(test_key_files_are_parsed_strictly),
        cmocka_unit_test(test_key_file_that_is_a_fifo_is_refused_at_once),
        cmocka_unit_test(
            test_key_generate_refuses_a_dangling_link_leaving_nothing),
        cmocka_unit_test(test_key_id_is_a_digest_of_the_public_key),
    };
    return cmocka_run_group_tests_name("key", tests, NULL, NULL);
}
