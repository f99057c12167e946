/* SPDX-License-Identifier: MIT */
#include "utf8.h"

#include <string.h>

size_t utf8_next(const unsigned char *s, size_t n, bool *ret_valid)
{
    unsigned char c = s[0];
    if (c < 0x80) {
        *ret_valid = true;
        return 1;
    }
    /* The second byte's range is what excludes overlong forms (E0, F0), surrogates (ED) and
     * code points past U+10FFFF (F4); the later bytes are any continuation byte. */
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        need = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else { /* a continuation byte, C0/C1 (overlong by construction), or F5..FF */
        *ret_valid = false;
        return 1;
    }
    size_t i = 1;
    for (; i < need && i < n; i++) {
        if (s[i] < lo || s[i] > hi)
            break;
        lo = 0x80, hi = 0xBF;
    }
    *ret_valid = i == need;
    return i;
}

bool utf8_is_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        bool valid;
        p += utf8_next(p, (size_t)(end - p), &valid);
        if (!valid)
            return false;
    }
    return true;
}

size_t utf8_sanitized_length(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t len = 0;
    while (p < end) {
        bool valid;
        size_t l = utf8_next(p, (size_t)(end - p), &valid);
        len += valid ? l : UTF8_REPLACEMENT_LEN;
        p += l;
    }
    return len;
}

size_t utf8_sanitize(const char *s, size_t n, char *out)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    char *o = out;
    while (p < end) {
        const unsigned char *run = p;
        bool valid = true;
        size_t l = 0;
        while (p < end && (l = utf8_next(p, (size_t)(end - p), &valid), valid))
            p += l;
        memcpy(o, run, (size_t)(p - run));
        o += p - run;
        if (p < end) {
            memcpy(o, UTF8_REPLACEMENT, UTF8_REPLACEMENT_LEN);
            o += UTF8_REPLACEMENT_LEN;
            p += l;
        }
    }
    return (size_t)(o - out);
}
