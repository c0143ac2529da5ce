/* Unit tests for common/log: levels, fields, JSON and text formats, file sink. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/alloc.h"
#include "common/log.h"
#include "testsupport.h"

static void
test_log_sink_receives_fields_and_level_filter(void **state)
{
    fl_test_log_t cap;
    fl_log_field f[] = {{"rollout", "r1"}, {"agent", "a\"1"}};

    (void)state;
    fl_test_log_start(&cap);
    fl_log_set_level(FL_LOG_INFO);
    fl_log_emit(FL_LOG_INFO, "agent", f, 2, "step %s done", "backup");
    fl_log_debug("agent", "hidden %d", 1);
    assert_int_equal(cap.count, 1);
    assert_non_null(strstr(cap.lines[0], "\"message\":\"step backup done\""));
    assert_non_null(strstr(cap.lines[0], "\"agent\":\"a\\\"1\""));
    assert_non_null(strstr(cap.lines[0], "\"level\":\"info\""));
    fl_log_set_level(FL_LOG_DEBUG);
    fl_log_debug("agent", "shown %d", 2);
    assert_true(fl_test_log_contains(&cap, "shown 2"));
    fl_log_set_level(FL_LOG_INFO);
    fl_test_log_stop(&cap);
}

static void
test_log_record_json_is_valid_json_even_with_bad_utf8(void **state)
{
    fl_log_field f[] = {{"k", "v\n"}};
    fl_log_record rec = {1700000000123456LL, FL_LOG_WARNING, "cli",
                         "bad \xff byte", f, 1};
    char *line = fl_log_record_json(&rec);
    json_error_t jerr;
    json_t *obj = NULL;

    (void)state;
    assert_null(strchr(line, '\n'));
    obj = json_loads(line, 0, &jerr);
    assert_non_null(obj);
    assert_string_equal(json_string_value(json_object_get(obj, "time")),
                        "2023-11-14T22:13:20.123456Z");
    assert_string_equal(json_string_value(json_object_get(obj, "level")),
                        "warning");
    assert_string_equal(json_string_value(json_object_get(obj, "message")),
                        "bad \\xff byte");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(obj, "fields"), "k")), "v\n");
    json_decref(obj);
    free(line);
}

static void
test_log_record_text_is_readable(void **state)
{
    fl_log_field f[] = {{"db", "t1"}};
    fl_log_record rec = {0, FL_LOG_ERROR, "agent", "failed", f, 1};
    char *line = fl_log_record_text(&rec);

    (void)state;
    assert_string_equal(line, "00:00:00 ERROR   agent: failed db=t1");
    free(line);
}

static void
test_log_file_gets_json_lines(void **state)
{
    char *dir = fl_test_tmpdir();
    char *path = fl_asprintf("%s/x.log", dir);
    fl_error_t err = FL_ERROR_INIT;
    fl_test_log_t cap;
    FILE *f = NULL;
    char line[512];
    int n = 0;

    (void)state;
    fl_test_log_start(&cap);
    assert_int_equal(fl_log_open_file(path, &err), 0);
    fl_log_info("pipeline", "one");
    fl_log_warning("pipeline", "two");
    fl_log_close_file();
    f = fopen(path, "r");
    assert_non_null(f);
    while (fgets(line, sizeof(line), f)) {
        json_error_t jerr;
        json_t *obj = json_loads(line, 0, &jerr);
        assert_non_null(obj);
        json_decref(obj);
        n++;
    }
    fclose(f);
    assert_int_equal(n, 2);
    fl_test_log_stop(&cap);
    free(path);
    fl_test_rmtree(dir);
    free(dir);
}

static void
test_log_open_file_in_missing_dir_fails_with_path(void **state)
{
    fl_error_t err = FL_ERROR_INIT;
    fl_log_level lvl;

    (void)state;
    assert_int_equal(fl_log_open_file("/nonexistent/dir/x.log", &err), FL_EIO);
    assert_non_null(strstr(err.message, "/nonexistent/dir/x.log"));
    fl_error_clear(&err);
    assert_int_equal(fl_log_level_parse(&lvl, "loud", &err), FL_EINVAL);
    assert_non_null(strstr(err.message, "\"loud\""));
    fl_error_clear(&err);
    assert_int_equal(fl_log_level_parse(&lvl, "notice", &err), 0);
    assert_int_equal(lvl, FL_LOG_NOTICE);
}

/*
 * A log file is one of this user's own: a link at its path, a file
 * others may write and (as root) another user's file are refused, the
 * link's target untouched (before, root's apply in a directory another
 * user controls appended its log to whatever file the link named, and
 * kept another user's file with its owner and mode).  A device such as
 * /dev/null is taken.
 */
static void
test_log_file_is_never_a_link_or_another_user_s(void **state)
{
    char *dir = fl_test_tmpdir();
    char *victim = fl_asprintf("%s/victim", dir);
    char *link = fl_asprintf("%s/link.log", dir);
    char *open_to_all = fl_asprintf("%s/all.log", dir);
    char *theirs = fl_asprintf("%s/theirs.log", dir);
    fl_error_t err = FL_ERROR_INIT;
    FILE *f = NULL;
    char line[64] = "";

    (void)state;
    fl_test_write_file(victim, "victim\n");
    assert_int_equal(symlink(victim, link), 0);
    assert_int_not_equal(fl_log_open_file(link, &err), 0);
    assert_non_null(strstr(err.message, link));
    fl_error_clear(&err);
    fl_log_info("pipeline", "not for the victim");
    f = fopen(victim, "r");
    assert_non_null(f);
    assert_non_null(fgets(line, sizeof(line), f));
    assert_null(fgets(line + strlen(line), (int)(sizeof(line) -
                                                 strlen(line)), f));
    fclose(f);
    assert_string_equal(line, "victim\n");
    fl_test_write_file(open_to_all, "");
    assert_int_equal(chmod(open_to_all, 0666), 0);
    assert_int_not_equal(fl_log_open_file(open_to_all, &err), 0);
    fl_error_clear(&err);
    if (geteuid() == 0) {
        fl_test_write_file(theirs, "");
        assert_int_equal(chown(theirs, 65534, 65534), 0);
        assert_int_not_equal(fl_log_open_file(theirs, &err), 0);
        fl_error_clear(&err);
    }
    assert_int_equal(fl_log_open_file("/dev/null", &err), 0);
    fl_log_close_file();
    free(victim);
    free(link);
    free(open_to_all);
    free(theirs);
    fl_test_rmtree(dir);
    free(dir);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_sink_receives_fields_and_level_filter),
        cmocka_unit_test(test_log_record_json_is_valid_json_even_with_bad_utf8),
        cmocka_unit_test(test_log_record_text_is_readable),
        cmocka_unit_test(test_log_file_gets_json_lines),
        cmocka_unit_test(test_log_open_file_in_missing_dir_fails_with_path),
        cmocka_unit_test(test_log_file_is_never_a_link_or_another_user_s),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
