/* SPDX-License-Identifier: MIT */
#include "http2-limits.h"

#include <h2o.h>
#include <h2o/http2.h>
#include <h2o/http2_internal.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "log.h"

static uint64_t ms_between(const struct timeval *from, const struct timeval *to)
{
    int64_t ms = ((int64_t)to->tv_sec - from->tv_sec) * 1000 + (to->tv_usec - from->tv_usec) / 1000;
    return ms > 0 ? (uint64_t)ms : 0;
}

h2o_http2_conn_t *http2_conn_of_socket(h2o_socket_t *sock)
{
    /* libh2o's HTTP/1 connections have no server push; its HTTP/2 ones do. */
    h2o_conn_t *conn = sock ? sock->data : NULL;
    return conn && conn->callbacks->push_path ? (h2o_http2_conn_t *)conn : NULL;
}

const char *http2_conn_over_size_limits(h2o_http2_conn_t *conn)
{
    if (conn->_headers_unparsed && conn->_headers_unparsed->size > HEAD_MAX_BYTES)
        return "HTTP/2 header block over the request-head limit";
    h2o_http2_stream_t *stream;
    const char *why = NULL;
    kh_foreach_value(conn->streams, stream, {
        if (stream->req.headers.size > HEADERS_MAX)
            why = "HTTP/2 request with too many header fields";
    });
    return why;
}

const char *http2_conn_over_time_limits(h2o_http2_conn_t *conn, const struct timeval *now,
                                        uint64_t timeout_ms)
{
    h2o_http2_stream_t *stream;
    const char *why = NULL;
    kh_foreach_value(conn->streams, stream, {
        switch (stream->state) {
        case H2O_HTTP2_STREAM_STATE_RECV_HEADERS:
        case H2O_HTTP2_STREAM_STATE_RECV_BODY:
            if (ms_between(&stream->req.timestamps.request_begin_at, now) >= timeout_ms)
                why = "HTTP/2 request not received in time";
            break;
        case H2O_HTTP2_STREAM_STATE_SEND_BODY:
        case H2O_HTTP2_STREAM_STATE_SEND_BODY_IS_FINAL:
            if (ms_between(&stream->req.timestamps.response_start_at, now) >= timeout_ms)
                why = "HTTP/2 answer not taken by the client in time";
            break;
        default:
            break;
        }
    });
    return why;
}

void http2_limits_check(Conn *c, const struct timeval *now, uint64_t timeout_ms)
{
    h2o_http2_conn_t *conn = http2_conn_of_socket(c->sock);
    const char *why = conn ? http2_conn_over_time_limits(conn, now, timeout_ms) : NULL;
    if (!why || !conn->sock)
        return;
    log_info(MSGID_REJECTED, LOG_FIELDS(.error = why), "%s; closing the connection", why);
    /* through libh2o's own path: the next read sees the end of the stream and closes */
    int fd = h2o_socket_get_fd(conn->sock);
    if (fd >= 0)
        (void)shutdown(fd, SHUT_RD);
}
