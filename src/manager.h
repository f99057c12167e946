/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "metrics.h"
#include "server.h"
#include "timefmt.h"
#include "uv-event.h"
#include "worker.h"

/* The context object: owns the loop, the configuration, the HTTP server, the worker client and
 * the counters (metrics). Every callback gets it (or a child) as userdata. */
typedef struct Manager {
    sd_event *event;
    Config config;
    UvEvent uv;
    Server server;
    Worker *worker;
    char *api_token; /* POST /enqueue needs "Authorization: Bearer <it>" when set */

    Metrics metrics;
    uint64_t started_monotonic_usec;
    uint64_t started_realtime_usec;
    unsigned pending; /* enqueue requests waiting for the worker */
    bool stopping;
    /* metrics_status_events() when STATUS= was last sent, and at the last status tick: a tick
     * without jobs is a quiet one */
    uint64_t status_sent_events;
    uint64_t events_at_tick;
    bool memory_released; /* since the last job */
    uint64_t rng[2];      /* xorshift128+, seeded from getrandom(): request ids */
    time_t timestamp_sec;
    char timestamp[RFC3339_MAX]; /* of timestamp_sec */
    char listen_desc[256];

    sd_event_source *sigterm, *sigint;
    sd_event_source *shutdown_timer, *final_timer, *idle_timer, *status_timer;
    sd_event_source *log_flush;
} Manager;

/* Takes ownership of *config (it is zeroed). */
int manager_new(Config *config, Manager **ret);
Manager *manager_free(Manager *m);

/* Attaches listeners (passed or bound); returns how many, or a negative errno. */
int manager_listen(Manager *m);
/* READY=1 and the first STATUS=; runs the loop until drained; returns 0, or a negative errno
 * when the loop failed. */
int manager_run(Manager *m);

/* A fast non-cryptographic random number (request ids are labels, not secrets). */
uint64_t manager_random(Manager *m);

/* Bookkeeping of requests waiting on the worker, so that the drain waits for them. */
void manager_pending_begin(Manager *m);
void manager_pending_end(Manager *m);
