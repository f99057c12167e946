/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

typedef enum BreakerState {
    BREAKER_CLOSED,    /* calls go through */
    BREAKER_OPEN,      /* calls fail fast until the cool-down has passed */
    BREAKER_HALF_OPEN, /* cool-down over: one probe call goes through, the others fail fast */
} BreakerState;

/* A circuit breaker over the worker's health: pure state, time passed in. */
typedef struct Breaker {
    unsigned threshold; /* consecutive failures that open it; 0: never opens */
    uint64_t cooldown_usec;
    BreakerState state;
    unsigned failures;
    uint64_t opened_usec;
    bool probing; /* the half-open probe is in flight */
} Breaker;

void breaker_init(Breaker *b, unsigned threshold, uint64_t cooldown_usec);

/* Whether a call may start at `now`. After the cool-down the first caller becomes the probe
 * (*ret_probe true); it must report with breaker_record(…, probe = true). */
bool breaker_allow(Breaker *b, uint64_t now, bool *ret_probe);

/* The outcome of a call: success closes the breaker; `threshold` failures in a row, or a failed
 * probe, open it. */
void breaker_record(Breaker *b, bool success, bool probe, uint64_t now);

/* A call whose outcome says nothing about the worker as a whole (a delivery from the spool
 * answered with an HTTP error: that job's trouble, judged by the delivery itself): neither a
 * failure nor a success. A neutral probe leaves the breaker half-open: the next call is the
 * probe. */
void breaker_record_neutral(Breaker *b, bool probe);

/* The state as callers see it at `now` (open with the cool-down over reads as half-open). */
BreakerState breaker_state(const Breaker *b, uint64_t now);

/* How long until a call may be tried again; 0 when it may now. */
uint64_t breaker_retry_after_usec(const Breaker *b, uint64_t now);

const char *breaker_state_to_string(BreakerState s);
