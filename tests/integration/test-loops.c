/* SPDX-License-Identifier: MIT */
/* Several event loops (THREADS): connections spread over them, and they still act as one
 * service: one call for a job whatever loop its requests arrive on, one pending-work cap, one
 * READY=1, one drain. (The rest of the suite runs with THREADS=1 and THREADS=4 as well.) */
#include <pthread.h>
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

static void start(Service *svc, const char *threads, const char *more)
{
    service_start_for_group(svc, threads, more, NULL);
    char url[128];
    snprintf(url, sizeof(url), "%s/health", svc->base);
    Response r = http_request("GET", url, NULL, NULL, NULL);
    assert_int_equal(r.status, 200);
    response_free(&r);
    assert_true(service_wait_notify(svc, "READY=1", 5000));
}

static void stop(Service *svc)
{
    assert_int_equal(service_stop(svc, SIGTERM), 0);
    service_cleanup(svc);
}

enum { CONNS = 64 };

/* Connections opened at once are accepted by more than one loop; the counts are printed (how
 * even they are is for the benchmark, not asserted). */
static void test_connections_spread_over_loops(void **state)
{
    (void)state;
    Service svc;
    start(&svc, "THREADS=4", NULL);
    int fds[CONNS];
    for (int i = 0; i < CONNS; i++)
        fds[i] = keepalive_connection(svc.port);
    unsigned loops_used = 0;
    double total = 0;
    for (int i = 0; i < 4; i++) {
        char series[64];
        snprintf(series, sizeof(series), "argus_loop_connections_total{loop=\"%d\"}", i);
        double n = service_metric(&svc, series);
        assert_true(n >= 0);
        print_message("loop %d accepted %.0f connection(s)\n", i, n);
        loops_used += n > 0;
        total += n;
    }
    assert_true(service_metric(&svc, "argus_loop_connections_total{loop=\"4\"}") == -1);
    /* the ones held open, the first GET /health, and the scrapes so far */
    assert_true(total >= CONNS + 1);
    assert_true(loops_used >= 2);
    assert_true(service_metric(&svc, "argus_connections_open") >= CONNS);
    for (int i = 0; i < CONNS; i++)
        close(fds[i]);
    stop(&svc);
}

enum { DUP_N = 24 };

/* Requests for one job that arrive on different loops at once share one worker call. */
static void test_one_call_for_a_job_across_loops(void **state)
{
    (void)state;
    Service svc;
    start(&svc, "THREADS=4", NULL);
    char url[128], body[96], place[64];
    snprintf(url, sizeof(url), "%s/enqueue", svc.base);
    snprintf(place, sizeof(place), "slow800-loops-%d", (int)getpid());
    snprintf(body, sizeof(body), "{\"placeId\":\"%s\"}", place);
    const char *bodies[DUP_N];
    long statuses[DUP_N];
    for (int i = 0; i < DUP_N; i++)
        bodies[i] = body;
    http_post_parallel(url, bodies, DUP_N, statuses, NULL);
    for (int i = 0; i < DUP_N; i++)
        assert_int_equal(statuses[i], 202);
    assert_int_equal(standin_count(&group_standin, place), 1);
    assert_true(service_metric(&svc, "argus_worker_shared_calls_total") == DUP_N - 1);
    unsigned loops_used = 0;
    for (int i = 0; i < 4; i++) {
        char series[64];
        snprintf(series, sizeof(series), "argus_loop_connections_total{loop=\"%d\"}", i);
        loops_used += service_metric(&svc, series) > 0;
    }
    print_message("%u loop(s) took the %d requests\n", loops_used, DUP_N);
    stop(&svc);
}

/* MAX_PENDING_JOBS holds for the process, not for each loop: with three jobs hanging at the
 * worker, every other arrival is refused at once, whatever loop it reaches. */
static void test_pending_cap_is_one_for_all_loops(void **state)
{
    (void)state;
    Service svc;
    service_start_for_group(&svc, "THREADS=4", "MAX_PENDING_JOBS=3", "WORKER_TIMEOUT_MS=4000");
    char url[128];
    snprintf(url, sizeof(url), "%s/enqueue", svc.base);
    enum { N = 12 };
    char bodies_buf[N][96];
    const char *bodies[N];
    long statuses[N];
    for (int i = 0; i < N; i++) {
        snprintf(bodies_buf[i], sizeof(bodies_buf[i]), "{\"placeId\":\"hang-cap%d-%d\"}", i,
                 (int)getpid());
        bodies[i] = bodies_buf[i];
    }
    http_post_parallel(url, bodies, N, statuses, NULL);
    int timed_out = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        timed_out += statuses[i] == 504;
        refused += statuses[i] == 503;
    }
    assert_int_equal(timed_out, 3);
    assert_int_equal(refused, N - 3);
    assert_true(service_metric(&svc, "argus_pending_jobs_rejected_total") == N - 3);
    stop(&svc);
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connections_spread_over_loops),
        cmocka_unit_test(test_one_call_for_a_job_across_loops),
        cmocka_unit_test(test_pending_cap_is_one_for_all_loops),
    };
    return cmocka_run_group_tests(tests, standin_group_setup, standin_group_teardown);
}
