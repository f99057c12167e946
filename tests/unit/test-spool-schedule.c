/* SPDX-License-Identifier: MIT */
/* Each spooled job's own schedule (spool-schedule.c): the backoff from 2 s doubling to
 * SPOOL_RETRY_MAX_SEC with equal jitter, the worker's Retry-After (capped), the lifetime
 * (SPOOL_MAX_AGE_SEC) as Postfix's maximal_queue_lifetime, and the expired job's error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "spool-schedule.h"

#define SEC 1000000ULL
#define T0 (1800000000ULL * SEC) /* some day in 2027 */

static const SpoolSchedule defaults = {.retry_max_usec = 300 * SEC, .max_age_usec = 432000 * SEC};

static uint64_t delay(const SpoolSchedule *s, unsigned attempts, uint64_t retry_after, uint64_t rnd)
{
    uint64_t due = 0;
    assert_int_equal(spool_schedule_failure(s, attempts, T0, T0 + 10 * SEC, retry_after, rnd, &due),
                     SPOOL_FATE_RETRY);
    assert_true(due > T0 + 10 * SEC);
    return due - (T0 + 10 * SEC);
}

/* 1-2 s, 2-4 s, 4-8 s, …, up to 150-300 s; rnd 0 the lowest, every value within. */
static void test_backoff_doubles_to_the_cap(void **state)
{
    (void)state;
    uint64_t d = 2 * SEC;
    for (unsigned a = 1; a <= 12; a++) {
        assert_int_equal(delay(&defaults, a, 0, 0), d / 2);
        for (uint64_t rnd = 1; rnd < 1000000000000ULL; rnd *= 37) {
            uint64_t x = delay(&defaults, a, 0, rnd);
            assert_true(x >= d / 2 && x <= d);
        }
        d = d * 2 > 300 * SEC ? 300 * SEC : d * 2;
    }
    assert_int_equal(delay(&defaults, 1000, 0, 0), 150 * SEC);
    /* a cap below the base: the cap */
    SpoolSchedule one = {.retry_max_usec = SEC};
    assert_true(delay(&one, 1, 0, 12345) <= SEC);
    assert_true(delay(&one, 1, 0, 12345) >= SEC / 2);
}

/* The worker's Retry-After when longer than the backoff, never past the cap. */
static void test_retry_after(void **state)
{
    (void)state;
    assert_int_equal(delay(&defaults, 1, 30 * SEC, 0), 30 * SEC);
    assert_int_equal(delay(&defaults, 1, 3000 * SEC, 0), 300 * SEC);
    /* shorter than the backoff: the backoff */
    assert_int_equal(delay(&defaults, 6, SEC, 0), 32 * SEC);
}

/* An attempt failing after the lifetime: expired. A retry that would fall after the end is
 * made at the end. 0: never. */
static void test_lifetime(void **state)
{
    (void)state;
    SpoolSchedule s = {.retry_max_usec = 300 * SEC, .max_age_usec = 100 * SEC};
    uint64_t due = 0;
    assert_int_equal(spool_schedule_end_usec(&s, T0), T0 + 100 * SEC);
    assert_int_equal(spool_schedule_failure(&s, 3, T0, T0 + 99 * SEC, 0, 0, &due),
                     SPOOL_FATE_RETRY);
    assert_int_equal(due, T0 + 100 * SEC); /* 4 s later would be past the end */
    assert_int_equal(spool_schedule_failure(&s, 4, T0, T0 + 100 * SEC, 0, 0, &due),
                     SPOOL_FATE_EXPIRED);
    assert_int_equal(spool_schedule_failure(&s, 1, T0, T0 + 5000 * SEC, 0, 0, &due),
                     SPOOL_FATE_EXPIRED);
    /* the lifetime counts from since: a requeued job starts again */
    assert_int_equal(spool_schedule_failure(&s, 1, T0 + 5000 * SEC, T0 + 5001 * SEC, 0, 0, &due),
                     SPOOL_FATE_RETRY);
    assert_int_equal(due, T0 + 5002 * SEC);
    SpoolSchedule never = {.retry_max_usec = 300 * SEC};
    assert_int_equal(spool_schedule_end_usec(&never, T0), 0);
    assert_int_equal(spool_schedule_failure(&never, 50, 1, T0 * 2, 0, 0, &due), SPOOL_FATE_RETRY);
    assert_int_equal(due, T0 * 2 + 150 * SEC);
    /* no overflow at the far end */
    SpoolSchedule year = {.retry_max_usec = SEC, .max_age_usec = 31536000 * SEC};
    assert_int_equal(spool_schedule_end_usec(&year, UINT64_MAX - 5), UINT64_MAX);
}

static void test_expired_error(void **state)
{
    (void)state;
    char buf[64];
    spool_schedule_expired_error(buf, sizeof(buf), 38, "worker returned HTTP 503");
    assert_string_equal(buf, "expired after 38 attempts: worker returned HTTP 503");
    spool_schedule_expired_error(buf, sizeof(buf), 1, "");
    assert_string_equal(buf, "expired after 1 attempts: no error recorded");
    spool_schedule_expired_error(buf, 20, 2, "a very long error that does not fit");
    assert_int_equal(strlen(buf), 19);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_backoff_doubles_to_the_cap),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_lifetime),
        cmocka_unit_test(test_expired_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
