/* SPDX-License-Identifier: MIT */
#include "log-queue.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "macro.h"

static pthread_mutex_t log_mutex = PTHREAD_MUTEX_INITIALIZER;

void log_lock(void)
{
    (void)pthread_mutex_lock(&log_mutex);
}

void log_unlock(void)
{
    (void)pthread_mutex_unlock(&log_mutex);
}

void log_queue_consumed(LogQueue *q, size_t n)
{
    q->head += n;
    if (q->head == q->buf.len) {
        q->head = q->buf.len = 0;
        if (q->buf.cap > 256 * 1024)
            buffer_free(&q->buf); /* a stall should not keep its memory */
    } else if (q->head > 64 * 1024 && q->head > q->buf.len / 2) {
        memmove(q->buf.p, q->buf.p + q->head, q->buf.len - q->head);
        q->buf.len -= q->head;
        q->head = 0;
    }
}

bool log_queue_on_loop_thread(const LogQueue *q)
{
    return q->loop && pthread_equal(q->loop_thread, pthread_self());
}

/* The mailbox the queues are woken through: the loop's own (log_queue_use_mailbox), or else one
 * they share, made by the first attach and dropped by the last detach (under the log lock, like
 * the queues). */
static Mailbox *loop_mailbox;
static Mailbox log_mailbox = {.fd = -1};
static unsigned log_mailbox_users;

void log_queue_use_mailbox(Mailbox *m)
{
    loop_mailbox = m;
}

static void on_wake(MailboxReceiver *r, MailboxMessage *m)
{
    (void)m;
    LogQueue *q = container_of(r, LogQueue, wake);
    log_lock();
    q->wake_sent = false;
    q->flush();
    log_unlock();
}

void log_queue_attach(LogQueue *q, sd_event *loop, void (*flush)(void))
{
    log_queue_drop_io(q);
    if (q->wake.mailbox) {
        bool own = q->wake.mailbox == &log_mailbox;
        (void)mailbox_receiver_done(&q->wake); /* its one message is q's */
        if (own && --log_mailbox_users == 0)
            mailbox_done(&log_mailbox);
    }
    q->wake_sent = false;
    q->loop = loop;
    q->flush = flush;
    if (!loop)
        return;
    q->loop_thread = pthread_self();
    if (loop_mailbox) {
        mailbox_receiver_init(&q->wake, loop_mailbox, on_wake);
        return;
    }
    if (log_mailbox_users == 0 && mailbox_init(&log_mailbox, loop, "log-wake") < 0) {
        mailbox_done(&log_mailbox);
        return;
    }
    log_mailbox_users++;
    mailbox_receiver_init(&q->wake, &log_mailbox, on_wake);
}

void log_queue_wake(LogQueue *q)
{
    if (!q->loop || q->wake_sent || !q->wake.mailbox)
        return;
    q->wake_sent = true;
    mailbox_post(&q->wake, &q->wake_msg);
}

void log_queue_arm(LogQueue *q, bool want, int fd, sd_event_io_handler_t handler)
{
    if (!q->loop)
        return;
    if (!log_queue_on_loop_thread(q)) {
        if (want && !q->io_on)
            log_queue_wake(q);
        return;
    }
    if (!q->io && want && fd >= 0 &&
        sd_event_add_io(q->loop, &q->io, fd, EPOLLOUT, handler, NULL) >= 0)
        (void)sd_event_source_set_description(q->io, q->io_name);
    q->io_on = false;
    if (q->io && sd_event_source_set_enabled(q->io, want ? SD_EVENT_ON : SD_EVENT_OFF) >= 0)
        q->io_on = want;
}

void log_queue_drop_io(LogQueue *q)
{
    q->io = sd_event_source_disable_unref(q->io);
    q->io_on = false;
}
