/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log-journal.h"
#include "log-stderr.h"

/* The sink and level are process-wide by nature (there is one stderr), set once at start. */
static LogLevel log_min_level = LOG_LEVEL_INFO;
static bool log_to_journal;

bool log_fd_is_journal_stream(const char *journal_stream, int fd)
{
    if (!journal_stream)
        return false;
    unsigned long long dev, ino;
    char tail;
    if (sscanf(journal_stream, "%llu:%llu%c", &dev, &ino, &tail) != 2)
        return false;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(LogLevel level)
{
    log_min_level = level;
    log_to_journal = log_fd_is_journal_stream(getenv("JOURNAL_STREAM"), STDERR_FILENO);
    log_stderr_setup();
}

void log_set_journal(bool on)
{
    log_to_journal = on;
}

bool log_enabled(LogLevel level)
{
    return level >= log_min_level;
}

void log_set_journal_fd(int fd)
{
    log_journal_set_fd(fd);
}

void log_flush(void)
{
    log_stderr_flush();
}

void log_set_buffered(bool on)
{
    log_stderr_set_buffered(on);
}

/* ---- the loop, the exit and /metrics ---- */

void log_attach_event(sd_event *e)
{
    log_journal_attach_event(e);
    log_stderr_attach_event(e);
}

void log_detach_event(void)
{
    log_journal_detach_event();
    log_stderr_detach_event();
}

uint64_t log_drain(uint64_t timeout_usec)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    uint64_t deadline = now + timeout_usec;
    for (;;) {
        bool j = log_journal_flush();
        log_stderr_flush();
        bool s = log_stderr_empty();
        if ((j && s) || now >= deadline)
            break;
        struct pollfd fds[2] = {{.fd = j ? -1 : log_journal_fd(), .events = POLLOUT},
                                {.fd = s ? -1 : log_stderr_fd(), .events = POLLOUT}};
        int ms = (int)((deadline - now + 999) / 1000);
        if (poll(fds, 2, ms) < 0 && errno != EINTR)
            break;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    }
    /* what is still waiting is lost: count it */
    uint64_t lost_stderr = log_stderr_discard();
    return log_journal_discard() + lost_stderr;
}

uint64_t log_dropped(LogSink sink)
{
    return sink == LOG_SINK_JOURNAL ? log_journal_dropped() : log_stderr_dropped();
}

/* A truncated message may end inside a UTF-8 sequence: cut the partial sequence off. */
static void utf8_trim_partial(char *s, size_t len)
{
    size_t i = len;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--; /* continuation bytes */
    if (i == 0 || (unsigned char)s[i - 1] < 0x80)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (len - (i - 1) < need)
        s[i - 1] = '\0';
}

void log_event(LogLevel level, const char *message_id, const LogFields *f, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    int saved_errno = errno;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(msg))
        utf8_trim_partial(msg, sizeof(msg) - 1);
    if (log_to_journal)
        log_journal_send(level, message_id, f, msg);
    else
        log_stderr_send(level, f, msg);
    errno = saved_errno;
}
