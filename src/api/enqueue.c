/* SPDX-License-Identifier: MIT */
#include "enqueue.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-answer.h"
#include "clock.h"
#include "http-util.h"
#include "job.h"
#include "log.h"
#include "pending-enqueue.h"
#include "request-trace.h"
#include "response.h"
#include "spool.h"
#include "timefmt.h"
#include "trace.h"

/* The job's trace in its log entries (LogFields), beside its request id. */
#define TRACE_FIELDS(pe) .trace_id = (pe)->trace.trace_id, .span_id = (pe)->trace.span_id

/* Counts and logs a finished POST /enqueue, whether or not its client is still there. */
static void enqueue_record(ApiHandler *h, const PendingEnqueue *pe, const WorkerResult *r,
                           int status, int64_t duration)
{
    bool ok = r->outcome == WORKER_OK;
    if (ok)
        metrics_inc(&h->s.metrics->jobs_enqueued);
    else
        metrics_inc(&h->s.metrics->jobs_failed);
    const LogFields fields = {
        .place_id = pe->place_id,
        .job_id = pe->job_id,
        .request_id = pe->request_id,
        TRACE_FIELDS(pe),
        .http_status = status,
        .worker_status = (int)r->http_status,
        .attempt = (int)r->attempts,
        .worker_url = h->s.config->worker_enqueue,
        .duration_usec = duration,
        .has_duration = true,
        .error = ok ? NULL : r->reason,
    };
    if (ok)
        log_info(MSGID_ENQUEUED, &fields, "job enqueued successfully");
    else
        log_error(MSGID_ENQUEUE_FAILED, &fields, "enqueue failed: %s", r->reason);
}

/* Answers the client of a finished POST /enqueue: 202, or the worker's failure with a
 * Retry-After (the worker's own, or the breaker's cool-down for a 503). */
static void enqueue_answer(ApiHandler *h, h2o_req_t *req, const PendingEnqueue *pe,
                           const WorkerResult *r, int status, int64_t duration)
{
    const char *ts = rfc3339_now();
    size_t len = 0;
    char *body;
    if (r->outcome == WORKER_OK)
        body = response_enqueued(pe->place_id, pe->job_id, ts, &len);
    else {
        if (r->retry_after_sec)
            api_add_retry_after(req, r->retry_after_sec * 1000000ULL);
        else if (status == 503)
            api_add_retry_after(req, h->s.config->breaker_cooldown_sec * 1000000ULL);
        body = response_worker_error(r->reason, pe->place_id, pe->job_id, ts, &len);
    }
    api_send_json(h, req, ROUTE_ENQUEUE, status, body, len);
    metrics_observe(&h->s.metrics->request_latency, (uint64_t)duration);
}

/* The breaker is open: 503 at once, with the time left of its cool-down; pe->result.reason
 * says why it opened. */
static void fail_fast(ApiHandler *h, h2o_req_t *req, const PendingEnqueue *pe,
                      uint64_t retry_after_usec)
{
    metrics_inc(&h->s.metrics->jobs_failed);
    log_warn(MSGID_ENQUEUE_FAILED,
             LOG_FIELDS(.place_id = pe->place_id, .job_id = pe->job_id,
                        .request_id = pe->request_id, TRACE_FIELDS(pe), .http_status = 503,
                        .worker_url = h->s.config->worker_enqueue, .error = "circuit breaker open"),
             "enqueue failed fast: %s", pe->result.reason);
    if (!req)
        return;
    const char *ts = rfc3339_now();
    size_t len = 0;
    api_add_retry_after(req, retry_after_usec);
    char *body = response_worker_error("circuit breaker open", pe->place_id, pe->job_id, ts, &len);
    api_send_json(h, req, ROUTE_ENQUEUE, 503, body, len);
    metrics_observe(&h->s.metrics->request_latency, clock_usec(CLOCK_MONOTONIC) - pe->started_usec);
}

/* MAX_PENDING_JOBS wait already: 503 at once. */
static void refuse_full(ApiHandler *h, h2o_req_t *req, const PendingEnqueue *pe,
                        uint64_t retry_after_usec)
{
    metrics_inc(&h->s.metrics->pending_rejected);
    if (!req) {
        metrics_inc(&h->s.metrics->requests_rejected);
        return;
    }
    api_add_retry_after(req, retry_after_usec);
    api_reject(h, req, ROUTE_ENQUEUE, 503, "too many pending jobs", pe->request_id);
}

/* The log sink is behind (log.h, README "Logs"): the job is shed, 503 with Retry-After: 1,
 * rather than admitted and its entry dropped. Counted, not logged: an entry each would add to
 * the backlog. */
static bool shed_for_log(ApiHandler *h, h2o_req_t *req)
{
    if (log_pressure() != LOG_PRESSURE_SHED)
        return false;
    metrics_inc(&h->s.metrics->shed_log_backlog);
    api_add_retry_after(req, 1000000ULL);
    api_send_error(h, req, ROUTE_ENQUEUE, 503, log_pressure_reason());
    return true;
}

/* A POST /enqueue that was held (for the worker or the spool) is done. */
static void enqueue_end(ApiHandler *h, PendingEnqueue *pe)
{
    pending_enqueue_free(pe);
    relaxed_store_uint(&h->pending, h->pending - 1);
    h->s.on_pending_end(h->s.userdata);
}

static void client_gone(const PendingEnqueue *pe)
{
    log_info(MSGID_REQUEST,
             LOG_FIELDS(.place_id = pe->place_id, .request_id = pe->request_id, TRACE_FIELDS(pe)),
             "client went away before the worker answered");
}

/* The spool refused the job (full, disk full, I/O error, unavailable): the client is answered
 * as without a spool. */
static void spool_refused(ApiHandler *h, PendingEnqueue *pe, const char *error)
{
    metrics_inc(&h->s.metrics->spool_errors);
    h2o_req_t *req = pending_enqueue_untie(pe);
    int64_t duration = (int64_t)(clock_usec(CLOCK_MONOTONIC) - pe->started_usec);
    switch (pe->fallback) {
    case FALLBACK_WORKER: {
        char *reason = pe->result.reason;
        size_t len = strlen(reason);
        snprintf(reason + len, sizeof(pe->result.reason) - len, "; not spooled: %s",
                 error ? error : "spool unavailable");
        /* The client is told when to try again, whatever the status (a 502 or 504 too). */
        if (!pe->result.retry_after_sec)
            pe->result.retry_after_sec = h->s.config->breaker_cooldown_sec;
        enqueue_record(h, pe, &pe->result, pe->fallback_status, duration);
        if (req)
            enqueue_answer(h, req, pe, &pe->result, pe->fallback_status, duration);
        break;
    }
    case FALLBACK_FULL:
        log_warn(MSGID_ENQUEUE_FAILED,
                 LOG_FIELDS(.place_id = pe->place_id, .job_id = pe->job_id,
                            .request_id = pe->request_id, TRACE_FIELDS(pe), .http_status = 503,
                            .error = error),
                 "too many pending jobs, and not spooled: %s", error ? error : "unavailable");
        refuse_full(h, req, pe, pe->retry_after_usec);
        break;
    case FALLBACK_BREAKER: {
        char *reason = pe->result.reason; /* fail_fast logs it: say why it was not spooled */
        size_t len = strlen(reason);
        snprintf(reason + len, sizeof(pe->result.reason) - len, "; not spooled: %s",
                 error ? error : "spool unavailable");
        fail_fast(h, req, pe, pe->retry_after_usec);
        break;
    }
    }
    if (!req)
        client_gone(pe);
}

static void on_spooled(SpoolAddStatus status, const char *error, void *userdata)
{
    PendingEnqueue *pe = userdata;
    ApiHandler *h = pe->owner;
    uv_update_time(h->s.loop); /* from sd-event: uv-event.h */
    if (status != SPOOL_ADDED && status != SPOOL_ALREADY) {
        spool_refused(h, pe, error);
        enqueue_end(h, pe);
        return;
    }

    int64_t duration = (int64_t)(clock_usec(CLOCK_MONOTONIC) - pe->started_usec);
    metrics_inc(&h->s.metrics->spool_queued);
    log_info(MSGID_SPOOL_QUEUED,
             LOG_FIELDS(.place_id = pe->place_id, .job_id = pe->job_id,
                        .request_id = pe->request_id, TRACE_FIELDS(pe), .http_status = 202,
                        .worker_status = (int)pe->result.http_status,
                        .worker_url = h->s.config->worker_enqueue, .duration_usec = duration,
                        .has_duration = true, .error = pe->result.reason),
             "job spooled%s, answered queued: %s",
             status == SPOOL_ALREADY ? " (already waiting there)" : "", pe->result.reason);
    h2o_req_t *req = pending_enqueue_untie(pe);
    if (req) {
        size_t len = 0;
        char *body = response_queued(pe->place_id, pe->job_id, rfc3339_now(), &len);
        api_send_json(h, req, ROUTE_ENQUEUE, 202, body, len);
        metrics_observe(&h->s.metrics->request_latency, (uint64_t)duration);
    } else
        client_gone(pe);
    enqueue_end(h, pe);
}

/* Hands the job to the spool; false when it could not even be asked (then nothing is held). */
static bool enqueue_spool(ApiHandler *h, PendingEnqueue *pe, EnqueueFallback fallback)
{
    pe->fallback = fallback;
    const JobRef job = pending_enqueue_job(pe);
    return spool_add(h->s.spool_port, &job, pe->result.reason, on_spooled, pe) >= 0;
}

static void on_worker_done(const WorkerResult *r, void *userdata)
{
    PendingEnqueue *pe = userdata;
    ApiHandler *h = pe->owner;
    int status = r->outcome == WORKER_OK ? 202 : worker_outcome_http_status(r->outcome);
    int64_t duration = (int64_t)(clock_usec(CLOCK_MONOTONIC) - pe->started_usec);

    metrics_set(&h->s.metrics->worker_seen, true);
    metrics_set(&h->s.metrics->worker_answering,
                r->outcome == WORKER_OK || r->outcome == WORKER_HTTP_ERROR);
    if (r->retryable && h->s.spool) {
        pe->result = *r;
        pe->fallback_status = status;
        if (enqueue_spool(h, pe, FALLBACK_WORKER))
            return; /* still held, still pending: answered once on disk (on_spooled) */
    }
    if (r->outcome == WORKER_OK && h->s.spool) {
        /* The same job may wait in the spool (a client sent it again): it need not go twice. */
        SpoolState st;
        spool_state(h->s.spool, &st);
        if (st.stats.jobs > 0)
            (void)spool_forget(h->s.spool, pe->job_id);
    }

    enqueue_record(h, pe, r, status, duration);
    h2o_req_t *req = pending_enqueue_untie(pe);
    if (req) {
        uv_update_time(h->s.loop); /* from sd-event: uv-event.h */
        enqueue_answer(h, req, pe, r, status, duration);
    } else
        client_gone(pe);
    enqueue_end(h, pe);
}

/* An operator holds the job (`spool hold`), as far as the daemon knows: no attempt. Answered
 * queued once the spool's thread has seen its record wait (SPOOL_ALREADY: no second record, it
 * stays held), or written it again: the ids known here may be stale (the job deleted or
 * delivered a moment ago), and a 202 means on disk. Refused by the spool: 503, as without one. */
static bool enqueue_held(ApiHandler *h, PendingEnqueue *pe)
{
    pe->result.outcome = WORKER_UNREACHABLE;
    pe->result.retryable = true;
    snprintf(pe->result.reason, sizeof(pe->result.reason), "held in the spool by an operator");
    pe->fallback_status = 503;
    return enqueue_spool(h, pe, FALLBACK_WORKER);
}

/* With a spool that takes jobs, the client waits for one attempt (the spool retries); else for
 * WORKER_RETRIES more. */
static unsigned inline_retries(ApiHandler *h)
{
    if (h->s.spool) {
        SpoolState st;
        spool_state(h->s.spool, &st);
        if (st.up)
            return 0;
    }
    return h->s.config->worker_retries;
}

/* A PendingEnqueue for a valid job, its trace read; NULL when out of memory. */
static PendingEnqueue *enqueue_new(ApiHandler *h, h2o_req_t *req, const char *place_id,
                                   const char *request_id)
{
    PendingEnqueue *pe = pending_enqueue_new(req, h);
    if (!pe)
        return NULL;
    pe->started_usec = clock_usec(CLOCK_MONOTONIC);
    strcpy(pe->place_id, place_id);
    job_id_format(place_id, pe->job_id);
    snprintf(pe->request_id, sizeof(pe->request_id), "%s", request_id);
    request_trace(h, req, &pe->trace);
    return pe;
}

/* The job goes to the worker, or (refused: the cap, the breaker) to the spool, or is answered
 * 503 at once. Held (pending) unless answered. */
static void enqueue_admit(ApiHandler *h, h2o_req_t *req, PendingEnqueue *pe)
{
    const JobRef job = pending_enqueue_job(pe);
    WorkerEnqueueResult res =
        worker_enqueue(h->s.worker, &job, inline_retries(h), on_worker_done, pe);
    switch (res.admission) {
    case WORKER_ADMITTED:
        break;
    case WORKER_REFUSED_FULL:
        pe->retry_after_usec = res.retry_after_usec;
        snprintf(pe->result.reason, sizeof(pe->result.reason), "too many pending jobs");
        if (h->s.spool && enqueue_spool(h, pe, FALLBACK_FULL))
            break;
        refuse_full(h, req, pe, res.retry_after_usec);
        pending_enqueue_free(pe);
        return;
    case WORKER_REFUSED_BREAKER_OPEN:
        pe->retry_after_usec = res.retry_after_usec;
        snprintf(pe->result.reason, sizeof(pe->result.reason), "circuit breaker open (%s)",
                 res.reason && res.reason[0] ? res.reason : "worker failing");
        pe->result.outcome = WORKER_UNREACHABLE;
        if (h->s.spool && enqueue_spool(h, pe, FALLBACK_BREAKER))
            break;
        fail_fast(h, req, pe, res.retry_after_usec);
        pending_enqueue_free(pe);
        return;
    case WORKER_REFUSED_ERROR:
        pending_enqueue_free(pe);
        api_send_error(h, req, ROUTE_ENQUEUE, 503, "out of memory");
        return;
    }
    pending_enqueue_hold(pe);
    relaxed_store_uint(&h->pending, h->pending + 1);
}

int enqueue_handle(ApiHandler *h, h2o_req_t *req, const char *request_id)
{
    ssize_t ct = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (ct >= 0 && !content_type_is_json(req->headers.entries[ct].value.base,
                                         req->headers.entries[ct].value.len)) {
        api_reject(h, req, ROUTE_ENQUEUE, 415, "Content-Type must be application/json", request_id);
        return 0;
    }
    if (req->entity.len > h->s.config->max_body_bytes) {
        api_reject(h, req, ROUTE_ENQUEUE, 413, "request body too large", request_id);
        return 0;
    }

    char place_id[PLACE_ID_MAX + 1];
    JobError e =
        job_parse_request(req->entity.base ? req->entity.base : "", req->entity.len, place_id);
    if (e != JOB_OK) {
        api_reject(h, req, ROUTE_ENQUEUE, 400, job_error_message(e), request_id);
        return 0;
    }
    if (shed_for_log(h, req))
        return 0;

    PendingEnqueue *pe = enqueue_new(h, req, place_id, request_id);
    if (!pe) {
        api_send_error(h, req, ROUTE_ENQUEUE, 503, "out of memory");
        return 0;
    }
    if (h->s.spool && spool_job_held(h->s.spool, pe->job_id)) {
        if (enqueue_held(h, pe)) {
            pending_enqueue_hold(pe);
            relaxed_store_uint(&h->pending, h->pending + 1);
            return 0;
        }
        pending_enqueue_free(pe);
        api_send_error(h, req, ROUTE_ENQUEUE, 503, "out of memory");
        return 0;
    }
    enqueue_admit(h, req, pe);
    return 0;
}
