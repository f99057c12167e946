/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "buffer.h"

/* The queue each log sink keeps of what its socket or pipe cannot take now (log-journal.c,
 * log-stderr.c), and its bounds: 4 MiB is some 12k entries of ~350 bytes (a job's), or 16k at
 * most, i.e. about a second of the service's full rate: it rides out journald's short stalls (a
 * rotation, a flush) and costs at most 4 MiB beside the 8 MiB socket buffer; past it, a longer
 * stall costs entries (counted) rather than memory. */
#define LOG_QUEUE_MAX_BYTES (4 * 1024 * 1024)
#define LOG_QUEUE_MAX_ENTRIES 16384

/* Queued records, oldest first, from p + head: for the journal each is a 32-bit length and a
 * datagram; for stderr, bytes. */
typedef struct LogQueue {
    Buffer buf;
    size_t head;
    size_t n;               /* entries (journal) */
    uint64_t dropped;       /* since the last "dropped" entry */
    uint64_t dropped_total; /* for /metrics */
    sd_event_source *io;    /* EPOLLOUT, enabled while the queue is not empty */
} LogQueue;

static inline size_t log_queue_bytes(const LogQueue *q)
{
    return q->buf.len - q->head;
}

/* The n bytes at head have been sent. */
void log_queue_consumed(LogQueue *q, size_t n);

/* Turns the queue's EPOLLOUT source on while it holds something (creating it on fd in loop, if
 * there is one, if need be), off when it is empty. */
void log_queue_arm(LogQueue *q, sd_event *loop, int fd, sd_event_io_handler_t handler);
