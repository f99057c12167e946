/* SPDX-License-Identifier: MIT */
#include "probe.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "parse-util.h"

#define EXIT_USAGE 64

int probe_parse_url(const char *url, uint16_t default_port, ProbeTarget *ret)
{
    ProbeTarget t = {0};
    const char *p, *host, *host_end, *port = NULL, *port_end = NULL;

    if (!url)
        return -EINVAL;
    for (p = url; *p; p++)
        if (*p <= ' ' || *p == 0x7f)
            return -EINVAL; /* no whitespace or control bytes into the request line */

    if (url[0] == '/') {
        snprintf(t.host, sizeof(t.host), "127.0.0.1");
        snprintf(t.port, sizeof(t.port), "%u", (unsigned)default_port);
        p = url;
    } else {
        if (strncasecmp(url, "http://", 7) != 0)
            return -EINVAL;
        host = url + 7;
        if (*host == '[') {
            host++;
            host_end = strchr(host, ']');
            if (!host_end)
                return -EINVAL;
            p = host_end + 1;
        } else {
            host_end = host + strcspn(host, ":/");
            p = host_end;
        }
        if (host_end == host || (size_t)(host_end - host) >= sizeof(t.host) ||
            memchr(host, '@', (size_t)(host_end - host)))
            return -EINVAL;
        memcpy(t.host, host, (size_t)(host_end - host));
        if (*p == ':') {
            port = p + 1;
            port_end = port + strcspn(port, "/");
            p = port_end;
        } else if (*p != '\0' && *p != '/')
            return -EINVAL;
        if (port) {
            uint32_t n;
            char digits[8];
            if (port_end == port || (size_t)(port_end - port) >= sizeof(digits))
                return -EINVAL;
            memcpy(digits, port, (size_t)(port_end - port));
            digits[port_end - port] = '\0';
            if (parse_uint32(digits, 1, 65535, &n) < 0)
                return -EINVAL;
            snprintf(t.port, sizeof(t.port), "%u", (unsigned)n);
        } else
            snprintf(t.port, sizeof(t.port), "80");
    }
    if (strchr(p, '#'))
        return -EINVAL;
    if (snprintf(t.path, sizeof(t.path), "%s", *p ? p : "/") >= (int)sizeof(t.path))
        return -EINVAL;
    *ret = t;
    return 0;
}

int probe_parse_status(const char *buf, size_t len)
{
    /* "HTTP/1.x NNN" and then a space or the end of the line */
    const char *eol = memchr(buf, '\n', len);
    if (!eol || eol - buf < 12 || strncmp(buf, "HTTP/1.", 7) != 0 ||
        (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ')
        return -1;
    int status = 0;
    for (int i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        status = status * 10 + (buf[i] - '0');
    }
    if (buf[12] != ' ' && buf[12] != '\r' && buf[12] != '\n')
        return -1;
    return status < 100 ? -1 : status;
}

bool probe_head_complete(const char *buf, size_t len)
{
    for (const char *p = buf, *end = buf + len; (p = memchr(p, '\n', (size_t)(end - p))); p++) {
        const char *next = p + 1;
        if (next < end && *next == '\r')
            next++;
        if (next < end && *next == '\n')
            return true;
    }
    return false;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until fd is ready for `events` or the deadline passes: 0, -ETIMEDOUT or -errno. */
static int wait_fd(int fd, short events, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -errno;
        if (n > 0)
            return 0;
    }
}

/* After a send(2) or recv(2) that returned k: 0 when k is a count, 1 to try again (interrupted,
 * or ready again before the deadline), or a negative errno. */
static int io_again(ssize_t k, int fd, short events, long long deadline)
{
    if (k >= 0)
        return 0;
    if (errno == EINTR)
        return 1;
    if (errno == EAGAIN) {
        int r = wait_fd(fd, events, deadline);
        return r < 0 ? r : 1;
    }
    return -errno;
}

static int connect_one(const struct addrinfo *ai, long long deadline)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -errno;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        int r = errno == EINPROGRESS ? wait_fd(fd, POLLOUT, deadline) : -errno;
        if (r == 0) {
            int err = 0;
            socklen_t l = sizeof(err);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
                r = -errno;
            else
                r = -err;
        }
        if (r < 0) {
            close(fd);
            return r;
        }
    }
    return fd;
}

static int exchange(int fd, const ProbeTarget *t, long long deadline)
{
    char req[1536];
    bool v6 = strchr(t->host, ':') != NULL;
    int n =
        snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: %s%s%s:%s\r\nUser-Agent: argus-orchestrator-probe\r\n"
                 "Connection: close\r\n\r\n",
                 t->path, v6 ? "[" : "", t->host, v6 ? "]" : "", t->port);
    if (n < 0 || (size_t)n >= sizeof(req))
        return -EINVAL;
    size_t sent = 0;
    while (sent < (size_t)n) {
        ssize_t k = send(fd, req + sent, (size_t)n - sent, MSG_NOSIGNAL);
        int r = io_again(k, fd, POLLOUT, deadline);
        if (r < 0)
            return r;
        if (r > 0)
            continue;
        sent += (size_t)k;
    }

    /* The status line first (what is not HTTP/1 fails at once), then the rest of the head: a
     * 200 whose headers never end is no healthy service. */
    char buf[PROBE_HEAD_MAX];
    size_t have = 0;
    int status = -1;
    for (;;) {
        if (status < 0)
            status = probe_parse_status(buf, have);
        if (status < 0 && (have == sizeof(buf) || memchr(buf, '\n', have)))
            return -EPROTO; /* a whole first line that is not HTTP/1 */
        if (status > 0 && probe_head_complete(buf, have))
            return status;
        if (have == sizeof(buf))
            return -EBADMSG;
        ssize_t k = recv(fd, buf + have, sizeof(buf) - have, 0);
        int r = io_again(k, fd, POLLIN, deadline);
        if (r < 0)
            return r;
        if (r > 0)
            continue;
        if (k == 0)
            return have == 0 ? -ECONNRESET : status > 0 ? -EBADMSG : -EPROTO;
        have += (size_t)k;
    }
}

int probe_get(const ProbeTarget *t, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    int r = getaddrinfo(t->host, t->port, &hints, &res);
    if (r != 0)
        return r == EAI_SYSTEM ? -errno : -ENXIO;

    r = -EHOSTUNREACH;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = connect_one(ai, deadline);
        if (fd < 0) {
            r = fd;
            if (r == -ETIMEDOUT)
                break;
            continue;
        }
        r = exchange(fd, t, deadline);
        close(fd);
        break;
    }
    freeaddrinfo(res);
    return r;
}

int probe_main(const char *url, const char *port_env, int timeout_ms)
{
    uint32_t port = 8080;
    if (url && url[0] == '/' && port_env && parse_uint32(port_env, 1, 65535, &port) < 0) {
        fprintf(stderr, "argus-orchestrator: --probe: invalid PORT=%s\n", port_env);
        return EXIT_USAGE;
    }
    ProbeTarget t;
    if (probe_parse_url(url, (uint16_t)port, &t) < 0) {
        fprintf(stderr,
                "argus-orchestrator: --probe: cannot use '%s' (http://HOST[:PORT][/PATH] or "
                "/PATH)\n",
                url ? url : "");
        return EXIT_USAGE;
    }
    int r = probe_get(&t, timeout_ms);
    if (r == 200)
        return 0;
    if (r > 0)
        fprintf(stderr, "argus-orchestrator: --probe %s: answered HTTP %d\n", url, r);
    else if (r == -EPROTO)
        fprintf(stderr, "argus-orchestrator: --probe %s: the answer is not HTTP/1\n", url);
    else if (r == -EBADMSG)
        fprintf(stderr,
                "argus-orchestrator: --probe %s: the answer's head does not end (cut short, or "
                "larger than %d bytes)\n",
                url, PROBE_HEAD_MAX);
    else if (r == -ENXIO)
        fprintf(stderr, "argus-orchestrator: --probe %s: cannot resolve %s\n", url, t.host);
    else
        fprintf(stderr, "argus-orchestrator: --probe %s: %s\n", url, strerror(-r));
    return 1;
}
