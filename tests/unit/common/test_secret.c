/* Unit tests for common/secret: mode checks, limits, saving. */
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_secret_world_readable_file_is_refused),
        cmocka_unit_test(test_secret_missing_and_directory),
        cmocka_unit_test(test_secret_save_is_0600_and_never_overwrites_without_force),
    };
    return cmocka_run_group_tests_name("secret", tests, NULL, NULL);
}
