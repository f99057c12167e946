/* SPDX-License-Identifier: MIT */
#include "breaker.h"

void breaker_init(Breaker *b, unsigned threshold, uint64_t cooldown_usec)
{
    *b = (Breaker){.threshold = threshold, .cooldown_usec = cooldown_usec};
}

BreakerState breaker_state(const Breaker *b, uint64_t now)
{
    if (b->state == BREAKER_OPEN && now - b->opened_usec >= b->cooldown_usec)
        return BREAKER_HALF_OPEN;
    return b->state;
}

bool breaker_allow(Breaker *b, uint64_t now, bool *ret_probe)
{
    *ret_probe = false;
    switch (breaker_state(b, now)) {
    case BREAKER_CLOSED:
        return true;
    case BREAKER_OPEN:
        return false;
    case BREAKER_HALF_OPEN:
        if (b->probing)
            return false;
        b->state = BREAKER_HALF_OPEN;
        b->probing = true;
        *ret_probe = true;
        return true;
    }
    return true;
}

static void breaker_open(Breaker *b, uint64_t now)
{
    b->state = BREAKER_OPEN;
    b->opened_usec = now;
    b->probing = false;
}

void breaker_record(Breaker *b, bool success, bool probe, uint64_t now)
{
    if (probe)
        b->probing = false;
    if (success) {
        b->state = BREAKER_CLOSED;
        b->failures = 0;
        return;
    }
    if (b->threshold == 0)
        return;
    if (probe) {
        breaker_open(b, now);
        return;
    }
    if (b->state != BREAKER_CLOSED)
        return; /* a call from before it opened: the cool-down stands */
    if (++b->failures >= b->threshold)
        breaker_open(b, now);
}

void breaker_record_neutral(Breaker *b, bool probe)
{
    if (probe)
        b->probing = false;
}

uint64_t breaker_retry_after_usec(const Breaker *b, uint64_t now)
{
    switch (breaker_state(b, now)) {
    case BREAKER_OPEN:
        return b->cooldown_usec - (now - b->opened_usec);
    case BREAKER_HALF_OPEN:
        return b->probing ? 1000000 : 0;
    default:
        return 0;
    }
}

const char *breaker_state_to_string(BreakerState s)
{
    switch (s) {
    case BREAKER_CLOSED:
        return "closed";
    case BREAKER_OPEN:
        return "open";
    case BREAKER_HALF_OPEN:
        return "half-open";
    }
    return "unknown";
}
