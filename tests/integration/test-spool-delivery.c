/* SPDX-License-Identifier: MIT */
/* Delivery from the spool when the worker pushes back (issue #20), seen from outside: one job the
 * worker refuses holds back no other one, nor the clients' own jobs; a worker with a small pool
 * is fed, not starved; a worker down as a whole is probed, not hammered, and fed again once back;
 * a job past SPOOL_MAX_AGE_SEC becomes a dead letter; a restart keeps each job's schedule.
 * The worker's "down" is a loopback port nothing listens on; "back" is a stand-in started on that
 * port (tests/worker-standin.c: status503- refuses one job for ever, pool<N>x<MS>- is a worker
 * that takes N calls at once, later<N>s<K>x- answers 503 with Retry-After). The waits are bounds,
 * not expectations: the rates are measured in bench/spool-delivery.sh. */
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

#include "spool-fixture.h"

/* The longest a worker-down pause lasts (30 s) and then some: a worker back is found by then. */
#define BACK_WAIT_MS 45000
/* Posts at once while spooling. */
#define AT_ONCE 32

static void post_queued(const Service *svc, const char *place_id)
{
    char status[16];
    assert_true(post_status(svc, place_id, status));
    assert_string_equal(status, "queued");
}

/* Spools n jobs "<prefix><1…n>" (the worker down), and checks they wait. */
static void spool_jobs(const Service *svc, const char *prefix, size_t n, double waiting_before)
{
    assert_int_equal(post_many(svc, prefix, 1, n, AT_ONCE, "queued"), n);
    assert_true(wait_metric_at_least(svc, "argus_spool_jobs", waiting_before + (double)n, 10000));
}

/* Every attempt at the worker so far (the clients' and the delivery's), by the daemon's
 * argus_worker_attempts_total. */
static double worker_attempts(const Service *svc)
{
    static const char *const outcomes[] = {"ok", "http_error", "unreachable", "timeout"};
    double total = 0;
    for (size_t i = 0; i < 4; i++) {
        char series[96];
        snprintf(series, sizeof(series), "argus_worker_attempts_total{outcome=\"%s\"}",
                 outcomes[i]);
        double v = service_metric(svc, series);
        assert_true(v >= 0);
        total += v;
    }
    return total;
}

/* Every delivery attempt so far, by the delivery's counters (absent: -1). */
static double delivery_attempts(const Service *svc)
{
    static const char *const outcomes[] = {"delivered", "retry", "dead", "expired"};
    double total = 0;
    for (size_t i = 0; i < 4; i++) {
        char series[96];
        snprintf(series, sizeof(series), "argus_spool_delivery_attempts_total{outcome=\"%s\"}",
                 outcomes[i]);
        double v = service_metric(svc, series);
        if (v < 0)
            return -1;
        total += v;
    }
    return total;
}

/* Case 1 of the issue: 2,000 jobs spooled while the worker is down, the first one refused (503)
 * for ever. Worker back: every other one is delivered, once; the refused one is tried a few times
 * (its own backoff: 1-2 s, 2-4 s, 4-8 s…), and waits, not dead; the clients' new jobs are
 * forwarded inline (202 "enqueued"), not spooled behind an open breaker. Fails on 0.1.0 (a
 * handful delivered in 30 s, the refused job tried every time as the breaker's probe). */
static void test_refused_job_at_the_head(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, NULL);
    const size_t n = sized(2000, 4);
    post_queued(&svc, "status503-head-1");
    spool_jobs(&svc, "head-", n - 1, 1);

    spooled_worker_back(&f);
    long long back = now_ms();
    assert_true(wait_metric_at_least(&svc, "argus_spool_jobs_total{result=\"delivered\"}", 1,
                                     BACK_WAIT_MS));
    for (int i = 0; i < 20; i++) {
        char place[32], status[16];
        snprintf(place, sizeof(place), "client-head-%d", i);
        assert_true(post_status(&svc, place, status));
        assert_string_equal(status, "enqueued");
    }
    assert_true(standin_wait_keys(&f.worker, "head-", n - 1, 60000));
    PrefixCounts c;
    assert_true(standin_prefix(&f.worker, "head-", &c));
    assert_int_equal(c.keys, n - 1);
    assert_int_equal(c.posts, n - 1); /* each once */
    assert_true(wait_metric_at_most(&svc, "argus_spool_jobs", 1, 5000));

    /* 15 s after the worker came back, the refused job has been tried at most 5 times by its
     * own schedule (due again after 1, 3, 7 and 15 s at the soonest), one more allowed. */
    long long left = back + 15000 - now_ms();
    if (left > 0)
        usleep((useconds_t)left * 1000);
    unsigned tried = standin_count(&f.worker, "status503-head-1");
    printf("# the refused job was tried %u times in %lld s\n", tried, (now_ms() - back) / 1000);
    assert_true(tried <= 6);
    assert_true(service_metric(&svc, "argus_spool_jobs") == 1);
    assert_true(service_metric(&svc, "argus_spool_dead_letters") == 0);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* Case 2 of the issue: 3,000 jobs spooled, the worker back with a pool of 4 (20 ms a call, 503
 * at once past 4). All delivered, each taken once, with at most 10 % of the attempts refused.
 * Its capacity (200 a second) would do it in 15 s: the bound of 60 s from the first delivery
 * breaks only on a stall (0.1.0: 34 delivered in 45 s, 74 % refused). */
static void test_small_pool_is_fed(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, NULL);
    const size_t n = sized(3000, 3);
    spool_jobs(&svc, "pool4x20-", n, 0);

    spooled_worker_back(&f);
    assert_true(wait_metric_at_least(&svc, "argus_spool_jobs_total{result=\"delivered\"}", 1,
                                     BACK_WAIT_MS));
    long long first = now_ms();
    assert_true(standin_wait_keys(&f.worker, "pool4x20-", n, 60000));
    long long took = now_ms() - first;
    assert_true(wait_metric_at_most(&svc, "argus_spool_jobs", 0, 5000));
    long long taken = standin_stat(&f.worker, "pool4x20.accepted"),
              refused = standin_stat(&f.worker, "pool4x20.refused"),
              peak = standin_stat(&f.worker, "pool4x20.peak");
    printf("# %zu jobs in %.1f s from the first delivery (%.0f %% of the pool's capacity), "
           "%lld attempts refused (%.1f %%), at most %lld at once in the pool\n",
           n, (double)took / 1000, (double)n / ((double)took / 1000) / 200 * 100, refused,
           100.0 * (double)refused / (double)(taken + refused), peak);
    assert_int_equal(taken, (long long)n); /* each taken once */
    assert_true(refused * 10 <= taken + refused);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* A worker down as a whole for 20 s while jobs wait, refusing connections (a) or answering 503 to
 * every job (b), with no breaker (BREAKER_THRESHOLD=0), so that only the delivery's own pause
 * keeps it from hammering the worker: a handful of attempts in the 20 s (1 s pause doubling:
 * probes at about 1, 3, 7, 15 s after the first three failures), counted by the delivery's
 * counters and, for (b), at the stand-in. Then everything is delivered. Fails on 0.1.0 (each
 * round of its backoff starts up to 16 deliveries: dozens of attempts). */
static void test_worker_down_as_a_whole(void **state)
{
    (void)state;
    const size_t n = 200;
    Spooled a, b;
    spooled_init(&a);
    spooled_init(&b);
    Service sa, sb;
    spooled_start(&sa, &a, "BREAKER_THRESHOLD=0", NULL);
    spooled_start(&sb, &b, "BREAKER_THRESHOLD=0", NULL);
    spooled_worker_back(&b);
    standin_refuse(&b.worker, 600000);
    spool_jobs(&sa, "downa-", n, 0);
    spool_jobs(&sb, "downb-", n, 0);

    /* From here on no client posts: every attempt is the delivery's. */
    double a0 = worker_attempts(&sa), b0 = worker_attempts(&sb);
    double da0 = delivery_attempts(&sa), db0 = delivery_attempts(&sb);
    long long posts0 = standin_stat(&b.worker, "posts");
    sleep(20);
    double a1 = worker_attempts(&sa), b1 = worker_attempts(&sb);
    double da1 = delivery_attempts(&sa), db1 = delivery_attempts(&sb);
    long long posts1 = standin_stat(&b.worker, "posts");
    printf("# in 20 s: %.0f attempts at a worker refusing connections, %.0f (%lld at the "
           "stand-in) at one answering 503\n",
           a1 - a0, b1 - b0, posts1 - posts0);
    assert_true(posts1 - posts0 <= 15);
    assert_true(a1 - a0 <= 15);
    assert_true(b1 - b0 <= 15);
    /* the delivery's own counters say the same (read a moment apart) */
    assert_true(da0 >= 0 && db0 >= 0);
    assert_true(da1 - da0 <= 15 && db1 - db0 <= 15);
    assert_true(service_metric(&sa, "argus_spool_delivery_paused") == 1);
    assert_true(service_metric(&sb, "argus_spool_delivery_paused") == 1);

    spooled_worker_back(&a);
    standin_refuse(&b.worker, 0);
    /* (b)'s stand-in saw every job already: the clients' own attempts */
    assert_true(standin_wait_keys(&a.worker, "downa-", n, BACK_WAIT_MS + 15000));
    assert_true(wait_metric_at_least(&sb, "argus_spool_jobs_total{result=\"delivered\"}", (double)n,
                                     BACK_WAIT_MS + 15000));
    assert_true(wait_metric_at_most(&sa, "argus_spool_jobs", 0, 5000));
    assert_true(wait_metric_at_most(&sb, "argus_spool_jobs", 0, 5000));
    PrefixCounts c;
    assert_true(standin_prefix(&b.worker, "downb-", &c));
    assert_int_equal(c.keys, n);
    assert_true(service_metric(&sa, "argus_spool_delivery_paused") == 0);
    assert_true(service_log_contains(&sa, "delivery from the spool paused"));
    assert_true(service_log_contains(&sa, "delivery from the spool resumed"));
    spooled_stop(&sa);
    spooled_stop(&sb);
    spooled_cleanup(&a);
    spooled_cleanup(&b);
}

/* Delivery paused (the worker answers 503 to every spooled job, each its own trouble, due again
 * within a second), then a client's job the worker takes: that news lets one probe go at once,
 * not every probe of the pause from then on; the pause keeps its pace (the stand-in sees a
 * handful of the refused jobs' attempts in 6 s, where a pause that forgot it was one tried them
 * back to back: hundreds). */
static void test_client_answer_lets_one_probe_go(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, "BREAKER_THRESHOLD=0", "SPOOL_RETRY_MAX_SEC=1", NULL);
    spooled_worker_back(&f);
    spool_jobs(&svc, "status503-pz-", 30, 0);
    assert_true(wait_metric_at_least(&svc, "argus_spool_delivery_paused", 1, 20000));
    PrefixCounts c0, c1;
    assert_true(standin_prefix(&f.worker, "status503-pz-", &c0));
    char status[16];
    assert_true(post_status(&svc, "pz-client-ok", status));
    assert_string_equal(status, "enqueued");
    sleep(6);
    assert_true(standin_prefix(&f.worker, "status503-pz-", &c1));
    printf("# in 6 s after a client's job went through: %llu attempts at the refused jobs\n",
           c1.posts - c0.posts);
    assert_true(c1.posts - c0.posts <= 10);
    assert_true(service_metric(&svc, "argus_spool_delivery_paused") == 1);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* SPOOL_MAX_AGE_SEC=3: a job the worker refuses (503) is tried on its schedule, once more at the
 * end of its lifetime, then kept as a dead letter "expired after N attempts: …", counted, and
 * logged at error. N is what the worker saw, less the client's own attempt. Fails on 0.1.0
 * (no lifetime: tried for ever). */
static void test_lifetime_expires_a_refused_job(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    spooled_worker_back(&f);
    Service svc;
    spooled_start(&svc, &f, "SPOOL_MAX_AGE_SEC=3", NULL);
    static const char *const place = "status503-expire-1";
    post_queued(&svc, place);
    assert_true(wait_metric_at_least(&svc, "argus_spool_dead_letters", 1, 30000));
    assert_true(service_metric(&svc, "argus_spool_jobs") == 0);
    assert_true(service_metric(&svc, "argus_spool_jobs_total{result=\"expired\"}") == 1);
    assert_true(service_metric(&svc, "argus_spool_jobs_total{result=\"dead\"}") == 0);
    assert_true(service_metric(&svc, "argus_spool_delivery_attempts_total{outcome=\"expired\"}") ==
                1);
    assert_true(log_has_line(&svc, "error", "expired after ", place));

    unsigned seen = standin_count(&f.worker, place);
    assert_true(seen >= 2); /* the client's attempt, and the delivery's */
    char expected[64];
    snprintf(expected, sizeof(expected), "expired after %u attempts: ", seen - 1);
    int64_t id = spool_id_of(&f, place, true);
    assert_true(id > 0);
    json_object *job = spool_show_json(&f, id);
    assert_non_null(job);
    const char *error = job_string(job, "lastError");
    assert_non_null(error);
    assert_true(strncmp(error, expected, strlen(expected)) == 0);
    assert_string_equal(job_string(job, "state"), "dead");
    json_object_put(job);
    char out[8192];
    assert_int_equal(spool_cli(&f, out, sizeof(out), "list", "--dead", NULL), 0);
    assert_non_null(strstr(out, expected));

    usleep(2500 * 1000); /* a dead letter is not tried again */
    assert_int_equal(standin_count(&f.worker, place), seen);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* The next attempt of a job, as `spool show --json` says it. */
static char *next_attempt(const Spooled *f, int64_t id)
{
    json_object *job = spool_show_json(f, id);
    assert_non_null(job);
    const char *next = job_string(job, "nextAttempt");
    assert_non_null(next);
    char *copy = strdup(next);
    json_object_put(job);
    return copy;
}

/* One job the worker hangs on (it never answers), alone in the spool (a review found it
 * opened the shared breaker by itself, and clients' jobs were then spooled for the cool-down):
 * once it has failed, its failures count no more against the breaker. The client's own attempt
 * and its first delivery count (2 of BREAKER_THRESHOLD=3); the deliveries after them do not. */
static void test_one_failing_job_keeps_the_breaker_closed(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    spooled_worker_back(&f);
    Service svc;
    spooled_start(&svc, &f, "BREAKER_THRESHOLD=3", "BREAKER_COOLDOWN_SEC=60",
                  "SPOOL_RETRY_MAX_SEC=1", NULL);
    post_queued(&svc, "hang-breaker-1");
    /* three failed deliveries (1 s apart at most) after the client's attempt */
    assert_true(wait_metric_at_least(&svc, "argus_spool_delivery_attempts_total{outcome=\"retry\"}",
                                     3, 20000));
    assert_true(service_metric(&svc, "argus_breaker_state") == 0);
    assert_true(service_metric(&svc, "argus_breaker_opened_total") == 0);
    char status[16];
    assert_true(post_status(&svc, "client-breaker-1", status));
    assert_string_equal(status, "enqueued");
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* A job the worker asked to come back in 60 s (503 with Retry-After: 60, SPOOL_RETRY_MAX_SEC
 * large) is not tried right after a restart: the schedule is the job's, on disk, and `spool show`
 * shows the same next attempt before and after. Fails on 0.1.0 (a new daemon tries every job at
 * once). */
static void test_restart_keeps_the_schedule(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    spooled_worker_back(&f);
    Service svc;
    spooled_start(&svc, &f, "SPOOL_RETRY_MAX_SEC=3600", NULL);
    static const char *const place = "later60s9x-schedule-1";
    post_queued(&svc, place); /* the client's attempt: 503 */
    long long deadline = now_ms() + 15000;
    while (standin_count(&f.worker, place) < 2 && now_ms() < deadline)
        usleep(50 * 1000);
    assert_int_equal(standin_count(&f.worker, place), 2); /* the delivery's: 503 again */
    int64_t id = spool_id_of(&f, place, false);
    char *before = id > 0 ? next_attempt(&f, id) : NULL;
    spooled_stop(&svc);

    spooled_start(&svc, &f, "SPOOL_RETRY_MAX_SEC=3600", NULL);
    assert_true(wait_metric_at_least(&svc, "argus_spool_jobs", 1, 5000));
    usleep(4000 * 1000);
    assert_int_equal(standin_count(&f.worker, place), 2);
    assert_non_null(before);
    char *after = next_attempt(&f, id);
    assert_string_equal(before, after);
    json_object *job = spool_show_json(&f, id);
    assert_int_equal(job_int(job, "attempts"), 1);
    json_object_put(job);
    free(before);
    free(after);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

int main(void)
{
    harness_skip_unless_runnable();
    if (getenv("ARGUS_TEST_ONLY")) /* a pattern of test names, to run one (cmocka's filter) */
        cmocka_set_test_filter(getenv("ARGUS_TEST_ONLY"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_job_at_the_head),
        cmocka_unit_test(test_small_pool_is_fed),
        cmocka_unit_test(test_worker_down_as_a_whole),
        cmocka_unit_test(test_client_answer_lets_one_probe_go),
        cmocka_unit_test(test_lifetime_expires_a_refused_job),
        cmocka_unit_test(test_restart_keeps_the_schedule),
        cmocka_unit_test(test_one_failing_job_keeps_the_breaker_closed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
