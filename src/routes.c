/* SPDX-License-Identifier: MIT */
#include "routes.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "credentials.h"
#include "job.h"
#include "log.h"
#include "manager.h"
#include "response.h"
#include "timefmt.h"

typedef struct RouteHandler {
    h2o_handler_t super;
    Manager *manager;
} RouteHandler;

typedef struct PendingEnqueue PendingEnqueue;

/* Lives in the request's pool; tells the pending enqueue when the request dies first. */
typedef struct RequestGuard {
    PendingEnqueue *pe;
} RequestGuard;

/* An /enqueue waiting for the worker. Outlives its request if the client goes away, so that the
 * job is still forwarded and the drain still waits for it. */
struct PendingEnqueue {
    Manager *manager;
    h2o_req_t *req; /* NULL once the request is gone */
    RequestGuard *guard;
    Conn *conn;
    uint64_t started_usec;
    char request_id[REQUEST_ID_MAX + 1];
    char job_id[JOB_ID_MAX + 1];
    char place_id[PLACE_ID_MAX + 1];
};

bool request_id_is_valid(const char *s, size_t len)
{
    if (len == 0 || len > REQUEST_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] <= ' ' || s[i] > '~' || s[i] == '"' || s[i] == '\\')
            return false;
    return true;
}

bool content_type_is_json(const char *s, size_t len)
{
    static const char json[] = "application/json";
    size_t i = 0;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (len - i < sizeof(json) - 1 || strncasecmp(s + i, json, sizeof(json) - 1) != 0)
        return false;
    i += sizeof(json) - 1;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i == len || s[i] == ';';
}

static const char *reason_phrase(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 413:
        return "Payload Too Large";
    case 415:
        return "Unsupported Media Type";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Error";
    }
}

static void add_header(h2o_req_t *req, const h2o_token_t *token, const char *value)
{
    h2o_add_header(&req->pool, &req->res.headers, token, NULL, value, strlen(value));
}

/* Retry-After in whole seconds, at least 1. */
static void add_retry_after(h2o_req_t *req, uint64_t usec)
{
    uint64_t sec = (usec + 999999) / 1000000;
    char *v = h2o_mem_alloc_pool(&req->pool, 24);
    snprintf(v, 24, "%llu", (unsigned long long)(sec ? sec : 1));
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
static void send_json(Manager *m, h2o_req_t *req, MetricsRoute route, int status, char *body,
                      size_t len)
{
    static const char oom[] = "{\"status\":\"error\",\"error\":\"out of memory\"}";
    if (!body) {
        status = 503;
        len = sizeof(oom) - 1;
    }
    metrics_count_request(&m->metrics, route, status);
    req->res.status = status;
    req->res.reason = reason_phrase(status);
    req->res.content_length = len;
    add_header(req, H2O_TOKEN_CONTENT_TYPE, "application/json");
    h2o_send_inline(req, body ? body : oom, len);
    free(body);
}

/* The RFC 3339 string of the current second, made once a second. */
static void timestamp_now(Manager *m, char ts[static RFC3339_MAX])
{
    time_t t = time(NULL);
    if (t != m->timestamp_sec) {
        if (format_rfc3339(t, m->timestamp) < 0)
            m->timestamp[0] = '\0';
        m->timestamp_sec = t;
    }
    memcpy(ts, m->timestamp, RFC3339_MAX);
}

static void send_error(Manager *m, h2o_req_t *req, MetricsRoute route, int status,
                       const char *message)
{
    char ts[RFC3339_MAX];
    size_t len = 0;
    timestamp_now(m, ts);
    char *body = response_error(message, ts, &len);
    send_json(m, req, route, status, body, len);
}

/* Takes the client's X-Request-Id when it is sane, else makes one; echoes it in the answer. */
static void request_id_setup(Manager *m, h2o_req_t *req, char id[static REQUEST_ID_MAX + 1])
{
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-request-id"), -1);
    if (i >= 0 && request_id_is_valid(req->headers.entries[i].value.base,
                                      req->headers.entries[i].value.len)) {
        memcpy(id, req->headers.entries[i].value.base, req->headers.entries[i].value.len);
        id[req->headers.entries[i].value.len] = '\0';
    } else {
        static const char hex[] = "0123456789abcdef";
        uint64_t a = manager_random(m), b = manager_random(m);
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

static void reject(Manager *m, h2o_req_t *req, MetricsRoute route, int status, const char *message,
                   const char *request_id)
{
    m->metrics.requests_rejected++;
    log_info(MSGID_REJECTED,
             LOG_FIELDS(.request_id = request_id, .http_status = status, .error = message),
             "request rejected: %.*s %.*s: %s", (int)req->method.len, req->method.base,
             (int)req->path.len, req->path.base, message);
    send_error(m, req, route, status, message);
}

static void on_guard_dispose(void *p)
{
    RequestGuard *g = p;
    PendingEnqueue *pe = g->pe;
    if (!pe)
        return;
    pe->req = NULL;
    pe->guard = NULL;
    server_conn_release(pe->conn);
    pe->conn = NULL;
}

static void on_worker_done(const WorkerResult *r, void *userdata)
{
    PendingEnqueue *pe = userdata;
    Manager *m = pe->manager;
    int status = r->outcome == WORKER_OK ? 202 : worker_outcome_http_status(r->outcome);
    int64_t duration = (int64_t)(clock_usec(CLOCK_MONOTONIC) - pe->started_usec);

    m->metrics.worker_seen = true;
    m->metrics.worker_answering = r->outcome == WORKER_OK || r->outcome == WORKER_HTTP_ERROR;
    if (r->outcome == WORKER_OK) {
        m->metrics.jobs_enqueued++;
        log_info(MSGID_ENQUEUED,
                 LOG_FIELDS(.place_id = pe->place_id, .job_id = pe->job_id,
                            .request_id = pe->request_id, .http_status = status,
                            .worker_status = (int)r->http_status, .attempt = (int)r->attempts,
                            .worker_url = m->config.worker_enqueue, .duration_usec = duration,
                            .has_duration = true),
                 "job enqueued successfully");
    } else {
        m->metrics.jobs_failed++;
        log_error(MSGID_ENQUEUE_FAILED,
                  LOG_FIELDS(.place_id = pe->place_id, .job_id = pe->job_id,
                             .request_id = pe->request_id, .http_status = status,
                             .worker_status = (int)r->http_status, .attempt = (int)r->attempts,
                             .worker_url = m->config.worker_enqueue, .duration_usec = duration,
                             .has_duration = true, .error = r->reason),
                  "enqueue failed: %s", r->reason);
    }

    if (pe->req) {
        h2o_req_t *req = pe->req;
        pe->guard->pe = NULL;
        server_conn_release(pe->conn);
        uv_event_sync(&m->uv);

        char ts[RFC3339_MAX];
        size_t len = 0;
        char *body;
        timestamp_now(m, ts);
        if (r->outcome == WORKER_OK)
            body = response_enqueued(pe->place_id, pe->job_id, ts, &len);
        else {
            if (r->retry_after_sec)
                add_retry_after(req, r->retry_after_sec * 1000000ULL);
            else if (status == 503)
                add_retry_after(req, m->config.breaker_cooldown_sec * 1000000ULL);
            body = response_worker_error(r->reason, pe->place_id, pe->job_id, ts, &len);
        }
        send_json(m, req, ROUTE_ENQUEUE, status, body, len);
        metrics_observe(&m->metrics.request_latency, (uint64_t)duration);
    } else
        log_info(MSGID_REQUEST, LOG_FIELDS(.place_id = pe->place_id, .request_id = pe->request_id),
                 "client went away before the worker answered");
    free(pe);
    manager_pending_end(m);
}

/* The breaker is open: 503 at once, with the time left of its cool-down. */
static void fail_fast(Manager *m, h2o_req_t *req, const PendingEnqueue *pe,
                      const WorkerEnqueueResult *res)
{
    const char *why = res->reason;
    m->metrics.jobs_failed++;
    log_warn(MSGID_ENQUEUE_FAILED,
             LOG_FIELDS(.place_id = pe->place_id, .job_id = pe->job_id,
                        .request_id = pe->request_id, .http_status = 503,
                        .worker_url = m->config.worker_enqueue, .error = "circuit breaker open"),
             "enqueue failed fast: circuit breaker open (%s)", why ? why : "worker failing");
    char ts[RFC3339_MAX];
    size_t len = 0;
    timestamp_now(m, ts);
    add_retry_after(req, res->retry_after_usec);
    char *body = response_worker_error("circuit breaker open", pe->place_id, pe->job_id, ts, &len);
    send_json(m, req, ROUTE_ENQUEUE, 503, body, len);
    metrics_observe(&m->metrics.request_latency, clock_usec(CLOCK_MONOTONIC) - pe->started_usec);
}

static int handle_enqueue(Manager *m, h2o_req_t *req, const char *request_id)
{
    ssize_t ct = h2o_find_header(&req->headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (ct >= 0 && !content_type_is_json(req->headers.entries[ct].value.base,
                                         req->headers.entries[ct].value.len)) {
        reject(m, req, ROUTE_ENQUEUE, 415, "Content-Type must be application/json", request_id);
        return 0;
    }
    if (req->entity.len > m->config.max_body_bytes) {
        reject(m, req, ROUTE_ENQUEUE, 413, "request body too large", request_id);
        return 0;
    }

    char place_id[PLACE_ID_MAX + 1];
    JobError e =
        job_parse_request(req->entity.base ? req->entity.base : "", req->entity.len, place_id);
    if (e != JOB_OK) {
        reject(m, req, ROUTE_ENQUEUE, 400, job_error_message(e), request_id);
        return 0;
    }

    PendingEnqueue *pe = calloc(1, sizeof(*pe));
    RequestGuard *g = pe ? h2o_mem_alloc_shared(&req->pool, sizeof(*g), on_guard_dispose) : NULL;
    if (!g) {
        free(pe);
        send_error(m, req, ROUTE_ENQUEUE, 503, "out of memory");
        return 0;
    }
    pe->manager = m;
    pe->req = req;
    pe->guard = g;
    g->pe = pe;
    pe->started_usec = clock_usec(CLOCK_MONOTONIC);
    strcpy(pe->place_id, place_id);
    job_id_format(place_id, pe->job_id);
    snprintf(pe->request_id, sizeof(pe->request_id), "%s", request_id);

    WorkerEnqueueResult res =
        worker_enqueue(m->worker, pe->place_id, pe->job_id, pe->request_id, on_worker_done, pe);
    switch (res.admission) {
    case WORKER_ADMITTED:
        break;
    case WORKER_REFUSED_FULL:
        g->pe = NULL;
        free(pe);
        m->metrics.pending_rejected++;
        add_retry_after(req, res.retry_after_usec);
        reject(m, req, ROUTE_ENQUEUE, 503, "too many pending jobs", request_id);
        return 0;
    case WORKER_REFUSED_BREAKER_OPEN:
        g->pe = NULL;
        fail_fast(m, req, pe, &res);
        free(pe);
        return 0;
    case WORKER_REFUSED_ERROR:
        g->pe = NULL;
        free(pe);
        send_error(m, req, ROUTE_ENQUEUE, 503, "out of memory");
        return 0;
    }
    pe->conn = server_conn_of(req);
    server_conn_hold(pe->conn);
    manager_pending_begin(m);
    return 0;
}

static void handle_health(Manager *m, h2o_req_t *req, const char *request_id)
{
    char ts[RFC3339_MAX], uptime[GO_DURATION_MAX];
    timestamp_now(m, ts);
    uint64_t up_sec = (clock_usec(CLOCK_MONOTONIC) - m->started_monotonic_usec) / 1000000ULL;
    format_go_duration(up_sec * 1000000000ULL, uptime);
    size_t len = 0;
    log_debug(MSGID_REQUEST, LOG_FIELDS(.request_id = request_id, .http_status = 200),
              "health probe");
    char *body = response_health(ts, uptime, m->config.worker_url, &len);
    send_json(m, req, ROUTE_HEALTH, 200, body, len);
}

/* Readiness for load balancers: 503 while the breaker is open, without calling the worker. */
static void handle_ready(Manager *m, h2o_req_t *req, const char *request_id)
{
    char ts[RFC3339_MAX];
    timestamp_now(m, ts);
    uint64_t retry_after;
    const char *why;
    size_t len = 0;
    char *body, *err = NULL;
    bool ready = worker_ready(m->worker, &retry_after, &why);
    log_debug(MSGID_REQUEST, LOG_FIELDS(.request_id = request_id, .http_status = ready ? 200 : 503),
              "readiness probe");
    if (ready)
        body = response_object(&len, "status", "ready", "service", "argus-orchestrator",
                               "timestamp", ts, "worker_url", m->config.worker_url, NULL);
    else {
        if (asprintf(&err, "circuit breaker open: %s", why && why[0] ? why : "worker failing") < 0)
            err = NULL;
        body = response_object(&len, "status", "unavailable", "error",
                               err ? err : "circuit breaker open", "service", "argus-orchestrator",
                               "timestamp", ts, "worker_url", m->config.worker_url, NULL);
        add_retry_after(req, retry_after);
    }
    free(err);
    send_json(m, req, ROUTE_READY, ready ? 200 : 503, body, len);
}

static void handle_metrics(Manager *m, h2o_req_t *req)
{
    metrics_count_request(&m->metrics, ROUTE_METRICS, 200);
    MetricsGauges g = {
        .in_flight = m->pending,
        .connections = m->server.n_conns,
        .breaker_state = (int)worker_breaker_state(m->worker),
        .pending_jobs = worker_pending_jobs(m->worker),
        .pending_jobs_limit = m->config.max_pending_jobs,
        .calls_queued = worker_queued_calls(m->worker),
        .start_time = (double)m->started_realtime_usec / 1e6,
    };
    size_t len = 0;
    char *body = metrics_render(&m->metrics, &g, ARGUS_VERSION, &len);
    if (!body) {
        send_error(m, req, ROUTE_METRICS, 503, "out of memory");
        return;
    }
    req->res.status = 200;
    req->res.reason = "OK";
    req->res.content_length = len;
    add_header(req, H2O_TOKEN_CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8");
    h2o_send_inline(req, body, len);
    free(body);
}

static bool authorized(Manager *m, h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    return i >= 0 &&
           bearer_matches(req->headers.entries[i].value.base, req->headers.entries[i].value.len,
                          m->api_token, strlen(m->api_token));
}

static bool method_is(h2o_req_t *req, const char *name, size_t len)
{
    return h2o_memis(req->method.base, req->method.len, name, len);
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    Manager *m = ((RouteHandler *)self)->manager;
    char request_id[REQUEST_ID_MAX + 1];
    request_id_setup(m, req, request_id);
    MetricsRoute route = route_of(req);

    /* Whatever follows a request with ambiguous or chunked framing on the connection may be a
     * request smuggled past a proxy: the connection ends with the answer. */
    Http1Framing framing;
    server_request_framing(req, &framing);
    if (framing.problem || framing.chunked)
        req->http1_is_persistent = 0;
    if (framing.problem) {
        reject(m, req, route, 400, framing.problem, request_id);
        return 0;
    }

    if (route == ROUTE_OTHER) {
        reject(m, req, route, 404, "not found", request_id);
        return 0;
    }
    bool post = route == ROUTE_ENQUEUE;
    if (post ? !method_is(req, H2O_STRLIT("POST"))
             : !method_is(req, H2O_STRLIT("GET")) && !method_is(req, H2O_STRLIT("HEAD"))) {
        add_header(req, H2O_TOKEN_ALLOW, post ? "POST" : "GET, HEAD");
        reject(m, req, route, 405, "method not allowed", request_id);
        return 0;
    }
    switch (route) {
    case ROUTE_ENQUEUE:
        if (m->api_token && !authorized(m, req)) {
            add_header(req, H2O_TOKEN_WWW_AUTHENTICATE, "Bearer realm=\"argus-orchestrator\"");
            reject(m, req, route, 401, "unauthorized", request_id);
            return 0;
        }
        return handle_enqueue(m, req, request_id);
    case ROUTE_HEALTH:
        handle_health(m, req, request_id);
        return 0;
    case ROUTE_READY:
        handle_ready(m, req, request_id);
        return 0;
    default:
        handle_metrics(m, req);
        return 0;
    }
}

int routes_register(h2o_pathconf_t *pathconf, Manager *m)
{
    RouteHandler *h = (RouteHandler *)h2o_create_handler(pathconf, sizeof(*h));
    h->super.on_req = on_req;
    h->manager = m;
    return 0;
}
