/* SPDX-License-Identifier: MIT */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json-check.h"

/* Copies into an exact-size heap buffer so that ASan sees any read past the end. */
static bool check_n(const char *s, size_t n, unsigned depth)
{
    char *b = malloc(n ? n : 1);
    assert_non_null(b);
    memcpy(b, s, n);
    bool r = json_check(b, n, depth);
    free(b);
    return r;
}

static bool check(const char *s)
{
    return check_n(s, strlen(s), 16);
}

static void test_valid_texts(void **state)
{
    (void)state;
    static const char *ok[] = {
        "{}",
        "[]",
        " {\"placeId\":\"a\"} ",
        "\t\r\n{\"a\":[1,-2,3.5,0,-0.0,1e5,1E-5,2.5e+3,true,false,null,\"\",{}]}\n",
        "\"just a string\"",
        "42",
        "{\"a\":{\"b\":{\"c\":[[[]]]}}}",
        "{\"esc\":\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u00e9 \\uD83D\\uDE00\"}",
        "{\"utf8\":\"\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xed\x9f\xbf \xf4\x8f\xbf\xbf\"}",
        "{\"a\":1,\"a\":2}",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!check(ok[i]))
            fail_msg("rejected valid JSON: %s", ok[i]);
}

static void test_invalid_texts(void **state)
{
    (void)state;
    static const char *bad[] = {
        "",
        " ",
        "{",
        "}",
        "{\"a\":1",
        "{\"a\":1}x",
        "{} {}",
        "{\"a\" 1}",
        "{\"a\":1,}",
        "[1,]",
        "[,1]",
        "{,}",
        "{1:2}",
        "{'a':1}",
        "{\"a\":NaN}",
        "{\"a\":Infinity}",
        "{\"a\":-Infinity}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":01}",
        "{\"a\":-}",
        "{\"a\":1e}",
        "{\"a\":+1}",
        "{\"a\":tru}",
        "{\"a\":nul}",
        "{\"a\":True}",
        "{\"a\":\"raw\nnewline\"}",
        "{\"a\":\"tab\there\"}",
        "{\"a\":\"\x01\"}",
        "{\"a\":\"bad escape \\x\"}",
        "{\"a\":\"short \\u12\"}",
        "{\"a\":\"hex \\u12g4\"}",
        "{\"a\":\"unterminated}",
        "{\"a\":\"surrogate \xed\xa0\x80\"}",
        "{\"a\":\"overlong \xc0\xaf\"}",
        "{\"a\":\"overlong3 \xe0\x80\xaf\"}",
        "{\"a\":\"too big \xf4\x90\x80\x80\"}",
        "{\"a\":\"lone continuation \x80\"}",
        "{\"a\":\"truncated \xe2\x82\"}",
        "{\"a\":\"invalid lead \xff\"}",
        "/* comment */ {}",
        "{\"a\":1}//",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (check(bad[i]))
            fail_msg("accepted invalid JSON: %s", bad[i]);
}

static void test_nul_inside(void **state)
{
    (void)state;
    assert_false(check_n("{\"a\":\"x\0y\"}", 11, 16));
    assert_false(check_n("{}\0", 3, 16));
    assert_true(check_n("{}", 2, 16));
}

static void test_depth_limit(void **state)
{
    (void)state;
    char buf[200];
    size_t n = 0;
    for (int i = 0; i < 16; i++)
        buf[n++] = '[';
    for (int i = 0; i < 16; i++)
        buf[n++] = ']';
    assert_true(check_n(buf, n, 16));
    assert_false(check_n(buf, n, 15));

    n = 0;
    for (int i = 0; i < 17; i++)
        buf[n++] = '[';
    for (int i = 0; i < 17; i++)
        buf[n++] = ']';
    assert_false(check_n(buf, n, 16));

    /* Far deeper than any stack would take if this recursed. */
    size_t big = 1000000;
    char *deep = malloc(big);
    assert_non_null(deep);
    memset(deep, '[', big);
    assert_false(json_check(deep, big, 16));
    assert_false(json_check(deep, big, 1000));
    free(deep);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_texts),
        cmocka_unit_test(test_invalid_texts),
        cmocka_unit_test(test_nul_inside),
        cmocka_unit_test(test_depth_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
