/* SPDX-License-Identifier: MIT */
#pragma once

#include <h2o.h>

#include "api.h"
#include "trace.h"

/* The W3C trace of a request for jobs (POST /enqueue, POST /enqueue/batch; README.md, "Trace
 * context"): its traceparent continued with a span id of its own, or a new trace when it has
 * none, an invalid one, or several (which one would be the parent is not known); its tracestate
 * lines combined and bounded, kept only with a valid traceparent. */
void request_trace(ApiHandler *h, h2o_req_t *req, Trace *t);
