/* SPDX-License-Identifier: MIT */
#include "routes.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "credentials.h"
#include "http-util.h"
#include "job.h"
#include "log.h"
#include "pending-enqueue.h"
#include "response.h"
#include "timefmt.h"

static void add_header(h2o_req_t *req, const h2o_token_t *token, const char *value)
{
    h2o_add_header(&req->pool, &req->res.headers, token, NULL, value, strlen(value));
}

static void add_retry_after(h2o_req_t *req, uint64_t usec)
{
    char *v = h2o_mem_alloc_pool(&req->pool, 24);
    snprintf(v, 24, "%llu", (unsigned long long)http_retry_after_sec(usec));
    add_header(req, H2O_TOKEN_RETRY_AFTER, v);
}

static MetricsRoute route_of(h2o_req_t *req)
{
    h2o_iovec_t p = req->path_normalized;
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/enqueue")))
        return ROUTE_ENQUEUE;
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/health")))
        return ROUTE_HEALTH;
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/ready")))
        return ROUTE_READY;
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/metrics")))
        return ROUTE_METRICS;
    return ROUTE_OTHER;
}

/* Sends a JSON body (malloc'd, taken) with its Content-Length, and counts the answer. */
static void send_json(ApiHandler *h, h2o_req_t *req, MetricsRoute route, int status, char *body,
                      size_t len)
{
    static const char oom[] = "{\"status\":\"error\",\"error\":\"out of memory\"}";
    if (!body) {
        status = 503;
        len = sizeof(oom) - 1;
    }
    metrics_count_request(h->s.metrics, route, status);
    req->res.status = status;
    req->res.reason = http_reason_phrase(status);
    req->res.content_length = len;
    add_header(req, H2O_TOKEN_CONTENT_TYPE, "application/json");
    h2o_send_inline(req, body ? body : oom, len);
    free(body);
}

static void send_error(ApiHandler *h, h2o_req_t *req, MetricsRoute route, int status,
                       const char *message)
{
    const char *ts = rfc3339_now();
    size_t len = 0;
    char *body = response_error(message, ts, &len);
    send_json(h, req, route, status, body, len);
}

/* A fast non-cryptographic random number (request ids are labels, not secrets). */
static uint64_t api_random(ApiHandler *h)
{
    uint64_t s1 = h->rng[0];
    const uint64_t s0 = h->rng[1];
    h->rng[0] = s0;
    s1 ^= s1 << 23;
    h->rng[1] = s1 ^ s0 ^ (s1 >> 17) ^ (s0 >> 26);
    return h->rng[1] + s0;
}

/* Request ids need no secret randomness: without getrandom(), the clock and the pid do. */
static void api_seed_random(ApiHandler *h)
{
    if (getrandom(h->rng, sizeof(h->rng), 0) != sizeof(h->rng) || (h->rng[0] | h->rng[1]) == 0) {
        h->rng[0] = h->s.started_monotonic_usec | 1;
        h->rng[1] = (uint64_t)getpid() << 32 | 0x9e3779b9;
    }
}

/* Takes the client's X-Request-Id when it is sane, else makes one; echoes it in the answer. */
static void request_id_setup(ApiHandler *h, h2o_req_t *req, char id[static REQUEST_ID_MAX + 1])
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (i >= 0 && request_id_is_valid(req->headers.entries[i].value.base,
                                      req->headers.entries[i].value.len)) {
        memcpy(id, req->headers.entries[i].value.base, req->headers.entries[i].value.len);
        id[req->headers.entries[i].value.len] = '\0';
    } else {
        static const char hex[] = "0123456789abcdef";
        uint64_t a = api_random(h), b = api_random(h);
        for (size_t k = 0; k < 16; k++) {
            id[k] = hex[(a >> (4 * k)) & 15];
            id[16 + k] = hex[(b >> (4 * k)) & 15];
        }
        id[32] = '\0';
    }
    h2o_iovec_t v = h2o_strdup(&req->pool, id, SIZE_MAX);
    h2o_add_header_by_str(&req->pool, &req->res.headers, H2O_STRLIT("x-request-id"), 0, NULL,
                          v.base, v.len);
}

static void reject(ApiHandler *h, h2o_req_t *req, MetricsRoute route, int status,
                   const char *message, const char *request_id)
{
    h->s.metrics->requests_rejected++;
    log_info(MSGID_REJECTED,
             LOG_FIELDS(.request_id = request_id, .http_status = status, .error = message),
             "request rejected: %.*s %.*s: %s", (int)req->method.len, req->method.base,
             (int)req->path.len, req->path.base, message);
    send_error(h, req, route, status, message);
}

/* Counts and logs a finished POST /enqueue, whether or not its client is still there. */
static void enqueue_record(ApiHandler *h, const PendingEnqueue *pe, const WorkerResult *r,
                           int status, int64_t duration)
{
    bool ok = r->outcome == WORKER_OK;
    h->s.metrics->worker_seen = true;
    h->s.metrics->worker_answering = ok || r->outcome == WORKER_HTTP_ERROR;
    if (ok)
        h->s.metrics->jobs_enqueued++;
    else
        h->s.metrics->jobs_failed++;
    const LogFields fields = {
        .place_id = pe->place_id,
        .job_id = pe->job_id,
        .request_id = pe->request_id,
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
    uv_update_time(h->s.loop); /* called from sd-event: libuv's cached clock is stale */

    const char *ts = rfc3339_now();
    size_t len = 0;
    char *body;
    if (r->outcome == WORKER_OK)
        body = response_enqueued(pe->place_id, pe->job_id, ts, &len);
    else {
        if (r->retry_after_sec)
            add_retry_after(req, r->retry_after_sec * 1000000ULL);
        else if (status == 503)
            add_retry_after(req, h->s.config->breaker_cooldown_sec * 1000000ULL);
        body = response_worker_error(r->reason, pe->place_id, pe->job_id, ts, &len);
    }
    send_json(h, req, ROUTE_ENQUEUE, status, body, len);
    metrics_observe(&h->s.metrics->request_latency, (uint64_t)duration);
}

static void on_worker_done(const WorkerResult *r, void *userdata)
{
    PendingEnqueue *pe = userdata;
    ApiHandler *h = pe->owner;
    int status = r->outcome == WORKER_OK ? 202 : worker_outcome_http_status(r->outcome);
    int64_t duration = (int64_t)(clock_usec(CLOCK_MONOTONIC) - pe->started_usec);

    enqueue_record(h, pe, r, status, duration);
    h2o_req_t *req = pending_enqueue_untie(pe);
    if (req)
        enqueue_answer(h, req, pe, r, status, duration);
    else
        log_info(MSGID_REQUEST, LOG_FIELDS(.place_id = pe->place_id, .request_id = pe->request_id),
                 "client went away before the worker answered");
    pending_enqueue_free(pe);
    h->pending--;
    h->s.on_pending_end(h->s.userdata);
}

/* The breaker is open: 503 at once, with the time left of its cool-down. */
static void fail_fast(ApiHandler *h, h2o_req_t *req, const PendingEnqueue *pe,
                      const WorkerEnqueueResult *res)
{
    const char *why = res->reason;
    h->s.metrics->jobs_failed++;
    log_warn(MSGID_ENQUEUE_FAILED,
             LOG_FIELDS(.place_id = pe->place_id, .job_id = pe->job_id,
                        .request_id = pe->request_id, .http_status = 503,
                        .worker_url = h->s.config->worker_enqueue, .error = "circuit breaker open"),
             "enqueue failed fast: circuit breaker open (%s)", why ? why : "worker failing");
    const char *ts = rfc3339_now();
    size_t len = 0;
    add_retry_after(req, res->retry_after_usec);
    char *body = response_worker_error("circuit breaker open", pe->place_id, pe->job_id, ts, &len);
    send_json(h, req, ROUTE_ENQUEUE, 503, body, len);
    metrics_observe(&h->s.metrics->request_latency, clock_usec(CLOCK_MONOTONIC) - pe->started_usec);
}

static int handle_enqueue(ApiHandler *h, h2o_req_t *req, const char *request_id)
{
    ssize_t ct = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (ct >= 0 && !content_type_is_json(req->headers.entries[ct].value.base,
                                         req->headers.entries[ct].value.len)) {
        reject(h, req, ROUTE_ENQUEUE, 415, "Content-Type must be application/json", request_id);
        return 0;
    }
    if (req->entity.len > h->s.config->max_body_bytes) {
        reject(h, req, ROUTE_ENQUEUE, 413, "request body too large", request_id);
        return 0;
    }

    char place_id[PLACE_ID_MAX + 1];
    JobError e =
        job_parse_request(req->entity.base ? req->entity.base : "", req->entity.len, place_id);
    if (e != JOB_OK) {
        reject(h, req, ROUTE_ENQUEUE, 400, job_error_message(e), request_id);
        return 0;
    }

    PendingEnqueue *pe = pending_enqueue_new(req, h);
    if (!pe) {
        send_error(h, req, ROUTE_ENQUEUE, 503, "out of memory");
        return 0;
    }
    pe->started_usec = clock_usec(CLOCK_MONOTONIC);
    strcpy(pe->place_id, place_id);
    job_id_format(place_id, pe->job_id);
    snprintf(pe->request_id, sizeof(pe->request_id), "%s", request_id);

    WorkerEnqueueResult res =
        worker_enqueue(h->s.worker, pe->place_id, pe->job_id, pe->request_id, on_worker_done, pe);
    switch (res.admission) {
    case WORKER_ADMITTED:
        break;
    case WORKER_REFUSED_FULL:
        pending_enqueue_free(pe);
        h->s.metrics->pending_rejected++;
        add_retry_after(req, res.retry_after_usec);
        reject(h, req, ROUTE_ENQUEUE, 503, "too many pending jobs", request_id);
        return 0;
    case WORKER_REFUSED_BREAKER_OPEN:
        fail_fast(h, req, pe, &res);
        pending_enqueue_free(pe);
        return 0;
    case WORKER_REFUSED_ERROR:
        pending_enqueue_free(pe);
        send_error(h, req, ROUTE_ENQUEUE, 503, "out of memory");
        return 0;
    }
    pending_enqueue_hold(pe);
    h->pending++;
    return 0;
}

static void handle_health(ApiHandler *h, h2o_req_t *req, const char *request_id)
{
    const char *ts = rfc3339_now();
    char uptime[GO_DURATION_MAX];
    uint64_t up_sec = (clock_usec(CLOCK_MONOTONIC) - h->s.started_monotonic_usec) / 1000000ULL;
    format_go_duration(up_sec * 1000000000ULL, uptime);
    size_t len = 0;
    log_debug(MSGID_REQUEST, LOG_FIELDS(.request_id = request_id, .http_status = 200),
              "health probe");
    char *body = response_health(ts, uptime, h->s.config->worker_url, &len);
    send_json(h, req, ROUTE_HEALTH, 200, body, len);
}

/* Readiness for load balancers: 503 while the breaker is open, without calling the worker. */
static void handle_ready(ApiHandler *h, h2o_req_t *req, const char *request_id)
{
    const char *ts = rfc3339_now();
    uint64_t retry_after;
    const char *why;
    size_t len = 0;
    char *body, *err = NULL;
    bool ready = worker_ready(h->s.worker, &retry_after, &why);
    log_debug(MSGID_REQUEST, LOG_FIELDS(.request_id = request_id, .http_status = ready ? 200 : 503),
              "readiness probe");
    if (ready)
        body = response_object(&len, "status", "ready", "service", "argus-orchestrator",
                               "timestamp", ts, "worker_url", h->s.config->worker_url, NULL);
    else {
        if (asprintf(&err, "circuit breaker open: %s", why && why[0] ? why : "worker failing") < 0)
            err = NULL;
        body = response_object(&len, "status", "unavailable", "error",
                               err ? err : "circuit breaker open", "service", "argus-orchestrator",
                               "timestamp", ts, "worker_url", h->s.config->worker_url, NULL);
        add_retry_after(req, retry_after);
    }
    free(err);
    send_json(h, req, ROUTE_READY, ready ? 200 : 503, body, len);
}

static void handle_metrics(ApiHandler *h, h2o_req_t *req)
{
    metrics_count_request(h->s.metrics, ROUTE_METRICS, 200);
    MetricsGauges g = {
        .in_flight = h->pending,
        .connections = h->s.server->n_conns,
        .breaker_state = (int)worker_breaker_state(h->s.worker),
        .pending_jobs = worker_pending_jobs(h->s.worker),
        .pending_jobs_limit = h->s.config->max_pending_jobs,
        .calls_queued = worker_queued_calls(h->s.worker),
        .start_time = (double)h->s.started_realtime_usec / 1e6,
        .log_dropped_journal = log_dropped(LOG_SINK_JOURNAL),
        .log_dropped_stderr = log_dropped(LOG_SINK_STDERR),
    };
    size_t len = 0;
    char *body = metrics_render(h->s.metrics, &g, ARGUS_VERSION, &len);
    if (!body) {
        send_error(h, req, ROUTE_METRICS, 503, "out of memory");
        return;
    }
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = len;
    add_header(req, H2O_TOKEN_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    h2o_send_inline(req, body, len);
    free(body);
}

static bool authorized(ApiHandler *h, h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    return i >= 0 &&
           bearer_matches(req->headers.entries[i].value.base, req->headers.entries[i].value.len,
                          h->s.api_token, strlen(h->s.api_token));
}

static bool method_is(h2o_req_t *req, const char *name, size_t len)
{
    return h2o_memis(req->method.base, req->method.len, name, len);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    ApiHandler *h = H2O_STRUCT_FROM_MEMBER(ApiHandler, super, self);
    char request_id[REQUEST_ID_MAX + 1];
    request_id_setup(h, req, request_id);
    MetricsRoute route = route_of(req);

    /* Whatever follows a request with ambiguous or chunked framing on the connection may be a
     * request smuggled past a proxy: the connection ends with the answer. */
    Http1Framing framing;
    server_request_framing(req, &framing);
    if (framing.problem || framing.chunked)
        req->http1_is_persistent = 0;
    if (framing.problem) {
        reject(h, req, route, 400, framing.problem, request_id);
        return 0;
    }

    if (route == ROUTE_OTHER) {
        reject(h, req, route, 404, "not found", request_id);
        return 0;
    }
    bool post = route == ROUTE_ENQUEUE;
    if (post ? !method_is(req, H2O_STRLIT("POST"))
             : !method_is(req, H2O_STRLIT("GET")) && !method_is(req, H2O_STRLIT("HEAD"))) {
        add_header(req, H2O_TOKEN_ALLOW, post ? "POST" : "GET, HEAD");
        reject(h, req, route, 405, "method not allowed", request_id);
        return 0;
    }
    switch (route) {
    case ROUTE_ENQUEUE:
        if (h->s.api_token && !authorized(h, req)) {
            add_header(req, H2O_TOKEN_WWW_AUTHENTICATE, "Bearer realm=\"argus-orchestrator\"");
            reject(h, req, route, 401, "unauthorized", request_id);
            return 0;
        }
        return handle_enqueue(h, req, request_id);
    case ROUTE_HEALTH:
        handle_health(h, req, request_id);
        return 0;
    case ROUTE_READY:
        handle_ready(h, req, request_id);
        return 0;
    default:
        handle_metrics(h, req);
        return 0;
    }
}

ApiHandler *routes_register(h2o_pathconf_t *pathconf, const ApiSettings *settings)
{
    assert(pathconf);
    assert(settings);
    assert(settings->on_pending_end);

    ApiHandler *h = (ApiHandler *)h2o_create_handler(pathconf, sizeof(*h));
    h->super.on_req = on_req;
    h->s = *settings;
    api_seed_random(h);
    return h;
}
