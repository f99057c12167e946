/* SPDX-License-Identifier: MIT */
/* h2o-proxy: h2o's own reverse proxy (server and HTTP/1 client of libh2o) on a plain libuv loop.
 *
 * Not the daemon: a comparison for bench/run.sh. It forwards POST /enqueue to the worker
 * stand-in with keep-alive, as nginx proxy does, and does nothing else (no JSON, no logs, no
 * sd-event), so its requests/s show what a forwarder made of the stack's other HTTP client
 * reaches on this machine. It listens on 127.0.0.1:PORT until SIGTERM or SIGINT.
 *
 * Usage: h2o-proxy PORT UPSTREAM-URL (e.g. http://127.0.0.1:3000/enqueue) */
#include <h2o.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static h2o_globalconf_t config;
static h2o_context_t ctx;
static h2o_accept_ctx_t accept_ctx;

static void on_conn_closed(uv_handle_t *h)
{
    free(h);
}

static void on_connection(uv_stream_t *listener, int status)
{
    if (status != 0)
        return;
    uv_tcp_t *conn = malloc(sizeof(*conn));
    if (!conn)
        return;
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, on_conn_closed);
        return;
    }
    h2o_accept(&accept_ctx, h2o_uv_socket_create((uv_stream_t *)conn, on_conn_closed));
}

static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    uv_stop(s->loop);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s PORT UPSTREAM-URL\n", argv[0]);
        return 2;
    }
    h2o_url_t upstream;
    if (h2o_url_parse(argv[2], SIZE_MAX, &upstream) != 0) {
        fprintf(stderr, "h2o-proxy: bad upstream URL %s\n", argv[2]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    h2o_config_init(&config);
    h2o_hostconf_t *host =
        h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/enqueue", 0);
    h2o_proxy_config_vars_t proxy = {.io_timeout = 5000, .keepalive_timeout = 10000};
    h2o_proxy_register_reverse_proxy(path, &upstream, &proxy);

    uv_loop_t loop;
    uv_loop_init(&loop);
    h2o_context_init(&ctx, &loop, &config);
    accept_ctx = (h2o_accept_ctx_t){.ctx = &ctx, .hosts = config.hosts};

    uv_tcp_t listener;
    struct sockaddr_in addr;
    uv_tcp_init(&loop, &listener);
    uv_ip4_addr("127.0.0.1", atoi(argv[1]), &addr);
    if (uv_tcp_bind(&listener, (struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&listener, 4096, on_connection) != 0) {
        fprintf(stderr, "h2o-proxy: cannot listen on 127.0.0.1:%s\n", argv[1]);
        return 1;
    }
    uv_signal_t term, intr;
    uv_signal_init(&loop, &term);
    uv_signal_start(&term, on_signal, SIGTERM);
    uv_signal_init(&loop, &intr);
    uv_signal_start(&intr, on_signal, SIGINT);
    uv_run(&loop, UV_RUN_DEFAULT);
    return 0;
}
