/* SPDX-License-Identifier: MIT */
#include "api-answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http-util.h"
#include "log.h"
#include "response.h"
#include "timefmt.h"

void api_add_header(h2o_req_t *req, const h2o_token_t *token, const char *value)
{
    h2o_add_header(&req->pool, &req->res.headers, token, NULL, value, strlen(value));
}

void api_add_retry_after(h2o_req_t *req, uint64_t usec)
{
    char *v = h2o_mem_alloc_pool(&req->pool, 24);
    snprintf(v, 24, "%llu", (unsigned long long)http_retry_after_sec(usec));
    api_add_header(req, H2O_TOKEN_RETRY_AFTER, v);
}

void api_send_json(ApiHandler *h, h2o_req_t *req, MetricsRoute route, int status, char *body,
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
    api_add_header(req, H2O_TOKEN_CONTENT_TYPE, "application/json");
    h2o_send_inline(req, body ? body : oom, len);
    free(body);
}

void api_send_error(ApiHandler *h, h2o_req_t *req, MetricsRoute route, int status,
                    const char *message)
{
    const char *ts = rfc3339_now();
    size_t len = 0;
    char *body = response_error(message, ts, &len);
    api_send_json(h, req, route, status, body, len);
}

void api_reject(ApiHandler *h, h2o_req_t *req, MetricsRoute route, int status, const char *message,
                const char *request_id)
{
    metrics_inc(&h->s.metrics->requests_rejected);
    if (!log_rejection_summarised(status))
        log_info(MSGID_REJECTED,
                 LOG_FIELDS(.request_id = request_id, .http_status = status, .error = message),
                 "request rejected: %.*s %.*s: %s", (int)req->method.len, req->method.base,
                 (int)req->path.len, req->path.base, message);
    api_send_error(h, req, route, status, message);
}
