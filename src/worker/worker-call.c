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
    relaxed_store_uint(&w->n_queued, w->n_queued - 1);
}

static void queue_push(Worker *w, WorkerCall *c)
{
    LIST_APPEND(queue, w->queue_head, w->queue_tail, c);
    c->queued = true;
    relaxed_store_uint(&w->n_queued, w->n_queued + 1);
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
    worker_slot_release(w);
}

void worker_call_free(WorkerCall *c)
{
    if (!c)
        return;
    Worker *w = c->worker;
    if (c->probe) /* ended before its attempt could report (shutdown, no memory) */
        (void)worker_shared_record(w, false, true);
    LIST_REMOVE(calls, w->calls, w->calls_tail, c);
    relaxed_store_uint(&w->n_calls, w->n_calls - 1);
    worker_waiters_sub(w, 1 + c->n_more);
    if (c->entry.key) {
        WorkerShard *sh = worker_shard_of(w, c->job_id);
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

/* One attempt on a connection slot already taken (worker_slot_take): an easy handle from the pool,
 * the call's request on it, and a time limit that counts the time the call waited for the slot. On
 * failure the slot is given back. */
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
    worker_slot_release(w);
    return -ENOMEM;
}

int worker_call_dispatch(WorkerCall *c)
{
    Worker *w = c->worker;
    c->ready_usec = clock_usec(CLOCK_MONOTONIC);
    if (!w->queue_head && worker_slot_take(w))
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
    while (w->queue_head && worker_slot_take(w)) {
        WorkerCall *c = w->queue_head;
        queue_unlink(w, c);
        if (now - c->ready_usec >= (uint64_t)w->config->worker_timeout_ms * 1000) {
            /* Its whole time went waiting for a slot (other loops held them): a timeout, but
             * not the worker's, so no attempt and nothing for the breaker. */
            worker_slot_release(w);
            c->queue_timeout = true;
            worker_call_finish(c, WORKER_TIMEOUT, 0, CURLE_OPERATION_TIMEDOUT);
            continue;
        }
        if (call_start_attempt(c, now) < 0)
            worker_call_finish(c, WORKER_UNREACHABLE, 0, CURLE_OUT_OF_MEMORY);
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

/* One attempt's outcome for the breaker: every attempt counts, so a worker that hangs opens it
 * after BREAKER_THRESHOLD timeouts. The worker is healthy when it answers, even a 4xx;
 * unreachable, timing out, 5xx, 429 and a bad answer count against it. But a delivery's HTTP
 * error answer (5xx, 429, a redirect, a bad answer) is neutral, probe or not: the delivery
 * judges those itself, per job, or (several jobs in a row) as the worker's, so that one job
 * failing never keeps the breaker open for everyone (its connection failures and timeouts
 * count as any attempt's, but not those of a job that failed before: worker_deliver). */
static void attempt_record_health(WorkerCall *c, WorkerOutcome o, long status, int code)
{
    Worker *w = c->worker;
    bool healthy = o == WORKER_OK ||
                   (o == WORKER_HTTP_ERROR && status >= 400 && status < 500 && status != 429);
    if (!healthy && c->delivery &&
        (c->delivery_again || (o == WORKER_HTTP_ERROR && (code == CURLE_OK || c->bad_answer)))) {
        worker_shared_record_neutral(w, c->probe);
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
    if (worker_shared_record(w, healthy, c->probe))
        metrics_inc(&w->metrics->breaker_opened);
    c->probe = false;
}

void worker_call_finish(WorkerCall *c, WorkerOutcome o, long status, int code)
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

    WorkerShard *sh = worker_shard_of(c->worker, c->job_id);
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
    worker_call_free(c); /* first: a callback that enqueues the same job starts a new call */
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
                        .trace_id = c->trace_id[0] ? c->trace_id : NULL,
                        .span_id = c->span_id[0] ? c->span_id : NULL,
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

void worker_on_transfer_done(CURL *easy, CURLcode code, void *userdata)
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
                     c->attempt <= c->retries && worker_shared_state(w) == BREAKER_CLOSED;

    /* The connection slot goes to the oldest queued call before this one retries or ends. */
    call_release_easy(c);
    worker_pump(w);

    c->last_outcome = o;
    c->last_status = status;
    c->last_code = code;
    if (o != WORKER_OK && retry_now && call_schedule_retry(c, status, code))
        return;
    worker_call_finish(c, o, status, code);
}

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)s, (void)usec;
    WorkerCall *c = userdata;
    c->retry_timer = sd_event_source_disable_unref(c->retry_timer);
    /* The breaker opened meanwhile (other calls failed): the call ends on its last failure. */
    if (!worker_shared_allow(c->worker, &c->probe)) {
        worker_call_finish(c, c->last_outcome, c->last_status, c->last_code);
        return 0;
    }
    if (worker_call_dispatch(c) < 0)
        worker_call_finish(c, WORKER_UNREACHABLE, 0, CURLE_OUT_OF_MEMORY);
    return 0;
}

int worker_call_add_waiter(WorkerCall *c, worker_done_fn done, void *userdata)
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
    if (c->traceparent_header[0])
        lines[n++] = c->traceparent_header;
    if (c->tracestate_header[0])
        lines[n++] = c->tracestate_header;
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
