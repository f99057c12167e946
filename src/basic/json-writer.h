/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "buffer.h"

/* Writes flat JSON objects into a growing buffer, escaping strings as RFC 8259 asks. What the
 * service answers and logs is a handful of string and number members: this is cheaper than
 * building json-c objects for them. A failed allocation sets buf.failed and stops writing. */
typedef struct JsonWriter {
    Buffer buf;
    bool first; /* no member written yet in the open object */
} JsonWriter;

void json_writer_raw(JsonWriter *w, const char *s, size_t n);
void json_writer_begin(JsonWriter *w); /* "{" */
void json_writer_end(JsonWriter *w);   /* "}" */
void json_writer_string(JsonWriter *w, const char *key, const char *value);
void json_writer_int(JsonWriter *w, const char *key, long long value);
/* Hands the NUL-terminated text over (the writer is emptied); NULL if anything failed. */
char *json_writer_take(JsonWriter *w, size_t *ret_len);
void json_writer_free(JsonWriter *w);
