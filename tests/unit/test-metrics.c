/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "metrics.h"

/* The value of the sample line that starts with `series` followed by a space, or -1. */
static double sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

/* Every line is a # HELP/# TYPE comment or "name{labels} value" with a number. */
static void assert_exposition_format(const char *text, size_t len)
{
    assert_int_equal(text[len - 1], '\n');
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, '\n');
        assert_non_null(end);
        size_t l = (size_t)(end - p);
        char line[512];
        assert_true(l < sizeof(line));
        memcpy(line, p, l);
        line[l] = '\0';
        if (line[0] == '#') {
            assert_true(strncmp(line, "# HELP ", 7) == 0 || strncmp(line, "# TYPE ", 7) == 0);
        } else {
            char *sp = strrchr(line, ' ');
            assert_non_null(sp);
            char *num_end;
            strtod(sp + 1, &num_end);
            assert_true(*num_end == '\0' && num_end > sp + 1);
            for (char *q = line; q < sp && *q != '{'; q++)
                assert_true((*q >= 'a' && *q <= 'z') || *q == '_');
        }
        p = end + 1;
    }
}

static void test_render_counts_and_format(void **state)
{
    (void)state;
    Metrics m = {0};
    metrics_count_request(&m, ROUTE_ENQUEUE, 202);
    metrics_count_request(&m, ROUTE_ENQUEUE, 202);
    metrics_count_request(&m, ROUTE_ENQUEUE, 400);
    metrics_count_request(&m, ROUTE_HEALTH, 200);
    metrics_count_request(&m, ROUTE_OTHER, 418); /* not one of ours: "other" */
    m.attempts[ATTEMPT_TIMEOUT] = 3;
    m.retries = 2;
    m.write_timeouts = 4;
    metrics_observe(&m.worker_latency, 300);     /* 0.0003 s: first bucket */
    metrics_observe(&m.worker_latency, 20000);   /* 0.02 s */
    metrics_observe(&m.worker_latency, 9000000); /* 9 s: only +Inf */
    MetricsGauges g = {.in_flight = 7, .connections = 3, .breaker_state = 1, .start_time = 1e9};
    size_t len = 0;
    char *t = metrics_render(&m, &g, "1.2.3", &len);
    assert_non_null(t);
    assert_int_equal(strlen(t), len);
    assert_exposition_format(t, len);

    assert_true(sample(t, "argus_http_requests_total{route=\"enqueue\",status=\"202\"}") == 2);
    assert_true(sample(t, "argus_http_requests_total{route=\"enqueue\",status=\"400\"}") == 1);
    assert_true(sample(t, "argus_http_requests_total{route=\"health\",status=\"200\"}") == 1);
    assert_true(sample(t, "argus_http_requests_total{route=\"other\",status=\"other\"}") == 1);
    assert_true(sample(t, "argus_http_requests_total{route=\"health\",status=\"404\"}") == -1);
    assert_true(sample(t, "argus_worker_attempts_total{outcome=\"timeout\"}") == 3);
    assert_true(sample(t, "argus_worker_attempts_total{outcome=\"ok\"}") == 0);
    assert_true(sample(t, "argus_worker_retries_total") == 2);
    assert_true(sample(t, "argus_requests_in_flight") == 7);
    assert_true(sample(t, "argus_connections_open") == 3);
    assert_true(sample(t, "argus_write_timeouts_total") == 4);
    assert_true(sample(t, "argus_breaker_state") == 1);
    assert_true(sample(t, "process_start_time_seconds") == 1e9);
    assert_true(sample(t, "argus_build_info{version=\"1.2.3\"}") == 1);
    /* cumulative buckets */
    assert_true(sample(t, "argus_worker_latency_seconds_bucket{le=\"0.0005\"}") == 1);
    assert_true(sample(t, "argus_worker_latency_seconds_bucket{le=\"0.01\"}") == 1);
    assert_true(sample(t, "argus_worker_latency_seconds_bucket{le=\"0.025\"}") == 2);
    assert_true(sample(t, "argus_worker_latency_seconds_bucket{le=\"5\"}") == 2);
    assert_true(sample(t, "argus_worker_latency_seconds_bucket{le=\"+Inf\"}") == 3);
    assert_true(sample(t, "argus_worker_latency_seconds_count") == 3);
    double sum = sample(t, "argus_worker_latency_seconds_sum");
    assert_true(sum > 9.0202 && sum < 9.0204);
    assert_true(sample(t, "argus_request_duration_seconds_count") == 0);
    free(t);
}

/* h2o's own error answers: counted by their status, 400 always shown, nothing outside 4xx/5xx. */
static void test_protocol_errors_by_status(void **state)
{
    (void)state;
    Metrics m = {0};
    MetricsGauges g = {0};
    size_t len = 0;
    char *t = metrics_render(&m, &g, "1", &len);
    assert_non_null(t);
    assert_true(sample(t, "argus_http_protocol_errors_total{status=\"400\"}") == 0);
    assert_non_null(strstr(t, "# TYPE argus_http_protocol_errors_total counter\n"));
    free(t);

    metrics_count_protocol_error(&m, 400);
    metrics_count_protocol_error(&m, 400);
    metrics_count_protocol_error(&m, 413);
    metrics_count_protocol_error(&m, 599);
    metrics_count_protocol_error(&m, 399); /* not an error: left out */
    metrics_count_protocol_error(&m, 600);
    metrics_count_protocol_error(&m, 200);
    t = metrics_render(&m, &g, "1", &len);
    assert_non_null(t);
    assert_exposition_format(t, len);
    assert_true(sample(t, "argus_http_protocol_errors_total{status=\"400\"}") == 2);
    assert_true(sample(t, "argus_http_protocol_errors_total{status=\"413\"}") == 1);
    assert_true(sample(t, "argus_http_protocol_errors_total{status=\"599\"}") == 1);
    assert_true(sample(t, "argus_http_protocol_errors_total{status=\"417\"}") == -1);
    assert_null(strstr(t, "status=\"399\""));
    assert_null(strstr(t, "status=\"600\""));
    assert_null(strstr(t, "argus_http_protocol_errors_total{status=\"200\"}"));
    free(t);
}

/* The spool's counters always (0 without one), its gauges only with one; each delivery attempt
 * by how it ended; the delivery's gauges summed over the loops are the first loop's. */
static void test_spool(void **state)
{
    (void)state;
    Metrics m = {0};
    MetricsGauges g = {0};
    size_t len = 0;
    char *t = metrics_render(&m, &g, "1", &len);
    assert_non_null(t);
    assert_exposition_format(t, len);
    assert_true(sample(t, "argus_spool_jobs_total{result=\"expired\"}") == 0);
    assert_true(sample(t, "argus_spool_delivery_attempts_total{outcome=\"delivered\"}") == 0);
    assert_true(sample(t, "argus_spool_delivery_attempts_total{outcome=\"expired\"}") == 0);
    assert_true(sample(t, "argus_spool_held_jobs") == -1);
    assert_true(sample(t, "argus_spool_delivery_window") == -1);
    free(t);

    static Metrics loops[2];
    metrics_inc(&loops[0].spool_delivered);
    metrics_inc(&loops[0].spool_expired);
    metrics_inc(&loops[0].spool_dead);
    metrics_inc(&loops[0].spool_dead);
    metrics_inc(&loops[1].spool_queued);
    metrics_inc(&loops[0].spool_attempts[SPOOL_ATTEMPT_DELIVERED]);
    for (int i = 0; i < 5; i++)
        metrics_inc(&loops[0].spool_attempts[SPOOL_ATTEMPT_RETRY]);
    metrics_inc(&loops[0].spool_attempts[SPOOL_ATTEMPT_DEAD]);
    metrics_inc(&loops[0].spool_attempts[SPOOL_ATTEMPT_EXPIRED]);
    metrics_gauge(&loops[0].spool_in_flight, 3);
    metrics_gauge(&loops[0].spool_window, 11);
    metrics_gauge(&loops[0].spool_paused, 1);
    metrics_sum(&m, &loops[0]);
    metrics_sum(&m, &loops[1]);
    g = (MetricsGauges){.spool = true,
                        .spool_up = true,
                        .spool_jobs = 7,
                        .spool_held = 2,
                        .spool_dead = 4,
                        .spool_oldest_age = 12.5};
    t = metrics_render(&m, &g, "1", &len);
    assert_non_null(t);
    assert_exposition_format(t, len);
    assert_true(sample(t, "argus_spool_jobs_total{result=\"queued\"}") == 1);
    assert_true(sample(t, "argus_spool_jobs_total{result=\"delivered\"}") == 1);
    assert_true(sample(t, "argus_spool_jobs_total{result=\"dead\"}") == 2);
    assert_true(sample(t, "argus_spool_jobs_total{result=\"expired\"}") == 1);
    assert_true(sample(t, "argus_spool_delivery_attempts_total{outcome=\"delivered\"}") == 1);
    assert_true(sample(t, "argus_spool_delivery_attempts_total{outcome=\"retry\"}") == 5);
    assert_true(sample(t, "argus_spool_delivery_attempts_total{outcome=\"dead\"}") == 1);
    assert_true(sample(t, "argus_spool_delivery_attempts_total{outcome=\"expired\"}") == 1);
    assert_true(sample(t, "argus_spool_up") == 1);
    assert_true(sample(t, "argus_spool_jobs") == 7);
    assert_true(sample(t, "argus_spool_held_jobs") == 2);
    assert_true(sample(t, "argus_spool_dead_letters") == 4);
    assert_true(sample(t, "argus_spool_oldest_job_age_seconds") == 12.5);
    assert_true(sample(t, "argus_spool_deliveries_in_flight") == 3);
    assert_true(sample(t, "argus_spool_delivery_window") == 11);
    assert_true(sample(t, "argus_spool_delivery_paused") == 1);
    assert_non_null(strstr(t, "# TYPE argus_spool_delivery_attempts_total counter\n"));
    assert_non_null(strstr(t, "# TYPE argus_spool_held_jobs gauge\n"));
    free(t);
}

static void test_bucket_edges(void **state)
{
    (void)state;
    Histogram h = {0};
    metrics_observe(&h, 500); /* exactly on a bound: le="0.0005" */
    metrics_observe(&h, 501);
    assert_int_equal(h.buckets[0], 1);
    assert_int_equal(h.buckets[1], 1);
    assert_int_equal(h.count, 2);
    assert_int_equal(h.sum_usec, 1001);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_counts_and_format),
        cmocka_unit_test(test_protocol_errors_by_status),
        cmocka_unit_test(test_spool),
        cmocka_unit_test(test_bucket_edges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
