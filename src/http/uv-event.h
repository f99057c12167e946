/* SPDX-License-Identifier: MIT */
#pragma once

#include <systemd/sd-event.h>
#include <uv.h>

#include "event-timer.h"

/* A libuv loop nested in sd-event: an io source on uv's backend fd and a time source for uv's
 * next timer, both running uv_run(UV_RUN_NOWAIT); the io source's prepare callback re-arms the
 * time source before sd-event sleeps. */
typedef struct UvEvent {
    uv_loop_t loop;
    sd_event_source *io;
    EventTimer timer;
    sd_event *event;
} UvEvent;

int uv_event_attach(UvEvent *u, sd_event *e);

/* Runs uv until every handle is closed (bounded), then frees the sources and the loop. */
void uv_event_detach(UvEvent *u);

/* libuv caches the loop's time and refreshes it only when uv runs: a callback called from
 * sd-event (not from libuv) that touches libuv or h2o (timeouts, timestamps) calls this first,
 * or uv_update_time() on the loop, or it works from a stale clock. The other places that call
 * uv_update_time() point here. */
static inline void uv_event_sync(UvEvent *u)
{
    uv_update_time(&u->loop);
}
