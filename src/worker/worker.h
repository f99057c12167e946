/* SPDX-License-Identifier: MIT */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "breaker.h"
#include "config.h"
#include "inflight.h"
#include "job.h"
#include "mailbox.h"
#include "metrics.h"

typedef enum WorkerOutcome {
    WORKER_OK,          /* 2xx */
    WORKER_HTTP_ERROR,  /* answered with an error status, or garbage: 502 */
    WORKER_UNREACHABLE, /* refused, DNS, …: 503 */
    WORKER_TIMEOUT,     /* no answer in WORKER_TIMEOUT_MS: 504 */
} WorkerOutcome;

typedef struct WorkerResult {
    WorkerOutcome outcome;
    long http_status; /* of the last attempt, 0 if none */
    unsigned attempts;
    unsigned retry_after_sec; /* the worker's Retry-After on the last attempt, 0 if none */
    /* Not final: anything but a 4xx other than 429 (unreachable, timeout, 5xx, 429, 3xx, a bad
     * answer, a TLS failure, cancelled by shutdown). The spool keeps what is not final. */
    bool retryable;
    char reason[320]; /* "worker returned HTTP 500", "worker timeout", … */
} WorkerResult;

typedef void (*worker_done_fn)(const WorkerResult *r, void *userdata);

typedef struct Worker Worker;

#define WORKER_SHARDS 64

/* Calls in flight by job id, of every loop: one shard of them, under its lock. */
typedef struct WorkerShard {
    pthread_mutex_t lock;
    Inflight calls;
} WorkerShard;

/* What the workers of every event loop share: one circuit breaker, one count of the requests
 * waiting on calls, which MAX_PENDING_JOBS bounds, the connection slots, and the calls in flight
 * by job id (a request joins the call for its job on whichever loop it is). */
typedef struct WorkerShared {
    WorkerShard shards[WORKER_SHARDS];
    pthread_mutex_t lock;
    Breaker breaker;      /* under lock */
    char last_error[320]; /* under lock: why the last failed attempt failed, for /ready */
    uint64_t n_answered;  /* under lock: attempts the worker answered (worker_answered) */
    size_t n_waiters;     /* atomic */
    /* WORKER_MAX_CONNECTIONS over every loop: transfers in flight (atomic), and the most */
    unsigned active, max_active;
    /* idle connections each loop's worker keeps open: WORKER_MAX_CONNECTIONS shared out */
    unsigned connections_each;
    unsigned n_loops, n_workers; /* n_workers atomic: a worker's index, for its share */
    /* A connection slot freed (on w's loop): loops with calls queued should worker_pump() */
    void (*on_slot_free)(Worker *w, void *userdata);
    void *userdata;
} WorkerShared;

/* For n_loops loops: WORKER_MAX_CONNECTIONS transfers at once over all of them, each loop its
 * share when there is at least one a loop, else one count for all (each then keeps one idle
 * connection, so up to n_loops connections may be open while one transfer runs). */
void worker_shared_init(WorkerShared *s, const Config *c, unsigned n_loops);
void worker_shared_done(WorkerShared *s);

/* A worker client on loop e (one per event loop, each with its own curl multi and connections
 * to the worker); mailbox is e's, where results of other loops' calls come back. metrics gets
 * the attempt counters and latencies; it, mailbox and shared must outlive the worker. */
int worker_new(sd_event *e, Mailbox *mailbox, const Config *c, Metrics *metrics,
               WorkerShared *shared, Worker **ret);
/* Aborts transfers still running without calling their callbacks. Takes NULL. */
Worker *worker_free(Worker *w);

/* What worker_enqueue did with a request. */
typedef enum WorkerAdmission {
    WORKER_ADMITTED,             /* done will be called */
    WORKER_REFUSED_FULL,         /* MAX_PENDING_JOBS requests already wait on calls */
    WORKER_REFUSED_BREAKER_OPEN, /* the circuit breaker lets no call through now */
    WORKER_REFUSED_ERROR,        /* out of memory, or an id too long: see .error */
} WorkerAdmission;

typedef struct WorkerEnqueueResult {
    WorkerAdmission admission;
    int error; /* WORKER_REFUSED_ERROR: a negative errno */
    /* When refused FULL or BREAKER_OPEN: how long the client should wait before trying again
     * (a second when full; what worker_ready says while the breaker is open). */
    uint64_t retry_after_usec;
    /* WORKER_REFUSED_BREAKER_OPEN: what worker_ready says (the failure that opened the
     * breaker), or NULL; borrowed from the worker until its next call ends. */
    const char *reason;
} WorkerEnqueueResult;

/* Starts forwarding a job, with up to `retries` attempts after the first, or joins the call
 * already in flight for the same job id (every request waiting on it gets its outcome, after
 * the attempts that call was given). Admitted, done is called exactly once, from the event loop,
 * never from inside this call; refused, nothing is started and done is never called. Calls
 * beyond WORKER_MAX_CONNECTIONS wait in the worker's own queue, oldest first, within the same
 * WORKER_TIMEOUT_MS as an attempt. Every attempt reports to the circuit breaker; a retry that
 * meets an open breaker is not made. Every attempt carries the job's traceparent and tracestate
 * (JobRef) of the request that started the call: a request that joins it is not seen. */
WorkerEnqueueResult worker_enqueue(Worker *w, const JobRef *job, unsigned retries,
                                   worker_done_fn done, void *userdata);

/* worker_enqueue for a delivery from the spool: one attempt, and its HTTP error answers (5xx,
 * 429, a bad answer) neither count against the circuit breaker nor close it, probe or not (a
 * neutral probe leaves it half-open): the delivery judges them itself. Its connection failures
 * and timeouts count as any attempt's, unless the job failed before (failed_before): then no
 * failure of it counts, so that one job that makes the worker hang or reset can never open the
 * breaker for everyone by itself (a worker down as a whole fails the clients' calls and the
 * other jobs' too). Its 2xx closes the breaker. A call it joins (a client's for the same job)
 * keeps that call's rules. */
WorkerEnqueueResult worker_deliver(Worker *w, const JobRef *job, bool failed_before,
                                   worker_done_fn done, void *userdata);

/* Whether calls to the worker are let through now. When not, *ret_retry_after_usec says for how
 * long and *ret_reason why (the failure that opened the breaker; a copy in w, valid until the
 * next call on w's loop). */
bool worker_ready(Worker *w, uint64_t *ret_retry_after_usec, const char **ret_reason);
/* How many attempts, of any loop's calls (clients' and deliveries'), the worker has answered as
 * a healthy worker does (a 2xx, a 4xx but 429): it moves when the worker is there. */
uint64_t worker_answered(Worker *w);
BreakerState worker_breaker_state(Worker *w);

/* On w's loop: starts queued calls while connection slots are free (after on_slot_free). */
void worker_pump(Worker *w);

/* Ends every transfer now as WORKER_UNREACHABLE ("cancelled by shutdown"), calling each done. */
void worker_cancel_all(Worker *w);

/* Transfers not yet finished (retries waiting included). */
unsigned worker_in_flight(const Worker *w);
/* Requests waiting on calls (those whose client went away included), the figure that
 * MAX_PENDING_JOBS bounds; and calls waiting for a free connection to the worker. */
size_t worker_pending_jobs(const Worker *w);
unsigned worker_queued_calls(const Worker *w);

/* Frees the pooled easy handles when no call is in flight (they are made again under load);
 * returns how many. The connections to the worker stay open. */
size_t worker_release_idle(Worker *w);

/* Classifies one attempt: pure, for tests. curl_code is a CURLcode; answer_began says whether
 * any byte of the worker's answer had arrived (it tells a header line too long for curl from
 * our own memory running out). */
WorkerOutcome worker_classify(int curl_code, long http_status, bool answer_began,
                              bool *ret_retryable);
/* Whether the attempt failed on the worker's answer itself, too large or malformed (502, and
 * retried), rather than on the connection. */
bool worker_answer_is_bad(int curl_code, bool answer_began);

/* HTTP status for the client after a failed outcome (502, 503, 504). */
int worker_outcome_http_status(WorkerOutcome o);
