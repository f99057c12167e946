/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "log-fields.h"
#include "log-level.h"

/* The MESSAGE_IDs (MSGID_*), LogFields and LOG_FIELDS() are in log-fields.h. The sinks are
 * log-journal.c and log-stderr.c. */

/* Whether stderr (fd) is the journal stream named by $JOURNAL_STREAM ("dev:ino"). */
bool log_fd_is_journal_stream(const char *journal_stream, int fd);

/* Chooses the sink (journal when stderr is its stream, JSON lines otherwise) and the level. */
void log_setup(LogLevel level);
void log_set_journal(bool on);
bool log_enabled(LogLevel level);

/* With buffering on, JSON lines wait in memory until log_flush() (the manager calls it after
 * each loop iteration) or until 64 KiB have gathered; turning it off flushes. The journal sink
 * sends each entry at once either way.
 *
 * Neither sink ever waits: an entry journald cannot take now, or JSON lines a pipe or socket on
 * stderr cannot take now, wait in a bounded queue (4 MiB; 16k journal entries), flushed when the
 * socket or pipe is writable again; past the bound entries are dropped and counted
 * (log_dropped), and one entry says how many once the sink takes entries again. */
void log_set_buffered(bool on);
void log_flush(void);

/* The loop whose io sources flush the queues while they hold something (the manager's);
 * detach before the loop is freed. */
void log_attach_event(sd_event *e);
void log_detach_event(void);
/* At exit: flushes for at most timeout_usec, then gives up on what is left (a stopped journald
 * or a stderr nobody reads must not hold up the exit) and returns how many entries that was
 * (also counted in log_dropped). */
uint64_t log_drain(uint64_t timeout_usec);

typedef enum LogSink {
    LOG_SINK_JOURNAL,
    LOG_SINK_STDERR,
} LogSink;
/* Entries dropped since the start: a full queue, a failed send, those left at exit. */
uint64_t log_dropped(LogSink sink);

/* Tests: sends journal entries on fd (a datagram socket the caller owns) instead of journald's
 * socket; -1 goes back to journald's. */
void log_set_journal_fd(int fd);

void log_event(LogLevel level, const char *message_id, const LogFields *f, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_debug(id, f, ...) log_event(LOG_LEVEL_DEBUG, id, f, __VA_ARGS__)
#define log_info(id, f, ...) log_event(LOG_LEVEL_INFO, id, f, __VA_ARGS__)
#define log_warn(id, f, ...) log_event(LOG_LEVEL_WARN, id, f, __VA_ARGS__)
#define log_error(id, f, ...) log_event(LOG_LEVEL_ERROR, id, f, __VA_ARGS__)
