/* SPDX-License-Identifier: MIT */
/* Start-up, drain on SIGTERM/SIGINT, idle exit and configuration errors of the real daemon. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define DRAIN_N 64

typedef struct Parallel {
    const char *url;
    const char *bodies[DRAIN_N];
    long statuses[DRAIN_N];
} Parallel;

static void *post_all(void *arg)
{
    Parallel *p = arg;
    http_post_parallel(p->url, p->bodies, DRAIN_N, p->statuses, NULL);
    return NULL;
}

/* SIGTERM while DRAIN_N requests wait on a slow worker: each still gets its 202, STOPPING=1 is
 * sent, an idle keep-alive client does not hold the exit up, and the exit status is 0. */
static void drain(int sig)
{
    Service svc;
    /* Under h2o's 10 s keep-alive timeout: an idle connection left open would show as a
     * shutdown timeout in the log. */
    service_start_for_group(&svc, "SHUTDOWN_TIMEOUT_SEC=5", NULL, NULL);

    /* An idle keep-alive connection, opened first (it starts the daemon). */
    int idle = keepalive_connection(svc.port);
    assert_true(service_wait_notify(&svc, "READY=1", 5000));

    static char bodies[DRAIN_N][64];
    Parallel p;
    char enqueue[128];
    snprintf(enqueue, sizeof(enqueue), "%s/enqueue", svc.base);
    p.url = enqueue;
    for (int i = 0; i < DRAIN_N; i++) {
        snprintf(bodies[i], sizeof(bodies[i]), "{\"placeId\":\"slow1500-drain%d-%d\"}", sig, i);
        p.bodies[i] = bodies[i];
        p.statuses[i] = 0;
    }
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, post_all, &p), 0);

    /* Wait until the worker holds every request, then signal. */
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (int tries = 0; tries < 500; tries++) {
        unsigned seen = 0;
        for (int i = 0; i < DRAIN_N; i++) {
            char place[64];
            snprintf(place, sizeof(place), "slow1500-drain%d-%d", sig, i);
            seen += standin_count(&group_standin, place);
        }
        if (seen == DRAIN_N)
            break;
        usleep(10000);
    }
    assert_int_equal(service_stop(&svc, sig), 0);
    pthread_join(t, NULL);
    assert_true(peer_closed(idle, 0));
    close(idle);
    for (int i = 0; i < DRAIN_N; i++)
        assert_int_equal(p.statuses[i], 202);
    assert_true(service_wait_notify(&svc, "STOPPING=1", 0));
    assert_true(service_log_contains(&svc, "stopping, draining"));
    assert_true(service_log_lacks(&svc, "shutdown timeout"));
    assert_true(service_log_contains(&svc, "\"msg\":\"stopped: "));
    service_cleanup(&svc);
}

static void test_drain_on_sigterm(void **state)
{
    (void)state;
    drain(SIGTERM);
}

static void test_drain_on_sigint(void **state)
{
    (void)state;
    drain(SIGINT);
}

static void test_stop_when_idle_is_quick_and_clean(void **state)
{
    (void)state;
    Service svc;
    service_start_for_group(&svc, NULL, NULL, NULL);
    Response r = http_post_json(&svc, "/enqueue", "{\"placeId\":\"quick-stop\"}");
    assert_int_equal(r.status, 202);
    response_free(&r);
    assert_true(service_wait_notify(&svc, "READY=1", 5000));
    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    assert_true(service_wait_notify(&svc, "STOPPING=1", 0));
    service_cleanup(&svc);
}

static void test_idle_exit(void **state)
{
    (void)state;
    Service svc;
    service_start_for_group(&svc, "IDLE_EXIT_SEC=1", NULL, NULL);
    Response r = http_post_json(&svc, "/enqueue", "{\"placeId\":\"idle-exit\"}");
    assert_int_equal(r.status, 202);
    response_free(&r);
    /* Nothing more arrives: it leaves by itself, cleanly, within a few seconds. */
    assert_int_equal(service_wait_exit(&svc, 10000), 0);
    assert_true(service_log_contains(&svc, "no connection for 1s"));
    service_cleanup(&svc);
}

/* The pooled worker handles the log says were released ("quiet: released N pooled worker
 * handle(s)"), over every loop. */
static unsigned handles_released(const Service *svc)
{
    FILE *f = fopen(svc->log_path, "r");
    if (!f)
        return 0;
    unsigned total = 0;
    char line[4096];
    while (fgets(line, sizeof(line), f)) {
        const char *p = strstr(line, "quiet: released ");
        unsigned n;
        if (p && sscanf(p, "quiet: released %u pooled worker handle", &n) == 1)
            total += n;
    }
    fclose(f);
    return total;
}

/* After a burst, a status interval without jobs gives the pooled curl handles and the free heap
 * back; the next job makes a handle again. */
static void test_quiet_releases_memory(void **state)
{
    (void)state;
    Service svc;
    service_start_for_group(&svc, "LOG_LEVEL=debug", NULL, NULL);
    enum { N = 8 };
    static char bodies[N][64];
    const char *b[N];
    long statuses[N];
    for (int i = 0; i < N; i++) {
        snprintf(bodies[i], sizeof(bodies[i]), "{\"placeId\":\"slow300-quiet-%d\"}", i);
        b[i] = bodies[i];
    }
    char url[128];
    snprintf(url, sizeof(url), "%s/enqueue", svc.base);
    http_post_parallel(url, b, N, statuses, NULL);
    for (int i = 0; i < N; i++)
        assert_int_equal(statuses[i], 202);
    assert_true(service_log_lacks(&svc, "quiet: released"));

    /* Ticks come every 5 s: the first one after the burst sees it, the next one is quiet. Each
     * event loop releases its own handles: together, the 8 of the burst. */
    unsigned released = 0;
    for (int i = 0; i < 25 && released < N; i++) {
        if (i)
            sleep(1);
        released = handles_released(&svc);
    }
    assert_int_equal(released, N);

    Response r = http_post_json(&svc, "/enqueue", "{\"placeId\":\"after-quiet\"}");
    assert_int_equal(r.status, 202);
    response_free(&r);
    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    service_cleanup(&svc);
}

static void test_bad_config_exits_78(void **state)
{
    (void)state;
    static const char *bad[] = {
        "WORKER_NODE_URL=ftp://example", "PORT=70000",  "LOG_LEVEL=verbose",
        "WORKER_TIMEOUT_MS=soon",        "HTTP2=maybe",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char out[4096];
        const char *argv[] = {argus_binary(), NULL};
        const char *env[] = {bad[i], NULL};
        assert_int_equal(run_capture(argv, env, out, sizeof(out)), 78);
        char name[64];
        snprintf(name, sizeof(name), "%.*s", (int)strcspn(bad[i], "="), bad[i]);
        if (!strstr(out, name) || !strstr(out, strchr(bad[i], '=') + 1))
            fail_msg("output does not name %s: %s", bad[i], out);
        /* one line */
        assert_int_equal(strchr(out, '\n') - out + 1, (long)strlen(out));
    }
}

/* Socket-activated with a bad value: the connection that started it gets a 503 (instead of
 * starting it again and again), and the exit status is 78. */
static void test_bad_config_socket_activated(void **state)
{
    (void)state;
    Service svc;
    const char *env[] = {"WORKER_NODE_URL=ftp://nowhere", NULL};
    service_start(&svc, env);
    char url[128];
    snprintf(url, sizeof(url), "%s/health", svc.base);
    Response r = http_request("GET", url, NULL, NULL, NULL);
    assert_int_equal(r.status, 503);
    assert_non_null(r.body);
    assert_non_null(strstr(r.body, "\"error\":\"service unavailable: invalid configuration\""));
    response_free(&r);
    assert_int_equal(service_wait_exit(&svc, 10000), 78);
    assert_true(service_log_contains(&svc, "invalid configuration: WORKER_NODE_URL=ftp://nowhere"));
    service_cleanup(&svc);
}

static void test_check_config_version_help(void **state)
{
    (void)state;
    char out[4096];
    const char *check[] = {argus_binary(), "--check-config", NULL};
    const char *env[] = {"WORKER_NODE_URL=http://worker.example:3000/", "WORKER_RETRIES=4", NULL};
    assert_int_equal(run_capture(check, env, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "WORKER_NODE_URL=http://worker.example:3000\n"));
    assert_non_null(strstr(out, "WORKER_RETRIES=4\n"));
    assert_non_null(strstr(out, "PORT=8080\n"));

    const char *version[] = {argus_binary(), "--version", NULL};
    assert_int_equal(run_capture(version, NULL, out, sizeof(out)), 0);
    assert_true(strncmp(out, "argus-orchestrator ", 19) == 0);

    const char *help[] = {argus_binary(), "--help", NULL};
    assert_int_equal(run_capture(help, NULL, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "--check-config"));

    const char *wrong[] = {argus_binary(), "--no-such-option", NULL};
    assert_int_equal(run_capture(wrong, NULL, out, sizeof(out)), 64);
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_drain_on_sigterm),
        cmocka_unit_test(test_drain_on_sigint),
        cmocka_unit_test(test_stop_when_idle_is_quick_and_clean),
        cmocka_unit_test(test_idle_exit),
        cmocka_unit_test(test_quiet_releases_memory),
        cmocka_unit_test(test_bad_config_exits_78),
        cmocka_unit_test(test_bad_config_socket_activated),
        cmocka_unit_test(test_check_config_version_help),
    };
    return cmocka_run_group_tests(tests, standin_group_setup, standin_group_teardown);
}
