/* SPDX-License-Identifier: MIT */
/* curl-floor: what libcurl alone costs, as a floor under the service's /enqueue.
 *
 * It does only the upstream half of forwarding, the way src/worker/worker-call.c does it (multi
 * socket API, pooled easy handles, the same options and headers, keep-alive) on a bare epoll loop:
 * no HTTP server, no sd-event, no JSON, no logs. It keeps CONNECTIONS POSTs in flight against URL
 * for SECONDS and prints one line:
 *
 *   FLOOR <requests/s> <CPU µs per request> <non-2xx> <RSS KiB after curl_global_init>
 *
 * bench/run.sh compares the CPU per request with the daemon's and nginx's in the same run.
 * Usage: curl-floor URL SECONDS CONNECTIONS */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "floor.h"

typedef struct {
    CURL *easy;
    struct curl_slist headers[3];
    char body[64];
} Call;

typedef struct {
    CURLM *multi;
    int epfd;
    long timeout_ms;
    unsigned long done, failed, counter;
    const char *url;
} Floor;

static size_t discard(char *p, size_t s, size_t n, void *u)
{
    (void)p, (void)u;
    return s * n;
}

static int on_socket(CURL *e, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)e;
    Floor *f = userp;
    struct epoll_event ev = {.events = EPOLLET, .data.fd = fd};
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(f->epfd, EPOLL_CTL_DEL, fd, NULL);
        curl_multi_assign(f->multi, fd, NULL);
        return 0;
    }
    if (what & CURL_POLL_IN)
        ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT)
        ev.events |= EPOLLOUT;
    if (socketp)
        return epoll_ctl(f->epfd, EPOLL_CTL_MOD, fd, &ev);
    curl_multi_assign(f->multi, fd, f);
    return epoll_ctl(f->epfd, EPOLL_CTL_ADD, fd, &ev);
}

static int on_timer(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    ((Floor *)userp)->timeout_ms = timeout_ms;
    return 0;
}

static void start(Floor *f, Call *c)
{
    int n = snprintf(c->body, sizeof(c->body), "{\"placeId\":\"floor-%lu\"}", ++f->counter);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE, (long)n);
    curl_multi_add_handle(f->multi, c->easy);
}

static Call *call_new(Floor *f)
{
    Call *c = calloc(1, sizeof(*c));
    if (!c || !(c->easy = curl_easy_init()))
        exit(1);
    c->headers[0] = (struct curl_slist){(char *)"Content-Type: application/json", &c->headers[1]};
    c->headers[1] = (struct curl_slist){(char *)"X-Request-Id: floor", &c->headers[2]};
    c->headers[2] = (struct curl_slist){(char *)"Expect:", NULL};
    CURL *e = c->easy;
    curl_easy_setopt(e, CURLOPT_URL, f->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "argus-orchestrator");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 4096L);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    return c;
}

static void drain(Floor *f, int restart)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(f->multi, &left)))
        if (m->msg == CURLMSG_DONE) {
            Call *c;
            long status = 0;
            curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&c);
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
            CURLcode result = m->data.result;
            curl_multi_remove_handle(f->multi, c->easy);
            f->done++;
            if (result != CURLE_OK || status < 200 || status > 299)
                f->failed++;
            if (restart)
                start(f, c);
        }
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s URL SECONDS CONNECTIONS\n", argv[0]);
        return 2;
    }
    double secs = atof(argv[2]);
    int conns = atoi(argv[3]);
    if (secs <= 0 || conns <= 0)
        return 2;
    curl_global_init(CURL_GLOBAL_DEFAULT);
    long rss = floor_rss_kib();
    Floor f = {.multi = curl_multi_init(),
               .epfd = epoll_create1(EPOLL_CLOEXEC),
               .timeout_ms = -1,
               .url = argv[1]};
    curl_multi_setopt(f.multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(f.multi, CURLMOPT_SOCKETDATA, &f);
    curl_multi_setopt(f.multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(f.multi, CURLMOPT_TIMERDATA, &f);
    curl_multi_setopt(f.multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)conns);
    curl_multi_setopt(f.multi, CURLMOPT_MAXCONNECTS, (long)conns);

    Call **calls = calloc((size_t)conns, sizeof(*calls));
    for (int i = 0; i < conns; i++)
        start(&f, calls[i] = call_new(&f));

    FloorClock start_clock = floor_clock();
    double end = start_clock.wall_s + secs, t;
    int running = 1;
    /* Runs for SECONDS, then lets what is in flight finish (bounded by CURLOPT_TIMEOUT_MS). */
    while ((t = floor_now_s()) < end || running > 0) {
        int restart = t < end;
        struct epoll_event ev[64];
        int n = epoll_wait(f.epfd, ev, 64, f.timeout_ms < 0 ? 100 : (int)f.timeout_ms);
        if (n == 0 || f.timeout_ms == 0)
            curl_multi_socket_action(f.multi, CURL_SOCKET_TIMEOUT, 0, &running);
        for (int i = 0; i < n; i++) {
            int action = (ev[i].events & (EPOLLIN | EPOLLHUP) ? CURL_CSELECT_IN : 0) |
                         (ev[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
                         (ev[i].events & EPOLLERR ? CURL_CSELECT_ERR : 0);
            curl_multi_socket_action(f.multi, ev[i].data.fd, action, &running);
        }
        drain(&f, restart);
    }
    floor_report(start_clock, f.done, f.failed, rss);

    for (int i = 0; i < conns; i++) {
        curl_easy_cleanup(calls[i]->easy);
        free(calls[i]);
    }
    free(calls);
    curl_multi_cleanup(f.multi);
    curl_global_cleanup();
    return f.failed ? 1 : 0;
}
