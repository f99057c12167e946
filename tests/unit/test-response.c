/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/response.h: every JSON body parses back to exactly the members of
 * README.md's "API". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "response.h"

/* Parses body (of length len, NUL-terminated) as one JSON object; fails the test otherwise. */
static json_object *parse_object(const char *body, size_t len)
{
    assert_non_null(body);
    assert_int_equal(strlen(body), len);
    json_tokener *tok = json_tokener_new();
    assert_non_null(tok);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, body, (int)len);
    if (!o || json_tokener_get_error(tok) != json_tokener_success)
        fail_msg("not JSON: %s", body);
    assert_int_equal(json_tokener_get_parse_end(tok), len);
    json_tokener_free(tok);
    if (!json_object_is_type(o, json_type_object))
        fail_msg("not an object: %s", body);
    return o;
}

static void assert_member(json_object *o, const char *key, const char *want)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("member \"%s\" missing from %s", key, json_object_to_json_string(o));
    if (!json_object_is_type(v, json_type_string))
        fail_msg("member \"%s\" is not a string", key);
    assert_int_equal((size_t)json_object_get_string_len(v), strlen(want));
    assert_string_equal(json_object_get_string(v), want);
}

/* The body has exactly the given key/value pairs (NULL-terminated list), nothing else. */
static void assert_exact(const char *body, size_t len, ...)
{
    json_object *o = parse_object(body, len);
    va_list ap;
    va_start(ap, len);
    int n = 0;
    for (const char *k = va_arg(ap, const char *); k; k = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        assert_member(o, k, v);
        n++;
    }
    va_end(ap);
    if (json_object_object_length(o) != n)
        fail_msg("%d members, want %d: %s", json_object_object_length(o), n, body);
    json_object_put(o);
}

static void test_enqueued(void **state)
{
    (void)state;
    size_t len = 12345;
    char *b = response_enqueued("ChIJN1t_tDeuEmsRUsoyG83frY4",
                                "reviews:ChIJN1t_tDeuEmsRUsoyG83frY4:start", "2024-01-15T10:30:00Z",
                                &len);
    assert_exact(b, len, "status", "enqueued", "placeId", "ChIJN1t_tDeuEmsRUsoyG83frY4", "jobId",
                 "reviews:ChIJN1t_tDeuEmsRUsoyG83frY4:start", "timestamp", "2024-01-15T10:30:00Z",
                 NULL);
    free(b);
}

static void test_error(void **state)
{
    (void)state;
    static const char *const messages[] = {
        "invalid JSON",       "placeId is required",    "placeId must be a string",
        "placeId is invalid", "request body too large",
    };
    for (size_t i = 0; i < sizeof(messages) / sizeof(messages[0]); i++) {
        size_t len = 0;
        char *b = response_error(messages[i], "1970-01-01T00:00:00Z", &len);
        assert_exact(b, len, "status", "error", "error", messages[i], "timestamp",
                     "1970-01-01T00:00:00Z", NULL);
        free(b);
    }
}

static void test_worker_error(void **state)
{
    (void)state;
    size_t len = 0;
    char *b = response_worker_error("worker returned HTTP 500", "test-place-id",
                                    "reviews:test-place-id:start", "2024-01-15T10:30:00Z", &len);
    assert_exact(b, len, "status", "error", "error",
                 "worker enqueue failed: worker returned HTTP 500", "placeId", "test-place-id",
                 "jobId", "reviews:test-place-id:start", "timestamp", "2024-01-15T10:30:00Z", NULL);
    free(b);

    b = response_worker_error("worker timeout", "P", "reviews:P:start", "2024-01-15T10:30:00Z",
                              &len);
    assert_exact(b, len, "status", "error", "error", "worker enqueue failed: worker timeout",
                 "placeId", "P", "jobId", "reviews:P:start", "timestamp", "2024-01-15T10:30:00Z",
                 NULL);
    free(b);

    /* A reason with characters that need escaping stays intact. */
    b = response_worker_error("bad \"reply\"\n", "P", "reviews:P:start", "2024-01-15T10:30:00Z",
                              &len);
    assert_exact(b, len, "status", "error", "error", "worker enqueue failed: bad \"reply\"\n",
                 "placeId", "P", "jobId", "reviews:P:start", "timestamp", "2024-01-15T10:30:00Z",
                 NULL);
    free(b);
}

static void test_health(void **state)
{
    (void)state;
    size_t len = 0;
    char *b = response_health("2024-01-15T10:30:00Z", "2h15m30s", "http://localhost:3000", &len);
    assert_exact(b, len, "status", "healthy", "service", "argus-orchestrator", "timestamp",
                 "2024-01-15T10:30:00Z", "uptime", "2h15m30s", "worker_url",
                 "http://localhost:3000", NULL);
    /* '/' is not escaped (no "http:\/\/"). */
    assert_non_null(strstr(b, "\"http://localhost:3000\""));
    free(b);
}

static void test_of_strings_skips_null(void **state)
{
    (void)state;
    size_t len = 0;
    char *b = response_object(&len, "a", "1", "b", NULL, "c", "3", NULL);
    assert_exact(b, len, "a", "1", "c", "3", NULL);
    free(b);

    b = response_object(&len, "a", NULL, NULL);
    assert_exact(b, len, NULL);
    assert_string_equal(b, "{}");
    free(b);

    b = response_object(&len, NULL, NULL);
    assert_string_equal(b, "{}");
    assert_int_equal(len, 2);
    free(b);

    /* The error body of a worker failure without a job leaves the members out. */
    b = response_worker_error("x", NULL, NULL, "2024-01-15T10:30:00Z", &len);
    assert_exact(b, len, "status", "error", "error", "worker enqueue failed: x", "timestamp",
                 "2024-01-15T10:30:00Z", NULL);
    free(b);
}

static void test_of_strings_exact_text(void **state)
{
    (void)state;
    size_t len = 0;
    char *b = response_object(&len, "status", "ok", "n", "1", NULL);
    assert_string_equal(b, "{\"status\":\"ok\",\"n\":\"1\"}");
    assert_int_equal(len, strlen(b));
    free(b);
}

static void test_of_strings_escaping(void **state)
{
    (void)state;
    static const char tricky[] = "q\"b\\s/n\nt\tr\rc\x01"
                                 "e\x1f"
                                 "d\x7f"
                                 "u\xc3\xa9!";
    size_t len = 0;
    char *b = response_object(&len, "k\"ey", tricky, NULL);
    assert_non_null(b);
    assert_int_equal(len, strlen(b));

    /* No raw control character reaches the output. */
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)b[i] < 0x20)
            fail_msg("raw control byte 0x%02x at %zu in %s", (unsigned char)b[i], i, b);
    assert_non_null(strstr(b, "q\\\"b"));    /* quote escaped */
    assert_non_null(strstr(b, "b\\\\s"));    /* backslash escaped */
    assert_non_null(strstr(b, "s/n"));       /* slash not escaped */
    assert_non_null(strstr(b, "n\\nt"));     /* newline */
    assert_non_null(strstr(b, "t\\tr"));     /* tab */
    assert_non_null(strstr(b, "r\\rc"));     /* carriage return */
    assert_non_null(strstr(b, "c\\u0001e")); /* other control characters as \u00XX */
    assert_non_null(strstr(b, "e\\u001fd"));
    assert_non_null(strstr(b, "u\xc3\xa9!"));  /* UTF-8 passes through */
    assert_non_null(strstr(b, "\"k\\\"ey\"")); /* keys are escaped too */

    /* And it parses back to the very same strings. */
    assert_exact(b, len, "k\"ey", tricky, NULL);
    free(b);
}

static void test_of_strings_long_value(void **state)
{
    (void)state;
    size_t n = 100000;
    char *v = malloc(n + 1);
    assert_non_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = "ab\"\\\n"[i % 5];
    v[n] = '\0';
    size_t len = 0;
    char *b = response_object(&len, "v", v, NULL);
    assert_exact(b, len, "v", v, NULL);
    free(b);
    free(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enqueued),
        cmocka_unit_test(test_error),
        cmocka_unit_test(test_worker_error),
        cmocka_unit_test(test_health),
        cmocka_unit_test(test_of_strings_skips_null),
        cmocka_unit_test(test_of_strings_exact_text),
        cmocka_unit_test(test_of_strings_escaping),
        cmocka_unit_test(test_of_strings_long_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
