/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* A growing, NUL-terminated text buffer: the one under the JSON writer (answers, log lines)
 * and the /metrics text. A failed allocation sets `failed` and stops writing; the owner checks
 * it once at the end (buffer_take). A zeroed Buffer is an empty one. */
typedef struct Buffer {
    char *p;
    size_t len, cap;
    bool failed;
} Buffer;

/* Makes room for n more bytes and the NUL (the slow path of buffer_reserve). */
bool buffer_grow(Buffer *b, size_t n);

/* Room for n more bytes and the NUL after them; false once an allocation failed. */
static inline bool buffer_reserve(Buffer *b, size_t n)
{
    if (b->failed)
        return false;
    if (b->len + n + 1 <= b->cap)
        return true;
    return buffer_grow(b, n);
}

void buffer_append(Buffer *b, const char *s, size_t n);
void buffer_printf(Buffer *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Hands the text over (the buffer is emptied); NULL if an allocation failed or nothing was ever
 * written. */
char *buffer_take(Buffer *b, size_t *ret_len);
void buffer_free(Buffer *b);
