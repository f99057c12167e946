/* SPDX-License-Identifier: MIT */
#include <json-c/json.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json-writer.h"

static void test_object_of_strings_and_ints(void **state)
{
    (void)state;
    JsonWriter w = {0};
    json_writer_begin(&w);
    json_writer_string(&w, "a", "plain");
    json_writer_int(&w, "n", -42);
    json_writer_string(&w, "esc", "q\"b\\n\nr\rt\t\x01\x1f/é");
    json_writer_end(&w);
    size_t len;
    char *s = json_writer_take(&w, &len);
    assert_non_null(s);
    assert_int_equal(strlen(s), len);
    assert_string_equal(
        s, "{\"a\":\"plain\",\"n\":-42,\"esc\":\"q\\\"b\\\\n\\nr\\rt\\t\\u0001\\u001f/é\"}");
    /* and json-c reads back the same values */
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    json_object *v;
    assert_true(json_object_object_get_ex(o, "esc", &v));
    assert_string_equal(json_object_get_string(v), "q\"b\\n\nr\rt\t\x01\x1f/é");
    assert_true(json_object_object_get_ex(o, "n", &v));
    assert_int_equal(json_object_get_int(v), -42);
    json_object_put(o);
    free(s);
    assert_null(w.buf.p); /* taken */
}

static void test_integer_limits(void **state)
{
    (void)state;
    JsonWriter w = {0};
    json_writer_begin(&w);
    json_writer_int(&w, "zero", 0);
    json_writer_int(&w, "max", LLONG_MAX);
    json_writer_int(&w, "min", LLONG_MIN);
    json_writer_int(&w, "ten", 10);
    json_writer_end(&w);
    size_t len;
    char *s = json_writer_take(&w, &len);
    assert_non_null(s);
    assert_string_equal(s, "{\"zero\":0,\"max\":9223372036854775807,"
                           "\"min\":-9223372036854775808,\"ten\":10}");
    free(s);
}

/* {"k": value}, written whole */
static char *object_of_one(const char *value, size_t *ret_len)
{
    JsonWriter w = {0};
    json_writer_begin(&w);
    json_writer_string(&w, "k", value);
    json_writer_end(&w);
    char *s = json_writer_take(&w, ret_len);
    assert_non_null(s);
    return s;
}

static void test_every_control_byte_is_escaped(void **state)
{
    (void)state;
    char in[40], *p = in;
    for (int c = 1; c < 0x20; c++)
        *p++ = (char)c;
    *p++ = 'x', *p = '\0';
    size_t len;
    char *s = object_of_one(in, &len);
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    json_object *v;
    assert_true(json_object_object_get_ex(o, "k", &v));
    assert_string_equal(json_object_get_string(v), in);
    assert_non_null(strstr(s, "\\u001f"));
    assert_non_null(strstr(s, "\\u0008"));
    json_object_put(o);
    free(s);
}

static void test_grows_for_long_values(void **state)
{
    (void)state;
    size_t n = 100000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, '\n', n); /* each becomes two bytes */
    big[n] = '\0';
    size_t len;
    char *s = object_of_one(big, &len);
    assert_int_equal(len, 2 * n + strlen("{\"k\":\"\"}"));
    free(s);
    free(big);
}

/* json-c's reading of s, strict and checking UTF-8; fails the test if it is not JSON. */
static json_object *parse_strict(const char *s)
{
    json_tokener *tok = json_tokener_new();
    assert_non_null(tok);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, s, (int)strlen(s));
    if (!o || json_tokener_get_error(tok) != json_tokener_success)
        fail_msg("not valid UTF-8 JSON (%s): %s",
                 json_tokener_error_desc(json_tokener_get_error(tok)), s);
    json_tokener_free(tok);
    return o;
}

/* The value of "k" after a round trip through the writer and json-c. */
static void check_value(const char *in, const char *want)
{
    size_t len;
    char *s = object_of_one(in, &len);
    json_object *o = parse_strict(s), *v;
    assert_true(json_object_object_get_ex(o, "k", &v));
    assert_string_equal(json_object_get_string(v), want);
    json_object_put(o);
    free(s);
}

/* Issue #9: a request path with bytes that are not UTF-8 made a line that is not JSON. */
static void test_invalid_utf8_becomes_replacement_characters(void **state)
{
    (void)state;
    size_t len;
    char *s = object_of_one("GET /\xff\xfe\xc3", &len);
    assert_string_equal(s, "{\"k\":\"GET /\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\"}");
    free(s);
    check_value("/\xff\xfe\xc3", "/\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    check_value("\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd");                   /* overlong '/' */
    check_value("\xed\xa0\x80x", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbdx"); /* a surrogate */
    check_value("\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    check_value("\xe2\x82\"", "\xef\xbf\xbd\""); /* cut short by a quote, still escaped */
}

static void test_valid_utf8_is_kept(void **state)
{
    (void)state;
    static const char *const v[] = {
        "caf\xc3\xa9",
        "\xe2\x82\xac 5",
        "\xf0\x9f\x98\x80",
        "\xf4\x8f\xbf\xbf",
        "\xef\xbf\xbd",
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\n\xd0\x9a\xd0\xb8\xd0\xb5\xd0\xb2",
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        check_value(v[i], v[i]);
}

/* Plain runs are scanned 8 bytes at a time: a byte that needs care is found at every offset
 * and in every string length around a word. */
static void test_special_byte_at_every_offset(void **state)
{
    (void)state;
    static const struct {
        const char *byte, *want;
    } cases[] = {
        {"\"", "\""},
        {"\\", "\\"},
        {"\n", "\n"},
        {"\x01", "\x01"},
        {"\x1f", "\x1f"},
        {"\x7f", "\x7f"},
        {" ", " "},
        {"\x80", "\xef\xbf\xbd"},
        {"\xff", "\xef\xbf\xbd"},
        {"\xc3\xa9", "\xc3\xa9"},
        {"\xc3", "\xef\xbf\xbd"},
        {"\xf0\x9f\x98\x80", "\xf0\x9f\x98\x80"},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++)
        for (size_t n = 0; n <= 24; n++)
            for (size_t at = 0; at <= n; at++) {
                char in[64], want[64];
                memset(in, 'a', n);
                memset(want, 'a', n);
                size_t bl = strlen(cases[k].byte), wl = strlen(cases[k].want);
                memcpy(in + at, cases[k].byte, bl);
                memcpy(in + at + bl, "bcdefghijklmnopqrstuvwxyz", n - at);
                in[n + bl] = '\0';
                memcpy(want + at, cases[k].want, wl);
                memcpy(want + at + wl, "bcdefghijklmnopqrstuvwxyz", n - at);
                want[n + wl] = '\0';
                check_value(in, want);
            }
}

static void test_empty_writer_takes_null(void **state)
{
    (void)state;
    JsonWriter w = {0};
    size_t len = 7;
    assert_null(json_writer_take(&w, &len));
    json_writer_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_object_of_strings_and_ints),
        cmocka_unit_test(test_integer_limits),
        cmocka_unit_test(test_every_control_byte_is_escaped),
        cmocka_unit_test(test_grows_for_long_values),
        cmocka_unit_test(test_invalid_utf8_becomes_replacement_characters),
        cmocka_unit_test(test_valid_utf8_is_kept),
        cmocka_unit_test(test_special_byte_at_every_offset),
        cmocka_unit_test(test_empty_writer_takes_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
