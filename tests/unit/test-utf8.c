/* SPDX-License-Identifier: MIT */
/* Unit tests of src/basic/utf8.h: RFC 3629 validity, and U+FFFD for each maximal ill-formed
 * subpart. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "utf8.h"

#define R UTF8_REPLACEMENT

/* utf8_sanitize of in (n bytes) must give want, and agree with the other functions. */
static void check_n(const char *in, size_t n, const char *want)
{
    char out[256];
    assert_true(3 * n <= sizeof(out));
    size_t len = utf8_sanitize(in, n, out);
    if (len != strlen(want) || memcmp(out, want, len) != 0) {
        char got[1024] = "", exp[1024] = "";
        for (size_t i = 0; i < len && strlen(got) + 5 < sizeof(got); i++)
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%02x ", (unsigned char)out[i]);
        for (size_t i = 0; want[i] && strlen(exp) + 5 < sizeof(exp); i++)
            snprintf(exp + strlen(exp), sizeof(exp) - strlen(exp), "%02x ", (unsigned char)want[i]);
        fail_msg("sanitized to %s, want %s", got, exp);
    }
    assert_int_equal(utf8_sanitized_length(in, n), len);
    assert_int_equal(utf8_is_valid(in, n), len == n && memcmp(in, out, n) == 0);
    assert_true(utf8_is_valid(out, len));
}

static void check(const char *in, const char *want)
{
    check_n(in, strlen(in), want);
}

static void test_valid_text_is_kept(void **state)
{
    (void)state;
    static const char *const valid[] = {
        "",
        "plain ASCII /path?q=1",
        "\x7f",             /* DEL is ASCII */
        "\xc2\x80",         /* U+0080, the first two-byte */
        "caf\xc3\xa9",      /* é */
        "\xdf\xbf",         /* U+07FF */
        "\xe0\xa0\x80",     /* U+0800, the first three-byte */
        "\xe2\x82\xac",     /* € */
        "\xed\x9f\xbf",     /* U+D7FF, just below the surrogates */
        "\xee\x80\x80",     /* U+E000, just above them */
        "\xef\xbf\xbd",     /* U+FFFD itself */
        "\xef\xbf\xbf",     /* U+FFFF */
        "\xf0\x90\x80\x80", /* U+10000, the first four-byte */
        "\xf0\x9f\x98\x80", /* an emoji */
        "\xf4\x8f\xbf\xbf", /* U+10FFFF, the last */
        "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e / \xd0\x9a\xd0\xb8\xd0\xb5\xd0\xb2",
    };
    for (size_t i = 0; i < sizeof(valid) / sizeof(valid[0]); i++)
        check(valid[i], valid[i]);
    /* NUL is a character like any other */
    char out[9];
    assert_true(utf8_is_valid("a\0b", 3));
    assert_int_equal(utf8_sanitize("a\0b", 3, out), 3);
    assert_memory_equal(out, "a\0b", 3);
}

static void test_each_maximal_subpart_is_one_replacement(void **state)
{
    (void)state;
    /* the request path of issue #9 */
    check("/\xff\xfe\xc3", "/" R R R);
    /* a lone continuation byte, bytes that never appear */
    check("\x80", R);
    check("\xbf\xbf", R R);
    check("\xc0\xc1\xf5\xff", R R R R);
    /* a sequence cut short is one replacement, whatever its length so far */
    check("\xc3", R);
    check("\xe2\x82", R);
    check("\xf0\x9f\x98", R);
    check("\xe2\x82"
          "A",
          R "A");
    check("\xf0\x9f\x98"
          "\xf0\x9f\x98\x80",
          R "\xf0\x9f\x98\x80");
    /* Unicode's own example (chapter 3, "U+FFFD Substitution of Maximal Subparts") */
    check("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64", "a" R R R "b" R "c" R R "d");
}

static void test_overlong_forms_are_rejected(void **state)
{
    (void)state;
    check("\xc0\xaf", R R);             /* '/' in two bytes */
    check("\xc1\xbf", R R);             /* U+007F in two bytes */
    check("\xe0\x80\xaf", R R R);       /* '/' in three */
    check("\xe0\x9f\xbf", R R R);       /* U+07FF in three */
    check("\xf0\x80\x80\xaf", R R R R); /* '/' in four */
    check("\xf0\x8f\xbf\xbf", R R R R); /* U+FFFF in four */
}

static void test_surrogates_are_rejected(void **state)
{
    (void)state;
    check("\xed\xa0\x80", R R R);                   /* U+D800 */
    check("\xed\xbf\xbf", R R R);                   /* U+DFFF */
    check("\xed\xa0\xbd\xed\xb8\x80", R R R R R R); /* a CESU-8 pair */
}

static void test_past_u10ffff_is_rejected(void **state)
{
    (void)state;
    check("\xf4\x90\x80\x80", R R R R); /* U+110000 */
    check("\xf5\x80\x80\x80", R R R R);
    check("\xf7\xbf\xbf\xbf", R R R R);
    check("\xf8\x88\x80\x80\x80", R R R R R); /* the old five-byte forms */
}

static size_t encode(uint32_t cp, unsigned char *o)
{
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Every code point's encoding is one valid step of its length, except the surrogates', and a
 * code point past U+10FFFF never is. */
static void test_every_code_point(void **state)
{
    (void)state;
    for (uint32_t cp = 0; cp <= 0x13FFFF; cp++) {
        unsigned char b[4];
        size_t n = encode(cp, b);
        bool valid;
        size_t l = utf8_next(b, n, &valid);
        bool want = cp <= 0x10FFFF && (cp < 0xD800 || cp > 0xDFFF);
        if (valid != want || (want && l != n))
            fail_msg("U+%04X: step %zu valid %d", cp, l, valid);
        /* a surrogate's second byte, or F4 90.. and F5.., is already out of range */
        if (!valid && l != 1)
            fail_msg("U+%04X: invalid step of %zu bytes", cp, l);
    }
}

/* No input of up to three bytes makes a step outside 1..n, or sanitizes to invalid text. */
static void test_every_short_input(void **state)
{
    (void)state;
    unsigned char b[3];
    char out[9];
    for (uint32_t v = 0; v < 1u << 24; v += 7) { /* a spread of three-byte inputs */
        b[0] = (unsigned char)(v >> 16), b[1] = (unsigned char)(v >> 8), b[2] = (unsigned char)v;
        for (size_t n = 1; n <= 3; n++) {
            bool valid;
            size_t l = utf8_next(b, n, &valid);
            if (l < 1 || l > n)
                fail_msg("%02x %02x %02x (%zu): step %zu", b[0], b[1], b[2], n, l);
            size_t sl = utf8_sanitize((const char *)b, n, out);
            if (sl > 3 * n || !utf8_is_valid(out, sl))
                fail_msg("%02x %02x %02x (%zu): sanitized badly", b[0], b[1], b[2], n);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_text_is_kept),
        cmocka_unit_test(test_each_maximal_subpart_is_one_replacement),
        cmocka_unit_test(test_overlong_forms_are_rejected),
        cmocka_unit_test(test_surrogates_are_rejected),
        cmocka_unit_test(test_past_u10ffff_is_rejected),
        cmocka_unit_test(test_every_code_point),
        cmocka_unit_test(test_every_short_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
