/* SPDX-License-Identifier: MIT */
#pragma once

#include <h2o.h>

#include "api.h"

/* POST /enqueue, its body already read: parsed, forwarded to the worker, and answered when the
 * worker has answered; with a spool, a job the worker could not take now is spooled and
 * answered 202 "queued" once on disk (README.md, "What a 202 means"). */
int enqueue_handle(ApiHandler *h, h2o_req_t *req, const char *request_id);
