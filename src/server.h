/* SPDX-License-Identifier: MIT */
#pragma once

#include <h2o.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "error-filter.h"
#include "http1-framing.h"
#include "metrics.h"

typedef struct Server Server;

/* A TCP or AF_UNIX stream handle of libuv. */
typedef union StreamHandle {
    uv_tcp_t tcp;
    uv_pipe_t pipe;
    uv_handle_t handle;
    uv_stream_t stream;
} StreamHandle;

/* One accepted client connection. The handle comes first: libuv's close callback receives it. */
typedef struct Conn {
    StreamHandle h;
    Server *server;
    h2o_socket_t *sock;
    h2o_linklist_t link;
    unsigned pending; /* requests on it waiting for the worker */
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
} Conn;

typedef struct Listener {
    StreamHandle h;
    Server *server;
    bool is_unix;
    bool open;
    bool paused; /* a connection is waiting in libuv for a free slot */
} Listener;

typedef void (*server_conn_fn)(Server *s, void *userdata);

struct Server {
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_pathconf_t *pathconf;
    uv_loop_t *loop;
    bool ctx_initialized;

    Listener *listeners;
    size_t n_listeners;
    bool socket_activated;

    uv_timer_t h2_sweep; /* http2-limits.c, while HTTP2=on */
    bool h2_sweep_on;
    uint64_t h2_request_timeout_ms;

    h2o_linklist_t conns;
    size_t n_conns;
    size_t max_conns; /* at this count, accepting pauses until one closes */
    bool draining;
    ErrorFilter errors; /* h2o's own error answers; the owner points .metrics at its counters */

    /* Told whenever a connection opens or closes (idle-exit and drain bookkeeping). */
    server_conn_fn on_conn_change;
    void *userdata;
};

/* Sets up h2o's configuration (limits, timeouts, HTTP/2 on or off) for loop; server_listen
 * makes its context. Register handlers on s->pathconf before server_listen. */
int server_init(Server *s, const Config *c, uv_loop_t *loop);

/* Sets up h2o's context, then takes the sockets systemd passed (TCP and AF_UNIX streams), or
 * binds [::]:port. Returns the number of listeners, or a negative errno. */
int server_listen(Server *s, uint16_t port);

/* Describes the listeners ("[::]:8080, /run/x.sock") into buf. */
void server_describe(const Server *s, char *buf, size_t n);

/* Stops accepting, asks h2o to wind down, and closes every connection with no pending request;
 * the others close once their last pending request is answered (server_conn_release). */
void server_drain(Server *s);

/* The connection a request arrived on, for pending-request bookkeeping. */
Conn *server_conn_of(h2o_req_t *req);
/* How an HTTP/1 request is framed, from its raw head (read-guard.c has usually read it
 * already); for HTTP/2 requests, nothing. */
void server_request_framing(h2o_req_t *req, Http1Framing *ret);
void server_conn_hold(Conn *c);
void server_conn_release(Conn *c);

/* For an invalid configuration under socket activation: the connections already queued on the
 * passed sockets would start the service again at once, again and again until systemd's start
 * limit fails the socket. Answers each 503 with `message` and closes it, so that one bad start
 * is one failed start and the socket keeps listening. Touches only the passed sockets. */
void server_refuse_pending(const char *message);

/* Frees h2o's context and configuration; the uv loop must then be run to close handles. */
void server_done(Server *s);
