/* SPDX-License-Identifier: MIT */
#pragma once

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* One client connection as the server (server.c) and the modules under it that watch its bytes
 * (read-guard.c, http2-limits.c, error-filter.c, write-timeout.c, linger.c) see it. */

/* The largest request head (request line and header fields, or an HTTP/2 header block). */
#define HEAD_MAX_BYTES (64 * 1024)
/* The most header fields in one request, as libh2o allows for HTTP/1 (H2O_MAX_HEADERS). */
#define HEADERS_MAX 100
/* The HTTP/1 requests of the whole process (every loop) whose body may grow past MAX_BODY_BYTES
 * (a larger Content-Length, which only POST /enqueue/batch is let through with, or a chunked
 * body on any path) at once. A connection holding most of a 128 KiB batch body costs about
 * 250 KiB, one that holds no more than MAX_BODY_BYTES about 150 KiB (README, "Limits": the
 * memory backstop): 128 of them add at most 128 x 100 KiB, 12.5 MiB, to what MAX_CONNECTIONS
 * ordinary ones cost, where 4096 of them would add 400 MiB. 128 batches of a thousand placeIds
 * being read at the same moment is far more than the batch route's clients need. */
#define LARGE_BODY_PLACES 128

typedef struct Server Server;
typedef struct ErrorFilter ErrorFilter;

/* A TCP or AF_UNIX stream handle of libuv. */
typedef union StreamHandle {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_poll_t poll; /* while it lingers (linger.h), on a duplicate of its descriptor */
    uv_handle_t handle;
    uv_stream_t stream;
} StreamHandle;

/* One accepted client connection. The handle comes first: libuv's close callback receives it. */
typedef struct Conn {
    StreamHandle h;
    Server *server;
    ErrorFilter *errors; /* the server's: the read path and the close note errors there */
    h2o_socket_t *sock;
    h2o_linklist_t link;
    unsigned pending;     /* requests on it waiting for the worker */
    const bool *draining; /* the server's: the last of them answered then closes it */
    /* Bodies: MAX_BODY_BYTES, and MAX_BATCH_BYTES on POST /enqueue/batch (read-guard.c) */
    size_t max_body_bytes, max_batch_bytes;
    /* The server's count of LARGE_BODY_PLACES taken (atomic, every loop's), and whether this
     * connection holds one: from the head of a request whose body may grow past
     * MAX_BODY_BYTES until that request is done or the connection closes. */
    size_t *large_bodies;
    bool large_body_place;
    /* libuv's I/O callback of the stream and libh2o's read callbacks (read-guard.c) */
    uv__io_cb stream_io;
    uv_alloc_cb h2o_alloc;
    uv_read_cb h2o_read;
    /* The start of the last HTTP/1 head read-guard.c checked, until the handler sees it. */
    const char *head_checked;
    bool head_chunked;
    /* Bytes written when its last request was done, SIZE_MAX once it carried HTTP/2: the
     * error filter tells h2o's own 400 at close by it. */
    size_t written_at_request_done;
    /* The progress of its writing write-timeout.c last saw (libh2o's bytes_written, libuv's
     * write queue, the kernel's send queue), when it saw it change (uv_now), and whether it
     * gave the connection up. */
    size_t write_seen_bytes;
    size_t write_seen_queued;
    size_t write_seen_kernel;
    uint64_t write_seen_at;
    bool write_timed_out;
    /* Its lingering close (linger.h): the duplicate descriptor that outlives libh2o's close
     * (while armed or lingering), what was read and dropped since, until when (uv_now), and the
     * close callback that frees it then. */
    int linger_fd;
    bool linger_armed;
    bool lingering;
    size_t linger_read;
    uint64_t linger_until;
    uv_close_cb linger_done;
} Conn;

/* Ends a connection through h2o's own path: after SHUT_RD its next read sees EOF, so h2o closes
 * it once any response it is writing has been sent. */
void conn_close_when_idle(Conn *c);

/* A request on c waits for the worker: while one does, a drain leaves c open for its answer.
 * Both take NULL. */
void conn_hold(Conn *c);
/* The last one done during a drain closes c when idle. */
void conn_release(Conn *c);

/* Takes one of LARGE_BODY_PLACES for c's request being read: false when none is free. c holds
 * one at most: true at once when it already does. */
bool conn_large_body_take(Conn *c);
/* Gives c's place back, if it holds one: its request is done, or it closed. Takes NULL. */
void conn_large_body_give(Conn *c);

/* The connection a request arrived on (the Conn its socket carries), or NULL. */
static inline Conn *conn_of_request(h2o_req_t *req)
{
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    return sock ? sock->on_close.data : NULL;
}
