/* SPDX-License-Identifier: MIT */
#pragma once

#include <h2o.h>

#include "api.h"

/* POST /enqueue/batch, its body already read (README.md, "POST /enqueue/batch"): up to
 * MAX_BATCH placeIds in one request, each a job as POST /enqueue's, answered in one body with a
 * result per item. With the spool up, every job is spooled in one transaction and answered
 * "queued"; else each goes to the worker (one attempt, under MAX_PENDING_JOBS) and the answer
 * waits for all of them. */
int batch_handle(ApiHandler *h, h2o_req_t *req, const char *request_id);
