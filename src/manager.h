/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "metrics.h"
#include "routes.h"
#include "server.h"
#include "spool-delivery.h"
#include "spool.h"
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
    Spool *spool;            /* NULL: no spool (SPOOL_DIR) */
    SpoolDelivery *delivery; /* with the spool */
    ApiHandler *api;         /* the HTTP handlers (routes.c), owned by h2o's configuration */
    char *api_token;         /* POST /enqueue needs "Authorization: Bearer <it>" when set */

    Metrics metrics;
    uint64_t started_monotonic_usec;
    uint64_t started_realtime_usec;
    bool stopping;
    /* metrics_status_events() when STATUS= was last sent, and at the last status tick: a tick
     * without jobs is a quiet one */
    uint64_t status_sent_events;
    uint64_t events_at_tick;
    bool memory_released; /* since the last job */
    char listen_desc[256];

    sd_event_source *sigterm, *sigint;
    sd_event_source *shutdown_timer, *final_timer, *idle_timer, *status_timer;
    sd_event_source *log_flush;
} Manager;

/* Takes ownership of *config (it is zeroed) and of api_token (NULL: no token), also when it
 * fails. */
int manager_new(Config *config, char *api_token, Manager **ret);
Manager *manager_free(Manager *m);

/* Attaches listeners (passed or bound); returns how many, or a negative errno. */
int manager_listen(Manager *m);
/* READY=1 and the first STATUS=; runs the loop until drained; returns 0, or a negative errno
 * when the loop failed. */
int manager_run(Manager *m);

/* POST /enqueue requests waiting for the worker: the drain waits for them. */
static inline unsigned manager_pending(const Manager *m)
{
    return api_pending(m->api);
}
