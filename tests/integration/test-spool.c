/* SPDX-License-Identifier: MIT */
/* The durable spool (issue #11) seen from outside: a worker that is down gets jobs answered
 * `queued`, delivered once it is back (once each, in order), after a restart without any client
 * request, and as dead letters when it refuses them; a corrupt file is moved aside; a full spool
 * answers 503; IDLE_EXIT_SEC waits for the spool. And the breaker, which now counts attempts.
 * The worker's "down" is a loopback port nothing listens on; "back" is a stand-in started on
 * that port. The spool lives in a temporary folder of the test's own, shared by the daemons a
 * test starts one after another. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <setjmp.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"
#include "spool-fixture.h"

/* Long enough for the delivery's backoff after a few failures (1 s doubling) and a sanitized
 * build: a bound, not an expectation. */
#define DELIVERY_WAIT_MS 45000

static const char *member(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : NULL;
}

/* POSTs a job and checks the answer is 202 queued with its placeId and jobId. */
static void post_queued(const Service *svc, const char *place_id)
{
    Response r = service_enqueue(svc, place_id);
    assert_int_equal(r.status, 202);
    json_object *o = json_tokener_parse(r.body);
    assert_non_null(o);
    assert_string_equal(member(o, "status"), "queued");
    assert_string_equal(member(o, "placeId"), place_id);
    char job[160];
    snprintf(job, sizeof(job), "reviews:%s:start", place_id);
    assert_string_equal(member(o, "jobId"), job);
    assert_non_null(member(o, "timestamp"));
    json_object_put(o);
    response_free(&r);
}

/* Whether every placeId reached the stand-in exactly `times` times, waiting (bounded). */
static bool wait_counts(const Standin *s, const char *const *places, size_t n, unsigned times,
                        int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        bool all = true;
        for (size_t i = 0; all && i < n; i++)
            all = standin_count(s, places[i]) >= times;
        if (all)
            return true;
        if (now_ms() >= deadline)
            return false;
        usleep(50 * 1000);
    }
}

static void assert_ready_200(const Service *svc)
{
    Response r = service_get(svc, "/ready");
    assert_int_equal(r.status, 200);
    response_free(&r);
}

/* Whether one line of the daemon's log has both a and b. */
static bool log_line_has(const Service *svc, const char *a, const char *b)
{
    FILE *fp = fopen(svc->log_path, "re");
    if (!fp)
        return false;
    char *line = NULL;
    size_t cap = 0;
    bool found = false;
    while (!found && getline(&line, &cap, fp) > 0)
        found = strstr(line, a) && strstr(line, b);
    free(line);
    fclose(fp);
    return found;
}

/* Worker down: queued, counted, /ready stays 200 with the breaker open, one record for a
 * placeId sent twice. Worker back: each delivered once, in the order they came (one
 * connection to the worker, so one delivery at a time), but for those whose delivery failed
 * while the worker was down: each of those waits out its own backoff (issue #20), and the
 * others go meanwhile. */
static void test_down_queued_then_delivered_once_in_order(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, "WORKER_MAX_CONNECTIONS=1", "BREAKER_THRESHOLD=3", NULL);

    static const char *const places[] = {"order-a", "order-b", "order-c", "order-d",
                                         "order-e", "order-f", "order-g"};
    const size_t n = sizeof(places) / sizeof(places[0]);
    for (size_t i = 0; i < n; i++)
        post_queued(&svc, places[i]);
    assert_true(service_wait_metric(&svc, "argus_spool_jobs", (double)n, 5000));
    assert_true(service_metric(&svc, "argus_spool_jobs_total{result=\"queued\"}") == (double)n);
    assert_true(service_metric(&svc, "argus_spool_up") == 1);

    /* Three failed attempts opened the breaker (half-open once its 1 s cool-down is over and
     * until a probe fails again): still ready, the spool takes jobs. */
    double breaker = service_metric(&svc, "argus_breaker_state");
    assert_true(breaker == 1 || breaker == 2);
    assert_ready_200(&svc);

    /* The same placeId again: answered queued, no second record. */
    post_queued(&svc, "order-c");
    assert_true(service_metric(&svc, "argus_spool_jobs") == (double)n);
    assert_true(service_metric(&svc, "argus_spool_jobs_total{result=\"queued\"}") == (double)n + 1);

    spooled_worker_back(&f);
    assert_true(service_wait_metric(&svc, "argus_spool_jobs", 0, DELIVERY_WAIT_MS));
    assert_true(
        service_wait_metric(&svc, "argus_spool_jobs_total{result=\"delivered\"}", (double)n, 5000));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(standin_count(&f.worker, places[i]), 1);
    char *order = standin_order(&f.worker);
    assert_non_null(order);
    char expected[256] = "", got[256] = "";
    for (size_t i = 0; i < n; i++) {
        char place[64];
        snprintf(place, sizeof(place), "\"placeId\":\"%s\"", places[i]);
        if (log_line_has(&svc, place, "delivery from the spool failed"))
            continue;
        snprintf(expected + strlen(expected), sizeof(expected) - strlen(expected), "%s\n",
                 places[i]);
    }
    /* the order in which the stand-in saw those that never failed */
    for (const char *p = order; *p;) {
        const char *end = strchr(p, '\n');
        assert_non_null(end);
        char line[64];
        snprintf(line, sizeof(line), "%.*s\n", (int)(end - p), p);
        char needle[80];
        snprintf(needle, sizeof(needle), "\"placeId\":\"%.*s\"", (int)(end - p), p);
        if (!log_line_has(&svc, needle, "delivery from the spool failed"))
            snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s", line);
        p = end + 1;
    }
    assert_string_equal(got, expected);
    free(order);
    assert_true(service_metric(&svc, "argus_spool_oldest_job_age_seconds") == 0);

    /* Nothing is delivered twice later on. */
    usleep(1500 * 1000);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(standin_count(&f.worker, places[i]), 1);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* Jobs spooled, the daemon stopped (exit 0), a new one on the same spool with the worker back
 * delivers them with no client request at all. */
static void test_restart_delivers_without_a_request(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, NULL);
    static const char *const places[] = {"restart-1", "restart-2", "restart-3", "restart-4"};
    const size_t n = sizeof(places) / sizeof(places[0]);
    for (size_t i = 0; i < n; i++)
        post_queued(&svc, places[i]);
    spooled_stop(&svc);
    struct stat st;
    assert_int_equal(stat(f.dir, &st), 0);

    spooled_worker_back(&f);
    /* The harness's check that the socket listens is a connection, no request: it starts the
     * daemon, as a connection would under systemd (the unit's .path does it in production). */
    spooled_start(&svc, &f, NULL);
    assert_true(wait_counts(&f.worker, places, n, 1, DELIVERY_WAIT_MS));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(standin_count(&f.worker, places[i]), 1);
    assert_true(service_wait_metric(&svc, "argus_spool_jobs", 0, 5000));
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "re");
    if (!fp)
        return NULL;
    char *buf = malloc(1 << 16);
    *len = fread(buf, 1, 1 << 16, fp);
    fclose(fp);
    return buf;
}

/* Garbage in spool.sqlite: moved aside with its bytes, logged, and the service spools again. */
static void test_corrupt_file_is_moved_aside(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    char path[160];
    snprintf(path, sizeof(path), "%s/spool.sqlite", f.dir);
    char garbage[8192];
    for (size_t i = 0; i < sizeof(garbage); i++)
        garbage[i] = (char)("not a database, just garbage\n"[i % 29]);
    FILE *fp = fopen(path, "we");
    assert_non_null(fp);
    assert_int_equal(fwrite(garbage, 1, sizeof(garbage), fp), sizeof(garbage));
    fclose(fp);

    Service svc;
    spooled_start(&svc, &f, NULL);
    post_queued(&svc, "corrupt-after");
    assert_true(service_metric(&svc, "argus_spool_jobs") == 1);
    assert_true(service_metric(&svc, "argus_spool_up") == 1);
    assert_true(service_log_contains(&svc, "corrupt spool moved aside to"));
    assert_true(service_log_contains(&svc, "\"level\":\"error\""));

    DIR *d = opendir(f.dir);
    assert_non_null(d);
    unsigned aside = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, "spool.sqlite.corrupt-", 21) != 0 || strstr(e->d_name, "-wal") ||
            strstr(e->d_name, "-shm"))
            continue;
        char p[384];
        snprintf(p, sizeof(p), "%s/%s", f.dir, e->d_name);
        size_t len = 0;
        char *bytes = read_file(p, &len);
        assert_non_null(bytes);
        assert_int_equal(len, sizeof(garbage));
        assert_memory_equal(bytes, garbage, sizeof(garbage));
        free(bytes);
        aside++;
    }
    closedir(d);
    assert_int_equal(aside, 1);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* SPOOL_MAX_JOBS=3: three queued, the fourth answered as without a spool, logged and counted;
 * whether the fourth met the worker (BREAKER_THRESHOLD high) or the open breaker (threshold 1,
 * opened by the first job's attempt). */
static void full_spool(const char *breaker_threshold)
{
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, "SPOOL_MAX_JOBS=3", breaker_threshold, NULL);
    post_queued(&svc, "full-1");
    post_queued(&svc, "full-2");
    post_queued(&svc, "full-3");
    Response r = service_enqueue(&svc, "full-4");
    assert_int_equal(r.status, 503);
    char ra[16];
    assert_true(response_header(&r, "Retry-After", ra, sizeof(ra)));
    assert_true(atoi(ra) >= 1);
    json_object *o = json_tokener_parse(r.body);
    assert_non_null(o);
    assert_non_null(member(o, "error"));
    json_object_put(o);
    response_free(&r);
    assert_true(service_metric(&svc, "argus_spool_jobs") == 3);
    assert_true(service_metric(&svc, "argus_spool_jobs_total{result=\"error\"}") == 1);
    assert_true(service_metric(&svc, "argus_spool_jobs_total{result=\"queued\"}") == 3);
    assert_true(service_log_contains(&svc, "not spooled"));
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

static void test_full_spool_answers_503(void **state)
{
    (void)state;
    full_spool("BREAKER_THRESHOLD=1000");
}

static void test_full_spool_answers_503_breaker_open(void **state)
{
    (void)state;
    full_spool("BREAKER_THRESHOLD=1");
}

/* A spooled job the worker refuses (400) once back becomes a dead letter, tried once; a 400 from
 * a worker that is up answers the client as before and spools nothing. */
static void test_dead_letter_and_inline_refusal(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, NULL);
    post_queued(&svc, "status400-dead-1");
    assert_true(service_metric(&svc, "argus_spool_jobs") == 1);

    spooled_worker_back(&f);
    assert_true(service_wait_metric(&svc, "argus_spool_dead_letters", 1, DELIVERY_WAIT_MS));
    assert_true(service_metric(&svc, "argus_spool_jobs") == 0);
    assert_true(service_metric(&svc, "argus_spool_jobs_total{result=\"dead\"}") == 1);
    assert_int_equal(standin_count(&f.worker, "status400-dead-1"), 1);
    assert_true(service_log_contains(&svc, "kept as a dead letter"));
    usleep(2500 * 1000); /* past the delivery's first backoff: still not tried again */
    assert_int_equal(standin_count(&f.worker, "status400-dead-1"), 1);

    Response r = service_enqueue(&svc, "status400-inline-1");
    assert_int_equal(r.status, 502);
    response_free(&r);
    assert_int_equal(standin_count(&f.worker, "status400-inline-1"), 1);
    assert_true(service_metric(&svc, "argus_spool_jobs") == 0);
    assert_true(service_metric(&svc, "argus_spool_dead_letters") == 1);
    assert_true(service_metric(&svc, "argus_spool_jobs_total{result=\"queued\"}") == 1);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* Without a spool the breaker counts failed attempts, not calls: one call whose two attempts
 * time out opens it (threshold 2), and its remaining retries are not made. */
static void test_breaker_counts_attempts(void **state)
{
    (void)state;
    Standin worker;
    standin_start(&worker);
    char url[96];
    snprintf(url, sizeof(url), "WORKER_NODE_URL=%s", worker.url);
    const char *env[] = {url,
                         "SPOOL_DIR=",
                         "BREAKER_THRESHOLD=2",
                         "BREAKER_COOLDOWN_SEC=30",
                         "WORKER_RETRIES=5",
                         "WORKER_TIMEOUT_MS=300",
                         NULL};
    Service svc;
    service_start(&svc, env);
    assert_ready_200(&svc);
    Response r = service_enqueue(&svc, "hang-breaker-attempts");
    assert_true(r.status == 504 || r.status == 503 || r.status == 502);
    response_free(&r);
    assert_int_equal(standin_count(&worker, "hang-breaker-attempts"), 2);
    assert_true(service_metric(&svc, "argus_breaker_state") == 1);
    assert_true(service_metric(&svc, "argus_spool_up") == -1); /* no spool: no series */
    r = service_get(&svc, "/ready");
    assert_int_equal(r.status, 503);
    response_free(&r);
    spooled_stop(&svc);
    standin_stop(&worker);
}

/* IDLE_EXIT_SEC=1: jobs wait in the spool, the daemon stays; once they are delivered it leaves,
 * cleanly, by itself. */
static void test_idle_exit_waits_for_the_spool(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, "IDLE_EXIT_SEC=1", NULL);
    static const char *const places[] = {"idle-spool-1", "idle-spool-2"};
    post_queued(&svc, places[0]);
    post_queued(&svc, places[1]);
    /* No connection for 3 s: it would have left by now without the jobs. */
    assert_int_equal(service_wait_exit(&svc, 3000), -1);

    spooled_worker_back(&f);
    assert_int_equal(service_wait_exit(&svc, DELIVERY_WAIT_MS), 0);
    assert_int_equal(standin_count(&f.worker, places[0]), 1);
    assert_int_equal(standin_count(&f.worker, places[1]), 1);
    assert_true(service_log_contains(&svc, "no connection for 1s"));
    service_cleanup(&svc);
    spooled_cleanup(&f);
}

/* The other tests run with no SPOOL_DIR and no STATE_DIRECTORY: the daemon gets only what the
 * harness passes, whatever this process's environment holds. */
static void test_no_spool_unless_configured(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    setenv("STATE_DIRECTORY", f.dir, 1);
    const char *env[] = {f.env_worker, NULL};
    Service svc;
    service_start(&svc, env);
    Response r = service_enqueue(&svc, "nospool-1");
    assert_int_equal(r.status, 503);
    response_free(&r);
    assert_true(service_metric(&svc, "argus_spool_up") == -1);
    assert_true(service_metric(&svc, "argus_spool_jobs") == -1);
    spooled_stop(&svc);
    unsetenv("STATE_DIRECTORY");
    char path[160];
    snprintf(path, sizeof(path), "%s/spool.sqlite", f.dir);
    assert_int_equal(access(path, F_OK), -1);
    spooled_cleanup(&f);
}

/* How many lines of the daemon's log have `needle`. */
static unsigned log_count(const Service *svc, const char *needle)
{
    FILE *fp = fopen(svc->log_path, "re");
    if (!fp)
        return 0;
    char *line = NULL;
    size_t cap = 0;
    unsigned n = 0;
    while (getline(&line, &cap, fp) > 0)
        n += strstr(line, needle) != NULL;
    free(line);
    fclose(fp);
    return n;
}

/* Waits (bounded) until the daemon's log has `n` lines with `needle`. */
static bool wait_log_count(const Service *svc, const char *needle, unsigned n, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    for (;;) {
        if (log_count(svc, needle) >= n)
            return true;
        if (now_ms() >= deadline)
            return false;
        usleep(50 * 1000);
    }
}

/* The spool's write lock held by another connection past the daemon's 5 s busy timeout: the job
 * posted meanwhile is answered as without a spool and the spool is down. Once the lock is gone
 * it comes back, and delivers, by itself: no client request after that. */
static void test_recovers_without_client_traffic(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, NULL);
    static const char *const places[] = {"locked-1", "locked-2", "locked-3"};
    const size_t n = sizeof(places) / sizeof(places[0]);
    for (size_t i = 0; i < n; i++)
        post_queued(&svc, places[i]);
    assert_true(service_wait_metric(&svc, "argus_spool_jobs", (double)n, 5000));

    char path[160];
    snprintf(path, sizeof(path), "%s/spool.sqlite", f.dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_busy_timeout(db, 10000), SQLITE_OK); /* the daemon may be writing */
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);

    /* Its add waits 5 s for the lock, then fails: answered as without a spool. */
    Response r = service_enqueue(&svc, "locked-refused");
    assert_true(r.status == 503 || r.status == 504);
    char ra[16];
    assert_true(response_header(&r, "Retry-After", ra, sizeof(ra)));
    response_free(&r);
    assert_true(service_wait_metric(&svc, "argus_spool_up", 0, 5000));
    /* Held two busy timeouts more: what the delivery asked before the spool went down (notes
     * of failed attempts, each group waiting 5 s) fails too, so that nothing is left queued
     * whose commit would bring the spool back. From here on only the spool itself can. */
    usleep(11 * 1000 * 1000);
    assert_true(service_metric(&svc, "argus_spool_up") == 0);

    assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    spooled_worker_back(&f);
    /* Only GET /metrics from here on. */
    assert_true(service_wait_metric(&svc, "argus_spool_up", 1, 20000));
    assert_true(wait_counts(&f.worker, places, n, 1, 20000));
    assert_true(service_wait_metric(&svc, "argus_spool_jobs", 0, 5000));
    for (size_t i = 0; i < n; i++)
        assert_int_equal(standin_count(&f.worker, places[i]), 1);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* A redirect (3xx) from the worker is not its final word on a spooled job: kept and tried again,
 * never a dead letter. */
static void test_redirect_is_not_a_dead_letter(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, NULL);
    static const char *const place = "status301-redirected-1";
    post_queued(&svc, place);
    assert_true(service_wait_metric(&svc, "argus_spool_jobs", 1, 5000));

    spooled_worker_back(&f);
    /* Tried once, then (kept) tried again after the delivery's backoff. */
    const char *const one[] = {place};
    assert_true(wait_counts(&f.worker, one, 1, 1, DELIVERY_WAIT_MS));
    assert_true(wait_log_count(&svc, "delivery from the spool failed, will retry: ", 1, 5000));
    assert_true(wait_counts(&f.worker, one, 1, 2, 20000));
    assert_true(service_metric(&svc, "argus_spool_dead_letters") == 0);
    assert_true(service_metric(&svc, "argus_spool_jobs_total{result=\"dead\"}") == 0);
    assert_true(service_metric(&svc, "argus_spool_jobs") == 1);
    assert_true(service_log_lacks(&svc, "kept as a dead letter"));
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* A job waiting in the spool that a client sends again once the worker is back: the worker takes
 * it inline (BREAKER_THRESHOLD=0, no breaker), and the spooled copy is forgotten, not delivered a
 * second time. The stand-in starts just after a failed delivery, whose backoff (at least 2 s
 * after the third failure) leaves time for the client's request to get there first. */
static void test_inline_success_forgets_the_spooled_copy(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, "BREAKER_THRESHOLD=0", NULL);
    static const char *const place = "inline-forget-1";
    post_queued(&svc, place);
    assert_true(service_wait_metric(&svc, "argus_spool_jobs", 1, 5000));
    assert_true(wait_log_count(&svc, "delivery from the spool failed, will retry: ", 3, 15000));

    spooled_worker_back(&f);
    Response r = service_enqueue(&svc, place);
    assert_int_equal(r.status, 202);
    json_object *o = json_tokener_parse(r.body);
    assert_non_null(o);
    assert_string_equal(member(o, "status"), "enqueued");
    json_object_put(o);
    response_free(&r);
    assert_true(service_wait_metric(&svc, "argus_spool_jobs", 0, 5000));

    /* Past the delivery's backoff (10 s at most): a second copy would have gone by now. */
    long long deadline = now_ms() + 14000;
    while (now_ms() < deadline && standin_count(&f.worker, place) < 2)
        usleep(100 * 1000);
    assert_int_equal(standin_count(&f.worker, place), 1);
    assert_true(service_metric(&svc, "argus_spool_jobs_total{result=\"delivered\"}") == 0);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

static void unlink_spool_files(const Spooled *f)
{
    static const char *const names[] = {"spool.sqlite", "spool.sqlite-wal", "spool.sqlite-shm"};
    for (size_t i = 0; i < 3; i++) {
        char path[160];
        snprintf(path, sizeof(path), "%s/%s", f->dir, names[i]);
        (void)unlink(path);
    }
}

/* An operator deletes spool.sqlite (and its -wal, -shm) under the running daemon. A job answered
 * 202 after that must be in the new file, not committed into the deleted one: after a SIGKILL, a
 * new daemon delivers it. The job spooled before the removal is lost with the deleted file: the
 * expected consequence of deleting it, not something the daemon can help. */
static void test_spool_file_removed_under_the_daemon(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, NULL);
    post_queued(&svc, "removed-before");
    assert_true(service_wait_metric(&svc, "argus_spool_jobs", 1, 5000));
    unlink_spool_files(&f);

    /* The first add after the removal may be refused (the group that saw it failed, the store
     * was opened again); the next ones go to the new file. */
    char names[5][32];
    const char *queued[5];
    size_t n_queued = 0;
    for (int i = 0; i < 5 && n_queued < 2; i++) {
        snprintf(names[i], sizeof(names[i]), "removed-after-%d", i);
        Response r = service_enqueue(&svc, names[i]);
        if (r.status == 202) {
            json_object *o = json_tokener_parse(r.body);
            assert_non_null(o);
            assert_string_equal(member(o, "status"), "queued");
            json_object_put(o);
            queued[n_queued++] = names[i];
        } else
            assert_true(r.status == 503 || r.status == 504);
        response_free(&r);
    }
    assert_true(n_queued >= 1);
    char path[160];
    snprintf(path, sizeof(path), "%s/spool.sqlite", f.dir);
    assert_int_equal(access(path, F_OK), 0);

    assert_int_equal(service_stop(&svc, SIGKILL), -1);
    service_cleanup(&svc);
    spooled_worker_back(&f);
    spooled_start(&svc, &f, NULL);
    assert_true(wait_counts(&f.worker, queued, n_queued, 1, DELIVERY_WAIT_MS));
    assert_true(service_wait_metric(&svc, "argus_spool_jobs", 0, 5000));
    for (size_t i = 0; i < n_queued; i++)
        assert_int_equal(standin_count(&f.worker, queued[i]), 1);
    assert_int_equal(standin_count(&f.worker, "removed-before"), 0);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* The daemon's CPU time so far, in clock ticks (utime + stime of /proc/PID/stat). */
static unsigned long long process_cpu_ticks(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *fp = fopen(path, "re");
    assert_non_null(fp);
    size_t k = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[k] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    assert_non_null(p);
    unsigned long long utime = 0, stime = 0;
    assert_int_equal(
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime), 2);
    return utime + stime;
}

/* A job in its backoff comes due while no delivery may start (the window of 1 taken by a slow
 * one): nothing to do until that one ends, and the loop waits for it. It spun instead, a timer
 * armed again and again for the passed due time, a whole core for as long as the slow call
 * lasted. A bound on CPU time, far from both: idle, a few ticks; spinning, most of the time. */
static void test_job_due_while_the_window_is_full_does_not_spin(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    const char *env[] = {
        f.env_worker,          f.env_dir, "WORKER_TIMEOUT_MS=30000", "SPOOL_RETRY_MAX_SEC=1",
        "BREAKER_THRESHOLD=0", NULL};
    service_start(&svc, env);
    static const char *const bad = "status503-spin-1", *const slow = "slow8000-spin-2";
    post_queued(&svc, bad);
    post_queued(&svc, slow);
    spooled_worker_back(&f);
    const char *const one[] = {slow};
    assert_true(wait_counts(&f.worker, one, 1, 1, DELIVERY_WAIT_MS));
    /* The refused job's next try (1 s at most) comes due while the slow call (8 s) lasts. */
    usleep(1500 * 1000);
    long ticks_per_sec = sysconf(_SC_CLK_TCK);
    unsigned long long before = process_cpu_ticks(svc.pid);
    usleep(4000 * 1000);
    unsigned long long used = process_cpu_ticks(svc.pid) - before;
    assert_true(standin_count(&f.worker, slow) == 1);
    assert_true(used < (unsigned long long)ticks_per_sec); /* under 1 s of CPU in 4 s */
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* How many records of job_id wait in the spool (held or not), read on the test's connection db
 * (another one's close would tell the daemon, by inotify, that the spool changed). */
static int waiting_records(sqlite3 *db, const char *job_id)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT count(*) FROM jobs WHERE dead = 0 AND job_id = ?1",
                                        -1, &st, NULL),
                     SQLITE_OK);
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return n;
}

/* A held job removed by another process (here a connection that stays open, so that the daemon
 * has not heard of it yet): a client sending that job again is answered 202 "queued" only once
 * its record is on disk. The daemon answered from the held job ids it knew, and nothing was. */
static void test_held_job_deleted_then_sent_again_is_on_disk(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, NULL);
    static const char *const place = "held-deleted-1", *const job = "reviews:held-deleted-1:start";
    post_queued(&svc, place);
    assert_true(service_wait_metric(&svc, "argus_spool_jobs", 1, 5000));
    char spool_dir[96], out[512];
    snprintf(spool_dir, sizeof(spool_dir), "--spool-dir=%s", f.dir);
    const char *const hold[] = {argus_binary(), "spool", "hold", "1", spool_dir, NULL};
    assert_int_equal(run_capture(hold, NULL, out, sizeof(out)), 0);
    assert_true(service_wait_metric(&svc, "argus_spool_held_jobs", 1, 5000));
    post_queued(&svc, place); /* held: queued, one record, still held */
    assert_true(service_metric(&svc, "argus_spool_held_jobs") == 1);
    assert_true(service_metric(&svc, "argus_spool_jobs") == 0);

    char path[160];
    snprintf(path, sizeof(path), "%s/spool.sqlite", f.dir);
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_busy_timeout(db, 10000), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "DELETE FROM jobs WHERE id = 1", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(waiting_records(db, job), 0);

    post_queued(&svc, place);
    assert_int_equal(waiting_records(db, job), 1);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* An operator moves the spool's directory away and makes an empty one in its place (or swaps a
 * symlink): a job answered 202 after that must be in the directory SPOOL_DIR names, where the next
 * daemon looks, not in the one moved away, which the daemon kept writing (its file was still
 * there): after a SIGKILL, a new daemon delivers it. */
static void test_spool_dir_moved_away_under_the_daemon(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, NULL);
    post_queued(&svc, "moved-before");
    assert_true(service_wait_metric(&svc, "argus_spool_jobs", 1, 5000));
    char moved[96];
    snprintf(moved, sizeof(moved), "%s.moved", f.dir);
    assert_int_equal(rename(f.dir, moved), 0);
    /* The daemon sees the move (inotify) and may make the directory again before we do. */
    assert_true(mkdir(f.dir, 0750) == 0 || errno == EEXIST);

    /* The first add after the move may be refused (as for a removed file); not the next ones. */
    char names[5][32];
    const char *queued[5];
    size_t n_queued = 0;
    for (int i = 0; i < 5 && n_queued < 2; i++) {
        snprintf(names[i], sizeof(names[i]), "moved-after-%d", i);
        Response r = service_enqueue(&svc, names[i]);
        if (r.status == 202)
            queued[n_queued++] = names[i];
        else
            assert_true(r.status == 503 || r.status == 504);
        response_free(&r);
    }
    assert_true(n_queued >= 1);

    assert_int_equal(service_stop(&svc, SIGKILL), -1);
    service_cleanup(&svc);
    spooled_worker_back(&f);
    spooled_start(&svc, &f, NULL);
    assert_true(wait_counts(&f.worker, queued, n_queued, 1, DELIVERY_WAIT_MS));
    for (size_t i = 0; i < n_queued; i++)
        assert_int_equal(standin_count(&f.worker, queued[i]), 1);
    spooled_stop(&svc);
    spooled_cleanup(&f);
    /* the directory moved away, with the job spooled before the move */
    static const char *const names_moved[] = {"spool.sqlite", "spool.sqlite-wal",
                                              "spool.sqlite-shm", "spool.pending"};
    for (size_t i = 0; i < 4; i++) {
        char path[160];
        snprintf(path, sizeof(path), "%s/%s", moved, names_moved[i]);
        (void)unlink(path);
    }
    assert_int_equal(rmdir(moved), 0);
}

/* A delivery under way when spool.sqlite is removed, and a job spooled into the new file then:
 * the new file's ids start again from 1, and the delivery's end (delivered, by id) deleted the
 * new job of that id, answered 202 and never delivered. A write by id applies only to the job it
 * was about. */
static void test_delivery_ending_after_the_file_was_replaced_spares_new_jobs(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    const char *env[] = {f.env_worker,
                         f.env_dir,
                         "WORKER_TIMEOUT_MS=20000",
                         "BREAKER_COOLDOWN_SEC=1",
                         "SPOOL_RETRY_MAX_SEC=1",
                         NULL};
    service_start(&svc, env);
    static const char *const old = "slow5000-replaced-old", *const new = "status503-replaced-new";
    post_queued(&svc, old);
    spooled_worker_back(&f);
    const char *const one[] = {old};
    assert_true(wait_counts(&f.worker, one, 1, 1, DELIVERY_WAIT_MS)); /* under way, 5 s */
    unlink_spool_files(&f);
    post_queued(&svc, new); /* refused by the worker: spooled, id 1 of the new file */
    assert_true(
        service_wait_metric(&svc, "argus_spool_jobs_total{result=\"delivered\"}", 1, 20000));

    /* Read on a connection of the test's own, again until the daemon has seen the removal (its
     * next commit; a reader may meanwhile see a file whose log was removed with the old one's
     * name, an `rm spool.sqlite*` racing the daemon making the file again) */
    char path[160];
    snprintf(path, sizeof(path), "%s/spool.sqlite", f.dir);
    int n = -1;
    for (long long deadline = now_ms() + 10000; n != 1 && now_ms() < deadline; usleep(100 * 1000)) {
        sqlite3 *db = NULL;
        sqlite3_stmt *st = NULL;
        if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
            sqlite3_busy_timeout(db, 10000) == SQLITE_OK &&
            sqlite3_prepare_v2(db, "SELECT count(*) FROM jobs WHERE dead = 0 AND job_id = ?1", -1,
                               &st, NULL) == SQLITE_OK) {
            sqlite3_bind_text(st, 1, "reviews:status503-replaced-new:start", -1, SQLITE_STATIC);
            n = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : -1;
        }
        sqlite3_finalize(st);
        sqlite3_close(db);
    }
    assert_int_equal(n, 1);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_down_queued_then_delivered_once_in_order),
        cmocka_unit_test(test_restart_delivers_without_a_request),
        cmocka_unit_test(test_corrupt_file_is_moved_aside),
        cmocka_unit_test(test_full_spool_answers_503),
        cmocka_unit_test(test_full_spool_answers_503_breaker_open),
        cmocka_unit_test(test_dead_letter_and_inline_refusal),
        cmocka_unit_test(test_breaker_counts_attempts),
        cmocka_unit_test(test_idle_exit_waits_for_the_spool),
        cmocka_unit_test(test_no_spool_unless_configured),
        cmocka_unit_test(test_recovers_without_client_traffic),
        cmocka_unit_test(test_redirect_is_not_a_dead_letter),
        cmocka_unit_test(test_inline_success_forgets_the_spooled_copy),
        cmocka_unit_test(test_spool_file_removed_under_the_daemon),
        cmocka_unit_test(test_job_due_while_the_window_is_full_does_not_spin),
        cmocka_unit_test(test_held_job_deleted_then_sent_again_is_on_disk),
        cmocka_unit_test(test_spool_dir_moved_away_under_the_daemon),
        cmocka_unit_test(test_delivery_ending_after_the_file_was_replaced_spares_new_jobs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
