/* SPDX-License-Identifier: MIT */
#pragma once

#include <h2o.h>

#include "api.h"

/* The memory the batches waiting for the worker or the spool may hold, every loop's together
 * (README, "Limits": the memory backstop); a batch that would pass it is refused as a whole,
 * 503. 32 MiB: beside MAX_CONNECTIONS (4096) connections at about 150 KiB, LARGE_BODY_PLACES
 * (conn.h) at about 250 KiB, MAX_PENDING_JOBS at about 10 KiB and the log queue's 37 MiB, the
 * service stays under the shipped unit's MemoryHigh=768M at the defaults. Each batch is reckoned
 * at the most it may come to (an error in every result): 32 MiB is some 25 batches of a
 * thousand typical placeIds waiting at once, or 250 of a hundred. */
#define BATCH_BUDGET_BYTES ((size_t)32 * 1024 * 1024)

/* POST /enqueue/batch, its body already read (README.md, "POST /enqueue/batch"): up to
 * MAX_BATCH placeIds in one request, each a job as POST /enqueue's, answered in one body with a
 * result per item. With the spool up, every job is spooled in one transaction and answered
 * "queued"; else each goes to the worker (one attempt, under MAX_PENDING_JOBS) and the answer
 * waits for all of them. */
int batch_handle(ApiHandler *h, h2o_req_t *req, const char *request_id);
