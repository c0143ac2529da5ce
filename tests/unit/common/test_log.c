/* Unit tests for common/log: levels, fields, JSON and text formats, file sink. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_sink_receives_fields_and_level_filter),
        cmocka_unit_test(test_log_record_json_is_valid_json_even_with_bad_utf8),
        cmocka_unit_test(test_log_record_text_is_readable),
        cmocka_unit_test(test_log_file_gets_json_lines),
        cmocka_unit_test(test_log_open_file_in_missing_dir_fails_with_path),
    };
    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
