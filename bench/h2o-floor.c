/* SPDX-License-Identifier: MIT */
/* h2o-floor: what libh2o's own HTTP/1 client costs doing what curl-floor does with libcurl.
 *
 * The daemon forwards with libcurl (the chosen stack); libh2o, also in the stack, carries an
 * HTTP/1 client of its own (the one its reverse proxy uses). This drives the worker stand-in
 * with it the way curl-floor drives it with libcurl: CONNECTIONS keep-alive POSTs in flight, the
 * same request headers, on a plain libuv loop with nothing else, so that the two clients'
 * CPU time per request can be set side by side. It prints one line:
 *
 *   FLOOR <requests/s> <CPU µs per request> <non-2xx or failed> <RSS KiB at start>
 *
 * Usage: h2o-floor HOST-IPV4 PORT SECONDS CONNECTIONS */
#include <arpa/inet.h>
#include <h2o.h>
#include <h2o/http1client.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "floor.h"

typedef struct Floor {
    h2o_http1client_ctx_t ctx;
    h2o_socketpool_t pool;
    h2o_timeout_t io_timeout;
    char host[64];
    unsigned long done, failed, counter;
    unsigned in_flight;
    int stopping;
} Floor;

typedef struct Call {
    Floor *f;
    h2o_http1client_t *client; /* h2o's; not ours to touch */
    h2o_iovec_t req;
    char buf[512];
} Call;

static void start(Call *c);

static int on_body(h2o_http1client_t *client, const char *errstr)
{
    Call *c = client->data;
    if (client->sock)
        h2o_buffer_consume(&client->sock->input, client->sock->input->size);
    if (errstr == NULL)
        return 0;
    if (errstr != h2o_http1client_error_is_eos)
        c->f->failed++;
    c->f->done++;
    c->f->in_flight--;
    start(c);
    return 0;
}

static h2o_http1client_body_cb on_head(h2o_http1client_t *client, const char *errstr,
                                       int minor_version, int status, h2o_iovec_t msg,
                                       h2o_header_t *headers, size_t num_headers, int rlen)
{
    (void)minor_version, (void)msg, (void)headers, (void)num_headers, (void)rlen;
    Call *c = client->data;
    if (errstr != NULL || status < 200 || status > 299) {
        c->f->failed++;
        c->f->done++;
        c->f->in_flight--;
        if (errstr == NULL || errstr == h2o_http1client_error_is_eos)
            start(c);
        return NULL;
    }
    return on_body;
}

static h2o_http1client_head_cb on_connect(h2o_http1client_t *client, const char *errstr,
                                          h2o_iovec_t **reqbufs, size_t *reqbufcnt,
                                          int *method_is_head)
{
    Call *c = client->data;
    if (errstr != NULL) {
        fprintf(stderr, "h2o-floor: connect: %s\n", errstr);
        c->f->failed++;
        c->f->in_flight--;
        return NULL;
    }
    *reqbufs = &c->req;
    *reqbufcnt = 1;
    *method_is_head = 0;
    return on_head;
}

/* The request curl-floor's handle sends, byte for byte but for the place id. */
static void start(Call *c)
{
    Floor *f = c->f;
    if (f->stopping)
        return;
    char body[64];
    int bl = snprintf(body, sizeof(body), "{\"placeId\":\"floor-%lu\"}", ++f->counter);
    int n = snprintf(c->buf, sizeof(c->buf),
                     "POST /enqueue HTTP/1.1\r\nHost: %s\r\nUser-Agent: argus-orchestrator\r\n"
                     "Accept: */*\r\nContent-Type: application/json\r\nX-Request-Id: floor\r\n"
                     "Content-Length: %d\r\n\r\n%s",
                     f->host, bl, body);
    c->req = h2o_iovec_init(c->buf, (size_t)n);
    f->in_flight++;
    h2o_http1client_connect_with_pool(&c->client, c, &f->ctx, &f->pool, on_connect);
}

static void on_stop(uv_timer_t *t)
{
    ((Floor *)t->data)->stopping = 1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: %s HOST-IPV4 PORT SECONDS CONNECTIONS\n", argv[0]);
        return 2;
    }
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
    double secs = atof(argv[3]);
    int conns = atoi(argv[4]);
    if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1 || secs <= 0 || conns <= 0)
        return 2;
    long rss = floor_rss_kib();

    uv_loop_t loop;
    uv_loop_init(&loop);
    Floor f = {0};
    snprintf(f.host, sizeof(f.host), "%s:%s", argv[1], argv[2]);
    h2o_timeout_init(&loop, &f.io_timeout, 5000);
    f.ctx = (h2o_http1client_ctx_t){.loop = &loop, .io_timeout = &f.io_timeout};
    h2o_socketpool_init_by_address(&f.pool, (struct sockaddr *)&sin, sizeof(sin), 0, (size_t)conns);
    h2o_socketpool_set_timeout(&f.pool, &loop, 10000);

    Call *calls = calloc((size_t)conns, sizeof(*calls));
    if (!calls)
        return 1;
    uv_timer_t stop;
    uv_timer_init(&loop, &stop);
    stop.data = &f;
    uv_timer_start(&stop, on_stop, (uint64_t)(secs * 1000), 0);

    FloorClock start_clock = floor_clock();
    for (int i = 0; i < conns; i++) {
        calls[i].f = &f;
        start(&calls[i]);
    }
    /* Runs for SECONDS, then lets what is in flight finish (bounded by the io timeout). */
    while (!f.stopping || f.in_flight > 0)
        uv_run(&loop, UV_RUN_ONCE);
    floor_report(start_clock, f.done, f.failed, rss);
    free(calls);
    return f.failed ? 1 : 0;
}
