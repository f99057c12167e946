/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "metrics.h"
#include "spool.h"
#include "worker.h"

/* Delivers what the spool holds, in the background, and never stalls on one job: it walks the
 * jobs that are due in arrival order (a cursor over their ids, spool_fetch_due), one attempt
 * each through the worker client (worker_deliver: behind the shared circuit breaker, whose
 * cool-down it waits out, but whose count its HTTP error answers do not touch), as many at once
 * as the pace allows (delivery-pace.h: a window the worker's answers set, paused as a whole
 * while the worker fails every job). A 2xx deletes the job; a final refusal (a 4xx other than
 * 429) makes it a dead letter; any other failure postpones that job alone (spool-schedule.h:
 * its own backoff, its lifetime SPOOL_MAX_AGE_SEC, then expired as a dead letter), and the walk
 * goes on at once with the next due job. The walk starts again from the first job when the
 * spool was changed by another process, when a job passed by comes due (a timer at the
 * earliest due time), or after a pause; with nothing due it waits, never spins. */

typedef struct SpoolDelivery SpoolDelivery;

typedef struct SpoolDeliverySettings {
    sd_event *event;
    Spool *spool;
    Worker *worker;
    Metrics *metrics;
    const Config *config;
    /* After each delivery that ended (the drain waits for the worker's calls). */
    void (*on_delivery_end)(void *userdata);
    void *userdata;
} SpoolDeliverySettings;

int spool_delivery_new(const SpoolDeliverySettings *settings, SpoolDelivery **ret);
SpoolDelivery *spool_delivery_free(SpoolDelivery *d);

/* The spool's counts moved (its changed callback): new jobs may wait. */
void spool_delivery_changed(SpoolDelivery *d);
/* The drain: no delivery starts any more; those in flight end as the worker's calls do. */
void spool_delivery_stop(SpoolDelivery *d);
unsigned spool_delivery_in_flight(const SpoolDelivery *d);

/* The most deliveries in flight: half of the first loop's share of WORKER_MAX_CONNECTIONS
 * (the other half stays for the clients' own jobs on that loop), 1 to PACE_MAX_LIMIT. */
unsigned spool_delivery_max(const Config *c);
