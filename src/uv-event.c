/* SPDX-License-Identifier: MIT */
#include "uv-event.h"

#include <errno.h>
#include <string.h>
#include <time.h>

static void run_nowait(UvEvent *u)
{
    uv_run(&u->loop, UV_RUN_NOWAIT);
}

static int on_uv_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s, (void)fd, (void)revents;
    run_nowait(userdata);
    return 0;
}

static int on_uv_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)s, (void)usec;
    run_nowait(userdata);
    return 0;
}

/* Without uv_update_time() here uv_backend_timeout() is computed from a stale clock and h2o's
 * timeouts never fire. */
static int on_uv_prepare(sd_event_source *s, void *userdata)
{
    (void)s;
    UvEvent *u = userdata;
    uv_update_time(&u->loop);
    int t = uv_backend_timeout(&u->loop);
    if (t < 0 || !uv_loop_alive(&u->loop))
        return sd_event_source_set_enabled(u->timer, SD_EVENT_OFF);

    uint64_t now;
    int r = sd_event_now(u->event, CLOCK_MONOTONIC, &now);
    if (r < 0)
        return r;
    r = sd_event_source_set_time(u->timer, now + (uint64_t)t * 1000ULL);
    if (r < 0)
        return r;
    return sd_event_source_set_enabled(u->timer, SD_EVENT_ONESHOT);
}

int uv_event_attach(UvEvent *u, sd_event *e)
{
    int r;
    memset(u, 0, sizeof(*u));
    r = uv_loop_init(&u->loop);
    if (r < 0)
        return r; /* libuv errors are negative errno values on Linux */
    u->event = e;

    r = sd_event_add_io(e, &u->io, uv_backend_fd(&u->loop), EPOLLIN, on_uv_io, u);
    if (r < 0)
        goto fail;
    (void)sd_event_source_set_description(u->io, "uv-backend");
    r = sd_event_source_set_prepare(u->io, on_uv_prepare);
    if (r < 0)
        goto fail;

    /* Accuracy 1 µs: 0 would mean sd-event's default slack of 250 ms, and h2o and curl both
     * schedule 0 ms timers. */
    r = sd_event_add_time(e, &u->timer, CLOCK_MONOTONIC, 0, 1, on_uv_timer, u);
    if (r < 0)
        goto fail;
    (void)sd_event_source_set_description(u->timer, "uv-timer");
    r = sd_event_source_set_enabled(u->timer, SD_EVENT_OFF);
    if (r < 0)
        goto fail;
    return 0;

fail:
    uv_event_detach(u);
    return r;
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

void uv_event_detach(UvEvent *u)
{
    u->io = sd_event_source_disable_unref(u->io);
    u->timer = sd_event_source_disable_unref(u->timer);
    if (!u->event)
        return;
    /* Let pending close callbacks run; what is still open then has no owner left. */
    for (int i = 0; i < 16 && uv_run(&u->loop, UV_RUN_NOWAIT) != 0; i++)
        ;
    uv_walk(&u->loop, close_walk_cb, NULL);
    uv_run(&u->loop, UV_RUN_DEFAULT);
    uv_loop_close(&u->loop);
    u->event = NULL;
}
