/* SPDX-License-Identifier: MIT */
#include "delivery-pace.h"

#include "backoff.h"

/* The cut: the window times this, at least 1. */
#define PACE_CUT 0.7
/* Up to one past the window of the last cut, the window grows this many times slower: with 8,
 * a worker taking one call at a time had 11 % of the attempts refused (test-delivery-pace.c's
 * simulation), with 16 under 6 %. */
#define PACE_SLOW 16.0
/* The latency's moving average: each 2xx weighs 1/PACE_AVG_WEIGHT. */
#define PACE_AVG_WEIGHT 8.0
/* A jump: over max(3 x average, average + 20 ms). Near the average: under max(1.5 x average,
 * average + 5 ms); between the two, the window stays. */
#define PACE_JUMP_FACTOR 3.0
#define PACE_JUMP_MARGIN_USEC 20000.0
#define PACE_NEAR_FACTOR 1.5
#define PACE_NEAR_MARGIN_USEC 5000.0
/* The pause: 1 s doubling to 30 s (equal jitter). */
#define PACE_PAUSE_BASE_USEC (1000000ULL)
#define PACE_PAUSE_MAX_USEC (30 * 1000000ULL)

void delivery_pace_init(DeliveryPace *p, unsigned max)
{
    if (max < 1)
        max = 1;
    if (max > PACE_MAX_LIMIT)
        max = PACE_MAX_LIMIT;
    *p = (DeliveryPace){.max = max, .window = 1, .slow_start = true};
}

unsigned delivery_pace_window(const DeliveryPace *p)
{
    return p->paused ? 1 : (unsigned)p->window;
}

bool delivery_pace_paused(const DeliveryPace *p)
{
    return p->paused;
}

void delivery_pace_probe_now(DeliveryPace *p, uint64_t now)
{
    if (p->paused && p->resume_usec > now)
        p->resume_usec = now;
}

uint64_t delivery_pace_pause_usec(const DeliveryPace *p, uint64_t now)
{
    return p->paused && p->resume_usec > now ? p->resume_usec - now : 0;
}

unsigned delivery_pace_free(const DeliveryPace *p, uint64_t now, uint64_t *ret_wait_usec)
{
    *ret_wait_usec = 0;
    if (p->paused) {
        if (p->probing)
            return 0;
        if (now < p->resume_usec) {
            *ret_wait_usec = p->resume_usec - now;
            return 0;
        }
        return 1;
    }
    unsigned w = (unsigned)p->window;
    return !p->suspect && w > p->in_flight ? w - p->in_flight : 0;
}

bool delivery_pace_start(DeliveryPace *p, bool *ret_window_full)
{
    p->in_flight++;
    *ret_window_full = p->in_flight * 2 >= (unsigned)p->window;
    if (!p->paused)
        return false;
    p->probing = true;
    return true;
}

static void pace_cut(DeliveryPace *p, uint64_t now)
{
    p->cut_window = p->window;
    p->window = p->window * PACE_CUT < 1 ? 1 : p->window * PACE_CUT;
    p->slow_start = false;
    p->last_cut_usec = now;
}

static void pace_grow(DeliveryPace *p)
{
    if (p->slow_start)
        p->window += 1;
    else {
        double inc = 1 / p->window;
        if (p->window < p->cut_window + 1)
            inc /= PACE_SLOW;
        p->window += inc;
    }
    if (p->window > p->max)
        p->window = p->max;
}

/* A 2xx: the latency says whether the window grows, stays, or is cut. */
static void pace_ok(DeliveryPace *p, const PaceSample *s, uint64_t now)
{
    double latency = (double)(now - s->started_usec), avg = p->latency_avg_usec;
    bool heard = s->started_usec >= p->last_cut_usec;
    if (avg > 0 && heard &&
        latency > (avg * PACE_JUMP_FACTOR > avg + PACE_JUMP_MARGIN_USEC
                       ? avg * PACE_JUMP_FACTOR
                       : avg + PACE_JUMP_MARGIN_USEC))
        pace_cut(p, now);
    else if (s->window_full &&
             (avg == 0 || latency <= (avg * PACE_NEAR_FACTOR > avg + PACE_NEAR_MARGIN_USEC
                                          ? avg * PACE_NEAR_FACTOR
                                          : avg + PACE_NEAR_MARGIN_USEC)))
        pace_grow(p);
    p->latency_avg_usec = avg == 0 ? latency : avg + (latency - avg) / PACE_AVG_WEIGHT;
}

static void pace_pause(DeliveryPace *p, uint64_t now, uint64_t min_pause_usec, uint64_t rnd)
{
    uint64_t pause =
        backoff_delay_usec(p->failed_probes + 1, PACE_PAUSE_BASE_USEC, PACE_PAUSE_MAX_USEC, rnd);
    if (pause < min_pause_usec)
        pause = min_pause_usec;
    p->resume_usec = now + pause;
}

static bool streak_has(const DeliveryPace *p, int64_t job_id)
{
    for (unsigned i = 0; i < p->streak && i < PACE_DOWN_JOBS; i++)
        if (p->streak_jobs[i] == job_id)
            return true;
    return false;
}

/* A retryable failure while delivering: maybe a cut, maybe the worker down as a whole. */
static PaceEvent pace_failure(DeliveryPace *p, const PaceSample *s, uint64_t now,
                              uint64_t min_pause_usec, uint64_t rnd)
{
    bool heard = s->started_usec >= p->last_cut_usec || p->suspect;
    bool news = !s->failed_before || !p->failure_seen || p->last_failed_job != s->job_id;
    p->last_failed_job = s->job_id;
    p->failure_seen = true;
    if (!heard)
        return PACE_EVENT_NONE;
    if (news && s->signal != PACE_FAILED && s->started_usec >= p->last_cut_usec)
        pace_cut(p, now);
    if (p->streak < PACE_DOWN_JOBS && !streak_has(p, s->job_id))
        p->streak_jobs[p->streak++] = s->job_id;
    if (p->streak < PACE_DOWN_JOBS)
        return PACE_EVENT_NONE;
    /* Those still under way may yet be taken (a window too wide for a small pool is refused
     * at once, before the 2xx of those it took): their outcomes first. */
    p->suspect = p->in_flight > 0;
    if (p->suspect)
        return PACE_EVENT_NONE;
    p->streak = 0;
    p->paused = true;
    p->probing = false;
    p->failed_probes = 0;
    p->window = 1;
    p->cut_window = 0;
    p->last_cut_usec = now; /* what was under way when it paused is not heard */
    pace_pause(p, now, min_pause_usec, rnd);
    return PACE_EVENT_PAUSED;
}

PaceEvent delivery_pace_record(DeliveryPace *p, const PaceSample *s, uint64_t now,
                               uint64_t min_pause_usec, uint64_t rnd)
{
    if (p->in_flight > 0)
        p->in_flight--;
    if (s->probe)
        p->probing = false;
    bool up = s->signal == PACE_OK || s->signal == PACE_ANSWERED;
    if (p->paused) {
        if (up) {
            /* The worker takes jobs again: slow start from 1. */
            p->paused = false;
            p->window = 1;
            p->slow_start = true;
            p->streak = 0;
            p->suspect = false;
            return PACE_EVENT_RESUMED;
        }
        if (s->probe) {
            p->failed_probes++;
            pace_pause(p, now, min_pause_usec, rnd);
        }
        return PACE_EVENT_NONE;
    }
    if (!up)
        return pace_failure(p, s, now, min_pause_usec, rnd);
    p->streak = 0;
    p->suspect = false;
    if (s->signal == PACE_OK)
        pace_ok(p, s, now);
    return PACE_EVENT_NONE;
}
