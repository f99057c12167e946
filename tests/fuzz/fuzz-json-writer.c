/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the JSON writer of the log lines (src/basic/json-writer.c) on any bytes. The
 * input is cut at each NUL into strings (a C string ends there), written as the values of one
 * object and as the keys of another. Besides crashes, leaks and sanitizer reports, it aborts when:
 * - a line is not valid UTF-8 (by a reference decoder written here, apart from src/basic/utf8.c);
 * - json-c, strict and validating UTF-8, does not read it as the object written;
 * - a value or key read back is not the input string with each maximal ill-formed UTF-8
 *   subpart replaced by U+FFFD (so a valid string comes back as it was);
 * - a number does not come back as written.
 * Built by scripts/fuzz. */
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-writer.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz-json-writer: invariant failed at %s:%d: %s\n", __FILE__,         \
                    __LINE__, #cond);                                                              \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#define MAX_STRINGS 16

/* ---- a reference UTF-8 decoder, by code point ranges rather than byte tables ---- */

/* The length a lead byte announces by its bit pattern; 0 for a continuation byte or 0xF8..FF. */
static int ref_announced(unsigned char b)
{
    if (b < 0x80)
        return 1;
    if ((b & 0xE0) == 0xC0)
        return 2;
    if ((b & 0xF0) == 0xE0)
        return 3;
    if ((b & 0xF8) == 0xF0)
        return 4;
    return 0;
}

/* Whether the k bytes at s (a lead announcing len) start some well-formed sequence: the code
 * points they could start are [lo, hi]; is one of them a code point that len bytes encode (not
 * overlong, not a surrogate, not past U+10FFFF)? */
static bool ref_starts_sequence(const unsigned char *s, int k, int len)
{
    uint32_t lo = s[0] & (0x7Fu >> len), hi = lo;
    for (int i = 1; i < len; i++) {
        if (i < k) {
            if ((s[i] & 0xC0) != 0x80)
                return false;
            lo = lo << 6 | (s[i] & 0x3Fu);
            hi = hi << 6 | (s[i] & 0x3Fu);
        } else {
            lo <<= 6;
            hi = hi << 6 | 0x3F;
        }
    }
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000},
                          max[] = {0, 0, 0x7FF, 0xFFFF, 0x10FFFF};
    uint32_t a = lo > min[len] ? lo : min[len], b = hi < max[len] ? hi : max[len];
    return a <= b && (a < 0xD800 || b > 0xDFFF);
}

/* s[0..n) with each maximal ill-formed subpart replaced by U+FFFD; malloc'd, NUL-terminated. */
static char *ref_sanitize(const unsigned char *s, size_t n, size_t *ret_len)
{
    char *out = malloc(3 * n + 1), *o = out;
    CHECK(out);
    for (size_t i = 0; i < n;) {
        int len = ref_announced(s[i]);
        if (len == 1) {
            *o++ = (char)s[i++];
            continue;
        }
        int k = 0;
        while (len >= 2 && k < len && i + (size_t)k < n && ref_starts_sequence(s + i, k + 1, len))
            k++;
        if (len >= 2 && k == len) {
            memcpy(o, s + i, (size_t)len);
            o += len;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
        }
        i += k > 0 ? (size_t)k : 1;
    }
    *o = '\0';
    *ret_len = (size_t)(o - out);
    return out;
}

static bool ref_valid(const char *s, size_t n)
{
    size_t l;
    char *t = ref_sanitize((const unsigned char *)s, n, &l);
    bool same = l == n && memcmp(s, t, n) == 0;
    free(t);
    return same;
}

/* ---- the target ---- */

static json_object *parse(const char *s, size_t len)
{
    CHECK(strlen(s) == len);
    CHECK(ref_valid(s, len));
    json_tokener *tok = json_tokener_new();
    CHECK(tok);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, s, (int)len);
    CHECK(o && json_tokener_get_error(tok) == json_tokener_success);
    CHECK(json_object_is_type(o, json_type_object));
    json_tokener_free(tok);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the input as NUL-terminated strings */
    char *copy = malloc(size + 1);
    CHECK(copy);
    memcpy(copy, data, size);
    copy[size] = '\0';
    const char *str[MAX_STRINGS];
    char *want[MAX_STRINGS];
    size_t n = 0, want_len[MAX_STRINGS];
    for (size_t i = 0; i <= size && n < MAX_STRINGS; i += strlen(copy + i) + 1) {
        str[n] = copy + i;
        want[n] = ref_sanitize((const unsigned char *)str[n], strlen(str[n]), &want_len[n]);
        n++;
    }
    long long number = 0;
    memcpy(&number, data, size < sizeof(number) ? size : sizeof(number));

    /* the strings as values: {"0": s0, "1": s1, …, "n": number} */
    JsonWriter w = {0};
    json_writer_begin(&w);
    for (size_t i = 0; i < n; i++) {
        char key[8];
        snprintf(key, sizeof(key), "%zu", i);
        json_writer_string(&w, key, str[i]);
    }
    json_writer_int(&w, "n", number);
    json_writer_end(&w);
    size_t len;
    char *line = json_writer_take(&w, &len);
    CHECK(line);
    json_object *o = parse(line, len), *v;
    CHECK(json_object_object_length(o) == (int)n + 1);
    for (size_t i = 0; i < n; i++) {
        char key[8];
        snprintf(key, sizeof(key), "%zu", i);
        CHECK(json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string));
        CHECK((size_t)json_object_get_string_len(v) == want_len[i]);
        CHECK(memcmp(json_object_get_string(v), want[i], want_len[i]) == 0);
    }
    CHECK(json_object_object_get_ex(o, "n", &v) && json_object_get_int64(v) == number);
    json_object_put(o);
    free(line);

    /* the strings as keys: {s0: 0, s1: 1, …}; a key written again keeps the last value */
    json_writer_begin(&w);
    for (size_t i = 0; i < n; i++)
        json_writer_int(&w, str[i], (long long)i);
    json_writer_end(&w);
    line = json_writer_take(&w, &len);
    CHECK(line);
    o = parse(line, len);
    for (size_t i = 0; i < n; i++) {
        size_t last = i;
        for (size_t j = i + 1; j < n; j++)
            if (want_len[j] == want_len[i] && memcmp(want[j], want[i], want_len[i]) == 0)
                last = j;
        CHECK(json_object_object_get_ex(o, want[i], &v));
        CHECK(json_object_get_int64(v) == (int64_t)last);
    }
    json_object_put(o);
    free(line);

    for (size_t i = 0; i < n; i++)
        free(want[i]);
    free(copy);
    return 0;
}
