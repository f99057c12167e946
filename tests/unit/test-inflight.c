/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "inflight.h"

typedef struct Item {
    InflightEntry entry;
    char key[32];
} Item;

static void test_add_find_remove_many(void **state)
{
    (void)state;
    enum { N = 5000 };
    Item *items = calloc(N, sizeof(Item));
    assert_non_null(items);
    Inflight t = {0};
    for (int i = 0; i < N; i++) {
        snprintf(items[i].key, sizeof(items[i].key), "reviews:p%d:start", i);
        items[i].entry.key = items[i].key;
        assert_int_equal(inflight_add(&t, &items[i].entry), 0);
    }
    assert_int_equal(t.n_entries, N);
    for (int i = 0; i < N; i++) {
        char k[32];
        snprintf(k, sizeof(k), "reviews:p%d:start", i);
        assert_ptr_equal(inflight_find(&t, k), &items[i].entry);
    }
    assert_null(inflight_find(&t, "reviews:nope:start"));
    for (int i = 0; i < N; i += 2)
        inflight_remove(&t, &items[i].entry);
    assert_int_equal(t.n_entries, N / 2);
    for (int i = 0; i < N; i++)
        if (i % 2)
            assert_ptr_equal(inflight_find(&t, items[i].key), &items[i].entry);
        else
            assert_null(inflight_find(&t, items[i].key));
    inflight_done(&t);
    free(items);
}

static void test_empty_table(void **state)
{
    (void)state;
    Inflight t = {0};
    assert_null(inflight_find(&t, "x"));
    Item it = {.entry.key = "x"};
    inflight_remove(&t, &it.entry); /* not there: nothing happens */
    inflight_done(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add_find_remove_many),
        cmocka_unit_test(test_empty_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
