/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Whether s[0..len) is exactly one RFC 8259 JSON text (whitespace around allowed), nested at
 * most max_depth arrays/objects deep, in valid UTF-8 (no overlong forms, surrogates or code
 * points above U+10FFFF). json-c's strict mode lets NaN, Infinity, "1.", raw control characters
 * in strings and some invalid UTF-8 through; this check runs first so that they are 400s. */
bool json_check(const char *s, size_t len, unsigned max_depth);
