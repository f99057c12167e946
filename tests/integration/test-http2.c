/* SPDX-License-Identifier: MIT */
/* HTTP/2 when on (README, "Limits"): the rapid-reset flood (HEADERS + DATA + RST_STREAM in a
 * loop) leaves the daemon bounded and answering, a request that never finishes is closed like
 * HTTP/1's, and a header block over the head limit is closed. The frames are written here by
 * hand (HPACK literals without Huffman coding), so any byte sequence can be sent. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define FRAME_DATA 0x0
#define FRAME_HEADERS 0x1
#define FRAME_RST_STREAM 0x3
#define FRAME_SETTINGS 0x4
#define FRAME_PING 0x6
#define FRAME_CONTINUATION 0x9
#define FLAG_END_STREAM 0x1
#define FLAG_END_HEADERS 0x4

typedef struct Buf {
    uint8_t *p;
    size_t len, cap;
} Buf;

static void put(Buf *b, const void *data, size_t n)
{
    if (n == 0)
        return;
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2;
        b->p = realloc(b->p, b->cap);
        assert_non_null(b->p);
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void frame(Buf *b, uint8_t type, uint8_t flags, uint32_t stream, const void *payload,
                  size_t n)
{
    uint8_t h[9] = {(uint8_t)(n >> 16),
                    (uint8_t)(n >> 8),
                    (uint8_t)n,
                    type,
                    flags,
                    (uint8_t)(stream >> 24),
                    (uint8_t)(stream >> 16),
                    (uint8_t)(stream >> 8),
                    (uint8_t)stream};
    put(b, h, 9);
    put(b, payload, n);
}

/* An HPACK string literal (no Huffman coding) after its length, an integer with a 7-bit prefix. */
static void hpack_string(Buf *b, const char *s, size_t n)
{
    uint8_t c = n < 127 ? (uint8_t)n : 127;
    put(b, &c, 1);
    if (n >= 127) {
        size_t i = n - 127;
        for (; i >= 128; i /= 128) {
            c = (uint8_t)(i % 128 + 128);
            put(b, &c, 1);
        }
        c = (uint8_t)i;
        put(b, &c, 1);
    }
    put(b, s, n);
}

/* A literal header field without indexing, with a literal name. */
static void hpack_field(Buf *b, const char *name, const char *value)
{
    uint8_t zero = 0;
    put(b, &zero, 1);
    hpack_string(b, name, strlen(name));
    hpack_string(b, value, strlen(value));
}

static void request_headers(Buf *b, uint32_t stream, const char *method, const char *path,
                            bool end_stream)
{
    Buf block = {0};
    hpack_field(&block, ":method", method);
    hpack_field(&block, ":scheme", "http");
    hpack_field(&block, ":path", path);
    hpack_field(&block, ":authority", "t");
    if (strcmp(method, "POST") == 0)
        hpack_field(&block, "content-type", "application/json");
    frame(b, FRAME_HEADERS, FLAG_END_HEADERS | (end_stream ? FLAG_END_STREAM : 0), stream, block.p,
          block.len);
    free(block.p);
}

static void job_frames(Buf *b, uint32_t stream, const char *place, bool reset)
{
    char body[256];
    int n = snprintf(body, sizeof(body), "{\"placeId\":\"%s\"}", place);
    request_headers(b, stream, "POST", "/enqueue", false);
    frame(b, FRAME_DATA, FLAG_END_STREAM, stream, body, (size_t)n);
    if (reset) {
        uint8_t cancel[4] = {0, 0, 0, 0x8};
        frame(b, FRAME_RST_STREAM, 0, stream, cancel, 4);
    }
}

static bool send_all(int fd, const void *p, size_t n)
{
    const uint8_t *c = p;
    while (n > 0) {
        ssize_t k = write(fd, c, n);
        if (k < 0 && errno == EAGAIN) {
            usleep(1000);
            continue;
        }
        if (k <= 0)
            return false;
        c += k;
        n -= (size_t)k;
    }
    return true;
}

/* Reads and drops whatever the daemon sent; false once it closed the connection. */
static bool drain(int fd)
{
    char sink[65536];
    for (;;) {
        ssize_t k = read(fd, sink, sizeof(sink));
        if (k > 0)
            continue;
        return k < 0 && errno == EAGAIN;
    }
}

/* A non-blocking connection that has sent the preface and SETTINGS: empty, or with an initial
 * stream window of 0 (the client then takes no answer body). */
static int h2_connect_with(unsigned port, bool window_zero)
{
    int fd = raw_connect(port);
    Buf b = {0};
    static const uint8_t no_window[6] = {0, 4, 0, 0, 0, 0}; /* SETTINGS_INITIAL_WINDOW_SIZE */
    put(&b, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    frame(&b, FRAME_SETTINGS, 0, 0, window_zero ? no_window : NULL, window_zero ? 6 : 0);
    assert_true(send_all(fd, b.p, b.len));
    free(b.p);
    (void)fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static int h2_connect(unsigned port)
{
    return h2_connect_with(port, false);
}

/* Waits (bounded) for the daemon to close fd, reading what it sends; how long it took, or -1. */
static long long wait_closed(int fd, int timeout_ms)
{
    long long t0 = now_ms();
    while (now_ms() - t0 < timeout_ms) {
        if (!drain(fd))
            return now_ms() - t0;
        usleep(50 * 1000);
    }
    return -1;
}

static Service svc;

static void start(const char *a, const char *b)
{
    char worker[96];
    snprintf(worker, sizeof(worker), "WORKER_NODE_URL=%s", group_standin.url);
    const char *env[] = {worker, "HTTP2=on", "SHUTDOWN_TIMEOUT_SEC=2", a, b, NULL};
    service_start(&svc, env);
}

/* GET /health on a new connection answers 200 within a second (the time not checked under a
 * sanitizer, where a thousand connections' work takes several times as long: TSan 2.3-2.5 s). */
static void assert_health_fast(const char *when)
{
    char url[96];
    snprintf(url, sizeof(url), "%s/health", svc.base);
    long long t0 = now_ms();
    Response r = http_request("GET", url, NULL, NULL, NULL);
    long long took = now_ms() - t0;
    printf("# /health %s: %lld ms\n", when, took);
    if (r.status != 200 || (!harness_sanitized() && took > 1000))
        fail_msg("/health %s: status %ld after %lld ms", when, r.status, took);
    response_free(&r);
}

typedef struct Flood {
    unsigned port;
    const char *prefix; /* placeId prefix; with same, one placeId for every stream */
    bool same;
    int seconds;
    atomic_ulong streams;
} Flood;

static void *flood_run(void *arg)
{
    Flood *f = arg;
    int fd = h2_connect(f->port);
    long long end = now_ms() + f->seconds * 1000LL;
    uint32_t stream = 1;
    Buf b = {0};
    while (now_ms() < end && stream < 0x7fff0000) {
        b.len = 0;
        for (int i = 0; i < 100; i++, stream += 2) {
            char place[96];
            if (f->same)
                snprintf(place, sizeof(place), "%s", f->prefix);
            else
                snprintf(place, sizeof(place), "%s-%u", f->prefix, stream);
            job_frames(&b, stream, place, true);
        }
        if (!send_all(fd, b.p, b.len) || !drain(fd))
            break;
        atomic_fetch_add(&f->streams, 100);
    }
    free(b.p);
    close(fd);
    return NULL;
}

/* Floods for `seconds` while checking /health, then checks memory and /health again. */
static void flood(const char *prefix, bool same, int seconds)
{
    Flood f = {.port = svc.port, .prefix = prefix, .same = same, .seconds = seconds};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, flood_run, &f), 0);
    for (int i = 0; i < seconds * 2; i++) {
        usleep(500 * 1000);
        assert_health_fast("during a rapid-reset flood");
    }
    pthread_join(t, NULL);
    unsigned long rss = process_rss_kib(svc.pid);
    printf("http2: %lu streams reset in %d s (%s placeId), RSS %lu KiB, pending %g\n",
           (unsigned long)f.streams, seconds, same ? "one" : "distinct", rss,
           service_metric(&svc, "argus_pending_jobs"));
    assert_true(f.streams > 1000); /* the flood did run */
    if (!harness_sanitized() && rss > 256 * 1024)
        fail_msg("RSS %lu KiB after the flood, over 256 MiB", rss);
    assert_true(service_metric(&svc, "argus_pending_jobs") <=
                service_metric(&svc, "argus_pending_jobs_limit"));
    assert_health_fast("after a rapid-reset flood");
}

static void stop_within(int limit_ms)
{
    long long t0 = now_ms();
    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    long long took = now_ms() - t0;
    if (took > limit_ms)
        fail_msg("SIGTERM took %lld ms, over %d", took, limit_ms);
    service_cleanup(&svc);
}

static void test_rapid_reset_hanging_worker(void **state)
{
    (void)state;
    start("WORKER_TIMEOUT_MS=60000", NULL);
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "hang-rr-%d", (int)getpid());
    flood(prefix, false, 3);
    /* the worker hangs: the drain gives up after SHUTDOWN_TIMEOUT_SEC (2 s) and exits */
    stop_within(2000 + 2500);
}

static void test_rapid_reset_same_place_hanging_worker(void **state)
{
    (void)state;
    start("WORKER_TIMEOUT_MS=60000", NULL);
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "hang-rrsame-%d", (int)getpid());
    flood(prefix, true, 3);
    stop_within(2000 + 2500);
}

static void test_rapid_reset_healthy_worker(void **state)
{
    (void)state;
    start(NULL, NULL);
    char prefix[64];
    snprintf(prefix, sizeof(prefix), "rr-%d", (int)getpid());
    flood(prefix, false, 3);
    /* a legitimate job right after it: the backlog (at most MAX_PENDING_JOBS) is gone at once */
    assert_true(service_wait_metric(&svc, "argus_pending_jobs", 0, 5000));
    char place[64];
    snprintf(place, sizeof(place), "after-rr-%d", (int)getpid());
    char body[128];
    snprintf(body, sizeof(body), "{\"placeId\":\"%s\"}", place);
    Response r = http_post_json(&svc, "/enqueue", body);
    assert_int_equal(r.status, 202);
    response_free(&r);
    assert_int_equal(standin_count(&group_standin, place), 1);
    stop_within(2000);
}

/* A request body that never ends, kept alive with PINGs, is closed after the request timeout
 * (10 s) like HTTP/1's; a stream that finished in time on the same daemon is not affected. */
static void test_unfinished_request_is_closed(void **state)
{
    (void)state;
    start(NULL, NULL);
    int fd = h2_connect(svc.port);
    Buf b = {0};
    request_headers(&b, 1, "POST", "/enqueue", false);
    frame(&b, FRAME_DATA, 0, 1, "{\"placeId\":", 11);
    assert_true(send_all(fd, b.p, b.len));
    long long t0 = now_ms();
    bool open = true;
    while (open && now_ms() - t0 < 16000) {
        usleep(500 * 1000);
        b.len = 0;
        frame(&b, FRAME_PING, 0, 0, "12345678", 8);
        open = send_all(fd, b.p, b.len) && drain(fd);
    }
    long long took = now_ms() - t0;
    free(b.p);
    close(fd);
    if (open)
        fail_msg("the connection with an unfinished request is still open after %lld ms", took);
    assert_true(took >= 9000); /* not before the limit */
    assert_health_fast("after the timeout");
    stop_within(3000);
}

/* A header block that goes on in CONTINUATION frames past 64 KiB closes the connection. */
static void test_header_block_over_limit_is_closed(void **state)
{
    (void)state;
    start(NULL, NULL);
    int fd = h2_connect(svc.port);
    Buf b = {0}, block = {0};
    hpack_field(&block, ":method", "GET");
    hpack_field(&block, ":path", "/health");
    frame(&b, FRAME_HEADERS, 0, 1, block.p, block.len);
    static char filler[16000];
    memset(filler, 'a', sizeof(filler));
    for (int i = 0; i < 5; i++) {
        block.len = 0;
        char name[16];
        snprintf(name, sizeof(name), "x-big-%d", i);
        uint8_t zero = 0;
        put(&block, &zero, 1);
        hpack_string(&block, name, strlen(name));
        hpack_string(&block, filler, sizeof(filler) - 64);
        frame(&b, FRAME_CONTINUATION, 0, 1, block.p, block.len);
    }
    free(block.p);
    assert_true(send_all(fd, b.p, b.len));
    free(b.p);
    long long t0 = now_ms();
    bool open = true;
    while (open && now_ms() - t0 < 5000) {
        usleep(100 * 1000);
        open = drain(fd);
    }
    close(fd);
    assert_false(open);
    assert_health_fast("after an oversized header block");
    stop_within(3000);
}

/* An Upgrade: h2c request is checked for ambiguous framing before libh2o upgrades it. */
static void test_h2c_upgrade_with_ambiguous_framing(void **state)
{
    (void)state;
    start(NULL, NULL);
    static const char raw[] =
        "POST /enqueue HTTP/1.1\r\nHost: t\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\nContent-Type: application/json\r\n"
        "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    int fd = raw_connect(svc.port);
    assert_true(send_all(fd, raw, sizeof(raw) - 1));
    char buf[4096];
    raw_read(fd, buf, sizeof(buf), 3000);
    assert_true(peer_closed(fd, 0));
    close(fd);
    if (strncmp(buf, "HTTP/1.1 400 ", 13) != 0)
        fail_msg("expected 400, got: %.200s", buf);
    assert_non_null(strstr(buf, "Content-Length together with Transfer-Encoding"));
    stop_within(3000);
}

/* One-byte HPACK indexes, each a whole header field: past 100 fields the connection closes. */
static void test_too_many_header_fields(void **state)
{
    (void)state;
    start(NULL, NULL);
    int fd = h2_connect(svc.port);
    Buf b = {0}, block = {0};
    hpack_field(&block, ":method", "GET");
    hpack_field(&block, ":scheme", "http");
    hpack_field(&block, ":path", "/health");
    hpack_field(&block, ":authority", "t");
    for (int i = 0; i < 4000; i++) {
        uint8_t accept_encoding = 0x90; /* static table entry 16 */
        put(&block, &accept_encoding, 1);
    }
    frame(&b, FRAME_HEADERS, FLAG_END_HEADERS | FLAG_END_STREAM, 1, block.p, block.len);
    assert_true(send_all(fd, b.p, b.len));
    free(b.p);
    free(block.p);
    long long took = wait_closed(fd, 3000);
    close(fd);
    if (took < 0)
        fail_msg("a request with 4000 header fields left its connection open");
    assert_health_fast("after a request with too many header fields");
    stop_within(3000);
}

/* A client that never opens its flow-control window cannot hold an answer for ever. */
static void test_stalled_answer_is_closed(void **state)
{
    (void)state;
    start(NULL, NULL);
    int fd = h2_connect_with(svc.port, true);
    Buf b = {0};
    request_headers(&b, 1, "GET", "/metrics", true);
    assert_true(send_all(fd, b.p, b.len));
    free(b.p);
    long long took = wait_closed(fd, 16000);
    close(fd);
    if (took < 0)
        fail_msg("a stalled answer kept its connection open for 16 s");
    assert_true(took >= 9000);
    stop_within(3000);
}

#define FRAME_WINDOW_UPDATE 0x8

/* Sends what it can of n bytes without blocking for more than a second at a time; false once
 * the daemon stopped taking them (or closed). */
static bool send_paced(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            p += k;
            n -= (size_t)k;
            continue;
        }
        struct pollfd w = {.fd = fd, .events = POLLOUT};
        if (k < 0 && errno == EAGAIN && poll(&w, 1, 1000) > 0)
            continue;
        return false;
    }
    return true;
}

/* A client that opens every flow-control window but stops reading its TCP connection: once the
 * socket buffers are full the daemon's write stalls, and libh2o waits for it even after the
 * answer limit above shuts the reading side. The write timeout closes it (with a reset). */
static void test_tcp_stalled_answers_are_closed(void **state)
{
    (void)state;
    start(NULL, NULL);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    int small = 4096; /* before connect: it sets the window the connection starts with */
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)), 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)svc.port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    Buf b = {0};
    static const uint8_t max_window[6] = {0, 4, 0x7f, 0xff, 0xff, 0xff};
    static const uint8_t grow[4] = {0x7f, 0xff, 0, 0}; /* the connection's window, near 2^31 */
    put(&b, "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 24);
    frame(&b, FRAME_SETTINGS, 0, 0, max_window, 6);
    frame(&b, FRAME_WINDOW_UPDATE, 0, 0, grow, 4);
    assert_true(send_paced(fd, b.p, b.len));
    /* GET /metrics (6 KB answers) 50 streams at a time, under the 100 concurrent ones */
    bool taking = true;
    for (uint32_t stream = 1; taking && stream < 8000; stream += 100) {
        b.len = 0;
        for (uint32_t i = 0; i < 100; i += 2)
            request_headers(&b, stream + i, "GET", "/metrics", true);
        taking = send_paced(fd, b.p, b.len);
        usleep(50 * 1000);
    }
    free(b.p);
    if (!service_wait_metric(&svc, "argus_connections_open", 1, 25000)) {
        close(fd);
        service_cleanup(&svc);
        fail_msg("an HTTP/2 client that does not read still connected after 25 s");
    }
    assert_true(service_metric(&svc, "argus_write_timeouts_total") == 1);
    struct pollfd p = {.fd = fd, .events = POLLRDHUP};
    assert_int_equal(poll(&p, 1, 2000), 1);
    assert_true(p.revents & (POLLHUP | POLLERR));
    close(fd);
    assert_health_fast("after a client that does not read");
    stop_within(3000);
}

/* Many clients each sending an unfinished 400 KB header block in CONTINUATION frames: each is
 * closed near the limit, so the daemon stays small. */
static void test_many_unfinished_header_blocks(void **state)
{
    (void)state;
    enum { CLIENTS = 500 };
    start(NULL, NULL);
    Buf b = {0}, block = {0};
    hpack_field(&block, ":method", "GET");
    frame(&b, FRAME_HEADERS, 0, 1, block.p, block.len);
    static char filler[16000];
    memset(filler, 'a', sizeof(filler));
    for (int i = 0; i < 25; i++) {
        block.len = 0;
        uint8_t zero = 0;
        put(&block, &zero, 1);
        hpack_string(&block, "x-big", 5);
        hpack_string(&block, filler, sizeof(filler) - 64);
        frame(&b, FRAME_CONTINUATION, 0, 1, block.p, block.len);
    }
    free(block.p);
    static int fds[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        fds[i] = h2_connect(svc.port);
        size_t off = 0;
        ssize_t k;
        while (off < b.len && (k = write(fds[i], b.p + off, b.len - off)) > 0)
            off += (size_t)k;
    }
    free(b.p);
    assert_health_fast("with unfinished header blocks arriving");
    unsigned long rss = process_rss_kib(svc.pid);
    printf("http2: RSS %lu KiB with %d clients sending unfinished 400 KB header blocks\n", rss,
           CLIENTS);
    if (!harness_sanitized() && rss > 192 * 1024)
        fail_msg("RSS %lu KiB, over 192 MiB", rss);
    unsigned closed = 0;
    for (int i = 0; i < CLIENTS; i++) {
        if (wait_closed(fds[i], 5000) >= 0)
            closed++;
        close(fds[i]);
    }
    assert_int_equal(closed, CLIENTS);
    stop_within(3000);
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rapid_reset_hanging_worker),
        cmocka_unit_test(test_rapid_reset_same_place_hanging_worker),
        cmocka_unit_test(test_rapid_reset_healthy_worker),
        cmocka_unit_test(test_unfinished_request_is_closed),
        cmocka_unit_test(test_header_block_over_limit_is_closed),
        cmocka_unit_test(test_h2c_upgrade_with_ambiguous_framing),
        cmocka_unit_test(test_too_many_header_fields),
        cmocka_unit_test(test_stalled_answer_is_closed),
        cmocka_unit_test(test_tcp_stalled_answers_are_closed),
        cmocka_unit_test(test_many_unfinished_header_blocks),
    };
    return cmocka_run_group_tests(tests, standin_group_setup, standin_group_teardown);
}
