/* SPDX-License-Identifier: MIT */
/* Unit tests of src/core/config.h, src/basic/parse-util.h and src/log/log-level.h: config_load over
 * a table, config_dump, parse_uint32, log levels. */
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>

#include "config.h"
#include "parse-util.h"

typedef struct Var {
    const char *name;
    const char *value;
} Var;

/* userdata: an array of Var ended by {NULL, NULL}. */
static const char *table_lookup(const char *name, void *userdata)
{
    for (const Var *v = userdata; v && v->name; v++)
        if (strcmp(v->name, name) == 0)
            return v->value;
    return NULL;
}

/* Loads a config where only `name` is set, to `value`. */
static int load_one(Config *c, const char *name, const char *value, const char **ret_name,
                    const char **ret_value)
{
    Var vars[] = {{name, value}, {NULL, NULL}};
    return config_load(c, table_lookup, vars, ret_name, ret_value);
}

/* name=value must be accepted; returns with *c loaded (the caller calls config_done). */
static void load_ok(Config *c, const char *name, const char *value)
{
    const char *rn = NULL, *rv = NULL;
    int r = load_one(c, name, value, &rn, &rv);
    if (r != 0)
        fail_msg("%s=\"%s\" rejected: r=%d name=%s value=%s", name, value, r, rn ? rn : "(null)",
                 rv ? rv : "(null)");
}

/* name=value must be rejected with -EINVAL, naming that variable and value. */
static void load_bad(const char *name, const char *value)
{
    Var vars[] = {{name, value}, {NULL, NULL}};
    Config c;
    memset(&c, 0xa5, sizeof(c));
    const char *rn = NULL, *rv = NULL;
    int r = config_load(&c, table_lookup, vars, &rn, &rv);
    if (r != -EINVAL)
        fail_msg("%s=\"%s\": got r=%d, want -EINVAL", name, value, r);
    if (!rn || strcmp(rn, name) != 0)
        fail_msg("%s=\"%s\": ret_name is %s", name, value, rn ? rn : "(null)");
    if (!rv || strcmp(rv, value) != 0)
        fail_msg("%s=\"%s\": ret_value is %s", name, value, rv ? rv : "(null)");
    /* Borrowed from the lookup, not copied. */
    assert_ptr_equal(rv, value);
    /* Nothing is left allocated (AddressSanitizer checks), and config_done is still safe. */
    assert_null(c.worker_url);
    assert_null(c.worker_enqueue);
    config_done(&c);
}

static void assert_defaults(const Config *c)
{
    assert_int_equal(c->port, 8080);
    assert_string_equal(c->worker_url, "http://localhost:3000");
    assert_string_equal(c->worker_enqueue, "http://localhost:3000/enqueue");
    assert_int_equal(c->log_level, LOG_LEVEL_INFO);
    assert_int_equal(c->worker_timeout_ms, 5000);
    assert_int_equal(c->worker_retries, 2);
    assert_int_equal(c->worker_max_connections, 64);
    assert_int_equal(c->max_body_bytes, 16384);
    assert_int_equal(c->shutdown_timeout_sec, 20);
    assert_int_equal(c->idle_exit_sec, 0);
    assert_false(c->http2);
    assert_int_equal(c->breaker_threshold, 5);
    assert_int_equal(c->breaker_cooldown_sec, 5);
    assert_int_equal(c->max_connections, 4096);
}

static void test_defaults(void **state)
{
    (void)state;
    Var none[] = {{NULL, NULL}};
    Config c;
    memset(&c, 0xa5, sizeof(c));
    const char *rn = NULL, *rv = NULL;
    assert_int_equal(config_load(&c, table_lookup, none, &rn, &rv), 0);
    assert_null(rn);
    assert_null(rv);
    assert_defaults(&c);
    config_done(&c);
    assert_null(c.worker_url);
    assert_null(c.worker_enqueue);
    config_done(&c); /* twice is fine */
}

static void test_unrelated_variables_ignored(void **state)
{
    (void)state;
    Var vars[] = {{"HOME", "/root"}, {"port", "1"}, {"PORT_", "2"}, {NULL, NULL}};
    Config c;
    const char *rn = NULL, *rv = NULL;
    assert_int_equal(config_load(&c, table_lookup, vars, &rn, &rv), 0);
    assert_defaults(&c);
    config_done(&c);
}

static void test_all_set(void **state)
{
    (void)state;
    Var vars[] = {
        {"PORT", "9090"},
        {"WORKER_NODE_URL", "https://worker.example:8443/api/"},
        {"LOG_LEVEL", "DEBUG"},
        {"WORKER_TIMEOUT_MS", "250"},
        {"WORKER_RETRIES", "0"},
        {"WORKER_MAX_CONNECTIONS", "8"},
        {"MAX_BODY_BYTES", "1024"},
        {"SHUTDOWN_TIMEOUT_SEC", "3"},
        {"IDLE_EXIT_SEC", "60"},
        {"HTTP2", "on"},
        {NULL, NULL},
    };
    Config c;
    const char *rn = NULL, *rv = NULL;
    assert_int_equal(config_load(&c, table_lookup, vars, &rn, &rv), 0);
    assert_int_equal(c.port, 9090);
    assert_string_equal(c.worker_url, "https://worker.example:8443/api");
    assert_string_equal(c.worker_enqueue, "https://worker.example:8443/api/enqueue");
    assert_int_equal(c.log_level, LOG_LEVEL_DEBUG);
    assert_int_equal(c.worker_timeout_ms, 250);
    assert_int_equal(c.worker_retries, 0);
    assert_int_equal(c.worker_max_connections, 8);
    assert_int_equal(c.max_body_bytes, 1024);
    assert_int_equal(c.shutdown_timeout_sec, 3);
    assert_int_equal(c.idle_exit_sec, 60);
    assert_true(c.http2);
    config_done(&c);
}

/* ---- PORT ---- */

static void test_port_good(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        unsigned v;
    } good[] = {{"1", 1}, {"80", 80}, {"8080", 8080}, {"65535", 65535}, {"3000", 3000}};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        Config c;
        load_ok(&c, "PORT", good[i].s);
        assert_int_equal(c.port, good[i].v);
        config_done(&c);
    }
}

static void test_port_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "0",
        "65536",
        "abc",
        "-1",
        " 80",
        "80 ",
        "80x",
        "",
        "+80",
        "0x50",
        "8080.0",
        "1e3",
        "99999999999999999999999",
        "4294967376", /* 2^32 + 80 must not wrap to 80 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        load_bad("PORT", bad[i]);
}

/* ---- WORKER_NODE_URL ---- */

static void check_url(const char *in, const char *want_url, const char *want_enqueue)
{
    Config c;
    load_ok(&c, "WORKER_NODE_URL", in);
    if (strcmp(c.worker_url, want_url) != 0)
        fail_msg("\"%s\": worker_url \"%s\", want \"%s\"", in, c.worker_url, want_url);
    if (strcmp(c.worker_enqueue, want_enqueue) != 0)
        fail_msg("\"%s\": worker_enqueue \"%s\", want \"%s\"", in, c.worker_enqueue, want_enqueue);
    config_done(&c);
}

static void test_url_good(void **state)
{
    (void)state;
    check_url("http://localhost:3000", "http://localhost:3000", "http://localhost:3000/enqueue");
    check_url("http://worker", "http://worker", "http://worker/enqueue");
    check_url("http://worker/", "http://worker", "http://worker/enqueue");
    check_url("https://h:1/base/", "https://h:1/base", "https://h:1/base/enqueue");
    check_url("https://h:1/base", "https://h:1/base", "https://h:1/base/enqueue");
    check_url("http://h///", "http://h", "http://h/enqueue");
    check_url("http://10.0.0.7:3000/a/b", "http://10.0.0.7:3000/a/b",
              "http://10.0.0.7:3000/a/b/enqueue");
    check_url("http://[::1]:3000", "http://[::1]:3000", "http://[::1]:3000/enqueue");
    check_url("HTTP://Example.COM", "HTTP://Example.COM", "HTTP://Example.COM/enqueue");
}

static void test_url_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "ftp://x",
        "localhost:3000",
        "//localhost:3000",
        "http:/localhost",
        "http:localhost",
        "http://",
        "https://",
        "http:///path",
        "http://:3000",
        "http://a b",
        "http://a\tb",
        " http://a",
        "http://a ",
        "http://a/b c",
        "http://a\n",
        "http://h?x=1",
        "http://h/?",
        "http://h/path?q",
        "http://h#frag",
        "http://h/#",
        "http://user@h",
        "http://user:pw@h:3000/",
        "http://@h",
        "http://h\\x",
        "http://h/\"",
        "http://h/\xc3\xa9",
        "unix:/run/worker.sock",
        "httpx://h",
        "http://localhost:notaport",
        "http://h:99999",
        "http://h:65536/",
        "http://[::1",
        "http://[::1]x",
        "http://h%zz",
        "http://h:-1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        load_bad("WORKER_NODE_URL", bad[i]);
}

/* ---- LOG_LEVEL ---- */

static void test_log_level_good(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        LogLevel l;
    } good[] = {
        {"debug", LOG_LEVEL_DEBUG}, {"DEBUG", LOG_LEVEL_DEBUG}, {"Debug", LOG_LEVEL_DEBUG},
        {"info", LOG_LEVEL_INFO},   {"INFO", LOG_LEVEL_INFO},   {"iNfO", LOG_LEVEL_INFO},
        {"warn", LOG_LEVEL_WARN},   {"WARN", LOG_LEVEL_WARN},   {"error", LOG_LEVEL_ERROR},
        {"ERROR", LOG_LEVEL_ERROR}, {"Error", LOG_LEVEL_ERROR},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        Config c;
        load_ok(&c, "LOG_LEVEL", good[i].s);
        if (c.log_level != good[i].l)
            fail_msg("LOG_LEVEL=%s: got %d, want %d", good[i].s, c.log_level, good[i].l);
        config_done(&c);
    }
}

static void test_log_level_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {"verbose", "",      "inf", "debug ", " info",
                                      "trace",   "fatal", "0",   "infoo",  "err"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        load_bad("LOG_LEVEL", bad[i]);
}

static void test_log_level_strings(void **state)
{
    (void)state;
    assert_string_equal(log_level_to_string(LOG_LEVEL_DEBUG), "debug");
    assert_string_equal(log_level_to_string(LOG_LEVEL_INFO), "info");
    assert_string_equal(log_level_to_string(LOG_LEVEL_WARN), "warn");
    assert_string_equal(log_level_to_string(LOG_LEVEL_ERROR), "error");
    assert_null(log_level_to_string((LogLevel)4));
    assert_null(log_level_to_string((LogLevel)-1));

    LogLevel l = LOG_LEVEL_ERROR;
    assert_int_equal(log_level_from_string("debug", &l), 0);
    assert_int_equal(l, LOG_LEVEL_DEBUG);
    assert_int_equal(log_level_from_string("WARN", &l), 0);
    assert_int_equal(l, LOG_LEVEL_WARN);
    l = LOG_LEVEL_INFO;
    assert_true(log_level_from_string("verbose", &l) < 0);
    assert_int_equal(l, LOG_LEVEL_INFO);
}

/* ---- numeric variables ---- */

typedef struct UintCase {
    const char *name;
    size_t offset;
    uint32_t def, min, max;
} UintCase;

static const UintCase uint_cases[] = {
    {"WORKER_TIMEOUT_MS", offsetof(Config, worker_timeout_ms), 5000, 1, 600000},
    {"WORKER_RETRIES", offsetof(Config, worker_retries), 2, 0, 10},
    {"WORKER_MAX_CONNECTIONS", offsetof(Config, worker_max_connections), 64, 1, 4096},
    {"MAX_BODY_BYTES", offsetof(Config, max_body_bytes), 16384, 64, 16 * 1024 * 1024},
    {"MAX_BATCH", offsetof(Config, max_batch), 1000, 1, 100000},
    {"MAX_BATCH_BYTES", offsetof(Config, max_batch_bytes), 131072, 64, 16 * 1024 * 1024},
    {"SHUTDOWN_TIMEOUT_SEC", offsetof(Config, shutdown_timeout_sec), 20, 1, 3600},
    {"IDLE_EXIT_SEC", offsetof(Config, idle_exit_sec), 0, 0, 7 * 86400},
    {"BREAKER_THRESHOLD", offsetof(Config, breaker_threshold), 5, 0, 1000},
    {"BREAKER_COOLDOWN_SEC", offsetof(Config, breaker_cooldown_sec), 5, 1, 3600},
    {"MAX_CONNECTIONS", offsetof(Config, max_connections), 4096, 1, 40000},
    {"MAX_PENDING_JOBS", offsetof(Config, max_pending_jobs), 1024, 1, 1000000},
    {"SPOOL_MAX_JOBS", offsetof(Config, spool_max_jobs), 1000000, 1, 100000000},
    {"SPOOL_RETRY_MAX_SEC", offsetof(Config, spool_retry_max_sec), 300, 1, 86400},
    {"SPOOL_MAX_AGE_SEC", offsetof(Config, spool_max_age_sec), 432000, 0, 31536000},
};

static uint32_t field(const Config *c, size_t offset)
{
    uint32_t v;
    memcpy(&v, (const char *)c + offset, sizeof(v));
    return v;
}

static void uint_ok(const UintCase *u, uint32_t v)
{
    char s[32];
    snprintf(s, sizeof(s), "%u", v);
    Config c;
    load_ok(&c, u->name, s);
    if (field(&c, u->offset) != v)
        fail_msg("%s=%s: got %u", u->name, s, field(&c, u->offset));
    config_done(&c);
}

static void test_uint_vars(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(uint_cases) / sizeof(uint_cases[0]); i++) {
        const UintCase *u = &uint_cases[i];

        /* Default. */
        Var none[] = {{NULL, NULL}};
        Config c;
        const char *rn = NULL, *rv = NULL;
        assert_int_equal(config_load(&c, table_lookup, none, &rn, &rv), 0);
        if (field(&c, u->offset) != u->def)
            fail_msg("%s default: got %u, want %u", u->name, field(&c, u->offset), u->def);
        config_done(&c);

        /* The bounds are included. */
        uint_ok(u, u->min);
        uint_ok(u, u->min + 1);
        uint_ok(u, u->def);
        uint_ok(u, u->max - 1);
        uint_ok(u, u->max);

        /* Just outside. */
        char s[32];
        if (u->min > 0) {
            snprintf(s, sizeof(s), "%u", u->min - 1);
            load_bad(u->name, s);
        }
        snprintf(s, sizeof(s), "%u", u->max + 1);
        load_bad(u->name, s);

        static const char *const bad[] = {
            "",
            "abc",
            "-1",
            " 5",
            "5 ",
            "5x",
            "+5",
            "0x10",
            "1.5",
            "1e3",
            "4294967296",
            "18446744073709551616",
            "99999999999999999999999999",
        };
        for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
            load_bad(u->name, bad[k]);
    }
}

/* ---- HTTP2 ---- */

static void test_http2(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool v;
    } good[] = {
        {"on", true},     {"ON", true},  {"true", true}, {"True", true}, {"1", true},
        {"yes", true},    {"YES", true}, {"off", false}, {"OFF", false}, {"false", false},
        {"FALSE", false}, {"0", false},  {"no", false},  {"No", false},
    };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        Config c;
        load_ok(&c, "HTTP2", good[i].s);
        if (c.http2 != good[i].v)
            fail_msg("HTTP2=%s: got %d", good[i].s, c.http2);
        config_done(&c);
    }

    static const char *const bad[] = {"maybe", "", "2", "onn", " on", "off ", "y", "n", "h2c"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        load_bad("HTTP2", bad[i]);
}

/* A bad value among good ones is the one named. */
static void test_bad_among_good(void **state)
{
    (void)state;
    static const char bad_value[] = "lots";
    Var vars[] = {
        {"PORT", "9090"},      {"WORKER_NODE_URL", "http://w:1"},
        {"LOG_LEVEL", "warn"}, {"WORKER_RETRIES", bad_value},
        {"HTTP2", "on"},       {NULL, NULL},
    };
    Config c;
    const char *rn = NULL, *rv = NULL;
    assert_int_equal(config_load(&c, table_lookup, vars, &rn, &rv), -EINVAL);
    assert_string_equal(rn, "WORKER_RETRIES");
    assert_ptr_equal(rv, bad_value);
    config_done(&c);
}

/* ---- config_dump ---- */

static void assert_has_line(const char *dump, const char *line)
{
    size_t l = strlen(line);
    for (const char *p = dump; (p = strstr(p, line)); p++)
        if ((p == dump || p[-1] == '\n') && p[l] == '\n')
            return;
    fail_msg("line \"%s\" missing from:\n%s", line, dump);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

static void test_dump_defaults(void **state)
{
    (void)state;
    Var none[] = {{NULL, NULL}};
    Config c;
    const char *rn = NULL, *rv = NULL;
    assert_int_equal(config_load(&c, table_lookup, none, &rn, &rv), 0);
    char *d = NULL;
    assert_int_equal(config_dump(&c, &d), 0);
    assert_non_null(d);
    assert_has_line(d, "PORT=8080");
    assert_has_line(d, "WORKER_NODE_URL=http://localhost:3000");
    assert_has_line(d, "LOG_LEVEL=info");
    assert_has_line(d, "WORKER_TIMEOUT_MS=5000");
    assert_has_line(d, "WORKER_RETRIES=2");
    assert_has_line(d, "WORKER_MAX_CONNECTIONS=64");
    assert_has_line(d, "MAX_BODY_BYTES=16384");
    assert_has_line(d, "MAX_BATCH=1000");
    assert_has_line(d, "MAX_BATCH_BYTES=131072");
    assert_has_line(d, "SHUTDOWN_TIMEOUT_SEC=20");
    assert_has_line(d, "IDLE_EXIT_SEC=0");
    assert_has_line(d, "HTTP2=off");
    assert_has_line(d, "BREAKER_THRESHOLD=5");
    assert_has_line(d, "BREAKER_COOLDOWN_SEC=5");
    assert_has_line(d, "MAX_CONNECTIONS=4096");
    assert_has_line(d, "MAX_PENDING_JOBS=1024");
    assert_has_line(d, "SPOOL_DIR=");
    assert_has_line(d, "SPOOL_MAX_JOBS=1000000");
    assert_has_line(d, "SPOOL_RETRY_MAX_SEC=300");
    assert_has_line(d, "SPOOL_MAX_AGE_SEC=432000");
    assert_true(strstr(d, "\nTHREADS=") != NULL);
    assert_int_equal(count_lines(d), 21);
    assert_int_equal(d[strlen(d) - 1], '\n');
    free(d);
    config_done(&c);
}

static void test_dump_custom(void **state)
{
    (void)state;
    Var vars[] = {
        {"PORT", "1"},
        {"WORKER_NODE_URL", "https://h:1/base/"},
        {"LOG_LEVEL", "Error"},
        {"WORKER_TIMEOUT_MS", "600000"},
        {"WORKER_RETRIES", "10"},
        {"WORKER_MAX_CONNECTIONS", "4096"},
        {"MAX_BODY_BYTES", "64"},
        {"SHUTDOWN_TIMEOUT_SEC", "3600"},
        {"IDLE_EXIT_SEC", "604800"},
        {"HTTP2", "yes"},
        {"BREAKER_THRESHOLD", "0"},
        {"BREAKER_COOLDOWN_SEC", "3600"},
        {"MAX_CONNECTIONS", "1"},
        {"MAX_PENDING_JOBS", "1000000"},
        {"SPOOL_DIR", "/var/spool/argus"},
        {"SPOOL_MAX_JOBS", "7"},
        {"SPOOL_RETRY_MAX_SEC", "86400"},
        {"SPOOL_MAX_AGE_SEC", "0"},
        {"THREADS", "256"},
        {NULL, NULL},
    };
    Config c;
    const char *rn = NULL, *rv = NULL;
    assert_int_equal(config_load(&c, table_lookup, vars, &rn, &rv), 0);
    char *d = NULL;
    assert_int_equal(config_dump(&c, &d), 0);
    assert_non_null(d);
    assert_has_line(d, "PORT=1");
    assert_has_line(d, "WORKER_NODE_URL=https://h:1/base");
    assert_has_line(d, "LOG_LEVEL=error");
    assert_has_line(d, "WORKER_TIMEOUT_MS=600000");
    assert_has_line(d, "WORKER_RETRIES=10");
    assert_has_line(d, "WORKER_MAX_CONNECTIONS=4096");
    assert_has_line(d, "MAX_BODY_BYTES=64");
    assert_has_line(d, "SHUTDOWN_TIMEOUT_SEC=3600");
    assert_has_line(d, "IDLE_EXIT_SEC=604800");
    assert_has_line(d, "HTTP2=on");
    assert_has_line(d, "BREAKER_THRESHOLD=0");
    assert_has_line(d, "BREAKER_COOLDOWN_SEC=3600");
    assert_has_line(d, "MAX_CONNECTIONS=1");
    assert_has_line(d, "MAX_PENDING_JOBS=1000000");
    assert_has_line(d, "SPOOL_DIR=/var/spool/argus");
    assert_has_line(d, "SPOOL_MAX_JOBS=7");
    assert_has_line(d, "SPOOL_RETRY_MAX_SEC=86400");
    assert_has_line(d, "SPOOL_MAX_AGE_SEC=0");
    assert_has_line(d, "THREADS=256");
    assert_int_equal(count_lines(d), 21);
    free(d);
    config_done(&c);
}

/* SPOOL_DIR: unset, the first of $STATE_DIRECTORY; set and empty, none; either way absolute. */
static void test_spool_dir(void **state)
{
    (void)state;
    Config c;
    const char *rn = NULL, *rv = NULL;

    Var none[] = {{NULL, NULL}};
    assert_int_equal(config_load(&c, table_lookup, none, &rn, &rv), 0);
    assert_null(c.spool_dir);
    config_done(&c);

    Var state_dir[] = {{"STATE_DIRECTORY", "/var/lib/argus-orchestrator:/var/lib/other"},
                       {NULL, NULL}};
    assert_int_equal(config_load(&c, table_lookup, state_dir, &rn, &rv), 0);
    assert_string_equal(c.spool_dir, "/var/lib/argus-orchestrator");
    config_done(&c);

    Var off[] = {
        {"STATE_DIRECTORY", "/var/lib/argus-orchestrator"}, {"SPOOL_DIR", ""}, {NULL, NULL}};
    assert_int_equal(config_load(&c, table_lookup, off, &rn, &rv), 0);
    assert_null(c.spool_dir);
    config_done(&c);

    Var own[] = {{"STATE_DIRECTORY", "/var/lib/a"}, {"SPOOL_DIR", "/srv/spool"}, {NULL, NULL}};
    assert_int_equal(config_load(&c, table_lookup, own, &rn, &rv), 0);
    assert_string_equal(c.spool_dir, "/srv/spool");
    config_done(&c);

    Var relative[] = {{"SPOOL_DIR", "spool"}, {NULL, NULL}};
    assert_int_equal(config_load(&c, table_lookup, relative, &rn, &rv), -EINVAL);
    assert_string_equal(rn, "SPOOL_DIR");
    assert_string_equal(rv, "spool");

    Var relative_state[] = {{"STATE_DIRECTORY", "lib/argus"}, {NULL, NULL}};
    assert_int_equal(config_load(&c, table_lookup, relative_state, &rn, &rv), -EINVAL);
    assert_string_equal(rn, "STATE_DIRECTORY");

    Var zero[] = {{"SPOOL_MAX_JOBS", "0"}, {NULL, NULL}};
    assert_int_equal(config_load(&c, table_lookup, zero, &rn, &rv), -EINVAL);
    assert_string_equal(rn, "SPOOL_MAX_JOBS");
}

/* THREADS: by default the CPUs this process may run on (sched_getaffinity, capped by a cgroup
 * CPU quota), else 1 to 256. */
static void test_threads(void **state)
{
    (void)state;
    Config c;
    const char *rn = NULL, *rv = NULL;
    Var none[] = {{NULL, NULL}};
    assert_int_equal(config_load(&c, table_lookup, none, &rn, &rv), 0);
    cpu_set_t set;
    assert_int_equal(sched_getaffinity(0, sizeof(set), &set), 0);
    /* no more than the CPUs allowed (fewer under a cgroup CPU quota), at least one */
    assert_true(c.threads >= 1 && c.threads <= (uint32_t)CPU_COUNT(&set));
    config_done(&c);

    /* fewer CPUs allowed: fewer loops */
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
        if (CPU_ISSET(cpu, &set)) {
            CPU_SET(cpu, &one);
            break;
        }
    assert_int_equal(sched_setaffinity(0, sizeof(one), &one), 0);
    assert_int_equal(config_load(&c, table_lookup, none, &rn, &rv), 0);
    assert_int_equal(sched_setaffinity(0, sizeof(set), &set), 0);
    assert_int_equal(c.threads, 1);
    config_done(&c);

    Var four[] = {{"THREADS", "4"}, {NULL, NULL}};
    assert_int_equal(config_load(&c, table_lookup, four, &rn, &rv), 0);
    assert_int_equal(c.threads, 4);
    config_done(&c);

    Var zero[] = {{"THREADS", "0"}, {NULL, NULL}};
    assert_int_equal(config_load(&c, table_lookup, zero, &rn, &rv), -EINVAL);
    assert_string_equal(rn, "THREADS");
    Var many[] = {{"THREADS", "257"}, {NULL, NULL}};
    assert_int_equal(config_load(&c, table_lookup, many, &rn, &rv), -EINVAL);
}

/* A cgroup's CPU quota caps the default THREADS: cpu.max in whole CPUs, rounded up. */
static void test_cpus_of_quota(void **state)
{
    (void)state;
    assert_int_equal(config_cpus_of_quota("max 100000\n"), 0);
    assert_int_equal(config_cpus_of_quota("200000 100000\n"), 2);
    assert_int_equal(config_cpus_of_quota("150000 100000"), 2);
    assert_int_equal(config_cpus_of_quota("50000 100000"), 1);
    assert_int_equal(config_cpus_of_quota("100000000 1000"), CONFIG_THREADS_MAX);
    assert_int_equal(config_cpus_of_quota("5000 0"), 0);
    assert_int_equal(config_cpus_of_quota(""), 0);
    assert_int_equal(config_cpus_of_quota(NULL), 0);
}

/* MAX_PENDING_JOBS follows WORKER_MAX_CONNECTIONS unless it is set. */
static void test_pending_jobs_default_follows_worker_connections(void **state)
{
    (void)state;
    Var derived[] = {{"WORKER_MAX_CONNECTIONS", "8"}, {NULL, NULL}};
    Config c;
    const char *rn = NULL, *rv = NULL;
    assert_int_equal(config_load(&c, table_lookup, derived, &rn, &rv), 0);
    assert_int_equal(c.max_pending_jobs, 8 * 16);
    config_done(&c);

    Var both[] = {{"WORKER_MAX_CONNECTIONS", "8"}, {"MAX_PENDING_JOBS", "3"}, {NULL, NULL}};
    assert_int_equal(config_load(&c, table_lookup, both, &rn, &rv), 0);
    assert_int_equal(c.max_pending_jobs, 3);
    config_done(&c);
}

/* ---- parse_uint32 ---- */

static void test_parse_uint32_good(void **state)
{
    (void)state;
    uint32_t v = 7;
    assert_int_equal(parse_uint32("0", 0, 10, &v), 0);
    assert_int_equal(v, 0);
    assert_int_equal(parse_uint32("10", 0, 10, &v), 0);
    assert_int_equal(v, 10);
    assert_int_equal(parse_uint32("5", 5, 5, &v), 0);
    assert_int_equal(v, 5);
    assert_int_equal(parse_uint32("007", 0, 10, &v), 0);
    assert_int_equal(v, 7);
    assert_int_equal(parse_uint32("4294967295", 0, UINT32_MAX, &v), 0);
    assert_int_equal(v, UINT32_MAX);
    assert_int_equal(parse_uint32("123456", 1, 1000000, &v), 0);
    assert_int_equal(v, 123456);
}

static void test_parse_uint32_bad(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "-1",
        "-0",
        "+1",
        " 1",
        "1 ",
        "\t1",
        "1\n",
        "1.0",
        "0x1",
        "1e2",
        "abc",
        "1a",
        "4294967296",
        "4294967297",
        "18446744073709551615",
        "18446744073709551616",
        "999999999999999999999999999999",
        "\xef\xbc\x91", /* fullwidth digit one */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        uint32_t v = 42;
        int r = parse_uint32(bad[i], 0, UINT32_MAX, &v);
        if (r >= 0)
            fail_msg("\"%s\" accepted as %u", bad[i], v);
        assert_int_equal(v, 42); /* untouched on failure */
    }

    uint32_t v = 42;
    assert_true(parse_uint32(NULL, 0, 10, &v) < 0);
    assert_true(parse_uint32("11", 0, 10, &v) < 0);
    assert_true(parse_uint32("4", 5, 10, &v) < 0);
    assert_true(parse_uint32("0", 1, 10, &v) < 0);
    assert_int_equal(v, 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_unrelated_variables_ignored),
        cmocka_unit_test(test_all_set),
        cmocka_unit_test(test_port_good),
        cmocka_unit_test(test_port_bad),
        cmocka_unit_test(test_url_good),
        cmocka_unit_test(test_url_bad),
        cmocka_unit_test(test_log_level_good),
        cmocka_unit_test(test_log_level_bad),
        cmocka_unit_test(test_log_level_strings),
        cmocka_unit_test(test_uint_vars),
        cmocka_unit_test(test_http2),
        cmocka_unit_test(test_bad_among_good),
        cmocka_unit_test(test_dump_defaults),
        cmocka_unit_test(test_dump_custom),
        cmocka_unit_test(test_spool_dir),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_cpus_of_quota),
        cmocka_unit_test(test_parse_uint32_good),
        cmocka_unit_test(test_parse_uint32_bad),
        cmocka_unit_test(test_pending_jobs_default_follows_worker_connections),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
