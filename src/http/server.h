/* SPDX-License-Identifier: MIT */
#pragma once

#include <h2o.h>
#include <stdbool.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "conn.h"
#include "error-filter.h"
#include "listen.h"
#include "metrics.h"

typedef struct Listener {
    int fd;
    sd_event_source *io; /* on the server's loop: on_listener_io */
    Server *server;
    bool is_unix;
    bool open;
    bool paused; /* at the cap: the socket is not watched until a slot frees */
} Listener;

typedef void (*server_conn_fn)(Server *s, void *userdata);

/* What a server is given by its owner; all of it must outlive the server. */
typedef struct ServerSettings {
    const Config *config;
    uv_loop_t *loop;
    sd_event *event; /* the loop's, which watches the listening sockets */
    /* MAX_CONNECTIONS over every loop: the connections of every loop (atomic; NULL: this
     * server's own), and how many loops share them */
    size_t *total_conns;
    size_t n_loops;
    /* LARGE_BODY_PLACES over every loop: the places taken (atomic; NULL: this server's own) */
    size_t *large_bodies;
    Metrics *metrics; /* its counters: connections, h2o's own error answers, write timeouts */
    server_conn_fn on_conn_change;
    server_conn_fn on_slot_free;
    void *userdata;
} ServerSettings;

struct Server {
    h2o_globalconf_t globalconf;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_pathconf_t *pathconf;
    uv_loop_t *loop;
    sd_event *event; /* the loop's sd-event, which watches the listening sockets */
    sd_event_source *accept_retry;
    bool ctx_initialized;

    Listener *listeners;
    size_t n_listeners;
    bool socket_activated;

    uv_timer_t sweep; /* once a second, every connection's time limits */
    bool sweep_on;

    h2o_linklist_t conns;
    size_t n_conns; /* written on the loop's thread with atomic stores: read from any */
    /* MAX_CONNECTIONS over every loop: at total_conns (shared by the loops; NULL: this server's
     * own) == max_conns, accepting pauses until one closes, on whichever loop */
    size_t max_conns;
    size_t *total_conns; /* atomic */
    size_t n_loops;      /* sharing total_conns: each takes its share of new connections */
    size_t own_total;
    size_t *large_bodies; /* atomic: LARGE_BODY_PLACES taken, every loop's (conn.h) */
    size_t own_large_bodies;
    bool paused; /* atomic: a listener of this server is paused */
    bool draining;
    ErrorFilter errors; /* h2o's own error answers, counted in the settings' metrics */
    /* Bodies: MAX_BODY_BYTES, and MAX_BATCH_BYTES on POST /enqueue/batch (read-guard.c) */
    size_t max_body_bytes, max_batch_bytes;

    /* Told whenever a connection opens or closes (idle-exit and drain bookkeeping). */
    server_conn_fn on_conn_change;
    /* A connection closed while at the cap: other loops' paused listeners may take one now
     * (server_resume on their thread). */
    server_conn_fn on_slot_free;
    void *userdata;
};

/* Sets up h2o's configuration (limits, timeouts, HTTP/2 on or off) for the settings' loop;
 * server_listen makes its context. Register handlers on s->pathconf before server_listen. */
int server_init(Server *s, const ServerSettings *settings);

/* Sets up h2o's context, then accepts on (a duplicate of) each of fds. Returns the number of
 * listeners, or a negative errno. */
int server_listen(Server *s, const ListenFds *fds);

/* Describes the listeners ("[::]:8080, /run/x.sock") into buf. */
void server_describe(const Server *s, char *buf, size_t n);

/* On the server's loop: takes what its paused listeners hold, while below the cap. */
void server_resume(Server *s);

/* Stops accepting, asks h2o to wind down, and closes every connection with no pending request;
 * the others close once their last pending request is answered (conn_release). */
void server_drain(Server *s);

/* For an invalid configuration under socket activation: the connections already queued on the
 * passed sockets would start the service again at once, again and again until systemd's start
 * limit fails the socket. Answers each 503 with `message` and closes it, so that one bad start
 * is one failed start and the socket keeps listening. Touches only the passed sockets. */
void server_refuse_pending(const char *message);

/* Frees h2o's context and configuration; the uv loop must then be run to close handles. */
void server_done(Server *s);
