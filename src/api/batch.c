/* SPDX-License-Identifier: MIT */
#include "batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api-answer.h"
#include "budget.h"
#include "clock.h"
#include "http-util.h"
#include "job-batch.h"
#include "json-writer.h"
#include "log.h"
#include "macro.h"
#include "pending-enqueue.h"
#include "request-trace.h"
#include "spool.h"
#include "timefmt.h"

typedef enum ItemKind {
    ITEM_WAITING, /* sent to the worker, or to the spool: no result yet */
    ITEM_ENQUEUED,
    ITEM_QUEUED,
    ITEM_ERROR,
} ItemKind;

/* One item's result; a duplicate reads its first's. */
typedef struct ItemResult {
    ItemKind kind;
    int status;        /* its HTTP status, as POST /enqueue would have answered it */
    char *error;       /* ITEM_ERROR: the message (malloc'd) */
    uint64_t *counter; /* the metric that counted it: a duplicate counts there too */
} ItemResult;

typedef struct PendingBatch PendingBatch;

/* What the worker client calls back with: the batch and the item. */
typedef struct BatchCall {
    PendingBatch *b;
    size_t item;
} BatchCall;

/* A POST /enqueue/batch waiting for the worker or the spool. Its tie (a PendingEnqueue, whose
 * request guard and connection hold it shares) outlives the request if the client goes away,
 * so that its jobs are still forwarded and the drain still waits for them. */
struct PendingBatch {
    ApiHandler *h;
    PendingEnqueue *tie; /* its request_id is the batch's */
    JobBatch batch;
    ItemResult *results; /* one an item */
    BatchCall *calls;    /* one an item */
    size_t *spooled;     /* the items handed to the spool, in its order */
    size_t waiting;      /* items still waiting for a result */
    uint64_t started_usec;
    size_t charged; /* its bytes under BATCH_BUDGET_BYTES (batch.h), 0 until taken */
};

static void batch_free(PendingBatch *b)
{
    if (!b)
        return;
    if (b->charged)
        budget_give(b->h->s.batch_bytes, b->charged);
    for (size_t i = 0; i < b->batch.n && b->results; i++)
        free(b->results[i].error);
    free(b->results);
    free(b->calls);
    free(b->spooled);
    job_batch_done(&b->batch);
    pending_enqueue_free(b->tie);
    free(b);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(PendingBatch *, batch_free);

/* Item i's job as the worker client and the spool take it: the one place where what a batch
 * item carries is set (its job id into job_id, JOB_ID_MAX + 1 bytes). */
static JobRef batch_item_job(const PendingBatch *b, size_t i, char *job_id)
{
    const char *place_id = b->batch.items[i].place_id;
    job_id_format(place_id, job_id);
    return (JobRef){.place_id = place_id,
                    .job_id = job_id,
                    .request_id = b->tie->request_id,
                    .traceparent = b->tie->trace.traceparent,
                    .tracestate = b->tie->trace.tracestate};
}

/* Item r's result, counted in *counter (NULL: in none). */
static void item_set(ItemResult *r, ItemKind kind, int status, const char *error, uint64_t *counter)
{
    if (counter)
        metrics_inc(counter);
    r->counter = counter;
    r->kind = kind;
    r->status = status;
    free(r->error);
    r->error = error ? strdup(error) : NULL; /* NULL: answered "out of memory" */
}

/* A job's entry in the journal, as POST /enqueue's (with the same request id for every job of
 * the batch): at info when it was taken, else at warn (refused before a call, or not spooled)
 * or error (the worker failed it: w, its call's outcome, or NULL). */
static void item_log(PendingBatch *b, size_t i, const ItemResult *r, LogLevel level,
                     const char *msgid, const char *message, const WorkerResult *w)
{
    char job_id[JOB_ID_MAX + 1];
    JobRef job = batch_item_job(b, i, job_id);
    int64_t duration = (int64_t)(clock_usec(CLOCK_MONOTONIC) - b->started_usec);
    const LogFields f = {.place_id = job.place_id,
                         .job_id = job.job_id,
                         .request_id = job.request_id,
                         .trace_id = b->tie->trace.trace_id,
                         .span_id = b->tie->trace.span_id,
                         .http_status = r->status,
                         .worker_status = w ? (int)w->http_status : 0,
                         .attempt = w ? (int)w->attempts : 0,
                         .worker_url = b->h->s.config->worker_enqueue,
                         .duration_usec = duration,
                         .has_duration = true,
                         .error = r->kind != ITEM_ERROR ? NULL
                                  : w                   ? w->reason
                                                        : r->error};
    log_event(level, msgid, &f, "%s%s%s", message, f.error ? ": " : "", f.error ? f.error : "");
}

/* One member of the answer's "results": the item shaped like POST /enqueue's answer for it,
 * with its status. */
static void put_item(JsonWriter *w, const PendingBatch *b, size_t i, const char *ts)
{
    const JobBatchItem *it = &b->batch.items[i];
    const ItemResult *r = &b->results[it->error == JOB_OK ? it->first : i];
    static const char *const words[] = {"error", "enqueued", "queued", "error"};
    json_writer_begin(w);
    json_writer_string(w, "status", words[r->kind]);
    if (r->kind == ITEM_ERROR || r->kind == ITEM_WAITING)
        json_writer_string(w, "error", r->error ? r->error : "out of memory");
    if (it->error == JOB_OK) {
        char job_id[JOB_ID_MAX + 1];
        job_id_format(it->place_id, job_id);
        json_writer_string(w, "placeId", it->place_id);
        json_writer_string(w, "jobId", job_id);
    }
    json_writer_string(w, "timestamp", ts);
    json_writer_int(w, "httpStatus", r->status ? r->status : 503);
    json_writer_end(w);
}

/* 200 when every item was accepted (202), else 207; counted by outcome. */
static void batch_answer(PendingBatch *b, h2o_req_t *req)
{
    const char *ts = rfc3339_now();
    size_t accepted = 0, n = b->batch.n;
    for (size_t i = 0; i < n; i++) {
        const JobBatchItem *it = &b->batch.items[i];
        accepted += b->results[it->error == JOB_OK ? it->first : i].status == 202;
    }
    int status = accepted == n ? 200 : 207;
    JsonWriter w = {0};
    json_writer_begin(&w);
    json_writer_string(&w, "status", accepted == n ? "accepted" : "partial");
    json_writer_int(&w, "accepted", (long long)accepted);
    json_writer_int(&w, "failed", (long long)(n - accepted));
    json_writer_raw(&w, ",\"results\":[", 12);
    for (size_t i = 0; i < n; i++) {
        if (i > 0)
            json_writer_raw(&w, ",", 1);
        put_item(&w, b, i, ts);
    }
    json_writer_raw(&w, "]", 1);
    json_writer_string(&w, "timestamp", ts);
    json_writer_end(&w);
    size_t len = 0;
    char *body = json_writer_take(&w, &len);
    metrics_inc(&b->h->s.metrics->batches[status == 200 ? BATCH_ACCEPTED : BATCH_PARTIAL]);
    api_send_json(b->h, req, ROUTE_ENQUEUE_BATCH, status, body, len);
}

/* Every item has its result: a duplicate counted as its first was, answered (when its client
 * is still there), and freed. */
static void batch_finish(PendingBatch *b, bool held)
{
    ApiHandler *h = b->h;
    for (size_t i = 0; i < b->batch.n; i++) {
        const JobBatchItem *it = &b->batch.items[i];
        if (it->error == JOB_OK && it->first != i && b->results[it->first].counter)
            metrics_inc(b->results[it->first].counter);
    }
    h2o_req_t *req = pending_enqueue_untie(b->tie);
    if (req) {
        uv_update_time(h->s.loop); /* from sd-event: uv-event.h */
        batch_answer(b, req);
    } else
        log_info(MSGID_REQUEST, LOG_FIELDS(.request_id = b->tie->request_id),
                 "client went away before its batch was answered");
    batch_free(b);
    if (held) {
        relaxed_store_uint(&h->pending, h->pending - 1);
        h->s.on_pending_end(h->s.userdata);
    }
}

static void on_item_done(const WorkerResult *r, void *userdata)
{
    BatchCall *c = userdata;
    PendingBatch *b = c->b;
    ApiHandler *h = b->h;
    ItemResult *res = &b->results[c->item];
    metrics_set(&h->s.metrics->worker_seen, true);
    metrics_set(&h->s.metrics->worker_answering,
                r->outcome == WORKER_OK || r->outcome == WORKER_HTTP_ERROR);
    if (r->outcome == WORKER_OK) {
        item_set(res, ITEM_ENQUEUED, 202, NULL, &h->s.metrics->jobs_enqueued);
        item_log(b, c->item, res, LOG_LEVEL_INFO, MSGID_ENQUEUED, "job enqueued successfully", r);
    } else {
        _cleanup_free_ char *msg = NULL;
        if (asprintf(&msg, "worker enqueue failed: %s", r->reason) < 0)
            msg = NULL;
        item_set(res, ITEM_ERROR, worker_outcome_http_status(r->outcome), msg,
                 &h->s.metrics->jobs_failed);
        item_log(b, c->item, res, LOG_LEVEL_ERROR, MSGID_ENQUEUE_FAILED, "enqueue failed", r);
    }
    if (--b->waiting == 0)
        batch_finish(b, true);
}

/* Item i to the worker: one attempt (the answer waits WORKER_TIMEOUT_MS at most), or joined to
 * the call in flight for its job; refused at MAX_PENDING_JOBS or while the breaker is open. */
static void item_send(PendingBatch *b, size_t i)
{
    ApiHandler *h = b->h;
    ItemResult *res = &b->results[i];
    char job_id[JOB_ID_MAX + 1];
    JobRef job = batch_item_job(b, i, job_id);
    if (h->s.spool && spool_job_held(h->s.spool, job.job_id)) {
        item_set(res, ITEM_ERROR, 503,
                 "held in the spool by an operator; not spooled: spool unavailable", NULL);
        item_log(b, i, res, LOG_LEVEL_WARN, MSGID_ENQUEUE_FAILED, "not enqueued", NULL);
        return;
    }
    b->calls[i] = (BatchCall){.b = b, .item = i};
    res->kind = ITEM_WAITING;
    b->waiting++; /* before: its outcome may come before worker_enqueue returns */
    WorkerEnqueueResult res_w = worker_enqueue(h->s.worker, &job, 0, on_item_done, &b->calls[i]);
    if (res_w.admission != WORKER_ADMITTED)
        b->waiting--;
    switch (res_w.admission) {
    case WORKER_ADMITTED:
        return;
    case WORKER_REFUSED_FULL:
        item_set(res, ITEM_ERROR, 503, "too many pending jobs", &h->s.metrics->pending_rejected);
        if (!log_rejection_summarised(503)) /* as POST /enqueue's: one a second under a backlog */
            item_log(b, i, res, LOG_LEVEL_INFO, MSGID_REJECTED, "not enqueued", NULL);
        return;
    case WORKER_REFUSED_BREAKER_OPEN:
        item_set(res, ITEM_ERROR, 503, "worker enqueue failed: circuit breaker open",
                 &h->s.metrics->jobs_failed);
        item_log(b, i, res, LOG_LEVEL_WARN, MSGID_ENQUEUE_FAILED, "enqueue failed fast", NULL);
        return;
    case WORKER_REFUSED_ERROR:
        item_set(res, ITEM_ERROR, 503, "out of memory", NULL);
        return;
    }
}

/* What the spool did with the batch's jobs. */
static void on_spooled(const SpoolAddStatus *statuses, size_t n, const char *error, void *userdata)
{
    PendingBatch *b = userdata;
    ApiHandler *h = b->h;
    uv_update_time(h->s.loop); /* from sd-event: uv-event.h */
    for (size_t k = 0; k < n; k++) {
        size_t i = b->spooled[k];
        ItemResult *res = &b->results[i];
        if (statuses[k] == SPOOL_ADDED || statuses[k] == SPOOL_ALREADY) {
            item_set(res, ITEM_QUEUED, 202, NULL, &h->s.metrics->spool_queued);
            item_log(b, i, res, LOG_LEVEL_INFO, MSGID_SPOOL_QUEUED,
                     statuses[k] == SPOOL_ALREADY
                         ? "job spooled (already waiting there), answered queued"
                         : "job spooled, answered queued",
                     NULL);
            continue;
        }
        char msg[SPOOL_ERROR_MAX + 32];
        snprintf(msg, sizeof(msg), "not spooled: %s",
                 error                               ? error
                 : statuses[k] == SPOOL_REFUSED_FULL ? "spool full (SPOOL_MAX_JOBS)"
                                                     : "spool unavailable");
        item_set(res, ITEM_ERROR, 503, msg, &h->s.metrics->spool_errors);
        item_log(b, i, res, LOG_LEVEL_WARN, MSGID_ENQUEUE_FAILED, "job not spooled", NULL);
    }
    b->waiting = 0;
    batch_finish(b, true);
}

/* Every valid, first-of-its-kind item to the spool in one transaction; false when it could not
 * even be asked. */
static bool batch_spool(PendingBatch *b)
{
    size_t n = 0;
    for (size_t i = 0; i < b->batch.n; i++)
        if (b->batch.items[i].error == JOB_OK && b->batch.items[i].first == i)
            n++;
    if (n == 0)
        return true; /* every item invalid: nothing to spool */
    _cleanup_free_ JobRef *jobs = calloc(n, sizeof(JobRef));
    _cleanup_free_ char *ids = malloc(n * (JOB_ID_MAX + 1));
    b->spooled = calloc(n, sizeof(size_t));
    if (!jobs || !ids || !b->spooled)
        return false;
    for (size_t i = 0, k = 0; i < b->batch.n; i++)
        if (b->batch.items[i].error == JOB_OK && b->batch.items[i].first == i) {
            b->spooled[k] = i;
            jobs[k] = batch_item_job(b, i, ids + k * (JOB_ID_MAX + 1));
            b->results[i].kind = ITEM_WAITING;
            k++;
        }
    b->waiting = n;
    return spool_add_batch(b->h->s.spool_port, jobs, n, NULL, on_spooled, b) >= 0;
}

static bool spool_takes_jobs(ApiHandler *h)
{
    if (!h->s.spool)
        return false;
    SpoolState st;
    spool_state(h->s.spool, &st);
    return st.up;
}

/* A batch refused as a whole: nothing sent. */
static int batch_reject(ApiHandler *h, h2o_req_t *req, int status, const char *message,
                        const char *request_id)
{
    metrics_inc(&h->s.metrics->batches[BATCH_REJECTED]);
    api_reject(h, req, ROUTE_ENQUEUE_BATCH, status, message, request_id);
    return 0;
}

/* The batch's body, or why it is refused as a whole (then answered, and *ret NULL). */
static int batch_read(ApiHandler *h, h2o_req_t *req, const char *request_id, PendingBatch **ret)
{
    const Config *c = h->s.config;
    *ret = NULL;
    ssize_t ct = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (ct >= 0 && !content_type_is_json(req->headers.entries[ct].value.base,
                                         req->headers.entries[ct].value.len))
        return batch_reject(h, req, 415, "Content-Type must be application/json", request_id);
    if (req->entity.len > c->max_batch_bytes)
        return batch_reject(h, req, 413, "request body too large", request_id);

    _cleanup_(batch_freep) PendingBatch *b = calloc(1, sizeof(*b));
    JobBatchError e = JOB_BATCH_INVALID_JSON;
    if (!b || job_batch_parse(req->entity.base ? req->entity.base : "", req->entity.len,
                              c->max_batch, &b->batch, &e) < 0)
        return batch_reject(h, req, 503, "out of memory", request_id);
    if (e == JOB_BATCH_TOO_MANY) {
        char msg[64];
        snprintf(msg, sizeof(msg), "too many placeIds (at most %u)", c->max_batch);
        return batch_reject(h, req, 413, msg, request_id);
    }
    if (e != JOB_BATCH_OK)
        return batch_reject(h, req, 400, job_batch_error_message(e), request_id);
    b->h = h;
    b->results = calloc(b->batch.n, sizeof(ItemResult));
    b->calls = calloc(b->batch.n, sizeof(BatchCall));
    b->tie = pending_enqueue_new(req, h);
    if (!b->results || !b->calls || !b->tie)
        return batch_reject(h, req, 503, "out of memory", request_id);
    snprintf(b->tie->request_id, sizeof(b->tie->request_id), "%s", request_id);
    request_trace(h, req, &b->tie->trace);
    b->started_usec = clock_usec(CLOCK_MONOTONIC);
    *ret = TAKE_PTR(b);
    return 0;
}

/* What an item's error may take in its result, and again in the answer: "worker enqueue
 * failed: " or "not spooled: " and a reason of up to 320 bytes, with malloc's overhead. */
#define ITEM_ERROR_BYTES 368
/* What an item's answer takes beside its placeId, job id and error: keys, timestamp, status. */
#define ITEM_ANSWER_BYTES 160
/* The spool's add (its op) and the batch's own structures, whatever its size. */
#define BATCH_FIXED_BYTES 4096

/* The most the batch holds while it waits, reckoned before its errors and its answer exist: its
 * items and their results, an error for each, the spool's copy of its jobs (placeId, job id and
 * request id each), and the answer with each item's placeId, job id and error. */
static size_t batch_cost(const PendingBatch *b)
{
    size_t text = 0, n = b->batch.n;
    for (size_t i = 0; i < n; i++)
        text += strlen(b->batch.items[i].place_id) + 1;
    size_t job_id_extra = JOB_ID_MAX - PLACE_ID_MAX; /* its prefix and suffix */
    size_t per_item = sizeof(JobBatchItem) + sizeof(ItemResult) + sizeof(BatchCall) +
                      sizeof(size_t) + sizeof(SpoolAddStatus) + 2 * ITEM_ERROR_BYTES +
                      ITEM_ANSWER_BYTES + 2 * job_id_extra + strlen(b->tie->request_id) + 3;
    /* the placeIds: the parsed text, the spool's copy as placeId and job id, the answer's */
    return BATCH_FIXED_BYTES + sizeof(PendingEnqueue) + n * per_item + 5 * text;
}

/* The batch's memory counted against BATCH_BUDGET_BYTES until it is freed, or it is refused as
 * a whole (503, nothing sent, its jobs counted as shed): false then, answered. */
static bool batch_charge(PendingBatch *b, h2o_req_t *req)
{
    ApiHandler *h = b->h;
    size_t cost = batch_cost(b);
    /* a batch larger than the whole budget (MAX_BATCH and MAX_BATCH_BYTES raised far) waits
     * alone, or it never would */
    if (budget_take(h->s.batch_bytes, BATCH_BUDGET_BYTES, cost) ||
        (cost > BATCH_BUDGET_BYTES && budget_take_alone(h->s.batch_bytes, cost))) {
        b->charged = cost;
        return true;
    }
    relaxed_store_u64(&h->s.metrics->shed_batch_budget,
                      h->s.metrics->shed_batch_budget + b->batch.n);
    metrics_inc(&h->s.metrics->batches[BATCH_REJECTED]);
    api_add_retry_after(req, 1000000ULL);
    api_reject(h, req, ROUTE_ENQUEUE_BATCH, 503, "too many batches waiting", b->tie->request_id);
    return false;
}

/* The log sink is behind: the batch is shed as a whole, each of its jobs counted. */
static bool shed_for_log(PendingBatch *b, h2o_req_t *req)
{
    if (log_pressure() != LOG_PRESSURE_SHED)
        return false;
    ApiHandler *h = b->h;
    for (size_t i = 0; i < b->batch.n; i++)
        metrics_inc(&h->s.metrics->shed_log_backlog);
    metrics_inc(&h->s.metrics->batches[BATCH_REJECTED]);
    api_add_retry_after(req, 1000000ULL);
    api_send_error(h, req, ROUTE_ENQUEUE_BATCH, 503, log_pressure_reason());
    return true;
}

/* Each item not valid is a 400 of its own, as POST /enqueue answers it. */
static void reject_invalid(PendingBatch *b)
{
    for (size_t i = 0; i < b->batch.n; i++) {
        JobError e = b->batch.items[i].error;
        if (e == JOB_OK)
            continue;
        item_set(&b->results[i], ITEM_ERROR, 400, job_error_message(e),
                 &b->h->s.metrics->requests_rejected);
        if (!log_rejection_summarised(400))
            log_info(MSGID_REJECTED,
                     LOG_FIELDS(.request_id = b->tie->request_id, .http_status = 400,
                                .error = job_error_message(e)),
                     "batch item %zu rejected: %s", i, job_error_message(e));
    }
}

int batch_handle(ApiHandler *h, h2o_req_t *req, const char *request_id)
{
    PendingBatch *b;
    int r = batch_read(h, req, request_id, &b);
    if (r < 0 || !b)
        return r;
    if (shed_for_log(b, req) || !batch_charge(b, req)) {
        batch_free(b);
        return 0;
    }
    reject_invalid(b);
    if (spool_takes_jobs(h)) {
        if (!batch_spool(b)) {
            batch_free(b);
            return batch_reject(h, req, 503, "out of memory", request_id);
        }
    } else {
        /* Held first, and one wait of the sending loop's own: worker_enqueue may finish calls
         * that this batch's items joined or that waited for a slot, before it returns, and the
         * batch must not end (nor be freed) under the loop. */
        pending_enqueue_hold(b->tie);
        relaxed_store_uint(&h->pending, h->pending + 1);
        b->waiting++;
        for (size_t i = 0; i < b->batch.n; i++)
            if (b->batch.items[i].error == JOB_OK && b->batch.items[i].first == i)
                item_send(b, i);
        if (--b->waiting == 0)
            batch_finish(b, true);
        return 0;
    }
    if (b->waiting == 0) {
        batch_finish(b, false);
        return 0;
    }
    pending_enqueue_hold(b->tie);
    relaxed_store_uint(&h->pending, h->pending + 1);
    return 0;
}
