/* SPDX-License-Identifier: MIT */
/* What the client gets for each way the worker can fail, and how often the worker is tried. */
#include <arpa/inet.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

/* WORKER_RETRIES=2: three attempts in all for a retryable failure. */
#define ATTEMPTS 3

static Standin standin;
static Service svc, dead_svc;

static int setup(void **state)
{
    (void)state;
    standin_start(&standin);
    char worker[96];
    snprintf(worker, sizeof(worker), "WORKER_NODE_URL=%s", standin.url);
    /* the breaker has its own test (test-resilience): here every fault reaches the worker */
    const char *env[] = {worker, "WORKER_TIMEOUT_MS=300", "WORKER_RETRIES=2", "BREAKER_THRESHOLD=0",
                         NULL};
    service_start(&svc, env);

    /* A worker URL where nothing listens: port 1 on loopback refuses at once. */
    const char *dead_env[] = {"WORKER_NODE_URL=http://127.0.0.1:1", "WORKER_RETRIES=1", NULL};
    service_start(&dead_svc, dead_env);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int a = service_stop(&svc, SIGTERM), b = service_stop(&dead_svc, SIGTERM);
    service_cleanup(&svc);
    service_cleanup(&dead_svc);
    standin_stop(&standin);
    return a == 0 && b == 0 ? 0 : -1;
}

static void assert_worker_error(const Response *r, long status, const char *place_id,
                                const char *reason_part)
{
    assert_int_equal(r->status, status);
    json_object *o = json_tokener_parse(r->body);
    assert_non_null(o);
    json_object *v;
    assert_true(json_object_object_get_ex(o, "status", &v));
    assert_string_equal(json_object_get_string(v), "error");
    assert_true(json_object_object_get_ex(o, "error", &v));
    const char *err = json_object_get_string(v);
    assert_true(strncmp(err, "worker enqueue failed: ", 23) == 0);
    if (!strstr(err, reason_part))
        fail_msg("error \"%s\" does not mention \"%s\"", err, reason_part);
    assert_true(json_object_object_get_ex(o, "placeId", &v));
    assert_string_equal(json_object_get_string(v), place_id);
    char job[1100];
    snprintf(job, sizeof(job), "reviews:%s:start", place_id);
    assert_true(json_object_object_get_ex(o, "jobId", &v));
    assert_string_equal(json_object_get_string(v), job);
    assert_true(json_object_object_get_ex(o, "timestamp", &v));
    json_object_put(o);
}

static void test_500_then_201_is_retried_to_success(void **state)
{
    (void)state;
    Response r = service_enqueue(&svc, "fail1x-retry");
    assert_int_equal(r.status, 202);
    response_free(&r);
    assert_int_equal(standin_count(&standin, "fail1x-retry"), 2);
}

static void test_persistent_500_is_502_after_retries(void **state)
{
    (void)state;
    Response r = service_enqueue(&svc, "status500-always");
    assert_worker_error(&r, 502, "status500-always", "HTTP 500");
    response_free(&r);
    assert_int_equal(standin_count(&standin, "status500-always"), ATTEMPTS);
}

static void test_429_is_retried(void **state)
{
    (void)state;
    Response r = service_enqueue(&svc, "status429-busy");
    assert_worker_error(&r, 502, "status429-busy", "HTTP 429");
    response_free(&r);
    assert_int_equal(standin_count(&standin, "status429-busy"), ATTEMPTS);
}

static void test_400_is_502_and_never_retried(void **state)
{
    (void)state;
    Response r = service_enqueue(&svc, "status400-once");
    assert_worker_error(&r, 502, "status400-once", "HTTP 400");
    response_free(&r);
    assert_int_equal(standin_count(&standin, "status400-once"), 1);
    r = service_enqueue(&svc, "status404-once");
    assert_worker_error(&r, 502, "status404-once", "HTTP 404");
    response_free(&r);
    assert_int_equal(standin_count(&standin, "status404-once"), 1);
}

static void test_hang_is_504(void **state)
{
    (void)state;
    Response r = service_enqueue(&svc, "hang-forever");
    assert_worker_error(&r, 504, "hang-forever", "worker timeout");
    assert_null(strstr(r.body, "while connecting")); /* it was connected */
    response_free(&r);
    assert_int_equal(standin_count(&standin, "hang-forever"), ATTEMPTS);
}

/* A listener that never accepts and whose queue is full: the kernel drops further SYNs, so a
 * connection to it times out the way one to a host whose packets are dropped does (a firewall,
 * or IPAddressDeny= of the shipped unit). */
static void test_connect_timeout_is_named(void **state)
{
    (void)state;
    int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(l, 0), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)&a, &len), 0);
    int fill[2];
    for (int i = 0; i < 2; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        (void)connect(fill[i], (struct sockaddr *)&a, sizeof(a));
    }
    usleep(50000);

    char worker[96];
    snprintf(worker, sizeof(worker), "WORKER_NODE_URL=http://127.0.0.1:%u", ntohs(a.sin_port));
    const char *env[] = {worker, "WORKER_TIMEOUT_MS=300", "WORKER_RETRIES=0", NULL};
    Service s;
    service_start(&s, env);
    Response r = service_enqueue(&s, "behind-a-firewall");
    assert_worker_error(&r, 504, "behind-a-firewall", "worker timeout while connecting");
    response_free(&r);
    assert_int_equal(service_stop(&s, SIGTERM), 0);
    service_cleanup(&s);
    for (int i = 0; i < 2; i++)
        close(fill[i]);
    close(l);
}

static void test_close_without_answer_is_502(void **state)
{
    (void)state;
    Response r = service_enqueue(&svc, "close-early");
    assert_worker_error(&r, 502, "close-early", "worker connection failed");
    response_free(&r);
    /* curl retries a dropped connection once on its own; we count at least our attempts. */
    assert_true(standin_count(&standin, "close-early") >= ATTEMPTS);
}

static void test_garbage_answer_is_502(void **state)
{
    (void)state;
    Response r = service_enqueue(&svc, "garbage-answer");
    assert_worker_error(&r, 502, "garbage-answer", "worker connection failed");
    response_free(&r);
}

/* Issue #9: a worker answer too large for curl (one header line over its 100 KiB buffer gives
 * CURLE_OUT_OF_MEMORY) was "worker unreachable: Out of memory", a 503 never retried. It is a
 * bad answer: 502, retried like a 5xx. */
static void test_huge_header_line_is_502_and_retried(void **state)
{
    (void)state;
    Response r = service_enqueue(&svc, "bighead-line");
    assert_worker_error(&r, 502, "bighead-line",
                        "worker answer too large or malformed: a header line over curl's 100 KiB");
    response_free(&r);
    assert_int_equal(standin_count(&standin, "bighead-line"), ATTEMPTS);
}

/* The answer's head and body are read up to 64 KiB each: more is a bad answer, not something
 * to hold the call for (a body without end would hold it until WORKER_TIMEOUT_MS: 504). */
static void test_answer_over_64k_is_502_and_retried(void **state)
{
    (void)state;
    static const struct {
        const char *place, *why;
    } cases[] = {
        {"manyheads-answer", "head over 64 KiB"},
        {"bigbody-endless", "body over 64 KiB"},
        {"bigbodycl-announced", "body over 64 KiB"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Response r = service_enqueue(&svc, cases[i].place);
        char why[96];
        snprintf(why, sizeof(why), "worker answer too large or malformed: %s", cases[i].why);
        assert_worker_error(&r, 502, cases[i].place, why);
        response_free(&r);
        assert_int_equal(standin_count(&standin, cases[i].place), ATTEMPTS);
    }
}

/* A worker's Retry-After reaches the client capped at 300 s (99999999999 and a date in the year
 * 9999 reached it as 86400); one under the cap as it is. Past 5 s it is not waited for. */
static void test_worker_retry_after_is_capped(void **state)
{
    (void)state;
    static const struct {
        const char *place, *status, *retry_after;
    } cases[] = {
        {"retryforever-capped", "HTTP 429", "300"},
        {"retrydate-capped", "HTTP 503", "300"},
        {"retry120s-kept", "HTTP 429", "120"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Response r = service_enqueue(&svc, cases[i].place);
        assert_worker_error(&r, 502, cases[i].place, cases[i].status);
        char ra[32] = "";
        assert_true(response_header(&r, "Retry-After", ra, sizeof(ra)));
        if (strcmp(ra, cases[i].retry_after) != 0)
            fail_msg("%s: Retry-After %s, want %s", cases[i].place, ra, cases[i].retry_after);
        response_free(&r);
        assert_int_equal(standin_count(&standin, cases[i].place), 1);
    }
}

static void test_unreachable_is_503_with_retry_after(void **state)
{
    (void)state;
    Response r = service_enqueue(&dead_svc, "nobody-home");
    assert_worker_error(&r, 503, "nobody-home", "worker unreachable");
    char ra[16];
    assert_true(response_header(&r, "Retry-After", ra, sizeof(ra)));
    assert_true(atoi(ra) > 0);
    response_free(&r);
}

static void test_service_still_healthy_after_faults(void **state)
{
    (void)state;
    Response r = service_enqueue(&svc, "after-faults");
    assert_int_equal(r.status, 202);
    response_free(&r);
    assert_true(service_wait_notify(&svc, "READY=1", 1000));
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_500_then_201_is_retried_to_success),
        cmocka_unit_test(test_persistent_500_is_502_after_retries),
        cmocka_unit_test(test_429_is_retried),
        cmocka_unit_test(test_400_is_502_and_never_retried),
        cmocka_unit_test(test_hang_is_504),
        cmocka_unit_test(test_connect_timeout_is_named),
        cmocka_unit_test(test_close_without_answer_is_502),
        cmocka_unit_test(test_garbage_answer_is_502),
        cmocka_unit_test(test_huge_header_line_is_502_and_retried),
        cmocka_unit_test(test_answer_over_64k_is_502_and_retried),
        cmocka_unit_test(test_worker_retry_after_is_capped),
        cmocka_unit_test(test_unreachable_is_503_with_retry_after),
        cmocka_unit_test(test_service_still_healthy_after_faults),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
