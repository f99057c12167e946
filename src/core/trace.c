/* SPDX-License-Identifier: MIT */
#include "trace.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#define MEMBER_LONG 128 /* the spec's: such members go first when truncating */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* uppercase too: the spec's HEXDIGLC */
}

/* n lowercase hex digits; *ret_nonzero whether any is not 0. */
static bool hex_field(const char *s, size_t n, bool *ret_nonzero)
{
    bool nonzero = false;
    for (size_t i = 0; i < n; i++) {
        int v = hex_value(s[i]);
        if (v < 0)
            return false;
        nonzero = nonzero || v != 0;
    }
    *ret_nonzero = nonzero;
    return true;
}

bool trace_parent_parse(const char *s, size_t len, char ret_trace_id[static TRACE_ID_LEN + 1],
                        uint8_t *ret_flags)
{
    bool nonzero;
    if (len < TRACEPARENT_LEN || !hex_field(s, 2, &nonzero))
        return false;
    int version = hex_value(s[0]) * 16 + hex_value(s[1]);
    if (version == 0xff)
        return false;
    /* version 00 is exactly this; a later one may add fields, after a '-' */
    if (version == 0 ? len != TRACEPARENT_LEN : len > TRACEPARENT_LEN && s[TRACEPARENT_LEN] != '-')
        return false;
    if (s[2] != '-' || s[3 + TRACE_ID_LEN] != '-' || s[4 + TRACE_ID_LEN + SPAN_ID_LEN] != '-')
        return false;
    const char *trace_id = s + 3, *parent_id = trace_id + TRACE_ID_LEN + 1,
               *flags = parent_id + SPAN_ID_LEN + 1;
    if (!hex_field(trace_id, TRACE_ID_LEN, &nonzero) || !nonzero ||
        !hex_field(parent_id, SPAN_ID_LEN, &nonzero) || !nonzero || !hex_field(flags, 2, &nonzero))
        return false;
    memcpy(ret_trace_id, trace_id, TRACE_ID_LEN);
    ret_trace_id[TRACE_ID_LEN] = '\0';
    *ret_flags = (uint8_t)(hex_value(flags[0]) * 16 + hex_value(flags[1]));
    return true;
}

static bool is_lcalpha(char c)
{
    return c >= 'a' && c <= 'z';
}

static bool is_key_char(char c)
{
    return is_lcalpha(c) || (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '*' || c == '/';
}

/* simple-key, or tenant-id "@" system-id */
static bool key_valid(const char *k, size_t n)
{
    const char *at = memchr(k, '@', n);
    size_t first = at ? (size_t)(at - k) : n;
    if (first == 0 || !(is_lcalpha(k[0]) || (at && k[0] >= '0' && k[0] <= '9')))
        return false;
    if (first > (at ? 241u : 256u))
        return false;
    for (size_t i = 1; i < first; i++)
        if (!is_key_char(k[i]))
            return false;
    if (!at)
        return true;
    const char *sys = at + 1;
    size_t sn = n - first - 1;
    if (sn == 0 || sn > 14 || !is_lcalpha(sys[0]))
        return false;
    for (size_t i = 1; i < sn; i++)
        if (!is_key_char(sys[i]))
            return false;
    return true;
}

/* 1 to 256 of 0x20-0x7e but ',' and '=', not ending with a blank */
static bool value_valid(const char *v, size_t n)
{
    if (n == 0 || n > 256 || v[n - 1] == ' ')
        return false;
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x20 || v[i] > 0x7e || v[i] == ',' || v[i] == '=')
            return false;
    return true;
}

static bool member_valid(const char *m, size_t n)
{
    const char *eq = memchr(m, '=', n);
    return eq && key_valid(m, (size_t)(eq - m)) && value_valid(eq + 1, n - (size_t)(eq - m) - 1);
}

typedef struct Member {
    const char *s;
    size_t len;
} Member;

/* The members of one header line, blanks around them and empty ones left out, appended to m;
 * false when one is malformed or there are too many. */
static bool split_members(const char *s, size_t len, Member *m, size_t *n)
{
    size_t i = 0;
    while (i <= len) {
        size_t end = i;
        while (end < len && s[end] != ',')
            end++;
        size_t a = i, b = end;
        while (a < b && (s[a] == ' ' || s[a] == '\t'))
            a++;
        while (b > a && (s[b - 1] == ' ' || s[b - 1] == '\t'))
            b--;
        if (b > a) {
            if (*n == TRACESTATE_MEMBERS_MAX || !member_valid(s + a, b - a))
                return false;
            m[(*n)++] = (Member){s + a, b - a};
        }
        i = end + 1;
    }
    return true;
}

/* The members kept: all if they fit, else without the long ones, then without the last ones. */
static size_t members_fit(Member *m, size_t n)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += m[i].len + (i > 0);
    if (total <= TRACESTATE_MAX)
        return n;
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (m[i].len <= MEMBER_LONG)
            m[k++] = m[i];
    for (;;) {
        total = 0;
        for (size_t i = 0; i < k; i++)
            total += m[i].len + (i > 0);
        if (total <= TRACESTATE_MAX)
            return k;
        k--;
    }
}

int tracestate_normalize(const char *const *values, const size_t *lens, size_t n,
                         char ret[static TRACESTATE_MAX + 1])
{
    Member m[TRACESTATE_MEMBERS_MAX];
    size_t count = 0;
    ret[0] = '\0';
    for (size_t i = 0; i < n; i++)
        if (!split_members(values[i], lens[i], m, &count))
            return -EINVAL;
    count = members_fit(m, count);
    size_t len = 0;
    for (size_t i = 0; i < count; i++) {
        if (i > 0)
            ret[len++] = ',';
        memcpy(ret + len, m[i].s, m[i].len);
        len += m[i].len;
    }
    ret[len] = '\0';
    return (int)len;
}

/* n random values, from getrandom(); with no entropy yet at boot, from the clock: unique
 * enough for ids that only join logs. */
static void random_values(uint64_t *v, size_t n)
{
    if (getrandom(v, n * sizeof(*v), GRND_NONBLOCK) == (ssize_t)(n * sizeof(*v)))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
    for (size_t i = 0; i < n; i++)
        v[i] = x ^ (0x9e3779b97f4a7c15ULL * (i + 1));
}

/* The 64-bit values as 16 lowercase hex digits each; an all-zero id (the spec's invalid one)
 * gets a 1 last. */
static void values_hex(char *out, const uint64_t *v, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    bool zero = true;
    for (size_t i = 0; i < n; i++) {
        zero = zero && v[i] == 0;
        for (size_t k = 0; k < 16; k++)
            out[16 * i + k] = digits[(v[i] >> (60 - 4 * k)) & 15];
    }
    out[16 * n] = '\0';
    if (zero)
        out[16 * n - 1] = '1';
}

static void trace_format(Trace *t, uint8_t flags)
{
    snprintf(t->traceparent, sizeof(t->traceparent), "00-%s-%s-%02x", t->trace_id, t->span_id,
             flags);
}

void trace_begin(Trace *t, const char *traceparent, size_t len, const char *tracestate,
                 const uint64_t *random)
{
    uint8_t flags = 0;
    bool valid = traceparent && trace_parent_parse(traceparent, len, t->trace_id, &flags);
    uint64_t own[3];
    if (!random) {
        random_values(own, 3);
        random = own;
    }
    if (valid)
        flags &= TRACE_FLAG_SAMPLED; /* level 1 defines no other: the rest are set to zero */
    else {
        values_hex(t->trace_id, random + 1, 2);
        flags = TRACE_FLAG_SAMPLED; /* a trace of ours is recorded: its ids are in the logs */
    }
    values_hex(t->span_id, random, 1);
    trace_format(t, flags);
    snprintf(t->tracestate, sizeof(t->tracestate), "%s", valid && tracestate ? tracestate : "");
}

void trace_restore(Trace *t, const char *traceparent, const char *tracestate)
{
    uint8_t flags = 0;
    size_t len = traceparent ? strlen(traceparent) : 0;
    if (len != TRACEPARENT_LEN || !trace_parent_parse(traceparent, len, t->trace_id, &flags)) {
        trace_begin(t, NULL, 0, NULL, NULL);
        return;
    }
    memcpy(t->span_id, traceparent + 4 + TRACE_ID_LEN, SPAN_ID_LEN);
    t->span_id[SPAN_ID_LEN] = '\0';
    trace_format(t, flags & TRACE_FLAG_SAMPLED);
    /* checked again: it becomes a header line, and a spool file may have been edited by hand */
    const char *values[1] = {tracestate ? tracestate : ""};
    size_t lens[1] = {strlen(values[0])};
    (void)tracestate_normalize(values, lens, 1, t->tracestate);
}
