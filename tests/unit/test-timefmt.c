/* SPDX-License-Identifier: MIT */
/* Unit tests of src/basic/timefmt.h: RFC 3339 timestamps and Go's time.Duration.String(). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "timefmt.h"

#define NS 1ULL
#define US (1000 * NS)
#define MS (1000 * US)
#define SEC (1000 * MS)
#define MIN (60 * SEC)
#define HOUR (60 * MIN)

/* ---- format_rfc3339 ---- */

static void check_rfc3339(time_t t, const char *want)
{
    char buf[RFC3339_MAX];
    memset(buf, '#', sizeof(buf));
    assert_int_equal(format_rfc3339(t, buf), 0);
    assert_string_equal(buf, want);
}

static void test_rfc3339(void **state)
{
    (void)state;
    check_rfc3339(0, "1970-01-01T00:00:00Z");
    check_rfc3339(1705314600, "2024-01-15T10:30:00Z");
    check_rfc3339(1705314659, "2024-01-15T10:30:59Z");
    check_rfc3339(951782400, "2000-02-29T00:00:00Z"); /* leap day */
    check_rfc3339(1709251199, "2024-02-29T23:59:59Z");
    check_rfc3339(2147483647, "2038-01-19T03:14:07Z");
    check_rfc3339(2147483648LL, "2038-01-19T03:14:08Z");
    check_rfc3339(253402300799LL, "9999-12-31T23:59:59Z");
    check_rfc3339(-1, "1969-12-31T23:59:59Z");
}

static void test_rfc3339_independent_of_tz(void **state)
{
    (void)state;
    const char *old = getenv("TZ");
    char *saved = old ? strdup(old) : NULL;
    setenv("TZ", "America/Los_Angeles", 1);
    tzset();
    check_rfc3339(1705314600, "2024-01-15T10:30:00Z");
    setenv("TZ", "Asia/Kolkata", 1);
    tzset();
    check_rfc3339(1705314600, "2024-01-15T10:30:00Z");
    if (saved) {
        setenv("TZ", saved, 1);
        free(saved);
    } else {
        unsetenv("TZ");
    }
    tzset();
}

static void test_rfc3339_overflow(void **state)
{
    (void)state;
    /* The year does not fit in struct tm: an error, never a buffer overrun. */
    char *buf = malloc(RFC3339_MAX);
    assert_non_null(buf);
    assert_true(format_rfc3339((time_t)INT64_MAX, buf) < 0);
    assert_true(format_rfc3339((time_t)INT64_MIN, buf) < 0);
    free(buf);
}

/* ---- format_go_duration ---- */

static void check_duration(uint64_t ns, const char *want)
{
    char buf[GO_DURATION_MAX];
    memset(buf, '#', sizeof(buf));
    format_go_duration(ns, buf);
    if (memchr(buf, '\0', sizeof(buf)) == NULL)
        fail_msg("%llu ns: not NUL-terminated", (unsigned long long)ns);
    if (strcmp(buf, want) != 0)
        fail_msg("%llu ns: got \"%s\", want \"%s\"", (unsigned long long)ns, buf, want);
}

static void test_duration_zero_and_ns(void **state)
{
    (void)state;
    check_duration(0, "0s");
    check_duration(1, "1ns");
    check_duration(9, "9ns");
    check_duration(10, "10ns");
    check_duration(850, "850ns");
    check_duration(999, "999ns");
}

static void test_duration_us(void **state)
{
    (void)state;
    /* U+00B5 MICRO SIGN, as Go writes it. */
    check_duration(1000, "1\xc2\xb5s");
    check_duration(1000, "1µs");
    check_duration(1001, "1.001µs");
    check_duration(1500, "1.5µs");
    check_duration(1010, "1.01µs");
    check_duration(10000, "10µs");
    check_duration(999999, "999.999µs");
}

static void test_duration_ms(void **state)
{
    (void)state;
    check_duration(1000000, "1ms");
    check_duration(1000001, "1.000001ms");
    check_duration(1234567, "1.234567ms");
    check_duration(1500000, "1.5ms");
    check_duration(150000000, "150ms");
    check_duration(100 * MS, "100ms");
    check_duration(999999999, "999.999999ms");
}

static void test_duration_seconds(void **state)
{
    (void)state;
    check_duration(1000000000ULL, "1s");
    check_duration(1000000001ULL, "1.000000001s");
    check_duration(1500000000ULL, "1.5s");
    check_duration(45 * SEC, "45s");
    check_duration(59 * SEC, "59s");
    check_duration(59 * SEC + 999999999, "59.999999999s");
}

static void test_duration_minutes_hours(void **state)
{
    (void)state;
    check_duration(60 * SEC, "1m0s");
    check_duration(65 * SEC, "1m5s");
    check_duration(65000000000ULL, "1m5s");
    check_duration(59 * MIN + 59 * SEC, "59m59s");
    check_duration(3600 * SEC, "1h0m0s");
    check_duration(3600000000000ULL, "1h0m0s");
    check_duration(2 * HOUR + 15 * MIN + 30 * SEC, "2h15m30s");
    check_duration(2 * HOUR + 15 * MIN + 30 * SEC + 500 * MS, "2h15m30.5s");
    check_duration(HOUR + 1, "1h0m0.000000001s");
    check_duration(100 * HOUR, "100h0m0s");
    check_duration(24 * HOUR + 2 * MIN + 3 * SEC, "24h2m3s");
}

static void test_duration_huge(void **state)
{
    (void)state;
    /* Go's largest Duration (math.MaxInt64). */
    check_duration(INT64_MAX, "2562047h47m16.854775807s");
    /* Beyond Go's range the arithmetic still holds, and fits the buffer. */
    check_duration(UINT64_MAX, "5124095h34m33.709551615s");

    /* Exactly GO_DURATION_MAX bytes on the heap so that an overrun shows under ASan. */
    char *buf = malloc(GO_DURATION_MAX);
    assert_non_null(buf);
    format_go_duration(UINT64_MAX, buf);
    assert_true(strlen(buf) < GO_DURATION_MAX);
    assert_string_equal(buf, "5124095h34m33.709551615s");
    format_go_duration(UINT64_MAX - 1, buf);
    assert_string_equal(buf, "5124095h34m33.709551614s");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc3339),          cmocka_unit_test(test_rfc3339_independent_of_tz),
        cmocka_unit_test(test_rfc3339_overflow), cmocka_unit_test(test_duration_zero_and_ns),
        cmocka_unit_test(test_duration_us),      cmocka_unit_test(test_duration_ms),
        cmocka_unit_test(test_duration_seconds), cmocka_unit_test(test_duration_minutes_hours),
        cmocka_unit_test(test_duration_huge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
