/* SPDX-License-Identifier: MIT */
/* Unit tests of src/log.h: journal stream detection and the JSON-lines sink on stderr. */
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
#include <sys/stat.h>
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
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
