/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/http-util.h: X-Request-Id and Content-Type checks, the path of
 * an absolute-form target, a URL for the log. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http-util.h"

/* Both helpers take (pointer, length) from h2o, with no NUL after the value: test them from an
 * exactly sized heap copy so that AddressSanitizer catches a read past the end. */
static bool call(bool (*fn)(const char *, size_t), const char *s, size_t len)
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    memcpy(copy, s, len);
    bool r = fn(copy, len);
    free(copy);
    return r;
}

static bool rid(const char *s)
{
    return call(request_id_is_valid, s, strlen(s));
}

static bool ct(const char *s)
{
    return call(content_type_is_json, s, strlen(s));
}

static void test_request_id_valid(void **state)
{
    (void)state;
    assert_true(rid("a"));
    assert_true(rid("0123456789abcdef0123456789abcdef"));
    assert_true(rid("req-123_abc.def:ghi/jkl"));
    assert_true(rid("550e8400-e29b-41d4-a716-446655440000"));
    assert_true(rid("!#$%&()*+,-./:;<=>?@[]^_`{|}~"));
}

static void test_request_id_length(void **state)
{
    (void)state;
    char buf[REQUEST_ID_MAX + 2];
    memset(buf, 'r', sizeof(buf));
    assert_int_equal(REQUEST_ID_MAX, 128);
    assert_false(call(request_id_is_valid, buf, 0));
    assert_true(call(request_id_is_valid, buf, 1));
    assert_true(call(request_id_is_valid, buf, REQUEST_ID_MAX));
    assert_false(call(request_id_is_valid, buf, REQUEST_ID_MAX + 1));
    assert_false(call(request_id_is_valid, buf, REQUEST_ID_MAX + 2));
}

static void test_request_id_rejected(void **state)
{
    (void)state;
    assert_false(rid("a b"));
    assert_false(rid(" a"));
    assert_false(rid("a "));
    assert_false(rid("a\"b"));
    assert_false(rid("a\\b"));
    assert_false(rid("a\tb"));
    assert_false(rid("a\nb"));
    assert_false(rid("a\rb"));
    assert_false(rid("a\x7f"));
    assert_false(rid("caf\xc3\xa9"));
    assert_false(rid("\xff"));
    assert_false(call(request_id_is_valid, "a\0b", 3));

    /* Every byte alone: exactly the printable ASCII but space, quote and backslash. (The
     * apostrophe is left out: whether it counts as a "quote" is the header's call.) */
    for (unsigned c = 0; c < 256; c++) {
        if (c == '\'')
            continue;
        char s[1] = {(char)c};
        bool want = c > ' ' && c <= '~' && c != '"' && c != '\\';
        if (call(request_id_is_valid, s, 1) != want)
            fail_msg("byte 0x%02x: got %d, want %d", c, !want, want);
    }
}

static void test_content_type_json(void **state)
{
    (void)state;
    assert_true(ct("application/json"));
    assert_true(ct("application/json; charset=utf-8"));
    assert_true(ct("application/json;charset=UTF-8"));
    assert_true(ct("application/json ; charset=utf-8"));
    assert_true(ct("Application/JSON"));
    assert_true(ct("APPLICATION/JSON; CHARSET=UTF-8"));
    assert_true(ct(" application/json "));
    assert_true(ct("\tapplication/json\t"));
    assert_true(ct("application/json;"));
}

static void test_content_type_not_json(void **state)
{
    (void)state;
    assert_false(ct("application/jsonx"));
    assert_false(ct("application/json x"));
    assert_false(ct("application/json-patch+json"));
    assert_false(ct("application/jso"));
    assert_false(ct("application/"));
    assert_false(ct("application"));
    assert_false(ct("text/plain"));
    assert_false(ct("text/json"));
    assert_false(ct("application/x-www-form-urlencoded"));
    assert_false(ct("multipart/form-data; boundary=x"));
    assert_false(ct("xapplication/json"));
    assert_false(ct("application /json"));
    assert_false(ct("application/ json"));
    assert_false(ct(""));
    assert_false(ct(" "));
    assert_false(ct(";"));
    assert_false(ct("; application/json"));
    assert_false(call(content_type_is_json, "application/json\0", 17));
}

static void test_content_type_length_bound(void **state)
{
    (void)state;
    /* Only len bytes count. */
    assert_true(call(content_type_is_json, "application/jsonx", 16));
    assert_false(call(content_type_is_json, "application/json", 15));
    assert_false(call(content_type_is_json, "application/json", 0));
}

static void test_absolute_form_target(void **state)
{
    (void)state;
    static const struct {
        const char *target;
        long path_at; /* -1: not in absolute form */
    } cases[] = {
        {"http://host/enqueue", 11},
        {"HTTPS://host:8443/health?x=1", 17},
        {"http://[::1]:8080/ready", 17},
        {"http://host", 11},
        {"http://host?q", 11},
        {"/enqueue", -1},
        {"/http://host/enqueue", -1},
        {"host:8080", -1},
        {"*", -1},
        {"http:///enqueue", -1},
        {"http:/host/enqueue", -1},
        {"ftp://host/enqueue", -1},
        {"http:/", -1},
        {"", -1},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].target), off = 12345;
        char *copy = malloc(len ? len : 1); /* no NUL after it, as from h2o */
        assert_non_null(copy);
        memcpy(copy, cases[i].target, len);
        bool abs = http_target_absolute_path(copy, len, &off);
        free(copy);
        if (abs != (cases[i].path_at >= 0) || (abs && (long)off != cases[i].path_at))
            fail_msg("%s: %d at %zu", cases[i].target, abs, off);
    }
}

static void test_target_is(void **state)
{
    (void)state;
    static const struct {
        const char *target;
        bool is;
    } cases[] = {
        {"/enqueue/batch", true},
        {"/enqueue/batch?x=1", true},
        {"http://host:8080/enqueue/batch", true},
        {"HTTP://host/enqueue/batch?", true},
        {"/enqueue/batch/", false},
        {"/enqueue/./batch", false}, /* as written: libh2o's normalization is not redone */
        {"/enqueue", false},
        {"/enqueue/batchx", false},
        {"http://host", false},
        {"", false},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t len = strlen(cases[i].target);
        char *copy = malloc(len ? len : 1); /* no NUL after it, as from h2o */
        assert_non_null(copy);
        memcpy(copy, cases[i].target, len);
        bool is = http_target_is(copy, len, ENQUEUE_BATCH_PATH);
        free(copy);
        if (is != cases[i].is)
            fail_msg("%s: %d", cases[i].target, is);
    }
}

static void redacts(const char *url, const char *want)
{
    char *got = NULL;
    assert_int_equal(url_redact_userinfo(url, &got), 0);
    assert_string_equal(got, want);
    free(got);
}

static void test_url_redact_userinfo(void **state)
{
    (void)state;
    redacts("http://worker.example:3000/base", "http://worker.example:3000/base");
    redacts("http://user:s3cret@worker:3000/x", "http://user:***@worker:3000/x");
    redacts("https://tok3n@worker", "https://***@worker");
    redacts("http://user:@worker", "http://user:***@worker");
    redacts("http://u:p@ss@worker/", "http://u:***@worker/");
    redacts("http://u:pa/ss@worker", "http://u:***@worker");
    redacts("user:s3cret@worker:3000", "user:***@worker:3000");
    redacts("http://@worker", "http://***@worker");
    redacts("", "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_id_valid),
        cmocka_unit_test(test_request_id_length),
        cmocka_unit_test(test_request_id_rejected),
        cmocka_unit_test(test_content_type_json),
        cmocka_unit_test(test_content_type_not_json),
        cmocka_unit_test(test_content_type_length_bound),
        cmocka_unit_test(test_url_redact_userinfo),
        cmocka_unit_test(test_target_is),
        cmocka_unit_test(test_absolute_form_target),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
