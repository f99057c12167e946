/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "hash.h"
#include "log.h"
#include "macro.h"
#include "worker-internal.h"

void worker_shared_init(WorkerShared *s, const Config *c, unsigned n_loops)
{
    *s = (WorkerShared){0};
    for (size_t i = 0; i < WORKER_SHARDS; i++)
        pthread_mutex_init(&s->shards[i].lock, NULL);
    n_loops = n_loops ? n_loops : 1;
    s->max_active = c->worker_max_connections;
    s->n_loops = n_loops;
    s->connections_each = c->worker_max_connections / n_loops;
    if (s->connections_each == 0)
        s->connections_each = 1;
    pthread_mutex_init(&s->lock, NULL);
    breaker_init(&s->breaker, c->breaker_threshold, (uint64_t)c->breaker_cooldown_sec * 1000000ULL);
}

void worker_shared_done(WorkerShared *s)
{
    for (size_t i = 0; i < WORKER_SHARDS; i++) {
        inflight_done(&s->shards[i].calls);
        pthread_mutex_destroy(&s->shards[i].lock);
    }
    pthread_mutex_destroy(&s->lock);
}

bool worker_shared_allow(Worker *w, bool *ret_probe)
{
    pthread_mutex_lock(&w->shared->lock);
    bool ok = breaker_allow(&w->shared->breaker, clock_usec(CLOCK_MONOTONIC), ret_probe);
    pthread_mutex_unlock(&w->shared->lock);
    return ok;
}

bool worker_shared_record(Worker *w, bool healthy, bool probe)
{
    pthread_mutex_lock(&w->shared->lock);
    Breaker *b = &w->shared->breaker;
    BreakerState before = b->state;
    breaker_record(b, healthy, probe, clock_usec(CLOCK_MONOTONIC));
    if (healthy)
        w->shared->n_answered++;
    bool opened = b->state == BREAKER_OPEN && before != BREAKER_OPEN;
    pthread_mutex_unlock(&w->shared->lock);
    return opened;
}

BreakerState worker_shared_state(Worker *w)
{
    pthread_mutex_lock(&w->shared->lock);
    BreakerState st = breaker_state(&w->shared->breaker, clock_usec(CLOCK_MONOTONIC));
    pthread_mutex_unlock(&w->shared->lock);
    return st;
}

bool worker_shared_reserve(Worker *w)
{
    return relaxed_inc_below_size(&w->shared->n_waiters, w->config->max_pending_jobs);
}

void worker_shared_unreserve(Worker *w)
{
    relaxed_sub_size(&w->shared->n_waiters, 1);
}

void worker_waiters_sub(Worker *w, size_t n)
{
    w->n_waiters -= n;
    relaxed_sub_size(&w->shared->n_waiters, n);
}

WorkerShard *worker_shard_of(Worker *w, const char *job_id)
{
    static_assert(WORKER_SHARDS == 64, "the shard is the hash's 6 high bits");
    return &w->shared->shards[hash_string(job_id) >> (64 - 6)];
}

bool worker_slot_take(Worker *w)
{
    if (w->max_own) {
        if (w->n_active >= w->max_own)
            return false;
        w->n_active++;
        return true;
    }
    if (slot_take_uint(&w->shared->active) <= w->shared->max_active) {
        w->n_active++;
        return true;
    }
    slot_give_uint(&w->shared->active);
    return false;
}

void worker_slot_release(Worker *w)
{
    w->n_active--;
    if (w->max_own)
        return; /* the loop's own queue takes it (worker_pump) */
    slot_give_uint(&w->shared->active);
    if (w->shared->on_slot_free)
        w->shared->on_slot_free(w, w->shared->userdata);
}

void worker_shared_record_neutral(Worker *w, bool probe)
{
    pthread_mutex_lock(&w->shared->lock);
    breaker_record_neutral(&w->shared->breaker, probe);
    pthread_mutex_unlock(&w->shared->lock);
}

bool worker_ready(Worker *w, uint64_t *ret_retry_after_usec, const char **ret_reason)
{
    uint64_t now = clock_usec(CLOCK_MONOTONIC);
    pthread_mutex_lock(&w->shared->lock);
    const Breaker *b = &w->shared->breaker;
    bool ready = breaker_state(b, now) != BREAKER_OPEN;
    *ret_retry_after_usec = ready ? 0 : breaker_retry_after_usec(b, now);
    if (!ready)
        memcpy(w->reason, w->shared->last_error, sizeof(w->reason));
    pthread_mutex_unlock(&w->shared->lock);
    *ret_reason = ready ? NULL : w->reason;
    return ready;
}

uint64_t worker_answered(Worker *w)
{
    pthread_mutex_lock(&w->shared->lock);
    uint64_t n = w->shared->n_answered;
    pthread_mutex_unlock(&w->shared->lock);
    return n;
}

BreakerState worker_breaker_state(Worker *w)
{
    return worker_shared_state(w);
}
