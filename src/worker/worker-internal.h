/* SPDX-License-Identifier: MIT */
#pragma once

/* Inside the worker client (worker.h is its interface): the structs its files share, and what
 * one of them calls in another. worker-client.c: a loop's Worker, its curl multi and its inbox;
 * worker-shared.c: the state every loop's worker shares (breaker, pending count, connection slots,
 * calls in flight by shard); worker-call.c: one call, its attempts and the easy-handle pool;
 * worker-admission.c: worker_enqueue and worker_deliver, a new call or a join. */

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "curl-event.h"
#include "inflight.h"
#include "job.h"
#include "list.h"
#include "mailbox.h"
#include "trace.h"
#include "worker.h"

typedef struct WorkerCall WorkerCall;

/* A request of one loop that joined a call of another: the result comes back through the
 * joiner's inbox, in this, made when it joined (so that nothing is allocated at the end). */
typedef struct RemoteResult RemoteResult;
struct RemoteResult {
    RemoteResult *next;  /* on the call's list of joiners, under its shard's lock */
    MailboxMessage link; /* in the joiner's inbox */
    Worker *worker;      /* the joiner's */
    worker_done_fn done;
    void *userdata;
    WorkerResult result;
};

/* A Retry-After from the worker up to this long is waited for before the next attempt; a longer
 * one ends the call (the client gets it passed on). */
#define RETRY_AFTER_MAX_SEC 5
/* The most Retry-After passed on to the client: a worker's 99999999999 or a date years ahead is
 * a bug or a misconfiguration there, not a reason to keep clients away for a day. */
#define RETRY_AFTER_CLIENT_MAX_SEC 300
/* The most of an answer's head, and of its body, read from the worker: its answers are a status
 * and a few bytes, and one that streams without end must not hold the call. */
#define WORKER_ANSWER_MAX (64 * 1024)
/* Finished easy handles kept for the next calls, their fixed options set (easy_new()). */
#define EASY_POOL_MAX 256

struct Worker {
    sd_event *event;
    const Config *config;
    Metrics *metrics;
    CurlEvent curl;
    WorkerCall *calls, *calls_tail; /* every call, newest first, for teardown */
    unsigned n_calls; /* written with atomic stores: worker_in_flight() from any thread */
    /* Results of calls on other loops that requests of this one joined (RemoteResult), on the
     * loop's mailbox */
    MailboxReceiver inbox;
    size_t n_remote;      /* requests of this loop waiting on other loops' calls */
    WorkerShared *shared; /* the breaker and the pending count of every loop's worker */
    CURLU *url; /* the worker's /enqueue, parsed once rather than by curl at every transfer */
    unsigned n_active; /* transfers curl has: at most max_own, or every loop's shared->active at
                        * most WORKER_MAX_CONNECTIONS */
    unsigned max_own;  /* this loop's share of WORKER_MAX_CONNECTIONS; 0: the shared count */
    WorkerCall *queue_head, *queue_tail; /* calls waiting for a free connection, oldest first */
    unsigned n_queued;                   /* as n_calls */
    size_t n_waiters; /* requests waiting on this worker's calls (also in shared->n_waiters) */
    CURL *easy_pool[EASY_POOL_MAX];
    size_t n_easy_pool;
    char reason[320]; /* worker_ready's copy of shared->last_error */
};

typedef struct Waiter {
    worker_done_fn done;
    void *userdata;
} Waiter;

/* One job on its way to the worker: everything a transfer needs lives here, so that starting
 * one allocates the call and (when the pool is empty) an easy handle, nothing else. */
struct WorkerCall {
    Worker *worker;
    LIST_FIELDS(WorkerCall, calls);
    LIST_FIELDS(WorkerCall, queue); /* while queued */
    InflightEntry entry;            /* key: job_id */
    CURL *easy;                     /* during an attempt only */
    sd_event_source *retry_timer;
    unsigned attempt;
    unsigned retries; /* attempts allowed after the first */
    /* the last attempt's failure, for a retry the breaker stops */
    WorkerOutcome last_outcome;
    long last_status;
    int last_code;
    /* since when the next attempt may start: its time limit counts from here */
    uint64_t ready_usec;
    uint64_t attempt_started_usec;
    unsigned retry_after_sec;
    bool probe;                /* the breaker's half-open probe, until its attempt reports */
    bool delivery;             /* from the spool: its HTTP error answers are neutral (below) */
    bool delivery_again;       /* … of a job that failed before: every failure neutral */
    bool queued;               /* waiting for a free connection */
    bool timed_out_connecting; /* the last attempt's timeout came before any connection */
    bool bad_answer;           /* the last attempt's answer was too large or malformed */
    bool queue_timeout;        /* WORKER_TIMEOUT_MS passed while it waited for a slot */
    Waiter first;
    Waiter *more; /* requests of this loop that joined the call */
    size_t n_more;
    RemoteResult *remote; /* requests of other loops that joined it: under its shard's lock */
    struct curl_slist headers[6]; /* curl's list type, nodes pointing into the buffers below */
    size_t body_len;
    char errbuf[CURL_ERROR_SIZE];
    char place_id[PLACE_ID_MAX + 1];
    char job_id[JOB_ID_MAX + 1];
    char request_id[REQUEST_ID_MAX + 1];
    char idempotency_header[sizeof("Idempotency-Key: ") + JOB_ID_MAX];
    char request_id_header[sizeof("X-Request-Id: ") + REQUEST_ID_MAX];
    /* the first request's trace (a request that joins has no attempt of its own), for every
     * attempt; empty when none. The ids for the logs. */
    char traceparent_header[sizeof("traceparent: ") + TRACEPARENT_LEN];
    char tracestate_header[sizeof("tracestate: ") + TRACESTATE_MAX];
    char trace_id[TRACE_ID_LEN + 1];
    char span_id[SPAN_ID_LEN + 1];
    char body[sizeof("{\"placeId\":\"\",\"jobId\":\"\"}") + PLACE_ID_MAX + JOB_ID_MAX];
};

/* The shared breaker: whether a new call may start (*ret_probe: as its half-open probe). */
bool worker_shared_allow(Worker *w, bool *ret_probe);

/* Reports an attempt (or a probe that ended without one); true when that opened the breaker. */
bool worker_shared_record(Worker *w, bool healthy, bool probe);

/* The shared breaker's state now. */
BreakerState worker_shared_state(Worker *w);

/* Takes a place under MAX_PENDING_JOBS for the whole process: the check and the count in one
 * atomic step, so that two loops cannot both take the last place. false: none is left. */
bool worker_shared_reserve(Worker *w);

/* A place worker_shared_reserve() took and no request waits in. */
void worker_shared_unreserve(Worker *w);

/* n requests of this loop no longer wait (also in the shared count). */
void worker_waiters_sub(Worker *w, size_t n);

/* Calls in flight of every loop by job id, in shards each under its own lock: a request joins
 * the call already in flight for its job on whichever loop. */
WorkerShard *worker_shard_of(Worker *w, const char *job_id);

/* A connection slot, out of WORKER_MAX_CONNECTIONS for every loop. With at least one per loop,
 * each loop has its own share (w->max_own) and no loop can starve another; with fewer than the
 * loops, they take from one count. Sequentially consistent with the queue counts then: a loop
 * that queues a call and then finds a slot free takes it, and a loop that frees a slot and then
 * sees calls queued elsewhere wakes that loop (on_slot_free), so no call waits for a slot that
 * is free. */
bool worker_slot_take(Worker *w);

/* Gives back a slot worker_slot_take() took. */
void worker_slot_release(Worker *w);

/* Frees the call: off the lists and the shard's table, its slot and timer given back; calls no
 * waiter back (worker_call_finish has, or teardown needs none). */
void worker_call_free(WorkerCall *c);

/* Starts the call's next attempt when a connection to the worker is free, else queues it.
 * The service keeps this queue rather than letting curl queue past CURLMOPT_MAX_TOTAL_CONNECTIONS:
 * curl walks its pending list on every handle removal, so its cost grows with the backlog. */
int worker_call_dispatch(WorkerCall *c);

/* Reports a call's outcome that says nothing about the worker as a whole. */
void worker_shared_record_neutral(Worker *w, bool probe);

/* Ends the call and gives its result to every request waiting on it. */
void worker_call_finish(WorkerCall *c, WorkerOutcome o, long status, int code);

/* One attempt ended: classify it, count it, free its connection slot, then retry or finish. */
void worker_on_transfer_done(CURL *easy, CURLcode code, void *userdata);

/* Another request of the call's own loop waits on it. */
int worker_call_add_waiter(WorkerCall *c, worker_done_fn done, void *userdata);
