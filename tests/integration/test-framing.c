/* SPDX-License-Identifier: MIT */
/* Ambiguous HTTP/1 framing (README, "Limits"): both Content-Length and Transfer-Encoding, two
 * different Content-Length values, an obs-fold line or a bare LF are answered 400 and the
 * connection is closed, so that nothing a proxy framed differently is served. */
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

/* A request whose second half would be another request to a parser that frames it otherwise. */
#define SMUGGLED "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"

static unsigned count(const char *hay, const char *needle)
{
    unsigned n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

/* Sends raw bytes; the one answer must be a 400 naming the problem, then the connection ends. */
static void assert_refused(const char *raw, const char *problem)
{
    int fd = raw_connect(group_service.port);
    assert_int_equal(write(fd, raw, strlen(raw)), (ssize_t)strlen(raw));
    char buf[16384];
    raw_read(fd, buf, sizeof(buf), 3000);
    assert_true(peer_closed(fd, 0));
    close(fd);
    if (strncmp(buf, "HTTP/1.1 400 ", 13) != 0)
        fail_msg("expected a 400 for %s, got: %.200s", problem, buf);
    assert_int_equal(count(buf, "HTTP/1.1 "), 1); /* nothing after it was served */
    assert_non_null(strcasestr(buf, "connection: close"));
    assert_non_null(strstr(buf, "\"error\":\"ambiguous request framing: "));
    assert_non_null(strstr(buf, problem));
}

static void test_content_length_with_transfer_encoding(void **state)
{
    (void)state;
    assert_refused("POST /enqueue HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                   "Content-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" SMUGGLED,
                   "Content-Length together with Transfer-Encoding");
    assert_refused("POST /enqueue HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
                   "Content-Type: application/json\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" SMUGGLED,
                   "Content-Length together with Transfer-Encoding");
}

static void test_two_content_lengths(void **state)
{
    (void)state;
    assert_refused("POST /enqueue HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                   "Content-Length: 2\r\nContent-Length: 37\r\n\r\n{}" SMUGGLED,
                   "conflicting Content-Length headers");
}

static void test_obs_fold(void **state)
{
    (void)state;
    assert_refused("GET /health HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n" SMUGGLED,
                   "obsolete line folding");
}

static void test_bare_lf(void **state)
{
    (void)state;
    assert_refused("GET /health HTTP/1.1\nHost: t\n\n" SMUGGLED, "LF without CR");
}

static void test_transfer_encoding_in_http10(void **state)
{
    (void)state;
    assert_refused("POST /enqueue HTTP/1.0\r\nHost: t\r\nConnection: keep-alive\r\n"
                   "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                   "0\r\n\r\n" SMUGGLED,
                   "Transfer-Encoding in an HTTP/1.0 request");
}

/* A chunked body is served, but the connection ends with the answer: chunk lines and trailers
 * are framing a proxy may read differently too. */
static void test_chunked_request_closes_after_answer(void **state)
{
    (void)state;
    char raw[512], place[64], body[128];
    snprintf(place, sizeof(place), "framing-chunked-%d", (int)getpid());
    int bl = snprintf(body, sizeof(body), "{\"placeId\":\"%s\"}", place);
    snprintf(raw, sizeof(raw),
             "POST /enqueue HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" SMUGGLED,
             bl, body);
    int fd = raw_connect(group_service.port);
    assert_int_equal(write(fd, raw, strlen(raw)), (ssize_t)strlen(raw));
    char buf[4096];
    raw_read(fd, buf, sizeof(buf), 3000);
    assert_true(peer_closed(fd, 0));
    close(fd);
    assert_int_equal(strncmp(buf, "HTTP/1.1 202 ", 13), 0);
    assert_int_equal(count(buf, "HTTP/1.1 "), 1);
    assert_int_equal(standin_count(&group_standin, place), 1);
}

/* The same Content-Length twice frames the body one way only: served as usual. */
static void test_same_content_length_twice_is_fine(void **state)
{
    (void)state;
    char raw[512], place[64];
    snprintf(place, sizeof(place), "framing-same-%d", (int)getpid());
    char body[128];
    int bl = snprintf(body, sizeof(body), "{\"placeId\":\"%s\"}", place);
    snprintf(raw, sizeof(raw),
             "POST /enqueue HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             "Content-Length: %d\r\nContent-Length: %d\r\n\r\n%s",
             bl, bl, body);
    int fd = raw_connect(group_service.port);
    assert_int_equal(write(fd, raw, strlen(raw)), (ssize_t)strlen(raw));
    char buf[4096];
    raw_read(fd, buf, sizeof(buf), 1000);
    close(fd);
    assert_int_equal(strncmp(buf, "HTTP/1.1 202 ", 13), 0);
    assert_int_equal(standin_count(&group_standin, place), 1);
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_content_length_with_transfer_encoding),
        cmocka_unit_test(test_two_content_lengths),
        cmocka_unit_test(test_obs_fold),
        cmocka_unit_test(test_bare_lf),
        cmocka_unit_test(test_same_content_length_twice_is_fine),
        cmocka_unit_test(test_transfer_encoding_in_http10),
        cmocka_unit_test(test_chunked_request_closes_after_answer),
    };
    return cmocka_run_group_tests(tests, service_group_setup, service_group_teardown);
}
