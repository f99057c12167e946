/* SPDX-License-Identifier: MIT */
/* Answers sent before the request was read whole (README, "Limits": the lingering close): h2o's
 * 413 for a body over MAX_BODY_BYTES, the 431 of the head limit, the framing 400 reach a client
 * that sends its whole request before it reads, every time; a client that lingers on is cut
 * after the bound, holds its place under MAX_CONNECTIONS meanwhile, and holds neither the open
 * connections' count nor the drain. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define BODY_BYTES (1024 * 1024)

static void start(Service *svc, const char *a, const char *b)
{
    service_start_for_group(svc, a, b, NULL);
    Response r = service_get(svc, "/health"); /* systemd-socket-activate starts it now */
    assert_int_equal(r.status, 200);
    response_free(&r);
}

static void stop(Service *svc)
{
    assert_int_equal(service_stop(svc, SIGTERM), 0);
    service_cleanup(svc);
}

/* Writes all of buf unless the peer refuses it (a reset) or 10 s pass; how much it wrote. */
static size_t send_all(int fd, const char *buf, size_t len)
{
    size_t sent = 0;
    long long deadline = now_ms() + 10000;
    while (sent < len && now_ms() < deadline) {
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t k = send(fd, buf + sent, len - sent, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0)
            sent += (size_t)k;
        else if (k < 0 && errno != EAGAIN && errno != EINTR)
            break;
    }
    return sent;
}

/* A request of `head` (with "%zu" for the body's length, if any) and a JSON body of BODY_BYTES
 * whose placeId is padding; malloc'd, its length in *ret_len. */
static char *big_request(const char *head, size_t *ret_len)
{
    char *req = malloc(BODY_BYTES + 4096);
    assert_non_null(req);
    int n = snprintf(req, 4096, head, (size_t)BODY_BYTES);
    assert_true(n > 0 && n < 4096);
    char *body = req + n;
    memset(body, 'a', BODY_BYTES);
    memcpy(body, "{\"placeId\":\"", 12);
    memcpy(body + BODY_BYTES - 2, "\"}", 2);
    *ret_len = (size_t)n + BODY_BYTES;
    return req;
}

/* Sends the whole request, then reads the answer until the server ends it: whether all of it
 * could be sent (a client that meets a reset while it writes gives up, as curl does, without
 * reading what was answered) and the answer starts with `status_line` and has the JSON error
 * body. */
static bool answer_arrives(const Service *svc, const char *req, size_t len, const char *status_line)
{
    int fd = raw_connect(svc->port);
    /* Loopback's buffers would take the whole body at once, before the server has even closed:
     * a send buffer of 64 KiB keeps the client writing while the server decides, as the
     * round trips of a real network do. */
    int sndbuf = 64 * 1024;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf)), 0);
    size_t sent = send_all(fd, req, len);
    char buf[8192];
    raw_read(fd, buf, sizeof(buf), 10000);
    close(fd);
    return sent == len && strncmp(buf, status_line, strlen(status_line)) == 0 &&
           strstr(buf, "\"status\":\"error\"") != NULL;
}

#define ROUNDS 200

/* A 1 MiB JSON body with "Connection: close", sent whole before the client reads: the 413 is
 * read every time, where the reset of a close with unread input destroyed it now and then. */
static void test_413_arrives_every_time(void **state)
{
    (void)state;
    Service svc;
    start(&svc, NULL, NULL);
    size_t len;
    char *req =
        big_request("POST /enqueue HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                    &len);
    unsigned got = 0;
    for (int i = 0; i < ROUNDS; i++)
        got += answer_arrives(&svc, req, len, "HTTP/1.1 413 ");
    free(req);
    if (got != ROUNDS)
        fail_msg("the whole request went and the 413 came back %u times in %d", got, ROUNDS);
    stop(&svc);
}

/* The read guard's own early answers: the 431 of a head over the limit (a 1 MiB head), the 400
 * of ambiguous framing followed by a 1 MiB body. */
static void test_431_and_framing_400_arrive_every_time(void **state)
{
    (void)state;
    Service svc;
    start(&svc, NULL, NULL);
    size_t len;
    char *req = big_request("POST /enqueue HTTP/1.1\r\nHost: t\r\nX-Padding: ", &len);
    unsigned got = 0;
    for (int i = 0; i < ROUNDS / 4; i++)
        got += answer_arrives(&svc, req, len, "HTTP/1.1 431 ");
    free(req);
    if (got != ROUNDS / 4)
        fail_msg("the whole request went and the 431 came back %u times in %d", got, ROUNDS / 4);

    req = big_request("POST /enqueue HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\nTransfer-Encoding: chunked\r\n\r\n",
                      &len);
    got = 0;
    for (int i = 0; i < ROUNDS / 4; i++)
        got += answer_arrives(&svc, req, len, "HTTP/1.1 400 ");
    free(req);
    if (got != ROUNDS / 4)
        fail_msg("the whole request went and the framing 400 came back %u times in %d", got,
                 ROUNDS / 4);
    stop(&svc);
}

/* A client that announces a body over the limit, sends 64 KiB of it, reads the 413 to the end
 * of the server's side, and stays: it lingers. */
static int lingering_client(const Service *svc)
{
    int fd = raw_connect(svc->port);
    size_t len;
    char *req =
        big_request("POST /enqueue HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\n\r\n",
                    &len);
    size_t head = (size_t)(strstr(req, "\r\n\r\n") + 4 - req);
    assert_int_equal(send_all(fd, req, head + 64 * 1024), head + 64 * 1024);
    free(req);
    char buf[8192];
    raw_read(fd, buf, sizeof(buf), 10000); /* to the server's FIN */
    if (strncmp(buf, "HTTP/1.1 413 ", 13) != 0)
        fail_msg("answered: %.80s", buf);
    return fd;
}

/* Whether the server still reads what fd sends: once it has closed, a byte sent brings a reset,
 * which fails the next send. */
static bool still_read(int fd)
{
    if (send(fd, "x", 1, MSG_NOSIGNAL) != 1)
        return false;
    usleep(100 * 1000);
    return send(fd, "x", 1, MSG_NOSIGNAL) == 1;
}

/* A lingering client is served nothing more, and others are served meanwhile; it is cut after
 * the bound (5 s) although it never closes. */
static void test_lingering_client_is_cut(void **state)
{
    (void)state;
    Service svc;
    start(&svc, NULL, NULL);
    int fd = lingering_client(&svc);
    assert_true(still_read(fd));
    for (int i = 0; i < 3; i++) {
        Response r = service_enqueue(&svc, "beside-a-lingering-client");
        assert_int_equal(r.status, 202);
        response_free(&r);
    }
    bool cut = false;
    for (long long deadline = now_ms() + 15000; !cut && now_ms() < deadline;)
        cut = !still_read(fd);
    close(fd);
    if (!cut)
        fail_msg("the lingering client was not cut within 15 s");
    stop(&svc);
}

typedef struct Pending {
    const Service *svc;
    long status;
    atomic_int done;
} Pending;

static void *get_health(void *arg)
{
    Pending *p = arg;
    Response r = service_get(p->svc, "/health");
    p->status = r.status;
    response_free(&r);
    atomic_store(&p->done, 1);
    return NULL;
}

/* A lingering client keeps its place under MAX_CONNECTIONS: at a cap of 1 the next client waits
 * until it has gone (here: it closes, which ends the lingering at once). */
static void test_lingering_client_counts_in_the_cap(void **state)
{
    (void)state;
    Service svc;
    start(&svc, "MAX_CONNECTIONS=1", NULL);
    usleep(200 * 1000); /* the start's connection closes */
    int fd = lingering_client(&svc);
    Pending p = {.svc = &svc};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, get_health, &p), 0);
    usleep(500 * 1000);
    assert_int_equal(atomic_load(&p.done), 0); /* waiting for the lingering one's place */
    assert_true(still_read(fd));
    close(fd);
    pthread_join(t, NULL);
    assert_int_equal(p.status, 200);
    stop(&svc);
}

/* A lingering client is not an open connection: not in argus_connections_open (the count the
 * idle exit waits on), and the SIGTERM drain closes it at once instead of waiting for it until
 * the shutdown timeout. */
static void test_lingering_client_holds_neither_the_idle_exit_nor_the_drain(void **state)
{
    (void)state;
    Service svc;
    start(&svc, "SHUTDOWN_TIMEOUT_SEC=1", NULL);
    int fd = lingering_client(&svc);
    /* the scrape's own connection only; the lingering one is still read after */
    assert_true(service_wait_metric(&svc, "argus_connections_open", 1, 3000));
    assert_true(still_read(fd));

    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    assert_false(still_read(fd));
    close(fd);
    assert_true(service_log_lacks(&svc, "shutdown timeout"));
    service_cleanup(&svc);
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_413_arrives_every_time),
        cmocka_unit_test(test_431_and_framing_400_arrive_every_time),
        cmocka_unit_test(test_lingering_client_is_cut),
        cmocka_unit_test(test_lingering_client_counts_in_the_cap),
        cmocka_unit_test(test_lingering_client_holds_neither_the_idle_exit_nor_the_drain),
    };
    return cmocka_run_group_tests(tests, standin_group_setup, standin_group_teardown);
}
