/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>

typedef void (*event_timer_fn)(void *userdata);

/* A "call me back in N ms" for libraries that keep one timer at a time (libuv's next timeout,
 * curl's multi timer): a one-shot time source, and a defer source for "as soon as possible". */
typedef struct EventTimer {
    sd_event *event;
    sd_event_source *timer;
    sd_event_source *soon;
    event_timer_fn fn;
    void *userdata;
} EventTimer;

int event_timer_init(EventTimer *t, sd_event *e, const char *description, event_timer_fn fn,
                     void *userdata);
void event_timer_done(EventTimer *t);

/* Calls fn ms milliseconds from the loop's current time; 0 means on the next loop iteration,
 * which costs no system call; a negative ms stops it. Deadlines a second or more away get
 * 250 ms of slack: sd-event then keeps one wake-up time for many such deadlines instead of
 * re-arming its timerfd for each (h2o's and curl's long timeouts move with every request). */
int event_timer_arm(EventTimer *t, int64_t ms);

/* A time source on e, usec from now (CLOCK_MONOTONIC, accuracy as sd-event's), enabled and
 * named: the periodic ones re-arm themselves from their handler. */
int event_add_timer(sd_event *e, sd_event_source **ret, uint64_t usec, uint64_t accuracy,
                    sd_event_time_handler_t handler, void *userdata, const char *description);
