/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Each spooled job's own retry schedule and lifetime: a pure function of the job, the failure
 * and the time (CLOCK_REALTIME microseconds, as the spool stores them), for spool-delivery.c.
 *
 * A retryable failure of a job postpones that job alone: exponential backoff with equal jitter
 * (backoff.h), from SPOOL_RETRY_BASE_USEC doubling to SPOOL_RETRY_MAX_SEC, or the worker's
 * Retry-After when that is longer (capped the same). Its lifetime (SPOOL_MAX_AGE_SEC, counted
 * from since_usec) works as Postfix's maximal_queue_lifetime: a job expires when an attempt
 * fails after its lifetime is over, and a retry that would fall after the end is made at the
 * end, so that every job gets one last try then. */

/* The first retry waits 1 to 2 s (equal jitter of 2 s), the next ones twice as long each. */
#define SPOOL_RETRY_BASE_USEC (2 * 1000000ULL)

typedef struct SpoolSchedule {
    uint64_t retry_max_usec; /* SPOOL_RETRY_MAX_SEC */
    uint64_t max_age_usec;   /* SPOOL_MAX_AGE_SEC; 0: jobs never expire */
} SpoolSchedule;

typedef enum SpoolFate {
    SPOOL_FATE_RETRY,   /* tried again at *ret_due_usec */
    SPOOL_FATE_EXPIRED, /* its lifetime is over: a dead letter */
} SpoolFate;

/* When the job's lifetime ends (since_usec + max_age), 0 when it never does. */
uint64_t spool_schedule_end_usec(const SpoolSchedule *s, uint64_t since_usec);

/* A retryable failure that ended at now_usec; attempts counts it (1: the job's first failed
 * attempt). retry_after_usec: the worker's Retry-After, 0 if none; rnd any random value (the
 * jitter). Sets *ret_due_usec (> now_usec) for SPOOL_FATE_RETRY. */
SpoolFate spool_schedule_failure(const SpoolSchedule *s, unsigned attempts, uint64_t since_usec,
                                 uint64_t now_usec, uint64_t retry_after_usec, uint64_t rnd,
                                 uint64_t *ret_due_usec);

/* The dead letter's last error of an expired job: "expired after N attempts: <last error>". */
void spool_schedule_expired_error(char *buf, size_t n, unsigned attempts, const char *last_error);
