/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "loop.h"
#include "macro.h"
#include "spool-delivery.h"
#include "spool.h"

/* The process: the configuration, the event loops (loop.c, THREADS of them; the first runs on
 * the main thread's sd-event, beside the manager's own sources), the spool and its delivery,
 * and what systemd sees: READY=1 once every loop listens, STATUS= summed over the loops, the
 * watchdog pinged only while every loop is alive, the drain on SIGTERM, the idle exit. */
typedef struct Manager {
    sd_event *event;
    Config config;
    char *api_token; /* POST /enqueue needs "Authorization: Bearer <it>" when set */
    LoopShared shared;
    Loop **loops;
    size_t n_loops;
    SpoolDelivery *delivery; /* with the spool (shared.spool) */
    bool socket_activated;

    bool stopping;
    /* the summed metrics_status_events() when STATUS= was last sent */
    uint64_t status_sent_events;
    uint64_t idle_since_usec; /* 0: not idle */
    uint64_t watchdog_usec;   /* 0: no watchdog */
    uint64_t *heartbeats;     /* each loop's, at the last watchdog check */
    char listen_desc[256];

    Mailbox mailbox;         /* the main thread's: the manager's, the first loop's, the spool's */
    MailboxReceiver drained; /* a loop drained (or ended) */
    sd_event_source *sigterm, *sigint;
    sd_event_source *shutdown_timer, *final_timer, *idle_timer, *status_timer, *watchdog_timer;
} Manager;

/* Takes ownership of *config (it is zeroed) and of api_token (NULL: no token), also when it
 * fails. */
int manager_new(Config *config, char *api_token, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Every loop accepts on the listeners (passed or bound); returns how many, or a negative
 * errno. */
int manager_listen(Manager *m);
/* Starts the loops' threads, READY=1 and the first STATUS=; runs the main loop until every
 * loop drained; returns 0, or a negative errno when the loop failed. */
int manager_run(Manager *m);
