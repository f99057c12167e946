/* SPDX-License-Identifier: MIT */
#include "worker.h"

#include <curl/curl.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "backoff.h"
#include "inflight.h"
#include "log.h"

typedef struct WorkerCall WorkerCall;

/* A Retry-After from the worker up to this long is waited for before the next attempt; a longer
 * one ends the call (the client gets it passed on). */
#define RETRY_AFTER_MAX_SEC 5

struct Worker {
    sd_event *event;
    const Config *config;
    Metrics *metrics;
    CURLM *multi;
    sd_event_source *timer;
    WorkerCall *calls; /* doubly linked, for teardown */
    unsigned n_calls;
    Inflight inflight; /* calls by job id */
    Breaker breaker;
    char last_error[320]; /* why the last failed call failed, for /ready */
};

typedef struct Waiter {
    worker_done_fn done;
    void *userdata;
} Waiter;

struct WorkerCall {
    Worker *worker;
    WorkerCall *prev, *next;
    InflightEntry entry; /* key: job_id */
    CURL *easy;
    struct curl_slist *headers;
    sd_event_source *retry_timer;
    char *body;
    char *place_id, *job_id, *request_id;
    unsigned attempt;
    uint64_t attempt_started_usec;
    unsigned retry_after_sec;
    bool probe; /* the breaker's half-open probe */
    uint64_t started_usec;
    Waiter *waiters; /* the first started the call; the others joined it */
    size_t n_waiters;
    char errbuf[CURL_ERROR_SIZE];
};

static uint64_t now_usec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000ULL + (uint64_t)ts.tv_nsec / 1000ULL;
}

WorkerOutcome worker_classify(int curl_code, long http_status, bool *ret_retryable)
{
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

static void call_free(WorkerCall *c)
{
    if (!c)
        return;
    Worker *w = c->worker;
    if (c->prev)
        c->prev->next = c->next;
    else
        w->calls = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->n_calls--;
    if (c->entry.key)
        inflight_remove(&w->inflight, &c->entry);
    free(c->waiters);
    if (c->easy) {
        curl_multi_remove_handle(w->multi, c->easy);
        curl_easy_cleanup(c->easy);
    }
    curl_slist_free_all(c->headers);
    sd_event_source_disable_unref(c->retry_timer);
    free(c->body);
    free(c->place_id);
    free(c->job_id);
    free(c->request_id);
    free(c);
}

static int call_start_attempt(WorkerCall *c)
{
    c->attempt++;
    c->attempt_started_usec = now_usec();
    c->errbuf[0] = '\0';
    CURLMcode m = curl_multi_add_handle(c->worker->multi, c->easy);
    return m == CURLM_OK ? 0 : -ENOMEM;
}

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata);

static void call_finish(WorkerCall *c, WorkerOutcome o, long status, int code)
{
    Worker *w = c->worker;
    uint64_t now = now_usec();
    WorkerResult r = {
        .outcome = o,
        .http_status = status,
        .attempts = c->attempt,
        .retry_after_sec = c->retry_after_sec,
        .duration_usec = now - c->started_usec,
    };
    switch (o) {
    case WORKER_OK:
        snprintf(r.reason, sizeof(r.reason), "worker returned HTTP %ld", status);
        break;
    case WORKER_HTTP_ERROR:
        if (code == CURLE_OK)
            snprintf(r.reason, sizeof(r.reason), "worker returned HTTP %ld", status);
        else
            snprintf(r.reason, sizeof(r.reason), "worker connection failed: %s",
                     c->errbuf[0] ? c->errbuf : curl_easy_strerror(code));
        break;
    case WORKER_UNREACHABLE:
        snprintf(r.reason, sizeof(r.reason), "worker unreachable: %s",
                 c->errbuf[0] ? c->errbuf : curl_easy_strerror(code));
        break;
    case WORKER_TIMEOUT:
        snprintf(r.reason, sizeof(r.reason), "worker timeout");
        break;
    }
    /* The worker is healthy when it answers, even a 4xx; unreachable, timing out, 5xx and
     * 429 count against it. */
    bool healthy = o == WORKER_OK ||
                   (o == WORKER_HTTP_ERROR && status >= 400 && status < 500 && status != 429);
    BreakerState before = w->breaker.state;
    breaker_record(&w->breaker, healthy, c->probe, now);
    if (w->breaker.state == BREAKER_OPEN && before != BREAKER_OPEN)
        w->metrics->breaker_opened++;
    if (!healthy)
        snprintf(w->last_error, sizeof(w->last_error), "%s", r.reason);

    Waiter *waiters = c->waiters;
    size_t n = c->n_waiters;
    c->waiters = NULL;
    call_free(c); /* first: a callback that enqueues the same job starts a new call */
    for (size_t i = 0; i < n; i++)
        waiters[i].done(&r, waiters[i].userdata);
    free(waiters);
}

static void on_transfer_done(Worker *w, CURL *easy, CURLcode code)
{
    WorkerCall *c = NULL;
    (void)curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&c);
    if (!c)
        return;
    curl_multi_remove_handle(w->multi, easy);

    long status = 0, os_errno = 0;
    if (code == CURLE_OK)
        (void)curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    else if (curl_easy_getinfo(easy, CURLINFO_OS_ERRNO, &os_errno) == CURLE_OK &&
             (os_errno == EPERM || os_errno == EACCES))
        /* Under the shipped unit this is IPAddressDeny=/IPAddressAllow= at work: say so. */
        snprintf(c->errbuf, sizeof(c->errbuf),
                 "connection not permitted (a firewall, or IPAddressAllow= of the unit)");
    bool retryable;
    WorkerOutcome o = worker_classify(code, status, &retryable);
    static const MetricsAttempt attempt_of[] = {
        [WORKER_OK] = ATTEMPT_OK,
        [WORKER_HTTP_ERROR] = ATTEMPT_HTTP_ERROR,
        [WORKER_UNREACHABLE] = ATTEMPT_UNREACHABLE,
        [WORKER_TIMEOUT] = ATTEMPT_TIMEOUT,
    };
    w->metrics->attempts[attempt_of[o]]++;
    metrics_observe(&w->metrics->worker_latency, now_usec() - c->attempt_started_usec);

    curl_off_t retry_after = 0;
    if (code == CURLE_OK && (status == 429 || status == 503) &&
        curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &retry_after) == CURLE_OK && retry_after > 0)
        c->retry_after_sec = retry_after > 86400 ? 86400 : (unsigned)retry_after;
    else
        c->retry_after_sec = 0;
    if (c->retry_after_sec > RETRY_AFTER_MAX_SEC)
        retryable = false; /* not worth holding the client for: it gets the Retry-After */

    if (o != WORKER_OK && retryable && c->attempt <= w->config->worker_retries) {
        uint64_t rnd = 0;
        (void)getrandom(&rnd, sizeof(rnd), GRND_NONBLOCK);
        uint64_t delay = backoff_delay_usec(c->attempt, BACKOFF_BASE_USEC, BACKOFF_CAP_USEC, rnd);
        if (delay < c->retry_after_sec * 1000000ULL)
            delay = c->retry_after_sec * 1000000ULL;
        log_warn(MSGID_WORKER_RETRY,
                 LOG_FIELDS(.place_id = c->place_id, .job_id = c->job_id,
                            .request_id = c->request_id, .worker_url = w->config->worker_enqueue,
                            .worker_status = (int)status, .attempt = (int)c->attempt,
                            .error = code == CURLE_OK ? NULL
                                     : c->errbuf[0]   ? c->errbuf
                                                      : curl_easy_strerror(code)),
                 "worker attempt %u failed, retrying in %llums", c->attempt,
                 (unsigned long long)(delay / 1000));
        int r = sd_event_add_time_relative(w->event, &c->retry_timer, CLOCK_MONOTONIC, delay, 1000,
                                           on_retry_timer, c);
        if (r >= 0) {
            (void)sd_event_source_set_description(c->retry_timer, "worker-retry");
            w->metrics->retries++;
            return;
        }
    }
    call_finish(c, o, status, code);
}

static void drain_messages(Worker *w)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(w->multi, &left)))
        if (msg->msg == CURLMSG_DONE)
            on_transfer_done(w, msg->easy_handle, msg->data.result);
}

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)usec;
    WorkerCall *c = userdata;
    Worker *w = c->worker;
    (void)s;
    c->retry_timer = sd_event_source_disable_unref(c->retry_timer);
    if (call_start_attempt(c) < 0)
        call_finish(c, WORKER_UNREACHABLE, 0, CURLE_OUT_OF_MEMORY);
    (void)w;
    return 0;
}

static int on_curl_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s;
    Worker *w = userdata;
    int action = 0, running;
    if (revents & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
        action |= CURL_CSELECT_IN;
    if (revents & EPOLLOUT)
        action |= CURL_CSELECT_OUT;
    if (revents & EPOLLERR)
        action |= CURL_CSELECT_ERR;
    curl_multi_socket_action(w->multi, fd, action, &running);
    drain_messages(w);
    return 0;
}

static int on_curl_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)s, (void)usec;
    Worker *w = userdata;
    int running;
    curl_multi_socket_action(w->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_messages(w);
    return 0;
}

/* curl asks to watch (or stop watching) a socket: one io source per fd, kept with
 * curl_multi_assign(). */
static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    Worker *w = userp;
    sd_event_source *io = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (io) {
            sd_event_source_disable_unref(io);
            curl_multi_assign(w->multi, fd, NULL);
        }
        return 0;
    }
    uint32_t events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= EPOLLOUT;

    if (io) {
        if (sd_event_source_set_io_events(io, events) < 0 ||
            sd_event_source_set_enabled(io, SD_EVENT_ON) < 0)
            return -1;
        return 0;
    }
    if (sd_event_add_io(w->event, &io, fd, events, on_curl_io, w) < 0)
        return -1;
    (void)sd_event_source_set_description(io, "worker-io");
    if (curl_multi_assign(w->multi, fd, io) != CURLM_OK) {
        sd_event_source_disable_unref(io);
        return -1;
    }
    return 0;
}

/* curl asks for one timer: -1 stops it, 0 fires at once (next iteration). */
static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    Worker *w = userp;
    if (timeout_ms < 0)
        return sd_event_source_set_enabled(w->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
    uint64_t now;
    if (sd_event_now(w->event, CLOCK_MONOTONIC, &now) < 0)
        return -1;
    if (sd_event_source_set_time(w->timer, now + (uint64_t)timeout_ms * 1000ULL) < 0 ||
        sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT) < 0)
        return -1;
    return 0;
}

int worker_new(sd_event *e, const Config *c, Metrics *metrics, Worker **ret)
{
    static bool curl_ready;
    if (!curl_ready) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return -EIO;
        curl_ready = true;
    }
    Worker *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->event = sd_event_ref(e);
    w->config = c;
    w->metrics = metrics;
    breaker_init(&w->breaker, c->breaker_threshold, (uint64_t)c->breaker_cooldown_sec * 1000000ULL);
    w->multi = curl_multi_init();
    if (!w->multi) {
        worker_free(w);
        return -ENOMEM;
    }
    int r = sd_event_add_time(e, &w->timer, CLOCK_MONOTONIC, 0, 1, on_curl_timer, w);
    if (r < 0) {
        worker_free(w);
        return r;
    }
    (void)sd_event_source_set_description(w->timer, "worker-timer");
    (void)sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);

    curl_multi_setopt(w->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
    curl_multi_setopt(w->multi, CURLMOPT_SOCKETDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
    curl_multi_setopt(w->multi, CURLMOPT_TIMERDATA, w);
    curl_multi_setopt(w->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)c->worker_max_connections);
    curl_multi_setopt(w->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, (long)c->worker_max_connections);
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, (long)c->worker_max_connections);
    curl_multi_setopt(w->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    *ret = w;
    return 0;
}

Worker *worker_free(Worker *w)
{
    if (!w)
        return NULL;
    while (w->calls)
        call_free(w->calls);
    inflight_done(&w->inflight);
    if (w->multi)
        curl_multi_cleanup(w->multi);
    sd_event_source_disable_unref(w->timer);
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
    return w->n_calls;
}

static size_t discard_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    (void)ptr, (void)userdata;
    return size * nmemb;
}

static struct curl_slist *append_header(struct curl_slist *l, const char *name, const char *value,
                                        bool *ok)
{
    char buf[1200];
    snprintf(buf, sizeof(buf), "%s: %s", name, value);
    struct curl_slist *n = curl_slist_append(l, buf);
    if (!n) {
        *ok = false;
        return l;
    }
    return n;
}

static int call_add_waiter(WorkerCall *c, worker_done_fn done, void *userdata)
{
    Waiter *w = realloc(c->waiters, (c->n_waiters + 1) * sizeof(*w));
    if (!w)
        return -ENOMEM;
    w[c->n_waiters++] = (Waiter){done, userdata};
    c->waiters = w;
    return 0;
}

int worker_enqueue(Worker *w, const char *place_id, const char *job_id, const char *request_id,
                   worker_done_fn done, void *userdata)
{
    InflightEntry *joined = inflight_find(&w->inflight, job_id);
    if (joined) {
        w->metrics->shared_calls++;
        return call_add_waiter((WorkerCall *)((char *)joined - offsetof(WorkerCall, entry)), done,
                               userdata);
    }

    bool probe;
    if (!breaker_allow(&w->breaker, now_usec(), &probe))
        return -EHOSTUNREACH;

    WorkerCall *c = calloc(1, sizeof(*c));
    if (!c) {
        if (probe)
            breaker_record(&w->breaker, false, true, now_usec());
        return -ENOMEM;
    }
    c->worker = w;
    c->probe = probe;
    c->started_usec = now_usec();
    c->next = w->calls;
    if (w->calls)
        w->calls->prev = c;
    w->calls = c;
    w->n_calls++;

    bool ok = call_add_waiter(c, done, userdata) == 0;
    c->place_id = strdup(place_id);
    c->job_id = strdup(job_id);
    c->request_id = request_id ? strdup(request_id) : NULL;
    /* place ids and job ids are [A-Za-z0-9_:-]: nothing to escape. */
    if (asprintf(&c->body, "{\"placeId\":\"%s\",\"jobId\":\"%s\"}", place_id, job_id) < 0)
        c->body = NULL;
    c->headers = append_header(NULL, "Content-Type", "application/json", &ok);
    c->headers = append_header(c->headers, "Idempotency-Key", job_id, &ok);
    if (request_id)
        c->headers = append_header(c->headers, "X-Request-Id", request_id, &ok);
    c->headers = append_header(c->headers, "Expect", "", &ok);
    c->easy = curl_easy_init();
    if (ok && c->job_id) {
        c->entry.key = c->job_id;
        ok = inflight_add(&w->inflight, &c->entry) == 0;
        if (!ok)
            c->entry.key = NULL;
    }
    if (!ok || !c->place_id || !c->job_id || (request_id && !c->request_id) || !c->body ||
        !c->easy) {
        if (probe)
            breaker_record(&w->breaker, false, true, now_usec());
        call_free(c);
        return -ENOMEM;
    }

    CURL *e = c->easy;
    const Config *cfg = w->config;
    curl_easy_setopt(e, CURLOPT_URL, cfg->worker_enqueue);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)cfg->worker_timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)cfg->worker_timeout_ms);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, c->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(c->body));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "argus-orchestrator");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard_body);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, c);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);

    if (call_start_attempt(c) < 0) {
        if (probe)
            breaker_record(&w->breaker, false, true, now_usec());
        call_free(c);
        return -ENOMEM;
    }
    return 0;
}

bool worker_ready(Worker *w, uint64_t *ret_retry_after_usec, const char **ret_reason)
{
    uint64_t now = now_usec();
    if (breaker_state(&w->breaker, now) != BREAKER_OPEN) {
        *ret_retry_after_usec = 0;
        *ret_reason = NULL;
        return true;
    }
    *ret_retry_after_usec = breaker_retry_after_usec(&w->breaker, now);
    *ret_reason = w->last_error;
    return false;
}

BreakerState worker_breaker_state(Worker *w)
{
    return breaker_state(&w->breaker, now_usec());
}
