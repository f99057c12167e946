/* SPDX-License-Identifier: MIT */
#include "json-writer.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

void json_writer_raw(JsonWriter *w, const char *s, size_t n)
{
    buffer_append(&w->buf, s, n);
}

/* Bytes that cannot go out as they are: controls, '"', '\\', and anything past ASCII (which
 * goes out as it is only as part of a well-formed UTF-8 sequence). One compare covers both
 * ends of the printable range. */
static bool needs_care(unsigned char c)
{
    return (unsigned char)(c - 0x20) >= 0x60 || c == '"' || c == '\\';
}

/* Whether none of 8 bytes needs care, tested at once: a byte below 0x20 borrows in x - 0x20..,
 * and a byte equal to '"' or '\\' is a zero byte after the XOR (the has-less and has-zero tricks,
 * exact for the word as a whole); a byte past ASCII has its high bit set. Log lines are mostly
 * plain ASCII, and this makes their scan a few instructions per 8 bytes. */
static bool word_is_plain(const unsigned char *c)
{
    const uint64_t ones = 0x0101010101010101u, high = ones * 0x80;
    uint64_t x, q, b;
    memcpy(&x, c, sizeof(x));
    q = x ^ (ones * '"');
    b = x ^ (ones * '\\');
    return !((((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((b - ones) & ~b) | x) & high);
}

/* Runs of plain bytes, valid UTF-8 included, are copied whole; only the bytes JSON cannot hold
 * as they are get escaped, and each ill-formed UTF-8 subpart (a client's path can hold any
 * byte) becomes U+FFFD, so that every line is valid UTF-8 JSON. */
static void put_escaped(JsonWriter *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(s);
    if (!buffer_reserve(&w->buf, 6 * n + 2)) /* worst case: every byte \u00XX (U+FFFD takes 3) */
        return;
    char *o = w->buf.p + w->buf.len;
    *o++ = '"';
    const unsigned char *c = (const unsigned char *)s, *end = c + n;
    for (;;) {
        const unsigned char *run = c;
        size_t ill_formed = 0;
        for (;;) {
            while (end - c >= 8 && word_is_plain(c))
                c += 8;
            while (c < end && !needs_care(*c))
                c++;
            if (c == end || *c < 0x80)
                break;
            bool valid;
            size_t l = utf8_next(c, (size_t)(end - c), &valid);
            if (!valid) {
                ill_formed = l;
                break;
            }
            c += l;
        }
        memcpy(o, run, (size_t)(c - run));
        o += c - run;
        if (c == end)
            break;
        if (ill_formed) {
            memcpy(o, UTF8_REPLACEMENT, UTF8_REPLACEMENT_LEN);
            o += UTF8_REPLACEMENT_LEN;
            c += ill_formed;
            continue;
        }
        *o++ = '\\';
        switch (*c) {
        case '"':
        case '\\':
            *o++ = (char)*c;
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default:
            *o++ = 'u', *o++ = '0', *o++ = '0', *o++ = hex[*c >> 4], *o++ = hex[*c & 15];
        }
        c++;
    }
    *o++ = '"';
    *o = '\0';
    w->buf.len = (size_t)(o - w->buf.p);
}

static void put_key(JsonWriter *w, const char *key)
{
    if (!w->first)
        json_writer_raw(w, ",", 1);
    w->first = false;
    put_escaped(w, key);
    json_writer_raw(w, ":", 1);
}

void json_writer_begin(JsonWriter *w)
{
    json_writer_raw(w, "{", 1);
    w->first = true;
}

void json_writer_end(JsonWriter *w)
{
    json_writer_raw(w, "}", 1);
}

void json_writer_string(JsonWriter *w, const char *key, const char *value)
{
    put_key(w, key);
    put_escaped(w, value);
}

void json_writer_int(JsonWriter *w, const char *key, long long value)
{
    char buf[24], *end = buf + sizeof(buf), *p = end;
    unsigned long long u = value < 0 ? 0ULL - (unsigned long long)value : (unsigned long long)value;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (value < 0)
        *--p = '-';
    put_key(w, key);
    json_writer_raw(w, p, (size_t)(end - p));
}

char *json_writer_take(JsonWriter *w, size_t *ret_len)
{
    w->first = false;
    return buffer_take(&w->buf, ret_len);
}

void json_writer_free(JsonWriter *w)
{
    buffer_free(&w->buf);
    w->first = false;
}
