/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "hash.h"
#include "log.h"
#include "macro.h"
#include "worker-internal.h"

/* stpcpy() for the call's buffers, whose sizes the lengths were checked against. */
static char *put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}
#define PUT_LITERAL(o, lit) put(o, lit, sizeof(lit) - 1)

/* Zeroes the call's fixed part and empties its error buffer; the other buffers (ids, headers,
 * body) are left for worker_enqueue to write whole. */
static void call_clear(WorkerCall *c)
{
    memset(c, 0, offsetof(WorkerCall, errbuf));
    c->errbuf[0] = '\0';
}

static WorkerEnqueueResult refused_error(int error)
{
    return (WorkerEnqueueResult){.admission = WORKER_REFUSED_ERROR, .error = error};
}

/* A request for a job whose call is in flight (other, found under sh's lock, which this
 * releases) joins it: as another waiter of a call of this loop, or through a RemoteResult that
 * the other loop posts back to this one's inbox. */
static WorkerEnqueueResult call_join(Worker *w, WorkerShard *sh, WorkerCall *other,
                                     worker_done_fn done, void *userdata)
{
    int r = 0;
    if (other->worker == w)
        r = worker_call_add_waiter(other, done, userdata);
    else {
        RemoteResult *x = calloc(1, sizeof(*x));
        if (!x)
            r = -ENOMEM;
        else {
            *x = (RemoteResult){
                .next = other->remote, .worker = w, .done = done, .userdata = userdata};
            other->remote = x;
            w->n_remote++;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    if (r < 0) {
        worker_shared_unreserve(w);
        return refused_error(r);
    }
    metrics_inc(&w->metrics->shared_calls);
    w->n_waiters++;
    return (WorkerEnqueueResult){.admission = WORKER_ADMITTED};
}

/* The job's trace headers, and its ids for the logs (a traceparent made by trace.h: "00-" trace-id
 * "-" span-id "-" flags). */
static void call_write_trace(WorkerCall *c, const JobRef *job)
{
    c->traceparent_header[0] = c->tracestate_header[0] = '\0';
    c->trace_id[0] = c->span_id[0] = '\0';
    if (!job->traceparent || strlen(job->traceparent) != TRACEPARENT_LEN)
        return;
    *put(PUT_LITERAL(c->traceparent_header, "traceparent: "), job->traceparent, TRACEPARENT_LEN) =
        '\0';
    *put(c->trace_id, job->traceparent + 3, TRACE_ID_LEN) = '\0';
    *put(c->span_id, job->traceparent + 4 + TRACE_ID_LEN, SPAN_ID_LEN) = '\0';
    size_t ts_len = job->tracestate ? strlen(job->tracestate) : 0;
    if (ts_len > 0)
        *put(PUT_LITERAL(c->tracestate_header, "tracestate: "), job->tracestate, ts_len) = '\0';
}

/* The call's request: its headers' values and the JSON body, into its own buffers (the lengths
 * were checked against them). */
static void call_write_request(WorkerCall *c, const JobRef *job, size_t rid_len)
{
    const char *request_id = job->request_id;
    size_t place_len = strlen(c->place_id), job_len = strlen(c->job_id);
    *put(c->request_id, request_id ? request_id : "", rid_len) = '\0';
    *put(PUT_LITERAL(c->idempotency_header, "Idempotency-Key: "), c->job_id, job_len) = '\0';
    *put(PUT_LITERAL(c->request_id_header, "X-Request-Id: "), c->request_id, rid_len) = '\0';
    /* place ids and job ids are [A-Za-z0-9_:-]: nothing to escape. */
    char *o = PUT_LITERAL(c->body, "{\"placeId\":\"");
    o = PUT_LITERAL(put(o, c->place_id, place_len), "\",\"jobId\":\"");
    o = PUT_LITERAL(put(o, c->job_id, job_len), "\"}");
    *o = '\0';
    c->body_len = (size_t)(o - c->body);
    call_write_trace(c, job);
}

/* worker_enqueue and worker_deliver. */
static WorkerEnqueueResult worker_start(Worker *w, const JobRef *job, unsigned retries,
                                        bool delivery, bool failed_before, worker_done_fn done,
                                        void *userdata)
{
    const char *place_id = job->place_id, *job_id = job->job_id, *request_id = job->request_id;
    size_t place_len = strlen(place_id), job_len = strlen(job_id),
           rid_len = request_id ? strlen(request_id) : 0;
    if (place_len > PLACE_ID_MAX || job_len > JOB_ID_MAX || rid_len > REQUEST_ID_MAX ||
        (job->tracestate && strlen(job->tracestate) > TRACESTATE_MAX))
        return refused_error(-EINVAL);

    if (!worker_shared_reserve(w))
        return (WorkerEnqueueResult){.admission = WORKER_REFUSED_FULL, .retry_after_usec = 1000000};

    /* Made before the lookup, so that a new call is in the table in the same critical section
     * that found none (two loops must not both start one); freed again when joining. */
    WorkerCall *c = malloc(sizeof(*c));
    if (!c) {
        worker_shared_unreserve(w);
        return refused_error(-ENOMEM);
    }
    call_clear(c);
    c->worker = w;
    c->retries = retries;
    c->delivery = delivery;
    c->delivery_again = delivery && failed_before;
    c->first = (Waiter){done, userdata};
    *put(c->place_id, place_id, place_len) = '\0';
    *put(c->job_id, job_id, job_len) = '\0';
    c->entry.key = c->job_id;

    WorkerShard *sh = worker_shard_of(w, c->job_id);
    pthread_mutex_lock(&sh->lock);
    InflightEntry *joined = inflight_find(&sh->calls, job_id);
    if (joined) {
        free(c); /* not needed: the joined call's memory is */
        return call_join(w, sh, container_of(joined, WorkerCall, entry), done, userdata);
    }
    bool probe;
    if (!worker_shared_allow(w, &probe)) {
        pthread_mutex_unlock(&sh->lock);
        free(c);
        worker_shared_unreserve(w);
        WorkerEnqueueResult res = {.admission = WORKER_REFUSED_BREAKER_OPEN};
        (void)worker_ready(w, &res.retry_after_usec, &res.reason);
        return res;
    }
    c->probe = probe;
    int r = inflight_add(&sh->calls, &c->entry);
    pthread_mutex_unlock(&sh->lock);
    if (r < 0) {
        c->entry.key = NULL;
        if (probe)
            (void)worker_shared_record(w, false, true);
        free(c);
        worker_shared_unreserve(w);
        return refused_error(r);
    }

    call_write_request(c, job, rid_len);
    LIST_PREPEND(calls, w->calls, w->calls_tail, c);
    relaxed_store_uint(&w->n_calls, w->n_calls + 1);
    w->n_waiters++;
    if (worker_call_dispatch(c) < 0) {
        worker_call_free(c); /* a probe reports its failure there */
        return refused_error(-ENOMEM);
    }
    return (WorkerEnqueueResult){.admission = WORKER_ADMITTED};
}

WorkerEnqueueResult worker_enqueue(Worker *w, const JobRef *job, unsigned retries,
                                   worker_done_fn done, void *userdata)
{
    return worker_start(w, job, retries, false, false, done, userdata);
}

WorkerEnqueueResult worker_deliver(Worker *w, const JobRef *job, bool failed_before,
                                   worker_done_fn done, void *userdata)
{
    return worker_start(w, job, 0, true, failed_before, done, userdata);
}
