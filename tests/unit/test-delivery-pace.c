/* SPDX-License-Identifier: MIT */
/* The pace of delivery from the spool (delivery-pace.c): the window's rules one by one, the
 * worker-down pause, and simulations over simulated time of a worker with a fixed pool (N calls
 * at once, 20 ms each, 503 at once past N), a fast healthy one, and one refusing a job: the
 * share of the worker's capacity used and the share of attempts refused, which the issue bounds
 * (>= 80 %, <= 10 %). Behaviour, not timing: nothing here measures the machine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "delivery-pace.h"

#define MS 1000ULL
#define SEC 1000000ULL

/* Starts one delivery at now (the caller checked delivery_pace_free) and returns its sample. */
static PaceSample start(DeliveryPace *p, int64_t job, uint64_t now)
{
    PaceSample s = {.job_id = job, .started_usec = now};
    s.probe = delivery_pace_start(p, &s.window_full);
    return s;
}

static PaceEvent end(DeliveryPace *p, PaceSample *s, PaceSignal signal, uint64_t now)
{
    s->signal = signal;
    return delivery_pace_record(p, s, now, 0, 0);
}

static unsigned free_now(const DeliveryPace *p, uint64_t now)
{
    uint64_t wait;
    return delivery_pace_free(p, now, &wait);
}

static void test_slow_start_up_to_max(void **state)
{
    (void)state;
    DeliveryPace p;
    delivery_pace_init(&p, 16);
    assert_int_equal(delivery_pace_window(&p), 1);
    uint64_t now = 0;
    int64_t job = 1;
    /* A round trip: fill the window, every delivery answered 2xx 10 ms later; those started
     * while less than half the window was under way do not make it grow. */
    unsigned expect[] = {2, 4, 7, 11, 16};
    for (size_t round = 0; round < 5; round++) {
        PaceSample s[64];
        unsigned n = free_now(&p, now);
        for (unsigned i = 0; i < n; i++)
            s[i] = start(&p, job++, now);
        now += 10 * MS;
        for (unsigned i = 0; i < n; i++)
            assert_int_equal(end(&p, &s[i], PACE_OK, now), PACE_EVENT_NONE);
        assert_int_equal(delivery_pace_window(&p), expect[round]);
    }
    /* max is bounded */
    delivery_pace_init(&p, 1000);
    assert_int_equal(p.max, PACE_MAX_LIMIT);
    delivery_pace_init(&p, 0);
    assert_int_equal(p.max, 1);
}

/* With fewer jobs than half the window under way, the window does not grow: it is not used. */
static void test_grows_only_when_used(void **state)
{
    (void)state;
    DeliveryPace p;
    delivery_pace_init(&p, 16);
    uint64_t now = 0;
    int64_t job = 1;
    PaceSample s = start(&p, job++, now);
    end(&p, &s, PACE_OK, now + MS); /* 1 → 2 */
    s = start(&p, job++, now);
    PaceSample t = start(&p, job++, now);
    end(&p, &s, PACE_OK, now + MS);
    end(&p, &t, PACE_OK, now + MS); /* 2 → 4 */
    assert_int_equal(delivery_pace_window(&p), 4);
    /* one at a time in a window of 4: no growth */
    for (int i = 0; i < 40; i++) {
        s = start(&p, job++, now);
        assert_false(s.window_full);
        now += MS;
        end(&p, &s, PACE_OK, now);
    }
    assert_int_equal(delivery_pace_window(&p), 4);
    /* two at a time: half of it used, it grows */
    s = start(&p, job++, now);
    t = start(&p, job++, now);
    assert_false(s.window_full);
    assert_true(t.window_full);
    end(&p, &s, PACE_OK, now + MS);
    end(&p, &t, PACE_OK, now + MS);
    assert_int_equal(delivery_pace_window(&p), 5);
}

/* Grows a window to w by slow start (fills and answers it, 10 ms round trips). */
static uint64_t grow_to(DeliveryPace *p, unsigned w, uint64_t now, int64_t *job)
{
    while (delivery_pace_window(p) < w) {
        PaceSample s[PACE_MAX_LIMIT];
        unsigned n = free_now(p, now);
        for (unsigned i = 0; i < n; i++)
            s[i] = start(p, (*job)++, now);
        now += 10 * MS;
        for (unsigned i = 0; i < n && delivery_pace_window(p) < w; i++)
            end(p, &s[i], PACE_OK, now);
    }
    return now;
}

static void test_cut_once_a_round_trip(void **state)
{
    (void)state;
    DeliveryPace p;
    delivery_pace_init(&p, 16);
    int64_t job = 1;
    uint64_t now = grow_to(&p, 16, 0, &job);
    assert_int_equal(delivery_pace_window(&p), 16);
    /* 16 under way, all refused at once: one cut, x 0.7 */
    PaceSample s[16];
    for (unsigned i = 0; i < 16; i++)
        s[i] = start(&p, job++, now);
    now += MS;
    for (unsigned i = 0; i < 16; i++)
        assert_int_equal(end(&p, &s[i], PACE_REFUSED, now), PACE_EVENT_NONE);
    assert_int_equal(delivery_pace_window(&p), 11); /* 16 x 0.7 = 11.2 */
    assert_false(p.slow_start);
    /* one started after the cut and refused: heard, cut again */
    PaceSample t = start(&p, job++, now);
    now += MS;
    end(&p, &t, PACE_TIMEOUT, now);
    assert_int_equal(delivery_pace_window(&p), 7); /* 11.2 x 0.7 = 7.84 */
    /* cuts never go below 1 */
    for (int i = 0; i < 10; i++) {
        t = start(&p, job++, now);
        now += MS;
        end(&p, &t, PACE_UNREACHABLE, now);
        t = start(&p, job - 1, now); /* keep the streak short: same job */
        now += MS;
        PaceSample ok = start(&p, job++, now);
        end(&p, &ok, PACE_OK, now);
        end(&p, &t, PACE_OK, now);
    }
    assert_int_equal(delivery_pace_window(&p), 1);
}

/* A 500 is the job's trouble or the worker's, not a sign of load: no cut (it counts for the
 * pause). */
static void test_other_failures_do_not_cut(void **state)
{
    (void)state;
    DeliveryPace p;
    delivery_pace_init(&p, 16);
    int64_t job = 1;
    uint64_t now = grow_to(&p, 8, 0, &job);
    PaceSample s = start(&p, job++, now);
    end(&p, &s, PACE_FAILED, now + MS);
    assert_int_equal(delivery_pace_window(&p), 8);
    /* nor does a final answer */
    s = start(&p, job++, now);
    end(&p, &s, PACE_ANSWERED, now + MS);
    assert_int_equal(delivery_pace_window(&p), 8);
}

/* One bad job failing again and again cuts once, however often it is tried; after another
 * job's failure it is news again. */
static void test_a_job_failing_again_does_not_cut(void **state)
{
    (void)state;
    DeliveryPace p;
    delivery_pace_init(&p, 16);
    int64_t job = 100;
    uint64_t now = grow_to(&p, 16, 0, &job);
    PaceSample bad = start(&p, 1, now);
    now += MS;
    end(&p, &bad, PACE_REFUSED, now);
    assert_int_equal(delivery_pace_window(&p), 11);
    for (int i = 0; i < 5; i++) {
        now += 2 * SEC;
        bad = start(&p, 1, now);
        bad.failed_before = true;
        now += MS;
        end(&p, &bad, PACE_REFUSED, now);
        PaceSample ok = start(&p, job++, now);
        end(&p, &ok, PACE_OK, now + MS);
    }
    assert_int_equal(delivery_pace_window(&p), 11);
    /* another job's failure in between: the bad job's next failure is news */
    PaceSample other = start(&p, 2, now);
    now += MS;
    end(&p, &other, PACE_REFUSED, now);
    assert_int_equal(delivery_pace_window(&p), 7);
    bad = start(&p, 1, now);
    bad.failed_before = true;
    now += MS;
    end(&p, &bad, PACE_REFUSED, now);
    assert_int_equal(delivery_pace_window(&p), 5);
}

static void test_latency_jump_cuts(void **state)
{
    (void)state;
    DeliveryPace p;
    delivery_pace_init(&p, 16);
    int64_t job = 1;
    uint64_t now = grow_to(&p, 16, 0, &job); /* 10 ms round trips */
    /* 25 ms: over 1.5 x 10 and 10 + 5, under 3 x 10 and 10 + 20: neither grows nor cuts */
    PaceSample s = start(&p, job++, now);
    s.window_full = true;
    now += 25 * MS;
    end(&p, &s, PACE_OK, now);
    assert_int_equal(delivery_pace_window(&p), 16);
    assert_false(p.cut_window > 0);
    /* 60 ms: a jump */
    s = start(&p, job++, now);
    now += 60 * MS;
    end(&p, &s, PACE_OK, now);
    assert_int_equal(delivery_pace_window(&p), 11);
}

/* Near the window of the last cut the window grows 16 times slower than elsewhere. */
static void test_slower_near_the_last_cut(void **state)
{
    (void)state;
    DeliveryPace p;
    delivery_pace_init(&p, 64);
    int64_t job = 1;
    uint64_t now = grow_to(&p, 10, 0, &job);
    PaceSample s = start(&p, job++, now);
    end(&p, &s, PACE_REFUSED, now + MS); /* 10 → 7 */
    double w0 = p.window;
    s = start(&p, job++, now + 2 * MS);
    s.window_full = true;
    end(&p, &s, PACE_OK, now + 12 * MS);
    assert_true(p.window - w0 > 0.99 / (16 * w0) && p.window - w0 < 1.01 / (16 * w0));
    /* far above it: +1/window */
    p.window = 20;
    s = start(&p, job++, now + 20 * MS);
    s.window_full = true;
    end(&p, &s, PACE_OK, now + 30 * MS);
    assert_true(p.window > 20.049 && p.window < 20.051);
}

/* Failures of three different jobs in a row: paused; one probe after the pause; a failed
 * probe doubles the pause, a 2xx ends it and slow start begins again from 1. */
static void test_worker_down_pauses_and_probes(void **state)
{
    (void)state;
    DeliveryPace p;
    delivery_pace_init(&p, 16);
    int64_t job = 1;
    uint64_t now = grow_to(&p, 4, 0, &job);
    PaceSample s = start(&p, 1000, now);
    now += MS;
    assert_int_equal(end(&p, &s, PACE_UNREACHABLE, now), PACE_EVENT_NONE);
    s = start(&p, 1001, now);
    now += MS;
    assert_int_equal(end(&p, &s, PACE_FAILED, now), PACE_EVENT_NONE);
    /* the third job fails while a fourth is under way: nothing starts until it ends */
    s = start(&p, 1002, now);
    PaceSample late = start(&p, 1003, now);
    now += MS;
    assert_int_equal(end(&p, &s, PACE_TIMEOUT, now), PACE_EVENT_NONE);
    assert_false(delivery_pace_paused(&p));
    assert_int_equal(free_now(&p, now), 0);
    /* it fails too: paused */
    assert_int_equal(end(&p, &late, PACE_UNREACHABLE, now), PACE_EVENT_PAUSED);
    assert_true(delivery_pace_paused(&p));
    assert_int_equal(delivery_pace_window(&p), 1);
    /* rnd 0: the shortest of the equal jitter, 0.5 s */
    uint64_t wait;
    assert_int_equal(delivery_pace_free(&p, now, &wait), 0);
    assert_int_equal(wait, 500 * MS);
    now += 500 * MS;
    assert_int_equal(delivery_pace_free(&p, now, &wait), 1);
    PaceSample probe = start(&p, 5, now);
    assert_true(probe.probe);
    assert_int_equal(free_now(&p, now), 0);
    /* failed probes: 1 s, 2 s, … up to 30 s (rnd 0: half of each) */
    uint64_t expect[] = {1000, 2000, 4000, 8000, 15000, 15000};
    for (size_t i = 0; i < 6; i++) {
        now += MS;
        assert_int_equal(end(&p, &probe, PACE_REFUSED, now), PACE_EVENT_NONE);
        assert_int_equal(delivery_pace_free(&p, now, &wait), 0);
        assert_int_equal(wait, expect[i] * MS);
        now += wait;
        probe = start(&p, 6 + (int64_t)i, now);
        assert_true(probe.probe);
    }
    now += MS;
    assert_int_equal(end(&p, &probe, PACE_OK, now), PACE_EVENT_RESUMED);
    assert_false(delivery_pace_paused(&p));
    assert_true(p.slow_start);
    assert_int_equal(free_now(&p, now), 1);
}

/* During a pause, the worker answering a client's call lets the probe go at once instead of at
 * the pause's end; never a second probe while one is in flight, and nothing outside a pause. */
static void test_probe_now_during_a_pause(void **state)
{
    (void)state;
    DeliveryPace p;
    delivery_pace_init(&p, 16);
    int64_t job = 1;
    uint64_t now = grow_to(&p, 4, 0, &job), wait;
    delivery_pace_probe_now(&p, now); /* not paused: nothing changes */
    assert_false(delivery_pace_paused(&p));
    assert_int_equal(free_now(&p, now), 4);
    for (int64_t j = 100; j < 100 + PACE_DOWN_JOBS; j++) {
        PaceSample s = start(&p, j, now);
        now += MS;
        (void)end(&p, &s, PACE_UNREACHABLE, now);
    }
    assert_true(delivery_pace_paused(&p));
    assert_int_equal(delivery_pace_free(&p, now, &wait), 0);
    assert_true(wait > 0);
    now += MS;
    delivery_pace_probe_now(&p, now);
    assert_int_equal(delivery_pace_free(&p, now, &wait), 1);
    assert_int_equal(wait, 0);
    PaceSample probe = start(&p, 200, now);
    assert_true(probe.probe);
    delivery_pace_probe_now(&p, now); /* the probe is in flight: no second one */
    assert_int_equal(delivery_pace_free(&p, now, &wait), 0);
    now += MS;
    assert_int_equal(end(&p, &probe, PACE_OK, now), PACE_EVENT_RESUMED);
    assert_false(delivery_pace_paused(&p));
}

/* The pause is at least the breaker's cool-down; the same job failing three times in a row
 * does not pause; a 2xx between failures ends the streak. */
static void test_pause_rules(void **state)
{
    (void)state;
    DeliveryPace p;
    delivery_pace_init(&p, 16);
    uint64_t now = 0;
    for (int i = 0; i < 5; i++) {
        PaceSample s = start(&p, 7, now);
        s.failed_before = i > 0;
        now += MS;
        assert_int_equal(end(&p, &s, PACE_REFUSED, now), PACE_EVENT_NONE);
    }
    PaceSample ok = start(&p, 8, now);
    assert_int_equal(end(&p, &ok, PACE_OK, now + MS), PACE_EVENT_NONE);
    for (int i = 0; i < 5; i++) {
        PaceSample s = start(&p, 10 + 2 * i, now);
        now += MS;
        assert_int_equal(end(&p, &s, PACE_FAILED, now), PACE_EVENT_NONE);
        s = start(&p, 11 + 2 * i, now);
        now += MS;
        assert_int_equal(end(&p, &s, PACE_FAILED, now), PACE_EVENT_NONE);
        s = start(&p, 100 + i, now);
        now += MS;
        assert_int_equal(end(&p, &s, PACE_ANSWERED, now), PACE_EVENT_NONE);
    }
    assert_false(delivery_pace_paused(&p));
    for (int64_t j = 50; j < 53; j++) {
        PaceSample s = {.signal = PACE_FAILED, .job_id = j, .started_usec = now};
        now += MS;
        PaceEvent e = delivery_pace_record(&p, &s, now, 5 * SEC, UINT64_MAX);
        assert_int_equal(e, j == 52 ? PACE_EVENT_PAUSED : PACE_EVENT_NONE);
    }
    assert_int_equal(delivery_pace_pause_usec(&p, now), 5 * SEC);

    /* three failed while one was under way, which the worker then took: no pause */
    delivery_pace_init(&p, 16);
    PaceSample taken = start(&p, 1, now);
    for (int64_t j = 2; j < 5; j++) {
        PaceSample s = start(&p, j, now);
        assert_int_equal(end(&p, &s, PACE_REFUSED, now + MS), PACE_EVENT_NONE);
    }
    assert_int_equal(free_now(&p, now + MS), 0);
    assert_int_equal(end(&p, &taken, PACE_OK, now + 20 * MS), PACE_EVENT_NONE);
    assert_false(delivery_pace_paused(&p));
    assert_int_equal(free_now(&p, now + 20 * MS), 1);
}

/* ---- simulations ---- */

#define SIM_CALLS 256
#define SIM_RETRIES 4096

typedef struct SimCall {
    PaceSample s;
    uint64_t end_usec;
    bool ok;
} SimCall;

typedef struct SimRetry {
    int64_t job;
    uint64_t due_usec;
} SimRetry;

typedef struct Sim {
    /* the worker: `width` calls at once, each `service_usec`; 503 at once past them, or for
     * the job `refused_job` always */
    unsigned width;
    uint64_t service_usec;
    int64_t refused_job;
    uint64_t down_until_usec; /* refuses every call before */
    unsigned busy;
    /* the deliveries */
    DeliveryPace pace;
    SimCall calls[SIM_CALLS];
    unsigned n_calls;
    int64_t next_job;
    SimRetry retries[SIM_RETRIES];
    size_t n_retries;
    unsigned cuts_by_refused_job;
    uint64_t ok, refused, attempts, pauses;
} Sim;

/* The oldest job due: one waiting for its retry, else a new one. */
static int64_t sim_take_job(Sim *sim, uint64_t now, bool *ret_failed_before)
{
    size_t best = SIZE_MAX;
    for (size_t i = 0; i < sim->n_retries; i++)
        if (sim->retries[i].due_usec <= now &&
            (best == SIZE_MAX || sim->retries[i].job < sim->retries[best].job))
            best = i;
    if (best == SIZE_MAX) {
        *ret_failed_before = false;
        return sim->next_job++;
    }
    int64_t job = sim->retries[best].job;
    sim->retries[best] = sim->retries[--sim->n_retries];
    *ret_failed_before = true;
    return job;
}

static void sim_start(Sim *sim, uint64_t now)
{
    bool failed_before;
    int64_t job = sim_take_job(sim, now, &failed_before);
    SimCall *c = &sim->calls[sim->n_calls++];
    *c = (SimCall){.s = {.job_id = job, .failed_before = failed_before, .started_usec = now}};
    c->s.probe = delivery_pace_start(&sim->pace, &c->s.window_full);
    c->ok = sim->busy < sim->width && job != sim->refused_job && now >= sim->down_until_usec;
    if (c->ok) {
        sim->busy++;
        c->end_usec = now + sim->service_usec;
    } else
        c->end_usec = now + 300; /* 503 at once: a loopback round trip */
    sim->attempts++;
}

static void sim_end(Sim *sim, size_t i, uint64_t now)
{
    SimCall c = sim->calls[i];
    sim->calls[i] = sim->calls[--sim->n_calls];
    c.s.signal = c.ok ? PACE_OK : PACE_REFUSED;
    if (c.ok) {
        sim->busy--;
        sim->ok++;
    } else {
        sim->refused++;
        assert_true(sim->n_retries < SIM_RETRIES);
        /* the job's own backoff: 1 to 2 s, then 2 to 4 s, … (as spool-schedule.c) */
        sim->retries[sim->n_retries++] = (SimRetry){
            .job = c.s.job_id, .due_usec = now + SEC + (uint64_t)(c.s.job_id * 7919 % 1000) * MS};
    }
    double before = sim->pace.cut_window;
    uint64_t cut_before = sim->pace.last_cut_usec;
    PaceEvent e = delivery_pace_record(&sim->pace, &c.s, now, 0, (uint64_t)now * 2654435761u);
    if (c.s.job_id == sim->refused_job && sim->pace.last_cut_usec != cut_before)
        sim->cuts_by_refused_job++;
    (void)before;
    if (e == PACE_EVENT_PAUSED)
        sim->pauses++;
}

/* Runs from now_usec to until_usec of simulated time, always with jobs to deliver. */
static void sim_run_from(Sim *sim, uint64_t now, uint64_t until_usec)
{
    while (now < until_usec) {
        uint64_t wait;
        while (delivery_pace_free(&sim->pace, now, &wait) > 0)
            sim_start(sim, now);
        size_t first = SIZE_MAX;
        for (size_t i = 0; i < sim->n_calls; i++)
            if (first == SIZE_MAX || sim->calls[i].end_usec < sim->calls[first].end_usec)
                first = i;
        if (first == SIZE_MAX) {
            assert_true(wait > 0); /* never stuck */
            now += wait;
            continue;
        }
        now = sim->calls[first].end_usec;
        sim_end(sim, first, now);
    }
}

static void sim_run(Sim *sim, unsigned max, uint64_t duration_usec)
{
    delivery_pace_init(&sim->pace, max);
    sim->next_job = 1;
    sim_run_from(sim, 0, duration_usec);
}

/* Runs a worker of `width` calls at once, 20 ms each, for a minute; false when it was fed
 * below 80 % of its capacity (or of the bound max), or more than 10 % of the attempts were refused,
 * or delivery paused. */
static bool sim_fixed_pool(unsigned width, unsigned max)
{
    static Sim sim;
    memset(&sim, 0, sizeof(sim));
    sim.width = width;
    sim.service_usec = 20 * MS;
    sim.refused_job = -1;
    const uint64_t duration = 60 * SEC;
    sim_run(&sim, max, duration);
    /* past the bound, the bound is all it can be fed */
    double capacity = (double)duration / (double)sim.service_usec * (width < max ? width : max);
    double used = (double)sim.ok / capacity;
    double refused = (double)sim.refused / (double)sim.attempts;
    print_message("worker of %u at once (window at most %u): %.1f %% of its capacity used, "
                  "%.1f %% of %llu attempts refused, %llu pauses\n",
                  width, max, used * 100, refused * 100, (unsigned long long)sim.attempts,
                  (unsigned long long)sim.pauses);
    return used >= 0.80 && refused <= 0.10 && sim.pauses == 0;
}

/* The worker (4 at once, 503 at once past them) and others from 1 to past the bound. */
static void test_sim_fixed_pool(void **state)
{
    (void)state;
    static const unsigned widths[] = {1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15};
    bool ok = true;
    for (size_t i = 0; i < sizeof(widths) / sizeof(widths[0]); i++)
        ok &= sim_fixed_pool(widths[i], 16);
    ok &= sim_fixed_pool(4, 32);
    ok &= sim_fixed_pool(20, 32);
    ok &= sim_fixed_pool(30, 32);
    ok &= sim_fixed_pool(40, 32); /* more than the bound: all of the bound */
    assert_true(ok);
}

/* The worker refuses everything for 20 s (down behind a proxy that answers 503), then takes 4
 * at once: a handful of attempts during the outage, not hundreds, and delivery goes on after. */
static void test_sim_outage(void **state)
{
    (void)state;
    static Sim sim;
    memset(&sim, 0, sizeof(sim));
    sim.width = 4;
    sim.service_usec = 20 * MS;
    sim.refused_job = -1;
    sim.down_until_usec = 20 * SEC;
    sim_run(&sim, 16, 20 * SEC);
    print_message("20 s outage: %llu attempts, %llu pause(s)\n", (unsigned long long)sim.attempts,
                  (unsigned long long)sim.pauses);
    assert_int_equal(sim.ok, 0);
    assert_int_equal(sim.pauses, 1);
    assert_true(sim.attempts <= 12);
    assert_true(delivery_pace_paused(&sim.pace));
    uint64_t attempts = sim.attempts;
    /* back: within the pause under way (at most 30 s), then fed again */
    static Sim after;
    after = sim;
    sim_run_from(&after, 20 * SEC, 80 * SEC);
    assert_false(delivery_pace_paused(&after.pace));
    assert_true(after.ok > 0.5 * 30 * 200);
    assert_true(after.attempts > attempts);
}

/* A fast worker (1 ms, 1000 at once) is fed at the bound from the start: the whole window. */
static void test_sim_fast_worker_fills_the_window(void **state)
{
    (void)state;
    static Sim sim;
    memset(&sim, 0, sizeof(sim));
    sim.width = 1000;
    sim.service_usec = MS;
    sim.refused_job = -1;
    sim_run(&sim, 16, 10 * SEC);
    assert_int_equal(sim.refused, 0);
    assert_int_equal(delivery_pace_window(&sim.pace), 16);
    double used = (double)sim.ok / (10.0 * 1000 * 16);
    print_message("fast worker: %.1f %% of a window of 16 used\n", used * 100);
    assert_true(used >= 0.99);
}

/* One job the worker always refuses (503), tried on its own schedule among thousands that go
 * through: it cuts the window once, and the others are fed as fast as without it. */
static void test_sim_one_refused_job(void **state)
{
    (void)state;
    static Sim sim;
    memset(&sim, 0, sizeof(sim));
    sim.width = 1000;
    sim.service_usec = 5 * MS;
    sim.refused_job = 1;
    sim_run(&sim, 16, 30 * SEC);
    print_message("one refused job: %llu delivered, %llu refused, %u cut(s) by it\n",
                  (unsigned long long)sim.ok, (unsigned long long)sim.refused,
                  sim.cuts_by_refused_job);
    assert_int_equal(sim.cuts_by_refused_job, 1);
    assert_true(sim.refused >= 2);
    assert_int_equal(sim.pauses, 0);
    assert_int_equal(delivery_pace_window(&sim.pace), 16);
    assert_true((double)sim.ok >= 0.95 * 30 * 16 * 200);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_start_up_to_max),
        cmocka_unit_test(test_grows_only_when_used),
        cmocka_unit_test(test_cut_once_a_round_trip),
        cmocka_unit_test(test_other_failures_do_not_cut),
        cmocka_unit_test(test_a_job_failing_again_does_not_cut),
        cmocka_unit_test(test_latency_jump_cuts),
        cmocka_unit_test(test_slower_near_the_last_cut),
        cmocka_unit_test(test_worker_down_pauses_and_probes),
        cmocka_unit_test(test_pause_rules),
        cmocka_unit_test(test_probe_now_during_a_pause),
        cmocka_unit_test(test_sim_fixed_pool),
        cmocka_unit_test(test_sim_outage),
        cmocka_unit_test(test_sim_fast_worker_fills_the_window),
        cmocka_unit_test(test_sim_one_refused_job),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
