/* SPDX-License-Identifier: MIT */
/* W3C trace context (README.md, "POST /enqueue", traceparent): a client's valid traceparent is
 * continued (the same trace id, our span id as the worker's parent, the flags kept) and its
 * tracestate passed on; none, or a malformed one, starts a new trace and drops the tracestate;
 * the trace is kept with a spooled job and sent with its delivery; TRACE_ID and SPAN_ID are in
 * the JSON lines (traceId, spanId). What the worker got is read from the stand-in's
 * GET /traces. */
#include <curl/curl.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "spool-fixture.h"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define PID "00f067aa0ba902b7"

static size_t sink(char *p, size_t size, size_t n, void *userdata)
{
    (void)p, (void)userdata;
    return size * n;
}

/* POST /enqueue of place_id with the header lines (NULL-terminated); the HTTP status. */
static long post_with(const Service *svc, const char *place_id, const char *const *headers)
{
    char url[160], body[256];
    snprintf(url, sizeof(url), "%s/enqueue", svc->base);
    snprintf(body, sizeof(body), "{\"placeId\":\"%s\"}", place_id);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Expect:");
    for (size_t i = 0; headers && headers[i]; i++)
        h = curl_slist_append(h, headers[i]);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
    long status = 0;
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* What the worker got with place_id's first POST: its traceparent and tracestate ("-": none). */
typedef struct Got {
    char traceparent[128], tracestate[600];
} Got;

static bool worker_got(const Standin *s, const char *place_id, Got *ret)
{
    char path[160];
    snprintf(path, sizeof(path), "/traces?placeId=%s", place_id);
    char *t = standin_get(s, path);
    if (!t || !*t) {
        free(t);
        return false;
    }
    char *tab = strchr(t, '\t'), *nl = strchr(t, '\n');
    assert_non_null(tab);
    assert_non_null(nl);
    *tab = *nl = '\0';
    snprintf(ret->traceparent, sizeof(ret->traceparent), "%s", t);
    snprintf(ret->tracestate, sizeof(ret->tracestate), "%s", tab + 1);
    free(t);
    return true;
}

static bool lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* A version 00 traceparent as this service makes it; its trace id and span id copied out. */
static void assert_traceparent(const char *tp, char trace_id[33], char span_id[17],
                               const char *flags)
{
    if (strlen(tp) != 55 || strncmp(tp, "00-", 3) != 0 || tp[35] != '-' || tp[52] != '-' ||
        !lower_hex(tp + 3, 32) || !lower_hex(tp + 36, 16) || strcmp(tp + 53, flags) != 0)
        fail_msg("not a version 00 traceparent with flags %s: \"%s\"", flags, tp);
    memcpy(trace_id, tp + 3, 32);
    trace_id[32] = '\0';
    memcpy(span_id, tp + 36, 16);
    span_id[16] = '\0';
    assert_string_not_equal(trace_id, "00000000000000000000000000000000");
    assert_string_not_equal(span_id, "0000000000000000");
}

/* A JSON line of the log whose placeId is place_id and whose msg has msg: its traceId and spanId
 * are trace_id and span_id. Waits up to 2 s for it. */
static void assert_log_trace(const Service *svc, const char *place_id, const char *msg,
                             const char *trace_id, const char *span_id)
{
    long long deadline = now_ms() + 2000;
    do {
        FILE *f = fopen(svc->log_path, "re");
        assert_non_null(f);
        char line[8192];
        bool found = false;
        while (!found && fgets(line, sizeof(line), f)) {
            json_object *o = json_tokener_parse(line);
            const char *p = o ? job_string(o, "placeId") : NULL,
                       *m = o ? job_string(o, "msg") : NULL;
            if (p && m && strcmp(p, place_id) == 0 && strstr(m, msg)) {
                const char *t = job_string(o, "traceId"), *sp = job_string(o, "spanId");
                if (!t || !sp || strcmp(t, trace_id) != 0 || strcmp(sp, span_id) != 0)
                    fail_msg("log line of %s without trace %s span %s: %s", place_id, trace_id,
                             span_id, line);
                found = true;
            }
            json_object_put(o);
        }
        fclose(f);
        if (found)
            return;
        usleep(20 * 1000);
    } while (now_ms() < deadline);
    fail_msg("no log line of %s with \"%s\"", place_id, msg);
}

/* A valid traceparent: the same trace, a span of ours as the worker's parent, the flags kept; the
 * tracestate lines passed on as one list. */
static void test_continued(void **state)
{
    (void)state;
    const char *const headers[] = {"traceparent: 00-" TID "-" PID "-01",
                                   "tracestate: rojo=00f067aa0ba902b7",
                                   "tracestate: congo=t61rcWkgMzE", NULL};
    assert_int_equal(post_with(&group_service, "trace-valid", headers), 202);
    Got g;
    assert_true(worker_got(&group_standin, "trace-valid", &g));
    char trace_id[33], span_id[17];
    assert_traceparent(g.traceparent, trace_id, span_id, "01");
    assert_string_equal(trace_id, TID);
    assert_string_not_equal(span_id, PID);
    assert_string_equal(g.tracestate, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    assert_log_trace(&group_service, "trace-valid", "job enqueued", TID, span_id);

    /* a later version is read by its first four fields, and continued as 00, flags kept; header
     * names are case-insensitive */
    const char *const future[] = {"TraceParent: cc-" TID "-" PID "-03-what-comes-next",
                                  "tracestate: rojo=1", NULL};
    assert_int_equal(post_with(&group_service, "trace-future", future), 202);
    assert_true(worker_got(&group_standin, "trace-future", &g));
    assert_traceparent(g.traceparent, trace_id, span_id, "03");
    assert_string_equal(trace_id, TID);
    assert_string_equal(g.tracestate, "rojo=1");
}

/* No traceparent: a new trace, flags 00, no tracestate (one sent alone is dropped). */
static void test_absent(void **state)
{
    (void)state;
    const char *const headers[] = {"tracestate: rojo=1", NULL};
    assert_int_equal(post_with(&group_service, "trace-absent", headers), 202);
    Got g;
    assert_true(worker_got(&group_standin, "trace-absent", &g));
    char trace_id[33], span_id[17];
    assert_traceparent(g.traceparent, trace_id, span_id, "00");
    assert_string_equal(g.tracestate, "-");
    assert_log_trace(&group_service, "trace-absent", "job enqueued", trace_id, span_id);
}

/* Malformed, each kind: a new trace (not the client's trace id), the tracestate dropped. */
static void test_malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "traceparent: 00-4BF92F3577B34DA6A3CE929D0E0E4736-" PID "-01", /* uppercase */
        "traceparent: 00-00000000000000000000000000000000-" PID "-01", /* all-zero trace id */
        "traceparent: 00-" TID "-0000000000000000-01",                 /* all-zero parent id */
        "traceparent: ff-" TID "-" PID "-01",                          /* version ff */
        "traceparent: 00-" TID "-" PID "-01-extra",                    /* 00 has no more */
        "traceparent: 00-" TID "-" PID "-1",                           /* short */
        "traceparent: 00-" TID "-" PID,                                /* no flags */
        "traceparent: garbage",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char place[32];
        snprintf(place, sizeof(place), "trace-bad%zu", i);
        const char *const headers[] = {bad[i], "tracestate: rojo=1", NULL};
        assert_int_equal(post_with(&group_service, place, headers), 202);
        Got g;
        assert_true(worker_got(&group_standin, place, &g));
        char trace_id[33], span_id[17];
        assert_traceparent(g.traceparent, trace_id, span_id, "00");
        if (strcmp(trace_id, TID) == 0)
            fail_msg("%s continued", bad[i]);
        assert_string_equal(g.tracestate, "-");
    }
    /* two traceparent lines: which one is the parent is not known */
    const char *const two[] = {"traceparent: 00-" TID "-" PID "-01",
                               "traceparent: 00-" TID "-" PID "-01", "tracestate: rojo=1", NULL};
    assert_int_equal(post_with(&group_service, "trace-two", two), 202);
    Got g;
    assert_true(worker_got(&group_standin, "trace-two", &g));
    assert_null(strstr(g.traceparent, TID));
    assert_string_equal(g.tracestate, "-");
    /* a malformed tracestate alone is dropped, the traceparent continued */
    const char *const badstate[] = {"traceparent: 00-" TID "-" PID "-01", "tracestate: Rojo=1",
                                    NULL};
    assert_int_equal(post_with(&group_service, "trace-badstate", badstate), 202);
    assert_true(worker_got(&group_standin, "trace-badstate", &g));
    assert_non_null(strstr(g.traceparent, TID));
    assert_string_equal(g.tracestate, "-");
}

/* The worker down: the job is spooled with its trace (spool show), and delivered with it once the
 * worker is back: the same trace id and span id, the tracestate; the log lines of the spooling
 * and of the delivery carry them. */
static void test_kept_through_the_spool(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, NULL);
    const char *const headers[] = {"traceparent: 00-" TID "-" PID "-01", "tracestate: rojo=1",
                                   NULL};
    assert_int_equal(post_with(&svc, "trace-spooled", headers), 202);
    int64_t id = spool_id_of(&f, "trace-spooled", false);
    assert_true(id > 0);
    json_object *job = spool_show_json(&f, id);
    assert_non_null(job);
    char stored[64];
    snprintf(stored, sizeof(stored), "%s", job_string(job, "traceparent"));
    assert_string_equal(job_string(job, "tracestate"), "rojo=1");
    json_object_put(job);
    char trace_id[33], span_id[17];
    assert_traceparent(stored, trace_id, span_id, "01");
    assert_string_equal(trace_id, TID);
    assert_log_trace(&svc, "trace-spooled", "job spooled", TID, span_id);

    spooled_worker_back(&f);
    assert_true(standin_wait_keys(&f.worker, "trace-spooled", 1, 45000));
    Got g;
    assert_true(worker_got(&f.worker, "trace-spooled", &g));
    assert_string_equal(g.traceparent, stored);
    assert_string_equal(g.tracestate, "rojo=1");
    assert_log_trace(&svc, "trace-spooled", "job delivered from the spool", TID, span_id);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest group[] = {
        cmocka_unit_test(test_continued),
        cmocka_unit_test(test_absent),
        cmocka_unit_test(test_malformed),
    };
    const struct CMUnitTest spool[] = {
        cmocka_unit_test(test_kept_through_the_spool),
    };
    int r = cmocka_run_group_tests(group, service_group_setup, service_group_teardown);
    return r | cmocka_run_group_tests(spool, NULL, NULL);
}
