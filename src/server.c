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
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "error-filter.h"
#include "http2-limits.h"
#include "log.h"
#include "macro.h"
#include "raw-answer.h"
#include "read-guard.h"

#define REQUEST_TIMEOUT_MS 10000
#define LISTEN_BACKLOG 4096

int server_init(Server *s, const Config *c, uv_loop_t *loop)
{
    memset(s, 0, sizeof(*s));
    s->loop = loop;
    h2o_linklist_init_anchor(&s->conns);

    h2o_config_init(&s->globalconf);
    s->globalconf.server_name = h2o_iovec_init(H2O_STRLIT("argus-orchestrator"));
    s->globalconf.max_request_entity_size = c->max_body_bytes;
    s->globalconf.http1.req_timeout = REQUEST_TIMEOUT_MS;
    s->globalconf.http1.upgrade_to_http2 = c->http2;
    s->globalconf.http2.idle_timeout = REQUEST_TIMEOUT_MS;

    h2o_hostconf_t *host =
        h2o_config_register_host(&s->globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    s->pathconf = h2o_config_register_path(host, "/", 0);
    /* h2o answers some errors itself (malformed requests, 413) from the host's fallback path:
     * both paths get the filter that gives those answers the JSON shape of README.md's "API". */
    error_filter_init(&s->errors);
    error_filter_register(s->pathconf, &s->errors);
    error_filter_register(&host->fallback_path, &s->errors);

    s->max_conns = c->max_connections;
    s->total_conns = &s->own_total;
    s->accept_ctx.ctx = &s->ctx;
    s->accept_ctx.hosts = s->globalconf.hosts;
    return 0;
}

static void on_connection(uv_stream_t *listener, int status);

void server_resume(Server *s)
{
    if (s->draining || !__atomic_load_n(&s->paused, __ATOMIC_RELAXED))
        return;
    __atomic_store_n(&s->paused, false, __ATOMIC_RELAXED);
    for (size_t i = 0; i < s->n_listeners; i++) {
        Listener *l = &s->listeners[i];
        if (l->paused && l->open) {
            l->paused = false;
            on_connection(&l->h.stream, 0); /* pauses again when at the cap */
        }
    }
}

static void on_conn_closed(uv_handle_t *h)
{
    Conn *c = (Conn *)h;
    Server *s = c->server;
    h2o_linklist_unlink(&c->link);
    __atomic_store_n(&s->n_conns, s->n_conns - 1, __ATOMIC_RELAXED);
    bool was_full = __atomic_fetch_sub(s->total_conns, 1, __ATOMIC_RELAXED) >= s->max_conns;
    free(c);
    if (!s->draining)
        server_resume(s);
    if (was_full && s->on_slot_free)
        s->on_slot_free(s, s->userdata);
    if (s->on_conn_change)
        s->on_conn_change(s, s->userdata);
}

/* Ends a connection through h2o's own path: after SHUT_RD its next read sees EOF, so h2o closes
 * it once any response it is writing has been sent. */
static void conn_close_when_idle(Conn *c)
{
    uv_os_fd_t fd;
    if (uv_fileno(&c->h.handle, &fd) == 0)
        (void)shutdown(fd, SHUT_RD);
}

static void on_connection(uv_stream_t *listener, int status)
{
    Listener *l = (Listener *)listener;
    Server *s = l->server;
    if (status < 0) {
        log_warn(NULL, LOG_FIELDS(.error = uv_strerror(status)), "accept failed: %s",
                 uv_strerror(status));
        return;
    }

    /* At the cap, leave the connection unaccepted: libuv then stops watching the listener and
     * the others wait in the kernel's backlog (or systemd's socket) until a slot frees. The cap
     * counts every loop's connections. */
    if (__atomic_add_fetch(s->total_conns, 1, __ATOMIC_RELAXED) > s->max_conns) {
        __atomic_sub_fetch(s->total_conns, 1, __ATOMIC_RELAXED);
        l->paused = true;
        __atomic_store_n(&s->paused, true, __ATOMIC_RELAXED);
        return;
    }

    Conn *c = calloc(1, sizeof(*c));
    int r =
        c ? (l->is_unix ? uv_pipe_init(s->loop, &c->h.pipe, 0) : uv_tcp_init(s->loop, &c->h.tcp))
          : -ENOMEM;
    if (r < 0) {
        __atomic_sub_fetch(s->total_conns, 1, __ATOMIC_RELAXED);
        free(c);
        return;
    }
    c->server = s;
    c->errors = &s->errors;
    h2o_linklist_insert(&s->conns, &c->link);
    __atomic_store_n(&s->n_conns, s->n_conns + 1, __ATOMIC_RELAXED);
    if (s->errors.metrics)
        metrics_inc(&s->errors.metrics->connections_accepted);
    if (uv_accept(listener, &c->h.stream) < 0) {
        uv_close(&c->h.handle, on_conn_closed);
        return;
    }
    if (!l->is_unix)
        (void)uv_tcp_nodelay(&c->h.tcp, 1);

    c->sock = h2o_uv_socket_create(&c->h.stream, on_conn_closed);
    c->sock->on_close.data = c;
    read_guard_attach(c);
    c->sock->on_close.cb = error_filter_on_socket_close; /* h2o's 400 that no filter sees */
    if (s->on_conn_change)
        s->on_conn_change(s, s->userdata);
    h2o_accept(&s->accept_ctx, c->sock);
}

/* Takes fd: it is the listener's from here on, or closed when the listener cannot start. */
static int listener_start(Server *s, Listener *l, int fd, bool is_unix)
{
    _cleanup_close_ int owned = fd;
    l->server = s;
    l->is_unix = is_unix;
    int r = is_unix ? uv_pipe_init(s->loop, &l->h.pipe, 0) : uv_tcp_init(s->loop, &l->h.tcp);
    if (r < 0)
        return r;
    l->open = true;
    r = is_unix ? uv_pipe_open(&l->h.pipe, owned) : uv_tcp_open(&l->h.tcp, owned);
    if (r < 0)
        return r;
    TAKE_FD(owned);
    return uv_listen(&l->h.stream, LISTEN_BACKLOG, on_connection);
}

static int bind_port(uint16_t port)
{
    _cleanup_close_ int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int on = 1, off = 0;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
    struct sockaddr_in6 sa = {
        .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT};
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
        return -errno;
    return TAKE_FD(fd);
}

void listen_fds_done(ListenFds *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->fds[i] >= 0)
            close(l->fds[i]);
    free(l->fds);
    free(l->is_unix);
    *l = (ListenFds){0};
}

static int listen_fds_alloc(ListenFds *l, size_t n)
{
    l->fds = calloc(n, sizeof(int));
    l->is_unix = calloc(n, sizeof(bool));
    if (!l->fds || !l->is_unix)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        l->fds[i] = -EBADF;
    l->n = n;
    return 0;
}

int listen_fds_collect(ListenFds *ret, uint16_t port)
{
    *ret = (ListenFds){0};
    char **names = NULL;
    int n = sd_listen_fds_with_names(1, &names);
    if (n < 0)
        return n;
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);

    int r = listen_fds_alloc(ret, n > 0 ? (size_t)n : 1);
    if (r < 0) {
        listen_fds_done(ret);
        return r;
    }
    if (n == 0) {
        ret->fds[0] = bind_port(port);
        if (ret->fds[0] < 0) {
            r = ret->fds[0];
            listen_fds_done(ret);
            return r;
        }
        return 1;
    }
    ret->socket_activated = true;
    for (int i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        ret->fds[i] = fd;
        if (sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1) > 0)
            ret->is_unix[i] = true;
        else if (sd_is_socket(fd, AF_INET, SOCK_STREAM, 1) <= 0 &&
                 sd_is_socket(fd, AF_INET6, SOCK_STREAM, 1) <= 0) {
            listen_fds_done(ret);
            return -ENOTSOCK;
        }
    }
    return n;
}

int server_listen(Server *s, const ListenFds *fds)
{
    assert(s);
    assert(s->loop);

    h2o_context_init(&s->ctx, s->loop, &s->globalconf);
    s->ctx_initialized = true;
    if (s->globalconf.http1.upgrade_to_http2) {
        int r = http2_limits_start(&s->h2_limits, s->loop, &s->ctx, REQUEST_TIMEOUT_MS);
        if (r < 0)
            return r;
    }

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
        int r = listener_start(s, &s->listeners[i], fd, fds->is_unix[i]);
        if (r < 0)
            return r;
    }
    return (int)fds->n;
}

static void describe_one(const Listener *l, char *buf, size_t n)
{
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    int r = l->is_unix ? 0 : uv_tcp_getsockname(&l->h.tcp, (struct sockaddr *)&ss, &len);
    if (l->is_unix) {
        char path[108];
        size_t pl = sizeof(path);
        if (uv_pipe_getsockname(&l->h.pipe, path, &pl) == 0)
            snprintf(buf, n, "unix:%.*s", (int)pl, path);
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
            uv_close(&s->listeners[i].h.handle, NULL);
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
        if (c->pending == 0)
            conn_close_when_idle(c);
    }
}

void server_request_framing(h2o_req_t *req, Http1Framing *ret)
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

void server_conn_hold(Conn *c)
{
    if (c)
        c->pending++;
}

void server_conn_release(Conn *c)
{
    if (!c)
        return;
    c->pending--;
    if (c->pending == 0 && c->server->draining)
        conn_close_when_idle(c);
}

void server_done(Server *s)
{
    if (!s->loop)
        return;
    stop_listening(s);
    http2_limits_stop(&s->h2_limits);
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
