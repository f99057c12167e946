/* SPDX-License-Identifier: MIT */
#include "linger.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

void linger_arm(Conn *c)
{
    uv_os_fd_t fd;
    if (!c || c->linger_armed || uv_is_closing(&c->h.handle) || uv_fileno(&c->h.handle, &fd) != 0)
        return;
    int dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (dup_fd < 0)
        return;
    c->linger_fd = dup_fd;
    c->linger_armed = true;
}

void linger_end(Conn *c)
{
    if (!c->lingering || uv_is_closing(&c->h.handle))
        return;
    /* libuv takes the descriptor out of its epoll set first: then it can go */
    uv_close(&c->h.handle, c->linger_done);
    (void)close(c->linger_fd);
    c->linger_fd = -1;
}

/* Reads and drops what has arrived; the end once the client has closed (or reset), or sent
 * LINGER_MAX_BYTES since the answer. */
static void on_readable(uv_poll_t *handle, int status, int events)
{
    (void)events;
    Conn *c = (Conn *)handle;
    char sink[16384];
    while (status == 0 && c->linger_read < LINGER_MAX_BYTES) {
        ssize_t k = recv(c->linger_fd, sink, sizeof(sink), MSG_DONTWAIT);
        if (k > 0)
            c->linger_read += (size_t)k;
        else if (k < 0 && errno == EINTR)
            continue;
        else if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        else
            break; /* EOF, or the client reset it */
    }
    linger_end(c);
}

bool linger_start(Conn *c, uv_loop_t *loop, bool draining, uv_close_cb on_done)
{
    if (!c->linger_armed)
        return false;
    c->linger_armed = false;
    if (draining || uv_poll_init(loop, &c->h.poll, c->linger_fd) < 0) {
        (void)close(c->linger_fd);
        c->linger_fd = -1;
        return false;
    }
    /* the answer is all in the kernel's send queue (libh2o closes once its write is done): the
     * FIN follows it */
    (void)shutdown(c->linger_fd, SHUT_WR);
    c->lingering = true;
    c->linger_read = 0;
    c->linger_until = uv_now(loop) + LINGER_MAX_MSEC;
    c->linger_done = on_done;
    if (uv_poll_start(&c->h.poll, UV_READABLE, on_readable) < 0)
        linger_end(c);
    return true;
}

void linger_check(Conn *c, uint64_t now)
{
    if (c->lingering && now >= c->linger_until)
        linger_end(c);
}
