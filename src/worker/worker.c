/* SPDX-License-Identifier: MIT */
#include "worker.h"

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
#include "curl-event.h"
#include "hash.h"
#include "inflight.h"
#include "job.h"
#include "list.h"
#include "log.h"
#include "macro.h"

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

static bool shared_allow(Worker *w, bool *ret_probe)
{
    pthread_mutex_lock(&w->shared->lock);
    bool ok = breaker_allow(&w->shared->breaker, clock_usec(CLOCK_MONOTONIC), ret_probe);
    pthread_mutex_unlock(&w->shared->lock);
    return ok;
}

/* Reports an attempt (or a probe that ended without one); true when that opened the breaker. */
static bool shared_record(Worker *w, bool healthy, bool probe)
{
    pthread_mutex_lock(&w->shared->lock);
    Breaker *b = &w->shared->breaker;
    BreakerState before = b->state;
    breaker_record(b, healthy, probe, clock_usec(CLOCK_MONOTONIC));
    bool opened = b->state == BREAKER_OPEN && before != BREAKER_OPEN;
    pthread_mutex_unlock(&w->shared->lock);
    return opened;
}

static BreakerState shared_state(Worker *w)
{
    pthread_mutex_lock(&w->shared->lock);
    BreakerState st = breaker_state(&w->shared->breaker, clock_usec(CLOCK_MONOTONIC));
    pthread_mutex_unlock(&w->shared->lock);
    return st;
}

/* Takes a place under MAX_PENDING_JOBS for the whole process: the check and the count in one
 * atomic step, so that two loops cannot both take the last place. false: none is left. */
static bool shared_reserve(Worker *w)
{
    size_t n = __atomic_load_n(&w->shared->n_waiters, __ATOMIC_RELAXED);
    do
        if (n >= w->config->max_pending_jobs)
            return false;
    while (!__atomic_compare_exchange_n(&w->shared->n_waiters, &n, n + 1, true, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED));
    return true;
}

/* A place shared_reserve() took and no request waits in. */
static void shared_unreserve(Worker *w)
{
    __atomic_sub_fetch(&w->shared->n_waiters, 1, __ATOMIC_RELAXED);
}

static void waiters_sub(Worker *w, size_t n)
{
    w->n_waiters -= n;
    __atomic_sub_fetch(&w->shared->n_waiters, n, __ATOMIC_RELAXED);
}

/* Calls in flight of every loop by job id, in shards each under its own lock: a request joins
 * the call already in flight for its job on whichever loop. */
static WorkerShard *shard_of(Worker *w, const char *job_id)
{
    static_assert(WORKER_SHARDS == 64, "the shard is the hash's 6 high bits");
    return &w->shared->shards[hash_string(job_id) >> (64 - 6)];
}

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
    bool queued;               /* waiting for a free connection */
    bool timed_out_connecting; /* the last attempt's timeout came before any connection */
    bool bad_answer;           /* the last attempt's answer was too large or malformed */
    bool queue_timeout;        /* WORKER_TIMEOUT_MS passed while it waited for a slot */
    Waiter first;
    Waiter *more; /* requests of this loop that joined the call */
    size_t n_more;
    RemoteResult *remote; /* requests of other loops that joined it: under its shard's lock */
    struct curl_slist headers[4]; /* curl's list type, nodes pointing into the buffers below */
    size_t body_len;
    char errbuf[CURL_ERROR_SIZE];
    char place_id[PLACE_ID_MAX + 1];
    char job_id[JOB_ID_MAX + 1];
    char request_id[REQUEST_ID_MAX + 1];
    char idempotency_header[sizeof("Idempotency-Key: ") + JOB_ID_MAX];
    char request_id_header[sizeof("X-Request-Id: ") + REQUEST_ID_MAX];
    char body[sizeof("{\"placeId\":\"\",\"jobId\":\"\"}") + PLACE_ID_MAX + JOB_ID_MAX];
};

bool worker_answer_is_bad(int curl_code, bool answer_began)
{
    switch (curl_code) {
    case CURLE_WRITE_ERROR:       /* our own bound on the answer (answer_head, answer_body) */
    case CURLE_FILESIZE_EXCEEDED: /* a Content-Length over that bound (CURLOPT_MAXFILESIZE) */
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_HTTP2: /* HTTP/1.1 is asked for; should the worker speak HTTP/2 */
    case CURLE_HTTP2_STREAM:
        return true;
    case CURLE_OUT_OF_MEMORY:
        /* Also what curl says when one header line is over its 100 KiB buffer: once the answer
         * has begun, that is by far the likelier. Our own memory running out then looks like a
         * bad answer, and is retried: harmless. */
        return answer_began;
    default:
        return false;
    }
}

WorkerOutcome worker_classify(int curl_code, long http_status, bool answer_began,
                              bool *ret_retryable)
{
    if (worker_answer_is_bad(curl_code, answer_began)) {
        *ret_retryable = true;
        return WORKER_HTTP_ERROR;
    }
    switch (curl_code) {
    case CURLE_OK:
        if (http_status >= 200 && http_status < 300) {
            *ret_retryable = false;
            return WORKER_OK;
        }
        *ret_retryable = http_status == 429 || http_status >= 500;
        return WORKER_HTTP_ERROR;
    case CURLE_OPERATION_TIMEDOUT:
        *ret_retryable = true;
        return WORKER_TIMEOUT;
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_SSL_CONNECT_ERROR:
        *ret_retryable = true;
        return WORKER_UNREACHABLE;
    case CURLE_GOT_NOTHING:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL: /* an answer that is not HTTP/1.x */
        *ret_retryable = true;
        return WORKER_HTTP_ERROR;
    default:
        *ret_retryable = false;
        return WORKER_UNREACHABLE;
    }
}

int worker_outcome_http_status(WorkerOutcome o)
{
    switch (o) {
    case WORKER_OK:
        return 202;
    case WORKER_HTTP_ERROR:
        return 502;
    case WORKER_UNREACHABLE:
        return 503;
    case WORKER_TIMEOUT:
        return 504;
    }
    return 502;
}

/* The answer's head, a line at a time (userdata: the easy handle). Returning less than given
 * makes curl end the transfer with CURLE_WRITE_ERROR. */
static size_t answer_head(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    long head = 0;
    (void)curl_easy_getinfo(userdata, CURLINFO_HEADER_SIZE, &head);
    return head > WORKER_ANSWER_MAX ? 0 : size * nmemb;
}

/* Only the status matters: the body is read and dropped, up to the bound (the count curl keeps
 * runs one read behind in a chunked body: a few KiB of slack). */
static size_t answer_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr;
    curl_off_t body = 0;
    (void)curl_easy_getinfo(userdata, CURLINFO_SIZE_DOWNLOAD_T, &body);
    return body > WORKER_ANSWER_MAX ? 0 : size * nmemb;
}

/* An easy handle with the options that are the same for every call; call_setup() sets the rest.
 * No curl_easy_reset() between calls, so these are set once per handle. */
static CURL *easy_new(Worker *w)
{
    const Config *cfg = w->config;
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    if (curl_easy_setopt(e, CURLOPT_CURLU, w->url) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->worker_timeout_ms) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_USERAGENT, "argus-orchestrator") != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, answer_head) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HEADERDATA, e) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, answer_body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_WRITEDATA, e) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)WORKER_ANSWER_MAX) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L) != CURLE_OK ||
        /* The worker's answers and our bodies are small; curl's defaults (16 KiB down, 64 KiB
         * up) would be kept per pooled handle. */
        curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 4096L) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L) != CURLE_OK) {
        curl_easy_cleanup(e);
        return NULL;
    }
    return e;
}

/* The call's pointers (body, headers, error buffer, private) stay set on a pooled handle; curl
 * reads them only during a transfer, and call_setup() replaces them before the next one. */
static void easy_release(Worker *w, CURL *easy)
{
    if (!easy)
        return;
    if (w->n_easy_pool < EASY_POOL_MAX)
        w->easy_pool[w->n_easy_pool++] = easy;
    else
        curl_easy_cleanup(easy);
}

static void queue_unlink(Worker *w, WorkerCall *c)
{
    LIST_REMOVE(queue, w->queue_head, w->queue_tail, c);
    c->queued = false;
    __atomic_store_n(&w->n_queued, w->n_queued - 1, __ATOMIC_RELAXED);
}

static void queue_push(Worker *w, WorkerCall *c)
{
    LIST_APPEND(queue, w->queue_head, w->queue_tail, c);
    c->queued = true;
    __atomic_store_n(&w->n_queued, w->n_queued + 1, __ATOMIC_RELAXED);
}

/* A connection slot, out of WORKER_MAX_CONNECTIONS for every loop. With at least one per loop,
 * each loop has its own share (w->max_own) and no loop can starve another; with fewer than the
 * loops, they take from one count. Sequentially consistent with the queue counts then: a loop
 * that queues a call and then finds a slot free takes it, and a loop that frees a slot and then
 * sees calls queued elsewhere wakes that loop (on_slot_free), so no call waits for a slot that
 * is free. */
static bool slot_take(Worker *w)
{
    if (w->max_own) {
        if (w->n_active >= w->max_own)
            return false;
        w->n_active++;
        return true;
    }
    if (__atomic_add_fetch(&w->shared->active, 1, __ATOMIC_SEQ_CST) <= w->shared->max_active) {
        w->n_active++;
        return true;
    }
    __atomic_sub_fetch(&w->shared->active, 1, __ATOMIC_SEQ_CST);
    return false;
}

static void slot_release(Worker *w)
{
    w->n_active--;
    if (w->max_own)
        return; /* the loop's own queue takes it (worker_pump) */
    __atomic_sub_fetch(&w->shared->active, 1, __ATOMIC_SEQ_CST);
    if (w->shared->on_slot_free)
        w->shared->on_slot_free(w, w->shared->userdata);
}

/* Ends the easy handle's part in an attempt: out of curl (a no-op once curl-event took it out
 * for a finished transfer), back to the pool, its connection slot free. */
static void call_release_easy(WorkerCall *c)
{
    Worker *w = c->worker;
    if (!c->easy)
        return;
    curl_event_remove(&w->curl, c->easy);
    easy_release(w, c->easy);
    c->easy = NULL;
    slot_release(w);
}

static void call_free(WorkerCall *c)
{
    if (!c)
        return;
    Worker *w = c->worker;
    if (c->probe) /* ended before its attempt could report (shutdown, no memory) */
        (void)shared_record(w, false, true);
    LIST_REMOVE(calls, w->calls, w->calls_tail, c);
    __atomic_store_n(&w->n_calls, w->n_calls - 1, __ATOMIC_RELAXED);
    waiters_sub(w, 1 + c->n_more);
    if (c->entry.key) {
        WorkerShard *sh = shard_of(w, c->job_id);
        pthread_mutex_lock(&sh->lock);
        inflight_remove(&sh->calls, &c->entry);
        RemoteResult *remote = c->remote;
        c->remote = NULL;
        pthread_mutex_unlock(&sh->lock);
        /* Only at teardown do calls end without a result: their joiners' loops end too. */
        for (RemoteResult *x = remote, *next; x; x = next) {
            next = x->next;
            free(x);
        }
    }
    if (c->queued)
        queue_unlink(w, c);
    free(c->more);
    call_release_easy(c);
    sd_event_source_disable_unref(c->retry_timer);
    free(c);
}

static int call_setup(WorkerCall *c, uint64_t now);
static void call_finish(WorkerCall *c, WorkerOutcome o, long status, int code);

/* One attempt on a connection slot already taken (slot_take): an easy handle from the pool, the
 * call's request on it, and a time limit that counts the time the call waited for the slot.
 * On failure the slot is given back. */
static int call_start_attempt(WorkerCall *c, uint64_t now)
{
    Worker *w = c->worker;
    CURL *easy = w->n_easy_pool > 0 ? w->easy_pool[--w->n_easy_pool] : easy_new(w);
    if (easy) {
        c->easy = easy;
        if (call_setup(c, now) == 0) {
            c->attempt++;
            c->attempt_started_usec = now;
            c->errbuf[0] = '\0';
            if (curl_event_add(&w->curl, easy) == 0)
                return 0;
        }
        easy_release(w, easy);
        c->easy = NULL;
    }
    slot_release(w);
    return -ENOMEM;
}

/* Starts the call's next attempt when a connection to the worker is free, else queues it.
 * The service keeps this queue rather than letting curl queue past CURLMOPT_MAX_TOTAL_CONNECTIONS:
 * curl walks its pending list on every handle removal, so its cost grows with the backlog. */
static int call_dispatch(WorkerCall *c)
{
    Worker *w = c->worker;
    c->ready_usec = clock_usec(CLOCK_MONOTONIC);
    if (!w->queue_head && slot_take(w))
        return call_start_attempt(c, c->ready_usec);
    queue_push(w, c);
    worker_pump(w); /* a slot freed on another loop meanwhile */
    return 0;
}

/* Hands free connection slots to the oldest queued calls. A queued call needs no timer of its
 * own: every call holding a slot became ready before it and has the same time limit, so a slot
 * frees before its limit is over, and its attempt gets what is left of it. */
void worker_pump(Worker *w)
{
    uint64_t now = clock_usec(CLOCK_MONOTONIC);
    while (w->queue_head && slot_take(w)) {
        WorkerCall *c = w->queue_head;
        queue_unlink(w, c);
        if (now - c->ready_usec >= (uint64_t)w->config->worker_timeout_ms * 1000) {
            /* Its whole time went waiting for a slot (other loops held them): a timeout, but
             * not the worker's, so no attempt and nothing for the breaker. */
            slot_release(w);
            c->queue_timeout = true;
            call_finish(c, WORKER_TIMEOUT, 0, CURLE_OPERATION_TIMEDOUT);
            continue;
        }
        if (call_start_attempt(c, now) < 0)
            call_finish(c, WORKER_UNREACHABLE, 0, CURLE_OUT_OF_MEMORY);
    }
}

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata);

/* The words of the result: what the worker answered, or what went wrong on the way. */
static void call_describe(const WorkerCall *c, WorkerOutcome o, long status, int code, char *buf,
                          size_t n)
{
    switch (o) {
    case WORKER_OK:
        snprintf(buf, n, "worker returned HTTP %ld", status);
        break;
    case WORKER_HTTP_ERROR:
        if (code == CURLE_OK)
            snprintf(buf, n, "worker returned HTTP %ld", status);
        else
            snprintf(buf, n, "%s: %s",
                     c->bad_answer ? "worker answer too large or malformed"
                                   : "worker connection failed",
                     c->errbuf[0] ? c->errbuf : curl_easy_strerror(code));
        break;
    case WORKER_UNREACHABLE:
        snprintf(buf, n, "worker unreachable: %s",
                 c->errbuf[0] ? c->errbuf : curl_easy_strerror(code));
        break;
    case WORKER_TIMEOUT:
        snprintf(buf, n,
                 c->queue_timeout          ? "no free connection to the worker in time"
                 : c->timed_out_connecting ? "worker timeout while connecting"
                                           : "worker timeout");
        break;
    }
}

/* Reports a call's outcome that says nothing about the worker as a whole. */
static void shared_record_neutral(Worker *w, bool probe)
{
    pthread_mutex_lock(&w->shared->lock);
    breaker_record_neutral(&w->shared->breaker, probe);
    pthread_mutex_unlock(&w->shared->lock);
}

/* One attempt's outcome for the breaker: every attempt counts, so a worker that hangs opens it
 * after BREAKER_THRESHOLD timeouts. The worker is healthy when it answers, even a 4xx;
 * unreachable, timing out, 5xx, 429 and a bad answer count against it. But a delivery's HTTP
 * error answer (5xx, 429, a redirect, a bad answer) is neutral, probe or not: the delivery
 * judges those itself, per job, or (several jobs in a row) as the worker's, so that one job
 * failing never keeps the breaker open for everyone (its connection failures and timeouts
 * count as any attempt's). */
static void attempt_record_health(WorkerCall *c, WorkerOutcome o, long status, int code)
{
    Worker *w = c->worker;
    bool healthy = o == WORKER_OK ||
                   (o == WORKER_HTTP_ERROR && status >= 400 && status < 500 && status != 429);
    if (!healthy && c->delivery && o == WORKER_HTTP_ERROR && (code == CURLE_OK || c->bad_answer)) {
        shared_record_neutral(w, c->probe);
        c->probe = false;
        return;
    }
    if (!healthy) {
        char why[sizeof(w->shared->last_error)];
        call_describe(c, o, status, code, why, sizeof(why));
        pthread_mutex_lock(&w->shared->lock);
        memcpy(w->shared->last_error, why, sizeof(why));
        pthread_mutex_unlock(&w->shared->lock);
    }
    if (shared_record(w, healthy, c->probe))
        metrics_inc(&w->metrics->breaker_opened);
    c->probe = false;
}

/* On the joiner's loop: the result of another loop's call one of its requests joined. */
static void on_inbox(MailboxReceiver *r, MailboxMessage *m)
{
    Worker *w = container_of(r, Worker, inbox);
    RemoteResult *x = container_of(m, RemoteResult, link);
    w->n_remote--;
    waiters_sub(w, 1);
    x->done(&x->result, x->userdata);
    free(x);
}

/* Ends the call and gives its result to every request waiting on it. */
static void call_finish(WorkerCall *c, WorkerOutcome o, long status, int code)
{
    /* Only a 4xx (not 429) is the worker's final word on the job; anything else (a redirect, a
     * TLS failure, no answer) may go better later, so the spool keeps it. */
    bool final = o == WORKER_HTTP_ERROR && status >= 400 && status < 500 && status != 429;
    WorkerResult r = {
        .outcome = o,
        .http_status = status,
        .attempts = c->attempt,
        .retry_after_sec = c->retry_after_sec,
        .retryable = o != WORKER_OK && !final,
    };
    call_describe(c, o, status, code, r.reason, sizeof(r.reason));

    WorkerShard *sh = shard_of(c->worker, c->job_id);
    pthread_mutex_lock(&sh->lock);
    inflight_remove(&sh->calls, &c->entry);
    c->entry.key = NULL;
    RemoteResult *remote = c->remote;
    c->remote = NULL;
    pthread_mutex_unlock(&sh->lock);

    Waiter first = c->first;
    Waiter *more = c->more;
    size_t n = c->n_more;
    c->more = NULL;
    call_free(c); /* first: a callback that enqueues the same job starts a new call */
    for (RemoteResult *x = remote, *next; x; x = next) {
        next = x->next;
        x->result = r;
        mailbox_post(&x->worker->inbox, &x->link); /* to the joiner's loop */
    }
    first.done(&r, first.userdata);
    for (size_t i = 0; i < n; i++)
        more[i].done(&r, more[i].userdata);
    free(more);
}

/* Whether any of the worker's answer arrived: curl's time to the first byte read. */
static bool attempt_answer_began(CURL *easy, CURLcode code)
{
    curl_off_t first_byte_usec = 0;
    return code != CURLE_OK &&
           curl_easy_getinfo(easy, CURLINFO_STARTTRANSFER_TIME_T, &first_byte_usec) == CURLE_OK &&
           first_byte_usec > 0;
}

/* Puts into the call's error buffer what the worker or the network did, where curl's own words
 * would mislead. */
static void attempt_explain_failure(WorkerCall *c, CURL *easy, CURLcode code)
{
    long os_errno = 0;
    if (code == CURLE_COULDNT_CONNECT && /* fresh then, even on a reused handle */
        curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
        (os_errno == EPERM || os_errno == EACCES))
        /* A rule refused connect() at once (a prohibit route, a security module): say so. */
        snprintf(c->errbuf, sizeof(c->errbuf),
                 "connection not permitted by a local firewall or routing rule");
    /* curl's words for these name its own side ("Failure writing output to destination",
     * "Out of memory"): say what the worker did. */
    if (code == CURLE_WRITE_ERROR || code == CURLE_FILESIZE_EXCEEDED) {
        long head = 0;
        (void)curl_easy_getinfo(easy, CURLINFO_HEADER_SIZE, &head);
        snprintf(c->errbuf, sizeof(c->errbuf), "%s over %d KiB",
                 head > WORKER_ANSWER_MAX ? "head" : "body", WORKER_ANSWER_MAX / 1024);
    } else if (c->bad_answer && code == CURLE_OUT_OF_MEMORY)
        snprintf(c->errbuf, sizeof(c->errbuf), "a header line over curl's 100 KiB limit");
}

/* Nothing accepted the connection in time: the host is down, or its packets are dropped, as
 * IPAddressDeny= of the shipped unit does for an address not in IPAddressAllow=. */
static bool attempt_timed_out_connecting(CURL *easy, WorkerOutcome o)
{
    curl_off_t connect_usec = -1;
    return o == WORKER_TIMEOUT &&
           curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect_usec) == CURLE_OK &&
           connect_usec == 0;
}

static void attempt_count(Worker *w, const WorkerCall *c, WorkerOutcome o)
{
    static const MetricsAttempt attempt_of[] = {
        [WORKER_OK] = ATTEMPT_OK,
        [WORKER_HTTP_ERROR] = ATTEMPT_HTTP_ERROR,
        [WORKER_UNREACHABLE] = ATTEMPT_UNREACHABLE,
        [WORKER_TIMEOUT] = ATTEMPT_TIMEOUT,
    };
    metrics_inc(&w->metrics->attempts[attempt_of[o]]);
    metrics_observe(&w->metrics->worker_latency,
                    clock_usec(CLOCK_MONOTONIC) - c->attempt_started_usec);
}

/* The worker's Retry-After on a 429 or 503, capped at RETRY_AFTER_CLIENT_MAX_SEC; 0 if none. */
static unsigned attempt_retry_after_sec(CURL *easy, CURLcode code, long status)
{
    curl_off_t retry_after = 0;
    if (code == CURLE_OK && (status == 429 || status == 503) &&
        curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
        return retry_after > RETRY_AFTER_CLIENT_MAX_SEC ? RETRY_AFTER_CLIENT_MAX_SEC
                                                        : (unsigned)retry_after;
    return 0;
}

/* Logs the failed attempt and arms the timer of the next one, after the backoff or the worker's
 * Retry-After, whichever is longer. Returns false when no timer could be armed. */
static bool call_schedule_retry(WorkerCall *c, long status, CURLcode code)
{
    Worker *w = c->worker;
    uint64_t rnd = 0;
    (void)getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK);
    uint64_t delay = backoff_delay_usec(c->attempt, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, rnd);
    if (delay < c->retry_after_sec * 1000000ULL)
        delay = c->retry_after_sec * 1000000ULL;
    log_warn(MSGID_WORKER_RETRY,
             LOG_FIELDS(.place_id = c->place_id, .job_id = c->job_id,
                        .request_id = c->request_id[0] ? c->request_id : NULL,
                        .worker_url = w->config->worker_enqueue, .worker_status = (int)status,
                        .attempt = (int)c->attempt,
                        .error = code == CURLE_OK ? NULL
                                 : c->errbuf[0]   ? c->errbuf
                                                  : curl_easy_strerror(code)),
             "worker attempt %u failed, retrying in %llums", c->attempt,
             (unsigned long long)(delay / 1000));
    int r = sd_event_add_time_relative(w->event, &c->retry_timer, CLOCK_MONOTONIC, delay, 1000,
                                       on_retry_timer, c);
    if (r < 0)
        return false;
    (void)sd_event_source_set_description(c->retry_timer, "worker-retry");
    metrics_inc(&w->metrics->retries);
    return true;
}

/* One attempt ended: classify it, count it, free its connection slot, then retry or finish. */
static void on_transfer_done(CURL *easy, CURLcode code, void *userdata)
{
    Worker *w = userdata;
    WorkerCall *c = NULL;
    (void)curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
    if (!c)
        return;

    long status = 0;
    if (code == CURLE_OK)
        (void)curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    bool answer_began = attempt_answer_began(easy, code);
    bool retryable;
    WorkerOutcome o = worker_classify(code, status, answer_began, &retryable);
    c->bad_answer = o == WORKER_HTTP_ERROR && worker_answer_is_bad(code, answer_began);
    attempt_explain_failure(c, easy, code);
    c->timed_out_connecting = attempt_timed_out_connecting(easy, o);
    attempt_count(w, c, o);
    attempt_record_health(c, o, status, code);

    c->retry_after_sec = attempt_retry_after_sec(easy, code, status);
    /* A Retry-After over RETRY_AFTER_MAX_SEC is not worth holding the client for: it gets it
     * passed on (and the spool, when there is one, keeps the job). */
    bool retry_now = retryable && c->retry_after_sec <= RETRY_AFTER_MAX_SEC &&
                     c->attempt <= c->retries && shared_state(w) == BREAKER_CLOSED;

    /* The connection slot goes to the oldest queued call before this one retries or ends. */
    call_release_easy(c);
    worker_pump(w);

    c->last_outcome = o;
    c->last_status = status;
    c->last_code = code;
    if (o != WORKER_OK && retry_now && call_schedule_retry(c, status, code))
        return;
    call_finish(c, o, status, code);
}

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)s, (void)usec;
    WorkerCall *c = userdata;
    c->retry_timer = sd_event_source_disable_unref(c->retry_timer);
    /* The breaker opened meanwhile (other calls failed): the call ends on its last failure. */
    if (!shared_allow(c->worker, &c->probe)) {
        call_finish(c, c->last_outcome, c->last_status, c->last_code);
        return 0;
    }
    if (call_dispatch(c) < 0)
        call_finish(c, WORKER_UNREACHABLE, 0, CURLE_OUT_OF_MEMORY);
    return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Worker *, worker_free);

/* At most WORKER_MAX_CONNECTIONS transfers at once (slot_take keeps that over every loop), one
 * request at a time on each connection; keep_idle connections kept open between them. */
static int multi_setup(CURLM *multi, long max_connections, long keep_idle)
{
    if (curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_connections) != CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_connections) != CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, keep_idle) != CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING) != CURLM_OK)
        return -EINVAL;
    return 0;
}

int worker_new(sd_event *e, Mailbox *mailbox, const Config *c, Metrics *metrics,
               WorkerShared *shared, Worker **ret)
{
    assert(e);
    assert(mailbox);
    assert(c);
    assert(metrics);
    assert(shared);
    assert(ret);

    _cleanup_(worker_freep) Worker *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->event = sd_event_ref(e);
    w->config = c;
    w->metrics = metrics;
    w->shared = shared;
    mailbox_receiver_init(&w->inbox, mailbox, on_inbox);
    int r = curl_event_init(&w->curl, e, on_transfer_done, w);
    if (r < 0)
        return r;
    w->url = curl_url();
    if (!w->url)
        return -ENOMEM;
    if (curl_url_set(w->url, CURLUPART_URL, c->worker_enqueue, 0) != CURLUE_OK)
        return -EINVAL;
    /* WORKER_MAX_CONNECTIONS shared out when each loop gets one or more (the first ones the
     * remainder); else one count for all (max_own 0) */
    unsigned index = __atomic_fetch_add(&shared->n_workers, 1, __ATOMIC_RELAXED);
    if (shared->max_active >= shared->n_loops)
        w->max_own = shared->max_active / shared->n_loops +
                     (index % shared->n_loops < shared->max_active % shared->n_loops);
    r = multi_setup(w->curl.multi, (long)(w->max_own ? w->max_own : shared->max_active),
                    (long)(w->max_own ? w->max_own : shared->connections_each));
    if (r < 0)
        return r;
    *ret = TAKE_PTR(w);
    return 0;
}

Worker *worker_free(Worker *w)
{
    if (!w)
        return NULL;
    while (w->calls)
        call_free(w->calls);
    for (MailboxMessage *m = mailbox_receiver_done(&w->inbox), *next; m; m = next) {
        next = m->next;
        free(container_of(m, RemoteResult, link));
    }
    while (w->n_easy_pool > 0)
        curl_easy_cleanup(w->easy_pool[--w->n_easy_pool]);
    curl_event_done(&w->curl);
    curl_url_cleanup(w->url);
    sd_event_unref(w->event);
    free(w);
    return NULL;
}

void worker_cancel_all(Worker *w)
{
    while (w->calls) {
        WorkerCall *c = w->calls;
        snprintf(c->errbuf, sizeof(c->errbuf), "cancelled by shutdown");
        call_finish(c, WORKER_UNREACHABLE, 0, CURLE_ABORTED_BY_CALLBACK);
    }
}

unsigned worker_in_flight(const Worker *w)
{
    return __atomic_load_n(&w->n_calls, __ATOMIC_RELAXED);
}

size_t worker_pending_jobs(const Worker *w)
{
    return __atomic_load_n(&w->shared->n_waiters, __ATOMIC_RELAXED);
}

unsigned worker_queued_calls(const Worker *w)
{
    return __atomic_load_n(&w->n_queued, __ATOMIC_RELAXED);
}

size_t worker_release_idle(Worker *w)
{
    if (w->n_calls > 0)
        return 0;
    size_t n = w->n_easy_pool;
    while (w->n_easy_pool > 0)
        curl_easy_cleanup(w->easy_pool[--w->n_easy_pool]);
    return n;
}

static int call_add_waiter(WorkerCall *c, worker_done_fn done, void *userdata)
{
    Waiter *w = realloc(c->more, (c->n_more + 1) * sizeof(*w));
    if (!w)
        return -ENOMEM;
    w[c->n_more++] = (Waiter){done, userdata};
    c->more = w;
    return 0;
}

/* Chains n nodes of curl's public struct curl_slist over lines, in place: curl reads the list
 * during a transfer and never frees it, so nothing is allocated for it. */
static void slist_chain(struct curl_slist *nodes, const char *const *lines, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        nodes[i].data = (char *)lines[i];
        nodes[i].next = i + 1 < n ? &nodes[i + 1] : NULL;
    }
}

/* The request to the worker, in the call's own buffers: the header list (slist_chain) and the
 * body. */
static int call_setup(WorkerCall *c, uint64_t now)
{
    const char *lines[ELEMENTSOF(c->headers)];
    size_t n = 0;
    lines[n++] = "Content-Type: application/json";
    lines[n++] = c->idempotency_header;
    if (c->request_id[0])
        lines[n++] = c->request_id_header;
    lines[n++] = "Expect:";
    slist_chain(c->headers, lines, n);

    CURL *e = c->easy;
    uint64_t limit_ms = c->worker->config->worker_timeout_ms,
             waited_ms = (now - c->ready_usec) / 1000;
    if (curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)c->body_len) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_PRIVATE, c) != CURLE_OK ||
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS,
                         (long)(waited_ms < limit_ms ? limit_ms - waited_ms : 1)) != CURLE_OK)
        return -EINVAL;
    return 0;
}

/* stpcpy() for the call's buffers, whose sizes the lengths were checked against. */
static char *put(char *o, const char *s, size_t n)
{
    memcpy(o, s, n);
    return o + n;
}
#define PUT_LITERAL(o, lit) put(o, lit, sizeof(lit) - 1)

/* Zeroes the call's fixed part and empties its error buffer; the other buffers (ids, headers,
 * body) are left for worker_enqueue to write whole. */
static void call_clear(WorkerCall *c)
{
    memset(c, 0, offsetof(WorkerCall, errbuf));
    c->errbuf[0] = '\0';
}

static WorkerEnqueueResult refused_error(int error)
{
    return (WorkerEnqueueResult){.admission = WORKER_REFUSED_ERROR, .error = error};
}

/* A request for a job whose call is in flight (other, found under sh's lock, which this
 * releases) joins it: as another waiter of a call of this loop, or through a RemoteResult that
 * the other loop posts back to this one's inbox. */
static WorkerEnqueueResult call_join(Worker *w, WorkerShard *sh, WorkerCall *other,
                                     worker_done_fn done, void *userdata)
{
    int r = 0;
    if (other->worker == w)
        r = call_add_waiter(other, done, userdata);
    else {
        RemoteResult *x = calloc(1, sizeof(*x));
        if (!x)
            r = -ENOMEM;
        else {
            *x = (RemoteResult){
                .next = other->remote, .worker = w, .done = done, .userdata = userdata};
            other->remote = x;
            w->n_remote++;
        }
    }
    pthread_mutex_unlock(&sh->lock);
    if (r < 0) {
        shared_unreserve(w);
        return refused_error(r);
    }
    metrics_inc(&w->metrics->shared_calls);
    w->n_waiters++;
    return (WorkerEnqueueResult){.admission = WORKER_ADMITTED};
}

/* The call's request: its headers' values and the JSON body, into its own buffers (the lengths
 * were checked against them). */
static void call_write_request(WorkerCall *c, const char *request_id, size_t rid_len)
{
    size_t place_len = strlen(c->place_id), job_len = strlen(c->job_id);
    *put(c->request_id, request_id ? request_id : "", rid_len) = '\0';
    *put(PUT_LITERAL(c->idempotency_header, "Idempotency-Key: "), c->job_id, job_len) = '\0';
    *put(PUT_LITERAL(c->request_id_header, "X-Request-Id: "), c->request_id, rid_len) = '\0';
    /* place ids and job ids are [A-Za-z0-9_:-]: nothing to escape. */
    char *o = PUT_LITERAL(c->body, "{\"placeId\":\"");
    o = PUT_LITERAL(put(o, c->place_id, place_len), "\",\"jobId\":\"");
    o = PUT_LITERAL(put(o, c->job_id, job_len), "\"}");
    *o = '\0';
    c->body_len = (size_t)(o - c->body);
}

/* worker_enqueue and worker_deliver. */
static WorkerEnqueueResult worker_start(Worker *w, const char *place_id, const char *job_id,
                                        const char *request_id, unsigned retries, bool delivery,
                                        worker_done_fn done, void *userdata)
{
    size_t place_len = strlen(place_id), job_len = strlen(job_id),
           rid_len = request_id ? strlen(request_id) : 0;
    if (place_len > PLACE_ID_MAX || job_len > JOB_ID_MAX || rid_len > REQUEST_ID_MAX)
        return refused_error(-EINVAL);

    if (!shared_reserve(w))
        return (WorkerEnqueueResult){.admission = WORKER_REFUSED_FULL, .retry_after_usec = 1000000};

    /* Made before the lookup, so that a new call is in the table in the same critical section
     * that found none (two loops must not both start one); freed again when joining. */
    WorkerCall *c = malloc(sizeof(*c));
    if (!c) {
        shared_unreserve(w);
        return refused_error(-ENOMEM);
    }
    call_clear(c);
    c->worker = w;
    c->retries = retries;
    c->delivery = delivery;
    c->first = (Waiter){done, userdata};
    *put(c->place_id, place_id, place_len) = '\0';
    *put(c->job_id, job_id, job_len) = '\0';
    c->entry.key = c->job_id;

    WorkerShard *sh = shard_of(w, c->job_id);
    pthread_mutex_lock(&sh->lock);
    InflightEntry *joined = inflight_find(&sh->calls, job_id);
    if (joined) {
        free(c); /* not needed: the joined call's memory is */
        return call_join(w, sh, container_of(joined, WorkerCall, entry), done, userdata);
    }
    bool probe;
    if (!shared_allow(w, &probe)) {
        pthread_mutex_unlock(&sh->lock);
        free(c);
        shared_unreserve(w);
        WorkerEnqueueResult res = {.admission = WORKER_REFUSED_BREAKER_OPEN};
        (void)worker_ready(w, &res.retry_after_usec, &res.reason);
        return res;
    }
    c->probe = probe;
    int r = inflight_add(&sh->calls, &c->entry);
    pthread_mutex_unlock(&sh->lock);
    if (r < 0) {
        c->entry.key = NULL;
        if (probe)
            (void)shared_record(w, false, true);
        free(c);
        shared_unreserve(w);
        return refused_error(r);
    }

    call_write_request(c, request_id, rid_len);
    LIST_PREPEND(calls, w->calls, w->calls_tail, c);
    __atomic_store_n(&w->n_calls, w->n_calls + 1, __ATOMIC_RELAXED);
    w->n_waiters++;
    if (call_dispatch(c) < 0) {
        call_free(c); /* a probe reports its failure there */
        return refused_error(-ENOMEM);
    }
    return (WorkerEnqueueResult){.admission = WORKER_ADMITTED};
}

WorkerEnqueueResult worker_enqueue(Worker *w, const char *place_id, const char *job_id,
                                   const char *request_id, unsigned retries, worker_done_fn done,
                                   void *userdata)
{
    return worker_start(w, place_id, job_id, request_id, retries, false, done, userdata);
}

WorkerEnqueueResult worker_deliver(Worker *w, const char *place_id, const char *job_id,
                                   const char *request_id, worker_done_fn done, void *userdata)
{
    return worker_start(w, place_id, job_id, request_id, 0, true, done, userdata);
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

BreakerState worker_breaker_state(Worker *w)
{
    return shared_state(w);
}
