/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/job.h: placeId validation, /enqueue body parsing, job ids. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "job.h"

/* Parses body[0..len) from an exactly sized heap copy with no NUL after it, so that
 * AddressSanitizer catches any read past the end. */
static JobError parse(const void *body, size_t len, char out[static PLACE_ID_MAX + 1])
{
    char *copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len)
        memcpy(copy, body, len);
    memset(out, '#', PLACE_ID_MAX + 1);
    JobError e = job_parse_request(copy, len, out);
    free(copy);
    return e;
}

#define PARSE_LIT(lit, out) parse((lit), sizeof(lit) - 1, (out))

static void assert_parse_error(const char *body, size_t len, JobError want)
{
    char out[PLACE_ID_MAX + 1];
    JobError e = parse(body, len, out);
    if (e != want)
        fail_msg("body \"%.*s\" (%zu bytes): got %d (%s), want %d (%s)",
                 (int)(len > 200 ? 200 : len), body, len, e, job_error_message(e), want,
                 job_error_message(want));
}

#define ASSERT_PARSE_ERROR(lit, want) assert_parse_error((lit), sizeof(lit) - 1, (want))

static void assert_parse_ok(const char *body, size_t len, const char *want_place_id)
{
    char out[PLACE_ID_MAX + 1];
    JobError e = parse(body, len, out);
    if (e != JOB_OK)
        fail_msg("body \"%.*s\": got %d (%s), want JOB_OK", (int)(len > 200 ? 200 : len), body, e,
                 job_error_message(e));
    assert_string_equal(out, want_place_id);
}

#define ASSERT_PARSE_OK(lit, want) assert_parse_ok((lit), sizeof(lit) - 1, (want))

/* ---- place_id_is_valid ---- */

static void test_place_id_lengths(void **state)
{
    (void)state;
    char buf[PLACE_ID_MAX + 2];
    memset(buf, 'a', sizeof(buf));

    assert_false(place_id_is_valid("", 0));
    assert_false(place_id_is_valid(buf, 0));
    assert_true(place_id_is_valid("a", 1));
    assert_true(place_id_is_valid(buf, 2));
    assert_true(place_id_is_valid(buf, PLACE_ID_MAX - 1));
    assert_true(place_id_is_valid(buf, PLACE_ID_MAX));
    assert_false(place_id_is_valid(buf, PLACE_ID_MAX + 1));
    assert_false(place_id_is_valid(buf, PLACE_ID_MAX + 2));
    assert_int_equal(PLACE_ID_MAX, 1024);
}

static void test_place_id_allowed_classes(void **state)
{
    (void)state;
    assert_true(place_id_is_valid("ChIJN1t_tDeuEmsRUsoyG83frY4", 27));
    assert_true(place_id_is_valid("test-place-id", 13));
    assert_true(place_id_is_valid("ABCDEFGHIJKLMNOPQRSTUVWXYZ", 26));
    assert_true(place_id_is_valid("abcdefghijklmnopqrstuvwxyz", 26));
    assert_true(place_id_is_valid("0123456789", 10));
    assert_true(place_id_is_valid("_", 1));
    assert_true(place_id_is_valid("-", 1));
    assert_true(place_id_is_valid("A", 1));
    assert_true(place_id_is_valid("z", 1));
    assert_true(place_id_is_valid("0", 1));
    assert_true(place_id_is_valid("9", 1));

    /* Exactly the 64 characters of [A-Za-z0-9_-] are accepted, every other byte is not. */
    for (unsigned c = 0; c < 256; c++) {
        char s[3] = {'x', (char)c, 'y'};
        bool want = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '-';
        if (place_id_is_valid(s, 3) != want)
            fail_msg("byte 0x%02x: got %d, want %d", c, !want, want);
        if (place_id_is_valid(s + 1, 1) != want)
            fail_msg("single byte 0x%02x: got %d, want %d", c, !want, want);
    }
}

static void test_place_id_rejected(void **state)
{
    (void)state;
    assert_false(place_id_is_valid("a:b", 3));
    assert_false(place_id_is_valid(":", 1));
    assert_false(place_id_is_valid("a/b", 3));
    assert_false(place_id_is_valid("a b", 3));
    assert_false(place_id_is_valid(" a", 2));
    assert_false(place_id_is_valid("a ", 2));
    assert_false(place_id_is_valid("a.b", 3));
    assert_false(place_id_is_valid("a\0b", 3));
    assert_false(place_id_is_valid("ab\0", 3));
    assert_false(place_id_is_valid("\xc3\xa9", 2));      /* é */
    assert_false(place_id_is_valid("a\xff", 2));         /* not UTF-8 at all */
    assert_false(place_id_is_valid("a\xe2\x80\x8b", 4)); /* zero width space */
    assert_false(place_id_is_valid("a\n", 2));
    assert_false(place_id_is_valid("a\t", 2));
    assert_false(place_id_is_valid("a\"", 2));
    assert_false(place_id_is_valid("a\\", 2));
    assert_false(place_id_is_valid("a+b", 3));
    assert_false(place_id_is_valid("a%20", 4));
    /* Only len bytes are looked at. */
    assert_true(place_id_is_valid("ab:c", 2));
}

/* ---- job_parse_request ---- */

static void test_parse_valid(void **state)
{
    (void)state;
    ASSERT_PARSE_OK("{\"placeId\":\"ChIJN1t_tDeuEmsRUsoyG83frY4\"}", "ChIJN1t_tDeuEmsRUsoyG83frY4");
    ASSERT_PARSE_OK("{\"placeId\": \"test-place-id\"}", "test-place-id");
    ASSERT_PARSE_OK("{\"placeId\":\"a\"}", "a");
    /* Other members are ignored. */
    ASSERT_PARSE_OK("{\"other\":[1,2,{\"x\":null}],\"placeId\":\"P_1\",\"n\":1.5}", "P_1");
    /* An escape that decodes to an allowed character is fine. */
    ASSERT_PARSE_OK("{\"placeId\":\"\\u0041b\"}", "Ab");
}

static void test_parse_whitespace_around(void **state)
{
    (void)state;
    ASSERT_PARSE_OK("  {\"placeId\":\"abc\"}  ", "abc");
    ASSERT_PARSE_OK("\t\r\n {\"placeId\":\"abc\"} \t\r\n", "abc");
    ASSERT_PARSE_OK("{ \"placeId\" : \"abc\" }\n", "abc");
    ASSERT_PARSE_OK("{\n\t\"placeId\":\n\t\"abc\"\r\n}", "abc");
}

static void test_parse_max_length(void **state)
{
    (void)state;
    const char pre[] = "{\"placeId\":\"";
    const char post[] = "\"}";
    size_t n = sizeof(pre) - 1 + PLACE_ID_MAX + 1 + sizeof(post) - 1;
    char *body = malloc(n);
    assert_non_null(body);
    char want[PLACE_ID_MAX + 1];
    for (size_t i = 0; i < PLACE_ID_MAX; i++)
        want[i] = "abcXYZ019_-"[i % 11];
    want[PLACE_ID_MAX] = '\0';

    /* 1024 characters: accepted and copied whole, NUL-terminated. */
    memcpy(body, pre, sizeof(pre) - 1);
    memcpy(body + sizeof(pre) - 1, want, PLACE_ID_MAX);
    memcpy(body + sizeof(pre) - 1 + PLACE_ID_MAX, post, sizeof(post) - 1);
    char out[PLACE_ID_MAX + 1];
    assert_int_equal(parse(body, n - 1, out), JOB_OK);
    assert_int_equal(strlen(out), PLACE_ID_MAX);
    assert_string_equal(out, want);

    /* 1025 characters: invalid. */
    memcpy(body + sizeof(pre) - 1, want, PLACE_ID_MAX);
    body[sizeof(pre) - 1 + PLACE_ID_MAX] = 'q';
    memcpy(body + sizeof(pre) - 1 + PLACE_ID_MAX + 1, post, sizeof(post) - 1);
    assert_int_equal(parse(body, n, out), JOB_PLACE_ID_INVALID);
    free(body);

    /* Much longer still: invalid, no overflow of the output. */
    size_t big = 100000;
    char *b = malloc(big);
    assert_non_null(b);
    memset(b, 'x', big);
    memcpy(b, pre, sizeof(pre) - 1);
    memcpy(b + big - 2, post, 2);
    assert_int_equal(parse(b, big, out), JOB_PLACE_ID_INVALID);
    free(b);
}

static void test_parse_not_json(void **state)
{
    (void)state;
    ASSERT_PARSE_ERROR("hello", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("placeId=abc", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{'placeId':'a'}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{placeId:\"a\"}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\",}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\" \"a\"}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\" \"b\":1}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\",\"x\":01}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\",\"x\":+1}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\",\"x\":.5}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\",\"x\":TRUE}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\",\"x\":\"\\x41\"}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("/*c*/{\"placeId\":\"a\"}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("\xef\xbb\xbf{\"placeId\":\"a\"}", JOB_INVALID_JSON); /* BOM */
    ASSERT_PARSE_ERROR("\f{\"placeId\":\"a\"}", JOB_INVALID_JSON); /* not JSON whitespace */
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\"}\v", JOB_INVALID_JSON);
}

static void test_parse_truncated(void **state)
{
    (void)state;
    static const char full[] = "{\"placeId\":\"abc\"}";
    /* Every proper prefix is invalid JSON. */
    for (size_t n = 1; n < sizeof(full) - 1; n++)
        assert_parse_error(full, n, JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\"", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\\", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\\u00", JOB_INVALID_JSON);
}

static void test_parse_trailing_garbage(void **state)
{
    (void)state;
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\"}x", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{} {}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\"} {}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\"}{\"placeId\":\"b\"}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\"}}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\"}]", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\"} x", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\"}\n1", JOB_INVALID_JSON);
    /* A NUL after the document is not whitespace. */
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\"}\0", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\"}\0garbage", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\"} \0", JOB_INVALID_JSON);
}

static void test_parse_not_an_object(void **state)
{
    (void)state;
    ASSERT_PARSE_ERROR("[]", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("[{\"placeId\":\"a\"}]", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("\"placeId\"", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("\"a\"", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("123", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("123 ", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("-1.5e3\n", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("null", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("null ", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("true", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("false ", JOB_INVALID_JSON);
}

static void test_parse_place_id_required(void **state)
{
    (void)state;
    ASSERT_PARSE_ERROR("{}", JOB_PLACE_ID_REQUIRED);
    ASSERT_PARSE_ERROR(" { } ", JOB_PLACE_ID_REQUIRED);
    ASSERT_PARSE_ERROR("{\"placeId\":null}", JOB_PLACE_ID_REQUIRED);
    ASSERT_PARSE_ERROR("{\"placeId\":\"\"}", JOB_PLACE_ID_REQUIRED);
    /* Member names are case-sensitive. */
    ASSERT_PARSE_ERROR("{\"placeid\":\"a\"}", JOB_PLACE_ID_REQUIRED);
    ASSERT_PARSE_ERROR("{\"PlaceId\":\"a\"}", JOB_PLACE_ID_REQUIRED);
    ASSERT_PARSE_ERROR("{\"place_id\":\"a\"}", JOB_PLACE_ID_REQUIRED);
    ASSERT_PARSE_ERROR("{\"other\":{\"placeId\":\"a\"}}", JOB_PLACE_ID_REQUIRED);
}

static void test_parse_place_id_not_string(void **state)
{
    (void)state;
    ASSERT_PARSE_ERROR("{\"placeId\":1}", JOB_PLACE_ID_NOT_STRING);
    ASSERT_PARSE_ERROR("{\"placeId\":0}", JOB_PLACE_ID_NOT_STRING);
    ASSERT_PARSE_ERROR("{\"placeId\":-3}", JOB_PLACE_ID_NOT_STRING);
    ASSERT_PARSE_ERROR("{\"placeId\":1.5}", JOB_PLACE_ID_NOT_STRING);
    ASSERT_PARSE_ERROR("{\"placeId\":true}", JOB_PLACE_ID_NOT_STRING);
    ASSERT_PARSE_ERROR("{\"placeId\":false}", JOB_PLACE_ID_NOT_STRING);
    ASSERT_PARSE_ERROR("{\"placeId\":{}}", JOB_PLACE_ID_NOT_STRING);
    ASSERT_PARSE_ERROR("{\"placeId\":{\"placeId\":\"a\"}}", JOB_PLACE_ID_NOT_STRING);
    ASSERT_PARSE_ERROR("{\"placeId\":[]}", JOB_PLACE_ID_NOT_STRING);
    ASSERT_PARSE_ERROR("{\"placeId\":[\"a\"]}", JOB_PLACE_ID_NOT_STRING);
}

static void test_parse_place_id_invalid(void **state)
{
    (void)state;
    ASSERT_PARSE_ERROR("{\"placeId\":\"a:b\"}", JOB_PLACE_ID_INVALID);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a/b\"}", JOB_PLACE_ID_INVALID);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\\/b\"}", JOB_PLACE_ID_INVALID);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a b\"}", JOB_PLACE_ID_INVALID);
    ASSERT_PARSE_ERROR("{\"placeId\":\" a\"}", JOB_PLACE_ID_INVALID);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a.b\"}", JOB_PLACE_ID_INVALID);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\\\"b\"}", JOB_PLACE_ID_INVALID);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\\\\b\"}", JOB_PLACE_ID_INVALID);
    /* Escapes that decode to a NUL, control characters or non-ASCII. */
    ASSERT_PARSE_ERROR("{\"placeId\":\"\\u0000\"}", JOB_PLACE_ID_INVALID);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\\u0000b\"}", JOB_PLACE_ID_INVALID);
    ASSERT_PARSE_ERROR("{\"placeId\":\"ab\\u0000\"}", JOB_PLACE_ID_INVALID);
    ASSERT_PARSE_ERROR("{\"placeId\":\"\\n\"}", JOB_PLACE_ID_INVALID);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\\nb\"}", JOB_PLACE_ID_INVALID);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\\tb\"}", JOB_PLACE_ID_INVALID);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\\u001fb\"}", JOB_PLACE_ID_INVALID);
    ASSERT_PARSE_ERROR("{\"placeId\":\"\\u00e9\"}", JOB_PLACE_ID_INVALID);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\\u003ab\"}", JOB_PLACE_ID_INVALID); /* ':' */
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\\ud83d\\ude00\"}", JOB_PLACE_ID_INVALID);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\\ud800\"}", JOB_PLACE_ID_INVALID);
    /* Valid UTF-8 that is not ASCII. */
    ASSERT_PARSE_ERROR("{\"placeId\":\"caf\xc3\xa9\"}", JOB_PLACE_ID_INVALID);
}

static void test_parse_raw_control_characters(void **state)
{
    (void)state;
    /* RFC 8259 forbids unescaped control characters in strings ("invalid JSON"); json-c's strict
     * mode lets them through to the placeId check ("placeId is invalid"). Either way a 400. */
    static const char *const bodies[] = {
        "{\"placeId\":\"a\nb\"}",
        "{\"placeId\":\"a\tb\"}",
        "{\"placeId\":\"a\x01"
        "b\"}",
        "{\"placeId\":\"a\x1f\"}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char out[PLACE_ID_MAX + 1];
        JobError e = parse(bodies[i], strlen(bodies[i]), out);
        if (e != JOB_INVALID_JSON && e != JOB_PLACE_ID_INVALID)
            fail_msg("body %zu: got %d (%s)", i, e, job_error_message(e));
    }
}

static void test_parse_invalid_utf8(void **state)
{
    (void)state;
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\xff"
                       "b\"}",
                       JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"\xfe\"}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\xc3\"}", JOB_INVALID_JSON); /* truncated sequence */
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\x80\"}", JOB_INVALID_JSON); /* lone continuation */
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\",\"x\":\"\xc3\"}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\"}\xc3", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("\xff{\"placeId\":\"a\"}", JOB_INVALID_JSON);
}

static void test_parse_nul_inside(void **state)
{
    (void)state;
    ASSERT_PARSE_ERROR("{\"placeId\":\"a\0b\"}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\"placeId\":\"\0\"}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("{\0\"placeId\":\"a\"}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("\0{\"placeId\":\"a\"}", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("\0", JOB_INVALID_JSON);
}

static void test_parse_empty(void **state)
{
    (void)state;
    char out[PLACE_ID_MAX + 1];
    assert_int_equal(parse("", 0, out), JOB_INVALID_JSON);
    assert_int_equal(job_parse_request("", 0, out), JOB_INVALID_JSON);
    /* len 0 means nothing is read, whatever the pointer points at. */
    assert_int_equal(job_parse_request("{\"placeId\":\"a\"}", 0, out), JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR(" ", JOB_INVALID_JSON);
    ASSERT_PARSE_ERROR("\r\n\t ", JOB_INVALID_JSON);
}

/* n '[' then n ']' */
static void test_parse_deep_arrays(void **state)
{
    (void)state;
    size_t n = 10000;
    char *b = malloc(2 * n);
    assert_non_null(b);
    memset(b, '[', n);
    assert_parse_error(b, n, JOB_INVALID_JSON);
    memset(b + n, ']', n);
    assert_parse_error(b, 2 * n, JOB_INVALID_JSON);
    memset(b, '{', n);
    assert_parse_error(b, n, JOB_INVALID_JSON);
    free(b);
}

/* An object nested `depth` deep: {"a":{"a":…{}…}} with `extra` members in the outermost one. */
static char *nested_object(unsigned depth, const char *extra, size_t *ret_len)
{
    size_t cap = depth * 6 + strlen(extra) + 16;
    char *b = malloc(cap);
    assert_non_null(b);
    size_t l = 0;
    b[l++] = '{';
    l += (size_t)snprintf(b + l, cap - l, "%s", extra);
    for (unsigned i = 1; i < depth; i++) {
        memcpy(b + l, "\"a\":{", 5);
        l += 5;
    }
    for (unsigned i = 0; i < depth; i++)
        b[l++] = '}';
    assert_true(l < cap);
    *ret_len = l;
    return b;
}

static void test_parse_nesting_limit(void **state)
{
    (void)state;
    size_t l;
    char *b;

    assert_int_equal(REQUEST_JSON_MAX_DEPTH, 16);

    /* 16 deep: parsed (and then lacks a placeId). */
    b = nested_object(REQUEST_JSON_MAX_DEPTH, "", &l);
    assert_parse_error(b, l, JOB_PLACE_ID_REQUIRED);
    free(b);
    b = nested_object(REQUEST_JSON_MAX_DEPTH, "\"placeId\":\"deep\",", &l);
    assert_parse_ok(b, l, "deep");
    free(b);

    /* 16 containers with a value in the innermost (the fuzzer found json-c's limit one short) */
    static const char with_value[] = "{\"placeId\":\"deep\",\"d\":[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]}";
    assert_parse_ok(with_value, sizeof(with_value) - 1, "deep");
    static const char too_deep[] = "{\"placeId\":\"deep\",\"d\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}";
    assert_parse_error(too_deep, sizeof(too_deep) - 1, JOB_INVALID_JSON);

    /* 17 deep: invalid JSON, even with a good placeId beside it. */
    b = nested_object(REQUEST_JSON_MAX_DEPTH + 1, "", &l);
    assert_parse_error(b, l, JOB_INVALID_JSON);
    free(b);
    b = nested_object(REQUEST_JSON_MAX_DEPTH + 1, "\"placeId\":\"deep\",", &l);
    assert_parse_error(b, l, JOB_INVALID_JSON);
    free(b);
    b = nested_object(1000, "\"placeId\":\"deep\",", &l);
    assert_parse_error(b, l, JOB_INVALID_JSON);
    free(b);
}

static void test_parse_output_terminated(void **state)
{
    (void)state;
    char out[PLACE_ID_MAX + 1];
    /* parse() fills out with '#' first: the copy must bring its own NUL. */
    assert_int_equal(PARSE_LIT("{\"placeId\":\"xyz\"}", out), JOB_OK);
    assert_memory_equal(out, "xyz\0", 4);
}

/* ---- job_error_message ---- */

static void test_error_messages(void **state)
{
    (void)state;
    assert_string_equal(job_error_message(JOB_INVALID_JSON), "invalid JSON");
    assert_string_equal(job_error_message(JOB_PLACE_ID_REQUIRED), "placeId is required");
    assert_string_equal(job_error_message(JOB_PLACE_ID_NOT_STRING), "placeId must be a string");
    assert_string_equal(job_error_message(JOB_PLACE_ID_INVALID), "placeId is invalid");
    assert_non_null(job_error_message(JOB_OK));
    assert_non_null(job_error_message((JobError)99));
}

/* ---- job_id_format ---- */

static void test_job_id_format(void **state)
{
    (void)state;
    char buf[JOB_ID_MAX + 1];

    memset(buf, '#', sizeof(buf));
    assert_int_equal(job_id_format("P", buf), 15);
    assert_string_equal(buf, "reviews:P:start");

    memset(buf, '#', sizeof(buf));
    size_t n = job_id_format("ChIJN1t_tDeuEmsRUsoyG83frY4", buf);
    assert_string_equal(buf, "reviews:ChIJN1t_tDeuEmsRUsoyG83frY4:start");
    assert_int_equal(n, strlen("reviews:ChIJN1t_tDeuEmsRUsoyG83frY4:start"));

    memset(buf, '#', sizeof(buf));
    n = job_id_format("test-place-id", buf);
    assert_string_equal(buf, "reviews:test-place-id:start");
    assert_int_equal(n, 27);

    /* Deterministic. */
    char buf2[JOB_ID_MAX + 1];
    assert_int_equal(job_id_format("test-place-id", buf2), n);
    assert_string_equal(buf, buf2);
}

static void test_job_id_format_returned_length(void **state)
{
    (void)state;
    char buf[JOB_ID_MAX + 1];
    memset(buf, '#', sizeof(buf));
    size_t n = job_id_format("P", buf);
    assert_int_equal(n, strlen(buf));
    assert_int_equal(n, strlen("reviews:P:start"));
}

static void test_job_id_format_max(void **state)
{
    (void)state;
    char place[PLACE_ID_MAX + 1];
    memset(place, 'Z', PLACE_ID_MAX);
    place[PLACE_ID_MAX] = '\0';

    /* Exactly sized heap buffer, so an overflow shows under AddressSanitizer. */
    char *buf = malloc(JOB_ID_MAX + 1);
    assert_non_null(buf);
    size_t n = job_id_format(place, buf);
    assert_int_equal(n, 8 + PLACE_ID_MAX + 6);
    assert_int_equal(n, JOB_ID_MAX);
    assert_int_equal(strlen(buf), n);
    assert_memory_equal(buf, "reviews:", 8);
    for (size_t i = 0; i < PLACE_ID_MAX; i++)
        if (buf[8 + i] != 'Z')
            fail_msg("byte %zu of the placeId is 0x%02x", i, (unsigned char)buf[8 + i]);
    assert_string_equal(buf + 8 + PLACE_ID_MAX, ":start");
    free(buf);
}

static void test_parse_then_format(void **state)
{
    (void)state;
    char place[PLACE_ID_MAX + 1], job[JOB_ID_MAX + 1];
    assert_int_equal(PARSE_LIT(" {\"placeId\" : \"abc-DEF_123\"} ", place), JOB_OK);
    assert_int_equal(job_id_format(place, job), strlen("reviews:abc-DEF_123:start"));
    assert_string_equal(job, "reviews:abc-DEF_123:start");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_place_id_lengths),
        cmocka_unit_test(test_place_id_allowed_classes),
        cmocka_unit_test(test_place_id_rejected),
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_whitespace_around),
        cmocka_unit_test(test_parse_max_length),
        cmocka_unit_test(test_parse_not_json),
        cmocka_unit_test(test_parse_truncated),
        cmocka_unit_test(test_parse_trailing_garbage),
        cmocka_unit_test(test_parse_not_an_object),
        cmocka_unit_test(test_parse_place_id_required),
        cmocka_unit_test(test_parse_place_id_not_string),
        cmocka_unit_test(test_parse_place_id_invalid),
        cmocka_unit_test(test_parse_raw_control_characters),
        cmocka_unit_test(test_parse_invalid_utf8),
        cmocka_unit_test(test_parse_nul_inside),
        cmocka_unit_test(test_parse_empty),
        cmocka_unit_test(test_parse_deep_arrays),
        cmocka_unit_test(test_parse_nesting_limit),
        cmocka_unit_test(test_parse_output_terminated),
        cmocka_unit_test(test_error_messages),
        cmocka_unit_test(test_job_id_format),
        cmocka_unit_test(test_job_id_format_returned_length),
        cmocka_unit_test(test_job_id_format_max),
        cmocka_unit_test(test_parse_then_format),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
