/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "clock.h"
#include "log-journal.h"
#include "log-queue.h"
#include "log-stderr.h"

/* The sink and level are process-wide by nature (there is one stderr), set once at start; read
 * by every thread that logs, hence atomic (relaxed: a plain load). The sinks' state is under
 * log_lock() (log-queue.h). */
static int log_min_level = LOG_LEVEL_INFO;
static bool log_to_journal;

/* Rejections counted while the sink is behind (log_rejection_summarised), under log_lock(): by
 * status, the first REJECTION_STATUSES statuses seen, the rest under "other" (0). */
#define REJECTION_STATUSES 8
#define REJECTION_SUMMARY_USEC 1000000ULL
static struct {
    int status[REJECTION_STATUSES];
    uint64_t n[REJECTION_STATUSES];
    uint64_t other, total;
    uint64_t since_usec; /* the first one counted */
} rejections;

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
    relaxed_store_int(&log_min_level, (int)level);
    relaxed_store_bool(&log_to_journal,
                       log_fd_is_journal_stream(getenv("JOURNAL_STREAM"), STDERR_FILENO));
    log_lock();
    log_stderr_setup();
    log_unlock();
}

void log_set_journal(bool on)
{
    relaxed_store_bool(&log_to_journal, on);
}

bool log_enabled(LogLevel level)
{
    return (int)level >= relaxed_load_int(&log_min_level);
}

void log_set_journal_fd(int fd)
{
    log_lock();
    log_journal_set_fd(fd);
    log_unlock();
}

static void rejections_flush(uint64_t now);

void log_flush(void)
{
    log_lock();
    if (rejections.total > 0)
        rejections_flush(clock_usec(CLOCK_MONOTONIC));
    log_stderr_flush();
    log_unlock();
}

void log_set_buffered(bool on)
{
    log_lock();
    log_stderr_set_buffered(on);
    log_unlock();
}

/* ---- the loop, the exit and /metrics ---- */

void log_attach_event(sd_event *e)
{
    log_attach_loop(e, NULL);
}

void log_attach_loop(sd_event *e, Mailbox *m)
{
    log_lock();
    log_queue_use_mailbox(m);
    log_journal_attach_event(e);
    log_stderr_attach_event(e);
    log_unlock();
}

void log_detach_event(void)
{
    log_lock();
    log_journal_detach_event();
    log_stderr_detach_event();
    log_queue_use_mailbox(NULL);
    log_unlock();
}

uint64_t log_drain(uint64_t timeout_usec)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    uint64_t deadline = now + timeout_usec;
    for (;;) {
        log_lock();
        bool j = log_journal_flush();
        log_stderr_flush();
        bool s = log_stderr_empty();
        struct pollfd fds[2] = {{.fd = j ? -1 : log_journal_fd(), .events = POLLOUT},
                                {.fd = s ? -1 : log_stderr_fd(), .events = POLLOUT}};
        log_unlock();
        if ((j && s) || now >= deadline)
            break;
        int ms = (int)((deadline - now + 999) / 1000);
        if (poll(fds, 2, ms) < 0 && errno != EINTR)
            break;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    }
    /* what is still waiting is lost: count it */
    log_lock();
    uint64_t lost = log_stderr_discard();
    lost += log_journal_discard();
    log_unlock();
    return lost;
}

uint64_t log_dropped(LogSink sink)
{
    log_lock();
    uint64_t n = sink == LOG_SINK_JOURNAL ? log_journal_dropped() : log_stderr_dropped();
    log_unlock();
    return n;
}

/* ---- the log backlog ---- */

LogPressure log_pressure(void)
{
    return relaxed_load_bool(&log_to_journal) ? log_journal_pressure() : log_stderr_pressure();
}

const char *log_pressure_reason(void)
{
    return relaxed_load_bool(&log_to_journal) ? "log backlog: journald is behind"
                                              : "log backlog: the reader of stderr is behind";
}

void log_set_owed(size_t jobs, size_t entries)
{
    size_t bytes = jobs * entries * LOG_ENTRY_OWED_BYTES;
    log_lock();
    log_journal_set_owed(bytes);
    log_stderr_set_owed(bytes);
    log_unlock();
}

static void sink_send(LogLevel level, const char *message_id, const LogFields *f, const char *msg)
{
    if (relaxed_load_bool(&log_to_journal))
        log_journal_send(level, message_id, f, msg);
    else
        log_stderr_send(level, f, msg);
}

/* Lock held: the counted rejections as one entry, once a second has passed since the first or
 * the backlog is over (or stalled: then entries go one by one again). */
static void rejections_flush(uint64_t now)
{
    if (rejections.total == 0)
        return;
    LogPressure p = log_pressure();
    bool behind = p == LOG_PRESSURE_BEHIND || p == LOG_PRESSURE_SHED;
    if (behind && now - rejections.since_usec < REJECTION_SUMMARY_USEC)
        return;
    char msg[512];
    int l = snprintf(msg, sizeof(msg), "%llu requests rejected while the log was behind (",
                     (unsigned long long)rejections.total);
    for (size_t i = 0; i < REJECTION_STATUSES && rejections.status[i]; i++)
        l += snprintf(msg + l, sizeof(msg) - (size_t)l, "%s%d: %llu", i ? ", " : "",
                      rejections.status[i], (unsigned long long)rejections.n[i]);
    if (rejections.other)
        l += snprintf(msg + l, sizeof(msg) - (size_t)l, ", other: %llu",
                      (unsigned long long)rejections.other);
    snprintf(msg + l, sizeof(msg) - (size_t)l, ")");
    memset(&rejections, 0, sizeof(rejections));
    sink_send(LOG_LEVEL_INFO, MSGID_REJECTED, NULL, msg);
}

bool log_rejection_summarised(int http_status)
{
    if (!log_enabled(LOG_LEVEL_INFO))
        return false;
    LogPressure p = log_pressure();
    if (p != LOG_PRESSURE_BEHIND && p != LOG_PRESSURE_SHED)
        return false;
    log_lock();
    if (rejections.total++ == 0)
        rejections.since_usec = clock_usec(CLOCK_MONOTONIC);
    size_t i = 0;
    while (i < REJECTION_STATUSES && rejections.status[i] && rejections.status[i] != http_status)
        i++;
    if (i < REJECTION_STATUSES) {
        rejections.status[i] = http_status;
        rejections.n[i]++;
    } else
        rejections.other++;
    log_unlock();
    return true;
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
    log_lock();
    if (rejections.total > 0)
        rejections_flush(clock_usec(CLOCK_MONOTONIC));
    sink_send(level, message_id, f, msg);
    log_unlock();
    errno = saved_errno;
}
