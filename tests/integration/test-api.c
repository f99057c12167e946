/* SPDX-License-Identifier: MIT */
/* The HTTP API against the real daemon, socket-activated, with the worker stand-in. */
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

typedef struct Fixture {
    Standin standin;
    Service svc;
} Fixture;

static Fixture fx;

static int setup(void **state)
{
    (void)state;
    standin_start(&fx.standin);
    char worker[96];
    snprintf(worker, sizeof(worker), "WORKER_NODE_URL=%s", fx.standin.url);
    const char *env[] = {worker, "MAX_BODY_BYTES=1024", "LOG_LEVEL=debug", NULL};
    service_start(&fx.svc, env);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int st = service_stop(&fx.svc, SIGTERM);
    service_cleanup(&fx.svc);
    standin_stop(&fx.standin);
    return st == 0 ? 0 : -1;
}

static json_object *parse(const Response *r)
{
    assert_non_null(r->body);
    json_object *o = json_tokener_parse(r->body);
    assert_non_null(o);
    assert_true(json_object_is_type(o, json_type_object));
    return o;
}

static const char *member(json_object *o, const char *k)
{
    json_object *v;
    if (!json_object_object_get_ex(o, k, &v))
        return NULL;
    return json_object_get_string(v);
}

static void assert_json_response(const Response *r)
{
    char ct[64], cl[32];
    assert_true(response_header(r, "Content-Type", ct, sizeof(ct)));
    assert_string_equal(ct, "application/json");
    assert_true(response_header(r, "Content-Length", cl, sizeof(cl)));
    assert_int_equal(strtoul(cl, NULL, 10), r->body ? strlen(r->body) : 0);
}

/* A body of the error shape of README.md's "API" with exactly this message. */
static void assert_error(const Response *r, long status, const char *message)
{
    assert_int_equal(r->status, status);
    assert_json_response(r);
    json_object *o = parse(r);
    assert_string_equal(member(o, "status"), "error");
    assert_string_equal(member(o, "error"), message);
    assert_non_null(member(o, "timestamp"));
    json_object_put(o);
}

static void test_first_connection_starts_it_and_ready(void **state)
{
    (void)state;
    Response r = http_request("GET", "http://127.0.0.1:1/", NULL, NULL, NULL); /* warm curl */
    response_free(&r);
    char url[128];
    snprintf(url, sizeof(url), "%s/health", fx.svc.base);
    r = http_request("GET", url, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    response_free(&r);
    assert_true(service_wait_notify(&fx.svc, "READY=1", 5000));
    assert_true(service_wait_notify(&fx.svc, "STATUS=Serving on 127.0.0.1:", 5000));
}

static void test_enqueue_happy_path(void **state)
{
    (void)state;
    Response r =
        http_post_json(&fx.svc, "/enqueue", "{\"placeId\": \"ChIJN1t_tDeuEmsRUsoyG83frY4\"}");
    assert_int_equal(r.status, 202);
    assert_json_response(&r);
    json_object *o = parse(&r);
    assert_string_equal(member(o, "status"), "enqueued");
    assert_string_equal(member(o, "placeId"), "ChIJN1t_tDeuEmsRUsoyG83frY4");
    assert_string_equal(member(o, "jobId"), "reviews:ChIJN1t_tDeuEmsRUsoyG83frY4:start");
    const char *ts = member(o, "timestamp");
    assert_non_null(ts);
    assert_int_equal(strlen(ts), 20); /* 2024-01-15T10:30:00Z */
    assert_int_equal(ts[10], 'T');
    assert_int_equal(ts[19], 'Z');
    assert_int_equal(json_object_object_length(o), 4);
    json_object_put(o);
    char rid[160];
    assert_true(response_header(&r, "X-Request-Id", rid, sizeof(rid)));
    assert_true(strlen(rid) >= 16);
    response_free(&r);
    /* The stand-in checks body, Content-Type and Idempotency-Key, and counts. */
    assert_int_equal(standin_count(&fx.standin, "ChIJN1t_tDeuEmsRUsoyG83frY4"), 1);
    assert_true(service_log_contains(&fx.svc, "\"msg\":\"job enqueued successfully\""));
    assert_true(
        service_log_contains(&fx.svc, "\"jobId\":\"reviews:ChIJN1t_tDeuEmsRUsoyG83frY4:start\""));
}

static void test_same_place_same_job_id(void **state)
{
    (void)state;
    for (int i = 0; i < 2; i++) {
        Response r = http_post_json(&fx.svc, "/enqueue", "{\"placeId\":\"test-place-id\"}");
        assert_int_equal(r.status, 202);
        json_object *o = parse(&r);
        assert_string_equal(member(o, "jobId"), "reviews:test-place-id:start");
        json_object_put(o);
        response_free(&r);
    }
    assert_int_equal(standin_count(&fx.standin, "test-place-id"), 2);
}

static void test_request_id_echoed(void **state)
{
    (void)state;
    char url[128], rid[160];
    snprintf(url, sizeof(url), "%s/enqueue", fx.svc.base);
    Response r = http_request("POST", url, "application/json", "{\"placeId\":\"rid-place\"}",
                              "X-Request-Id: abc-123");
    assert_int_equal(r.status, 202);
    assert_true(response_header(&r, "X-Request-Id", rid, sizeof(rid)));
    assert_string_equal(rid, "abc-123");
    response_free(&r);
    assert_true(service_log_contains(&fx.svc, "\"requestId\":\"abc-123\""));
}

static void test_content_type_with_charset_ok(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "%s/enqueue", fx.svc.base);
    Response r = http_request("POST", url, "application/json; charset=utf-8",
                              "{\"placeId\":\"charset-place\"}", NULL);
    assert_int_equal(r.status, 202);
    response_free(&r);
    /* No Content-Type at all is accepted too. */
    r = http_request("POST", url, NULL, "{\"placeId\":\"no-ct-place\"}", NULL);
    assert_int_equal(r.status, 202);
    response_free(&r);
}

static void test_bad_bodies_are_400_and_never_forwarded(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        const char *message;
    } cases[] = {
        {"not json", "invalid JSON"},
        {"{\"placeId\":\"bad400-a\"", "invalid JSON"},
        {"{\"placeId\":\"bad400-b\"} trailing", "invalid JSON"},
        {"[\"bad400-c\"]", "invalid JSON"},
        {"", "invalid JSON"},
        {"{}", "placeId is required"},
        {"{\"placeId\":null}", "placeId is required"},
        {"{\"placeId\":\"\"}", "placeId is required"},
        {"{\"placeId\":42}", "placeId must be a string"},
        {"{\"placeId\":[\"bad400-d\"]}", "placeId must be a string"},
        {"{\"placeId\":\"bad400:e\"}", "placeId is invalid"},
        {"{\"placeId\":\"bad400 f\"}", "placeId is invalid"},
        {"{\"placeId\":\"bad400\\u0000g\"}", "placeId is invalid"},
        {"{\"placeId\":\"bad400-h\",\"x\":NaN}", "invalid JSON"},
        {"{\"placeId\":\"bad400-i\",\"x\":\"\xc0\xaf\"}", "invalid JSON"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        Response r = http_post_json(&fx.svc, "/enqueue", cases[i].body);
        assert_error(&r, 400, cases[i].message);
        response_free(&r);
    }
    char deep[4096];
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof(deep), "{\"placeId\":\"bad400-deep\",\"x\":");
    for (int i = 0; i < 900; i++) /* under MAX_BODY_BYTES=1024, far over the depth limit */
        deep[n++] = '[';
    deep[n] = '\0';
    Response r = http_post_json(&fx.svc, "/enqueue", deep);
    assert_error(&r, 400, "invalid JSON");
    response_free(&r);
    static const char *never[] = {"bad400-a", "bad400-b", "bad400-c",   "bad400-d",
                                  "bad400-h", "bad400-i", "bad400-deep"};
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
        assert_int_equal(standin_count(&fx.standin, never[i]), 0);
}

static void test_too_long_place_id(void **state)
{
    (void)state;
    char body[1200];
    int n = snprintf(body, sizeof(body), "{\"placeId\":\"");
    for (int i = 0; i < 1025; i++)
        body[n++] = 'a';
    snprintf(body + n, sizeof(body) - (size_t)n, "\"}");
    /* MAX_BODY_BYTES=1024 here: the body is over it. */
    Response r = http_post_json(&fx.svc, "/enqueue", body);
    assert_error(&r, 413, "request body too large");
    response_free(&r);
}

static void test_wrong_content_type_415(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "%s/enqueue", fx.svc.base);
    Response r = http_request("POST", url, "text/plain", "{\"placeId\":\"ct-415\"}", NULL);
    assert_error(&r, 415, "Content-Type must be application/json");
    response_free(&r);
    r = http_request("POST", url, "application/x-www-form-urlencoded", "placeId=ct-415", NULL);
    assert_int_equal(r.status, 415);
    response_free(&r);
    assert_int_equal(standin_count(&fx.standin, "ct-415"), 0);
}

static void test_methods_405_with_allow(void **state)
{
    (void)state;
    char url[128], allow[64];
    snprintf(url, sizeof(url), "%s/enqueue", fx.svc.base);
    const char *methods[] = {"GET", "PUT", "DELETE", "PATCH"};
    for (size_t i = 0; i < 4; i++) {
        Response r = http_request(methods[i], url, NULL, NULL, NULL);
        assert_error(&r, 405, "method not allowed");
        assert_true(response_header(&r, "Allow", allow, sizeof(allow)));
        assert_string_equal(allow, "POST");
        response_free(&r);
    }
    snprintf(url, sizeof(url), "%s/health", fx.svc.base);
    Response r = http_request("POST", url, "application/json", "{}", NULL);
    assert_error(&r, 405, "method not allowed");
    assert_true(response_header(&r, "Allow", allow, sizeof(allow)));
    assert_string_equal(allow, "GET, HEAD");
    response_free(&r);
}

static void test_unknown_paths_404(void **state)
{
    (void)state;
    const char *paths[] = {"/", "/enqueue/", "/enqueuex", "/health/x", "/../etc/passwd", "/%00"};
    for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
        char url[160];
        snprintf(url, sizeof(url), "%s%s", fx.svc.base, paths[i]);
        Response r = http_request("GET", url, NULL, NULL, NULL);
        if (strcmp(paths[i], "/../etc/passwd") == 0 && r.status == 200)
            fail_msg("path traversal reached a handler");
        assert_error(&r, 404, "not found");
        response_free(&r);
    }
}

/* One request written as is on a new connection; the answer's head and body. */
static void raw_exchange(const char *raw, char *buf, size_t n)
{
    int fd = raw_connect(fx.svc.port);
    assert_int_equal(write(fd, raw, strlen(raw)), (ssize_t)strlen(raw));
    raw_read(fd, buf, n, 3000);
    close(fd);
}

/* A target in absolute form (RFC 9112 section 3.2.2: a server must accept it) is routed by the
 * path in it; one in authority form, or garbage, is not. */
static void test_absolute_form_routed_by_path(void **state)
{
    (void)state;
    char raw[512], buf[8192], place[64];
    snprintf(place, sizeof(place), "absolute-form-%d", (int)getpid());
    char body[128];
    int bl = snprintf(body, sizeof(body), "{\"placeId\":\"%s\"}", place);
    snprintf(raw, sizeof(raw),
             "POST http://orchestrator.example/enqueue HTTP/1.1\r\nHost: other.example\r\n"
             "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
             bl, body);
    raw_exchange(raw, buf, sizeof(buf));
    if (strncmp(buf, "HTTP/1.1 202 ", 13) != 0)
        fail_msg("POST in absolute form: %.300s", buf);
    assert_int_equal(standin_count(&fx.standin, place), 1);

    static const struct {
        const char *target;
        const char *status;
    } gets[] = {
        {"http://127.0.0.1/health", "HTTP/1.1 200 "},
        {"HTTP://h:8080/ready?probe=1", "HTTP/1.1 200 "},
        {"https://h/metrics", "HTTP/1.1 200 "},
        {"http://h/./health", "HTTP/1.1 200 "},
        {"http://h", "HTTP/1.1 404 "},
        {"http://h/enqueuex", "HTTP/1.1 404 "},
        {"http://h/x/../../health/x", "HTTP/1.1 404 "},
        {"http:///health", "HTTP/1.1 404 "},
        {"ftp://h/health", "HTTP/1.1 404 "},
        {"127.0.0.1:80", "HTTP/1.1 404 "},
    };
    for (size_t i = 0; i < sizeof(gets) / sizeof(gets[0]); i++) {
        snprintf(raw, sizeof(raw), "GET %s HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n",
                 gets[i].target);
        raw_exchange(raw, buf, sizeof(buf));
        if (strncmp(buf, gets[i].status, strlen(gets[i].status)) != 0)
            fail_msg("GET %s: expected %s, got %.300s", gets[i].target, gets[i].status, buf);
    }
}

static void test_health(void **state)
{
    (void)state;
    char url[128];
    snprintf(url, sizeof(url), "%s/health", fx.svc.base);
    Response r = http_request("GET", url, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    assert_json_response(&r);
    json_object *o = parse(&r);
    assert_string_equal(member(o, "status"), "healthy");
    assert_string_equal(member(o, "service"), "argus-orchestrator");
    assert_string_equal(member(o, "worker_url"), fx.standin.url);
    const char *up = member(o, "uptime");
    assert_non_null(up);
    assert_int_equal(up[strlen(up) - 1], 's');
    assert_non_null(member(o, "timestamp"));
    json_object_put(o);
    response_free(&r);

    r = http_request("HEAD", url, NULL, NULL, NULL);
    char cl[32];
    assert_int_equal(r.status, 200);
    assert_true(response_header(&r, "Content-Length", cl, sizeof(cl)));
    assert_true(strtoul(cl, NULL, 10) > 0);
    assert_null(r.body);
    response_free(&r);
}

static double metric(const char *series)
{
    return service_metric(&fx.svc, series);
}

static void test_metrics_move_with_requests(void **state)
{
    (void)state;
    const char *accepted = "argus_http_requests_total{route=\"enqueue\",status=\"202\"}";
    const char *rejected = "argus_http_requests_total{route=\"enqueue\",status=\"400\"}";
    const char *ok = "argus_worker_attempts_total{outcome=\"ok\"}";
    const char *latency = "argus_worker_latency_seconds_count";
    double a0 = metric(accepted), r0 = metric(rejected), ok0 = metric(ok), l0 = metric(latency);
    assert_true(a0 >= 0 && ok0 >= 0 && l0 >= 0);
    Response r = http_post_json(&fx.svc, "/enqueue", "{\"placeId\":\"metrics-place\"}");
    assert_int_equal(r.status, 202);
    response_free(&r);
    r = http_post_json(&fx.svc, "/enqueue", "{\"placeId\":7}");
    assert_int_equal(r.status, 400);
    response_free(&r);
    assert_true(metric(accepted) == a0 + 1);
    assert_true(metric(rejected) == (r0 < 0 ? 0 : r0) + 1);
    assert_true(metric(ok) == ok0 + 1);
    assert_true(metric(latency) == l0 + 1);
    assert_true(metric("argus_connections_open") >= 1);
    assert_true(metric("argus_requests_in_flight") == 0);
    assert_true(metric("argus_breaker_state") == 0);
    assert_true(metric("process_start_time_seconds") > 1.6e9);
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_connection_starts_it_and_ready),
        cmocka_unit_test(test_enqueue_happy_path),
        cmocka_unit_test(test_same_place_same_job_id),
        cmocka_unit_test(test_request_id_echoed),
        cmocka_unit_test(test_content_type_with_charset_ok),
        cmocka_unit_test(test_bad_bodies_are_400_and_never_forwarded),
        cmocka_unit_test(test_too_long_place_id),
        cmocka_unit_test(test_wrong_content_type_415),
        cmocka_unit_test(test_methods_405_with_allow),
        cmocka_unit_test(test_unknown_paths_404),
        cmocka_unit_test(test_absolute_form_routed_by_path),
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_metrics_move_with_requests),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
