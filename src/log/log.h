/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "log-backlog.h"
#include "log-fields.h"
#include "log-level.h"
#include "mailbox.h"

/* The MESSAGE_IDs (MSGID_*), LogFields and LOG_FIELDS() are in log-fields.h. The sinks are
 * log-journal.c and log-stderr.c.
 *
 * Threads: log_event() (and the log_* macros), log_enabled(), log_flush(), log_dropped() and
 * log_set_buffered() may be called from any thread at any time. Each takes one lock for the entry
 * (log_lock() in log-queue.h): a journal entry goes out as one datagram, a JSON line is gathered
 * and written whole, never interleaved with another thread's, and the queues, the drop counters
 * and buffered mode are changed under it. log_setup(), log_set_journal() and log_set_journal_fd()
 * are configuration: call them before other threads log. log_attach_event() and
 * log_detach_event() are called on the thread that runs the loop, which alone touches the
 * sinks' io sources (sd-event is not thread-safe): another thread whose entry must wait asks that
 * thread to flush through a mailbox on the loop, and with buffering on, its first line of a
 * batch does too, so that an idle loop does not keep it. log_drain() is for the exit, after the
 * loop and the threads that log are done. */

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
 * stderr cannot take now, wait in a bounded queue (log-backlog.h), flushed when the socket or
 * pipe is writable again. Past its high-water mark the service sheds jobs (log_pressure); past
 * its bound entries are dropped and counted (log_dropped), and one entry says how many once the
 * sink takes entries again. */
void log_set_buffered(bool on);
void log_flush(void);

/* The loop whose io sources flush the queues while they hold something (the manager's);
 * detach before the loop is freed. */
void log_attach_event(sd_event *e);
/* The same, the queues woken through the loop's mailbox m (on e) rather than one of their own. */
void log_attach_loop(sd_event *e, Mailbox *m);
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

/* The log backlog (README, "Logs"): what the sink in use (journald, or a pipe on stderr) owes,
 * against the marks of log-backlog.h. Without the lock, from any thread: a few atomic loads,
 * and the clock while behind. */
LogPressure log_pressure(void);
/* The error of a job shed for the backlog: "log backlog: journald is behind", or stderr's. */
const char *log_pressure_reason(void);
/* Configuration: room past the high-water mark for the entries of `jobs` jobs admitted before
 * the shedding began, each with at most `entries` entries of LOG_ENTRY_OWED_BYTES at most. */
#define LOG_ENTRY_OWED_BYTES 4096
void log_set_owed(size_t jobs, size_t entries);

/* A rejection (a 4xx, the pending cap's 503) to log: while the sink is behind (not stalled), it is
 * counted instead and true is returned; the counts go out as one entry at most once a second
 * (MSGID_REJECTED, from log_event or log_flush) and once the backlog is over. */
bool log_rejection_summarised(int http_status);

/* Tests: sends journal entries on fd (a datagram socket the caller owns) instead of journald's
 * socket; -1 goes back to journald's. */
void log_set_journal_fd(int fd);

void log_event(LogLevel level, const char *message_id, const LogFields *f, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define log_debug(id, f, ...) log_event(LOG_LEVEL_DEBUG, id, f, __VA_ARGS__)
#define log_info(id, f, ...) log_event(LOG_LEVEL_INFO, id, f, __VA_ARGS__)
#define log_warn(id, f, ...) log_event(LOG_LEVEL_WARN, id, f, __VA_ARGS__)
#define log_error(id, f, ...) log_event(LOG_LEVEL_ERROR, id, f, __VA_ARGS__)
