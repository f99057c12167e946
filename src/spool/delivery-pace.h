/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* The pace of delivery from the spool, set by the worker: a pure function of the outcomes of
 * deliveries and the time (CLOCK_MONOTONIC microseconds), for spool-delivery.c.
 *
 * A window of deliveries in flight, 1 to max, as TCP's congestion window: slow start from 1
 * (+1 per 2xx, up to twice the window a round trip) until the first cut, then additive increase
 * (+1/window per 2xx, about +1 a round trip) while the latency stays near its moving average, 16
 * times slower up to one past the window where the last cut happened, so that a worker with a fixed
 * pool of N is probed past N only now and then. The window grows only while at least half of it is
 * used. A refusal (429, 503), a timeout, a connection failure or a jump of the latency cuts it (x
 * PACE_CUT), at most once a round trip (what a delivery that started before the last cut says is
 * not heard), and only when it is news about the worker: a job that had failed before and fails
 * again, right after its own previous failure, cuts nothing.
 *
 * A worker down as a whole (failures of PACE_DOWN_JOBS different jobs in a row, no 2xx in
 * between, and none from those still under way then) pauses delivery: nothing for 1 s doubling to
 * 30 s (jittered; or the breaker's cool-down if longer), then one probe; a 2xx ends the pause (slow
 * start from 1 again), a failed probe doubles it. */

/* The upper bound of any window (spool-delivery.c takes a lower one from the settings). */
#define PACE_MAX_LIMIT 64
#define PACE_DOWN_JOBS 3

typedef enum PaceSignal {
    PACE_OK,          /* 2xx: the worker took the job */
    PACE_ANSWERED,    /* a final answer on the job (a 4xx but 429): the worker is there */
    PACE_REFUSED,     /* 429 or 503: too busy, or this job's trouble */
    PACE_TIMEOUT,     /* no answer in time */
    PACE_UNREACHABLE, /* the connection failed */
    PACE_FAILED,      /* any other retryable failure (a 500, a 502): no cut */
} PaceSignal;

typedef struct PaceSample {
    PaceSignal signal;
    int64_t job_id;
    bool failed_before;    /* the job had failed an attempt before this one */
    bool probe;            /* delivery_pace_start() said so */
    bool window_full;      /* delivery_pace_start() said so */
    uint64_t started_usec; /* when the delivery started */
} PaceSample;

typedef enum PaceEvent {
    PACE_EVENT_NONE,
    PACE_EVENT_PAUSED,  /* the worker fails every job: nothing tried until the probe */
    PACE_EVENT_RESUMED, /* it took a job again */
} PaceEvent;

typedef struct DeliveryPace {
    unsigned max;
    double window;
    double cut_window; /* the window the last cut cut; 0 before the first (or since a pause) */
    bool slow_start;
    uint64_t last_cut_usec;  /* a signal of a delivery started before it is not heard */
    double latency_avg_usec; /* moving average of the 2xx's latencies; 0: none yet */
    int64_t last_failed_job; /* of the last failure heard */
    bool failure_seen;
    unsigned streak; /* failures of different jobs in a row, no 2xx in between */
    int64_t streak_jobs[PACE_DOWN_JOBS];
    unsigned in_flight; /* started, not yet recorded */
    bool suspect;       /* PACE_DOWN_JOBS failed: nothing starts until those under way end */
    bool paused;
    bool probing;           /* the probe is in flight */
    unsigned failed_probes; /* in a row, in this pause */
    uint64_t resume_usec;   /* while paused: when the probe may go */
} DeliveryPace;

void delivery_pace_init(DeliveryPace *p, unsigned max);

/* How many more deliveries may start now; while paused 0 until the probe's time
 * (*ret_wait_usec says how long until then, else 0), then 1. */
unsigned delivery_pace_free(const DeliveryPace *p, uint64_t now, uint64_t *ret_wait_usec);

/* A delivery started; sets *ret_window_full (for its sample). Returns whether it is the probe
 * of a pause. */
bool delivery_pace_start(DeliveryPace *p, bool *ret_window_full);

/* A delivery ended at now (every started one must: the pace counts them). min_pause_usec: a
 * pause starting now lasts at least this long (the breaker's cool-down left); rnd: any random
 * value (the pause's jitter). */
PaceEvent delivery_pace_record(DeliveryPace *p, const PaceSample *s, uint64_t now,
                               uint64_t min_pause_usec, uint64_t rnd);

/* The worker answered another's call (a client's) during a pause: the probe may go now rather
 * than at the pause's end (at most one probe in flight, as always). */
void delivery_pace_probe_now(DeliveryPace *p, uint64_t now);

/* The window as a whole number (1 while paused: the probe). */
unsigned delivery_pace_window(const DeliveryPace *p);
bool delivery_pace_paused(const DeliveryPace *p);
/* While paused, the length of the pause now under way (its jitter included). */
uint64_t delivery_pace_pause_usec(const DeliveryPace *p, uint64_t now);
