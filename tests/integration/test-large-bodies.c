/* SPDX-License-Identifier: MIT */
/* The places for large request bodies (README, "Limits": large bodies): an HTTP/1 request whose
 * body may grow past MAX_BODY_BYTES (a POST /enqueue/batch with a larger Content-Length, a
 * chunked body on any path) takes one of 128 from its head until it is done or its connection
 * closes; with none free it is answered 503 from its head, with Retry-After: 1. Small requests
 * are not held by them, and every way a request ends gives its place back, once. */
#include <errno.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define PLACES 128 /* LARGE_BODY_PLACES (src/http/conn.h) */
#define HOLDER_LENGTH 100000
#define BATCH_ITEMS 200 /* of about 100 bytes: a body over MAX_BODY_BYTES (16 KiB) */

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t k = send(fd, buf, len, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        assert_true(k > 0);
        buf += k;
        len -= (size_t)k;
    }
}

/* A connection holding an unfinished batch body: its head (Content-Length over MAX_BODY_BYTES)
 * and a part of the body. */
static int holder(unsigned port)
{
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "POST /enqueue/batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     "Content-Length: %d\r\n\r\n{\"placeIds\":[\"",
                     HOLDER_LENGTH);
    memset(req + n, 'a', 1000);
    int fd = raw_connect(port);
    write_all(fd, req, (size_t)n + 1000);
    return fd;
}

/* The POST /enqueue/batch request of body (n bytes, freed here), whole; its length in
 * *ret_len. */
static char *batch_request(char *body, size_t n, size_t *ret_len)
{
    char *req = malloc(n + 256);
    assert_non_null(req);
    int h = snprintf(req, 256,
                     "POST /enqueue/batch HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     n);
    memcpy(req + h, body, n);
    free(body);
    *ret_len = (size_t)h + n;
    return req;
}

/* A whole POST /enqueue/batch of BATCH_ITEMS placeIds of this run, over MAX_BODY_BYTES; the
 * request's length in *ret_len. */
static char *large_batch(const char *tag, size_t *ret_len)
{
    size_t cap = BATCH_ITEMS * 128 + 1024, n = 0;
    char *body = malloc(cap);
    assert_non_null(body);
    n += (size_t)snprintf(body, cap, "{\"placeIds\":[");
    for (int i = 0; i < BATCH_ITEMS; i++)
        n += (size_t)snprintf(body + n, cap - n, "%s\"lb-%s-%d-%d-%080d\"", i ? "," : "", tag,
                              (int)getpid(), i, 0);
    n += (size_t)snprintf(body + n, cap - n, "]}");
    assert_true(n > 16 * 1024);
    return batch_request(body, n, ret_len);
}

/* Reads one answer (its head and Content-Length bytes of body, bounded by 30 s) into buf;
 * its status, 0 if none came. */
static int read_answer(int fd, char *buf, size_t n)
{
    size_t have = 0;
    long long deadline = now_ms() + 30000;
    buf[0] = '\0';
    while (have + 1 < n && now_ms() < deadline) {
        const char *end = strstr(buf, "\r\n\r\n");
        const char *cl = strcasestr(buf, "Content-Length: ");
        if (end && cl && have >= (size_t)(end + 4 - buf) + strtoul(cl + 16, NULL, 10))
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t k = read(fd, buf + have, n - 1 - have);
        if (k <= 0)
            break;
        have += (size_t)k;
        buf[have] = '\0';
    }
    int status = 0;
    return sscanf(buf, "HTTP/1.1 %d ", &status) == 1 ? status : 0;
}

/* Whether fd's answer is the 503 of no place free, sent from the head. */
static bool refused(int fd)
{
    char buf[4096];
    raw_read(fd, buf, sizeof(buf), 5000);
    return strncmp(buf, "HTTP/1.1 503 ", 13) == 0 && strstr(buf, "\r\nRetry-After: 1\r\n") &&
           strstr(buf, "\"error\":\"too many large request bodies at once\"");
}

/* Waits (10 s at most) until `want` of fds have something to read, then a moment more for any
 * other; marks them in answered[], checks each is the 503; how many answered. */
static size_t wait_answered(const int *fds, size_t n, size_t want, bool *answered)
{
    size_t got = 0;
    long long deadline = now_ms() + 10000, grace = 0;
    while (now_ms() < (grace ? grace : deadline)) {
        for (size_t i = 0; i < n; i++) {
            struct pollfd p = {.fd = fds[i], .events = POLLIN};
            if (!answered[i] && poll(&p, 1, 0) > 0) {
                answered[i] = true;
                got++;
                if (!refused(fds[i]))
                    fail_msg("connection %zu: not the 503 of no place free", i);
            }
        }
        if (got >= want && !grace)
            grace = now_ms() + 300;
        usleep(10000);
    }
    return got;
}

/* PLACES + extra connections holding large bodies: how many were refused (each a 503); the
 * connections in fds (closed by the caller). */
static size_t fill(unsigned port, size_t extra, int *fds, bool *answered)
{
    for (size_t i = 0; i < PLACES + extra; i++) {
        fds[i] = holder(port);
        answered[i] = false;
    }
    return wait_answered(fds, PLACES + extra, extra, answered);
}

static void close_all(int *fds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* A chunked POST /enqueue, its body unfinished. */
static int chunked_enqueue(unsigned port)
{
    static const char req[] =
        "POST /enqueue HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\n\r\n10\r\n{\"placeId\":\"abc";
    int fd = raw_connect(port);
    write_all(fd, req, sizeof(req) - 1);
    return fd;
}

/* A large batch on a new connection, again (5 s at most) while it is refused: its status. */
static int large_batch_until_taken(unsigned port, const char *tag)
{
    size_t len;
    char *req = large_batch(tag, &len);
    int status = 0;
    char buf[65536];
    for (long long end = now_ms() + 5000; now_ms() < end; usleep(50000)) {
        int fd = raw_connect(port);
        write_all(fd, req, len);
        status = read_answer(fd, buf, sizeof(buf));
        close(fd);
        if (status != 503)
            break;
    }
    free(req);
    return status;
}

/* More holders than places: exactly the extra ones are answered 503 from their head; meanwhile
 * a small POST /enqueue and a small batch are served, and a chunked POST /enqueue is refused
 * (it needs a place too); once some holders go away mid-body, a large batch is taken again. */
static void test_places_bound_large_bodies(void **state)
{
    (void)state;
    const Service *svc = &group_service;
    int fds[PLACES + 4];
    bool answered[PLACES + 4];
    assert_int_equal(fill(svc->port, 4, fds, answered), 4);

    char id[64];
    snprintf(id, sizeof(id), "lb-small-%d", (int)getpid());
    Response r = service_enqueue(svc, id);
    assert_int_equal(r.status, 202);
    response_free(&r);
    char body[128];
    snprintf(body, sizeof(body), "{\"placeIds\":[\"%s-b\"]}", id);
    r = http_post_json(svc, "/enqueue/batch", body);
    assert_int_equal(r.status, 200);
    response_free(&r);
    int chunked = chunked_enqueue(svc->port);
    assert_true(refused(chunked));
    close(chunked);
    assert_true(service_metric(svc, "argus_requests_shed_total{reason=\"large_bodies\"}") >= 5);

    /* two holders go away in the middle of their bodies: their places come back */
    for (size_t i = 0, gone = 0; i < PLACES + 4 && gone < 2; i++)
        if (!answered[i]) {
            close(fds[i]);
            fds[i] = -1;
            gone++;
        }
    assert_int_equal(large_batch_until_taken(svc->port, "again"), 200);
    close_all(fds, PLACES + 4);
}

/* Every place comes back, once, whichever way its request ended: fills them again (a place
 * kept would refuse a second connection, one given back twice every connection). */
static void assert_all_places_free(unsigned port)
{
    int fds[PLACES + 1];
    bool answered[PLACES + 1];
    size_t n = 0;
    for (int attempt = 0; attempt < 20; attempt++) {
        n = fill(port, 1, fds, answered);
        close_all(fds, PLACES + 1);
        if (n == 1)
            return;
        usleep(200000); /* the closes of the last round are still being seen */
    }
    fail_msg("%zu of %d connections holding large bodies refused, not 1", n, PLACES + 1);
}

/* A large batch answered on a connection kept open, two pipelined on another, a chunked
 * POST /enqueue answered: none of them keeps its place. */
static void test_places_come_back(void **state)
{
    (void)state;
    const Service *svc = &group_service;
    size_t len;
    char *req = large_batch("kept", &len);
    char buf[65536];
    int kept = raw_connect(svc->port);
    write_all(kept, req, len);
    assert_int_equal(read_answer(kept, buf, sizeof(buf)), 200);
    free(req);

    char *a = large_batch("pipe-a", &len);
    size_t len_b;
    char *b = large_batch("pipe-b", &len_b);
    char *both = malloc(len + len_b);
    assert_non_null(both);
    memcpy(both, a, len);
    memcpy(both + len, b, len_b);
    int piped = raw_connect(svc->port);
    write_all(piped, both, len + len_b);
    assert_int_equal(read_answer(piped, buf, sizeof(buf)), 200);
    assert_int_equal(read_answer(piped, buf, sizeof(buf)), 200);
    free(a), free(b), free(both);

    char id[64];
    snprintf(id, sizeof(id), "lb-chunked-%d", (int)getpid());
    char chunked[512];
    int body_len = (int)strlen(id) + 14;
    snprintf(chunked, sizeof(chunked),
             "POST /enqueue HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             "Transfer-Encoding: chunked\r\n\r\n%x\r\n{\"placeId\":\"%s\"}\r\n0\r\n\r\n",
             body_len, id);
    int fd = raw_connect(svc->port);
    write_all(fd, chunked, strlen(chunked));
    assert_int_equal(read_answer(fd, buf, sizeof(buf)), 202);
    close(fd);

    assert_all_places_free(svc->port);
    close(kept);
    close(piped);
}

#define HUGE_ITEMS 40000

/* A batch of HUGE_ITEMS placeIds the stand-in answers after 5 s: reckoned at more than the whole
 * budget of the waiting batches (about 1 KiB an item); the request, its length in *ret_len. */
static char *huge_batch(size_t *ret_len)
{
    size_t cap = HUGE_ITEMS * 40 + 256, n = 0;
    char *body = malloc(cap);
    assert_non_null(body);
    n += (size_t)snprintf(body, cap, "{\"placeIds\":[");
    for (int i = 0; i < HUGE_ITEMS; i++)
        n += (size_t)snprintf(body + n, cap - n, "%s\"slow5000-bb-%d-%d\"", i ? "," : "",
                              (int)getpid(), i);
    n += (size_t)snprintf(body + n, cap - n, "]}");
    return batch_request(body, n, ret_len);
}

/* The waiting batches' budget: a batch over it all alone (MAX_BATCH and MAX_BATCH_BYTES raised)
 * still goes, alone; while it waits for a slow worker a small batch is refused as a whole, 503
 * with Retry-After: 1, nothing sent, counted; once the large one is answered the budget is free
 * again. */
static void test_batch_budget(void **state)
{
    (void)state;
    Service svc;
    service_start_for_group(&svc, "MAX_BATCH=100000", "MAX_BATCH_BYTES=4194304",
                            "WORKER_TIMEOUT_MS=3000");
    size_t len;
    char *req = huge_batch(&len);
    int fd = raw_connect(svc.port);
    write_all(fd, req, len);
    free(req);
    assert_true(service_wait_metric(&svc, "argus_pending_jobs", 1024, 20000));

    char id[64], body[128], v[16];
    snprintf(id, sizeof(id), "lb-budget-%d", (int)getpid());
    snprintf(body, sizeof(body), "{\"placeIds\":[\"%s\"]}", id);
    Response r = http_post_json(&svc, "/enqueue/batch", body);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "\"error\":\"too many batches waiting\""));
    assert_true(response_header(&r, "Retry-After", v, sizeof(v)));
    assert_string_equal(v, "1");
    response_free(&r);
    assert_int_equal(standin_count(&group_standin, id), 0);
    assert_true(service_metric(&svc, "argus_requests_shed_total{reason=\"batch_budget\"}") == 1);

    char head[4096];
    raw_read(fd, head, sizeof(head), 30000);
    assert_int_equal(strncmp(head, "HTTP/1.1 207 ", 13), 0);
    close(fd);
    long long end = now_ms() + 10000;
    do {
        response_free(&r);
        usleep(50000);
        r = http_post_json(&svc, "/enqueue/batch", body);
    } while (r.status == 503 && now_ms() < end);
    /* taken (its item may meet the breaker the timeouts opened: 207) */
    if (r.status != 200 && r.status != 207)
        fail_msg("the small batch after the large one: %ld %s", r.status, r.body ? r.body : "");
    response_free(&r);
    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    service_cleanup(&svc);
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_places_bound_large_bodies),
        cmocka_unit_test(test_places_come_back),
        cmocka_unit_test(test_batch_budget),
    };
    return cmocka_run_group_tests(tests, service_group_setup, service_group_teardown);
}
