/* SPDX-License-Identifier: MIT */
#include "spool-delivery.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "backoff.h"
#include "clock.h"
#include "list.h"
#include "log.h"
#include "macro.h"

/* Deliveries in flight at most (and at most WORKER_MAX_CONNECTIONS): enough to catch up at the
 * worker's pace, few enough to leave connections to the clients' own jobs. */
#define DELIVERY_MAX 16
/* After a failed delivery: 1 s, doubling to 10 s (with jitter), or longer when the worker's
 * Retry-After or the breaker's cool-down says so. The cap is what delivery may lag behind a
 * worker that came back (a client's request may have closed the breaker meanwhile); one probe
 * every 10 s at a worker that is down costs nothing. */
#define DELIVERY_BACKOFF_BASE_USEC (1000 * 1000ULL)
#define DELIVERY_BACKOFF_CAP_USEC (10 * 1000 * 1000ULL)

typedef struct Delivery Delivery;

struct SpoolDelivery {
    SpoolDeliverySettings s;
    unsigned max, in_flight, failures;
    int64_t cursor;         /* the newest job started this round */
    bool fetching;          /* a fetch is asked */
    bool at_end;            /* the last fetch found nothing past the cursor */
    bool restart;           /* a delivery failed: the next round starts from the oldest */
    bool stopped;           /* draining */
    uint64_t generation;    /* the spool's, when last seen */
    sd_event_source *timer; /* the backoff */
    Delivery *deliveries, *deliveries_tail; /* in flight */
};

/* One job on its way from the spool. */
struct Delivery {
    SpoolDelivery *d;
    LIST_FIELDS(Delivery, deliveries);
    int64_t id;
    unsigned attempts;
    uint64_t created_usec;
    char place_id[PLACE_ID_MAX + 1];
    char job_id[JOB_ID_MAX + 1];
    char request_id[REQUEST_ID_MAX + 1];
};

static void delivery_pump(SpoolDelivery *d);

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)s, (void)usec;
    SpoolDelivery *d = userdata;
    (void)sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
    delivery_pump(d);
    return 0;
}

static bool timer_armed(SpoolDelivery *d)
{
    int on = SD_EVENT_OFF;
    return d->timer && sd_event_source_get_enabled(d->timer, &on) >= 0 && on != SD_EVENT_OFF;
}

/* Nothing starts before delay_usec from now (a later time already set stands). */
static void delivery_wait(SpoolDelivery *d, uint64_t delay_usec)
{
    uint64_t until = clock_usec(CLOCK_MONOTONIC) + delay_usec, current = 0;
    if (timer_armed(d) && sd_event_source_get_time(d->timer, &current) >= 0 && current >= until)
        return;
    if (!d->timer) {
        if (sd_event_add_time(d->s.event, &d->timer, CLOCK_MONOTONIC, until, 10000, on_timer, d) <
            0)
            return;
        (void)sd_event_source_set_description(d->timer, "spool-delivery");
    } else
        (void)sd_event_source_set_time(d->timer, until);
    (void)sd_event_source_set_enabled(d->timer, SD_EVENT_ONESHOT);
}

/* After a failure: the backoff, or the worker's Retry-After, or the breaker's cool-down,
 * whichever is longest. */
static void delivery_back_off(SpoolDelivery *d, uint64_t at_least_usec)
{
    uint64_t rnd = 0;
    (void)getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK);
    uint64_t delay = backoff_delay_usec(d->failures ? d->failures : 1, DELIVERY_BACKOFF_BASE_USEC,
                                        DELIVERY_BACKOFF_CAP_USEC, rnd);
    uint64_t breaker = 0;
    const char *why;
    if (!worker_ready(d->s.worker, &breaker, &why) && breaker > delay)
        delay = breaker;
    if (at_least_usec > delay)
        delay = at_least_usec;
    delivery_wait(d, delay);
}

static void on_delivered(const WorkerResult *r, void *userdata)
{
    Delivery *dl = userdata;
    SpoolDelivery *d = dl->d;
    Metrics *m = d->s.metrics;
    LIST_REMOVE(deliveries, d->deliveries, d->deliveries_tail, dl);
    d->in_flight--;
    const LogFields fields = {
        .place_id = dl->place_id,
        .job_id = dl->job_id,
        .request_id = dl->request_id[0] ? dl->request_id : NULL,
        .worker_url = d->s.config->worker_enqueue,
        .worker_status = (int)r->http_status,
        .attempt = (int)dl->attempts + 1,
        .duration_usec = (int64_t)(clock_usec(CLOCK_REALTIME) - dl->created_usec),
        .has_duration = true,
        .error = r->outcome == WORKER_OK ? NULL : r->reason,
    };
    if (r->outcome == WORKER_OK) {
        (void)spool_delivered(d->s.spool, dl->id);
        metrics_inc(&m->spool_delivered);
        d->failures = 0;
        log_info(MSGID_SPOOL_DELIVERED, &fields, "job delivered from the spool");
    } else if (!r->retryable) {
        (void)spool_dead(d->s.spool, dl->id, r->reason);
        metrics_inc(&m->spool_dead);
        log_error(MSGID_SPOOL_DEAD, &fields,
                  "worker refused a spooled job for good, kept as a dead letter: %s", r->reason);
    } else {
        (void)spool_attempt_failed(d->s.spool, dl->id, r->reason);
        d->failures++;
        d->restart = true;
        log_warn(MSGID_WORKER_RETRY, &fields, "delivery from the spool failed, will retry: %s",
                 r->reason);
        if (!d->stopped)
            delivery_back_off(d, r->retry_after_sec * 1000000ULL);
    }
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
        delivery_wait(d, DELIVERY_BACKOFF_BASE_USEC);
        return false;
    }
    dl->d = d;
    dl->id = job->id;
    dl->attempts = job->attempts;
    dl->created_usec = job->created_usec;
    memcpy(dl->place_id, job->place_id, sizeof(dl->place_id));
    memcpy(dl->job_id, job->job_id, sizeof(dl->job_id));
    memcpy(dl->request_id, job->request_id, sizeof(dl->request_id));
    WorkerEnqueueResult res =
        worker_enqueue(d->s.worker, dl->place_id, dl->job_id, dl->request_id, 0, on_delivered, dl);
    if (res.admission == WORKER_ADMITTED) {
        LIST_PREPEND(deliveries, d->deliveries, d->deliveries_tail, dl);
        d->in_flight++;
        return true;
    }
    free(dl);
    /* The breaker is open (wait for its cool-down, then one probe), or the worker's queue is
     * full of the clients' jobs: later. */
    delivery_wait(d, res.retry_after_usec ? res.retry_after_usec : DELIVERY_BACKOFF_BASE_USEC);
    return false;
}

static void on_fetched(int error, const SpoolJob *jobs, size_t n, void *userdata)
{
    SpoolDelivery *d = userdata;
    size_t asked = d->max > d->in_flight ? d->max - d->in_flight : 0;
    d->fetching = false;
    if (error < 0) {
        delivery_wait(d, DELIVERY_BACKOFF_BASE_USEC);
        return;
    }
    size_t started = 0;
    for (; started < n && !d->stopped; started++) {
        if (!delivery_start(d, &jobs[started]))
            break;
        d->cursor = jobs[started].id;
    }
    d->at_end = started == n && n < asked;
    delivery_pump(d);
}

static void delivery_pump(SpoolDelivery *d)
{
    if (d->stopped || d->fetching || timer_armed(d) || d->in_flight >= d->max)
        return;
    SpoolState st;
    spool_state(d->s.spool, &st);
    if (st.generation != d->generation) {
        d->generation = st.generation;
        d->at_end = false; /* new jobs past the cursor */
    }
    if (!st.up) {
        /* The spool's thread tries to recover by itself; look again in a while. */
        delivery_wait(d, DELIVERY_BACKOFF_BASE_USEC);
        return;
    }
    if (st.stats.jobs == 0)
        return;
    if (d->at_end || d->restart) {
        if (d->in_flight > 0)
            return; /* the round ends with its last delivery */
        d->cursor = 0;
        d->at_end = d->restart = false;
    }
    if (spool_fetch(d->s.spool, d->cursor, d->max - d->in_flight, on_fetched, d) < 0) {
        delivery_wait(d, DELIVERY_BACKOFF_BASE_USEC);
        return;
    }
    d->fetching = true;
}

void spool_delivery_changed(SpoolDelivery *d)
{
    delivery_pump(d);
}

void spool_delivery_stop(SpoolDelivery *d)
{
    d->stopped = true;
    if (d->timer)
        (void)sd_event_source_set_enabled(d->timer, SD_EVENT_OFF);
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
    d->max = settings->config->worker_max_connections < DELIVERY_MAX
                 ? settings->config->worker_max_connections
                 : DELIVERY_MAX;
    d->generation = UINT64_MAX; /* the first pump looks */
    *ret = d;
    return 0;
}

SpoolDelivery *spool_delivery_free(SpoolDelivery *d)
{
    if (!d)
        return NULL;
    sd_event_source_disable_unref(d->timer);
    while (d->deliveries) { /* the worker was freed first, without calling back */
        Delivery *dl = d->deliveries;
        LIST_REMOVE(deliveries, d->deliveries, d->deliveries_tail, dl);
        free(dl);
    }
    free(d);
    return NULL;
}
