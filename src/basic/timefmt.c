/* SPDX-License-Identifier: MIT */
#include "timefmt.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

int format_rfc3339(time_t t, char buf[static RFC3339_MAX])
{
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return -EOVERFLOW;
    if (strftime(buf, RFC3339_MAX, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        return -EOVERFLOW;
    return 0;
}

const char *rfc3339_now(void)
{
    /* one cache a thread: answers and log lines are made on several */
    static _Thread_local time_t cached_sec = -1;
    static _Thread_local char cached[RFC3339_MAX];
    time_t t = time(NULL);
    if (t != cached_sec) {
        if (format_rfc3339(t, cached) < 0)
            cached[0] = '\0';
        cached_sec = t;
    }
    return cached;
}

/* Writes v backwards into buf ending at *w, as Go's fmtInt does. */
static void put_int(char *buf, size_t *w, uint64_t v)
{
    do {
        buf[--*w] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
}

/* Go's fmtFrac: the low prec digits of v as a fraction, trailing zeros and a bare '.' dropped. */
static uint64_t put_frac(char *buf, size_t *w, uint64_t v, int prec)
{
    bool print = false;
    for (int i = 0; i < prec; i++) {
        unsigned digit = v % 10;
        print = print || digit != 0;
        if (print)
            buf[--*w] = (char)('0' + digit);
        v /= 10;
    }
    if (print)
        buf[--*w] = '.';
    return v;
}

void format_go_duration(uint64_t u, char buf[static GO_DURATION_MAX])
{
    char tmp[GO_DURATION_MAX];
    size_t w = sizeof(tmp) - 1;
    tmp[w] = '\0';

    if (u < 1000000000ULL) {
        int prec = 0;
        const char *unit;
        if (u == 0) {
            strcpy(buf, "0s");
            return;
        } else if (u < 1000ULL) {
            unit = "ns";
        } else if (u < 1000000ULL) {
            prec = 3;
            unit = "µs";
        } else {
            prec = 6;
            unit = "ms";
        }
        size_t ul = strlen(unit);
        w -= ul;
        memcpy(tmp + w, unit, ul);
        u = put_frac(tmp, &w, u, prec);
        put_int(tmp, &w, u);
    } else {
        tmp[--w] = 's';
        u = put_frac(tmp, &w, u, 9);
        put_int(tmp, &w, u % 60);
        u /= 60;
        if (u > 0) {
            tmp[--w] = 'm';
            put_int(tmp, &w, u % 60);
            u /= 60;
            if (u > 0) {
                tmp[--w] = 'h';
                put_int(tmp, &w, u);
            }
        }
    }
    memcpy(buf, tmp + w, sizeof(tmp) - w);
}
