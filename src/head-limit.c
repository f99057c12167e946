/* SPDX-License-Identifier: MIT */
#include "head-limit.h"

#include "log.h"
#include "picohttpparser.h"
#include "raw-answer.h"

/* 0 while the head at buf is incomplete; its length when complete; -1 when buf is not an
 * HTTP/1 request (HTTP/2 frames, garbage: libh2o deals with those). */
static int head_length(const char *buf, size_t len)
{
    struct phr_header headers[100];
    size_t n = 100;
    int r = phr_parse_request_head(buf, len, headers, &n);
    return r == -2 ? 0 : r;
}

/* libuv asks for a buffer before every read(2); libh2o's allocator hands out the free end of
 * the socket's input buffer, and this caps it while a head is unfinished. A zero-length
 * buffer makes libuv report UV_ENOBUFS, on which libh2o closes the connection. */
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    Conn *c = (Conn *)handle;
    c->h2o_alloc(handle, suggested, buf);
    h2o_buffer_t *in = c->sock->input;
    if (in->size + buf->len <= HEAD_MAX_BYTES)
        return;
    int head = head_length(in->bytes, in->size);
    if (head != 0 && head <= HEAD_MAX_BYTES)
        return; /* a body or the next request follows a head within the limit, or no HTTP/1 */
    if (head == 0 && in->size < HEAD_MAX_BYTES) {
        buf->len = HEAD_MAX_BYTES - in->size;
        return;
    }
    Server *s = c->server;
    if (s->metrics)
        metrics_count_request(s->metrics, ROUTE_OTHER, 431);
    log_info(MSGID_REJECTED, LOG_FIELDS(.http_status = 431, .error = "request head too large"),
             "request rejected: request head over %d bytes; closing the connection",
             HEAD_MAX_BYTES);
    uv_os_fd_t fd;
    if (uv_fileno(handle, &fd) == 0)
        raw_answer_error(fd, 431, "Request Header Fields Too Large",
                         "request header fields too large");
    buf->len = 0;
}

/* libh2o sets the stream's allocator at every uv_read_start(), after each request. The stream's
 * I/O watcher is the one thing libuv sets once (when the connection is accepted) and calls
 * before every batch of reads: wrapped, it puts on_alloc back in place each time. */
static void on_io(struct uv_loop_s *loop, struct uv__io_s *w, unsigned int events)
{
    Conn *c = H2O_STRUCT_FROM_MEMBER(Conn, h.stream.io_watcher, w);
    uv_stream_t *s = &c->h.stream;
    if (s->alloc_cb && s->alloc_cb != on_alloc) {
        c->h2o_alloc = s->alloc_cb;
        s->alloc_cb = on_alloc;
    }
    c->stream_io(loop, w, events);
}

void head_limit_attach(Conn *c)
{
    c->stream_io = c->h.stream.io_watcher.cb;
    c->h.stream.io_watcher.cb = on_io;
}
