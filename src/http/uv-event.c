/* SPDX-License-Identifier: MIT */
#include "uv-event.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "macro.h"

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

static void on_uv_timer(void *userdata)
{
    run_nowait(userdata);
}

/* The clock first (uv-event.h), or uv_backend_timeout() is computed from a stale one and h2o's
 * timeouts never fire. */
static int on_uv_prepare(sd_event_source *s, void *userdata)
{
    (void)s;
    UvEvent *u = userdata;
    uv_update_time(&u->loop);
    int t = uv_backend_timeout(&u->loop);
    return event_timer_arm(&u->timer, uv_loop_alive(&u->loop) ? t : -1);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(UvEvent *, uv_event_detach);

int uv_event_attach(UvEvent *u, sd_event *e)
{
    assert(u);
    assert(e);

    int r;
    memset(u, 0, sizeof(*u));
    r = uv_loop_init(&u->loop);
    if (r < 0)
        return r; /* libuv errors are negative errno values on Linux */
    u->event = e;
    _cleanup_(uv_event_detachp) UvEvent *unwind = u;

    /* Edge-triggered: each new event inside libuv's epoll is a new edge on its fd, and one
     * uv_run() takes up to 48 × 1024 events (MAX_CONNECTIONS stays below that), so nothing
     * is left behind; level-triggered, every epoll_wait(2) of sd-event would walk libuv's whole
     * ready list again. */
    r = sd_event_add_io(e, &u->io, uv_backend_fd(&u->loop), EPOLLIN | EPOLLET, on_uv_io, u);
    if (r < 0)
        return r;
    (void)sd_event_source_set_description(u->io, "uv-backend");
    r = sd_event_source_set_prepare(u->io, on_uv_prepare);
    if (r < 0)
        return r;

    r = event_timer_init(&u->timer, e, "uv-timer", on_uv_timer, u);
    if (r < 0)
        return r;
    TAKE_PTR(unwind);
    return 0;
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
    event_timer_done(&u->timer);
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
