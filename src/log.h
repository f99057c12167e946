/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "log-level.h"

/* One MESSAGE_ID per kind of event; argus-orchestrator.catalog explains each. */
#define MSGID_STARTED "0ab6c76247424b319f4e54d04c36e08b"
#define MSGID_ENQUEUED "a4797921098147a0bd3f6417c42ebc5f"
#define MSGID_ENQUEUE_FAILED "b4407eb82a8f4bd8b3165f8e1f7186a6"
#define MSGID_REJECTED "e2c01d17756a49f48483174d2c494213"
#define MSGID_WORKER_RETRY "4dd37ce2369e4eb491a83b3471e713d7"
#define MSGID_CONFIG_INVALID "a625bda2409f4b89bf4e3b7af3c4e81f"
#define MSGID_STOPPING "b4936a867d8f4e8e959822e733b97a97"
#define MSGID_STOPPED "cbf1ed99175f441d9a131933ad581524"
#define MSGID_IDLE_EXIT "b11a1f4b04c34bed82493a1da41560bb"
#define MSGID_REQUEST "dc1155837020477eadc5010f5d3f010f"
#define MSGID_PROTOCOL_ERROR "baaf71ffbd0147ef80b3715a385d509b"
#define MSGID_LOG_DROPPED "c63ae9255ddd4d18b3ae0b3e4e9e0faa"

/* Optional structured fields of an event; zero/NULL members are left out. Both sinks write
 * them from one table, log.c's log_fields (journal name, JSON name, type). */
typedef struct LogFields {
    const char *place_id;
    const char *job_id;
    const char *request_id;
    const char *worker_url;
    const char *error;
    int http_status;
    int worker_status;
    int attempt;
    int64_t duration_usec; /* with has_duration */
    bool has_duration;
    uint64_t dropped; /* log entries dropped (the "dropped" entry's count) */
} LogFields;

#define LOG_FIELDS(...) (&(const LogFields){__VA_ARGS__})

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
