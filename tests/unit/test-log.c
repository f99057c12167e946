/* SPDX-License-Identifier: MIT */
/* Unit tests of src/log/log.h: journal stream detection, the JSON-lines sink on stderr, the journal
 * sink, and both under several threads at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include "log.h"

/* ---- log_fd_is_journal_stream ---- */

static int temp_fd(void)
{
    char path[] = "/tmp/argus-test-log-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    return fd;
}

static void test_journal_stream_null_and_garbage(void **state)
{
    (void)state;
    int fd = temp_fd();
    assert_false(log_fd_is_journal_stream(NULL, fd));
    assert_false(log_fd_is_journal_stream("", fd));
    assert_false(log_fd_is_journal_stream("garbage", fd));
    assert_false(log_fd_is_journal_stream(":", fd));
    assert_false(log_fd_is_journal_stream("1:", fd));
    assert_false(log_fd_is_journal_stream(":2", fd));
    assert_false(log_fd_is_journal_stream("1", fd));
    assert_false(log_fd_is_journal_stream("1;2", fd));
    assert_false(log_fd_is_journal_stream("1:2x", fd));
    assert_false(log_fd_is_journal_stream("a:b", fd));
    close(fd);
}

static void test_journal_stream_match(void **state)
{
    (void)state;
    int fd = temp_fd();
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    unsigned long long dev = (unsigned long long)st.st_dev, ino = (unsigned long long)st.st_ino;
    char s[64];

    snprintf(s, sizeof(s), "%llu:%llu", dev, ino);
    assert_true(log_fd_is_journal_stream(s, fd));

    /* Same device, another inode. */
    snprintf(s, sizeof(s), "%llu:%llu", dev, ino + 1);
    assert_false(log_fd_is_journal_stream(s, fd));
    snprintf(s, sizeof(s), "%llu:%llu", dev, ino - 1);
    assert_false(log_fd_is_journal_stream(s, fd));
    /* Another device, same inode. */
    snprintf(s, sizeof(s), "%llu:%llu", dev + 1, ino);
    assert_false(log_fd_is_journal_stream(s, fd));
    /* Swapped. */
    if (dev != ino) {
        snprintf(s, sizeof(s), "%llu:%llu", ino, dev);
        assert_false(log_fd_is_journal_stream(s, fd));
    }
    /* Trailing junk after a matching pair. */
    snprintf(s, sizeof(s), "%llu:%llux", dev, ino);
    assert_false(log_fd_is_journal_stream(s, fd));
    snprintf(s, sizeof(s), "%llu:%llu:0", dev, ino);
    assert_false(log_fd_is_journal_stream(s, fd));

    /* Another open file is not the stream. */
    int other = temp_fd();
    snprintf(s, sizeof(s), "%llu:%llu", dev, ino);
    assert_false(log_fd_is_journal_stream(s, other));
    close(other);

    /* A closed or invalid fd is never the stream. */
    close(fd);
    assert_false(log_fd_is_journal_stream(s, fd));
    assert_false(log_fd_is_journal_stream(s, -1));
}

/* ---- the JSON-lines sink ---- */

typedef struct Capture {
    int saved_stderr;
    int fd;
} Capture;

static void capture_start(Capture *c)
{
    fflush(stderr);
    c->fd = temp_fd();
    c->saved_stderr = dup(STDERR_FILENO);
    assert_true(c->saved_stderr >= 0);
    assert_int_equal(dup2(c->fd, STDERR_FILENO), STDERR_FILENO);
}

/* Restores stderr and returns what was written to it (malloc'd, NUL-terminated). */
static char *capture_end(Capture *c, size_t *ret_len)
{
    fflush(stderr);
    assert_int_equal(dup2(c->saved_stderr, STDERR_FILENO), STDERR_FILENO);
    close(c->saved_stderr);
    off_t size = lseek(c->fd, 0, SEEK_END);
    assert_true(size >= 0);
    char *buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    assert_int_equal(pread(c->fd, buf, (size_t)size, 0), size);
    buf[size] = '\0';
    close(c->fd);
    *ret_len = (size_t)size;
    return buf;
}

/* out must be exactly one line holding one JSON object. */
static json_object *parse_line(const char *out, size_t len)
{
    if (len == 0 || out[len - 1] != '\n')
        fail_msg("not one line: \"%s\"", out);
    if (memchr(out, '\n', len - 1))
        fail_msg("more than one line: \"%s\"", out);
    json_tokener *tok = json_tokener_new();
    assert_non_null(tok);
    json_object *o = json_tokener_parse_ex(tok, out, (int)len - 1);
    if (!o || json_tokener_get_error(tok) != json_tokener_success)
        fail_msg("not JSON: %s", out);
    assert_int_equal(json_tokener_get_parse_end(tok), len - 1);
    json_tokener_free(tok);
    assert_true(json_object_is_type(o, json_type_object));
    return o;
}

static void assert_string_member(json_object *o, const char *key, const char *want)
{
    json_object *v;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("\"%s\" missing from %s", key, json_object_to_json_string(o));
    assert_true(json_object_is_type(v, json_type_string));
    assert_string_equal(json_object_get_string(v), want);
}

static void test_json_line(void **state)
{
    (void)state;
    Capture cap;
    capture_start(&cap);
    log_setup(LOG_LEVEL_INFO);
    log_set_journal(false);
    log_event(
        LOG_LEVEL_INFO, MSGID_ENQUEUED,
        LOG_FIELDS(.place_id = "P", .job_id = "J", .duration_usec = 150000, .has_duration = true),
        "job enqueued %s", "successfully");
    size_t len;
    char *out = capture_end(&cap, &len);

    json_object *o = parse_line(out, len);
    assert_string_member(o, "level", "info");
    assert_string_member(o, "msg", "job enqueued successfully");
    assert_string_member(o, "placeId", "P");
    assert_string_member(o, "jobId", "J");
    assert_string_member(o, "duration", "150ms");

    /* Fields left zero/NULL are left out: only these keys may appear. */
    json_object_object_foreach(o, key, val)
    {
        (void)val;
        if (strcmp(key, "level") != 0 && strcmp(key, "msg") != 0 && strcmp(key, "placeId") != 0 &&
            strcmp(key, "jobId") != 0 && strcmp(key, "duration") != 0 && strcmp(key, "time") != 0)
            fail_msg("unexpected member \"%s\" in %s", key, out);
    }
    json_object_put(o);
    free(out);
}

static void test_json_line_levels(void **state)
{
    (void)state;
    static const struct {
        LogLevel level;
        const char *name;
    } levels[] = {
        {LOG_LEVEL_INFO, "info"},
        {LOG_LEVEL_WARN, "warn"},
        {LOG_LEVEL_ERROR, "error"},
    };
    for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++) {
        Capture cap;
        capture_start(&cap);
        log_setup(LOG_LEVEL_INFO);
        log_set_journal(false);
        log_event(levels[i].level, NULL, NULL, "event %zu", i);
        size_t len;
        char *out = capture_end(&cap, &len);
        json_object *o = parse_line(out, len);
        assert_string_member(o, "level", levels[i].name);
        char msg[32];
        snprintf(msg, sizeof(msg), "event %zu", i);
        assert_string_member(o, "msg", msg);
        json_object_put(o);
        free(out);
    }
}

static void test_level_filter(void **state)
{
    (void)state;
    Capture cap;
    size_t len;
    char *out;

    /* Debug at LOG_LEVEL_INFO: nothing. */
    log_setup(LOG_LEVEL_INFO);
    assert_false(log_enabled(LOG_LEVEL_DEBUG));
    assert_true(log_enabled(LOG_LEVEL_INFO));
    assert_true(log_enabled(LOG_LEVEL_ERROR));
    capture_start(&cap);
    log_setup(LOG_LEVEL_INFO);
    log_set_journal(false);
    log_event(LOG_LEVEL_DEBUG, MSGID_REQUEST, LOG_FIELDS(.place_id = "P"), "health probe");
    log_debug(MSGID_REQUEST, NULL, "health probe %d", 2);
    out = capture_end(&cap, &len);
    assert_int_equal(len, 0);
    free(out);

    /* Info and warn at LOG_LEVEL_ERROR: nothing; error: one line. */
    capture_start(&cap);
    log_setup(LOG_LEVEL_ERROR);
    log_set_journal(false);
    log_info(NULL, NULL, "info");
    log_warn(NULL, NULL, "warn");
    log_error(NULL, NULL, "boom");
    out = capture_end(&cap, &len);
    json_object *o = parse_line(out, len);
    assert_string_member(o, "level", "error");
    assert_string_member(o, "msg", "boom");
    json_object_put(o);
    free(out);

    /* Debug at LOG_LEVEL_DEBUG: written. */
    log_setup(LOG_LEVEL_DEBUG);
    assert_true(log_enabled(LOG_LEVEL_DEBUG));
    capture_start(&cap);
    log_setup(LOG_LEVEL_DEBUG);
    log_set_journal(false);
    log_debug(NULL, NULL, "dbg");
    out = capture_end(&cap, &len);
    o = parse_line(out, len);
    assert_string_member(o, "level", "debug");
    assert_string_member(o, "msg", "dbg");
    json_object_put(o);
    free(out);

    log_setup(LOG_LEVEL_INFO);
}

static void test_json_line_escaping(void **state)
{
    (void)state;
    Capture cap;
    capture_start(&cap);
    log_setup(LOG_LEVEL_INFO);
    log_set_journal(false);
    log_event(LOG_LEVEL_WARN, NULL, LOG_FIELDS(.error = "line1\nline2", .place_id = "a\"b"),
              "tab\there \"quoted\" back\\slash\nnewline");
    size_t len;
    char *out = capture_end(&cap, &len);
    json_object *o = parse_line(out, len); /* still exactly one line */
    assert_string_member(o, "msg", "tab\there \"quoted\" back\\slash\nnewline");
    assert_string_member(o, "placeId", "a\"b");
    json_object_put(o);
    free(out);
}

static void test_json_line_long_message(void **state)
{
    (void)state;
    char *big = malloc(5000);
    assert_non_null(big);
    memset(big, 'x', 4999);
    big[4999] = '\0';
    Capture cap;
    capture_start(&cap);
    log_setup(LOG_LEVEL_INFO);
    log_set_journal(false);
    log_info(NULL, NULL, "%s", big);
    size_t len;
    char *out = capture_end(&cap, &len);
    json_object *o = parse_line(out, len); /* truncated, still valid */
    json_object *m;
    assert_true(json_object_object_get_ex(o, "msg", &m));
    assert_true(json_object_get_string_len(m) > 0);
    assert_true(json_object_get_string_len(m) <= 4999);
    assert_memory_equal(json_object_get_string(m), big, (size_t)json_object_get_string_len(m));
    json_object_put(o);
    free(out);
    free(big);
}

/* A message cut inside a multi-byte character ends on the last whole one. */
static void test_json_line_truncated_utf8(void **state)
{
    (void)state;
    char big[2000];
    memset(big, 'x', 1022);
    size_t n = 1022;
    for (int i = 0; i < 100; i++) {
        big[n++] = (char)0xC3; /* é */
        big[n++] = (char)0xA9;
    }
    big[n] = '\0';
    Capture cap;
    capture_start(&cap);
    log_setup(LOG_LEVEL_INFO);
    log_set_journal(false);
    log_info(NULL, NULL, "%s", big);
    size_t len;
    char *out = capture_end(&cap, &len);
    /* json-c's tokener checks UTF-8 when told to */
    json_tokener *tok = json_tokener_new();
    json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, out, (int)len);
    assert_non_null(o);
    json_object *m;
    assert_true(json_object_object_get_ex(o, "msg", &m));
    const char *msg = json_object_get_string(m);
    size_t ml = (size_t)json_object_get_string_len(m);
    assert_true(ml >= 1022);
    assert_memory_equal(msg, big, ml); /* a prefix, ending on a whole character */
    assert_int_equal((ml - 1022) % 2, 0);
    json_object_put(o);
    json_tokener_free(tok);
    free(out);
}

static void test_errno_preserved(void **state)
{
    (void)state;
    Capture cap;
    capture_start(&cap);
    log_setup(LOG_LEVEL_INFO);
    log_set_journal(false);
    errno = EPIPE;
    log_info(NULL, NULL, "x");
    int e = errno;
    size_t len;
    char *out = capture_end(&cap, &len);
    assert_int_equal(e, EPIPE);
    assert_true(len > 0);
    free(out);

    /* Also when the write itself fails (stderr open read-only: EBADF). */
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    int ro = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(ro >= 0);
    assert_int_equal(dup2(ro, STDERR_FILENO), STDERR_FILENO);
    errno = EPIPE;
    log_info(NULL, NULL, "x");
    e = errno;
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    close(ro);
    assert_int_equal(e, EPIPE);
}

/* Each line of out (NUL-terminated) must be one JSON object with this msg; returns the count. */
static size_t count_lines_with_msg(const char *out, const char *msg)
{
    size_t n = 0;
    for (const char *p = out; *p;) {
        const char *nl = strchr(p, '\n');
        if (!nl)
            fail_msg("unterminated line: %s", p);
        json_object *o = parse_line(p, (size_t)(nl - p) + 1);
        assert_string_member(o, "msg", msg);
        json_object_put(o);
        n++;
        p = nl + 1;
    }
    return n;
}

/* log_setup chooses the journal when stderr is $JOURNAL_STREAM: then nothing goes to stderr. */
static void test_setup_detects_journal(void **state)
{
    (void)state;
    const char *old = getenv("JOURNAL_STREAM");
    char *saved = old ? strdup(old) : NULL;
    Capture cap;
    size_t len;
    char *out;

    capture_start(&cap);
    struct stat st;
    int r = fstat(STDERR_FILENO, &st);
    char s[64];
    snprintf(s, sizeof(s), "%llu:%llu", (unsigned long long)st.st_dev,
             (unsigned long long)st.st_ino);
    setenv("JOURNAL_STREAM", s, 1);
    log_setup(LOG_LEVEL_INFO);
    log_info(MSGID_STARTED, NULL, "argus unit test: journal sink selected");
    out = capture_end(&cap, &len);
    assert_int_equal(r, 0);
    assert_int_equal(len, 0);
    free(out);

    /* With another stream, or none, JSON lines on stderr. */
    capture_start(&cap);
    setenv("JOURNAL_STREAM", "1:1", 1);
    log_setup(LOG_LEVEL_INFO);
    log_info(NULL, NULL, "to stderr");
    unsetenv("JOURNAL_STREAM");
    log_setup(LOG_LEVEL_INFO);
    log_info(NULL, NULL, "to stderr");
    out = capture_end(&cap, &len);
    assert_int_equal(count_lines_with_msg(out, "to stderr"), 2);
    free(out);

    if (saved) {
        setenv("JOURNAL_STREAM", saved, 1);
        free(saved);
    }
    log_setup(LOG_LEVEL_INFO);
    log_set_journal(false);
}

/* ---- the journal sink: native protocol, queue, drops ---- */

/* The value of field `name` in a datagram of journald's native protocol (malloc'd), or NULL. */
static char *native_field(const char *d, size_t n, const char *name)
{
    const char *p = d, *end = d + n;
    while (p < end) {
        const char *fname = p;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *eq = memchr(p, '=', (size_t)(end - p));
        assert_non_null(nl);
        const char *v;
        size_t vl;
        size_t namelen;
        if (eq && eq < nl) {
            namelen = (size_t)(eq - p);
            v = eq + 1;
            vl = (size_t)(nl - v);
            p = nl + 1;
        } else {
            namelen = (size_t)(nl - p);
            uint64_t le;
            assert_true((size_t)(end - nl) >= 1 + sizeof(le));
            memcpy(&le, nl + 1, sizeof(le));
            v = nl + 1 + sizeof(le);
            vl = (size_t)le;
            assert_true(v + vl < end && v[vl] == '\n');
            p = v + vl + 1;
        }
        if (namelen == strlen(name) && memcmp(fname, name, namelen) == 0) {
            char *r = malloc(vl + 1);
            assert_non_null(r);
            memcpy(r, v, vl);
            r[vl] = '\0';
            return r;
        }
    }
    return NULL;
}

static void assert_native_field(const char *d, size_t n, const char *name, const char *want)
{
    char *v = native_field(d, n, name);
    if (!v)
        fail_msg("%s missing", name);
    assert_string_equal(v, want);
    free(v);
}

static int journal_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv), 0);
    int fl = fcntl(sv[1], F_GETFL);
    assert_int_equal(fcntl(sv[1], F_SETFL, fl | O_NONBLOCK), 0);
    log_set_journal_fd(sv[0]);
    log_setup(LOG_LEVEL_INFO);
    log_set_journal(true);
    return 0;
}

static void journal_pair_done(int sv[2])
{
    log_set_journal_fd(-1);
    log_set_journal(false);
    close(sv[0]);
    close(sv[1]);
}

/* The fields and their order are those sd_journal_sendv() got; a value with a newline takes the
 * binary form, bytes that are not UTF-8 become U+FFFD. */
static void test_journal_native(void **state)
{
    (void)state;
    int sv[2];
    journal_pair(sv);
    log_event(LOG_LEVEL_WARN, MSGID_ENQUEUED,
              LOG_FIELDS(.place_id = "P", .job_id = "J", .http_status = 202, .duration_usec = 1500,
                         .has_duration = true, .attempt = -3),
              "job %s", "enqueued");
    char d[4096];
    ssize_t n = recv(sv[1], d, sizeof(d), 0);
    static const char want[] = "MESSAGE=job enqueued\nPRIORITY=4\n"
                               "SYSLOG_IDENTIFIER=argus-orchestrator\n"
                               "MESSAGE_ID=" MSGID_ENQUEUED "\nPLACE_ID=P\nJOB_ID=J\n"
                               "HTTP_STATUS=202\nDURATION_USEC=1500\nATTEMPT=-3\n";
    assert_int_equal(n, sizeof(want) - 1);
    assert_memory_equal(d, want, sizeof(want) - 1);

    log_info(NULL, LOG_FIELDS(.error = "bad\xff"), "two\nlines");
    n = recv(sv[1], d, sizeof(d), 0);
    assert_true(n > 0);
    static const char head[] = "MESSAGE\n\x09\0\0\0\0\0\0\0two\nlines\nPRIORITY=6\n";
    assert_memory_equal(d, head, sizeof(head) - 1);
    assert_native_field(d, (size_t)n, "ERROR", "bad\xef\xbf\xbd");
    assert_null(native_field(d, (size_t)n, "MESSAGE_ID"));
    journal_pair_done(sv);
}

/* An entry too large for a datagram goes as a sealed memfd, as sd_journal_sendv() sends it. */
static void test_journal_memfd(void **state)
{
    (void)state;
    int sv[2];
    journal_pair(sv);
    int small = 1;
    assert_int_equal(setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &small, sizeof(small)), 0);
    size_t big = 64 * 1024;
    char *err = malloc(big + 1);
    assert_non_null(err);
    memset(err, 'e', big);
    err[big] = '\0';
    log_info(NULL, LOG_FIELDS(.error = err), "large");
    char d[16];
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } control;
    struct iovec iov = {d, sizeof(d)};
    struct msghdr mh = {.msg_iov = &iov,
                        .msg_iovlen = 1,
                        .msg_control = &control,
                        .msg_controllen = sizeof(control)};
    assert_int_equal(recvmsg(sv[1], &mh, MSG_CMSG_CLOEXEC), 0);
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    assert_non_null(c);
    assert_int_equal(c->cmsg_type, SCM_RIGHTS);
    int mfd;
    memcpy(&mfd, CMSG_DATA(c), sizeof(int));
    assert_true(fcntl(mfd, F_GET_SEALS) & F_SEAL_WRITE);
    off_t size = lseek(mfd, 0, SEEK_END);
    char *entry = malloc((size_t)size);
    assert_non_null(entry);
    assert_int_equal(pread(mfd, entry, (size_t)size, 0), size);
    assert_native_field(entry, (size_t)size, "MESSAGE", "large");
    assert_native_field(entry, (size_t)size, "ERROR", err);
    close(mfd);
    free(entry);
    free(err);
    journal_pair_done(sv);
}

/* Receives what is waiting on fd, running the loop so that the queue flushes, until `until`
 * entries came or nothing moves any more. Returns the entries (malloc'd, each malloc'd). */
static char **journal_drain(int fd, sd_event *e, size_t until, size_t *ret_n)
{
    size_t n = 0, cap = 1024;
    char **v = malloc(cap * sizeof(*v));
    assert_non_null(v);
    static char d[65536];
    for (int idle = 0; n < until && idle < 50;) {
        ssize_t k = recv(fd, d, sizeof(d), MSG_DONTWAIT);
        if (k > 0) {
            if (n == cap)
                v = realloc(v, (cap *= 2) * sizeof(*v));
            assert_non_null(v);
            v[n] = malloc((size_t)k + 1);
            memcpy(v[n], d, (size_t)k);
            v[n][k] = '\0';
            n++;
            idle = 0;
            continue;
        }
        assert_true(sd_event_run(e, 10000) >= 0);
        idle++;
    }
    *ret_n = n;
    return v;
}

/* journald stops reading: nothing waits, the queue keeps the entries in order up to its bound,
 * the rest is dropped and counted, and once entries flow again one says how many. */
static void test_journal_queue(void **state)
{
    (void)state;
    int sv[2];
    journal_pair(sv);
    sd_event *e;
    assert_int_equal(sd_event_new(&e), 0);
    log_attach_event(e);
    uint64_t dropped0 = log_dropped(LOG_SINK_JOURNAL);

    const int total = 30000;
    for (int i = 0; i < total; i++)
        log_info(MSGID_ENQUEUED, LOG_FIELDS(.place_id = "P", .attempt = i + 1), "entry %d", i);
    uint64_t dropped = log_dropped(LOG_SINK_JOURNAL) - dropped0;
    assert_true(dropped > 0);
    assert_true(dropped < (uint64_t)total);
    /* Still full: these are dropped too, and counted. */
    log_info(NULL, NULL, "entry %d", total);
    assert_int_equal(log_dropped(LOG_SINK_JOURNAL) - dropped0, dropped + 1);

    size_t kept = (size_t)total - (size_t)dropped;
    size_t n;
    char **v = journal_drain(sv[1], e, kept + 1, &n);
    assert_int_equal(n, kept + 1);
    for (size_t i = 0; i < kept; i++) {
        char want[32];
        snprintf(want, sizeof(want), "entry %zu", i);
        assert_native_field(v[i], strlen(v[i]), "MESSAGE", want);
    }
    char count[32];
    snprintf(count, sizeof(count), "%llu", (unsigned long long)dropped + 1);
    assert_native_field(v[kept], strlen(v[kept]), "MESSAGE_ID", MSGID_LOG_DROPPED);
    assert_native_field(v[kept], strlen(v[kept]), "PRIORITY", "4");
    assert_native_field(v[kept], strlen(v[kept]), "DROPPED_ENTRIES", count);
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);

    /* Flowing again: sent at once, no second note. */
    log_info(NULL, NULL, "after");
    char d[4096];
    ssize_t k = recv(sv[1], d, sizeof(d), MSG_DONTWAIT);
    assert_true(k > 0);
    assert_native_field(d, (size_t)k, "MESSAGE", "after");
    assert_int_equal(recv(sv[1], d, sizeof(d), MSG_DONTWAIT), -1);

    log_detach_event();
    sd_event_unref(e);
    journal_pair_done(sv);
}

/* ---- stderr on a pipe that stops being read ---- */

static void test_stderr_pipe(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    (void)fcntl(p[1], F_SETPIPE_SZ, 4096);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    log_setup(LOG_LEVEL_INFO);
    log_set_journal(false);
    sd_event *e;
    assert_int_equal(sd_event_new(&e), 0);
    log_attach_event(e);
    uint64_t dropped0 = log_dropped(LOG_SINK_STDERR);

    /* Nobody reads: this must not block (the test would hang), lines past the bound are
     * dropped and counted. */
    const int total = 80000; /* ~85 bytes each: past the bound (5 MiB with nothing owed) */
    log_set_buffered(true);
    for (int i = 0; i < total; i++) {
        log_info(NULL, LOG_FIELDS(.attempt = i + 1), "line %d", i);
        if (i % 100 == 0)
            log_flush();
    }
    log_flush();
    uint64_t dropped = log_dropped(LOG_SINK_STDERR) - dropped0;
    assert_true(dropped > 0);
    /* The pipe's own description (shared with whoever gave it to us) stays blocking. */
    assert_int_equal(fcntl(STDERR_FILENO, F_GETFL) & O_NONBLOCK, 0);

    /* Read again: the kept lines in order, then one saying how many were dropped. */
    int fl = fcntl(p[0], F_GETFL);
    assert_int_equal(fcntl(p[0], F_SETFL, fl | O_NONBLOCK), 0);
    size_t cap = 8 << 20, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    for (int idle = 0; idle < 50;) {
        ssize_t k = read(p[0], out + len, cap - len - 1);
        if (k > 0) {
            len += (size_t)k;
            idle = 0;
            continue;
        }
        assert_true(sd_event_run(e, 10000) >= 0);
        idle++;
    }
    out[len] = '\0';
    size_t kept = (size_t)total - (size_t)dropped, n = 0;
    for (const char *q = out; *q; n++) {
        const char *nl = strchr(q, '\n');
        assert_non_null(nl);
        json_object *o = parse_line(q, (size_t)(nl - q) + 1);
        if (n < kept) {
            char want[32];
            snprintf(want, sizeof(want), "line %zu", n);
            assert_string_member(o, "msg", want);
        } else {
            assert_int_equal(n, kept);
            assert_string_member(o, "level", "warn");
            json_object *c;
            assert_true(json_object_object_get_ex(o, "droppedEntries", &c));
            assert_int_equal(json_object_get_int64(c), (int64_t)dropped);
        }
        json_object_put(o);
        q = nl + 1;
    }
    assert_int_equal(n, kept + 1);
    free(out);

    log_set_buffered(false);
    log_detach_event();
    sd_event_unref(e);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    close(p[0]);
    close(p[1]);
    log_setup(LOG_LEVEL_INFO);
    log_set_journal(false);
}

/* ---- several threads at once ---- */

#define LOG_THREADS 8
#define LOG_THREAD_ENTRIES 1000

/* A long message, so that an entry takes a while to format: without the lock, threads would
 * write over each other's. */
#define THREAD_PAD "...................................................................."

/* The threads start together, so that they log at the same time. */
static pthread_barrier_t threads_start;

static void *log_from_thread(void *arg)
{
    int t = (int)(intptr_t)arg;
    (void)pthread_barrier_wait(&threads_start);
    char place[32];
    snprintf(place, sizeof(place), "thread-%d", t);
    for (int i = 0; i < LOG_THREAD_ENTRIES; i++)
        log_info(MSGID_ENQUEUED, LOG_FIELDS(.place_id = place, .attempt = i + 1),
                 "thread %d entry %d " THREAD_PAD THREAD_PAD, t, i);
    return NULL;
}

static void start_threads(pthread_t th[LOG_THREADS])
{
    assert_int_equal(pthread_barrier_init(&threads_start, NULL, LOG_THREADS), 0);
    for (int t = 0; t < LOG_THREADS; t++)
        assert_int_equal(pthread_create(&th[t], NULL, log_from_thread, (void *)(intptr_t)t), 0);
}

static void join_threads(pthread_t th[LOG_THREADS])
{
    for (int t = 0; t < LOG_THREADS; t++)
        assert_int_equal(pthread_join(th[t], NULL), 0);
    assert_int_equal(pthread_barrier_destroy(&threads_start), 0);
}

/* One entry came from thread t as its entry i: they come in order for each thread, none twice,
 * none missing (checked at the end: next[t] == LOG_THREAD_ENTRIES). */
static void thread_entry_seen(int next[LOG_THREADS], const char *msg, const char *place,
                              long long attempt)
{
    int t, i;
    char tail;
    if (sscanf(msg, "thread %d entry %d %c", &t, &i, &tail) != 3 || t < 0 || t >= LOG_THREADS)
        fail_msg("not an entry of the threads: \"%s\"", msg);
    char want[256];
    snprintf(want, sizeof(want), "thread %d entry %d " THREAD_PAD THREAD_PAD, t, i);
    assert_string_equal(msg, want);
    snprintf(want, sizeof(want), "thread-%d", t);
    assert_string_equal(place, want);
    assert_int_equal(attempt, i + 1);
    assert_int_equal(i, next[t]);
    next[t]++;
}

/* JSON lines from several threads into a pipe, buffered under a loop as the manager runs it:
 * every line is whole, valid JSON and there, in each thread's order, though the loop's thread
 * never calls log_flush() (the threads wake it). */
static void test_threads_json_lines(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
    log_setup(LOG_LEVEL_INFO);
    log_set_journal(false);
    sd_event *e;
    assert_int_equal(sd_event_new(&e), 0);
    log_attach_event(e);
    log_set_buffered(true);
    uint64_t dropped0 = log_dropped(LOG_SINK_STDERR);

    pthread_t th[LOG_THREADS];
    start_threads(th);
    int fl = fcntl(p[0], F_GETFL);
    assert_int_equal(fcntl(p[0], F_SETFL, fl | O_NONBLOCK), 0);
    size_t cap = 8 << 20, len = 0;
    char *out = malloc(cap);
    assert_non_null(out);
    size_t lines = 0;
    const size_t total = (size_t)LOG_THREADS * LOG_THREAD_ENTRIES;
    for (int idle = 0; lines < total && idle < 500;) {
        ssize_t k = read(p[0], out + len, cap - len - 1);
        if (k > 0) {
            for (ssize_t j = 0; j < k; j++)
                lines += out[len + (size_t)j] == '\n';
            len += (size_t)k;
            idle = 0;
            continue;
        }
        assert_true(sd_event_run(e, 10000) >= 0);
        idle++;
    }
    join_threads(th);
    out[len] = '\0';
    assert_int_equal(log_dropped(LOG_SINK_STDERR) - dropped0, 0);

    int next[LOG_THREADS] = {0};
    size_t n = 0;
    for (const char *q = out; *q; n++) {
        const char *nl = strchr(q, '\n');
        assert_non_null(nl);
        json_object *o = parse_line(q, (size_t)(nl - q) + 1);
        json_object *msg, *place, *attempt;
        assert_true(json_object_object_get_ex(o, "msg", &msg));
        assert_true(json_object_object_get_ex(o, "placeId", &place));
        assert_true(json_object_object_get_ex(o, "attempt", &attempt));
        thread_entry_seen(next, json_object_get_string(msg), json_object_get_string(place),
                          (long long)json_object_get_int64(attempt));
        json_object_put(o);
        q = nl + 1;
    }
    assert_int_equal(n, total);
    for (int t = 0; t < LOG_THREADS; t++)
        assert_int_equal(next[t], LOG_THREAD_ENTRIES);
    free(out);

    log_set_buffered(false);
    log_detach_event();
    sd_event_unref(e);
    assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
    close(saved);
    close(p[0]);
    close(p[1]);
    log_setup(LOG_LEVEL_INFO);
    log_set_journal(false);
}

/* Journal entries from several threads on a datagram socket (log_set_journal_fd), flushed by a
 * loop on this thread when the socket is full: every datagram is one whole entry, and all are
 * there, in each thread's order. */
static void test_threads_journal(void **state)
{
    (void)state;
    int sv[2];
    journal_pair(sv);
    sd_event *e;
    assert_int_equal(sd_event_new(&e), 0);
    log_attach_event(e);
    uint64_t dropped0 = log_dropped(LOG_SINK_JOURNAL);

    pthread_t th[LOG_THREADS];
    start_threads(th);
    const size_t total = (size_t)LOG_THREADS * LOG_THREAD_ENTRIES;
    size_t n;
    char **v = journal_drain(sv[1], e, total, &n);
    join_threads(th);
    assert_int_equal(log_dropped(LOG_SINK_JOURNAL) - dropped0, 0);
    assert_int_equal(n, total);

    int next[LOG_THREADS] = {0};
    for (size_t i = 0; i < n; i++) {
        size_t l = strlen(v[i]);
        assert_native_field(v[i], l, "PRIORITY", "6");
        assert_native_field(v[i], l, "MESSAGE_ID", MSGID_ENQUEUED);
        char *msg = native_field(v[i], l, "MESSAGE");
        char *place = native_field(v[i], l, "PLACE_ID");
        char *attempt = native_field(v[i], l, "ATTEMPT");
        assert_non_null(msg);
        assert_non_null(place);
        assert_non_null(attempt);
        thread_entry_seen(next, msg, place, atoll(attempt));
        free(msg);
        free(place);
        free(attempt);
        free(v[i]);
    }
    free(v);
    for (int t = 0; t < LOG_THREADS; t++)
        assert_int_equal(next[t], LOG_THREAD_ENTRIES);

    log_detach_event();
    sd_event_unref(e);
    journal_pair_done(sv);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_journal_stream_null_and_garbage),
        cmocka_unit_test(test_journal_stream_match),
        cmocka_unit_test(test_json_line),
        cmocka_unit_test(test_json_line_levels),
        cmocka_unit_test(test_level_filter),
        cmocka_unit_test(test_json_line_escaping),
        cmocka_unit_test(test_json_line_long_message),
        cmocka_unit_test(test_json_line_truncated_utf8),
        cmocka_unit_test(test_errno_preserved),
        cmocka_unit_test(test_setup_detects_journal),
        cmocka_unit_test(test_journal_native),
        cmocka_unit_test(test_journal_memfd),
        cmocka_unit_test(test_journal_queue),
        cmocka_unit_test(test_stderr_pipe),
        cmocka_unit_test(test_threads_json_lines),
        cmocka_unit_test(test_threads_journal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
