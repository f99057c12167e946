/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* UTF-8 as RFC 3629 defines it: no overlong forms, no surrogates (U+D800..U+DFFF), nothing past
 * U+10FFFF. What clients send (a request path) ends up in log lines and journal fields, which
 * must hold text: the log sinks put U+FFFD in place of what is not UTF-8. */

#define UTF8_REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */
#define UTF8_REPLACEMENT_LEN 3

/* One step through s[0..n), n > 0. Returns the length (1 to 4) of the well-formed sequence at s,
 * with *ret_valid true; or, when s does not start one, the length of its maximal ill-formed
 * subpart (the longest start of a well-formed sequence, at least one byte), with *ret_valid
 * false: that is what one U+FFFD replaces, as Unicode's chapter 3 recommends (and WHATWG's
 * decoder, and Python, do), so "\xE2\x82" + "A" is one U+FFFD then "A". */
size_t utf8_next(const unsigned char *s, size_t n, bool *ret_valid);

bool utf8_is_valid(const char *s, size_t n);

/* How many bytes utf8_sanitize() writes for s[0..n): n when s is valid, at most 3 * n. */
size_t utf8_sanitized_length(const char *s, size_t n);

/* Copies s[0..n) to out with every maximal ill-formed subpart replaced by U+FFFD; out has room
 * for utf8_sanitized_length(s, n) bytes (3 * n always suffice). Returns the bytes written; adds
 * no NUL. */
size_t utf8_sanitize(const char *s, size_t n, char *out);
