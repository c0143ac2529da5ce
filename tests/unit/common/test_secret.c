/* Unit tests for common/secret: mode and owner checks, limits, saving. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/alloc.h"
#include "common/file.h"
#include "common/secret.h"
#include "testsupport.h"

static void
test_secret_world_readable_file_is_refused(void **state)
{
    char *dir = fl_test_tmpdir();
    char *path = fl_asprintf("%s/k.key", dir);
    fl_error_t err = FL_ERROR_INIT;
    fl_secret_t s = FL_SECRET_INIT;

    (void)state;
    fl_test_write_file(path, "secret-bytes");
    chmod(path, 0644);
    assert_int_equal(fl_secret_load(&s, path, 1024, &err), FL_EINVAL);
    assert_null(s.data);
    assert_non_null(strstr(err.message, "has group or world access"));
    assert_non_null(strstr(err.detail, "0644"));
    assert_non_null(strstr(err.hint, "chmod 600"));
    fl_error_clear(&err);
    chmod(path, 0640);
    assert_int_equal(fl_secret_check_file(path, &err), FL_EINVAL);
    fl_error_clear(&err);
    chmod(path, 0600);
    assert_int_equal(fl_secret_load(&s, path, 1024, &err), 0);
    assert_int_equal(s.len, 12);
    assert_memory_equal(s.data, "secret-bytes", 12);
    fl_secret_release(&s);
    assert_null(s.data);
    fl_secret_release(&s);
    assert_int_equal(fl_secret_load(&s, path, 4, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "too large"));
    fl_error_clear(&err);
    free(path);
    fl_test_rmtree(dir);
    free(dir);
}

/*
 * A public file given where its secret goes (a certificate, a .pub key)
 * is named so, with the secret beside it, not told to chmod 600 (which
 * would have been wrong advice: found by audits).
 */
static void
test_secret_a_public_file_given_names_its_secret(void **state)
{
    char *dir = fl_test_tmpdir();
    char *cert = fl_asprintf("%s/alice.cert", dir);
    char *csec = fl_asprintf("%s/alice.cert_secret", dir);
    char *pub = fl_asprintf("%s/rel.pub", dir);
    char *key = fl_asprintf("%s/rel.key", dir);
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    fl_test_write_file(cert, "public");
    fl_test_write_file(csec, "secret");
    fl_test_write_file(pub, "public");
    fl_test_write_file(key, "secret");
    chmod(cert, 0644);
    chmod(pub, 0644);
    assert_int_equal(fl_secret_check_file(cert, &err), FL_EINVAL);
    assert_non_null(strstr(err.hint, csec));
    assert_null(strstr(err.hint, "chmod"));
    fl_error_clear(&err);
    assert_int_equal(fl_secret_check_file(pub, &err), FL_EINVAL);
    assert_non_null(strstr(err.hint, key));
    assert_null(strstr(err.hint, "chmod"));
    fl_error_clear(&err);
    free(key);
    free(pub);
    free(csec);
    free(cert);
    fl_test_rmtree(dir);
    free(dir);
}

static void
test_secret_missing_and_directory(void **state)
{
    char *dir = fl_test_tmpdir();
    char *path = fl_asprintf("%s/none.key", dir);
    fl_error_t err = FL_ERROR_INIT;
    fl_secret_t s = FL_SECRET_INIT;

    (void)state;
    assert_int_equal(fl_secret_load(&s, path, 64, &err), FL_ENOTFOUND);
    assert_non_null(strstr(err.message, path));
    fl_error_clear(&err);
    chmod(dir, 0700);
    assert_int_equal(fl_secret_check_file(dir, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "not a regular file"));
    fl_error_clear(&err);
    free(path);
    fl_test_rmtree(dir);
    free(dir);
}

static void
test_secret_save_is_0600_and_never_overwrites_without_force(void **state)
{
    char *dir = fl_test_tmpdir();
    char *path = fl_asprintf("%s/new.key", dir);
    fl_error_t err = FL_ERROR_INIT;
    fl_secret_t s = FL_SECRET_INIT;
    struct stat st;

    (void)state;
    assert_int_equal(fl_secret_save(path, "abc", 3, 0, &err), 0);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(fl_secret_save(path, "xyz", 3, 0, &err), FL_ECONFLICT);
    assert_non_null(strstr(err.hint, "--force"));
    fl_error_clear(&err);
    assert_int_equal(fl_secret_save(path, "xyz!", 4, 1, &err), 0);
    assert_int_equal(fl_secret_load(&s, path, 64, &err), 0);
    assert_memory_equal(s.data, "xyz!", 4);
    fl_secret_release(&s);
    free(path);
    fl_test_rmtree(dir);
    free(dir);
}

/*
 * A temporary file flotilla did not create is never removed: another
 * process's "<path>.tmp.<pid>" survives a save that collides with it.
 */
static void
test_secret_save_leaves_a_temporary_file_it_did_not_create(void **state)
{
    char *dir = fl_test_tmpdir();
    char *path = fl_asprintf("%s/k.key", dir);
    char *tmp = fl_asprintf("%s.tmp.%ld", path, (long)getpid());
    fl_error_t err = FL_ERROR_INIT;
    fl_secret_t s = FL_SECRET_INIT;
    struct stat st;

    (void)state;
    fl_test_write_file(tmp, "someone else's");
    assert_int_equal(fl_secret_save(path, "abc", 3, 1, &err), 0);
    assert_int_equal(stat(tmp, &st), 0);
    assert_int_equal(fl_secret_load(&s, path, 64, &err), 0);
    assert_memory_equal(s.data, "abc", 3);
    fl_secret_release(&s);
    free(tmp);
    free(path);
    fl_test_rmtree(dir);
    free(dir);
}

/*
 * A symbolic link is not a secret file (whoever can write the directory
 * the link is in chooses what is read), and a FIFO does not hang the read.
 */
static void
test_secret_link_and_fifo_are_refused(void **state)
{
    char *dir = fl_test_tmpdir();
    char *path = fl_asprintf("%s/real.key", dir);
    char *link = fl_asprintf("%s/link.key", dir);
    char *fifo = fl_asprintf("%s/fifo.key", dir);
    fl_error_t err = FL_ERROR_INIT;
    fl_secret_t s = FL_SECRET_INIT;

    (void)state;
    assert_int_equal(fl_secret_save(path, "abc", 3, 0, &err), 0);
    assert_int_equal(symlink(path, link), 0);
    assert_int_not_equal(fl_secret_load(&s, link, 64, &err), 0);
    assert_null(s.data);
    assert_non_null(strstr(err.message, "symbolic link"));
    fl_error_clear(&err);
    assert_int_not_equal(fl_secret_check_file(link, &err), 0);
    fl_error_clear(&err);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    assert_int_equal(fl_secret_load(&s, fifo, 64, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "not a regular file"));
    fl_error_clear(&err);
    /* Saving through a link is refused too, and the target is unchanged. */
    assert_int_not_equal(fl_secret_save(link, "xyz", 3, 0, &err), 0);
    fl_error_clear(&err);
    assert_int_equal(fl_secret_load(&s, path, 64, &err), 0);
    assert_memory_equal(s.data, "abc", 3);
    fl_secret_release(&s);
    free(fifo);
    free(link);
    free(path);
    fl_test_rmtree(dir);
    free(dir);
}

/*
 * A secret file another user owns is refused even at mode 0600: its owner
 * can rewrite it (swap the key) and flotilla would read theirs.  The
 * error names the file and its owner and says what to chown.  Only root
 * can give a file away, so other users skip.
 */
/*
 * fl_file_read (certificates, the agent's journal) refuses a FIFO at
 * once as not a regular file, never waiting for a writer (the alarm ends
 * the test if the open blocks).
 */
static void
test_file_read_refuses_a_fifo_at_once(void **state)
{
    char *dir = fl_test_tmpdir();
    char *path = fl_asprintf("%s/fifo", dir);
    unsigned char *data = NULL;
    size_t len = 0;
    fl_error_t err = FL_ERROR_INIT;

    (void)state;
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(10);
    assert_int_equal(fl_file_read(&data, &len, path, 1024, "certificate",
                                  &err), FL_EINVAL);
    alarm(0);
    assert_null(data);
    assert_non_null(strstr(err.message, "not a regular file"));
    fl_error_clear(&err);
    fl_test_rmtree(dir);
    free(dir);
    free(path);
}

static void
test_secret_file_owned_by_another_user_is_refused(void **state)
{
    char *dir = NULL;
    char *path = NULL;
    fl_error_t err = FL_ERROR_INIT;
    fl_secret_t s = FL_SECRET_INIT;

    (void)state;
    if (geteuid() != 0)
        skip();
    dir = fl_test_tmpdir();
    path = fl_asprintf("%s/k.key", dir);
    assert_int_equal(fl_secret_save(path, "secret-bytes", 12, 0, &err), 0);
    assert_int_equal(chown(path, 65534, (gid_t)-1), 0);
    assert_int_equal(fl_secret_load(&s, path, 1024, &err), FL_EINVAL);
    assert_null(s.data);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, "is owned by another user"));
    assert_non_null(strstr(err.detail, "uid 65534"));
    assert_non_null(strstr(err.hint, "chown "));
    assert_null(strstr(err.message, "secret-bytes"));
    fl_error_clear(&err);
    assert_int_equal(fl_secret_check_file(path, &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "is owned by another user"));
    fl_error_clear(&err);
    /* Given back, the same file at the same mode is read. */
    assert_int_equal(chown(path, geteuid(), (gid_t)-1), 0);
    assert_int_equal(fl_secret_load(&s, path, 1024, &err), 0);
    assert_memory_equal(s.data, "secret-bytes", 12);
    fl_secret_release(&s);
    free(path);
    fl_test_rmtree(dir);
    free(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_world_readable_file_is_refused),
        cmocka_unit_test(test_secret_missing_and_directory),
        cmocka_unit_test(test_secret_a_public_file_given_names_its_secret),
        cmocka_unit_test(test_secret_save_is_0600_and_never_overwrites_without_force),
        cmocka_unit_test(test_secret_save_leaves_a_temporary_file_it_did_not_create),
        cmocka_unit_test(test_secret_link_and_fifo_are_refused),
        cmocka_unit_test(test_file_read_refuses_a_fifo_at_once),
        cmocka_unit_test(test_secret_file_owned_by_another_user_is_refused),
    };
    return cmocka_run_group_tests_name("secret", tests, NULL, NULL);
}
