/* SPDX-License-Identifier: MIT */
#include "routes.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "api-answer.h"
#include "batch.h"
#include "clock.h"
#include "credentials.h"
#include "enqueue.h"
#include "http-util.h"
#include "job.h"
#include "log.h"
#include "macro.h"
#include "read-guard.h"
#include "response.h"
#include "spool.h"
#include "timefmt.h"

/* The route of the path; a target in absolute form ("POST http://host/enqueue", which RFC 9112
 * says a server must accept) by the path in it: libh2o normalizes the whole URL as a path. */
static MetricsRoute route_of(h2o_req_t *req)
{
    h2o_iovec_t p = req->path_normalized;
    size_t off, query_at, *norm_indexes;
    if (http_target_absolute_path(req->path.base, req->path.len, &off))
        p = h2o_url_normalize_path(&req->pool, req->path.base + off, req->path.len - off, &query_at,
                                   &norm_indexes);
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/enqueue")))
        return ROUTE_ENQUEUE;
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/enqueue/batch")))
        return ROUTE_ENQUEUE_BATCH;
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/health")))
        return ROUTE_HEALTH;
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/ready")))
        return ROUTE_READY;
    if (h2o_memis(p.base, p.len, H2O_STRLIT("/metrics")))
        return ROUTE_METRICS;
    return ROUTE_OTHER;
}

uint64_t api_random(ApiHandler *h)
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
    api_send_json(h, req, ROUTE_HEALTH, 200, body, len);
}

/* Readiness for load balancers: 503 while the breaker is open, without calling the worker,
 * unless the spool takes the jobs meanwhile; and 503 while jobs are shed for the log backlog. */
static void handle_ready(ApiHandler *h, h2o_req_t *req, const char *request_id)
{
    const char *ts = rfc3339_now();
    uint64_t retry_after;
    const char *why;
    size_t len = 0;
    char *body;
    _cleanup_free_ char *err = NULL;
    bool ready = worker_ready(h->s.worker, &retry_after, &why);
    if (!ready && h->s.spool) {
        SpoolState st;
        spool_state(h->s.spool, &st);
        ready = st.up;
    }
    bool shedding = log_pressure() == LOG_PRESSURE_SHED; /* jobs are shed: not ready either */
    if (shedding) {
        ready = false;
        retry_after = 1000000ULL;
    }
    log_debug(MSGID_REQUEST, LOG_FIELDS(.request_id = request_id, .http_status = ready ? 200 : 503),
              "readiness probe");
    if (ready)
        body = response_object(&len, "status", "ready", "service", "argus-orchestrator",
                               "timestamp", ts, "worker_url", h->s.config->worker_url, NULL);
    else {
        if (shedding)
            err = strdup(log_pressure_reason());
        else if (asprintf(&err, "circuit breaker open: %s",
                          why && why[0] ? why : "worker failing") < 0)
            err = NULL;
        body = response_object(&len, "status", "unavailable", "error",
                               err ? err : "circuit breaker open", "service", "argus-orchestrator",
                               "timestamp", ts, "worker_url", h->s.config->worker_url, NULL);
        api_add_retry_after(req, retry_after);
    }
    api_send_json(h, req, ROUTE_READY, ready ? 200 : 503, body, len);
}

static void handle_metrics(ApiHandler *h, h2o_req_t *req)
{
    metrics_count_request(h->s.metrics, ROUTE_METRICS, 200);
    Metrics sum = {0};
    MetricsGauges g = {0};
    h->s.collect(&sum, &g, h->s.userdata); /* every loop's */
    g.breaker_state = (int)worker_breaker_state(h->s.worker);
    g.pending_jobs = worker_pending_jobs(h->s.worker);
    g.pending_jobs_limit = h->s.config->max_pending_jobs;
    g.start_time = (double)h->s.started_realtime_usec / 1e6;
    g.log_dropped_journal = log_dropped(LOG_SINK_JOURNAL);
    g.log_dropped_stderr = log_dropped(LOG_SINK_STDERR);
    g.spool = h->s.spool != NULL;
    if (h->s.spool) {
        SpoolState st;
        spool_state(h->s.spool, &st);
        g.spool_up = st.up;
        g.spool_jobs = st.stats.jobs;
        g.spool_held = st.stats.held;
        g.spool_dead = st.stats.dead;
        uint64_t now = clock_usec(CLOCK_REALTIME);
        if (st.stats.jobs > 0 && st.stats.oldest_usec > 0 && st.stats.oldest_usec < now)
            g.spool_oldest_age = (double)(now - st.stats.oldest_usec) / 1e6;
    }
    size_t len = 0;
    char *body = metrics_render(&sum, &g, ARGUS_VERSION, &len);
    if (!body) {
        api_send_error(h, req, ROUTE_METRICS, 503, "out of memory");
        return;
    }
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = len;
    api_add_header(req, H2O_TOKEN_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
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
    read_guard_request_framing(req, &framing);
    if (framing.problem || framing.chunked)
        req->http1_is_persistent = 0;
    if (framing.problem) {
        api_reject(h, req, route, 400, framing.problem, request_id);
        return 0;
    }

    if (route == ROUTE_OTHER) {
        api_reject(h, req, route, 404, "not found", request_id);
        return 0;
    }
    bool post = route == ROUTE_ENQUEUE || route == ROUTE_ENQUEUE_BATCH;
    if (post ? !method_is(req, H2O_STRLIT("POST"))
             : !method_is(req, H2O_STRLIT("GET")) && !method_is(req, H2O_STRLIT("HEAD"))) {
        api_add_header(req, H2O_TOKEN_ALLOW, post ? "POST" : "GET, HEAD");
        api_reject(h, req, route, 405, "method not allowed", request_id);
        return 0;
    }
    if (!post && req->entity.len > h->s.config->max_body_bytes) {
        /* a body libh2o took to the larger limit (chunked, HTTP/2): held to MAX_BODY_BYTES */
        api_reject(h, req, route, 413, "request body too large", request_id);
        return 0;
    }
    switch (route) {
    case ROUTE_ENQUEUE:
    case ROUTE_ENQUEUE_BATCH:
        if (h->s.api_token && !authorized(h, req)) {
            api_add_header(req, H2O_TOKEN_WWW_AUTHENTICATE, "Bearer realm=\"argus-orchestrator\"");
            if (route == ROUTE_ENQUEUE_BATCH)
                metrics_inc(&h->s.metrics->batches[BATCH_REJECTED]);
            api_reject(h, req, route, 401, "unauthorized", request_id);
            return 0;
        }
        if (route == ROUTE_ENQUEUE_BATCH)
            return batch_handle(h, req, request_id);
        return enqueue_handle(h, req, request_id);
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
    if (!h->s.batch_bytes)
        h->s.batch_bytes = &h->own_batch_bytes;
    api_seed_random(h);
    return h;
}
