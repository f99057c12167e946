/* SPDX-License-Identifier: MIT */
#pragma once

#include <h2o.h>
#include <stdint.h>

#include "job.h"
#include "server.h"

typedef struct RequestGuard RequestGuard;

/* A POST /enqueue waiting for the worker. It outlives its request if the client goes away, so
 * that the job is still forwarded and the drain still waits for it: a guard in the request's
 * pool clears .req (and lets the connection go) when the request dies first. */
typedef struct PendingEnqueue {
    void *owner;
    h2o_req_t *req; /* NULL once the request is gone */
    RequestGuard *guard;
    Conn *conn; /* held open during a drain until the answer */
    uint64_t started_usec;
    char request_id[REQUEST_ID_MAX + 1];
    char job_id[JOB_ID_MAX + 1];
    char place_id[PLACE_ID_MAX + 1];
} PendingEnqueue;

/* Tied to req; NULL when out of memory. */
PendingEnqueue *pending_enqueue_new(h2o_req_t *req, void *owner);

/* The worker took it: the connection stays open for the answer, even through a drain. */
void pending_enqueue_hold(PendingEnqueue *pe);

/* The worker's outcome is in: returns the request to answer, or NULL when its client went away;
 * either way pe is no longer tied to it (pending_enqueue_free next). */
h2o_req_t *pending_enqueue_untie(PendingEnqueue *pe);

/* Unties (when still tied) and frees; takes NULL. */
void pending_enqueue_free(PendingEnqueue *pe);
