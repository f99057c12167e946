/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "metrics.h"
#include "process-metrics.h"

/* The value of the sample line that starts with `series` followed by a space, or -1. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

/* Whether `text` has "# TYPE name type" for it. */
static bool typed(const char *text, const char *name, const char *type)
{
    char line[128];
    snprintf(line, sizeof(line), "# TYPE %s %s\n", name, type);
    return strstr(text, line) != NULL;
}

static void test_statm(void **state)
{
    (void)state;
    uint64_t virt = 0, rss = 0;
    assert_int_equal(process_statm_parse("2500 300 200 10 0 400 0\n", 4096, &virt, &rss), 0);
    assert_true(virt == 2500ull * 4096 && rss == 300ull * 4096);
    assert_int_equal(process_statm_parse("7 8", 65536, &virt, &rss), 0);
    assert_true(virt == 7ull * 65536 && rss == 8ull * 65536);
    assert_int_equal(process_statm_parse("", 4096, &virt, &rss), -EINVAL);
    assert_int_equal(process_statm_parse("12", 4096, &virt, &rss), -EINVAL);
    assert_int_equal(process_statm_parse("12 x", 4096, &virt, &rss), -EINVAL);
}

static void test_format(void **state)
{
    (void)state;
    ProcessStats s = {.cpu_seconds = 1.25,
                      .have_memory = true,
                      .resident_bytes = 14000000,
                      .virtual_bytes = 300000000,
                      .have_open_fds = true,
                      .open_fds = 12,
                      .have_max_fds = true,
                      .max_fds = 524288};
    char buf[PROCESS_METRICS_MAX];
    const char *t = process_metrics_format(&s, buf, sizeof(buf));
    assert_true(sample(t, "process_cpu_seconds_total") == 1.25);
    assert_true(sample(t, "process_resident_memory_bytes") == 14000000);
    assert_true(sample(t, "process_virtual_memory_bytes") == 300000000);
    assert_true(sample(t, "process_open_fds") == 12);
    assert_true(sample(t, "process_max_fds") == 524288);
    assert_true(typed(t, "process_cpu_seconds_total", "counter"));
    assert_true(typed(t, "process_resident_memory_bytes", "gauge"));
    assert_true(typed(t, "process_virtual_memory_bytes", "gauge"));
    assert_true(typed(t, "process_open_fds", "gauge"));
    assert_true(typed(t, "process_max_fds", "gauge"));

    /* what could not be read is left out, name and all; no limit is +Inf */
    s.have_memory = s.have_open_fds = false;
    s.max_fds = UINT64_MAX;
    t = process_metrics_format(&s, buf, sizeof(buf));
    assert_null(strstr(t, "process_resident_memory_bytes"));
    assert_null(strstr(t, "process_open_fds"));
    assert_non_null(strstr(t, "\nprocess_max_fds +Inf\n"));

    /* too small a buffer gives nothing rather than half a metric */
    char tiny[40];
    assert_string_equal(process_metrics_format(&s, tiny, sizeof(tiny)), "");
}

static void test_this_process(void **state)
{
    (void)state;
    ProcessStats s;
    process_stats_read(&s);
    assert_true(s.have_memory && s.have_open_fds && s.have_max_fds);
    assert_true(s.resident_bytes > 0 && s.virtual_bytes >= s.resident_bytes);
    assert_true(s.cpu_seconds >= 0);
    assert_true(s.max_fds > 0);

    /* a descriptor opened shows up; the listing's own one does not */
    uint64_t before = s.open_fds;
    int fd = dup(STDERR_FILENO);
    assert_true(fd >= 0);
    process_stats_read(&s);
    assert_int_equal(s.open_fds, before + 1);
    close(fd);
    process_stats_read(&s);
    assert_int_equal(s.open_fds, before);
}

static void test_in_metrics_render(void **state)
{
    (void)state;
    Metrics m = {0};
    MetricsGauges g = {.start_time = 1e9};
    size_t len = 0;
    char *t = metrics_render(&m, &g, "1.2.3", &len);
    assert_non_null(t);
    assert_true(sample(t, "process_cpu_seconds_total") >= 0);
    assert_true(sample(t, "process_resident_memory_bytes") > 0);
    assert_true(sample(t, "process_virtual_memory_bytes") > 0);
    assert_true(sample(t, "process_open_fds") > 0);
    assert_true(sample(t, "process_max_fds") > 0);
    assert_true(sample(t, "process_start_time_seconds") == 1e9);
    /* each family once */
    const char *first = strstr(t, "# TYPE process_open_fds ");
    assert_non_null(first);
    assert_null(strstr(first + 1, "# TYPE process_open_fds "));
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_statm),
        cmocka_unit_test(test_format),
        cmocka_unit_test(test_this_process),
        cmocka_unit_test(test_in_metrics_render),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
