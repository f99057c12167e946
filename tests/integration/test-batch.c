/* SPDX-License-Identifier: MIT */
/* POST /enqueue/batch (README, "POST /enqueue/batch"): a result per item in order, 200 or 207,
 * a batch malformed as a whole refused with nothing sent, MAX_BATCH and MAX_BATCH_BYTES,
 * duplicates sent once, the spool taking a whole batch while the worker is down, and
 * MAX_PENDING_JOBS per item. */
#include <json-c/json.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "spool-fixture.h"

/* A place id of this run's own (the stand-in is shared by the tests). */
static const char *place(const char *name)
{
    static char buf[8][128];
    static unsigned k;
    char *p = buf[k++ % 8];
    snprintf(p, sizeof(buf[0]), "%s-%d", name, (int)getpid());
    return p;
}

/* {"placeIds":[…]} of the given strings (NULL-terminated). */
static char *batch_body(const char *first, ...)
{
    static char body[8192];
    size_t n = (size_t)snprintf(body, sizeof(body), "{\"placeIds\":[");
    va_list ap;
    va_start(ap, first);
    size_t k = 0;
    for (const char *s = first; s; s = va_arg(ap, const char *))
        n += (size_t)snprintf(body + n, sizeof(body) - n, "%s\"%s\"", k++ ? "," : "", s);
    va_end(ap);
    snprintf(body + n, sizeof(body) - n, "]}");
    return body;
}

static json_object *parse(const Response *r)
{
    json_object *o = json_tokener_parse(r->body ? r->body : "");
    if (!o)
        fail_msg("not JSON: %s", r->body ? r->body : "(none)");
    return o;
}

static const char *member(json_object *o, const char *key)
{
    json_object *v;
    return json_object_object_get_ex(o, key, &v) ? json_object_get_string(v) : NULL;
}

/* The results array of a batch answer: checks there are n. */
static json_object *results(json_object *o, size_t n)
{
    json_object *a;
    assert_true(json_object_object_get_ex(o, "results", &a));
    assert_int_equal(json_object_array_length(a), n);
    return a;
}

/* Item i: its status word and HTTP status, and its error when want_error. */
static void assert_item(json_object *a, size_t i, const char *status, int http_status,
                        const char *error)
{
    json_object *it = json_object_array_get_idx(a, i), *code;
    if (strcmp(member(it, "status"), status) != 0)
        fail_msg("item %zu: %s", i, json_object_to_json_string(it));
    assert_true(json_object_object_get_ex(it, "httpStatus", &code));
    if (json_object_get_int(code) != http_status)
        fail_msg("item %zu: %s", i, json_object_to_json_string(it));
    if (error && (!member(it, "error") || !strstr(member(it, "error"), error)))
        fail_msg("item %zu: %s", i, json_object_to_json_string(it));
}

static void assert_whole_refused(const Service *svc, const char *body, long status,
                                 const char *error)
{
    Response r = http_post_json(svc, "/enqueue/batch", body);
    if (r.status != status)
        fail_msg("%s: %ld %s", body, r.status, r.body ? r.body : "");
    json_object *o = parse(&r);
    assert_string_equal(member(o, "status"), "error");
    assert_string_equal(member(o, "error"), error);
    json_object_put(o);
    response_free(&r);
}

static void test_all_accepted_200(void **state)
{
    (void)state;
    const char *a = place("all-a"), *b = place("all-b"), *c = place("all-c");
    Response r = http_post_json(&group_service, "/enqueue/batch", batch_body(a, b, c, NULL));
    assert_int_equal(r.status, 200);
    char id[160];
    assert_true(response_header(&r, "X-Request-Id", id, sizeof(id)));
    json_object *o = parse(&r), *res = results(o, 3);
    assert_string_equal(member(o, "status"), "accepted");
    const char *places[] = {a, b, c};
    for (size_t i = 0; i < 3; i++) {
        assert_item(res, i, "enqueued", 202, NULL);
        json_object *it = json_object_array_get_idx(res, i);
        assert_string_equal(member(it, "placeId"), places[i]);
        char job[160];
        snprintf(job, sizeof(job), "reviews:%s:start", places[i]);
        assert_string_equal(member(it, "jobId"), job);
        assert_int_equal(standin_count(&group_standin, places[i]), 1);
    }
    json_object_put(o);
    response_free(&r);
    assert_true(service_metric(&group_service, "argus_batches_total{outcome=\"accepted\"}") >= 1);
    assert_true(
        service_metric(&group_service,
                       "argus_http_requests_total{route=\"enqueue_batch\",status=\"200\"}") >= 1);
}

static void test_mix_207(void **state)
{
    (void)state;
    const char *ok = place("mix-ok"), *refused = place("fail1x400-mix");
    Response r = http_post_json(&group_service, "/enqueue/batch",
                                batch_body(ok, "not valid!", "", refused, NULL));
    assert_int_equal(r.status, 207);
    json_object *o = parse(&r), *res = results(o, 4);
    assert_string_equal(member(o, "status"), "partial");
    assert_item(res, 0, "enqueued", 202, NULL);
    assert_item(res, 1, "error", 400, "placeId is invalid");
    assert_item(res, 2, "error", 400, "placeId is required");
    assert_item(res, 3, "error", 502, "worker enqueue failed: worker returned HTTP 400");
    assert_null(member(json_object_array_get_idx(res, 1), "placeId"));
    json_object_put(o);
    response_free(&r);
    assert_true(service_metric(&group_service, "argus_batches_total{outcome=\"partial\"}") >= 1);
}

static void test_malformed_400_nothing_sent(void **state)
{
    (void)state;
    const char *p = place("malformed");
    char body[256];
    assert_whole_refused(&group_service, "{\"placeIds\":", 400, "invalid JSON");
    assert_whole_refused(&group_service, "[]", 400, "invalid JSON");
    assert_whole_refused(&group_service, "{}", 400, "placeIds is required");
    snprintf(body, sizeof(body), "{\"placeIds\":\"%s\"}", p);
    assert_whole_refused(&group_service, body, 400, "placeIds must be an array");
    snprintf(body, sizeof(body), "{\"placeIds\":[\"%s\",7]}", p);
    assert_whole_refused(&group_service, body, 400, "placeIds must hold strings");
    assert_whole_refused(&group_service, "{\"placeIds\":[]}", 400, "placeIds is empty");
    assert_int_equal(standin_count(&group_standin, p), 0);
    assert_true(service_metric(&group_service, "argus_batches_total{outcome=\"rejected\"}") >= 6);
}

static void test_duplicates_sent_once(void **state)
{
    (void)state;
    const char *a = place("dup-a"), *b = place("dup-b");
    Response r = http_post_json(&group_service, "/enqueue/batch", batch_body(a, a, b, a, NULL));
    assert_int_equal(r.status, 200);
    json_object *o = parse(&r), *res = results(o, 4);
    for (size_t i = 0; i < 4; i++)
        assert_item(res, i, "enqueued", 202, NULL);
    assert_string_equal(member(json_object_array_get_idx(res, 3), "placeId"), a);
    json_object_put(o);
    response_free(&r);
    assert_int_equal(standin_count(&group_standin, a), 1);
    assert_int_equal(standin_count(&group_standin, b), 1);
}

/* MAX_BATCH items (413, "too many"), MAX_BATCH_BYTES of body (413, before the body is read when
 * announced), while /enqueue keeps MAX_BODY_BYTES. */
static void test_limits_413(void **state)
{
    (void)state;
    Service svc;
    service_start_for_group(&svc, "MAX_BATCH=3", "MAX_BATCH_BYTES=512", "MAX_BODY_BYTES=128");
    const char *p = place("limits");
    assert_whole_refused(&svc, batch_body(p, p, p, p, NULL), 413, "too many placeIds (at most 3)");
    char big[1024];
    snprintf(big, sizeof(big), "{\"placeIds\":[\"%s\"]%600s}", p, "");
    assert_whole_refused(&svc, big, 413, "request body too large");
    assert_int_equal(standin_count(&group_standin, p), 0);

    /* 200 bytes: over MAX_BODY_BYTES, within MAX_BATCH_BYTES */
    char mid[256], single[256];
    snprintf(mid, sizeof(mid), "{\"placeIds\":[\"%s\"]%150s}", p, "");
    snprintf(single, sizeof(single), "{\"placeId\":\"%s\"}%150s", p, "");
    Response r = http_post_json(&svc, "/enqueue", single);
    assert_int_equal(r.status, 413);
    response_free(&r);
    r = http_post_json(&svc, "/enqueue/batch", mid);
    assert_int_equal(r.status, 200);
    response_free(&r);
    assert_int_equal(standin_count(&group_standin, p), 1);

    /* chunked: a batch of exactly MAX_BATCH_BYTES is taken as with a Content-Length; a body
     * over MAX_BODY_BYTES on another path is 413 (libh2o read it to the larger limit) */
    char exact[513];
    int k = snprintf(exact, sizeof(exact), "{\"placeIds\":[\"%s\"]", p);
    memset(exact + k, ' ', sizeof(exact) - 2 - (size_t)k);
    exact[511] = '}';
    exact[512] = '\0';
    char url[160];
    snprintf(url, sizeof(url), "%s/enqueue/batch", svc.base);
    r = http_request("POST", url, "application/json", exact, "Transfer-Encoding: chunked");
    assert_int_equal(r.status, 200);
    response_free(&r);
    snprintf(url, sizeof(url), "%s/health", svc.base);
    r = http_request("GET", url, "application/json", mid, "Transfer-Encoding: chunked");
    assert_int_equal(r.status, 413);
    response_free(&r);
    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    service_cleanup(&svc);
}

/* MAX_PENDING_JOBS=2: of four jobs that hang at the worker two wait (504 after
 * WORKER_TIMEOUT_MS, one attempt each), the two past the cap are 503 at once. */
static void test_pending_cap_503_each(void **state)
{
    (void)state;
    Service svc;
    service_start_for_group(&svc, "MAX_PENDING_JOBS=2", "WORKER_TIMEOUT_MS=1000",
                            "WORKER_RETRIES=2");
    const char *a = place("hang-cap-a"), *b = place("hang-cap-b"), *c = place("hang-cap-c"),
               *d = place("hang-cap-d");
    Response r = http_post_json(&svc, "/enqueue/batch", batch_body(a, b, c, d, NULL));
    assert_int_equal(r.status, 207);
    json_object *o = parse(&r), *res = results(o, 4);
    assert_item(res, 0, "error", 504, "worker timeout");
    assert_item(res, 1, "error", 504, "worker timeout");
    assert_item(res, 2, "error", 503, "too many pending jobs");
    assert_item(res, 3, "error", 503, "too many pending jobs");
    json_object_put(o);
    response_free(&r);
    assert_int_equal(standin_count(&group_standin, a), 1); /* one attempt: no retry */
    assert_int_equal(standin_count(&group_standin, c), 0);
    assert_true(service_metric(&svc, "argus_pending_jobs_rejected_total") == 2);
    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    service_cleanup(&svc);
}

/* One client thread of test_items_ending_while_sent: rounds of 8 batches at once, each of three
 * jobs drawn from a small shared pool; failed (a status not 200 nor 207) counts those answered
 * otherwise (0: the connection failed). */
typedef struct Stress {
    const char *url;
    unsigned seed;
    int failed;
} Stress;

static void *stress_client(void *userdata)
{
    Stress *st = userdata;
    enum { AT_ONCE = 8, ROUNDS = 40 };
    static const char *const slow[] = {"slow0", "slow1", "slow3"};
    char bodies[AT_ONCE][256];
    const char *b[AT_ONCE];
    long statuses[AT_ONCE];
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t c = 0; c < AT_ONCE; c++) {
            size_t n = (size_t)snprintf(bodies[c], sizeof(bodies[c]), "{\"placeIds\":[");
            for (size_t k = 0; k < 3; k++) {
                st->seed = st->seed * 1103515245u + 12345u;
                n += (size_t)snprintf(bodies[c] + n, sizeof(bodies[c]) - n, "%s\"%s-stress%u-%d\"",
                                      k ? "," : "", slow[(st->seed >> 8) % 3],
                                      (st->seed >> 16) % 10, (int)getpid());
            }
            snprintf(bodies[c] + n, sizeof(bodies[c]) - n, "]}");
            b[c] = bodies[c];
        }
        http_post_parallel(st->url, b, AT_ONCE, statuses, NULL);
        for (size_t c = 0; c < AT_ONCE; c++)
            st->failed += statuses[c] != 200 && statuses[c] != 207;
    }
    return NULL;
}

/* Batches that share jobs, from four clients at once, on four loops with one connection to a
 * worker slower than WORKER_TIMEOUT_MS: a call that a batch's item joined, or one that waited for
 * a slot, may end inside worker_enqueue, before the batch's last item is sent. The batch ended
 * and was freed under the loop that sent it (ASan: a use after free; the service died). Every
 * batch is answered, the pending count comes back to 0, and the service stops cleanly. */
static void test_items_ending_while_sent(void **state)
{
    (void)state;
    char worker[96];
    snprintf(worker, sizeof(worker), "WORKER_NODE_URL=%s", group_standin.url);
    const char *env[] = {worker,
                         "THREADS=4",
                         "WORKER_MAX_CONNECTIONS=1",
                         "WORKER_TIMEOUT_MS=10",
                         "WORKER_RETRIES=0",
                         "BREAKER_THRESHOLD=0",
                         NULL};
    Service svc;
    service_start(&svc, env);
    char url[160];
    snprintf(url, sizeof(url), "%s/enqueue/batch", svc.base);
    Stress st[4];
    pthread_t t[4];
    for (unsigned i = 0; i < 4; i++) {
        st[i] = (Stress){.url = url, .seed = i + 1};
        assert_int_equal(pthread_create(&t[i], NULL, stress_client, &st[i]), 0);
    }
    int failed = 0;
    for (unsigned i = 0; i < 4; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        failed += st[i].failed;
    }
    assert_int_equal(failed, 0);
    Response r = service_get(&svc, "/health");
    assert_int_equal(r.status, 200);
    response_free(&r);
    assert_true(service_wait_metric(&svc, "argus_pending_jobs", 0, 5000));
    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    service_cleanup(&svc);
}

/* The worker down, the spool up: the whole batch on disk when answered, each item "queued"
 * (a duplicate too, and a job already waiting), then delivered once each. */
static void test_spooled_then_delivered(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, NULL);
    const char *names[] = {place("sp-1"), place("sp-2"), place("sp-3"), place("sp-4")};
    Response r = http_post_json(&svc, "/enqueue/batch",
                                batch_body(names[0], names[1], names[0], names[2], names[3], NULL));
    assert_int_equal(r.status, 200);
    json_object *o = parse(&r), *res = results(o, 5);
    for (size_t i = 0; i < 5; i++)
        assert_item(res, i, "queued", 202, NULL);
    json_object_put(o);
    response_free(&r);
    json_object *list = spool_list_json(&f, false);
    assert_non_null(list);
    assert_int_equal(json_object_array_length(list), 4);
    json_object_put(list);
    assert_true(service_metric(&svc, "argus_spool_jobs_total{result=\"queued\"}") == 5);

    r = http_post_json(&svc, "/enqueue/batch", batch_body(names[1], NULL)); /* waits already */
    assert_int_equal(r.status, 200);
    response_free(&r);

    spooled_worker_back(&f);
    assert_true(service_wait_metric(&svc, "argus_spool_jobs", 0, 60000));
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(standin_count(&f.worker, names[i]), 1);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* SPOOL_MAX_JOBS=2: of a batch of four, the first two are spooled, the other two refused
 * each, 503 in their own results. */
static void test_spool_full_503_each(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, "SPOOL_MAX_JOBS=2", NULL);
    const char *names[] = {place("full-1"), place("full-2"), place("full-3"), place("full-4")};
    Response r = http_post_json(&svc, "/enqueue/batch",
                                batch_body(names[0], names[1], names[2], names[3], NULL));
    assert_int_equal(r.status, 207);
    json_object *o = parse(&r), *res = results(o, 4);
    assert_item(res, 0, "queued", 202, NULL);
    assert_item(res, 1, "queued", 202, NULL);
    assert_item(res, 2, "error", 503, "not spooled: spool full (SPOOL_MAX_JOBS)");
    assert_item(res, 3, "error", 503, "not spooled: spool full (SPOOL_MAX_JOBS)");
    json_object_put(o);
    response_free(&r);
    assert_true(service_metric(&svc, "argus_spool_jobs_total{result=\"error\"}") == 2);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* The client's request id goes to the worker with every job of the batch, and each job has its
 * journal entry under it. */
static void test_request_id_on_every_job(void **state)
{
    (void)state;
    const char *a = place("rid-a"), *b = place("rid-b");
    char url[128], header[96], rid[64];
    snprintf(url, sizeof(url), "%s/enqueue/batch", group_service.base);
    snprintf(rid, sizeof(rid), "batch-rid-%d", (int)getpid());
    snprintf(header, sizeof(header), "X-Request-Id: %s", rid);
    Response r = http_request("POST", url, "application/json", batch_body(a, b, NULL), header);
    assert_int_equal(r.status, 200);
    response_free(&r);
    const char *places[] = {a, b};
    for (size_t i = 0; i < 2; i++) {
        char path[160];
        snprintf(path, sizeof(path), "/requests?placeId=%s", places[i]);
        char *ids = standin_get(&group_standin, path);
        assert_non_null(ids);
        if (strncmp(ids, rid, strlen(rid)) != 0)
            fail_msg("%s: the worker saw %s", places[i], ids);
        free(ids);
        char entry[256];
        snprintf(entry, sizeof(entry),
                 "\"placeId\":\"%s\",\"jobId\":\"reviews:%s:start\","
                 "\"requestId\":\"%s\"",
                 places[i], places[i], rid);
        bool logged = false;
        for (int tries = 0; tries < 100 && !logged; tries++) {
            if (tries)
                usleep(20 * 1000); /* the log is written from its own queue */
            logged = service_log_contains(&group_service, entry);
        }
        if (!logged)
            fail_msg("no journal entry with %s", entry);
    }
}

/* With an api-token credential the batch needs it as POST /enqueue does: 401, nothing sent. */
static void test_needs_the_token(void **state)
{
    (void)state;
    char creds[64] = "/tmp/argus-creds-XXXXXX", token[128], env_dir[96], worker[96];
    assert_non_null(mkdtemp(creds));
    snprintf(token, sizeof(token), "%s/api-token", creds);
    FILE *f = fopen(token, "we");
    assert_non_null(f);
    fputs("batch-t0ken\n", f);
    fclose(f);
    snprintf(env_dir, sizeof(env_dir), "CREDENTIALS_DIRECTORY=%s", creds);
    snprintf(worker, sizeof(worker), "WORKER_NODE_URL=%s", group_standin.url);
    const char *env[] = {worker, env_dir, NULL};
    Service svc;
    service_start(&svc, env);
    const char *p = place("auth");
    char url[128];
    snprintf(url, sizeof(url), "%s/enqueue/batch", svc.base);
    Response r = http_request("POST", url, "application/json", batch_body(p, NULL), NULL);
    assert_int_equal(r.status, 401);
    response_free(&r);
    assert_int_equal(standin_count(&group_standin, p), 0);
    r = http_request("POST", url, "application/json", batch_body(p, NULL),
                     "Authorization: Bearer batch-t0ken");
    assert_int_equal(r.status, 200);
    response_free(&r);
    assert_int_equal(standin_count(&group_standin, p), 1);
    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    service_cleanup(&svc);
    unlink(token);
    rmdir(creds);
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_all_accepted_200),
        cmocka_unit_test(test_mix_207),
        cmocka_unit_test(test_malformed_400_nothing_sent),
        cmocka_unit_test(test_duplicates_sent_once),
        cmocka_unit_test(test_request_id_on_every_job),
        cmocka_unit_test(test_needs_the_token),
        cmocka_unit_test(test_limits_413),
        cmocka_unit_test(test_pending_cap_503_each),
        cmocka_unit_test(test_items_ending_while_sent),
        cmocka_unit_test(test_spooled_then_delivered),
        cmocka_unit_test(test_spool_full_503_each),
    };
    return cmocka_run_group_tests(tests, service_group_setup, service_group_teardown);
}
