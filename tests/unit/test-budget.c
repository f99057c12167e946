/* SPDX-License-Identifier: MIT */
/* Unit tests of src/basic/budget.h: a shared bound taken from and given back to, as the places
 * for large request bodies and the waiting batches' bytes use it. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "budget.h"

static void test_takes_up_to_the_bound(void **state)
{
    (void)state;
    size_t used = 0;
    for (int i = 0; i < 128; i++)
        assert_true(budget_take(&used, 128, 1));
    assert_false(budget_take(&used, 128, 1));
    assert_int_equal(used, 128); /* a refusal takes nothing */
    budget_give(&used, 1);
    assert_true(budget_take(&used, 128, 1));
    assert_false(budget_take(&used, 128, 1));
}

/* A batch is refused as a whole when it would pass the bound, even while less is taken. */
static void test_refused_as_a_whole(void **state)
{
    (void)state;
    size_t used = 0;
    assert_true(budget_take(&used, 1000, 600));
    assert_false(budget_take(&used, 1000, 401));
    assert_int_equal(used, 600);
    assert_true(budget_take(&used, 1000, 400));
    assert_int_equal(used, 1000);
    budget_give(&used, 600);
    budget_give(&used, 400);
    assert_int_equal(used, 0);
    assert_false(budget_take(&used, 1000, 1001)); /* more than the whole */
    assert_false(budget_take(&used, 1000, SIZE_MAX));
    assert_int_equal(used, 0);
}

#define THREADS 4
#define ROUNDS 100000

typedef struct Shared {
    size_t used;
    size_t over; /* times a holder saw more taken than the bound */
} Shared;

static void *hammer(void *arg)
{
    Shared *s = arg;
    for (int i = 0; i < ROUNDS; i++)
        if (budget_take(&s->used, 3, 1)) {
            if (__atomic_load_n(&s->used, __ATOMIC_RELAXED) > 3)
                __atomic_add_fetch(&s->over, 1, __ATOMIC_RELAXED);
            budget_give(&s->used, 1);
        }
    return NULL;
}

/* From several threads at once: never past the bound, and all of it back at the end. */
static void test_threads(void **state)
{
    (void)state;
    Shared s = {0};
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, &s), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(s.over, 0);
    assert_int_equal(s.used, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_takes_up_to_the_bound),
        cmocka_unit_test(test_refused_as_a_whole),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
