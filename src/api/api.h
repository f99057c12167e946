/* SPDX-License-Identifier: MIT */
#pragma once

#include <h2o.h>
#include <stdint.h>

#include "atomics.h"
#include "config.h"
#include "metrics.h"
#include "spool.h"
#include "worker.h"

/* The API handlers' context, shared by routes.c (the dispatch and the GET routes), enqueue.c
 * (POST /enqueue) and api-answer.c (how they answer). */

/* What the API handlers are given by their owner; all of it must outlive them. */
typedef struct ApiSettings {
    const Config *config;
    const char *api_token; /* POST /enqueue needs "Authorization: Bearer <it>" when set */
    Worker *worker;
    Spool *spool;          /* NULL: no spool */
    SpoolPort *spool_port; /* this loop's way to it */
    /* GET /metrics and STATUS=: every loop's counters summed, and the gauges of the moment */
    void (*collect)(Metrics *ret_sum, MetricsGauges *ret_gauges, void *userdata);
    Metrics *metrics;
    uv_loop_t *loop; /* its clock is refreshed before answering from outside libuv */
    uint64_t started_monotonic_usec, started_realtime_usec;
    /* Called when a POST /enqueue that waited for the worker is done (the drain and the idle
     * exit wait for api_pending() to come back to 0). */
    void (*on_pending_end)(void *userdata);
    /* The bytes the waiting batches hold, every loop's (atomic: batch.h, BATCH_BUDGET_BYTES);
     * NULL: the handler's own count */
    size_t *batch_bytes;
    void *userdata;
} ApiSettings;

/* The handler, after h2o's own (lib/handler/proxy.c): h2o's part first, then what its
 * callbacks need. */
typedef struct ApiHandler {
    h2o_handler_t super;
    ApiSettings s;
    unsigned pending; /* POST /enqueue requests waiting for the worker (or the spool); written
                       * on the loop's thread with atomic stores, read from any */
    uint64_t rng[2];  /* xorshift128+, seeded from getrandom(): request ids */
    size_t own_batch_bytes;
} ApiHandler;

/* A fast non-cryptographic random number, seeded from getrandom() (request ids and the trace
 * ids of new traces are labels, not secrets: random, as W3C Trace Context asks, not secret). */
uint64_t api_random(ApiHandler *h);

static inline unsigned api_pending(const ApiHandler *h)
{
    return relaxed_load_uint(&h->pending);
}
