/* SPDX-License-Identifier: MIT */
#include "log-queue.h"

#include <stdbool.h>
#include <string.h>
#include <sys/epoll.h>

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

void log_queue_arm(LogQueue *q, sd_event *loop, int fd, sd_event_io_handler_t handler)
{
    bool want = log_queue_bytes(q) > 0;
    if (!q->io && want && loop && fd >= 0 &&
        sd_event_add_io(loop, &q->io, fd, EPOLLOUT, handler, NULL) >= 0)
        (void)sd_event_source_set_description(q->io, "log-writable");
    if (q->io)
        (void)sd_event_source_set_enabled(q->io, want ? SD_EVENT_ON : SD_EVENT_OFF);
}
