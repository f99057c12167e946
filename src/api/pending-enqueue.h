/* SPDX-License-Identifier: MIT */
#pragma once

#include <h2o.h>
#include <stdint.h>

#include "conn.h"
#include "job.h"
#include "trace.h"
#include "worker.h"

typedef struct ApiHandler ApiHandler; /* api.h */
typedef struct RequestGuard RequestGuard;

/* Why a job went to the spool, which says how its client is answered should the spool refuse
 * it: as without a spool. */
typedef enum EnqueueFallback {
    FALLBACK_WORKER,  /* the worker's failure (.result) */
    FALLBACK_FULL,    /* MAX_PENDING_JOBS: 503 "too many pending jobs" */
    FALLBACK_BREAKER, /* the breaker was open: 503, its reason in .result */
} EnqueueFallback;

/* A POST /enqueue waiting for the worker. It outlives its request if the client goes away, so
 * that the job is still forwarded and the drain still waits for it: a guard in the request's
 * pool clears .req (and lets the connection go) when the request dies first. */
typedef struct PendingEnqueue {
    ApiHandler *owner;
    h2o_req_t *req; /* NULL once the request is gone */
    RequestGuard *guard;
    Conn *conn; /* held open during a drain until the answer */
    uint64_t started_usec;
    char request_id[REQUEST_ID_MAX + 1];
    char job_id[JOB_ID_MAX + 1];
    char place_id[PLACE_ID_MAX + 1];
    Trace trace; /* the client's traceparent continued, or a new trace */
    /* while spooled */
    EnqueueFallback fallback;
    int fallback_status;       /* FALLBACK_WORKER: 502, 503 or 504 */
    uint64_t retry_after_usec; /* FULL, BREAKER */
    WorkerResult result;
} PendingEnqueue;

/* Tied to req; NULL when out of memory. */
PendingEnqueue *pending_enqueue_new(h2o_req_t *req, ApiHandler *owner);

/* The worker took it: the connection stays open for the answer, even through a drain. */
void pending_enqueue_hold(PendingEnqueue *pe);

/* The worker's outcome is in: returns the request to answer, or NULL when its client went away;
 * either way pe is no longer tied to it (pending_enqueue_free next). */
h2o_req_t *pending_enqueue_untie(PendingEnqueue *pe);

/* Unties (when still tied) and frees; takes NULL. */
void pending_enqueue_free(PendingEnqueue *pe);

/* The job pe waits on, as the worker client and the spool take it (borrowing pe's strings). */
static inline JobRef pending_enqueue_job(const PendingEnqueue *pe)
{
    return (JobRef){.place_id = pe->place_id,
                    .job_id = pe->job_id,
                    .request_id = pe->request_id,
                    .traceparent = pe->trace.traceparent,
                    .tracestate = pe->trace.tracestate};
}
