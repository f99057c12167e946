/* SPDX-License-Identifier: MIT */
#include "write-timeout.h"

#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "conn.h"
#include "log.h"
#include "metrics.h"

/* The bytes of c the kernel holds that the client has not taken yet (SIOCOUTQ: not acknowledged
 * on TCP, not read on AF_UNIX); 0 when it cannot tell. */
static size_t kernel_queued(Conn *c)
{
    uv_os_fd_t fd;
    int n;
    if (uv_fileno(&c->h.handle, &fd) != 0 || ioctl(fd, SIOCOUTQ, &n) < 0 || n < 0)
        return 0;
    return (size_t)n;
}

/* Whether c's answer has waited timeout_ms without a byte of it going out. Progress is a new
 * write of libh2o (its bytes_written counts a write when it starts), a part of the one in
 * flight taken by the kernel (libuv's write queue shrinks), or a part of the kernel's send
 * buffer taken by the client: a slow reader of a long answer is not a stalled one. The last is
 * needed because the kernel wakes a writer only once a third of its send buffer (up to
 * megabytes) is free, so libuv's queue stands still for as long as a slow reader takes that. */
static bool write_stalled(Conn *c, uint64_t now, uint64_t timeout_ms)
{
    size_t queued = c->h.stream.write_queue_size;
    size_t written = c->sock->bytes_written;
    size_t in_kernel = queued == 0 ? 0 : kernel_queued(c);
    if (queued == 0 || queued != c->write_seen_queued || written != c->write_seen_bytes ||
        in_kernel != c->write_seen_kernel) {
        c->write_seen_queued = queued;
        c->write_seen_bytes = written;
        c->write_seen_kernel = in_kernel;
        c->write_seen_at = now;
        return false;
    }
    return now - c->write_seen_at >= timeout_ms;
}

/* Through libh2o's own path, as http2-limits.c does; but SHUT_RD alone changes nothing here:
 * HTTP/1 does not read while an answer is written, and HTTP/2 waits for the write in flight
 * before it closes. Shutting the writing side too fails that write (EPIPE), on which libh2o
 * closes the connection (HTTP/1 once the requests it has read already fail the same way). The
 * lingering close is turned off first: the answer is given up, and the kernel would otherwise
 * keep the closed socket and the data in its buffer, probing the client's shut window. */
static void give_up(Conn *c)
{
    uv_os_fd_t fd;
    if (uv_fileno(&c->h.handle, &fd) != 0)
        return;
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    (void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    (void)shutdown(fd, SHUT_RDWR);
}

void write_timeout_check(Conn *c, uint64_t now, uint64_t timeout_ms, uint64_t *closed)
{
    if (c->write_timed_out || !write_stalled(c, now, timeout_ms))
        return;
    const char *why = "client stopped reading its answers";
    log_info(MSGID_REJECTED, LOG_FIELDS(.error = why), "%s; closing the connection", why);
    if (closed)
        metrics_inc(closed);
    c->write_timed_out = true;
    give_up(c);
}
