/* SPDX-License-Identifier: MIT */
/* The circuit breaker and /ready, shared calls for duplicate jobs, and the worker's Retry-After. */
#include <json-c/json.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static void stop(Service *svc)
{
    assert_int_equal(service_stop(svc, SIGTERM), 0);
    service_cleanup(svc);
}

static const char *member(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

static void assert_ready(const Service *svc, bool ready)
{
    Response r = service_get(svc, "/ready");
    json_object *o = json_tokener_parse(r.body);
    assert_non_null(o);
    if (ready) {
        assert_int_equal(r.status, 200);
        assert_string_equal(member(o, "status"), "ready");
    } else {
        assert_int_equal(r.status, 503);
        assert_string_equal(member(o, "status"), "unavailable");
        assert_non_null(strstr(member(o, "error"), "circuit breaker open"));
        char ra[16];
        assert_true(response_header(&r, "Retry-After", ra, sizeof(ra)));
        assert_true(atoi(ra) >= 1);
    }
    assert_non_null(member(o, "timestamp"));
    json_object_put(o);
    response_free(&r);
}

static void test_breaker_opens_fails_fast_and_recovers(void **state)
{
    (void)state;
    Service svc;
    service_start_for_group(&svc, "BREAKER_THRESHOLD=3", "BREAKER_COOLDOWN_SEC=1",
                            "WORKER_RETRIES=0");
    assert_ready(&svc, true);

    for (int i = 0; i < 3; i++) {
        char place[64];
        snprintf(place, sizeof(place), "status503-brk-%d", i);
        Response r = service_enqueue(&svc, place);
        assert_int_equal(r.status, 502);
        response_free(&r);
    }
    assert_ready(&svc, false);

    /* Open: a good job fails fast with 503 and never reaches the worker. */
    Response r = service_enqueue(&svc, "brk-fast");
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "worker enqueue failed: circuit breaker open"));
    char ra[16];
    assert_true(response_header(&r, "Retry-After", ra, sizeof(ra)));
    response_free(&r);
    assert_int_equal(standin_count(&group_standin, "brk-fast"), 0);

    /* After the cool-down a failing probe opens it again … */
    usleep(1100 * 1000);
    r = service_enqueue(&svc, "status503-brk-probe");
    assert_int_equal(r.status, 502);
    response_free(&r);
    assert_ready(&svc, false);

    /* … and a good probe closes it. */
    usleep(1100 * 1000);
    r = service_enqueue(&svc, "brk-probe-ok");
    assert_int_equal(r.status, 202);
    response_free(&r);
    assert_int_equal(standin_count(&group_standin, "brk-probe-ok"), 1);
    assert_ready(&svc, true);
    r = service_enqueue(&svc, "brk-after");
    assert_int_equal(r.status, 202);
    response_free(&r);
    assert_true(service_log_contains(&svc, "circuit breaker open"));
    stop(&svc);
}

static void test_worker_4xx_does_not_open_the_breaker(void **state)
{
    (void)state;
    Service svc;
    service_start_for_group(&svc, "BREAKER_THRESHOLD=2", "WORKER_RETRIES=0", NULL);
    for (int i = 0; i < 4; i++) {
        char place[64];
        snprintf(place, sizeof(place), "status400-nobrk-%d", i);
        Response r = service_enqueue(&svc, place);
        assert_int_equal(r.status, 502);
        response_free(&r);
    }
    assert_ready(&svc, true);
    stop(&svc);
}

#define DUP_N 12

static void test_duplicates_share_one_call(void **state)
{
    (void)state;
    Service svc;
    service_start_for_group(&svc, NULL, NULL, NULL);
    char url[128];
    snprintf(url, sizeof(url), "%s/enqueue", svc.base);
    const char *bodies[DUP_N];
    long statuses[DUP_N];
    char *out[DUP_N];
    for (int i = 0; i < DUP_N; i++)
        bodies[i] = "{\"placeId\":\"slow700-dup\"}";
    http_post_parallel(url, bodies, DUP_N, statuses, out);
    for (int i = 0; i < DUP_N; i++) {
        assert_int_equal(statuses[i], 202);
        assert_non_null(strstr(out[i], "\"jobId\":\"reviews:slow700-dup:start\""));
        free(out[i]);
    }
    assert_int_equal(standin_count(&group_standin, "slow700-dup"), 1);

    /* … and share a failure too. */
    for (int i = 0; i < DUP_N; i++)
        bodies[i] = "{\"placeId\":\"status500-dupfail\"}";
    http_post_parallel(url, bodies, DUP_N, statuses, NULL);
    for (int i = 0; i < DUP_N; i++)
        assert_int_equal(statuses[i], 502);
    /* one call: its first attempt and its two retries */
    assert_int_equal(standin_count(&group_standin, "status500-dupfail"), 3);

    /* Once done, the same job is forwarded again. */
    Response r = service_enqueue(&svc, "slow700-dup");
    assert_int_equal(r.status, 202);
    response_free(&r);
    assert_int_equal(standin_count(&group_standin, "slow700-dup"), 2);
    stop(&svc);
}

static void test_short_retry_after_is_honoured(void **state)
{
    (void)state;
    Service svc;
    service_start_for_group(&svc, "WORKER_RETRIES=2", NULL, NULL);
    Response r = service_enqueue(&svc, "retry1s-short");
    assert_int_equal(r.status, 202);
    response_free(&r);
    assert_int_equal(standin_count(&group_standin, "retry1s-short"), 2);
    assert_true(service_log_contains(&svc, "retrying in 1000ms"));

    /* A long one is not waited for: the client gets it. */
    r = service_enqueue(&svc, "retry30s-long");
    assert_int_equal(r.status, 502);
    char ra[16];
    assert_true(response_header(&r, "Retry-After", ra, sizeof(ra)));
    assert_string_equal(ra, "30");
    response_free(&r);
    assert_int_equal(standin_count(&group_standin, "retry30s-long"), 1);
    stop(&svc);
}

/* Easy handles are pooled without a reset: what one call learnt (a Retry-After) must not reach
 * the next call on the same handle. */
static void test_pooled_handle_forgets_retry_after(void **state)
{
    (void)state;
    Service svc;
    service_start_for_group(&svc, "WORKER_RETRIES=1", NULL, NULL);
    Response r = service_enqueue(&svc, "retry30s-stale");
    assert_int_equal(r.status, 502);
    char ra[16];
    assert_true(response_header(&r, "Retry-After", ra, sizeof(ra)));
    response_free(&r);

    /* Then a 503 without Retry-After on the same (pooled) handle: retried, no Retry-After. */
    r = service_enqueue(&svc, "status503-after-stale");
    assert_int_equal(r.status, 502);
    assert_false(response_header(&r, "Retry-After", ra, sizeof(ra)));
    response_free(&r);
    assert_int_equal(standin_count(&group_standin, "status503-after-stale"), 2);
    stop(&svc);
}

static void test_reset_and_truncated_answers_are_502(void **state)
{
    (void)state;
    Service svc;
    service_start_for_group(&svc, "WORKER_RETRIES=1", NULL, NULL);
    const char *places[] = {"reset-conn", "truncated-body"};
    for (size_t i = 0; i < 2; i++) {
        Response r = service_enqueue(&svc, places[i]);
        assert_int_equal(r.status, 502);
        assert_non_null(strstr(r.body, "worker enqueue failed: worker connection failed"));
        response_free(&r);
    }
    Response r = service_get(&svc, "/health");
    assert_int_equal(r.status, 200);
    response_free(&r);
    stop(&svc);
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_breaker_opens_fails_fast_and_recovers),
        cmocka_unit_test(test_worker_4xx_does_not_open_the_breaker),
        cmocka_unit_test(test_duplicates_share_one_call),
        cmocka_unit_test(test_short_retry_after_is_honoured),
        cmocka_unit_test(test_pooled_handle_forgets_retry_after),
        cmocka_unit_test(test_reset_and_truncated_answers_are_502),
    };
    return cmocka_run_group_tests(tests, standin_group_setup, standin_group_teardown);
}
