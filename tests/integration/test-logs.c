/* SPDX-License-Identifier: MIT */
/* What the daemon logs and counts whatever clients send (issue #9): every JSON log line is
 * valid UTF-8 JSON even after a path with bytes that are not UTF-8, and the error answers that
 * h2o makes itself (malformed requests) are counted by status in /metrics and logged at most
 * once a second, the next entry saying how many were not. */
#include <json-c/json.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <fcntl.h>
#include <poll.h>

#include "harness.h"

#define FFFD "\xef\xbf\xbd"
#define PROTOCOL_ERROR_MSGID "baaf71ffbd0147ef80b3715a385d509b" /* src/log/log-fields.h */
#define LOGGED "h2o answered "                                  /* its log message */

static void start(Service *svc, const char *a)
{
    service_start_for_group(svc, "LOG_LEVEL=info", a, NULL);
    char url[128];
    snprintf(url, sizeof(url), "%s/health", svc->base);
    Response r = http_request("GET", url, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    response_free(&r);
}

static void stop(Service *svc)
{
    assert_int_equal(service_stop(svc, SIGTERM), 0);
    service_cleanup(svc);
}

static double now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sends raw bytes on a new connection; the answer's first line is copied into `status_line`,
 * and whether the daemon then closed the connection is returned. */
static bool send_raw(const Service *svc, const char *bytes, size_t n, char *status_line,
                     size_t size)
{
    int fd = raw_connect(svc->port);
    assert_int_equal(write(fd, bytes, n), (ssize_t)n);
    char buf[8192];
    raw_read(fd, buf, sizeof(buf), 5000);
    snprintf(status_line, size, "%.*s", (int)strcspn(buf, "\r\n"), buf);
    bool closed = peer_closed(fd, 5000);
    close(fd);
    return closed;
}

#define SEND_RAW(svc, lit, line) send_raw(svc, lit, sizeof(lit) - 1, line, sizeof(line))

static double protocol_errors(const Service *svc, int status)
{
    char series[96];
    snprintf(series, sizeof(series), "argus_http_protocol_errors_total{status=\"%d\"}", status);
    return service_metric(svc, series);
}

/* Whether the count reaches n (bounded wait): an error is counted on the loop of its connection,
 * and with several loops the scrape may be served by another one a moment before. */
static bool protocol_errors_reach(const Service *svc, int status, double n)
{
    char series[96];
    snprintf(series, sizeof(series), "argus_http_protocol_errors_total{status=\"%d\"}", status);
    return service_wait_metric(svc, series, n, 3000) && service_metric(svc, series) == n;
}

typedef void (*line_fn)(json_object *line, void *userdata);

/* Every line of the daemon's log must be a JSON object in valid UTF-8 (json-c checks it); each
 * is handed to fn. Returns the number of the daemon's lines. */
static size_t for_each_log_line(const Service *svc, line_fn fn, void *userdata)
{
    FILE *f = fopen(svc->log_path, "re");
    assert_non_null(f);
    char *line = NULL;
    size_t cap = 0, n = 0;
    ssize_t len;
    json_tokener *tok = json_tokener_new();
    assert_non_null(tok);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    while ((len = getline(&line, &cap, f)) > 0) {
        if (line[len - 1] == '\n')
            line[--len] = '\0';
        /* systemd-socket-activate's own lines ("Listening on …") share the file */
        if (line[0] != '{') {
            for (ssize_t i = 0; i < len; i++)
                if ((unsigned char)line[i] >= 0x80)
                    fail_msg("a line that is not the daemon's has bytes past ASCII: %s", line);
            continue;
        }
        json_tokener_reset(tok);
        json_object *o = json_tokener_parse_ex(tok, line, (int)len);
        if (!o || json_tokener_get_error(tok) != json_tokener_success ||
            !json_object_is_type(o, json_type_object))
            fail_msg("log line %zu is not a JSON object in valid UTF-8 (%s): %s", n + 1,
                     json_tokener_error_desc(json_tokener_get_error(tok)), line);
        if (fn)
            fn(o, userdata);
        json_object_put(o);
        n++;
    }
    json_tokener_free(tok);
    free(line);
    fclose(f);
    return n;
}

static const char *member(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

typedef struct Found {
    const char *needle;
    char msg[1024];
    unsigned count;
} Found;

static void find_msg(json_object *o, void *userdata)
{
    Found *f = userdata;
    const char *msg = member(o, "msg");
    if (msg && strstr(msg, f->needle)) {
        snprintf(f->msg, sizeof(f->msg), "%s", msg);
        f->count++;
    }
}

/* GET /\xff\xfe\xc3 was logged with the raw bytes, a line that is not JSON. */
static void test_invalid_utf8_in_a_path_is_logged_as_text(void **state)
{
    (void)state;
    Service svc;
    start(&svc, NULL);
    char line[256];
    SEND_RAW(&svc, "GET /logs-utf8/\xff\xfe\xc3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             line);
    assert_string_equal(line, "HTTP/1.1 404 Not Found");
    /* valid UTF-8 is logged as it is */
    SEND_RAW(&svc, "GET /logs-utf8/caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
             line);
    assert_string_equal(line, "HTTP/1.1 404 Not Found");
    /* an overlong '/', a surrogate, and a body h2o itself refuses (logged with its path) */
    SEND_RAW(&svc,
             "POST /logs-utf8/\xc0\xaf\xed\xa0\x80 HTTP/1.1\r\nHost: x\r\n"
             "Transfer-Encoding: gzip\r\n\r\n",
             line);
    assert_string_equal(line, "HTTP/1.1 400 Invalid Request");
    assert_true(service_log_contains(&svc, "logs-utf8/caf"));
    assert_true(service_log_contains(&svc, "POST /logs-utf8/"));

    Found bad = {.needle = "GET /logs-utf8/" FFFD};
    for_each_log_line(&svc, find_msg, &bad);
    assert_int_equal(bad.count, 1);
    assert_non_null(strstr(bad.msg, "GET /logs-utf8/" FFFD FFFD FFFD ": not found"));
    Found good = {.needle = "GET /logs-utf8/caf\xc3\xa9: not found"};
    for_each_log_line(&svc, find_msg, &good);
    assert_int_equal(good.count, 1);
    Found h2o = {.needle = "POST /logs-utf8/" FFFD FFFD FFFD FFFD FFFD};
    for_each_log_line(&svc, find_msg, &h2o);
    assert_int_equal(h2o.count, 1);
    /* and every line, to the last one, is valid UTF-8 JSON */
    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    assert_true(for_each_log_line(&svc, NULL, NULL) >= 5);
    service_cleanup(&svc);
}

/* h2o's own 400 for bytes that are not a request goes straight to the socket, past every
 * filter: it is still counted and logged, on a fresh connection and after a served request. */
static void test_h2o_own_errors_are_counted_and_logged(void **state)
{
    (void)state;
    Service svc;
    start(&svc, "MAX_BODY_BYTES=256");
    assert_true(protocol_errors(&svc, 400) == 0);

    char line[256];
    assert_true(SEND_RAW(&svc, "GARBAGE\r\n\r\n", line));
    assert_string_equal(line, "HTTP/1.1 400 Bad Request");
    assert_true(protocol_errors_reach(&svc, 400, 1));
    assert_true(service_log_contains(&svc, PROTOCOL_ERROR_MSGID) ||
                service_log_contains(&svc, LOGGED "400 itself: bad request"));

    /* after a request served on the same connection */
    int fd = keepalive_connection(svc.port);
    static const char garbage[] = "\x01\x02\x03\r\n\r\n";
    assert_int_equal(write(fd, garbage, sizeof(garbage) - 1), (ssize_t)sizeof(garbage) - 1);
    char buf[4096];
    raw_read(fd, buf, sizeof(buf), 5000);
    assert_true(strncmp(buf, "HTTP/1.1 400 Bad Request", 24) == 0);
    close(fd);
    assert_true(protocol_errors_reach(&svc, 400, 2));

    /* the filter's own: a Content-Length over MAX_BODY_BYTES, a broken chunked body */
    SEND_RAW(&svc,
             "POST /enqueue HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
             "Content-Length: 100000\r\n\r\n{",
             line);
    assert_string_equal(line, "HTTP/1.1 413 Request Entity Too Large");
    assert_true(protocol_errors_reach(&svc, 413, 1));
    SEND_RAW(&svc, "POST /enqueue HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
             line);
    assert_string_equal(line, "HTTP/1.1 400 Invalid Request");
    assert_true(protocol_errors_reach(&svc, 400, 3));

    /* Not h2o's own: the routes' answers, a connection that sends nothing, or half a request
     * and goes away. */
    SEND_RAW(&svc, "GET /nowhere HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", line);
    assert_string_equal(line, "HTTP/1.1 404 Not Found");
    Response r = http_post_json(&svc, "/enqueue", "{\"placeId\":7}");
    assert_int_equal(r.status, 400);
    response_free(&r);
    close(raw_connect(svc.port));
    fd = raw_connect(svc.port);
    assert_int_equal(write(fd, "GET /hea", 8), 8);
    close(fd);
    usleep(100000);
    assert_true(protocol_errors_reach(&svc, 400, 3));
    assert_true(protocol_errors_reach(&svc, 413, 1));
    assert_true(protocol_errors(&svc, 404) == -1);
    stop(&svc);
}

typedef struct Tally {
    unsigned entries;
    unsigned long long reported; /* entries plus the ones they say were not logged */
} Tally;

static void tally(json_object *o, void *userdata)
{
    Tally *t = userdata;
    const char *msg = member(o, "msg");
    if (!msg || strncmp(msg, LOGGED, strlen(LOGGED)) != 0)
        return;
    t->entries++;
    t->reported++;
    const char *more = strstr(msg, "(and ");
    if (more)
        t->reported += strtoull(more + 5, NULL, 10);
}

static void test_protocol_error_log_is_rate_limited(void **state)
{
    (void)state;
    Service svc;
    start(&svc, NULL);
    enum { BURST = 10 };
    char line[256];
    double t0 = now_sec();
    for (int i = 0; i < BURST; i++) {
        SEND_RAW(&svc, "GARBAGE\r\n\r\n", line);
        assert_string_equal(line, "HTTP/1.1 400 Bad Request");
    }
    double burst_sec = now_sec() - t0;
    assert_true(protocol_errors_reach(&svc, 400, BURST));
    assert_true(service_log_contains(&svc, LOGGED));
    Tally t = {0};
    for_each_log_line(&svc, tally, &t);
    /* one entry per second at most: however slow the machine, no more than that */
    assert_true(t.entries >= 1 && t.entries <= (unsigned)burst_sec + 1);

    /* a second later the next one is logged, and tells how many were not */
    usleep(1200000);
    SEND_RAW(&svc, "GARBAGE\r\n\r\n", line);
    assert_true(protocol_errors_reach(&svc, 400, BURST + 1));
    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    t = (Tally){0};
    for_each_log_line(&svc, tally, &t);
    service_cleanup(&svc);
    assert_true(t.entries >= 2);
    assert_int_equal(t.reported, BURST + 1);
}

/* How long GET /health takes on a connection of its own, in seconds. */
static double health_seconds(const Service *svc)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/health", svc->base);
    double t0 = now_sec();
    Response r = http_request("GET", url, NULL, NULL, NULL);
    double t = now_sec() - t0;
    assert_int_equal(r.status, 200);
    response_free(&r);
    return t;
}

/* Sends `n` pipelined requests for a long unknown path (each a "request rejected" line of about
 * 1 KiB at info) on fd and reads their answers. */
static void rejected_burst(int fd, int n)
{
    static char req[1200];
    if (!req[0]) {
        char path[960];
        memset(path, 'x', sizeof(path) - 1);
        path[sizeof(path) - 1] = '\0';
        snprintf(req, sizeof(req), "GET /nope/%s HTTP/1.1\r\nHost: test\r\n\r\n", path);
    }
    size_t l = strlen(req);
    for (int i = 0; i < n; i++)
        assert_int_equal(write(fd, req, l), (ssize_t)l);
    int seen = 0;
    char buf[65536];
    size_t have = 0;
    while (seen < n) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        assert_true(poll(&pfd, 1, 5000) > 0);
        ssize_t k = read(fd, buf + have, sizeof(buf) - 1 - have);
        assert_true(k > 0);
        have += (size_t)k;
        buf[have] = '\0';
        /* count whole answers, keep a partial one */
        char *p = buf, *q;
        while ((q = strstr(p, "HTTP/1.1 404")) && strstr(q, "\r\n\r\n") &&
               strchr(strstr(q, "\r\n\r\n"), '}')) {
            seen++;
            p = strchr(strstr(q, "\r\n\r\n"), '}') + 1;
        }
        have = strlen(p);
        memmove(buf, p, have + 1);
    }
}

/* stderr is a pipe nobody reads any more (a log shipper that hangs): the daemon keeps answering,
 * after the stall time (README, "Logs") drops whole lines past its bound, counts them in /metrics,
 * and once the pipe is read again one line says how many were dropped (issue #14). */
static void test_stderr_pipe_not_read(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    (void)fcntl(p[0], F_SETPIPE_SZ, 4096);
    char worker[96];
    snprintf(worker, sizeof(worker), "WORKER_NODE_URL=%s", group_standin.url);
    /* MAX_PENDING_JOBS=1: little room past the high-water mark for owed entries (README, "Logs") */
    const char *env[] = {worker, "LOG_LEVEL=info", "MAX_PENDING_JOBS=1", NULL};
    Service svc;
    service_start_stderr(&svc, env, p[1]);
    close(p[1]);
    assert_true(health_seconds(&svc) < 5);

    /* While the reader might only be slow, rejections are summarised; once it has taken nothing
     * for the stall time, they are logged one by one again and dropped past the bound. */
    int fd = raw_connect(svc.port);
    double worst = 0, dropped = 0;
    double t0 = now_sec();
    for (int round = 0; (round < 120 || dropped == 0) && now_sec() - t0 < 60; round++) {
        rejected_burst(fd, 50);
        double t = health_seconds(&svc);
        if (t > worst)
            worst = t;
        if (round % 20 == 19)
            dropped = service_metric(&svc, "argus_log_entries_dropped_total{sink=\"stderr\"}");
    }
    close(fd);
    /* a generous liveness limit: before, the first full pipe stopped every answer */
    assert_true(worst < 1.0);
    dropped = service_metric(&svc, "argus_log_entries_dropped_total{sink=\"stderr\"}");
    assert_true(dropped > 0);
    assert_true(service_metric(&svc, "argus_log_entries_dropped_total{sink=\"journal\"}") == 0);

    /* Read again: the line saying how many were dropped arrives. */
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    static char out[16 << 20]; /* more than the daemon's bound (4 MiB) and the pipe */
    size_t len = 0;
    bool found = false;
    for (double t0 = now_sec(); !found && now_sec() - t0 < 10;) {
        ssize_t k = read(p[0], out + len, sizeof(out) - 1 - len);
        if (k > 0) {
            len += (size_t)k;
            out[len] = '\0';
            found = strstr(out, "log lines dropped") != NULL;
        } else
            usleep(10000);
    }
    print_message("worst /health %.3f s, %.0f lines dropped, %zu bytes read after\n", worst,
                  dropped, len);
    assert_true(found);
    const char *line = strstr(out, "log lines dropped");
    while (line > out && line[-1] != '\n')
        line--;
    json_object *o = json_tokener_parse(line);
    /* json_tokener_parse stops at the end of the first object */
    assert_non_null(o);
    json_object *c;
    assert_true(json_object_object_get_ex(o, "droppedEntries", &c));
    assert_true(json_object_get_int64(c) > 0 && json_object_get_int64(c) <= (int64_t)dropped);
    json_object_put(o);

    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    service_cleanup(&svc);
    close(p[0]);
}

/* The answers to n requests sent on fd: whole ones are counted by status (202 in counts[0],
 * 503 in counts[1], any other fails the test). */
static void read_answers(int fd, int n, long counts[2])
{
    static char in[1 << 18];
    size_t have = 0;
    for (int seen = 0; seen < n;) {
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        assert_true(poll(&pfd, 1, 10000) > 0);
        ssize_t k = read(fd, in + have, sizeof(in) - 1 - have);
        assert_true(k > 0);
        have += (size_t)k;
        in[have] = '\0';
        char *p = in, *e;
        while (seen < n && (e = strstr(p, "\r\n\r\n"))) {
            *e = '\0';
            const char *cl = strcasestr(p, "content-length:");
            assert_non_null(cl);
            size_t body = strtoul(cl + 15, NULL, 10);
            if ((size_t)(e + 4 - in) + body > have) {
                *e = '\r'; /* the body is not all here yet */
                break;
            }
            int status = atoi(p + 9);
            if (status != 202 && status != 503)
                fail_msg("unexpected answer %d", status);
            counts[status == 503]++;
            seen++;
            p = e + 4 + body;
        }
        have -= (size_t)(p - in);
        memmove(in, p, have + 1);
    }
}

/* Sends n pipelined POST /enqueue of distinct jobs (tag-first…) on fd and reads the answers. */
static void enqueue_batch(int fd, const char *tag, int first, int n, long counts[2])
{
    static char out[1 << 16];
    size_t l = 0;
    for (int i = 0; i < n; i++) {
        char body[96];
        int bl = snprintf(body, sizeof(body), "{\"placeId\":\"%s-%d\"}", tag, first + i);
        l += (size_t)snprintf(out + l, sizeof(out) - l,
                              "POST /enqueue HTTP/1.1\r\nHost: test\r\nContent-Type: "
                              "application/json\r\nContent-Length: %d\r\n\r\n%s",
                              bl, body);
        assert_true(l < sizeof(out));
    }
    for (size_t off = 0; off < l;) {
        ssize_t k = write(fd, out + off, l - off);
        assert_true(k > 0);
        off += (size_t)k;
    }
    read_answers(fd, n, counts);
}

/* Reads what the pipe holds now, at most max bytes, into out (len grows). */
static void pipe_read(int fd, char *out, size_t cap, size_t *len, size_t max)
{
    size_t want = cap - 1 - *len < max ? cap - 1 - *len : max;
    assert_true(want > 0);
    ssize_t k = read(fd, out + *len, want);
    if (k > 0)
        *len += (size_t)k;
    out[*len] = '\0';
}

static size_t count_of(const char *hay, const char *needle)
{
    size_t n = 0;
    for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
        n++;
    return n;
}

/* While the shedding lasts: a job gets 503 with Retry-After: 1 and the reason, so does /ready;
 * /health and /metrics answer. */
static void check_shedding_answers(const Service *svc)
{
    Response r = service_enqueue(svc, "shed-probe");
    assert_int_equal(r.status, 503);
    char v[16];
    assert_true(response_header(&r, "Retry-After", v, sizeof(v)));
    assert_string_equal(v, "1");
    assert_non_null(strstr(r.body, "\"error\":\"log backlog: the reader of stderr is behind\""));
    response_free(&r);
    /* a batch too, as a whole: nothing admitted */
    r = http_post_json(svc, "/enqueue/batch", "{\"placeIds\":[\"shed-b1\",\"shed-b2\"]}");
    assert_int_equal(r.status, 503);
    assert_true(response_header(&r, "Retry-After", v, sizeof(v)));
    assert_string_equal(v, "1");
    assert_non_null(strstr(r.body, "log backlog"));
    response_free(&r);
    r = service_get(svc, "/ready");
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(r.body, "log backlog"));
    response_free(&r);
    r = service_get(svc, "/health");
    assert_int_equal(r.status, 200);
    response_free(&r);
    assert_true(service_metric(svc, "argus_requests_shed_total{reason=\"log_backlog\"}") > 0);
}

/* The reader of stderr (a log shipper) is slow, taking a page now and then, well within the
 * stall time: under load the service sheds jobs (503) once its queue passes the high-water mark,
 * and drops no line: every 202 has its line (issue #22). */
static void test_stderr_reader_behind_sheds_jobs(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    char worker[96];
    snprintf(worker, sizeof(worker), "WORKER_NODE_URL=%s", group_standin.url);
    const char *env[] = {worker, "LOG_LEVEL=info", NULL};
    Service svc;
    service_start_stderr(&svc, env, p[1]);
    close(p[1]);
    assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
    static char out[64 << 20];
    size_t len = 0;

    char tag[32];
    snprintf(tag, sizeof(tag), "behind-%d", (int)getpid());
    int fds[4];
    for (size_t i = 0; i < 4; i++)
        fds[i] = raw_connect(svc.port);
    long counts[2] = {0, 0};
    int next = 0;
    double t0 = now_sec(), last_read = t0;
    while (counts[1] == 0 && now_sec() - t0 < 120) {
        for (size_t i = 0; i < 4; i++, next += 64)
            enqueue_batch(fds[i], tag, next, 64, counts);
        if (now_sec() - last_read >= 0.5) { /* a page every half second: progress */
            pipe_read(p[0], out, sizeof(out), &len, 4096);
            last_read = now_sec();
        }
    }
    print_message("%ld jobs answered 202, %ld shed, in %.1f s\n", counts[0], counts[1],
                  now_sec() - t0);
    assert_true(counts[1] > 0);
    check_shedding_answers(&svc);
    for (size_t i = 0; i < 4; i++)
        close(fds[i]);

    /* The reader catches up: every line arrives. */
    for (double idle = now_sec(); now_sec() - idle < 1.0;) {
        size_t before = len;
        pipe_read(p[0], out, sizeof(out), &len, sizeof(out));
        if (len > before)
            idle = now_sec();
        else
            usleep(10000);
    }
    size_t logged = count_of(out, "\"msg\":\"job enqueued successfully\"");
    print_message("%zu lines of jobs enqueued, %zu bytes read\n", logged, len);
    assert_int_equal(logged, (size_t)counts[0]);
    assert_true(service_metric(&svc, "argus_log_entries_dropped_total{sink=\"stderr\"}") == 0);
    assert_null(strstr(out, "log lines dropped"));

    /* The reader goes before the stop: what the daemon writes while it drains is not this
     * test's, and an unread full pipe would hold its last writes (under TSan, past 30 s). */
    close(p[0]);
    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    service_cleanup(&svc);
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_invalid_utf8_in_a_path_is_logged_as_text),
        cmocka_unit_test(test_h2o_own_errors_are_counted_and_logged),
        cmocka_unit_test(test_protocol_error_log_is_rate_limited),
        cmocka_unit_test(test_stderr_pipe_not_read),
        cmocka_unit_test(test_stderr_reader_behind_sheds_jobs),
    };
    return cmocka_run_group_tests(tests, standin_group_setup, standin_group_teardown);
}
