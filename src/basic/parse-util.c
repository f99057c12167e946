/* SPDX-License-Identifier: MIT */
#include "parse-util.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

int parse_uint32(const char *s, uint32_t min, uint32_t max, uint32_t *ret)
{
    if (!s || !isdigit((unsigned char)s[0]))
        return -EINVAL;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -ERANGE;
    *ret = (uint32_t)v;
    return 0;
}
