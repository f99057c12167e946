/* SPDX-License-Identifier: MIT */
/* http1_framing_inspect: the request heads that two parsers could frame differently. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "http1-framing.h"

static const char *problem(const char *raw)
{
    Http1Framing f;
    http1_framing_inspect(raw, strlen(raw), &f);
    return f.problem;
}

static void assert_problem(const char *raw, const char *part)
{
    const char *p = problem(raw);
    if (!p || !strstr(p, part))
        fail_msg("%s: got %s, want …%s…", raw, p ? p : "(none)", part);
    assert_non_null(strstr(p, "ambiguous request framing: "));
}

static void test_plain_requests_pass(void **state)
{
    (void)state;
    assert_null(problem("GET /health HTTP/1.1\r\nHost: a\r\n\r\n"));
    assert_null(problem("POST /enqueue HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}"));
    assert_null(problem("POST /enqueue HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"));
    assert_null(problem("POST /e HTTP/1.1\r\nContent-Length: 2\r\ncontent-length: 2\r\n\r\n{}"));
    /* what follows the head (a body, the next request) is not looked at */
    assert_null(problem("GET / HTTP/1.1\r\n\r\nGET / HTTP/1.1\nX: a\n b\n\n"));
    /* not a whole head, or not HTTP/1: libh2o answers those */
    assert_null(problem("GET / HTTP/1.1\r\nHost: a\r\n"));
    assert_null(problem("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"));
    assert_null(problem(""));
}

static void test_length_and_chunked(void **state)
{
    (void)state;
    assert_problem("POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
                   "Content-Length together with Transfer-Encoding");
    assert_problem("POST / HTTP/1.1\r\nTRANSFER-ENCODING: chunked\r\ncontent-LENGTH: 5\r\n\r\n",
                   "Content-Length together with Transfer-Encoding");
}

static void test_two_lengths(void **state)
{
    (void)state;
    assert_problem("POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
                   "conflicting Content-Length");
    assert_problem("POST / HTTP/1.1\r\nContent-Length: 5\r\nX: y\r\nContent-Length: 05\r\n\r\n",
                   "conflicting Content-Length");
}

static void test_obs_fold(void **state)
{
    (void)state;
    assert_problem("GET / HTTP/1.1\r\nX-A: 1\r\n 2\r\n\r\n", "obsolete line folding");
    assert_problem("GET / HTTP/1.1\r\nX-A: 1\r\n\t2\r\n\r\n", "obsolete line folding");
}

static void test_http10_transfer_encoding(void **state)
{
    (void)state;
    assert_problem("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", "HTTP/1.0");
    assert_null(problem("POST / HTTP/1.0\r\nContent-Length: 2\r\n\r\n{}"));
}

/* The head's length and whether the body is chunked (the connection then ends after it). */
static void test_head_length_and_chunked(void **state)
{
    (void)state;
    Http1Framing f;
    const char *plain = "GET / HTTP/1.1\r\nHost: a\r\n\r\nrest";
    http1_framing_inspect(plain, strlen(plain), &f);
    assert_int_equal(f.head_length, (int)strlen(plain) - 4);
    assert_false(f.chunked);
    const char *chunked = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    http1_framing_inspect(chunked, strlen(chunked), &f);
    assert_true(f.head_length > 0);
    assert_true(f.chunked);
    assert_null(f.problem);
    http1_framing_inspect(plain, 10, &f);
    assert_int_equal(f.head_length, 0);
    http1_framing_inspect("\x00\x00\x12\x04", 4, &f);
    assert_int_equal(f.head_length, -1);
}

static void test_bare_lf(void **state)
{
    (void)state;
    assert_problem("GET / HTTP/1.1\nHost: a\r\n\r\n", "LF without CR");
    assert_problem("GET / HTTP/1.1\r\nHost: a\n\r\n", "LF without CR");
    assert_problem("GET / HTTP/1.1\n\n", "LF without CR");
}

/* What the read guard holds a body to: its Content-Length and the request target. */
static void test_content_length_and_target(void **state)
{
    (void)state;
    Http1Framing f;
    const char *raw = "POST /enqueue/batch?x=1 HTTP/1.1\r\nContent-Length: 131073\r\n\r\n";
    http1_framing_inspect(raw, strlen(raw), &f);
    assert_true(f.head_length > 0);
    assert_int_equal(f.content_length, 131073);
    assert_int_equal(f.target_len, strlen("/enqueue/batch?x=1"));
    assert_memory_equal(f.target, "/enqueue/batch?x=1", f.target_len);
    raw = "GET /health HTTP/1.1\r\nHost: a\r\n\r\n";
    http1_framing_inspect(raw, strlen(raw), &f);
    assert_int_equal(f.content_length, -1);
    raw = "POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\n";
    http1_framing_inspect(raw, strlen(raw), &f);
    assert_int_equal(f.content_length, -1); /* libh2o's to refuse */
    raw = "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n";
    http1_framing_inspect(raw, strlen(raw), &f);
    assert_int_equal(f.content_length, -1);
    raw = "POST / HTTP/1.1\r\nContent-Length: 5\r\n"; /* not a whole head yet */
    http1_framing_inspect(raw, strlen(raw), &f);
    assert_int_equal(f.head_length, 0);
    assert_int_equal(f.content_length, -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_requests_pass),
        cmocka_unit_test(test_content_length_and_target),
        cmocka_unit_test(test_length_and_chunked),
        cmocka_unit_test(test_two_lengths),
        cmocka_unit_test(test_obs_fold),
        cmocka_unit_test(test_bare_lf),
        cmocka_unit_test(test_http10_transfer_encoding),
        cmocka_unit_test(test_head_length_and_chunked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
