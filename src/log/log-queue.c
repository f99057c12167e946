/* SPDX-License-Identifier: MIT */
#include "log-queue.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
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

static int on_wake(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s, (void)revents;
    LogQueue *q = userdata;
    uint64_t v;
    log_lock();
    (void)!read(fd, &v, sizeof(v));
    q->wake_sent = false;
    q->flush();
    log_unlock();
    return 0;
}

void log_queue_attach(LogQueue *q, sd_event *loop, void (*flush)(void))
{
    log_queue_drop_io(q);
    q->wake = sd_event_source_disable_unref(q->wake);
    if (q->wake_fd >= 0)
        closep(&q->wake_fd);
    q->wake_fd = -1;
    q->wake_sent = false;
    q->loop = loop;
    q->flush = flush;
    if (!loop)
        return;
    q->loop_thread = pthread_self();
    q->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (q->wake_fd >= 0 && sd_event_add_io(loop, &q->wake, q->wake_fd, EPOLLIN, on_wake, q) >= 0)
        (void)sd_event_source_set_description(q->wake, "log-wake");
}

void log_queue_wake(LogQueue *q)
{
    if (!q->loop || q->wake_sent || q->wake_fd < 0)
        return;
    uint64_t one = 1;
    if (write(q->wake_fd, &one, sizeof(one)) == sizeof(one))
        q->wake_sent = true;
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
