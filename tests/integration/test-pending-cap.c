/* SPDX-License-Identifier: MIT */
/* MAX_PENDING_JOBS (README, "Limits"): jobs waiting for the worker are bounded, joined ones and
 * those whose client went away included; past the cap a job is answered 503 at once. Calls
 * beyond WORKER_MAX_CONNECTIONS wait in the service's queue, not at the worker. */
#include <json-c/json.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

/* Sends POST /enqueue for place on a connection of its own and leaves the answer unread. */
static int send_job(const Service *svc, const char *place)
{
    char body[256], req[512];
    int bl = snprintf(body, sizeof(body), "{\"placeId\":\"%s\"}", place);
    int rl = snprintf(req, sizeof(req),
                      "POST /enqueue HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n\r\n%s",
                      bl, body);
    int fd = raw_connect(svc->port);
    assert_int_equal(write(fd, req, (size_t)rl), rl);
    return fd;
}

static void assert_refused_by_cap(const Service *svc, const char *place)
{
    Response r = service_enqueue(svc, place);
    assert_int_equal(r.status, 503);
    json_object *o = json_tokener_parse(r.body), *e;
    assert_non_null(o);
    assert_true(json_object_object_get_ex(o, "error", &e));
    assert_string_equal(json_object_get_string(e), "too many pending jobs");
    json_object_put(o);
    char ra[16];
    assert_true(response_header(&r, "Retry-After", ra, sizeof(ra)));
    assert_true(atoi(ra) >= 1);
    response_free(&r);
}

static void start(Service *svc, const char *timeout)
{
    char worker[96];
    snprintf(worker, sizeof(worker), "WORKER_NODE_URL=%s", group_standin.url);
    const char *env[] = {
        worker, "MAX_PENDING_JOBS=4", "WORKER_MAX_CONNECTIONS=2", "WORKER_RETRIES=0", timeout,
        NULL};
    service_start(svc, env);
}

static void test_cap_refuses_at_once_and_counts_gone_clients(void **state)
{
    (void)state;
    Service svc;
    start(&svc, "WORKER_TIMEOUT_MS=3000");
    char places[4][64];
    int fds[4];
    for (int i = 0; i < 4; i++) {
        snprintf(places[i], sizeof(places[i]), "hang-cap-%d-%d", (int)getpid(), i);
        fds[i] = send_job(&svc, places[i]);
    }
    assert_true(service_wait_metric(&svc, "argus_pending_jobs", 4, 3000));
    assert_true(service_metric(&svc, "argus_pending_jobs_limit") == 4);
    /* two calls hold the two connections to the worker; two wait in the service's queue */
    assert_true(service_metric(&svc, "argus_worker_calls_queued") == 2);
    unsigned seen = 0;
    for (int tries = 0; tries < 100 && seen < 2; tries++) {
        if (tries)
            usleep(20 * 1000);
        seen = 0;
        for (int i = 0; i < 4; i++)
            seen += standin_count(&group_standin, places[i]);
    }
    assert_int_equal(seen, 2);

    char other[64];
    snprintf(other, sizeof(other), "cap-other-%d", (int)getpid());
    assert_refused_by_cap(&svc, other);
    assert_refused_by_cap(&svc, places[0]); /* joining a call in flight counts too */
    assert_true(service_metric(&svc, "argus_pending_jobs_rejected_total") == 2);
    assert_int_equal(standin_count(&group_standin, other), 0);

    /* Clients that go away leave their jobs pending: closing is no way around the cap. */
    for (int i = 0; i < 4; i++)
        close(fds[i]);
    assert_true(service_metric(&svc, "argus_pending_jobs") == 4);
    assert_refused_by_cap(&svc, other);

    /* The queued calls' time limit counted from their arrival: all four are over within about
     * one WORKER_TIMEOUT_MS, not two. Then the service takes jobs again. */
    assert_true(service_wait_metric(&svc, "argus_pending_jobs", 0, 5000));
    Response r = service_enqueue(&svc, other);
    assert_int_equal(r.status, 202);
    response_free(&r);
    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    service_cleanup(&svc);
}

/* A drain with calls queued and the worker hanging ends within SHUTDOWN_TIMEOUT_SEC. */
static void test_sigterm_with_queued_calls(void **state)
{
    (void)state;
    Service svc;
    char worker[96];
    snprintf(worker, sizeof(worker), "WORKER_NODE_URL=%s", group_standin.url);
    const char *env[] = {worker,
                         "MAX_PENDING_JOBS=4",
                         "WORKER_MAX_CONNECTIONS=1",
                         "WORKER_TIMEOUT_MS=60000",
                         "SHUTDOWN_TIMEOUT_SEC=1",
                         NULL};
    service_start(&svc, env);
    int fds[4];
    for (int i = 0; i < 4; i++) {
        char place[64];
        snprintf(place, sizeof(place), "hang-drain-%d-%d", (int)getpid(), i);
        fds[i] = send_job(&svc, place);
    }
    assert_true(service_wait_metric(&svc, "argus_worker_calls_queued", 3, 3000));
    /* service_stop waits a bounded time: a hang fails the test */
    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    for (int i = 0; i < 4; i++) {
        char buf[1024];
        raw_read(fds[i], buf, sizeof(buf), 2000);
        assert_non_null(strstr(buf, "HTTP/1.1 503"));
        close(fds[i]);
    }
    service_cleanup(&svc);
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cap_refuses_at_once_and_counts_gone_clients),
        cmocka_unit_test(test_sigterm_with_queued_calls),
    };
    return cmocka_run_group_tests(tests, standin_group_setup, standin_group_teardown);
}
