/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "metrics.h"
#include "spool.h"
#include "worker.h"

/* Delivers what the spool holds, in the background: oldest first, at most DELIVERY_MAX at
 * once, one attempt each through the worker client (so behind its circuit breaker: while it is
 * open nothing is tried until its cool-down is over, then one probe), with a backoff after a
 * failure. A 2xx deletes the job; a final refusal (a 4xx other than 429) makes it a dead
 * letter; any other failure leaves it waiting, and the next round starts again from the
 * oldest. */

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
