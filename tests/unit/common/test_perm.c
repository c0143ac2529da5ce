/*
 * Unit tests for common/perm: a file, or a directory above it, that
 * another user could change is refused (sshd's StrictModes), with the
 * path, mode, owner and the command to run; sticky directories above it
 * and links resolved to a safe place are accepted.
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

#include "common/alloc.h"
#include "common/perm.h"
#include "testsupport.h"

typedef struct {
    char *dir;  /* a fresh 0700 directory */
    char *file; /* dir/k.pub, mode 0644 */
} fixture;

static int
setup(void **state)
{
    fixture *f = fl_calloc(1, sizeof(*f));

    f->dir = fl_test_tmpdir();
    f->file = fl_asprintf("%s/k.pub", f->dir);
    fl_test_write_file(f->file, "key\n");
    assert_int_equal(chmod(f->file, 0644), 0);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    fixture *f = *state;

    fl_test_rmtree(f->dir);
    free(f->dir);
    free(f->file);
    free(f);
    return 0;
}

/* Checks path as the current user and expects refusal with needles. */
static void
s_expect_refused(const char *path, uid_t uid, const char *message,
                 const char *detail, const char *hint)
{
    fl_error_t err = FL_ERROR_INIT;
    char *real = NULL;

    assert_int_equal(fl_perm_check(&real, path, "trusted key file", uid, &err),
                     FL_EINVAL);
    assert_null(real);
    if (strstr(err.message, message) == NULL)
        fail_msg("got \"%s\", wanted \"%s\"", err.message, message);
    if (detail && strstr(err.detail, detail) == NULL)
        fail_msg("got detail \"%s\", wanted \"%s\"", err.detail, detail);
    if (hint && strstr(err.hint, hint) == NULL)
        fail_msg("got hint \"%s\", wanted \"%s\"", err.hint, hint);
    fl_error_clear(&err);
}

static void
test_perm_private_file_passes_and_resolves(void **state)
{
    fixture *f = *state;
    char *real = NULL;
    char *want = realpath(f->file, NULL);
    fl_error_t err = FL_ERROR_INIT;

    assert_int_equal(fl_perm_check(&real, f->file, "trusted key file",
                                   geteuid(), &err), 0);
    assert_string_equal(real, want);
    free(real);
    assert_int_equal(fl_perm_check(NULL, f->dir, "trust store", geteuid(),
                                   &err), 0);
    free(want);
}

static void
test_perm_group_or_world_writable_file_is_refused(void **state)
{
    fixture *f = *state;

    assert_int_equal(chmod(f->file, 0664), 0);
    s_expect_refused(f->file, geteuid(), "is writable by group", "mode 0664",
                     "Run: chmod go-w ");
    assert_int_equal(chmod(f->file, 0646), 0);
    s_expect_refused(f->file, geteuid(), "is writable by others", NULL, NULL);
    assert_int_equal(chmod(f->file, 0666), 0);
    s_expect_refused(f->file, geteuid(), "is writable by group and others",
                     "mode 0666", NULL);
}

static void
test_perm_writable_directory_is_refused_even_sticky(void **state)
{
    fixture *f = *state;
    fl_error_t err = FL_ERROR_INIT;

    assert_int_equal(chmod(f->dir, 0777), 0);
    /* The directory itself: others could add a file to it. */
    assert_int_equal(fl_perm_check(NULL, f->dir, "trust store", geteuid(),
                                   &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "trust store"));
    assert_non_null(strstr(err.message, "is writable by group and others"));
    fl_error_clear(&err);
    assert_int_equal(chmod(f->dir, 01777), 0);
    assert_int_equal(fl_perm_check(NULL, f->dir, "trust store", geteuid(),
                                   &err), FL_EINVAL);
    fl_error_clear(&err);
}

static void
test_perm_writable_parent_is_refused_unless_sticky(void **state)
{
    fixture *f = *state;
    fl_error_t err = FL_ERROR_INIT;

    assert_int_equal(chmod(f->dir, 0757), 0);
    s_expect_refused(f->file, geteuid(), "is in a directory writable by others",
                     "mode 0757", "chmod go-w ");
    /* Sticky, like /tmp: others cannot rename or remove k.pub. */
    assert_int_equal(chmod(f->dir, 01777), 0);
    assert_int_equal(fl_perm_check(NULL, f->file, "trusted key file",
                                   geteuid(), &err), 0);
}

static void
test_perm_file_owned_by_another_user_is_refused(void **state)
{
    fixture *f = *state;
    uid_t me = geteuid();

    /*
     * Root may own anything: as root, give the file away; otherwise,
     * check as if another user (ours + 1) ran the check.
     */
    if (me == 0)
        assert_int_equal(chown(f->file, 4242, (gid_t)-1), 0);
    else
        me = me + 1;
    s_expect_refused(f->file, me, "is owned by another user", "is owned by ",
                     "Run as root: chown ");
}

static void
test_perm_parent_owned_by_another_user_is_refused(void **state)
{
    fixture *f = *state;
    uid_t me = geteuid();

    /* Only root can give a directory away. */
    if (me != 0)
        skip();
    assert_int_equal(chown(f->dir, 4242, (gid_t)-1), 0);
    s_expect_refused(f->file, me, "is in a directory owned by another user",
                     "uid 4242", "chown ");
}

static void
test_perm_link_is_checked_where_it_points(void **state)
{
    fixture *f = *state;
    char *open_dir = fl_asprintf("%s/open", f->dir);
    char *target = fl_asprintf("%s/open/evil.pub", f->dir);
    char *link = fl_asprintf("%s/link.pub", f->dir);
    char *real = NULL;
    fl_error_t err = FL_ERROR_INIT;

    assert_int_equal(mkdir(open_dir, 0700), 0);
    fl_test_write_file(target, "key\n");
    assert_int_equal(chmod(target, 0644), 0);
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(fl_perm_check(&real, link, "trusted key file", geteuid(),
                                   &err), 0);
    assert_non_null(strstr(real, "/open/evil.pub"));
    free(real);
    assert_int_equal(chmod(open_dir, 0777), 0);
    s_expect_refused(link, geteuid(), "open/evil.pub\" is in a directory "
                                      "writable by group and others",
                     NULL, NULL);
    free(open_dir);
    free(target);
    free(link);
}

static void
test_perm_missing_path_is_not_found(void **state)
{
    fixture *f = *state;
    char *none = fl_asprintf("%s/none.pub", f->dir);
    fl_error_t err = FL_ERROR_INIT;

    assert_int_equal(fl_perm_check(NULL, none, "trusted key file", geteuid(),
                                   &err), FL_ENOTFOUND);
    assert_non_null(strstr(err.message, "could not open trusted key file"));
    fl_error_clear(&err);
    free(none);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_perm_private_file_passes_and_resolves),
        T(test_perm_group_or_world_writable_file_is_refused),
        T(test_perm_writable_directory_is_refused_even_sticky),
        T(test_perm_writable_parent_is_refused_unless_sticky),
        T(test_perm_file_owned_by_another_user_is_refused),
        T(test_perm_parent_owned_by_another_user_is_refused),
        T(test_perm_link_is_checked_where_it_points),
        T(test_perm_missing_path_is_not_found),
#undef T
    };
    return cmocka_run_group_tests_name("perm", tests, NULL, NULL);
}
