/* SPDX-License-Identifier: MIT */
#include "buffer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool buffer_grow(Buffer *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void buffer_append(Buffer *b, const char *s, size_t n)
{
    if (!buffer_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void buffer_printf(Buffer *b, const char *fmt, ...)
{
    for (;;) {
        if (b->failed)
            return;
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->p ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->failed = true;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        if (!buffer_grow(b, (size_t)n))
            return;
    }
}

char *buffer_take(Buffer *b, size_t *ret_len)
{
    if (b->failed || !b->p) {
        buffer_free(b);
        return NULL;
    }
    char *p = b->p;
    *ret_len = b->len;
    *b = (Buffer){0};
    return p;
}

void buffer_free(Buffer *b)
{
    free(b->p);
    *b = (Buffer){0};
}
