/* SPDX-License-Identifier: MIT */
#pragma once

/* The levels of log events (log.h), and their names in LOG_LEVEL= and in the JSON log lines. */
typedef enum LogLevel {
    LOG_LEVEL_DEBUG,
    LOG_LEVEL_INFO,
    LOG_LEVEL_WARN,
    LOG_LEVEL_ERROR,
} LogLevel;

/* "debug", "info", "warn", "error"; NULL for another value. */
const char *log_level_to_string(LogLevel l);
/* The names above, any case, and "warning"; -EINVAL for anything else. */
int log_level_from_string(const char *s, LogLevel *ret);
