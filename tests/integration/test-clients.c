/* SPDX-License-Identifier: MIT */
/* Slow, hostile and odd clients: a connection cap that queues instead of refusing, clients
 * trickling bytes or never reading the answers, malformed HTTP, chunked bodies over the limit,
 * HTTP/2 while it is off. */
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static void start(Service *svc, const char *a, const char *b)
{
    service_start_for_group(svc, a, b, NULL);
    /* start it (systemd-socket-activate waits for a first connection) */
    char url[128];
    snprintf(url, sizeof(url), "%s/health", svc->base);
    Response r = http_request("GET", url, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    response_free(&r);
    assert_true(service_wait_notify(svc, "READY=1", 5000));
}

static void stop(Service *svc)
{
    assert_int_equal(service_stop(svc, SIGTERM), 0);
    service_cleanup(svc);
}

typedef struct Pending {
    char url[128];
    long status;     /* read after pthread_join */
    atomic_int done; /* read while the thread runs */
} Pending;

static void *get_health(void *arg)
{
    Pending *p = arg;
    Response r = http_request("GET", p->url, NULL, NULL, NULL);
    p->status = r.status;
    response_free(&r);
    atomic_store(&p->done, 1);
    return NULL;
}

/* At MAX_CONNECTIONS the next client waits (it is not refused) and is served once a slot
 * frees. */
static void test_connection_cap_queues(void **state)
{
    (void)state;
    Service svc;
    start(&svc, "MAX_CONNECTIONS=4", NULL);
    int held[4];
    for (int i = 0; i < 4; i++)
        held[i] = raw_connect(svc.port);
    usleep(200 * 1000); /* let the daemon accept all four */

    Pending p = {0};
    snprintf(p.url, sizeof(p.url), "%s/health", svc.base);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, get_health, &p), 0);
    usleep(500 * 1000);
    assert_int_equal(atomic_load(&p.done), 0); /* waiting for a slot */

    close(held[0]);
    pthread_join(t, NULL);
    assert_int_equal(p.status, 200);
    for (int i = 1; i < 4; i++)
        close(held[i]);
    stop(&svc);
}

#define TRICKLERS 200

/* Hundreds of clients that send half a request and stall do not keep others from being served. */
static void test_trickling_clients_do_not_block_others(void **state)
{
    (void)state;
    Service svc;
    start(&svc, NULL, NULL);
    static int fds[TRICKLERS];
    static const char part[] = "POST /enqueue HTTP/1.1\r\nHost: x\r\nContent-Le";
    for (int i = 0; i < TRICKLERS; i++) {
        fds[i] = raw_connect(svc.port);
        assert_int_equal(write(fds[i], part, sizeof(part) - 1), (ssize_t)sizeof(part) - 1);
    }
    for (int i = 0; i < 5; i++) {
        Response r = http_post_json(&svc, "/enqueue", "{\"placeId\":\"beside-tricklers\"}");
        assert_int_equal(r.status, 202);
        response_free(&r);
    }
    for (int i = 0; i < TRICKLERS; i++)
        close(fds[i]);
    stop(&svc);
}

/* A client that never finishes its headers, and one that never finishes its body, are closed
 * after h2o's 10 s request timeout (both wait at once). */
static void test_slow_headers_and_bodies_are_closed(void **state)
{
    (void)state;
    Service svc;
    start(&svc, NULL, NULL);
    static const char *parts[] = {
        "POST /enqueue HTTP/1.1\r\nHost: x\r\n",
        "POST /enqueue HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: 100\r\n\r\n{\"placeId\":",
    };
    int fds[2];
    for (int i = 0; i < 2; i++) {
        fds[i] = raw_connect(svc.port);
        assert_int_equal(write(fds[i], parts[i], strlen(parts[i])), (ssize_t)strlen(parts[i]));
    }
    for (int i = 0; i < 2; i++) {
        char buf[1024];
        raw_read(fds[i], buf, sizeof(buf), 15000); /* returns when the daemon closes */
        if (!peer_closed(fds[i], 0))
            fail_msg("connection %d still open after 15 s", i);
        close(fds[i]);
    }
    Response r = http_post_json(&svc, "/enqueue", "{\"placeId\":\"after-slow-clients\"}");
    assert_int_equal(r.status, 202);
    response_free(&r);
    stop(&svc);
}

#define PIPELINED 50000

/* Pipelines `n` GET /health at fd (non-blocking) until all are sent or the daemon has not taken
 * a byte for a second: it stopped reading. Returns the requests sent. */
static size_t pipeline_health(int fd, size_t n)
{
    static const char req[] = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    size_t len = sizeof(req) - 1, total = n * len, sent = 0;
    char *buf = malloc(total);
    assert_non_null(buf);
    for (size_t i = 0; i < n; i++)
        memcpy(buf + i * len, req, len);
    while (sent < total) {
        ssize_t k = send(fd, buf + sent, total - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            sent += (size_t)k;
            continue;
        }
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (k < 0 && errno == EAGAIN && poll(&p, 1, 1000) > 0)
            continue;
        break;
    }
    free(buf);
    return sent / len;
}

/* A client with a small receive buffer that pipelines GET /health and never reads: the
 * daemon's answers fill both socket buffers, and its write stalls. */
static int non_reading_client(const Service *svc, size_t *ret_sent)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int small = 4096; /* before connect: it sets the window the connection starts with */
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)svc->port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    *ret_sent = pipeline_health(fd, PIPELINED);
    assert_true(*ret_sent > 1000);
    return fd;
}

/* A client that sends requests but never reads the answers: once its receive buffer and the
 * daemon's send buffer are full, the answer waits to be written, and after 10 s of that the
 * daemon closes the connection (libh2o alone kept it for ever). Others are served meanwhile. */
static void test_non_reading_client_is_closed(void **state)
{
    (void)state;
    Service svc;
    start(&svc, NULL, NULL);
    size_t sent;
    int fd = non_reading_client(&svc, &sent);
    long long stalled_at = now_ms();

    Response r = service_get(&svc, "/health");
    assert_int_equal(r.status, 200);
    response_free(&r);
    /* open: the stalled one and the scrape's own; closed, the scrape's alone */
    assert_true(service_metric(&svc, "argus_connections_open") >= 2);
    long long closed_at = service_wait_metric(&svc, "argus_connections_open", 1,
                                              (int)(25000 - (now_ms() - stalled_at)))
                              ? now_ms()
                              : 0;
    if (!closed_at || closed_at - stalled_at < 5000) {
        close(fd);
        service_cleanup(&svc); /* its drain would wait for the connection too */
        if (!closed_at)
            fail_msg("a client that does not read still connected after 25 s (%zu requests sent)",
                     sent);
        fail_msg("closed after %lld ms: sooner than the timeout", closed_at - stalled_at);
    }
    assert_true(service_metric(&svc, "argus_write_timeouts_total") == 1);
    assert_true(service_log_contains(&svc, "client stopped reading its answers"));
    /* reset, not a FIN queued behind the answers it never takes */
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    assert_int_equal(poll(&p, 1, 2000), 1);
    assert_true(p.revents & (POLLHUP | POLLERR));
    close(fd);
    stop(&svc);
}

/* A client that reads its backlog slowly (40 KB/s, less than a third of the send buffer the
 * kernel grows to in 10 s, so libuv's write stands still meanwhile) is not taken for one that
 * stopped reading. */
static void test_slow_reader_is_not_closed(void **state)
{
    (void)state;
    Service svc;
    start(&svc, NULL, NULL);
    size_t sent;
    int fd = non_reading_client(&svc, &sent);
    char buf[4096];
    size_t got = 0;
    bool reset = false;
    for (long long t0 = now_ms(); now_ms() - t0 < 15000 && !reset;) {
        ssize_t k = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (k > 0)
            got += (size_t)k;
        else if (k == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
            reset = true;
        usleep(100 * 1000);
    }
    long long timeouts = service_metric(&svc, "argus_write_timeouts_total");
    close(fd);
    if (reset || timeouts != 0) {
        service_cleanup(&svc);
        fail_msg("a client reading 40 KB/s was closed (%zu bytes read of the answers to %zu "
                 "requests, %lld write timeouts)",
                 got, sent, timeouts);
    }
    assert_true(got > 100 * 1000);
    stop(&svc);
}

/* Nor does such a client hold the drain on SIGTERM until the shutdown timeout (here longer
 * than the wait): it has no request pending, but its answer never leaves. */
static void test_non_reading_client_does_not_hold_the_drain(void **state)
{
    (void)state;
    Service svc;
    start(&svc, "SHUTDOWN_TIMEOUT_SEC=60", NULL);
    size_t sent;
    int fd = non_reading_client(&svc, &sent);
    long long stalled_at = now_ms();
    kill(svc.pid, SIGTERM);
    int status = service_wait_exit(&svc, 25000);
    long long exited_after = now_ms() - stalled_at;
    close(fd);
    service_cleanup(&svc);
    if (status != 0)
        fail_msg("the daemon did not exit 0 within 25 s of SIGTERM (status %d)", status);
    if (exited_after < 5000)
        fail_msg("exited after %lld ms: sooner than the timeout", exited_after);
}

static void test_malformed_http_is_400_and_closed(void **state)
{
    (void)state;
    Service svc;
    start(&svc, NULL, NULL);
    static const char *garbage[] = {
        "GARBAGE\r\n\r\n",
        "GET /health HTTP/1.1\r\nHost x\r\n\r\n",
        "POST /enqueue HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        "POST /enqueue HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    };
    for (size_t i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
        int fd = raw_connect(svc.port);
        assert_int_equal(write(fd, garbage[i], strlen(garbage[i])), (ssize_t)strlen(garbage[i]));
        char buf[4096];
        raw_read(fd, buf, sizeof(buf), 5000);
        if (strncmp(buf, "HTTP/1.1 400", 12) != 0)
            fail_msg("request %zu answered: %.60s", i, buf);
        close(fd);
    }
    Response r = http_post_json(&svc, "/enqueue", "{\"placeId\":\"after-garbage\"}");
    assert_int_equal(r.status, 202);
    response_free(&r);
    stop(&svc);
}

static void test_chunked_body_over_limit_is_413(void **state)
{
    (void)state;
    Service svc;
    start(&svc, "MAX_BODY_BYTES=256", NULL);
    int fd = raw_connect(svc.port);
    char req[2048];
    int n = snprintf(req, sizeof(req),
                     "POST /enqueue HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 4; i++)
        n += snprintf(req + n, sizeof(req) - (size_t)n, "100\r\n%0256d\r\n", 0);
    n += snprintf(req + n, sizeof(req) - (size_t)n, "0\r\n\r\n");
    (void)!write(fd, req, (size_t)n);
    char buf[4096];
    raw_read(fd, buf, sizeof(buf), 5000);
    if (strncmp(buf, "HTTP/1.1 413", 12) != 0)
        fail_msg("answered: %.80s", buf);
    assert_non_null(strstr(buf, "\"error\":\"request body too large\""));
    assert_non_null(strstr(buf, "application/json"));
    close(fd);
    stop(&svc);
}

static long http2_prior_knowledge(const Service *svc, long *ret_version)
{
    CURL *c = curl_easy_init();
    char url[128];
    snprintf(url, sizeof(url), "%s/health", svc->base);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    FILE *devnull = fopen("/dev/null", "we");
    curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(c, CURLINFO_HTTP_VERSION, ret_version);
    curl_easy_cleanup(c);
    fclose(devnull);
    return status;
}

static void test_http2_only_when_on(void **state)
{
    (void)state;
    curl_version_info_data *v = curl_version_info(CURLVERSION_NOW);
    if (!(v->features & CURL_VERSION_HTTP2))
        skip();
    long version = 0;
    Service off;
    start(&off, NULL, NULL);
    assert_int_equal(http2_prior_knowledge(&off, &version), 0); /* refused */
    Response r = http_post_json(&off, "/enqueue", "{\"placeId\":\"h2-off-still-serves\"}");
    assert_int_equal(r.status, 202);
    response_free(&r);
    stop(&off);

    Service on;
    start(&on, "HTTP2=on", NULL);
    assert_int_equal(http2_prior_knowledge(&on, &version), 200);
    assert_int_equal(version, CURL_HTTP_VERSION_2_0);
    stop(&on);
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connection_cap_queues),
        cmocka_unit_test(test_trickling_clients_do_not_block_others),
        cmocka_unit_test(test_slow_headers_and_bodies_are_closed),
        cmocka_unit_test(test_non_reading_client_is_closed),
        cmocka_unit_test(test_non_reading_client_does_not_hold_the_drain),
        cmocka_unit_test(test_slow_reader_is_not_closed),
        cmocka_unit_test(test_malformed_http_is_400_and_closed),
        cmocka_unit_test(test_chunked_body_over_limit_is_413),
        cmocka_unit_test(test_http2_only_when_on),
    };
    return cmocka_run_group_tests(tests, standin_group_setup, standin_group_teardown);
}
