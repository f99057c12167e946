/* SPDX-License-Identifier: MIT */
#include "json-writer.h"

#include <stdlib.h>
#include <string.h>

static bool reserve(JsonWriter *w, size_t n)
{
    if (w->failed)
        return false;
    if (w->len + n + 1 <= w->cap)
        return true;
    size_t cap = w->cap ? w->cap : 256;
    while (cap < w->len + n + 1)
        cap *= 2;
    char *p = realloc(w->p, cap);
    if (!p) {
        w->failed = true;
        return false;
    }
    w->p = p;
    w->cap = cap;
    return true;
}

void json_writer_raw(JsonWriter *w, const char *s, size_t n)
{
    if (!reserve(w, n))
        return;
    memcpy(w->p + w->len, s, n);
    w->len += n;
    w->p[w->len] = '\0';
}

static bool needs_escape(unsigned char c)
{
    return c < 0x20 || c == '"' || c == '\\';
}

/* Runs of plain bytes are copied whole; only the bytes JSON cannot hold as they are get
 * escaped. */
static void put_escaped(JsonWriter *w, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = strlen(s);
    if (!reserve(w, 6 * n + 2)) /* worst case: every byte \u00XX */
        return;
    char *o = w->p + w->len;
    *o++ = '"';
    const unsigned char *c = (const unsigned char *)s, *end = c + n;
    for (;;) {
        const unsigned char *run = c;
        while (c < end && !needs_escape(*c))
            c++;
        memcpy(o, run, (size_t)(c - run));
        o += c - run;
        if (c == end)
            break;
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
    w->len = (size_t)(o - w->p);
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
    if (w->failed || !w->p) {
        json_writer_free(w);
        return NULL;
    }
    char *p = w->p;
    *ret_len = w->len;
    *w = (JsonWriter){0};
    return p;
}

void json_writer_free(JsonWriter *w)
{
    free(w->p);
    *w = (JsonWriter){0};
}
