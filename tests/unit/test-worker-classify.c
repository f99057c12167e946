/* SPDX-License-Identifier: MIT */
/* Unit tests of src/worker/worker.h's pure part: classifying one attempt, and the client's
 * status. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <curl/curl.h>

#include "worker.h"

static void check_answer(int code, long status, bool answer_began, WorkerOutcome want,
                         bool want_retryable)
{
    /* Start from the opposite, so that a function that leaves it alone fails. */
    bool retryable = !want_retryable;
    WorkerOutcome o = worker_classify(code, status, answer_began, &retryable);
    if (o != want || retryable != want_retryable)
        fail_msg("curl %d (%s), HTTP %ld, answer began %d: got outcome %d retryable %d, want %d "
                 "%d",
                 code, curl_easy_strerror((CURLcode)code), status, answer_began, o, retryable, want,
                 want_retryable);
}

/* The same whether or not any of the answer had arrived. */
static void check(int code, long status, WorkerOutcome want, bool want_retryable)
{
    check_answer(code, status, false, want, want_retryable);
    check_answer(code, status, true, want, want_retryable);
}

static void test_2xx_ok(void **state)
{
    (void)state;
    static const long ok[] = {200, 201, 202, 204, 299};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        check(CURLE_OK, ok[i], WORKER_OK, false);
}

static void test_4xx_not_retried(void **state)
{
    (void)state;
    static const long st[] = {400, 401, 403, 404, 409, 413, 422, 499};
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
        check(CURLE_OK, st[i], WORKER_HTTP_ERROR, false);
}

static void test_429_and_5xx_retried(void **state)
{
    (void)state;
    static const long st[] = {429, 500, 501, 502, 503, 504, 599};
    for (size_t i = 0; i < sizeof(st) / sizeof(st[0]); i++)
        check(CURLE_OK, st[i], WORKER_HTTP_ERROR, true);
}

static void test_not_2xx_is_an_error(void **state)
{
    (void)state;
    /* Informational and redirect answers are not an acceptance. */
    check(CURLE_OK, 199, WORKER_HTTP_ERROR, false);
    check(CURLE_OK, 300, WORKER_HTTP_ERROR, false);
    check(CURLE_OK, 301, WORKER_HTTP_ERROR, false);
    check(CURLE_OK, 302, WORKER_HTTP_ERROR, false);
}

static void test_timeout(void **state)
{
    (void)state;
    check(CURLE_OPERATION_TIMEDOUT, 0, WORKER_TIMEOUT, true);
}

static void test_unreachable(void **state)
{
    (void)state;
    check(CURLE_COULDNT_CONNECT, 0, WORKER_UNREACHABLE, true);
    check(CURLE_COULDNT_RESOLVE_HOST, 0, WORKER_UNREACHABLE, true);
}

static void test_bad_answers(void **state)
{
    (void)state;
    check(CURLE_GOT_NOTHING, 0, WORKER_HTTP_ERROR, true);
    check(CURLE_RECV_ERROR, 0, WORKER_HTTP_ERROR, true);
    check(CURLE_SEND_ERROR, 0, WORKER_HTTP_ERROR, true);
    check(CURLE_WEIRD_SERVER_REPLY, 0, WORKER_HTTP_ERROR, true);
}

/* What curl 7.88 ends a transfer with when the answer itself is at fault: a 502, retried like
 * a 5xx, and said to be the answer's fault. */
static void test_answer_too_large_or_malformed(void **state)
{
    (void)state;
    static const int codes[] = {CURLE_WRITE_ERROR, CURLE_FILESIZE_EXCEEDED,
                                CURLE_BAD_CONTENT_ENCODING, CURLE_HTTP2, CURLE_HTTP2_STREAM};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        check(codes[i], 0, WORKER_HTTP_ERROR, true);
        /* even after a 2xx status line: the body is what was too large */
        check(codes[i], 201, WORKER_HTTP_ERROR, true);
        assert_true(worker_answer_is_bad(codes[i], false));
        assert_true(worker_answer_is_bad(codes[i], true));
    }
}

/* curl's CURLE_OUT_OF_MEMORY is also a header line over its 100 KiB buffer: once the worker's
 * answer has begun, it is a bad answer (502, retried); before that, our own memory. */
static void test_out_of_memory_after_the_answer_began_is_a_bad_answer(void **state)
{
    (void)state;
    check_answer(CURLE_OUT_OF_MEMORY, 0, true, WORKER_HTTP_ERROR, true);
    assert_true(worker_answer_is_bad(CURLE_OUT_OF_MEMORY, true));
    check_answer(CURLE_OUT_OF_MEMORY, 0, false, WORKER_UNREACHABLE, false);
    assert_false(worker_answer_is_bad(CURLE_OUT_OF_MEMORY, false));
}

/* Connection failures and error statuses are not the answer's own fault. */
static void test_connection_failures_are_not_bad_answers(void **state)
{
    (void)state;
    static const int codes[] = {CURLE_OK,         CURLE_GOT_NOTHING,     CURLE_RECV_ERROR,
                                CURLE_SEND_ERROR, CURLE_COULDNT_CONNECT, CURLE_OPERATION_TIMEDOUT};
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        assert_false(worker_answer_is_bad(codes[i], false));
        assert_false(worker_answer_is_bad(codes[i], true));
    }
}

static void test_never_ok_without_curle_ok(void **state)
{
    (void)state;
    /* Whatever the status, a failed transfer is not an acceptance. */
    for (int code = 1; code < CURL_LAST; code++)
        for (int began = 0; began < 2; began++) {
            bool retryable;
            if (worker_classify(code, 200, began, &retryable) == WORKER_OK)
                fail_msg("curl %d (%s) with HTTP 200 classified as OK", code,
                         curl_easy_strerror((CURLcode)code));
        }
}

static void test_http_status(void **state)
{
    (void)state;
    assert_int_equal(worker_outcome_http_status(WORKER_HTTP_ERROR), 502);
    assert_int_equal(worker_outcome_http_status(WORKER_UNREACHABLE), 503);
    assert_int_equal(worker_outcome_http_status(WORKER_TIMEOUT), 504);
}

static void test_classify_then_status(void **state)
{
    (void)state;
    bool r;
    assert_int_equal(worker_outcome_http_status(worker_classify(CURLE_OK, 500, true, &r)), 502);
    assert_int_equal(worker_outcome_http_status(worker_classify(CURLE_OK, 404, true, &r)), 502);
    assert_int_equal(
        worker_outcome_http_status(worker_classify(CURLE_COULDNT_CONNECT, 0, false, &r)), 503);
    assert_int_equal(
        worker_outcome_http_status(worker_classify(CURLE_COULDNT_RESOLVE_HOST, 0, false, &r)), 503);
    assert_int_equal(
        worker_outcome_http_status(worker_classify(CURLE_OPERATION_TIMEDOUT, 0, false, &r)), 504);
    assert_int_equal(worker_outcome_http_status(worker_classify(CURLE_GOT_NOTHING, 0, true, &r)),
                     502);
    assert_int_equal(worker_outcome_http_status(worker_classify(CURLE_WRITE_ERROR, 201, true, &r)),
                     502);
    assert_int_equal(worker_outcome_http_status(worker_classify(CURLE_OUT_OF_MEMORY, 0, true, &r)),
                     502);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_2xx_ok),
        cmocka_unit_test(test_4xx_not_retried),
        cmocka_unit_test(test_429_and_5xx_retried),
        cmocka_unit_test(test_not_2xx_is_an_error),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_unreachable),
        cmocka_unit_test(test_bad_answers),
        cmocka_unit_test(test_answer_too_large_or_malformed),
        cmocka_unit_test(test_out_of_memory_after_the_answer_began_is_a_bad_answer),
        cmocka_unit_test(test_connection_failures_are_not_bad_answers),
        cmocka_unit_test(test_never_ok_without_curle_ok),
        cmocka_unit_test(test_http_status),
        cmocka_unit_test(test_classify_then_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
