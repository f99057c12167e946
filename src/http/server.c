/* SPDX-License-Identifier: MIT */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "atomics.h"
#include "error-filter.h"
#include "http2-limits.h"
#include "linger.h"
#include "log.h"
#include "raw-answer.h"
#include "read-guard.h"
#include "write-timeout.h"

#define REQUEST_TIMEOUT_MS 10000
#define SWEEP_INTERVAL_MS 1000

int server_init(Server *s, const ServerSettings *settings)
{
    const Config *c = settings->config;
    memset(s, 0, sizeof(*s));
    s->loop = settings->loop;
    s->event = settings->event;
    s->n_loops = settings->n_loops;
    s->on_conn_change = settings->on_conn_change;
    s->on_slot_free = settings->on_slot_free;
    s->userdata = settings->userdata;
    h2o_linklist_init_anchor(&s->conns);

    h2o_config_init(&s->globalconf);
    s->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("argus-orchestrator"));
    /* libh2o's limit is one for all paths: the larger one; the read guard and the routes hold
     * each path to its own (read-guard.h). One more: libh2o 2.2.5 refuses a chunked body that
     * reaches its limit, where a Content-Length may equal it. */
    s->globalconf.max_request_entity_size =
        (c->max_batch_bytes > c->max_body_bytes ? c->max_batch_bytes : c->max_body_bytes) + 1;
    s->max_body_bytes = c->max_body_bytes;
    s->max_batch_bytes = c->max_batch_bytes;
    s->globalconf.http1.req_timeout = REQUEST_TIMEOUT_MS;
    s->globalconf.http1.upgrade_to_http2 = c->http2;
    s->globalconf.http2.idle_timeout = REQUEST_TIMEOUT_MS;

    h2o_hostconf_t *host =
        h2o_config_register_host(&s->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    s->pathconf = h2o_config_register_path(host, "/", 0);
    /* h2o answers some errors itself (malformed requests, 413) from the host's fallback path:
     * both paths get the filter that gives those answers the JSON shape of README.md's "API". */
    error_filter_init(&s->errors);
    s->errors.metrics = settings->metrics;
    error_filter_register(s->pathconf, &s->errors);
    error_filter_register(&host->fallback_path, &s->errors);

    s->max_conns = c->max_connections;
    s->total_conns = settings->total_conns ? settings->total_conns : &s->own_total;
    s->large_bodies = settings->large_bodies ? settings->large_bodies : &s->own_large_bodies;
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->globalconf.hosts;
    return 0;
}

static int on_listener_io(sd_event_source *src, int fd, uint32_t revents, void *userdata);

static void listener_enable(Listener *l, bool on)
{
    if (l->io)
        (void)sd_event_source_set_enabled(l->io, on ? SD_EVENT_ON : SD_EVENT_OFF);
}

void server_resume(Server *s)
{
    if (s->draining || !relaxed_load_bool(&s->paused))
        return;
    relaxed_store_bool(&s->paused, false);
    for (size_t i = 0; i < s->n_listeners; i++) {
        Listener *l = &s->listeners[i];
        if (l->paused && l->open) {
            l->paused = false;
            listener_enable(l, true); /* the socket's queue is read again; at the cap, pauses */
        }
    }
}

/* The end of a connection, or of its lingering: its place under the cap is free. */
static void on_conn_gone(uv_handle_t *h)
{
    Conn *c = (Conn *)h;
    Server *s = c->server;
    h2o_linklist_unlink(&c->link);
    bool was_full = slot_give_size(s->total_conns) + 1 >= s->max_conns; /* the count before */
    free(c);
    if (!s->draining)
        server_resume(s);
    if (was_full && s->on_slot_free)
        s->on_slot_free(s, s->userdata);
    if (s->on_conn_change)
        s->on_conn_change(s, s->userdata);
}

/* libh2o (or the adoption) closed the connection: it is no longer open, though one answered
 * before its request was read whole lingers a while (linger.h), still under the cap. */
static void on_conn_closed(uv_handle_t *h)
{
    Conn *c = (Conn *)h;
    Server *s = c->server;
    c->sock = NULL;          /* libh2o has freed it */
    conn_large_body_give(c); /* a request still being read or answered, if it held one */
    relaxed_store_size(&s->n_conns, s->n_conns - 1);
    if (!linger_start(c, s->loop, s->draining, on_conn_gone)) {
        on_conn_gone(h);
        return;
    }
    if (s->on_conn_change)
        s->on_conn_change(s, s->userdata);
}

/* Out of descriptors: accepting stops for a moment (the socket stays readable, and would wake
 * the loop again at once). */
static int on_accept_retry(sd_event_source *src, uint64_t usec, void *userdata)
{
    (void)src, (void)usec;
    Server *s = userdata;
    for (size_t i = 0; i < s->n_listeners; i++)
        if (s->listeners[i].open && !s->listeners[i].paused)
            listener_enable(&s->listeners[i], true);
    return 0;
}

/* Stops watching the listening sockets for usec. */
static void accept_pause(Server *s, uint64_t usec)
{
    for (size_t i = 0; i < s->n_listeners; i++)
        listener_enable(&s->listeners[i], false);
    if (!s->accept_retry) {
        if (sd_event_add_time_relative(s->event, &s->accept_retry, CLOCK_MONOTONIC, usec, 100,
                                       on_accept_retry, s) < 0) {
            on_accept_retry(NULL, 0, s);
            return;
        }
        (void)sd_event_source_set_description(s->accept_retry, "accept-retry");
    } else
        (void)sd_event_source_set_time_relative(s->accept_retry, usec);
    (void)sd_event_source_set_enabled(s->accept_retry, SD_EVENT_ONESHOT);
}

static void accept_back_off(Server *s, int error)
{
    log_warn(NULL, LOG_FIELDS(.error = strerror(error)), "accept failed: %s; retrying in 100 ms",
             strerror(error));
    accept_pause(s, 100000);
}

/* Whether this loop holds more than its share of every loop's connections (by more than one):
 * it then leaves new ones to the others for a moment. */
static bool over_share(const Server *s)
{
    size_t total = relaxed_load_size(s->total_conns);
    return s->n_loops > 1 && s->n_conns > total / s->n_loops + 1;
}

/* One new connection (its place under the cap already taken): libuv and h2o take the accepted
 * descriptor. */
static void server_adopt(Server *s, int fd, bool is_unix)
{
    Conn *c = calloc(1, sizeof(*c));
    if (!c) {
        relaxed_sub_size(s->total_conns, 1);
        close(fd);
        return;
    }
    c->server = s;
    c->draining = &s->draining;
    c->errors = &s->errors;
    c->max_body_bytes = s->max_body_bytes;
    c->max_batch_bytes = s->max_batch_bytes;
    c->large_bodies = s->large_bodies;
    /* libuv's init of a handle without flags cannot fail; the handle is then the loop's */
    (void)(is_unix ? uv_pipe_init(s->loop, &c->h.pipe, 0) : uv_tcp_init(s->loop, &c->h.tcp));
    h2o_linklist_insert(&s->conns, &c->link);
    relaxed_store_size(&s->n_conns, s->n_conns + 1);
    if (s->errors.metrics)
        metrics_inc(&s->errors.metrics->connections_accepted);
    int r = is_unix ? uv_pipe_open(&c->h.pipe, fd) : uv_tcp_open(&c->h.tcp, fd);
    if (r < 0) {
        close(fd);
        uv_close(&c->h.handle, on_conn_closed);
        return;
    }
    if (!is_unix)
        (void)uv_tcp_nodelay(&c->h.tcp, 1);

    c->sock = h2o_uv_socket_create(&c->h.stream, on_conn_closed);
    c->sock->on_close.data = c;
    read_guard_attach(c);
    c->sock->on_close.cb = error_filter_on_socket_close; /* h2o's 400 that no filter sees */
    if (s->on_conn_change)
        s->on_conn_change(s, s->userdata);
    h2o_accept(&s->accept_ctx, c->sock);
}

/* Connections taken at most per wake-up: a loop busy with other work must still empty a burst of
 * new connections from the queue (as libuv's own accept does), or a new client would wait
 * behind them for many turns of the loop. */
#define ACCEPT_BATCH 64

/* The listening socket is readable. Each loop watches it (sd-event, level-triggered) and takes
 * what is queued there, but while it holds more than its share of the process's connections it
 * leaves the rest to the other loops, which watch the same socket: connections arriving
 * together spread over the loops, where libuv's own accept would give the whole queue to the
 * first loop to wake. Returns after one pass; what is left wakes it again. */
static int on_listener_io(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
    (void)src, (void)revents;
    Listener *l = userdata;
    Server *s = l->server;
    bool clock_synced = false;

    for (unsigned n = 0; n < ACCEPT_BATCH; n++) {
        /* Keep-alive clients that connect together (a load balancer's pool, wrk) would
         * otherwise mostly land on the loop that happens to run: one that has more than its
         * share waits a millisecond, while the others take the next ones. */
        if (over_share(s)) {
            accept_pause(s, 1000);
            return 0;
        }
        /* At the cap (every loop's connections count), stop reading the socket's queue: the
         * clients wait in the kernel's backlog (or systemd's socket) until a slot frees on any
         * loop. */
        if (slot_take_size(s->total_conns) > s->max_conns) {
            /* Paused first, then the place given back: a loop that closes a connection
             * meanwhile either sees the pause (and wakes this loop) or left a place this check
             * sees. */
            l->paused = true;
            listener_enable(l, false);
            seq_cst_store_bool(&s->paused, true);
            if (slot_give_size(s->total_conns) < s->max_conns)
                server_resume(s);
            return 0;
        }
        int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            int e = errno;
            relaxed_sub_size(s->total_conns, 1);
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM)
                accept_back_off(s, e);
            /* EAGAIN: the queue is empty (or another loop took it); ECONNABORTED and the like:
             * that client is gone */
            break;
        }
        if (!clock_synced) {
            uv_update_time(s->loop); /* from sd-event: uv-event.h */
            clock_synced = true;
        }
        server_adopt(s, cfd, l->is_unix);
        if (s->draining || !l->open)
            break; /* an answer to h2o_accept may have started the drain */
    }
    /* libuv registers the new sockets in its epoll only when it next runs: at once, so that
     * their first bytes are read now, not at its next event or timer. */
    if (clock_synced)
        (void)uv_run(s->loop, UV_RUN_NOWAIT);
    return 0;
}

/* Takes fd: it is the listener's from here on, or closed when the listener cannot start. */
static int listener_start(Server *s, Listener *l, int fd, bool is_unix)
{
    l->server = s;
    l->is_unix = is_unix;
    l->fd = fd;
    l->open = true;
    /* Several loops wake for one connection: the others' accept must not block. (The flag is
     * the open file description's, so every loop's descriptor of the socket has it.) */
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
        return -errno;
    int r = sd_event_add_io(s->event, &l->io, fd, EPOLLIN, on_listener_io, l);
    if (r < 0)
        return r;
    (void)sd_event_source_set_description(l->io, "listener");
    /* Before libuv's source, which a busy client keeps pending at every turn: new clients are
     * let in however busy the loop is. */
    (void)sd_event_source_set_priority(l->io, SD_EVENT_PRIORITY_IMPORTANT);
    return 0;
}

/* The time limits libh2o 2.2.5 lacks, of every connection: the write timeout and, with
 * HTTP2=on, HTTP/2's request and answer timeouts; and the end of a lingering close. */
static void on_sweep(uv_timer_t *timer)
{
    Server *s = timer->data;
    uint64_t now = uv_now(s->loop);
    uint64_t *closed = s->errors.metrics ? &s->errors.metrics->write_timeouts : NULL;
    bool http2 = s->globalconf.http1.upgrade_to_http2;
    struct timeval wall; /* libh2o's request timestamps are the wall clock's */
    if (http2)
        gettimeofday(&wall, NULL);
    for (h2o_linklist_t *l = s->conns.next; l != &s->conns; l = l->next) {
        Conn *c = H2O_STRUCT_FROM_MEMBER(Conn, link, l);
        linger_check(c, now);
        if (!c->sock || uv_is_closing(&c->h.handle))
            continue;
        write_timeout_check(c, now, REQUEST_TIMEOUT_MS, closed);
        if (http2)
            http2_limits_check(c, &wall, REQUEST_TIMEOUT_MS);
    }
}

static int sweep_start(Server *s)
{
    int r = uv_timer_init(s->loop, &s->sweep);
    if (r < 0)
        return r;
    s->sweep.data = s;
    s->sweep_on = true;
    /* Only open connections need it, and they keep the loop alive themselves: a loop without
     * any does not wake every second for it. */
    uv_unref((uv_handle_t *)&s->sweep);
    return uv_timer_start(&s->sweep, on_sweep, SWEEP_INTERVAL_MS, SWEEP_INTERVAL_MS);
}

int server_listen(Server *s, const ListenFds *fds)
{
    assert(s);
    assert(s->loop);

    h2o_context_init(&s->ctx, s->loop, &s->globalconf);
    s->ctx_initialized = true;
    int r = sweep_start(s);
    if (r < 0)
        return r;

    s->socket_activated = fds->socket_activated;
    s->listeners = calloc(fds->n, sizeof(Listener));
    if (!s->listeners)
        return -ENOMEM;
    for (size_t i = 0; i < fds->n; i++) {
        /* Each loop its own descriptor of the one socket: libuv owns and closes it. */
        int fd = fcntl(fds->fds[i], F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
            return -errno;
        s->n_listeners = i + 1;
        r = listener_start(s, &s->listeners[i], fd, fds->is_unix[i]);
        if (r < 0)
            return r;
    }
    return (int)fds->n;
}

static void describe_one(const Listener *l, char *buf, size_t n)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int r = getsockname(l->fd, (struct sockaddr *)&ss, &len);
    if (l->is_unix) {
        const struct sockaddr_un *u = (const struct sockaddr_un *)&ss;
        if (r == 0 && len > offsetof(struct sockaddr_un, sun_path) && u->sun_path[0])
            snprintf(buf, n, "unix:%.*s", (int)(len - offsetof(struct sockaddr_un, sun_path)),
                     u->sun_path);
        else
            snprintf(buf, n, "unix");
        return;
    }
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (r == 0 && ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
        snprintf(buf, n, "[%s]:%u", host, port);
    } else if (r == 0 && ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
        snprintf(buf, n, "%s:%u", host, port);
    } else
        snprintf(buf, n, "?");
}

void server_describe(const Server *s, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < s->n_listeners && used + 1 < n; i++) {
        char one[160];
        describe_one(&s->listeners[i], one, sizeof(one));
        int k = snprintf(buf + used, n - used, "%s%s", i ? ", " : "", one);
        if (k < 0)
            break;
        used += (size_t)k;
    }
}

static void stop_listening(Server *s)
{
    for (size_t i = 0; i < s->n_listeners; i++)
        if (s->listeners[i].open) {
            s->listeners[i].open = false;
            s->listeners[i].io = sd_event_source_disable_unref(s->listeners[i].io);
            close(s->listeners[i].fd);
        }
}

void server_drain(Server *s)
{
    if (s->draining)
        return;
    s->draining = true;
    stop_listening(s);
    if (!s->ctx_initialized)
        return; /* never listened */
    h2o_context_request_shutdown(&s->ctx);
    for (h2o_linklist_t *l = s->conns.next; l != &s->conns; l = l->next) {
        Conn *c = H2O_STRUCT_FROM_MEMBER(Conn, link, l);
        if (c->lingering)
            linger_end(c); /* nobody waits for it */
        else if (c->pending == 0)
            conn_close_when_idle(c);
    }
}

void server_done(Server *s)
{
    if (!s->loop)
        return;
    stop_listening(s);
    s->accept_retry = sd_event_source_disable_unref(s->accept_retry);
    if (s->sweep_on) {
        s->sweep_on = false;
        uv_close((uv_handle_t *)&s->sweep, NULL); /* the uv loop runs afterwards to close it */
    }
    /* h2o asserts when a context with open connections is disposed: after a forced shutdown
     * those are left to the process exit. */
    if (s->ctx_initialized && s->n_conns == 0) {
        h2o_timeout_unlink(&s->ctx.http2._graceful_shutdown_timeout);
        h2o_context_dispose(&s->ctx);
        s->ctx_initialized = false;
    }
    if (!s->ctx_initialized)
        h2o_config_dispose(&s->globalconf);
    free(s->listeners);
    s->listeners = NULL;
    s->n_listeners = 0;
}

void server_refuse_pending(const char *message)
{
    int n = sd_listen_fds(0);
    for (int i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        if (sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0)
            continue;
        for (int k = 0; k < 1024; k++) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, 0) <= 0)
                break;
            int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (c < 0)
                break;
            raw_answer_error(c, 503, message);
            close(c);
        }
    }
}
