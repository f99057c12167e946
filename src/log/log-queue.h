/* SPDX-License-Identifier: MIT */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "buffer.h"
#include "mailbox.h"

/* The queue each log sink keeps of what its socket or pipe cannot take now (log-journal.c,
 * log-stderr.c). Its marks and its bound are log-backlog.h's: past the high-water mark the
 * service sheds new jobs rather than drop their entries; past the bound (the high-water mark and
 * room for the entries of jobs already admitted) entries are dropped, counted. */

/* The one lock of logging: every sink's state (its queue, its entry or line being formatted, its
 * counters, stderr's buffered mode) is read and written under it, by any thread. The sinks' io
 * sources are the exception: sd-event is not thread-safe, so they are only ever touched by the
 * thread that attached the loop (log_queue_attach), under the lock too; another thread that
 * needs one armed wakes that thread through the queue's mailbox receiver instead. */
void log_lock(void);
void log_unlock(void);

/* Queued records, oldest first, from p + head: for the journal each is a 32-bit length and a
 * datagram; for stderr, bytes. */
typedef struct LogQueue {
    Buffer buf;
    size_t head;
    size_t n;               /* entries (journal) */
    uint64_t dropped;       /* since the last "dropped" entry */
    uint64_t dropped_total; /* for /metrics */
    sd_event *loop;         /* the loop the queue is flushed from (log_queue_attach), or NULL */
    pthread_t loop_thread;  /* the thread that attached it: the only one to touch io and wake */
    sd_event_source *io;    /* EPOLLOUT, enabled while the queue is not empty */
    const char *io_name;    /* io's description */
    bool io_on;             /* io is enabled (read without asking sd-event) */
    MailboxReceiver wake;   /* on the loop's log mailbox: another thread asks for a flush */
    MailboxMessage wake_msg;
    bool wake_sent;      /* wake_msg posted, not yet received */
    void (*flush)(void); /* the sink's flush, lock held, called on the loop's thread */
} LogQueue;

static inline size_t log_queue_bytes(const LogQueue *q)
{
    return q->buf.len - q->head;
}

/* The n bytes at head have been sent. */
void log_queue_consumed(LogQueue *q, size_t n);

/* Whether the calling thread may touch q's sources: it attached q's loop. */
bool log_queue_on_loop_thread(const LogQueue *q);

/* The loop (NULL: none) that flushes q, from the calling thread, which is the one that runs it:
 * flush (lock held) is called there when another thread asks. Detaching (NULL) drops q's
 * sources, also on that thread. */
void log_queue_attach(LogQueue *q, sd_event *loop, void (*flush)(void));

/* The mailbox of the loop the queues are attached to from now on (NULL: they make one of their
 * own on it); lock held, before log_queue_attach. */
void log_queue_use_mailbox(Mailbox *m);

/* Asks the loop's thread to call q->flush soon; from any thread, once until it has. */
void log_queue_wake(LogQueue *q);

/* On the loop's thread: turns the queue's EPOLLOUT source on when `want` (the queue holds
 * something; creating the source on fd if need be), off when not. From another thread, wants
 * it on by waking the loop's thread, whose flush arms it. Without a loop, does nothing. */
void log_queue_arm(LogQueue *q, bool want, int fd, sd_event_io_handler_t handler);

/* On the loop's thread: drops the EPOLLOUT source (its fd is about to be closed). */
void log_queue_drop_io(LogQueue *q);
