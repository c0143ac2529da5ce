/*
 * Unit tests for common/map: put, get, replace, remove, iteration, and a
 * long random sequence of operations checked against a plain array, so
 * that backward-shift deletion is exercised across wrap-around and growth.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/map.h"

typedef struct {
    char key[16];
    int value;
} s_item;

static void
test_map_put_get_replace_remove(void **state)
{
    fl_map_t *m = fl_map_new();
    s_item a = {"alpha", 1}, b = {"beta", 2}, a2 = {"alpha", 3};

    (void)state;
    assert_null(fl_map_gets(m, "alpha"));
    assert_null(fl_map_puts(m, a.key, &a));
    assert_null(fl_map_puts(m, b.key, &b));
    assert_ptr_equal(fl_map_gets(m, "alpha"), &a);
    assert_ptr_equal(fl_map_puts(m, a2.key, &a2), &a);
    assert_int_equal(fl_map_count(m), 2);
    assert_ptr_equal(fl_map_gets(m, "alpha"), &a2);
    assert_ptr_equal(fl_map_removes(m, "alpha"), &a2);
    assert_null(fl_map_removes(m, "alpha"));
    assert_null(fl_map_gets(m, "alpha"));
    assert_ptr_equal(fl_map_gets(m, "beta"), &b);
    assert_int_equal(fl_map_count(m), 1);
    fl_map_destroy(&m);
    assert_null(m);
    fl_map_destroy(&m);
}

static void
test_map_binary_and_empty_keys(void **state)
{
    fl_map_t *m = fl_map_new();
    static const unsigned char k1[4] = {0, 1, 0, 2}, k2[4] = {0, 1, 0, 3};
    int x = 1, y = 2, z = 3;

    (void)state;
    fl_map_put(m, k1, 4, &x);
    fl_map_put(m, k2, 4, &y);
    fl_map_put(m, "", 0, &z);
    assert_ptr_equal(fl_map_get(m, k1, 4), &x);
    assert_ptr_equal(fl_map_get(m, k2, 4), &y);
    assert_null(fl_map_get(m, k1, 3));
    assert_ptr_equal(fl_map_gets(m, ""), &z);
    fl_map_destroy(&m);
}

static void
test_map_next_visits_every_entry_once(void **state)
{
    fl_map_t *m = fl_map_new();
    s_item *items = calloc(1000, sizeof(*items));
    int *seen = calloc(1000, sizeof(*seen));
    size_t pos = 0;
    s_item *it = NULL;

    (void)state;
    for (int i = 0; i < 1000; i++) {
        snprintf(items[i].key, sizeof(items[i].key), "t%d", i);
        items[i].value = i;
        fl_map_puts(m, items[i].key, &items[i]);
    }
    while ((it = fl_map_next(m, &pos)) != NULL)
        seen[it->value]++;
    for (int i = 0; i < 1000; i++)
        assert_int_equal(seen[i], 1);
    fl_map_destroy(&m);
    free(items);
    free(seen);
}

/*
 * 200,000 random puts and removes over 3,000 keys, each checked against
 * the reference array, with a full lookup sweep every 10,000 steps: any
 * entry lost or left behind by a shift shows up as a mismatch.
 */
static void
test_map_random_operations_match_a_reference(void **state)
{
    enum { N = 3000 };
    fl_map_t *m = fl_map_new();
    s_item *items = calloc(N, sizeof(*items));
    int *present = calloc(N, sizeof(*present));
    size_t count = 0;
    unsigned seed = 12345;

    (void)state;
    for (int i = 0; i < N; i++) {
        snprintf(items[i].key, sizeof(items[i].key), "k%d", i);
        items[i].value = i;
    }
    for (int step = 1; step <= 200000; step++) {
        int k;

        seed = seed * 1103515245u + 12345u;
        k = (int)((seed >> 8) % N);
        if ((seed >> 4) & 1) {
            void *prev = fl_map_puts(m, items[k].key, &items[k]);
            assert_ptr_equal(prev, present[k] ? &items[k] : NULL);
            if (!present[k])
                count++;
            present[k] = 1;
        } else {
            void *prev = fl_map_removes(m, items[k].key);
            assert_ptr_equal(prev, present[k] ? &items[k] : NULL);
            if (present[k])
                count--;
            present[k] = 0;
        }
        assert_int_equal(fl_map_count(m), count);
        if (step % 10000 == 0)
            for (int i = 0; i < N; i++)
                assert_ptr_equal(fl_map_gets(m, items[i].key),
                                 present[i] ? &items[i] : NULL);
    }
    fl_map_destroy(&m);
    free(items);
    free(present);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_map_put_get_replace_remove),
        cmocka_unit_test(test_map_binary_and_empty_keys),
        cmocka_unit_test(test_map_next_visits_every_entry_once),
        cmocka_unit_test(test_map_random_operations_match_a_reference),
    };
    return cmocka_run_group_tests_name("map", tests, NULL, NULL);
}
