/* SPDX-License-Identifier: MIT */
#pragma once

#include <h2o.h>
#include <stdint.h>

#include "api.h"
#include "metrics.h"

/* How the API handlers answer: headers, JSON bodies, errors, each answer counted. */

void api_add_header(h2o_req_t *req, const h2o_token_t *token, const char *value);
/* Retry-After: usec rounded up to whole seconds, at least 1. */
void api_add_retry_after(h2o_req_t *req, uint64_t usec);

/* Sends a JSON body (malloc'd, taken; NULL: out of memory, answered 503) with its
 * Content-Length, and counts the answer. */
void api_send_json(ApiHandler *h, h2o_req_t *req, MetricsRoute route, int status, char *body,
                   size_t len);
/* {"status":"error","error":message,"timestamp":…} */
void api_send_error(ApiHandler *h, h2o_req_t *req, MetricsRoute route, int status,
                    const char *message);
/* An error answer before anything was forwarded: counted as rejected and logged at info, or
 * summarised while the log sink is behind (log_rejection_summarised). */
void api_reject(ApiHandler *h, h2o_req_t *req, MetricsRoute route, int status, const char *message,
                const char *request_id);
