/* SPDX-License-Identifier: MIT */
#include "event-timer.h"

#include <time.h>

#define SLACK_FROM_MS 1000
#define SLACK_USEC (250 * 1000ULL)

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)s, (void)usec;
    EventTimer *t = userdata;
    t->fn(t->userdata);
    return 0;
}

static int on_soon(sd_event_source *s, void *userdata)
{
    (void)s;
    EventTimer *t = userdata;
    t->fn(t->userdata);
    return 0;
}

int event_timer_init(EventTimer *t, sd_event *e, const char *description, event_timer_fn fn,
                     void *userdata)
{
    *t = (EventTimer){.event = e, .fn = fn, .userdata = userdata};
    /* accuracy 1 µs, never 0: 0 means sd-event's default slack of 250 ms */
    int r = sd_event_add_time(e, &t->timer, CLOCK_MONOTONIC, 0, 1, on_timer, t);
    if (r < 0)
        return r;
    (void)sd_event_source_set_description(t->timer, description);
    (void)sd_event_source_set_enabled(t->timer, SD_EVENT_OFF);
    r = sd_event_add_defer(e, &t->soon, on_soon, t);
    if (r < 0) {
        event_timer_done(t);
        return r;
    }
    (void)sd_event_source_set_description(t->soon, description);
    (void)sd_event_source_set_enabled(t->soon, SD_EVENT_OFF);
    return 0;
}

void event_timer_done(EventTimer *t)
{
    t->timer = sd_event_source_disable_unref(t->timer);
    t->soon = sd_event_source_disable_unref(t->soon);
}

int event_timer_arm(EventTimer *t, int64_t ms)
{
    int r;
    if (ms < 0) {
        (void)sd_event_source_set_enabled(t->soon, SD_EVENT_OFF);
        return sd_event_source_set_enabled(t->timer, SD_EVENT_OFF);
    }
    if (ms == 0)
        /* The time source may stay armed: an early call is harmless to both libraries, and
         * leaving it spares sd-event a re-arm. */
        return sd_event_source_set_enabled(t->soon, SD_EVENT_ONESHOT);

    uint64_t now;
    r = sd_event_now(t->event, CLOCK_MONOTONIC, &now);
    if (r < 0)
        return r;
    r = sd_event_source_set_time(t->timer, now + (uint64_t)ms * 1000ULL);
    if (r >= 0)
        r = sd_event_source_set_time_accuracy(t->timer, ms >= SLACK_FROM_MS ? SLACK_USEC : 1);
    if (r >= 0)
        r = sd_event_source_set_enabled(t->timer, SD_EVENT_ONESHOT);
    return r;
}

int event_add_timer(sd_event *e, sd_event_source **ret, uint64_t usec, uint64_t accuracy,
                    sd_event_time_handler_t handler, void *userdata, const char *description)
{
    int r = sd_event_add_time_relative(e, ret, CLOCK_MONOTONIC, usec, accuracy, handler, userdata);
    if (r < 0)
        return r;
    (void)sd_event_source_set_enabled(*ret, SD_EVENT_ON);
    (void)sd_event_source_set_description(*ret, description);
    return 0;
}
