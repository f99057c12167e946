/* SPDX-License-Identifier: MIT */
#include "read-guard.h"

#include <stdbool.h>
#include <sys/socket.h>

#include "error-filter.h"
#include "http-util.h"
#include "http1-framing.h"
#include "http2-limits.h"
#include "linger.h"
#include "log.h"
#include "raw-answer.h"

/* Answers an HTTP/1 head the connection cannot go on after; libh2o closes it then, and the
 * rest of the request the client is still sending is read in its lingering close. */
static void refuse(Conn *c, int status, const char *message)
{
    error_filter_note(c->errors, "argus-orchestrator", status, message,
                      "connection closed before the request was parsed");
    linger_arm(c);
    uv_os_fd_t fd;
    if (uv_fileno(&c->h.handle, &fd) == 0)
        raw_answer_error(fd, status, message);
}

/* libuv asks for a buffer before every read(2); libh2o's allocator hands out the free end of
 * the socket's input buffer, and this caps it while a head is unfinished. A zero-length
 * buffer makes libuv report UV_ENOBUFS, on which libh2o closes the connection. */
static void on_alloc(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    Conn *c = (Conn *)handle;
    c->h2o_alloc(handle, suggested, buf);
    h2o_http2_conn_t *h2 = http2_conn_of_socket(c->sock);
    if (h2) {
        /* a header block over the limit grows by one read at most */
        const char *why = http2_conn_over_size_limits(h2);
        if (why) {
            log_info(MSGID_REJECTED, LOG_FIELDS(.error = why), "%s; closing the connection", why);
            buf->len = 0;
        }
        return;
    }
    h2o_buffer_t *in = c->sock->input;
    if (in->size + buf->len <= HEAD_MAX_BYTES)
        return;
    Http1Framing f;
    http1_framing_inspect(in->bytes, in->size, &f);
    int head = f.head_length;
    if (head != 0 && head <= HEAD_MAX_BYTES)
        return; /* a body or the next request follows a head within the limit, or no HTTP/1 */
    if (head == 0 && in->size < HEAD_MAX_BYTES) {
        buf->len = HEAD_MAX_BYTES - in->size;
        return;
    }
    refuse(c, 431, "request header fields too large");
    buf->len = 0;
}

/* A Content-Length over what the request's path takes: libh2o's own limit is the larger one
 * (server.c), so that POST /enqueue/batch may have MAX_BATCH_BYTES. */
static bool body_too_large(const Conn *c, const Http1Framing *f)
{
    if (f->content_length < 0)
        return false;
    size_t max = http_target_is(f->target, f->target_len, ENQUEUE_BATCH_PATH) ? c->max_batch_bytes
                                                                              : c->max_body_bytes;
    return (unsigned long long)f->content_length > max;
}

/* A body that may grow past MAX_BODY_BYTES: a larger Content-Length (only the batch path gets
 * this far), or a chunked one on any path (libh2o's own limit lets it grow to the larger). */
static bool body_may_be_large(const Conn *c, const Http1Framing *f)
{
    return f->chunked ||
           (f->content_length >= 0 && (unsigned long long)f->content_length > c->max_body_bytes);
}

/* Every place for a large body is taken: answered from the head, its body not read; the
 * connection closes after the answer, lingering (as the 413 from the head). */
static void shed(Conn *c)
{
    static const char message[] = "too many large request bodies at once";
    if (c->errors->metrics)
        metrics_inc(&c->errors->metrics->shed_large_bodies);
    if (!log_rejection_summarised(503))
        log_info(MSGID_REJECTED, LOG_FIELDS(.http_status = 503, .error = message),
                 "%s (%d places); answered 503", message, LARGE_BODY_PLACES);
    linger_arm(c);
    uv_os_fd_t fd;
    if (uv_fileno(&c->h.handle, &fd) == 0)
        raw_answer_error_retry(fd, 503, message, 1);
}

/* A whole head at the start of the input buffer: false when it was answered (the connection is
 * to close), else true, its request holding a place for a large body when it needs one. */
static bool head_passes(Conn *c, const Http1Framing *f)
{
    if (f->problem) {
        refuse(c, 400, f->problem);
        return false;
    }
    if (body_too_large(c, f)) {
        refuse(c, 413, "request body too large");
        return false;
    }
    if (body_may_be_large(c, f) && !conn_large_body_take(c)) {
        shed(c);
        return false;
    }
    return true;
}

/* The bytes just read are in the input buffer, not yet counted in its size: a whole HTTP/1
 * head at its start is checked before libh2o parses it. What was found is kept for the
 * handler (routes.c), which checks the heads this did not see (pipelined ones). */
static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    Conn *c = (Conn *)stream;
    h2o_buffer_t *in = c->sock->input;
    if (nread > 0 && in->bytes != c->head_checked) {
        Http1Framing f;
        http1_framing_inspect(in->bytes, in->size + (size_t)nread, &f);
        if (f.head_length > 0) {
            if (!head_passes(c, &f))
                nread = UV_ECONNRESET; /* libh2o closes the connection */
            else {
                c->head_checked = in->bytes;
                c->head_chunked = f.chunked;
            }
        }
    }
    c->h2o_read(stream, nread, buf);
}

/* What libh2o parsed on an HTTP/2 connection may already be over a limit: ending the reading
 * side brings a read at once, and on_alloc closes the connection then. */
static void check_http2(Conn *c)
{
    if (uv_is_closing(&c->h.handle))
        return; /* libh2o closed it: its connection object is gone */
    h2o_http2_conn_t *conn = http2_conn_of_socket(c->sock);
    uv_os_fd_t fd;
    if (conn && http2_conn_over_size_limits(conn) && uv_fileno(&c->h.handle, &fd) == 0)
        (void)shutdown(fd, SHUT_RD);
}

/* libh2o sets the stream's callbacks at every uv_read_start(), after each request. The stream's
 * I/O watcher is the one thing libuv sets once (when the connection is accepted) and calls
 * before every batch of reads: wrapped, it puts the wrappers back in place each time. */
static void on_io(struct uv_loop_s *loop, struct uv__io_s *w, unsigned int events)
{
    Conn *c = H2O_STRUCT_FROM_MEMBER(Conn, h.stream.io_watcher, w);
    uv_stream_t *s = &c->h.stream;
    if (s->alloc_cb && s->alloc_cb != on_alloc) {
        c->h2o_alloc = s->alloc_cb;
        s->alloc_cb = on_alloc;
    }
    if (s->read_cb && s->read_cb != on_read) {
        c->h2o_read = s->read_cb;
        s->read_cb = on_read;
    }
    c->stream_io(loop, w, events);
    check_http2(c);
}

void read_guard_attach(Conn *c)
{
    c->stream_io = c->h.stream.io_watcher.cb;
    c->h.stream.io_watcher.cb = on_io;
}

void read_guard_request_framing(h2o_req_t *req, Http1Framing *ret)
{
    *ret = (Http1Framing){0};
    h2o_socket_t *sock = req->version < 0x200 ? req->conn->callbacks->get_socket(req->conn) : NULL;
    if (!sock)
        return;
    /* The request's own bytes are still at the start of the input buffer while the handler
     * runs: libh2o consumes them once the answer is sent. */
    Conn *c = sock->on_close.data;
    if (c && c->head_checked == sock->input->bytes) {
        ret->chunked = c->head_chunked;
        ret->head_length = 1;
    } else
        http1_framing_inspect(sock->input->bytes, sock->input->size, ret);
    if (c)
        c->head_checked = NULL; /* the next head may start at the same address */
}
