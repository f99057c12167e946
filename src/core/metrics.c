/* SPDX-License-Identifier: MIT */
#include "metrics.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buffer.h"
#include "process-metrics.h"

static const int statuses[METRICS_STATUSES - 1] = {200, 202, 207, 400, 401, 404, 405,
                                                   413, 415, 502, 503, 504, 500};
static const char *const route_names[_ROUTE_MAX] = {"enqueue", "enqueue_batch", "health",
                                                    "ready",   "metrics",       "other"};
static const char *const batch_names[_BATCH_MAX] = {"accepted", "partial", "rejected"};
static const char *const attempt_names[_ATTEMPT_MAX] = {"ok", "http_error", "unreachable",
                                                        "timeout"};
static const char *const spool_attempt_names[_SPOOL_ATTEMPT_MAX] = {"delivered", "retry", "dead",
                                                                    "expired"};
/* seconds */
static const double bucket_bounds[METRICS_BUCKETS - 1] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
static const uint64_t bucket_bounds_usec[METRICS_BUCKETS - 1] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000};

void metrics_count_request(Metrics *m, MetricsRoute route, int status)
{
    size_t i = 0;
    while (i < METRICS_STATUSES - 1 && statuses[i] != status)
        i++;
    metrics_inc(&m->requests[route][i]);
}

/* Every member before worker_seen is a uint64_t, alone or in an array or a Histogram. */
_Static_assert(offsetof(Metrics, worker_seen) % sizeof(uint64_t) == 0, "counters first");
#define METRICS_COUNTERS (offsetof(Metrics, worker_seen) / sizeof(uint64_t))

void metrics_sum(Metrics *dst, const Metrics *src)
{
    uint64_t *d = (uint64_t *)dst;
    const uint64_t *s = (const uint64_t *)src;
    for (size_t i = 0; i < METRICS_COUNTERS; i++)
        d[i] += relaxed_load_u64(&s[i]);
    bool seen = relaxed_load_bool(&src->worker_seen);
    dst->worker_seen |= seen;
    if (seen)
        dst->worker_answering |= relaxed_load_bool(&src->worker_answering);
}

uint64_t metrics_status_events(const Metrics *m)
{
    return m->jobs_enqueued + m->jobs_failed + m->requests_rejected;
}

void metrics_observe(Histogram *h, uint64_t usec)
{
    size_t i = 0;
    while (i < METRICS_BUCKETS - 1 && usec > bucket_bounds_usec[i])
        i++;
    metrics_inc(&h->buckets[i]);
    metrics_inc(&h->count);
    relaxed_store_u64(&h->sum_usec, h->sum_usec + usec);
}

void metrics_count_protocol_error(Metrics *m, int status)
{
    if (status >= 400 && status < 400 + METRICS_PROTOCOL_STATUSES)
        metrics_inc(&m->protocol_errors[status - 400]);
}

static void put_histogram(Buffer *o, const char *name, const char *help, const Histogram *h)
{
    buffer_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cumulative = 0;
    for (size_t i = 0; i < METRICS_BUCKETS; i++) {
        cumulative += h->buckets[i];
        if (i < METRICS_BUCKETS - 1)
            buffer_printf(o, "%s_bucket{le=\"%g\"} %llu\n", name, bucket_bounds[i],
                          (unsigned long long)cumulative);
        else
            buffer_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)cumulative);
    }
    buffer_printf(o, "%s_sum %.6f\n%s_count %llu\n", name, (double)h->sum_usec / 1e6, name,
                  (unsigned long long)h->count);
}

/* Only the statuses seen, but always 400 (the malformed request), so that the series exists
 * from the start, as the 202 of argus_http_requests_total does. */
static void put_protocol_errors(Buffer *o, const Metrics *m)
{
    buffer_printf(
        o, "# HELP argus_http_protocol_errors_total Error answers that the HTTP layer made itself "
           "(malformed or oversized requests), by status.\n"
           "# TYPE argus_http_protocol_errors_total counter\n");
    for (int i = 0; i < METRICS_PROTOCOL_STATUSES; i++)
        if (m->protocol_errors[i] || i == 0)
            buffer_printf(o, "argus_http_protocol_errors_total{status=\"%d\"} %llu\n", 400 + i,
                          (unsigned long long)m->protocol_errors[i]);
}

/* argus_http_requests_total: the statuses seen, and always the 202 of POST /enqueue. */
static void put_requests(Buffer *o, const Metrics *m)
{
    buffer_printf(o,
                  "# HELP argus_http_requests_total HTTP requests answered, by route and status.\n"
                  "# TYPE argus_http_requests_total counter\n");
    for (size_t r = 0; r < _ROUTE_MAX; r++)
        for (size_t s = 0; s < METRICS_STATUSES; s++)
            if (m->requests[r][s] ||
                (r == ROUTE_ENQUEUE && s < METRICS_STATUSES - 1 && statuses[s] == 202)) {
                char status[8] = "other";
                if (s < METRICS_STATUSES - 1)
                    snprintf(status, sizeof(status), "%d", statuses[s]);
                buffer_printf(o, "argus_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n",
                              route_names[r], status, (unsigned long long)m->requests[r][s]);
            }
}

/* The attempts at the worker, retries and shared calls, the breaker, requests and connections. */
static void put_worker(Buffer *o, const Metrics *m, const MetricsGauges *g)
{
    buffer_printf(o, "# HELP argus_worker_attempts_total Attempts at the worker node, by outcome.\n"
                     "# TYPE argus_worker_attempts_total counter\n");
    for (size_t a = 0; a < _ATTEMPT_MAX; a++)
        buffer_printf(o, "argus_worker_attempts_total{outcome=\"%s\"} %llu\n", attempt_names[a],
                      (unsigned long long)m->attempts[a]);
    buffer_printf(
        o,
        "# HELP argus_worker_retries_total Attempts that were retries.\n"
        "# TYPE argus_worker_retries_total counter\n"
        "argus_worker_retries_total %llu\n"
        "# HELP argus_worker_shared_calls_total Requests that joined a call already in flight "
        "for the same job.\n"
        "# TYPE argus_worker_shared_calls_total counter\n"
        "argus_worker_shared_calls_total %llu\n"
        "# HELP argus_breaker_state Circuit breaker: 0 closed, 1 open, 2 half-open.\n"
        "# TYPE argus_breaker_state gauge\n"
        "argus_breaker_state %d\n"
        "# HELP argus_breaker_opened_total Times the circuit breaker opened.\n"
        "# TYPE argus_breaker_opened_total counter\n"
        "argus_breaker_opened_total %llu\n"
        "# HELP argus_requests_in_flight Requests waiting for the worker node.\n"
        "# TYPE argus_requests_in_flight gauge\n"
        "argus_requests_in_flight %llu\n"
        "# HELP argus_connections_open Open client connections.\n"
        "# TYPE argus_connections_open gauge\n"
        "argus_connections_open %llu\n"
        "# HELP argus_write_timeouts_total Client connections closed because their answer "
        "waited 10 s without a byte taken by the client.\n"
        "# TYPE argus_write_timeouts_total counter\n"
        "argus_write_timeouts_total %llu\n",
        (unsigned long long)m->retries, (unsigned long long)m->shared_calls, g->breaker_state,
        (unsigned long long)m->breaker_opened, (unsigned long long)g->in_flight,
        (unsigned long long)g->connections, (unsigned long long)m->write_timeouts);
}

/* The pending-job cap and the calls queued for a free connection. */
static void put_pending(Buffer *o, const Metrics *m, const MetricsGauges *g)
{
    buffer_printf(
        o,
        "# HELP argus_pending_jobs Jobs waiting for the worker node, those whose client went "
        "away included.\n"
        "# TYPE argus_pending_jobs gauge\n"
        "argus_pending_jobs %llu\n"
        "# HELP argus_pending_jobs_limit MAX_PENDING_JOBS.\n"
        "# TYPE argus_pending_jobs_limit gauge\n"
        "argus_pending_jobs_limit %llu\n"
        "# HELP argus_pending_jobs_rejected_total Jobs answered 503 because MAX_PENDING_JOBS "
        "were waiting.\n"
        "# TYPE argus_pending_jobs_rejected_total counter\n"
        "argus_pending_jobs_rejected_total %llu\n"
        "# HELP argus_requests_shed_total Jobs (or requests) answered 503 before anything was done "
        "with them, by reason: log_backlog, the log sink (journald, or a pipe on stderr) was "
        "behind; large_bodies, HTTP/1 requests whose body may pass MAX_BODY_BYTES while every "
        "place for one was taken; batch_budget, the jobs of batches refused while the waiting "
        "batches held their whole memory budget.\n"
        "# TYPE argus_requests_shed_total counter\n"
        "argus_requests_shed_total{reason=\"log_backlog\"} %llu\n"
        "argus_requests_shed_total{reason=\"large_bodies\"} %llu\n"
        "argus_requests_shed_total{reason=\"batch_budget\"} %llu\n"
        "# HELP argus_worker_calls_queued Worker calls waiting for a free connection.\n"
        "# TYPE argus_worker_calls_queued gauge\n"
        "argus_worker_calls_queued %llu\n",
        (unsigned long long)g->pending_jobs, (unsigned long long)g->pending_jobs_limit,
        (unsigned long long)m->pending_rejected, (unsigned long long)m->shed_log_backlog,
        (unsigned long long)m->shed_large_bodies, (unsigned long long)m->shed_batch_budget,
        (unsigned long long)g->calls_queued);
}

/* POST /enqueue/batch by outcome (its jobs are counted with the others'). */
static void put_batches(Buffer *o, const Metrics *m)
{
    buffer_printf(o, "# HELP argus_batches_total POST /enqueue/batch requests by outcome: "
                     "accepted (200), partial (207), rejected as a whole.\n"
                     "# TYPE argus_batches_total counter\n");
    for (size_t b = 0; b < _BATCH_MAX; b++)
        buffer_printf(o, "argus_batches_total{outcome=\"%s\"} %llu\n", batch_names[b],
                      (unsigned long long)m->batches[b]);
}

/* The spool's counters, always (0 without a spool); its gauges when there is one. */
static void put_spool(Buffer *o, const Metrics *m, const MetricsGauges *g)
{
    buffer_printf(o,
                  "# HELP argus_spool_jobs_total Jobs by what the spool did with them: answered "
                  "queued, delivered from it, made dead letters (refused for good, or expired "
                  "after SPOOL_MAX_AGE_SEC), or not spooled for an error.\n"
                  "# TYPE argus_spool_jobs_total counter\n"
                  "argus_spool_jobs_total{result=\"queued\"} %llu\n"
                  "argus_spool_jobs_total{result=\"delivered\"} %llu\n"
                  "argus_spool_jobs_total{result=\"dead\"} %llu\n"
                  "argus_spool_jobs_total{result=\"expired\"} %llu\n"
                  "argus_spool_jobs_total{result=\"error\"} %llu\n"
                  "# HELP argus_spool_delivery_attempts_total Delivery attempts from the spool, by "
                  "how they ended.\n"
                  "# TYPE argus_spool_delivery_attempts_total counter\n",
                  (unsigned long long)m->spool_queued, (unsigned long long)m->spool_delivered,
                  (unsigned long long)m->spool_dead, (unsigned long long)m->spool_expired,
                  (unsigned long long)m->spool_errors);
    for (size_t a = 0; a < _SPOOL_ATTEMPT_MAX; a++)
        buffer_printf(o, "argus_spool_delivery_attempts_total{outcome=\"%s\"} %llu\n",
                      spool_attempt_names[a], (unsigned long long)m->spool_attempts[a]);
    if (!g->spool)
        return;
    buffer_printf(o,
                  "# HELP argus_spool_up Whether the spool takes jobs.\n"
                  "# TYPE argus_spool_up gauge\n"
                  "argus_spool_up %d\n"
                  "# HELP argus_spool_jobs Jobs in the spool waiting for delivery, held ones not "
                  "counted.\n"
                  "# TYPE argus_spool_jobs gauge\n"
                  "argus_spool_jobs %llu\n"
                  "# HELP argus_spool_held_jobs Jobs in the spool held by an operator.\n"
                  "# TYPE argus_spool_held_jobs gauge\n"
                  "argus_spool_held_jobs %llu\n"
                  "# HELP argus_spool_oldest_job_age_seconds Age of the oldest job waiting in the "
                  "spool (held ones not counted), 0 when none.\n"
                  "# TYPE argus_spool_oldest_job_age_seconds gauge\n"
                  "argus_spool_oldest_job_age_seconds %.3f\n"
                  "# HELP argus_spool_dead_letters Jobs the worker refused for good, or that "
                  "expired, kept in the spool.\n"
                  "# TYPE argus_spool_dead_letters gauge\n"
                  "argus_spool_dead_letters %llu\n",
                  g->spool_up ? 1 : 0, (unsigned long long)g->spool_jobs,
                  (unsigned long long)g->spool_held, g->spool_oldest_age,
                  (unsigned long long)g->spool_dead);
    buffer_printf(o,
                  "# HELP argus_spool_deliveries_in_flight Deliveries from the spool under way.\n"
                  "# TYPE argus_spool_deliveries_in_flight gauge\n"
                  "argus_spool_deliveries_in_flight %llu\n"
                  "# HELP argus_spool_delivery_window Deliveries from the spool that may be under "
                  "way at once: the pace the worker sets.\n"
                  "# TYPE argus_spool_delivery_window gauge\n"
                  "argus_spool_delivery_window %llu\n"
                  "# HELP argus_spool_delivery_paused 1 while delivery pauses because the worker "
                  "fails every job (probed now and then).\n"
                  "# TYPE argus_spool_delivery_paused gauge\n"
                  "argus_spool_delivery_paused %llu\n",
                  (unsigned long long)m->spool_in_flight, (unsigned long long)m->spool_window,
                  (unsigned long long)m->spool_paused);
}

/* The standard process_* metrics, the start time and the build. */
static void put_process(Buffer *o, const MetricsGauges *g, const char *version)
{
    char process[PROCESS_METRICS_MAX];
    buffer_printf(o, "%s", process_metrics_text(process, sizeof(process)));
    buffer_printf(o,
                  "# HELP process_start_time_seconds Start time of the process since unix epoch in "
                  "seconds.\n"
                  "# TYPE process_start_time_seconds gauge\n"
                  "process_start_time_seconds %.3f\n"
                  "# HELP argus_build_info The running version.\n"
                  "# TYPE argus_build_info gauge\n"
                  "argus_build_info{version=\"%s\"} 1\n",
                  g->start_time, version);
}

char *metrics_render(const Metrics *m, const MetricsGauges *g, const char *version, size_t *ret_len)
{
    Buffer o = {0};
    if (!buffer_reserve(&o, 8192 - 1)) {
        buffer_free(&o);
        return NULL;
    }
    put_requests(&o, m);
    put_protocol_errors(&o, m);
    put_worker(&o, m, g);
    put_pending(&o, m, g);
    put_batches(&o, m);
    buffer_printf(&o, "# HELP argus_loop_connections_total Client connections accepted, by event "
                      "loop (THREADS).\n"
                      "# TYPE argus_loop_connections_total counter\n");
    for (size_t i = 0; i < g->n_loops; i++)
        buffer_printf(&o, "argus_loop_connections_total{loop=\"%zu\"} %llu\n", i,
                      (unsigned long long)g->loop_connections[i]);
    put_spool(&o, m, g);
    put_histogram(&o, "argus_worker_latency_seconds", "Duration of one attempt at the worker node.",
                  &m->worker_latency);
    put_histogram(&o, "argus_request_duration_seconds",
                  "Duration of POST /enqueue from arrival to answer.", &m->request_latency);
    buffer_printf(&o,
                  "# HELP argus_log_entries_dropped_total Log entries dropped because the sink "
                  "(journald, or a pipe on stderr) did not take them while the queue was full.\n"
                  "# TYPE argus_log_entries_dropped_total counter\n"
                  "argus_log_entries_dropped_total{sink=\"journal\"} %llu\n"
                  "argus_log_entries_dropped_total{sink=\"stderr\"} %llu\n",
                  (unsigned long long)g->log_dropped_journal,
                  (unsigned long long)g->log_dropped_stderr);
    put_process(&o, g, version);
    return buffer_take(&o, ret_len);
}
