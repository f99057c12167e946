/* SPDX-License-Identifier: MIT */
/* Soak: the real daemon under sustained keep-alive load for a bounded time, with a flapping
 * worker so that retries and failures happen all along. Every request must get an HTTP answer
 * with a JSON body and an expected status, the daemon must stay up and healthy, its RSS must
 * not keep growing, and SIGTERM must still end it with status 0.
 *
 * ARGUS_SOAK_SECONDS sets the load time (default 20); ARGUS_SANITIZED=1 skips the RSS check. */
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define CLIENTS 32
#define DEFAULT_SECONDS 20
#define MAX_SECONDS 86400
#define CLIENT_TIMEOUT_MS 10000L
/* After the load time, requests still in flight get this long to finish (each is bounded by
 * CLIENT_TIMEOUT_MS anyway). */
#define DRAIN_MS 15000
/* A bound on the count of requests, whatever the speed. */
#define MAX_REQUESTS 4000000UL
#define HEALTH_EVERY 50
#define ID_ROTATION 1000
#define MAX_BODY 65536
#define MAX_PROBLEMS 10
/* Past this many transport errors the run has failed: stop issuing rather than spin. */
#define MAX_TRANSPORT_ERRORS 1000

enum { KIND_FLAP, KIND_PLAIN, KIND_SLOW, KIND_HEALTH, KIND_COUNT };
static const char *const kind_names[KIND_COUNT] = {"flap", "plain", "slow", "health"};

typedef struct Slot {
    CURL *easy;
    int kind;
    char place[64];
    char post[128];
    char *body;
    size_t body_len;
    bool body_overflow;
} Slot;

typedef struct Stats {
    unsigned long requests;
    unsigned long by_status[600]; /* index 0: no HTTP status */
    unsigned long other_status;
    unsigned long by_kind[KIND_COUNT];
    unsigned long accepted_by_kind[KIND_COUNT]; /* 202 (or 200 for health) */
    unsigned long transport_errors;
    unsigned long bad_status;
    unsigned long bad_body;
    unsigned long connects;
    unsigned long problems; /* the first MAX_PROBLEMS are printed as they happen */
    struct {
        long status;
        char error[96];
        unsigned long count;
    } reasons[16]; /* the error answers seen, by status and `error` text */
    unsigned long reasons_other;
    uint32_t *latency_us; /* MAX_REQUESTS entries */
} Stats;

static Standin standin;
static Service svc;
static struct {
    CURLM *multi;
    Slot slots[CLIENTS];
    struct curl_slist *json_headers;
    Stats stats;
    bool curl_up;
    long long start_us;
} load;

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static unsigned soak_seconds(void)
{
    const char *v = getenv("ARGUS_SOAK_SECONDS");
    if (!v || !*v)
        return DEFAULT_SECONDS;
    char *end;
    errno = 0;
    unsigned long n = strtoul(v, &end, 10);
    if (errno || *end || n < 1 || n > MAX_SECONDS) {
        fprintf(stderr, "ARGUS_SOAK_SECONDS=%s is not a number of seconds in 1..%d; using %d\n", v,
                MAX_SECONDS, DEFAULT_SECONDS);
        return DEFAULT_SECONDS;
    }
    return (unsigned)n;
}

static void process_name(pid_t pid, char *out, size_t n)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
    FILE *f = fopen(path, "re");
    out[0] = '\0';
    if (f) {
        if (fgets(out, (int)n, f))
            out[strcspn(out, "\n")] = '\0';
        fclose(f);
    }
}

/* Prints a problem to stderr as it happens, with the time since the load started. */
static void note_problem(Stats *st, const char *fmt, ...)
{
    if (st->problems++ >= MAX_PROBLEMS) {
        if (st->problems == MAX_PROBLEMS + 1)
            fprintf(stderr, "soak: further problems not shown\n");
        return;
    }
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "soak: t=%.3fs: ", (double)(now_us() - load.start_us) / 1e6);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    Slot *s = userdata;
    size_t n = size * nmemb;
    if (s->body_len + n > MAX_BODY) {
        s->body_overflow = true;
        return n;
    }
    memcpy(s->body + s->body_len, ptr, n);
    s->body_len += n;
    s->body[s->body_len] = '\0';
    return n;
}

static void slot_init(Slot *s)
{
    memset(s, 0, sizeof(*s));
    s->body = malloc(MAX_BODY + 1);
    assert_non_null(s->body);
    s->easy = curl_easy_init();
    assert_non_null(s->easy);
    curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
    curl_easy_setopt(s->easy, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, CLIENT_TIMEOUT_MS);
    curl_easy_setopt(s->easy, CURLOPT_PIPEWAIT, 0L);
    curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, s);
}

/* Prepares the slot's next request: request number `seq` decides its kind and placeId. */
static void slot_prepare(Slot *s, unsigned long seq)
{
    char url[128];
    s->body_len = 0;
    s->body[0] = '\0';
    s->body_overflow = false;
    if (seq % HEALTH_EVERY == HEALTH_EVERY - 1) {
        s->kind = KIND_HEALTH;
        s->place[0] = '\0';
        snprintf(url, sizeof(url), "%s/health", svc.base);
        curl_easy_setopt(s->easy, CURLOPT_URL, url);
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(s->easy, CURLOPT_HTTPGET, 1L);
        return;
    }
    unsigned long id = seq % ID_ROTATION;
    unsigned mix = (unsigned)(seq % 16);
    if (mix < 6) {
        s->kind = KIND_FLAP;
        snprintf(s->place, sizeof(s->place), "flap250-soak-%lu", id);
    } else if (mix == 6) {
        s->kind = KIND_SLOW;
        snprintf(s->place, sizeof(s->place), "slow50-soak-%lu", id);
    } else {
        s->kind = KIND_PLAIN;
        snprintf(s->place, sizeof(s->place), "soak-%lu", id);
    }
    snprintf(s->post, sizeof(s->post), "{\"placeId\":\"%s\"}", s->place);
    snprintf(url, sizeof(url), "%s/enqueue", svc.base);
    curl_easy_setopt(s->easy, CURLOPT_URL, url);
    curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, load.json_headers);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, s->post);
    curl_easy_setopt(s->easy, CURLOPT_POSTFIELDSIZE, (long)strlen(s->post));
}

static bool status_expected(int kind, long status)
{
    if (kind == KIND_HEALTH)
        return status == 200;
    return status == 202 || status == 502 || status == 503 || status == 504;
}

static void tally_reason(Stats *st, long status, json_object *o)
{
    json_object *v;
    const char *err = json_object_object_get_ex(o, "error", &v) ? json_object_get_string(v) : "";
    for (size_t i = 0; i < sizeof(st->reasons) / sizeof(st->reasons[0]); i++) {
        if (st->reasons[i].count == 0) {
            st->reasons[i].status = status;
            snprintf(st->reasons[i].error, sizeof(st->reasons[i].error), "%s", err);
        }
        if (st->reasons[i].status == status &&
            strncmp(st->reasons[i].error, err, sizeof(st->reasons[i].error) - 1) == 0) {
            st->reasons[i].count++;
            return;
        }
    }
    st->reasons_other++;
}

/* Checks one finished request and adds it to the stats. */
static void record(Stats *st, Slot *s, CURLcode result)
{
    long status = 0;
    curl_off_t total_us = 0;
    long connects = 0;
    curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(s->easy, CURLINFO_TOTAL_TIME_T, &total_us);
    curl_easy_getinfo(s->easy, CURLINFO_NUM_CONNECTS, &connects);

    if (st->requests < MAX_REQUESTS)
        st->latency_us[st->requests] = total_us > UINT32_MAX ? UINT32_MAX : (uint32_t)total_us;
    st->requests++;
    st->connects += (unsigned long)connects;
    st->by_kind[s->kind]++;
    if (status >= 0 && status < 600)
        st->by_status[status]++;
    else
        st->other_status++;

    const char *what = s->kind == KIND_HEALTH ? "GET /health" : s->place;
    if (result != CURLE_OK || status == 0) {
        st->transport_errors++;
        note_problem(st, "%s: transport error: %s (after %.3f s)", what, curl_easy_strerror(result),
                     (double)total_us / 1e6);
        return;
    }
    if (!status_expected(s->kind, status)) {
        st->bad_status++;
        note_problem(st, "%s: unexpected status %ld, body %.200s", what, status, s->body);
    }
    if (status == (s->kind == KIND_HEALTH ? 200 : 202))
        st->accepted_by_kind[s->kind]++;

    json_object *o = s->body_overflow ? NULL : json_tokener_parse(s->body);
    if (!o || !json_object_is_type(o, json_type_object)) {
        st->bad_body++;
        note_problem(st, "%s: status %ld, body is not a JSON object: %.200s", what, status,
                     s->body);
    } else if (status >= 400) {
        tally_reason(st, status, o);
    } else if (s->kind != KIND_HEALTH && status == 202) {
        json_object *v;
        bool ok = json_object_object_get_ex(o, "status", &v) &&
                  strcmp(json_object_get_string(v), "enqueued") == 0 &&
                  json_object_object_get_ex(o, "placeId", &v) &&
                  strcmp(json_object_get_string(v), s->place) == 0;
        if (!ok) {
            st->bad_body++;
            note_problem(st, "%s: 202 with the wrong body: %.200s", what, s->body);
        }
    }
    json_object_put(o);
}

/* Whether the daemon is still running; once it has ended, reaps it and describes how in `how`. */
static bool daemon_running(char *how, size_t n)
{
    if (svc.pid <= 0)
        return false;
    int wst;
    pid_t p = waitpid(svc.pid, &wst, WNOHANG);
    if (p == 0)
        return true;
    if (p == svc.pid) {
        if (WIFSIGNALED(wst))
            snprintf(how, n, "killed by signal %d (%s)%s", WTERMSIG(wst), strsignal(WTERMSIG(wst)),
                     WCOREDUMP(wst) ? ", core dumped" : "");
        else
            snprintf(how, n, "exited with status %d", WEXITSTATUS(wst));
    } else {
        snprintf(how, n, "lost (waitpid: %s)", strerror(errno));
    }
    svc.pid = 0;
    return false;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double percentile_ms(const uint32_t *sorted, size_t n, double p)
{
    if (n == 0)
        return 0;
    size_t i = (size_t)(p * (double)(n - 1) + 0.5);
    return sorted[i] / 1000.0;
}

static int setup(void **state)
{
    (void)state;
    standin_start(&standin);
    char worker[96];
    snprintf(worker, sizeof(worker), "WORKER_NODE_URL=%s", standin.url);
    const char *env[] = {worker, "WORKER_TIMEOUT_MS=1000", "WORKER_RETRIES=2", "LOG_LEVEL=warn",
                         NULL};
    service_start(&svc, env);
    return 0;
}

static void load_free(void)
{
    for (size_t i = 0; i < CLIENTS; i++) {
        Slot *s = &load.slots[i];
        if (s->easy) {
            if (load.multi)
                curl_multi_remove_handle(load.multi, s->easy);
            curl_easy_cleanup(s->easy);
        }
        free(s->body);
        memset(s, 0, sizeof(*s));
    }
    if (load.multi)
        curl_multi_cleanup(load.multi);
    load.multi = NULL;
    curl_slist_free_all(load.json_headers);
    load.json_headers = NULL;
    free(load.stats.latency_us);
    load.stats.latency_us = NULL;
    if (load.curl_up)
        curl_global_cleanup();
    load.curl_up = false;
}

static int teardown(void **state)
{
    (void)state;
    load_free();
    service_cleanup(&svc);
    standin_stop(&standin);
    return 0;
}

static void test_soak(void **state)
{
    (void)state;
    const unsigned seconds = soak_seconds();
    Stats *st = &load.stats;
    memset(st, 0, sizeof(*st));
    st->latency_us = calloc(MAX_REQUESTS, sizeof(uint32_t));
    assert_non_null(st->latency_us);

    assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    load.curl_up = true;
    load.multi = curl_multi_init();
    assert_non_null(load.multi);
    curl_multi_setopt(load.multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)CLIENTS);
    curl_multi_setopt(load.multi, CURLMOPT_MAXCONNECTS, (long)CLIENTS);
    curl_multi_setopt(load.multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING);
    load.json_headers = curl_slist_append(NULL, "Content-Type: application/json");
    load.json_headers = curl_slist_append(load.json_headers, "Expect:");
    assert_non_null(load.json_headers);

    unsigned long seq = 0;
    size_t in_flight = 0;
    for (size_t i = 0; i < CLIENTS; i++) {
        slot_init(&load.slots[i]);
        slot_prepare(&load.slots[i], seq++);
        assert_int_equal(curl_multi_add_handle(load.multi, load.slots[i].easy), CURLM_OK);
        in_flight++;
    }

    const long long start = now_us();
    load.start_us = start;
    const long long half = start + (long long)seconds * 500000;
    const long long stop_issuing = start + (long long)seconds * 1000000;
    const long long hard_stop = stop_issuing + (long long)DRAIN_MS * 1000;
    unsigned long rss_half = 0, rss_end = 0;
    bool half_sampled = false, daemon_up = true;
    char daemon_end[128] = "";
    long long next_check = start;

    while (in_flight > 0 && now_us() < hard_stop) {
        int running = 0;
        curl_multi_perform(load.multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(load.multi, &left))) {
            if (msg->msg != CURLMSG_DONE)
                continue;
            CURL *easy = msg->easy_handle;
            CURLcode result = msg->data.result;
            Slot *s = NULL;
            curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&s);
            assert_non_null(s);
            record(st, s, result);
            curl_multi_remove_handle(load.multi, easy);
            if (daemon_up && st->transport_errors < MAX_TRANSPORT_ERRORS &&
                now_us() < stop_issuing && seq < MAX_REQUESTS) {
                slot_prepare(s, seq++);
                assert_int_equal(curl_multi_add_handle(load.multi, easy), CURLM_OK);
            } else {
                in_flight--;
            }
        }
        if (daemon_up && now_us() >= next_check) {
            next_check = now_us() + 100000;
            /* Read the daemon's sd_notify messages (STATUS= comes every few seconds), as
             * systemd would: once the datagram queue is full, its sendmsg() blocks. */
            service_wait_notify(&svc, "", 0);
            if (!daemon_running(daemon_end, sizeof(daemon_end))) {
                daemon_up = false;
                fprintf(stderr, "soak: t=%.3fs: the daemon ended: %s\n",
                        (double)(now_us() - start) / 1e6, daemon_end);
            }
        }
        if (!half_sampled && now_us() >= half) {
            rss_half = process_rss_kib(svc.pid);
            half_sampled = true;
        }
        if (in_flight > 0)
            curl_multi_poll(load.multi, NULL, 0, 100, NULL);
    }
    rss_end = process_rss_kib(svc.pid);
    char name[32];
    process_name(svc.pid, name, sizeof(name));

    size_t n = st->requests < MAX_REQUESTS ? st->requests : MAX_REQUESTS;
    qsort(st->latency_us, n, sizeof(uint32_t), cmp_u32);
    printf("soak: %us, %lu requests on %d keep-alive clients, %lu connections opened;"
           " status 200=%lu 202=%lu 502=%lu 503=%lu 504=%lu other=%lu transport-errors=%lu;"
           " kinds flap=%lu(202:%lu) plain=%lu(202:%lu) slow=%lu(202:%lu) health=%lu(200:%lu);"
           " latency p50=%.2fms p99=%.2fms max=%.2fms; RSS first-half=%luKiB end=%luKiB%s\n",
           seconds, st->requests, CLIENTS, st->connects, st->by_status[200], st->by_status[202],
           st->by_status[502], st->by_status[503], st->by_status[504],
           st->requests - st->by_status[200] - st->by_status[202] - st->by_status[502] -
               st->by_status[503] - st->by_status[504] - st->by_status[0],
           st->transport_errors, st->by_kind[KIND_FLAP], st->accepted_by_kind[KIND_FLAP],
           st->by_kind[KIND_PLAIN], st->accepted_by_kind[KIND_PLAIN], st->by_kind[KIND_SLOW],
           st->accepted_by_kind[KIND_SLOW], st->by_kind[KIND_HEALTH],
           st->accepted_by_kind[KIND_HEALTH], percentile_ms(st->latency_us, n, 0.50),
           percentile_ms(st->latency_us, n, 0.99), percentile_ms(st->latency_us, n, 1.0), rss_half,
           rss_end, harness_sanitized() ? " (sanitized: RSS not checked)" : "");
    fflush(stdout);
    for (size_t i = 0; i < sizeof(st->reasons) / sizeof(st->reasons[0]); i++)
        if (st->reasons[i].count)
            printf("soak: %lu x %ld \"%s\"\n", st->reasons[i].count, st->reasons[i].status,
                   st->reasons[i].error);
    if (st->reasons_other)
        printf("soak: %lu x other error answers\n", st->reasons_other);

    /* The daemon stayed up, every request finished within the bounds and got an HTTP answer. */
    if (!daemon_up)
        fail_msg("the daemon ended during the load: %s", daemon_end);
    if (in_flight > 0)
        fail_msg("%zu requests still unanswered %d ms after the load stopped", in_flight, DRAIN_MS);
    assert_int_equal(st->transport_errors, 0);
    assert_int_equal(st->bad_status, 0);
    assert_int_equal(st->bad_body, 0);
    assert_true(st->by_status[202] > 0);
    for (int k = 0; k < KIND_COUNT; k++)
        if (st->by_kind[k] == 0)
            fail_msg("no %s request was made", kind_names[k]);

    /* Still up (not a zombie either), and healthy. */
    if (!daemon_running(daemon_end, sizeof(daemon_end)))
        fail_msg("the daemon ended after the load: %s", daemon_end);
    char url[128];
    snprintf(url, sizeof(url), "%s/health", svc.base);
    Response r = http_request("GET", url, NULL, NULL, NULL);
    assert_int_equal(r.curl_code, CURLE_OK);
    assert_int_equal(r.status, 200);
    response_free(&r);

    /* RSS measured on the daemon itself (systemd-socket-activate execs it in place). */
    if (strncmp(name, "systemd-socket", 14) == 0)
        fail_msg("pid %d is still systemd-socket-activate, not the daemon", (int)svc.pid);
    if (!harness_sanitized()) {
        assert_true(rss_half > 0 && rss_end > 0);
        unsigned long limit = rss_half + rss_half / 10 + 2048;
        if (rss_end > limit)
            fail_msg("daemon RSS grew from %lu KiB (first half) to %lu KiB (end), over the "
                     "%lu KiB allowed",
                     rss_half, rss_end, limit);
    }

    /* A clean stop, and nothing reported by a sanitizer on the way. */
    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    assert_true(service_log_lacks(&svc, "Sanitizer"));
    assert_true(service_log_lacks(&svc, "runtime error:"));
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_soak),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
