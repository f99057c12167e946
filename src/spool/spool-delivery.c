/* SPDX-License-Identifier: MIT */
#include "spool-delivery.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"
#include "delivery-pace.h"
#include "list.h"
#include "log.h"
#include "macro.h"
#include "spool-schedule.h"
#include "trace.h"

/* When the spool is unavailable, the worker's queue is full of the clients' jobs, or memory ran
 * out: look again in a second. */
#define DELIVERY_RETRY_USEC (1000 * 1000ULL)
/* While the log sink is behind, deliveries wait (their entries would take the clients' room):
 * looked at again this often. */
#define DELIVERY_LOG_YIELD_USEC (100 * 1000ULL)
/* While paused, whether the worker answered a client's call is looked at this often: it ends
 * the pause's wait (a probe at once) instead of the pause's end, up to 30 s later. */
#define PAUSE_LOOK_USEC (1000 * 1000ULL)

typedef struct Delivery Delivery;

struct SpoolDelivery {
    SpoolDeliverySettings s;
    DeliveryPace pace;
    SpoolSchedule schedule;
    unsigned in_flight;
    /* The walk over the due jobs, in id order. */
    int64_t cursor;             /* the last job it looked at */
    size_t asked;               /* how many the fetch under way asked for */
    uint64_t forget_seq;        /* spool_forget_seq() when it was asked */
    bool fetching;              /* a fetch is under way */
    bool at_end;                /* no due job past the cursor */
    bool restart;               /* the next fetch starts from the first job */
    unsigned walk_starts;       /* deliveries this walk started */
    bool stopped;               /* draining */
    uint64_t walk_started_usec; /* CLOCK_REALTIME: when it last started from the first job */
    uint64_t generation, reset_generation; /* the spool's, when last seen */
    uint64_t paused_usec;                  /* CLOCK_MONOTONIC: when the pause began */
    uint64_t answered_at_pause;            /* worker_answered() then */
    sd_event_source *wait_timer;           /* nothing starts before it: a pause, the breaker */
    sd_event_source *due_timer; /* CLOCK_REALTIME: the earliest due time of a job passed by */
    Delivery *deliveries, *deliveries_tail; /* in flight */
    /* Deliveries that ended while a fetch was under way: the fetch may have read them still
     * waiting (their writes come after it), so they are not started again from it. */
    int64_t ended[PACE_MAX_LIMIT];
    size_t n_ended;
    bool ended_overflow; /* more than that: the fetch's result is not used */
    /* Due jobs fetched ahead, past the window, in id order: a delivery that ends starts the next
     * at once instead of waiting for a fetch (a group of the spool's thread, its commit and
     * fsync), which a worker with a small pool would otherwise wait out at each call. */
    SpoolJob *staged;
    size_t n_staged, staged_next;
    uint64_t staged_forget_seq; /* spool_forget_seq() when the fetch that found them was asked */
};

/* One job on its way from the spool. */
struct Delivery {
    SpoolDelivery *d;
    LIST_FIELDS(Delivery, deliveries);
    int64_t id;
    unsigned attempts;     /* before this one */
    uint64_t created_usec; /* CLOCK_REALTIME */
    uint64_t since_usec;   /* its lifetime's start, CLOCK_REALTIME */
    uint64_t started_usec; /* CLOCK_MONOTONIC */
    bool probe, window_full;
    char place_id[PLACE_ID_MAX + 1];
    char job_id[JOB_ID_MAX + 1];
    char request_id[REQUEST_ID_MAX + 1];
    /* the request's, as stored: every delivery's parent is the span of the request that spooled
     * the job (a job spooled without one gets a new trace) */
    Trace trace;
};

static void delivery_pump(SpoolDelivery *d);

unsigned spool_delivery_max(const Config *c)
{
    unsigned threads = c->threads ? c->threads : 1;
    unsigned max = c->worker_max_connections / threads / 2;
    return max < 1 ? 1 : max > PACE_MAX_LIMIT ? PACE_MAX_LIMIT : max;
}

static uint64_t random_u64(void)
{
    uint64_t rnd = 0;
    (void)!getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK);
    return rnd;
}

static bool timer_armed(sd_event_source *t)
{
    int on = SD_EVENT_OFF;
    return t && sd_event_source_get_enabled(t, &on) >= 0 && on != SD_EVENT_OFF;
}

static int on_wait_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)s, (void)usec;
    SpoolDelivery *d = userdata;
    (void)sd_event_source_set_enabled(d->wait_timer, SD_EVENT_OFF);
    delivery_pump(d);
    return 0;
}

/* A job passed by has come due: the walk starts again from the first job. */
static int on_due_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)s, (void)usec;
    SpoolDelivery *d = userdata;
    (void)sd_event_source_set_enabled(d->due_timer, SD_EVENT_OFF);
    d->restart = true;
    delivery_pump(d);
    return 0;
}

/* Arms *t (made on first use) for `until` on `clock`, unless it is armed for an earlier time
 * (later: when keep_later, for the wait timer, whose longest reason stands). */
static void timer_arm(SpoolDelivery *d, sd_event_source **t, clockid_t clock, uint64_t until,
                      bool keep_later, sd_event_time_handler_t fn, const char *name)
{
    uint64_t current = 0;
    if (timer_armed(*t) && sd_event_source_get_time(*t, &current) >= 0 &&
        (keep_later ? current >= until : current <= until))
        return;
    if (!*t) {
        if (sd_event_add_time(d->s.event, t, clock, until, 10000, fn, d) < 0)
            return;
        (void)sd_event_source_set_description(*t, name);
    } else
        (void)sd_event_source_set_time(*t, until);
    (void)sd_event_source_set_enabled(*t, SD_EVENT_ONESHOT);
}

/* Nothing starts before delay_usec from now (a later time already set stands). */
static void delivery_wait(SpoolDelivery *d, uint64_t delay_usec)
{
    timer_arm(d, &d->wait_timer, CLOCK_MONOTONIC, clock_usec(CLOCK_MONOTONIC) + delay_usec, true,
              on_wait_timer, "spool-delivery-wait");
}

static void gauges_update(SpoolDelivery *d)
{
    Metrics *m = d->s.metrics;
    metrics_gauge(&m->spool_in_flight, d->in_flight);
    metrics_gauge(&m->spool_window, delivery_pace_window(&d->pace));
    metrics_gauge(&m->spool_paused, delivery_pace_paused(&d->pace));
}

static PaceSignal pace_signal(const WorkerResult *r)
{
    switch (r->outcome) {
    case WORKER_OK:
        return PACE_OK;
    case WORKER_TIMEOUT:
        return PACE_TIMEOUT;
    case WORKER_UNREACHABLE:
        return PACE_UNREACHABLE;
    case WORKER_HTTP_ERROR:
        break;
    }
    if (!r->retryable)
        return PACE_ANSWERED;
    if (r->http_status == 429 || r->http_status == 503)
        return PACE_REFUSED;
    /* no status: the connection failed (reset, closed, garbage) */
    return r->http_status == 0 ? PACE_UNREACHABLE : PACE_FAILED;
}

static void log_fields_of(const Delivery *dl, const WorkerResult *r, LogFields *ret)
{
    *ret = (LogFields){
        .place_id = dl->place_id,
        .job_id = dl->job_id,
        .request_id = dl->request_id[0] ? dl->request_id : NULL,
        .trace_id = dl->trace.trace_id,
        .span_id = dl->trace.span_id,
        .worker_url = dl->d->s.config->worker_enqueue,
        .worker_status = (int)r->http_status,
        .attempt = (int)dl->attempts + 1,
        .duration_usec = (int64_t)(clock_usec(CLOCK_REALTIME) - dl->created_usec),
        .has_duration = true,
        .error = r->outcome == WORKER_OK ? NULL : r->reason,
    };
}

/* A retryable failure: the job waits for its own next attempt, or it expired. */
static void delivery_failed(SpoolDelivery *d, const Delivery *dl, const WorkerResult *r,
                            const LogFields *fields)
{
    Metrics *m = d->s.metrics;
    unsigned attempts = dl->attempts + 1;
    uint64_t now = clock_usec(CLOCK_REALTIME), due = 0;
    SpoolFate fate = spool_schedule_failure(&d->schedule, attempts, dl->since_usec, now,
                                            r->retry_after_sec * 1000000ULL, random_u64(), &due);
    if (fate == SPOOL_FATE_EXPIRED) {
        char error[SPOOL_ERROR_MAX];
        spool_schedule_expired_error(error, sizeof(error), attempts, r->reason);
        (void)spool_dead(d->s.spool, dl->id, dl->job_id, error);
        metrics_inc(&m->spool_expired);
        metrics_inc(&m->spool_attempts[SPOOL_ATTEMPT_EXPIRED]);
        log_error(MSGID_SPOOL_EXPIRED, fields,
                  "spooled job expired (SPOOL_MAX_AGE_SEC=%u), kept as a dead letter: %s",
                  d->s.config->spool_max_age_sec, error);
        return;
    }
    (void)spool_retry_later(d->s.spool, dl->id, dl->job_id, due, r->reason);
    /* The spool's next due time tells it too, unless an earlier one (of a job due but not
     * tried yet) hides it. */
    timer_arm(d, &d->due_timer, CLOCK_REALTIME, due, false, on_due_timer, "spool-delivery-due");
    metrics_inc(&m->spool_attempts[SPOOL_ATTEMPT_RETRY]);
    log_warn(MSGID_WORKER_RETRY, fields,
             "delivery from the spool failed, will retry: %s (attempt %u, next in %llu s)",
             r->reason, attempts, (unsigned long long)((due - now + 999999) / 1000000));
}

/* What the attempt's outcome does to the job: delivered, a dead letter, or tried again. */
static void delivery_outcome(SpoolDelivery *d, const Delivery *dl, const WorkerResult *r)
{
    Metrics *m = d->s.metrics;
    LogFields fields;
    log_fields_of(dl, r, &fields);
    if (r->outcome == WORKER_OK) {
        (void)spool_delivered(d->s.spool, dl->id, dl->job_id);
        metrics_inc(&m->spool_delivered);
        metrics_inc(&m->spool_attempts[SPOOL_ATTEMPT_DELIVERED]);
        log_info(MSGID_SPOOL_DELIVERED, &fields, "job delivered from the spool");
    } else if (!r->retryable) {
        (void)spool_dead(d->s.spool, dl->id, dl->job_id, r->reason);
        metrics_inc(&m->spool_dead);
        metrics_inc(&m->spool_attempts[SPOOL_ATTEMPT_DEAD]);
        log_error(MSGID_SPOOL_DEAD, &fields,
                  "worker refused a spooled job for good, kept as a dead letter: %s", r->reason);
    } else
        delivery_failed(d, dl, r, &fields);
}

/* Delivery paused or resumed as a whole: said once each way. */
static void delivery_pace_event(SpoolDelivery *d, PaceEvent e, const WorkerResult *r, uint64_t now)
{
    const char *url = d->s.config->worker_enqueue;
    if (e == PACE_EVENT_PAUSED) {
        d->paused_usec = now;
        d->answered_at_pause = worker_answered(d->s.worker);
        log_warn(MSGID_SPOOL_PAUSED, LOG_FIELDS(.worker_url = url, .error = r->reason),
                 "delivery from the spool paused: the worker failed %d different jobs in a row "
                 "(last: %s); one job is tried in %.1f s, then less often while it fails",
                 PACE_DOWN_JOBS, r->reason, (double)delivery_pace_pause_usec(&d->pace, now) / 1e6);
    } else if (e == PACE_EVENT_RESUMED)
        log_info(MSGID_SPOOL_RESUMED, LOG_FIELDS(.worker_url = url),
                 "delivery from the spool resumed: the worker took a job again after %.1f s",
                 (double)(now - d->paused_usec) / 1e6);
    if (e != PACE_EVENT_NONE)
        d->restart = true; /* the probe, and then the walk, from the oldest due job */
}

static void on_delivered(const WorkerResult *r, void *userdata)
{
    Delivery *dl = userdata;
    SpoolDelivery *d = dl->d;
    LIST_REMOVE(deliveries, d->deliveries, d->deliveries_tail, dl);
    d->in_flight--;
    if (d->fetching) {
        if (d->n_ended < ELEMENTSOF(d->ended))
            d->ended[d->n_ended++] = dl->id;
        else
            d->ended_overflow = true;
    }

    uint64_t now = clock_usec(CLOCK_MONOTONIC), breaker = 0;
    const char *why;
    (void)worker_ready(d->s.worker, &breaker, &why);
    PaceSample sample = {
        .signal = pace_signal(r),
        .job_id = dl->id,
        .failed_before = dl->attempts > 0,
        .probe = dl->probe,
        .window_full = dl->window_full,
        .started_usec = dl->started_usec,
    };
    PaceEvent e = delivery_pace_record(&d->pace, &sample, now, breaker, random_u64());
    delivery_outcome(d, dl, r);
    if (!d->stopped) /* cancelled by the drain: not the worker's doing, and nothing follows */
        delivery_pace_event(d, e, r, now);
    gauges_update(d);
    free(dl);
    if (d->s.on_delivery_end)
        d->s.on_delivery_end(d->s.userdata);
    delivery_pump(d);
}

/* Starts one delivery; false when the worker client refused it (then nothing started). */
static bool delivery_start(SpoolDelivery *d, const SpoolJob *job)
{
    Delivery *dl = malloc(sizeof(*dl));
    if (!dl) {
        delivery_wait(d, DELIVERY_RETRY_USEC);
        return false;
    }
    *dl = (Delivery){
        .d = d,
        .id = job->id,
        .attempts = job->attempts,
        .created_usec = job->created_usec,
        .since_usec = job->since_usec ? job->since_usec : job->created_usec,
        .started_usec = clock_usec(CLOCK_MONOTONIC),
    };
    memcpy(dl->place_id, job->place_id, sizeof(dl->place_id));
    memcpy(dl->job_id, job->job_id, sizeof(dl->job_id));
    memcpy(dl->request_id, job->request_id, sizeof(dl->request_id));
    trace_restore(&dl->trace, job->traceparent, job->tracestate);
    const JobRef ref = {.place_id = dl->place_id,
                        .job_id = dl->job_id,
                        .request_id = dl->request_id,
                        .traceparent = dl->trace.traceparent,
                        .tracestate = dl->trace.tracestate};
    WorkerEnqueueResult res = worker_deliver(d->s.worker, &ref, dl->attempts > 0, on_delivered, dl);
    if (res.admission == WORKER_ADMITTED) {
        LIST_PREPEND(deliveries, d->deliveries, d->deliveries_tail, dl);
        d->in_flight++;
        dl->probe = delivery_pace_start(&d->pace, &dl->window_full);
        return true;
    }
    free(dl);
    /* The breaker is open (its cool-down, then a due job is its probe), or the worker's queue
     * is full of the clients' jobs: later, from this job. */
    delivery_wait(d, res.retry_after_usec ? res.retry_after_usec : DELIVERY_RETRY_USEC);
    return false;
}

/* Whether job id is under way, or ended while the fetch that found it was. */
static bool delivery_busy_with(const SpoolDelivery *d, int64_t id)
{
    for (const Delivery *dl = d->deliveries; dl; dl = dl->deliveries_next)
        if (dl->id == id)
            return true;
    for (size_t i = 0; i < d->n_ended; i++)
        if (d->ended[i] == id)
            return true;
    return false;
}

static void staged_drop(SpoolDelivery *d)
{
    d->n_staged = d->staged_next = 0;
}

/* Starts staged jobs while the window has room; false when the worker refused one (it stays
 * staged, and a wait is set). */
static bool staged_start(SpoolDelivery *d)
{
    uint64_t wait;
    while (d->staged_next < d->n_staged && !d->stopped &&
           delivery_pace_free(&d->pace, clock_usec(CLOCK_MONOTONIC), &wait) > 0) {
        const SpoolJob *job = &d->staged[d->staged_next];
        if (spool_forgotten_since(d->s.spool, d->staged_forget_seq, job->job_id))
            d->restart = true; /* a client's call took it meanwhile; if not, the next walk */
        else if (!delivery_busy_with(d, job->id)) {
            if (!delivery_start(d, job))
                return false;
            d->walk_starts++;
        }
        d->staged_next++;
    }
    if (d->staged_next == d->n_staged)
        staged_drop(d);
    return true;
}

/* Keeps jobs[i…n) not under way, PACE_MAX_LIMIT at most, for staged_start (the window is
 * full); the walk goes on past the last one looked at. Returns where it stopped. */
static size_t staged_keep(SpoolDelivery *d, const SpoolJob *jobs, size_t i, size_t n)
{
    staged_drop(d);
    if (!d->staged && !(d->staged = malloc(PACE_MAX_LIMIT * sizeof(SpoolJob))))
        return i; /* fetched again later */
    d->staged_forget_seq = d->forget_seq;
    for (; i < n && d->n_staged < PACE_MAX_LIMIT; i++) {
        if (!delivery_busy_with(d, jobs[i].id))
            d->staged[d->n_staged++] = jobs[i];
        d->cursor = jobs[i].id;
    }
    return i;
}

static void on_fetched(int error, const SpoolJob *jobs, size_t n, void *userdata)
{
    SpoolDelivery *d = userdata;
    d->fetching = false;
    bool unusable = d->ended_overflow;
    d->ended_overflow = false;
    if (error < 0 || unusable) {
        d->n_ended = 0;
        if (error < 0)
            delivery_wait(d, DELIVERY_RETRY_USEC);
        else
            delivery_pump(d);
        return;
    }
    size_t i = 0;
    bool refused = false;
    for (; i < n && !d->stopped; i++) {
        uint64_t wait;
        if (spool_forgotten_since(d->s.spool, d->forget_seq, jobs[i].job_id))
            d->restart = true; /* a client's call took it meanwhile; if not, the next walk */
        else if (!delivery_busy_with(d, jobs[i].id)) {
            if (delivery_pace_free(&d->pace, clock_usec(CLOCK_MONOTONIC), &wait) == 0)
                break;
            if (!delivery_start(d, &jobs[i])) {
                refused = true;
                break;
            }
            d->walk_starts++;
        }
        d->cursor = jobs[i].id;
    }
    if (!refused && !d->stopped && !d->restart && i < n &&
        !delivery_pace_paused(&d->pace)) { /* the window is full: the rest for later */
        i = staged_keep(d, jobs, i, n);
    }
    d->n_ended = 0;
    d->at_end = i == n && n < d->asked;
    /* At the end of a walk that started deliveries, once more from the first job: one skipped
     * because it was under way may wait again. A walk that started none ends there. */
    if (d->at_end && d->walk_starts > 0)
        d->restart = true;
    gauges_update(d);
    delivery_pump(d);
}

/* What the spool's state says: new jobs past the cursor, a change elsewhere (the walk from the
 * first job), and when a job passed by comes due. */
static void delivery_see(SpoolDelivery *d, const SpoolState *st)
{
    if (st->reset_generation != d->reset_generation) {
        d->reset_generation = st->reset_generation;
        d->restart = true; /* an operator's change: what is staged may be held, or gone */
        staged_drop(d);
    }
    if (st->generation != d->generation) {
        d->generation = st->generation;
        d->at_end = false;
    }
    /* A job due at or before the walk's start is found by that walk (or is under way). One
     * that came due since (the spool's next due time reads as passed until its next group) is
     * found by the next walk: a timer armed for a passed time would fire at once again and
     * again while no walk can start (the window full, a probe under way), spinning the loop. */
    uint64_t next = st->stats.next_due_usec;
    if (next > d->walk_started_usec && next <= clock_usec(CLOCK_REALTIME))
        d->restart = true;
    else if (next > d->walk_started_usec)
        timer_arm(d, &d->due_timer, CLOCK_REALTIME, next, false, on_due_timer,
                  "spool-delivery-due");
}

static void delivery_pump(SpoolDelivery *d)
{
    if (d->stopped || d->fetching || timer_armed(d->wait_timer))
        return;
    LogPressure lp = log_pressure(); /* the spool yields to the log backlog before clients */
    if (lp == LOG_PRESSURE_BEHIND || lp == LOG_PRESSURE_SHED) {
        delivery_wait(d, DELIVERY_LOG_YIELD_USEC);
        return;
    }
    SpoolState st;
    spool_state(d->s.spool, &st);
    delivery_see(d, &st);
    if (!st.up) {
        /* The spool's thread tries to recover by itself; look again in a while. */
        delivery_wait(d, DELIVERY_RETRY_USEC);
        return;
    }
    if (d->restart || delivery_pace_paused(&d->pace))
        staged_drop(d); /* the walk starts again from the first job: they are found again */
    else if (!staged_start(d))
        return;
    uint64_t wait, now = clock_usec(CLOCK_MONOTONIC);
    unsigned n_free = delivery_pace_free(&d->pace, now, &wait);
    if (wait > 0 && worker_answered(d->s.worker) != d->answered_at_pause) {
        delivery_pace_probe_now(&d->pace, now); /* a client's call got through meanwhile */
        n_free = delivery_pace_free(&d->pace, now, &wait);
    }
    if (n_free == 0 && (wait > 0 || d->n_staged > 0 || d->restart)) {
        if (wait > 0) /* paused: the probe's time, looking each second for clients' answers */
            delivery_wait(d, wait < PAUSE_LOOK_USEC ? wait : PAUSE_LOOK_USEC);
        return;
    }
    /* n_free 0 here: the window is full and nothing is staged: fetch ahead */
    if (d->restart) {
        d->cursor = 0;
        d->restart = d->at_end = false;
        d->walk_starts = 0;
        d->walk_started_usec = clock_usec(CLOCK_REALTIME);
    } else if (d->at_end || st.stats.jobs == 0)
        return; /* nothing due: new jobs, a change or the due timer wake it */
    /* those under way may come first (skipped); a window's worth more, staged */
    size_t ask = n_free + d->in_flight + delivery_pace_window(&d->pace);
    d->asked = ask < SPOOL_FETCH_MAX ? ask : SPOOL_FETCH_MAX;
    d->forget_seq = spool_forget_seq(d->s.spool);
    if (spool_fetch_due(d->s.spool, d->cursor, d->asked, on_fetched, d) < 0) {
        delivery_wait(d, DELIVERY_RETRY_USEC);
        return;
    }
    d->fetching = true;
    d->n_ended = 0;
}

void spool_delivery_changed(SpoolDelivery *d)
{
    delivery_pump(d);
}

void spool_delivery_stop(SpoolDelivery *d)
{
    d->stopped = true;
    if (d->wait_timer)
        (void)sd_event_source_set_enabled(d->wait_timer, SD_EVENT_OFF);
    if (d->due_timer)
        (void)sd_event_source_set_enabled(d->due_timer, SD_EVENT_OFF);
}

unsigned spool_delivery_in_flight(const SpoolDelivery *d)
{
    return d->in_flight;
}

int spool_delivery_new(const SpoolDeliverySettings *settings, SpoolDelivery **ret)
{
    SpoolDelivery *d = calloc(1, sizeof(*d));
    if (!d)
        return -ENOMEM;
    d->s = *settings;
    delivery_pace_init(&d->pace, spool_delivery_max(settings->config));
    d->schedule = (SpoolSchedule){
        .retry_max_usec = (uint64_t)settings->config->spool_retry_max_sec * 1000000ULL,
        .max_age_usec = (uint64_t)settings->config->spool_max_age_sec * 1000000ULL,
    };
    d->generation = d->reset_generation = UINT64_MAX; /* the first pump looks */
    gauges_update(d);
    *ret = d;
    return 0;
}

SpoolDelivery *spool_delivery_free(SpoolDelivery *d)
{
    if (!d)
        return NULL;
    sd_event_source_disable_unref(d->wait_timer);
    sd_event_source_disable_unref(d->due_timer);
    while (d->deliveries) { /* the worker was freed first, without calling back */
        Delivery *dl = d->deliveries;
        LIST_REMOVE(deliveries, d->deliveries, d->deliveries_tail, dl);
        free(dl);
    }
    free(d->staged);
    free(d);
    return NULL;
}
