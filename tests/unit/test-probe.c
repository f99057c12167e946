/* SPDX-License-Identifier: MIT */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "probe.h"

static void test_parse_url(void **state)
{
    (void)state;
    ProbeTarget t;
    assert_int_equal(probe_parse_url("http://127.0.0.1:8080/health", 1, &t), 0);
    assert_string_equal(t.host, "127.0.0.1");
    assert_string_equal(t.port, "8080");
    assert_string_equal(t.path, "/health");

    assert_int_equal(probe_parse_url("HTTP://localhost", 1, &t), 0);
    assert_string_equal(t.host, "localhost");
    assert_string_equal(t.port, "80");
    assert_string_equal(t.path, "/");

    assert_int_equal(probe_parse_url("http://[::1]:9090/ready?x=1", 1, &t), 0);
    assert_string_equal(t.host, "::1");
    assert_string_equal(t.port, "9090");
    assert_string_equal(t.path, "/ready?x=1");

    assert_int_equal(probe_parse_url("http://[::1]", 1, &t), 0);
    assert_string_equal(t.port, "80");

    /* a bare path: this host, the given port */
    assert_int_equal(probe_parse_url("/health", 9000, &t), 0);
    assert_string_equal(t.host, "127.0.0.1");
    assert_string_equal(t.port, "9000");
    assert_string_equal(t.path, "/health");

    static const char *const bad[] = {
        "",
        "health",
        "https://127.0.0.1/health", /* no TLS in the probe */
        "ftp://x/",
        "http://",
        "http:///health",
        "http://:8080/",
        "http://host:/",
        "http://host:0/",
        "http://host:65536/",
        "http://host:80x/",
        "http://host:123456789/",
        "http://[::1/",
        "http://[::1]x/",
        "http://user@host/",
        "http://host/a b",
        "http://host/a\r\nX: y",
        "http://host/#frag",
        "/a\tb",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (probe_parse_url(bad[i], 8080, &t) != -EINVAL)
            fail_msg("accepted '%s'", bad[i]);
    assert_int_equal(probe_parse_url(NULL, 8080, &t), -EINVAL);

    char long_url[1100] = "http://h/";
    memset(long_url + 9, 'a', sizeof(long_url) - 10);
    long_url[sizeof(long_url) - 1] = '\0';
    assert_int_equal(probe_parse_url(long_url, 8080, &t), -EINVAL);
}

static int status_of(const char *s)
{
    return probe_parse_status(s, strlen(s));
}

static void test_parse_status(void **state)
{
    (void)state;
    assert_int_equal(status_of("HTTP/1.1 200 OK\r\n"), 200);
    assert_int_equal(status_of("HTTP/1.0 503 Service Unavailable\r\nX: y\r\n"), 503);
    assert_int_equal(status_of("HTTP/1.1 204\r\n"), 204);
    assert_int_equal(status_of("HTTP/1.1 200\n"), 200);
    assert_int_equal(status_of("HTTP/1.1 200 OK"), -1); /* the line is not complete */
    assert_int_equal(status_of("HTTP/1.1 20"), -1);
    assert_int_equal(status_of("HTTP/2 200 OK\r\n"), -1);
    assert_int_equal(status_of("HTTP/1.1 2000 OK\r\n"), -1);
    assert_int_equal(status_of("HTTP/1.1 099 OK\r\n"), -1);
    assert_int_equal(status_of("HTTP/1.1 20x OK\r\n"), -1);
    assert_int_equal(status_of("SSH-2.0-OpenSSH_9.2\r\n"), -1);
    assert_int_equal(status_of(""), -1);
}

/* A one-connection-at-a-time server on 127.0.0.1 that answers what it is told to. */
typedef struct Server {
    int fd;
    unsigned port;
    const char *answer; /* NULL: close without answering; "" : hold until the client leaves */
    bool hold;          /* after the answer, hold until the client leaves */
    char request[2048];
    pthread_t thread;
} Server;

static void *serve_one(void *userdata)
{
    Server *s = userdata;
    int c = accept(s->fd, NULL, NULL);
    if (c < 0)
        return NULL;
    size_t have = 0;
    while (have < sizeof(s->request) - 1 && !strstr(s->request, "\r\n\r\n")) {
        ssize_t k = read(c, s->request + have, sizeof(s->request) - 1 - have);
        if (k <= 0)
            break;
        have += (size_t)k;
        s->request[have] = '\0';
    }
    if (s->answer && s->answer[0])
        (void)!send(c, s->answer, strlen(s->answer), MSG_NOSIGNAL);
    if (s->answer && (!s->answer[0] || s->hold)) {
        char b[64];
        while (read(c, b, sizeof(b)) > 0)
            ;
    }
    close(c);
    return NULL;
}

static void server_start_ex(Server *s, const char *answer, bool hold)
{
    memset(s, 0, sizeof(*s));
    s->answer = answer;
    s->hold = hold;
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(s->fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(s->fd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(s->fd, 4), 0);
    socklen_t l = sizeof(a);
    assert_int_equal(getsockname(s->fd, (struct sockaddr *)&a, &l), 0);
    s->port = ntohs(a.sin_port);
    assert_int_equal(pthread_create(&s->thread, NULL, serve_one, s), 0);
}

static void server_stop(Server *s)
{
    pthread_join(s->thread, NULL);
    close(s->fd);
}

static void server_start(Server *s, const char *answer)
{
    server_start_ex(s, answer, false);
}

static void server_start_holding(Server *s, const char *answer)
{
    server_start_ex(s, answer, true);
}

static int probe_server(Server *s, const char *path, int timeout_ms)
{
    char url[128];
    ProbeTarget t;
    snprintf(url, sizeof(url), "http://127.0.0.1:%u%s", s->port, path);
    assert_int_equal(probe_parse_url(url, 1, &t), 0);
    return probe_get(&t, timeout_ms);
}

static void test_get(void **state)
{
    (void)state;
    Server s;

    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
    assert_int_equal(probe_server(&s, "/health", 10000), 200);
    server_stop(&s);
    assert_non_null(strstr(s.request, "GET /health HTTP/1.1\r\n"));
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%u\r\n", s.port);
    assert_non_null(strstr(s.request, host));
    assert_non_null(strstr(s.request, "\r\nConnection: close\r\n"));

    server_start(&s, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(probe_server(&s, "/ready", 10000), 503);
    server_stop(&s);

    server_start(&s, "not http at all\r\n");
    assert_int_equal(probe_server(&s, "/", 10000), -EPROTO);
    server_stop(&s);

    server_start(&s, NULL);
    assert_int_equal(probe_server(&s, "/", 10000), -ECONNRESET);
    server_stop(&s);

    /* a server that accepts and never answers: the probe gives up at its deadline */
    server_start(&s, "");
    assert_int_equal(probe_server(&s, "/", 200), -ETIMEDOUT);
    server_stop(&s);

    /* nothing listens: refused */
    server_start(&s, NULL);
    unsigned port = s.port;
    shutdown(s.fd, SHUT_RDWR); /* ends the accept() */
    server_stop(&s);
    ProbeTarget t;
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u/", port);
    assert_int_equal(probe_parse_url(url, 1, &t), 0);
    assert_int_equal(probe_get(&t, 10000), -ECONNREFUSED);
}

static bool complete(const char *s)
{
    return probe_head_complete(s, strlen(s));
}

static void test_head_complete(void **state)
{
    (void)state;
    assert_true(complete("HTTP/1.1 200 OK\r\n\r\n"));
    assert_true(complete("HTTP/1.1 200 OK\r\nA: b\r\nC: d\r\n\r\n{}"));
    assert_true(complete("HTTP/1.1 200 OK\nA: b\n\n"));
    assert_true(complete("HTTP/1.1 200 OK\r\nA: b\n\r\n"));
    assert_false(complete("HTTP/1.1 200 OK\r\n"));
    assert_false(complete("HTTP/1.1 200 OK\r\nA: b\r\n"));
    assert_false(complete("HTTP/1.1 200 OK\r\nA: b\r\n\r"));
    assert_false(complete("HTTP/1.1 200 OK\r\nA: b\r\r\n"));
    assert_false(complete(""));
}

/* A 200 status line is not enough: the probe fails on a head that never ends, whether the server
 * then holds the connection, closes it, or keeps sending header lines. */
static void test_200_with_a_head_that_never_ends(void **state)
{
    (void)state;
    Server s;

    server_start_holding(&s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n");
    assert_int_equal(probe_server(&s, "/health", 300), -ETIMEDOUT);
    server_stop(&s);

    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n");
    assert_int_equal(probe_server(&s, "/health", 10000), -EBADMSG);
    server_stop(&s);

    size_t n = PROBE_HEAD_MAX + 64;
    char *big = malloc(n + 1);
    assert_non_null(big);
    size_t at = (size_t)snprintf(big, n + 1, "HTTP/1.1 200 OK\r\n");
    while (at + 8 <= n)
        at += (size_t)snprintf(big + at, n + 1 - at, "X: y\r\n");
    server_start_holding(&s, big);
    assert_int_equal(probe_server(&s, "/health", 10000), -EBADMSG);
    server_stop(&s);
    free(big);

    server_start_holding(&s, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n");
    assert_int_equal(probe_server(&s, "/health", 10000), 200); /* the body may wait */
    server_stop(&s);

    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n");
    char port[8];
    snprintf(port, sizeof(port), "%u", s.port);
    assert_int_equal(probe_main("/health", port, 10000), 1);
    server_stop(&s);
}

static void test_main_exit_status(void **state)
{
    (void)state;
    Server s;
    char port[8];

    server_start(&s, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    snprintf(port, sizeof(port), "%u", s.port);
    assert_int_equal(probe_main("/health", port, 10000), 0); /* a bare path goes to $PORT */
    server_stop(&s);

    server_start(&s, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
    snprintf(port, sizeof(port), "%u", s.port);
    assert_int_equal(probe_main("/nope", port, 10000), 1);
    server_stop(&s);

    assert_int_equal(probe_main("https://127.0.0.1/health", NULL, 1000), 64);
    assert_int_equal(probe_main("/health", "http", 1000), 64); /* PORT is not a port */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_url),
        cmocka_unit_test(test_parse_status),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_head_complete),
        cmocka_unit_test(test_200_with_a_head_that_never_ends),
        cmocka_unit_test(test_main_exit_status),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
