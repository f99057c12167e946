/* SPDX-License-Identifier: MIT */
#include "log-level.h"

#include <errno.h>
#include <stddef.h>
#include <strings.h>

static const char *const level_names[] = {
    [LOG_LEVEL_DEBUG] = "debug",
    [LOG_LEVEL_INFO] = "info",
    [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_ERROR] = "error",
};

const char *log_level_to_string(LogLevel l)
{
    if ((unsigned)l >= sizeof(level_names) / sizeof(level_names[0]))
        return NULL;
    return level_names[l];
}

int log_level_from_string(const char *s, LogLevel *ret)
{
    for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++)
        if (strcasecmp(s, level_names[i]) == 0) {
            *ret = (LogLevel)i;
            return 0;
        }
    if (strcasecmp(s, "warning") == 0) {
        *ret = LOG_LEVEL_WARN;
        return 0;
    }
    return -EINVAL;
}
