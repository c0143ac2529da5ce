/*
 * test_shape.c - lint/shape: the tables and columns a run of migrations
 * leaves behind.  (tests/integration/test_baseline.c holds it to a real
 * catalog over generated histories.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/buf.h"
#include "lint/shape.h"

/* The shape as "schema.table.column@origin" items, in order. */
static char *
s_text(const fl_shape_t *s)
{
    fl_buf_t b = FL_BUF_INIT(0);
    char *out;

    for (size_t i = 0; i < s->count; i++) {
        const fl_shape_item_t *it = &s->items[i];
        fl_buf_addf(&b, "%s%s%s%s%s%s@%s", i ? " " : "",
                    it->schema ? it->schema : "", it->schema ? "." : "",
                    it->table, it->column ? "." : "",
                    it->column ? it->column : "", it->origin);
    }
    fl_buf_adds(&b, "");
    out = strdup(fl_buf_str(&b));
    fl_buf_release(&b);
    return out;
}

static void
s_add(fl_shape_t *s, const char *sql, const char *origin)
{
    fl_error_t err = FL_ERROR_INIT;

    if (fl_shape_add(s, sql, origin, &err) != 0)
        fail_msg("%s: %s", origin, err.message);
}

static void
s_expect(const fl_shape_t *s, const char *want)
{
    char *got = s_text(s);

    if (strcmp(got, want) != 0)
        fail_msg("shape\n  %s\nwanted\n  %s", got, want);
    free(got);
}

static void
test_shape_create_add_and_drop_columns_in_order(void **state)
{
    fl_shape_t s = FL_SHAPE_INIT;

    (void)state;
    s_add(&s, "CREATE TABLE app.users (id int PRIMARY KEY, \"Email\" text,"
              " CONSTRAINT u UNIQUE (id));", "m1");
    s_add(&s, "ALTER TABLE app.users ADD COLUMN name text, DROP COLUMN"
              " \"Email\"; ALTER TABLE app.users ADD age int;", "m2");
    s_expect(&s, "app.users@m1 app.users.id@m1 app.users.name@m2"
                 " app.users.age@m2");
    fl_shape_release(&s);
}

static void
test_shape_renames_take_the_renaming_migration(void **state)
{
    fl_shape_t s = FL_SHAPE_INIT;

    (void)state;
    s_add(&s, "CREATE TABLE notes (id int, body text);", "m1");
    s_add(&s, "ALTER TABLE notes RENAME COLUMN body TO content;", "m2");
    s_add(&s, "ALTER TABLE notes RENAME TO memos;", "m3");
    s_expect(&s, "memos@m3 memos.id@m3 memos.content@m3");
    s_add(&s, "ALTER TABLE memos SET SCHEMA archive;", "m4");
    s_expect(&s, "archive.memos@m4 archive.memos.id@m4"
                 " archive.memos.content@m4");
    fl_shape_release(&s);
}

static void
test_shape_drops_and_what_the_text_cannot_tell(void **state)
{
    fl_shape_t s = FL_SHAPE_INIT;

    (void)state;
    s_add(&s, "CREATE TABLE a (x int); CREATE TABLE public.b (y int);"
              " CREATE TEMP TABLE t (z int); CREATE TABLE c AS SELECT 1 AS v;"
              " CREATE VIEW v AS SELECT 1; DO $$ BEGIN EXECUTE 'CREATE TABLE"
              " d (w int)'; END $$;", "m1");
    s_add(&s, "DROP TABLE IF EXISTS a, public.b; this is not sql;", "m2");
    s_expect(&s, "c@m1");
    fl_shape_release(&s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_shape_create_add_and_drop_columns_in_order),
        cmocka_unit_test(test_shape_renames_take_the_renaming_migration),
        cmocka_unit_test(test_shape_drops_and_what_the_text_cannot_tell),
    };

    return cmocka_run_group_tests_name("shape", tests, NULL, NULL);
}
