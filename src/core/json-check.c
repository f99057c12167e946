/* SPDX-License-Identifier: MIT */
#include "json-check.h"

#include <stdint.h>

#include "utf8.h"

typedef struct Scanner {
    const unsigned char *p, *end;
} Scanner;

static void skip_ws(Scanner *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static bool is_hex(unsigned char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* One UTF-8 sequence of 2 to 4 bytes starting at a non-ASCII lead byte, well-formed as
 * utf8.h's RFC 3629 says. */
static bool utf8_sequence(Scanner *s)
{
    bool valid;
    size_t n = utf8_next(s->p, (size_t)(s->end - s->p), &valid);
    if (!valid)
        return false;
    s->p += n;
    return true;
}

static bool string(Scanner *s)
{
    s->p++; /* opening quote */
    while (s->p < s->end) {
        unsigned char c = *s->p;
        if (c == '"') {
            s->p++;
            return true;
        }
        if (c < 0x20)
            return false;
        if (c == '\\') {
            if (++s->p >= s->end)
                return false;
            c = *s->p++;
            if (c == 'u') {
                if (s->end - s->p < 4)
                    return false;
                for (int i = 0; i < 4; i++)
                    if (!is_hex(*s->p++))
                        return false;
            } else if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n' &&
                       c != 'r' && c != 't')
                return false;
        } else if (c < 0x80)
            s->p++;
        else if (!utf8_sequence(s))
            return false;
    }
    return false;
}

static bool digits(Scanner *s)
{
    const unsigned char *start = s->p;
    while (s->p < s->end && is_digit(*s->p))
        s->p++;
    return s->p > start;
}

static bool number(Scanner *s)
{
    if (*s->p == '-')
        s->p++;
    if (s->p >= s->end)
        return false;
    if (*s->p == '0')
        s->p++;
    else if (!digits(s))
        return false;
    if (s->p < s->end && *s->p == '.') {
        s->p++;
        if (!digits(s))
            return false;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-'))
            s->p++;
        if (!digits(s))
            return false;
    }
    return true;
}

static bool literal(Scanner *s, const char *word)
{
    for (; *word; word++, s->p++)
        if (s->p >= s->end || *s->p != (unsigned char)*word)
            return false;
    return true;
}

/* `"key" :` of an object member, whitespace around. */
static bool member_key(Scanner *s)
{
    skip_ws(s);
    if (s->p >= s->end || *s->p != '"' || !string(s))
        return false;
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':')
        return false;
    s->p++;
    return true;
}

/* A string, number or literal at s->p (whose first byte is c). */
static bool scalar(Scanner *s, unsigned char c)
{
    if (c == '"')
        return string(s);
    if (c == '-' || is_digit(c))
        return number(s);
    if (c == 't')
        return literal(s, "true");
    if (c == 'f')
        return literal(s, "false");
    if (c == 'n')
        return literal(s, "null");
    return false;
}

/* Iterative, so that depth costs no stack: each round reads one value (a scalar, or the opening
 * of a container, pushed on `stack`), then closes what ends after it. */
bool json_check(const char *text, size_t len, unsigned max_depth)
{
    Scanner sc = {(const unsigned char *)text, (const unsigned char *)text + len};
    Scanner *s = &sc;
    char stack[64]; /* '{' or '[' per open container */
    unsigned depth = 0;
    if (max_depth > sizeof(stack))
        max_depth = sizeof(stack);

    for (;;) {
        skip_ws(s);
        if (s->p >= s->end)
            return false;
        /* a value */
        unsigned char c = *s->p;
        bool opened = false;
        if (c == '{' || c == '[') {
            if (depth >= max_depth)
                return false;
            stack[depth++] = (char)c;
            s->p++;
            skip_ws(s);
            if (s->p < s->end && *s->p == (c == '{' ? '}' : ']')) {
                s->p++;
                depth--;
            } else
                opened = true;
        } else if (!scalar(s, c))
            return false;

        if (opened) {
            /* the first member's key, or the first array element */
            if (stack[depth - 1] == '{' && !member_key(s))
                return false;
            continue;
        }

        /* after a value: close containers, or a separator */
        for (;;) {
            skip_ws(s);
            if (depth == 0)
                return s->p == s->end;
            if (s->p >= s->end)
                return false;
            char top = stack[depth - 1];
            if (*s->p == (top == '{' ? '}' : ']')) {
                s->p++;
                depth--;
                continue;
            }
            if (*s->p != ',')
                return false;
            s->p++;
            if (top == '{' && !member_key(s))
                return false;
            break;
        }
    }
}
