/*
 * Unit tests of agent/journal.[ch]: the agent's journal of commands and
 * results, read back after a restart.
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

#include <cmocka.h>

#include "agent/journal.h"
#include "common/alloc.h"
#include "testsupport.h"

#define S_N 24

/* Each test's journal, open, in a directory of its own. */
typedef struct {
    char *dir;       /* the test's directory */
    char *sd;        /* the state directory in it */
    char *jd;        /* its journal/ */
    fl_journal_t *j;
} s_fx;

static int
s_setup(void **state)
{
    s_fx *fx = fl_calloc(1, sizeof(*fx));
    fl_error_t err = FL_ERROR_INIT;

    fx->dir = fl_test_tmpdir();
    fx->sd = fl_asprintf("%s/state", fx->dir);
    fx->jd = fl_asprintf("%s/journal", fx->sd);
    assert_int_equal(fl_journal_open(&fx->j, fx->sd, 0, &err), 0);
    *state = fx;
    return 0;
}

static int
s_teardown(void **state)
{
    s_fx *fx = *state;

    fl_journal_close(&fx->j);
    fl_test_rmtree(fx->dir);
    free(fx->jd);
    free(fx->sd);
    free(fx->dir);
    free(fx);
    return 0;
}

/* Closes the journal and opens it again: a restart. */
static void
s_reopen(s_fx *fx)
{
    fl_error_t err = FL_ERROR_INIT;

    fl_journal_close(&fx->j);
    assert_int_equal(fl_journal_open(&fx->j, fx->sd, 0, &err), 0);
}

static void
s_ids_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/*
 * fl_journal_list gives the commands in the order they were written,
 * whatever their names and however close together: a restarted agent
 * carries them out in that order, and a target's rollback sent after
 * its apply must run after it.  Before, the directory's order (newest
 * first on tmpfs, a hash's on ext4): the ids here, written in an order
 * that is neither their names' nor its reverse, came back otherwise.
 * A result without its command is listed too.
 */
static void
test_journal_lists_commands_in_arrival_order(void **state)
{
    s_fx *fx = *state;
    fl_error_t err = FL_ERROR_INIT;
    char want[S_N][40];
    char **ids = NULL;
    size_t n = 0;

    for (int i = 0; i < S_N; i++) {
        /* 7 is prime to S_N: a permutation of the names. */
        snprintf(want[i], sizeof(want[i]), "%032x", (i * 7) % S_N + 1);
        assert_int_equal(fl_journal_put(fx->j, want[i], "cmd", "x", 1, &err),
                         0);
    }
    assert_int_equal(fl_journal_put(fx->j, want[3], "res", "y", 1, &err), 0);
    assert_int_equal(fl_journal_list(fx->j, &ids, &n, &err), 0);
    assert_int_equal(n, S_N);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(ids[i], want[i]) != 0)
            fail_msg("command %zu listed is %s, written %zu-th was %s", i,
                     ids[i], i, want[i]);
    }
    s_ids_free(ids, n);
    /* Reopened (a restart): the same order. */
    s_reopen(fx);
    assert_int_equal(fl_journal_list(fx->j, &ids, &n, &err), 0);
    assert_int_equal(n, S_N);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(ids[i], want[i]);
    s_ids_free(ids, n);
    /*
     * A command written after a restart whose clock went back (here: the
     * first command's time an hour ahead) still comes after the others.
     */
    {
        char *p = fl_asprintf("%s/%s.cmd", fx->jd, want[0]);
        struct timespec t[2];

        clock_gettime(CLOCK_REALTIME, &t[0]);
        t[0].tv_sec += 3600;
        t[1] = t[0];
        assert_int_equal(utimensat(AT_FDCWD, p, t, 0), 0);
        free(p);
    }
    s_reopen(fx);
    assert_int_equal(fl_journal_list(fx->j, &ids, &n, &err), 0);
    assert_string_equal(ids[n - 1], want[0]);
    s_ids_free(ids, n);
    assert_int_equal(fl_journal_put(fx->j, "after", "cmd", "x", 1, &err), 0);
    assert_int_equal(fl_journal_list(fx->j, &ids, &n, &err), 0);
    assert_int_equal(n, S_N + 1);
    assert_string_equal(ids[n - 1], "after");
    s_ids_free(ids, n);
}

/*
 * A cancel's mark (ID.cancel) is the command's: fl_journal_has sees it,
 * it is not listed as a command of its own, and fl_journal_remove takes
 * it with the command's other files.  Ids that cannot name a file have
 * none.
 */
static void
test_journal_cancel_mark_goes_with_its_command(void **state)
{
    s_fx *fx = *state;
    fl_journal_t *j = fx->j;
    fl_error_t err = FL_ERROR_INIT;
    char **ids = NULL;
    size_t n = 0;

    assert_int_equal(fl_journal_put(j, "c1", "cmd", "x", 1, &err), 0);
    assert_int_equal(fl_journal_has(j, "c1", "cancel"), 0);
    assert_int_equal(fl_journal_put(j, "c1", "cancel", "", 0, &err), 0);
    assert_int_equal(fl_journal_has(j, "c1", "cancel"), 1);
    assert_int_equal(fl_journal_has(j, "c2", "cancel"), 0);
    assert_int_equal(fl_journal_has(j, "../c1", "cancel"), 0);
    assert_int_equal(fl_journal_list(j, &ids, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(ids[0], "c1");
    s_ids_free(ids, n);
    fl_journal_remove(j, "c1");
    assert_int_equal(fl_journal_has(j, "c1", "cancel"), 0);
    assert_int_equal(fl_journal_has(j, "c1", "cmd"), 0);
    assert_int_equal(fl_journal_list(j, &ids, &n, &err), 0);
    assert_int_equal(n, 0);
    s_ids_free(ids, n);
}

/* 1 when dir/name exists. */
static int
s_exists(const char *dir, const char *name)
{
    char *p = fl_asprintf("%s/%s", dir, name);
    struct stat st;
    int rc = lstat(p, &st) == 0;

    free(p);
    return rc;
}

/*
 * fl_journal_remove takes a command's file first, then its cancel mark,
 * then its result, and stops at a file it cannot remove: a command
 * whose result the coordinator acknowledged must never be carried out
 * again, and a kill between two removals left the command alone, to run
 * again (its cancel mark gone before it, found by an audit).  A result
 * left alone is only sent again.  The failing removal here is a cancel
 * mark that is a directory with a file in it.
 */
static void
test_journal_remove_takes_the_command_first(void **state)
{
    s_fx *fx = *state;
    fl_journal_t *j = fx->j;
    char *mark = fl_asprintf("%s/c1.cancel", fx->jd);
    char *inside = fl_asprintf("%s/x", mark);
    fl_error_t err = FL_ERROR_INIT;

    assert_int_equal(fl_journal_put(j, "c1", "cmd", "x", 1, &err), 0);
    assert_int_equal(fl_journal_put(j, "c1", "res", "y", 1, &err), 0);
    assert_int_equal(mkdir(mark, 0700), 0);
    fl_test_write_file(inside, "z");
    fl_journal_remove(j, "c1");
    assert_int_equal(s_exists(fx->jd, "c1.cmd"), 0);
    assert_int_equal(s_exists(fx->jd, "c1.res"), 1);
    free(inside);
    free(mark);
}

/*
 * Opening the journal sweeps what a kill left of a write (ID.EXT.tmp)
 * and cancel marks whose command is gone (a kill between the removals
 * of an acknowledged command's files): neither is listed, and both were
 * left for ever.  A mark beside its command stays.
 */
static void
test_journal_open_sweeps_leftovers(void **state)
{
    s_fx *fx = *state;
    char *p = NULL;
    fl_error_t err = FL_ERROR_INIT;

    assert_int_equal(fl_journal_put(fx->j, "kept", "cmd", "x", 1, &err), 0);
    assert_int_equal(fl_journal_put(fx->j, "kept", "cancel", "", 0, &err),
                     0);
    assert_int_equal(fl_journal_put(fx->j, "gone", "cancel", "", 0, &err),
                     0);
    p = fl_asprintf("%s/half.cmd.tmp", fx->jd);
    fl_test_write_file(p, "x");
    free(p);
    p = fl_asprintf("%s/bundles/b.bundle.tmp", fx->sd);
    fl_test_write_file(p, "x");
    free(p);
    s_reopen(fx);
    assert_int_equal(s_exists(fx->jd, "half.cmd.tmp"), 0);
    assert_int_equal(s_exists(fx->sd, "bundles/b.bundle.tmp"), 0);
    assert_int_equal(s_exists(fx->jd, "gone.cancel"), 0);
    assert_int_equal(s_exists(fx->jd, "kept.cancel"), 1);
    assert_int_equal(s_exists(fx->jd, "kept.cmd"), 1);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_journal_lists_commands_in_arrival_order, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_journal_cancel_mark_goes_with_its_command, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(
            test_journal_remove_takes_the_command_first, s_setup,
            s_teardown),
        cmocka_unit_test_setup_teardown(test_journal_open_sweeps_leftovers,
                                        s_setup, s_teardown),
    };
    return cmocka_run_group_tests_name("journal", tests, NULL, NULL);
}
