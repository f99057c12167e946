/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atomics.h"

/* Counters and histograms for GET /metrics (Prometheus text format 0.0.4). Each event loop has
 * its own Metrics, written only by its thread and read by any (GET /metrics and STATUS= sum every
 * loop's): writes are relaxed atomic stores (metrics_inc), reads relaxed atomic loads
 * (metrics_sum), so recording still costs a plain add. */

typedef enum MetricsRoute {
    ROUTE_ENQUEUE,
    ROUTE_ENQUEUE_BATCH,
    ROUTE_HEALTH,
    ROUTE_READY,
    ROUTE_METRICS,
    ROUTE_OTHER,
    _ROUTE_MAX,
} MetricsRoute;

typedef enum MetricsAttempt {
    ATTEMPT_OK,
    ATTEMPT_HTTP_ERROR,
    ATTEMPT_UNREACHABLE,
    ATTEMPT_TIMEOUT,
    _ATTEMPT_MAX,
} MetricsAttempt;

/* How a delivery attempt from the spool ended: each in exactly one. */
typedef enum MetricsSpoolAttempt {
    SPOOL_ATTEMPT_DELIVERED, /* 2xx: removed from the spool */
    SPOOL_ATTEMPT_RETRY,     /* failed, tried again later on its own schedule */
    SPOOL_ATTEMPT_DEAD,      /* refused for good: a dead letter */
    SPOOL_ATTEMPT_EXPIRED,   /* failed after its lifetime (SPOOL_MAX_AGE_SEC): a dead letter */
    _SPOOL_ATTEMPT_MAX,
} MetricsSpoolAttempt;

#define METRICS_STATUSES 14 /* the statuses we answer, and "other" */
#define METRICS_BUCKETS 14  /* upper bounds in seconds, the last +Inf */

/* How a POST /enqueue/batch ended: each in exactly one. */
typedef enum MetricsBatch {
    BATCH_ACCEPTED, /* 200: every item accepted */
    BATCH_PARTIAL,  /* 207: some items not */
    BATCH_REJECTED, /* refused as a whole (400, 401, 413, 415, 503), nothing sent */
    _BATCH_MAX,
} MetricsBatch;

typedef struct Histogram {
    uint64_t buckets[METRICS_BUCKETS]; /* not cumulative; rendered cumulative */
    uint64_t count;
    uint64_t sum_usec;
} Histogram;

/* h2o's own error answers are counted for every status from 400 to 599. */
#define METRICS_PROTOCOL_STATUSES 200

typedef struct Metrics {
    uint64_t requests[_ROUTE_MAX][METRICS_STATUSES];
    uint64_t connections_accepted; /* by this loop: how evenly the loops share them */
    uint64_t attempts[_ATTEMPT_MAX];
    uint64_t retries;
    uint64_t shared_calls;
    uint64_t breaker_opened;
    uint64_t pending_rejected; /* jobs refused at MAX_PENDING_JOBS */
    uint64_t write_timeouts;   /* connections closed for an answer the client did not take */
    uint64_t shed_log_backlog; /* jobs answered 503 while the log sink was behind (log.h) */
    /* HTTP/1 requests answered 503 from their head, every place for a large body taken */
    uint64_t shed_large_bodies;
    /* jobs of batches answered 503 as a whole, the waiting batches' byte budget spent */
    uint64_t shed_batch_budget;
    /* The spool: jobs answered "queued", delivered from it, made dead letters (refused for
     * good, or expired), and jobs that could not be spooled (answered as without a spool). */
    uint64_t spool_queued, spool_delivered, spool_dead, spool_expired, spool_errors;
    uint64_t spool_attempts[_SPOOL_ATTEMPT_MAX];
    uint64_t batches[_BATCH_MAX]; /* POST /enqueue/batch requests by outcome */
    /* The delivery's gauges, set (metrics_gauge) on the first loop only, so that the sum over
     * the loops is their value: deliveries in flight, the window, 1 while paused. */
    uint64_t spool_in_flight, spool_window, spool_paused;
    Histogram worker_latency;  /* one attempt at the worker */
    Histogram request_latency; /* POST /enqueue, arrival to answer */
    /* Error answers that h2o made itself (malformed or oversized requests), by status: index
     * status - 400, for 400 to 599. */
    uint64_t protocol_errors[METRICS_PROTOCOL_STATUSES];

    /* For STATUS= and the stop line, not in the exposition: POST /enqueue requests by outcome,
     * each counted whether or not its client was still there for the answer... */
    uint64_t jobs_enqueued; /* the worker took the job */
    uint64_t jobs_failed;   /* the worker failed it, or the breaker was open */
    /* ...requests refused before anything was forwarded (any route)... */
    uint64_t requests_rejected;
    /* ...and the worker as the last finished call saw it (metrics_set). */
    bool worker_seen;      /* any call finished yet */
    bool worker_answering; /* the last one got an answer (2xx or an error status) */
} Metrics;

/* THREADS at most. */
#define METRICS_LOOPS_MAX 256

/* What the renderer reads from elsewhere at the moment of the scrape. */
typedef struct MetricsGauges {
    size_t n_loops;
    uint64_t loop_connections[METRICS_LOOPS_MAX]; /* accepted by each loop since the start */
    uint64_t in_flight;                           /* requests waiting for the worker */
    uint64_t connections;                         /* open client connections */
    int breaker_state;                            /* 0 closed, 1 open, 2 half-open */
    uint64_t pending_jobs; /* requests waiting on worker calls, gone clients included */
    uint64_t pending_jobs_limit;
    uint64_t calls_queued;        /* worker calls waiting for a free connection */
    double start_time;            /* seconds since the epoch */
    uint64_t log_dropped_journal; /* log entries dropped: log_dropped() */
    uint64_t log_dropped_stderr;
    bool spool;              /* a spool is configured: the argus_spool_* gauges */
    bool spool_up;           /* it takes jobs */
    uint64_t spool_jobs;     /* waiting for delivery, held ones not counted */
    uint64_t spool_held;     /* waiting, held by an operator */
    uint64_t spool_dead;     /* dead letters */
    double spool_oldest_age; /* seconds, of the oldest not held; 0 when none wait */
} MetricsGauges;

/* One more, from the thread that owns the counter. */
static inline void metrics_inc(uint64_t *c)
{
    relaxed_store_u64(c, *c + 1);
}
/* A gauge's value, from the thread that owns it. */
static inline void metrics_gauge(uint64_t *g, uint64_t v)
{
    relaxed_store_u64(g, v);
}
static inline void metrics_set(bool *flag, bool v)
{
    relaxed_store_bool(flag, v);
}
/* dst += src: src read with atomic loads, so from any thread. */
void metrics_sum(Metrics *dst, const Metrics *src);

void metrics_count_request(Metrics *m, MetricsRoute route, int status);
/* jobs_enqueued + jobs_failed + requests_rejected: it moves whenever anything STATUS= shows
 * (but the listeners and the drain) changes, for the worker flags change only with a job. */
uint64_t metrics_status_events(const Metrics *m);
void metrics_observe(Histogram *h, uint64_t usec);
/* An error answer of h2o's own (a status from 400 to 599; others are not counted). */
void metrics_count_protocol_error(Metrics *m, int status);

/* The exposition text (malloc'd) and its length; NULL when out of memory. */
char *metrics_render(const Metrics *m, const MetricsGauges *g, const char *version,
                     size_t *ret_len);
