/* SPDX-License-Identifier: MIT */
#include "json-writer.h"

#include <stdio.h>
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

static void put_escaped(JsonWriter *w, const char *s)
{
    size_t n = strlen(s);
    if (!reserve(w, 6 * n + 2)) /* worst case: every byte \u00XX */
        return;
    char *o = w->p + w->len;
    *o++ = '"';
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        switch (*c) {
        case '"':
            *o++ = '\\', *o++ = '"';
            break;
        case '\\':
            *o++ = '\\', *o++ = '\\';
            break;
        case '\n':
            *o++ = '\\', *o++ = 'n';
            break;
        case '\r':
            *o++ = '\\', *o++ = 'r';
            break;
        case '\t':
            *o++ = '\\', *o++ = 't';
            break;
        default:
            if (*c < 0x20) {
                o += sprintf(o, "\\u%04x", *c);
            } else
                *o++ = (char)*c;
        }
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
    char buf[24];
    int n = snprintf(buf, sizeof(buf), "%lld", value);
    put_key(w, key);
    json_writer_raw(w, buf, (size_t)n);
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
