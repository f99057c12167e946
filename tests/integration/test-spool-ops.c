/* SPDX-License-Identifier: MIT */
/* An operator's hand on each spooled job while the service runs (issue #20): `spool show`,
 * `delete`, `requeue`, `requeue-dead`, `flush`, `hold` and `release`, `--json`, an unknown ID;
 * the service sees each change at once, without a restart. Held jobs are never tried until
 * released, keep their place when a client sends them again, and do not keep the service up.
 * And a spool file removed or replaced under the running service loses no job answered 202.
 * The worker's "down" is a loopback port nothing listens on; "back" is a stand-in started on that
 * port (tests/worker-standin.c). Waits are bounded. */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
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
#include <curl/curl.h>

#include "spool-fixture.h"

/* The longest a worker-down pause lasts (30 s) and then some: a worker back is found by then. */
#define BACK_WAIT_MS 45000
/* What "at once" allows: the change is seen in milliseconds; 0.1.0 looked every 2 s. */
#define AT_ONCE_MS 1500

static void post_queued(const Service *svc, const char *place_id)
{
    char status[16];
    assert_true(post_status(svc, place_id, status));
    assert_string_equal(status, "queued");
}

/* Waits (bounded) until the stand-in has seen place_id `times` times. */
static bool wait_count(const Standin *s, const char *place_id, unsigned times, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    unsigned n;
    while ((n = standin_count(s, place_id)) < times && now_ms() < deadline)
        usleep(50 * 1000);
    if (n < times)
        fprintf(stderr, "%s reached the worker %u times, not %u, in %d ms\n", place_id, n, times,
                timeout_ms);
    return n >= times;
}

/* `spool VERB ID` with the job's id; its exit status. */
static int verb_on(const Spooled *f, const char *verb, int64_t id, char *out, size_t n)
{
    char ids[32];
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    return spool_cli(f, out, n, verb, ids, NULL);
}

/* A job the worker refuses twice with Retry-After: 60 (the client's attempt and the delivery's
 * first): it then waits 60 s for its next attempt. */
static int64_t job_in_backoff(const Service *svc, const Spooled *f, const char *place_id)
{
    post_queued(svc, place_id);
    assert_true(wait_count(&f->worker, place_id, 2, 15000));
    int64_t id = spool_id_of(f, place_id, false);
    assert_true(id > 0);
    return id;
}

/* show (text and --json), status --json, list --json of a job in backoff; every verb on an ID
 * that does not exist says so and exits 1. */
static void test_show_json_and_unknown_ids(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    spooled_worker_back(&f);
    Service svc;
    spooled_start(&svc, &f, "SPOOL_RETRY_MAX_SEC=3600", NULL);
    static const char *const place = "later60s9x-show-1";
    int64_t id = job_in_backoff(&svc, &f, place);

    char out[16384];
    assert_int_equal(verb_on(&f, "show", id, out, sizeof(out)), 0);
    assert_non_null(strstr(out, place));
    assert_non_null(strstr(out, "reviews:later60s9x-show-1:start"));
    assert_non_null(strstr(out, "503"));

    json_object *job = spool_show_json(&f, id);
    assert_non_null(job);
    assert_int_equal(job_int(job, "id"), id);
    assert_string_equal(job_string(job, "placeId"), place);
    assert_string_equal(job_string(job, "jobId"), "reviews:later60s9x-show-1:start");
    assert_true(wait_metric_at_least(&svc, "argus_spool_delivery_attempts_total{outcome=\"retry\"}",
                                     1, 5000));
    json_object_put(job);
    job = spool_show_json(&f, id);
    assert_int_equal(job_int(job, "attempts"), 1);
    assert_non_null(strstr(job_string(job, "lastError"), "503"));
    assert_non_null(job_string(job, "nextAttempt"));
    assert_string_equal(job_string(job, "state"), "waiting");
    json_object_put(job);

    assert_int_equal(spool_cli(&f, out, sizeof(out), "status", "--json", NULL), 0);
    json_object *status = json_tokener_parse(out);
    assert_non_null(status);
    assert_int_equal(job_int(status, "jobs"), 1);
    assert_int_equal(job_int(status, "held"), 0);
    assert_int_equal(job_int(status, "deadLetters"), 0);
    json_object_put(status);
    json_object *jobs = spool_list_json(&f, false);
    assert_non_null(jobs);
    assert_int_equal(json_object_array_length(jobs), 1);
    assert_string_equal(job_string(json_object_array_get_idx(jobs, 0), "placeId"), place);
    json_object_put(jobs);

    static const char *const verbs[] = {"show", "delete", "requeue", "hold", "release"};
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++) {
        assert_int_equal(verb_on(&f, verbs[i], 999999, out, sizeof(out)), 1);
        assert_non_null(strstr(out, "999999"));
    }
    /* one unknown among known ones: says so, exits 1 */
    char ids[32];
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    assert_int_equal(spool_cli(&f, out, sizeof(out), "hold", ids, "999999", NULL), 1);
    assert_non_null(strstr(out, "999999"));
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* delete: the job is gone for the service at once, never tried again. flush: the jobs in backoff
 * (60 s) go at once. Fails on 0.1.0 (neither verb). */
static void test_delete_and_flush_seen_at_once(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    spooled_worker_back(&f);
    Service svc;
    spooled_start(&svc, &f, "SPOOL_RETRY_MAX_SEC=3600", NULL);
    static const char *const flushed[] = {"later60s2x-flush-1", "later60s2x-flush-2"};
    static const char *const deleted = "later60s2x-delete-1";
    job_in_backoff(&svc, &f, flushed[0]);
    job_in_backoff(&svc, &f, flushed[1]);
    int64_t del = job_in_backoff(&svc, &f, deleted);
    assert_true(wait_metric_at_least(&svc, "argus_spool_delivery_attempts_total{outcome=\"retry\"}",
                                     3, 5000));
    assert_true(service_metric(&svc, "argus_spool_jobs") == 3);

    char out[4096];
    assert_int_equal(verb_on(&f, "delete", del, out, sizeof(out)), 0);
    assert_true(wait_metric_at_most(&svc, "argus_spool_jobs", 2, AT_ONCE_MS));
    assert_int_equal(verb_on(&f, "show", del, out, sizeof(out)), 1);

    assert_int_equal(spool_cli(&f, out, sizeof(out), "flush", NULL), 0);
    /* due in 60 s without the flush */
    assert_true(wait_count(&f.worker, flushed[0], 3, 10000));
    assert_true(wait_count(&f.worker, flushed[1], 3, 10000));
    assert_true(wait_metric_at_most(&svc, "argus_spool_jobs", 0, 5000));
    assert_int_equal(standin_count(&f.worker, deleted), 2);
    assert_true(service_metric(&svc, "argus_spool_jobs_total{result=\"delivered\"}") == 2);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* A held job: counted apart (argus_spool_held_jobs), not in the oldest-job gauge; a client
 * sending it again is answered queued, no second record, still held; never tried, the worker
 * back and other jobs delivered; released, delivered. Fails on 0.1.0 (no hold). */
static void test_hold_and_release(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, NULL);
    post_queued(&svc, "held-1");
    post_queued(&svc, "free-1");
    int64_t id = spool_id_of(&f, "held-1", false);
    assert_true(id > 0);
    char out[4096];
    assert_int_equal(verb_on(&f, "hold", id, out, sizeof(out)), 0);
    assert_true(wait_metric_at_least(&svc, "argus_spool_held_jobs", 1, AT_ONCE_MS));
    assert_true(service_metric(&svc, "argus_spool_jobs") == 1);

    post_queued(&svc, "held-1");
    assert_true(service_metric(&svc, "argus_spool_held_jobs") == 1);
    json_object *jobs = spool_list_json(&f, false);
    assert_non_null(jobs);
    assert_int_equal(json_object_array_length(jobs), 2);
    json_object_put(jobs);
    json_object *job = spool_show_json(&f, id);
    assert_string_equal(job_string(job, "state"), "held");
    json_object_put(job);

    spooled_worker_back(&f);
    assert_true(wait_count(&f.worker, "free-1", 1, BACK_WAIT_MS));
    assert_true(wait_metric_at_most(&svc, "argus_spool_jobs", 0, 5000));
    assert_true(service_metric(&svc, "argus_spool_oldest_job_age_seconds") == 0);
    assert_true(service_metric(&svc, "argus_spool_held_jobs") == 1);
    usleep(3000 * 1000);
    assert_int_equal(standin_count(&f.worker, "held-1"), 0);

    assert_int_equal(verb_on(&f, "release", id, out, sizeof(out)), 0);
    /* due at the time its backoff had set (the worker was down then) */
    assert_true(wait_count(&f.worker, "held-1", 1, BACK_WAIT_MS));
    assert_true(wait_metric_at_most(&svc, "argus_spool_held_jobs", 0, 5000));
    assert_true(wait_metric_at_most(&svc, "argus_spool_jobs", 0, 5000));
    usleep(1000 * 1000);
    assert_int_equal(standin_count(&f.worker, "held-1"), 1);
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* IDLE_EXIT_SEC=1 with only a held job: the service leaves (exit 0), spool.pending is gone; a new
 * one, the worker back, does not try it; released, it is delivered. Fails on 0.1.0 (no hold). */
static void test_held_job_lets_the_service_exit_when_idle(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, "IDLE_EXIT_SEC=1", NULL);
    post_queued(&svc, "idle-held-1");
    int64_t id = spool_id_of(&f, "idle-held-1", false);
    assert_true(id > 0);
    char out[4096], pending[160];
    assert_int_equal(verb_on(&f, "hold", id, out, sizeof(out)), 0);
    assert_int_equal(service_wait_exit(&svc, 20000), 0);
    assert_true(service_log_contains(&svc, "no connection for 1s"));
    service_cleanup(&svc);
    snprintf(pending, sizeof(pending), "%s/spool.pending", f.dir);
    assert_int_equal(access(pending, F_OK), -1);

    spooled_worker_back(&f);
    spooled_start(&svc, &f, NULL);
    assert_true(wait_metric_at_least(&svc, "argus_spool_held_jobs", 1, 5000));
    usleep(2000 * 1000);
    assert_int_equal(standin_count(&f.worker, "idle-held-1"), 0);
    assert_int_equal(verb_on(&f, "release", id, out, sizeof(out)), 0);
    assert_true(wait_count(&f.worker, "idle-held-1", 1, BACK_WAIT_MS));
    assert_true(wait_metric_at_most(&svc, "argus_spool_jobs", 0, 5000));
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

#define REQUEUED 100

/* Which copy of each requeued job reached the worker when: the spool's carries the X-Request-Id
 * of the 400 (the first line), the client's its own (none when the client's request joined the
 * spool's call under way). Returns how many went out from the spool after the worker had taken
 * the client's copy. */
static unsigned spool_copies_after_inline(const Standin *worker, char (*places)[32],
                                          char (*rids)[32], size_t n_jobs)
{
    unsigned spool_first = 0, inline_only = 0, joined = 0, twice = 0;
    for (size_t i = 0; i < n_jobs; i++) {
        char *seq = standin_requests(worker, places[i]);
        assert_non_null(seq);
        char *lines[8];
        size_t n = 0;
        for (char *save = NULL, *t = strtok_r(seq, "\n", &save); t && n < 8;
             t = strtok_r(NULL, "\n", &save))
            lines[n++] = t;
        assert_true(n >= 2);
        size_t resend = n;
        bool spool_before = false, spool_after = false;
        for (size_t k = 1; k < n; k++) {
            if (strcmp(lines[k], rids[i]) == 0 && resend == n)
                resend = k;
            else if (strcmp(lines[k], lines[0]) == 0)
                *(resend < k ? &spool_after : &spool_before) = true;
        }
        if (resend == n)
            joined++; /* the client's request joined the spool's call under way */
        else if (spool_after) {
            if (twice < 5) {
                fprintf(stderr,
                        "%s went out from the spool after the worker took it inline:", places[i]);
                for (size_t k = 0; k < n; k++)
                    fprintf(stderr, " %s", lines[k]);
                fprintf(stderr, "\n");
            }
            twice++;
        } else if (spool_before)
            spool_first++;
        else
            inline_only++;
        free(seq);
    }
    printf("# of %zu requeued: %u delivered from the spool before the client's copy came, %u "
           "taken inline only, %u joined by the client on the spool's call, %u sent from the "
           "spool after the worker took them inline\n",
           n_jobs, spool_first, inline_only, joined, twice);
    return twice;
}

/* The case: 100 dead letters (the worker refused each once with a 400, then takes it);
 * `spool requeue-dead`, and at once the clients send the same placeIds again: each reaches the
 * worker again, and none goes out from the spool after the worker took it inline (0.1.0 saw the
 * requeue at its 2 s check, after the clients' copies had gone inline, and sent them a second
 * time). Then one more dead letter: `spool requeue ID` sends it at once. */
static void test_requeue_dead_letters_goes_out_once(void **state)
{
    (void)state;
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, NULL);
    assert_int_equal(post_many(&svc, "fail1x400-rq-", 1, REQUEUED, 32, "queued"), REQUEUED);
    spooled_worker_back(&f);
    assert_true(wait_metric_at_least(&svc, "argus_spool_dead_letters", REQUEUED, BACK_WAIT_MS));
    PrefixCounts c;
    assert_true(standin_prefix(&f.worker, "fail1x400-rq-", &c));
    assert_int_equal(c.posts, REQUEUED);

    char places[REQUEUED][32], rids[REQUEUED][32], status[REQUEUED][16];
    const char *pp[REQUEUED], *rp[REQUEUED];
    long http[REQUEUED];
    for (size_t i = 0; i < REQUEUED; i++) {
        snprintf(places[i], sizeof(places[i]), "fail1x400-rq-%zu", i + 1);
        snprintf(rids[i], sizeof(rids[i]), "resend-%zu", i + 1);
        pp[i] = places[i];
        rp[i] = rids[i];
    }
    char out[4096];
    assert_int_equal(spool_cli(&f, out, sizeof(out), "requeue-dead", NULL), 0);
    post_parallel_rid(&svc, pp, rp, REQUEUED, http, status);
    for (size_t i = 0; i < REQUEUED; i++)
        assert_int_equal(http[i], 202);
    assert_true(wait_metric_at_most(&svc, "argus_spool_dead_letters", 0, 30000));
    assert_true(wait_metric_at_most(&svc, "argus_spool_jobs", 0, 30000));
    usleep(3000 * 1000); /* past a 2 s check */
    assert_int_equal(spool_copies_after_inline(&f.worker, places, rids, REQUEUED), 0);

    /* One more dead letter, made while the worker was down a moment. */
    spooled_worker_down(&f);
    post_queued(&svc, "fail1x400-one-1");
    spooled_worker_back(&f);
    assert_true(wait_metric_at_least(&svc, "argus_spool_dead_letters", 1, BACK_WAIT_MS));
    int64_t one = spool_id_of(&f, "fail1x400-one-1", true);
    assert_true(one > 0);
    assert_int_equal(verb_on(&f, "requeue", one, out, sizeof(out)), 0);
    assert_true(wait_count(&f.worker, "fail1x400-one-1", 2, AT_ONCE_MS));
    assert_true(wait_metric_at_most(&svc, "argus_spool_dead_letters", 0, 5000));
    spooled_stop(&svc);
    spooled_cleanup(&f);
}

/* A spool file removed or replaced under load: 16 clients post distinct jobs with the worker
 * down; a group of them is made to wait for the spool's write lock (held by this test, as another
 * process would) while the file is removed or replaced, so that the group commits into the old
 * file: it must be written again into the new one, or refused; never answered "queued" and lost
 * (0.1.0 checked the file only when a group began). Afterwards a new daemon on that spool
 * directory, the worker back: every job answered 202 queued after the change reaches the worker,
 * once. */
#define CLIENTS 16
#define PER_CLIENT 600

typedef struct LoadJob {
    char place[40];
    long long answered_ms;
    long status;
    bool queued;
} LoadJob;

typedef struct Client {
    pthread_t thread;
    const Service *svc;
    LoadJob *jobs;
    size_t done;
    bool *stop;
} Client;

static void *client_run(void *arg)
{
    Client *c = arg;
    for (size_t i = 0; i < PER_CLIENT && !__atomic_load_n(c->stop, __ATOMIC_ACQUIRE); i++) {
        LoadJob *j = &c->jobs[i];
        Response r = service_enqueue(c->svc, j->place);
        j->answered_ms = now_ms();
        j->status = r.status;
        j->queued = r.status == 202 && r.body && strstr(r.body, "\"status\":\"queued\"");
        response_free(&r);
        __atomic_store_n(&c->done, i + 1, __ATOMIC_RELEASE);
    }
    return NULL;
}

typedef enum Change { REMOVE_FILES, SWAP_SYMLINK, REMOVE_DIR } Change;

static void change_spool(const Spooled *f, Change how)
{
    char path[384], other[160];
    static const char *const names[] = {"spool.sqlite", "spool.sqlite-wal", "spool.sqlite-shm"};
    if (how == SWAP_SYMLINK) {
        snprintf(path, sizeof(path), "%s.old", f->dir);
        assert_int_equal(rename(f->dir, path), 0);
        snprintf(other, sizeof(other), "%s.new", f->dir);
        assert_int_equal(mkdir(other, 0700), 0);
        assert_int_equal(symlink(other, f->dir), 0);
        return;
    }
    if (how == REMOVE_FILES) {
        for (size_t i = 0; i < 3; i++) {
            snprintf(path, sizeof(path), "%s/%s", f->dir, names[i]);
            (void)unlink(path);
        }
        return;
    }
    /* rm -rf */
    DIR *d = opendir(f->dir);
    assert_non_null(d);
    for (struct dirent *e; (e = readdir(d));)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            snprintf(path, sizeof(path), "%s/%s", f->dir, e->d_name);
            (void)unlink(path);
        }
    closedir(d);
    assert_int_equal(rmdir(f->dir), 0);
}

/* The spool's write lock, taken as `spool` or any other process would; NULL to let it go. */
static sqlite3 *spool_lock(const Spooled *f, sqlite3 *db)
{
    if (db) {
        assert_int_equal(sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(sqlite3_close(db), SQLITE_OK);
        return NULL;
    }
    char path[160];
    snprintf(path, sizeof(path), "%s/spool.sqlite", f->dir);
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_busy_timeout(db, 10000), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
    return db;
}

static void removed_under_load(Change how)
{
    Spooled f;
    spooled_init(&f);
    Service svc;
    spooled_start(&svc, &f, NULL);
    assert_int_equal(post_many(&svc, "gone-before-", 1, 100, 16, "queued"), 100);
    /* The lock taken first: the clients' first group waits for it (the service's commits would
     * starve a busy wait for it under load), the file is changed meanwhile. */
    sqlite3 *db = spool_lock(&f, NULL);
    LoadJob *jobs = calloc(CLIENTS * PER_CLIENT, sizeof(*jobs));
    assert_non_null(jobs);
    Client clients[CLIENTS];
    bool stop = false;
    for (size_t c = 0; c < CLIENTS; c++) {
        clients[c] = (Client){.svc = &svc, .jobs = jobs + c * PER_CLIENT, .stop = &stop};
        for (size_t i = 0; i < PER_CLIENT; i++)
            snprintf(clients[c].jobs[i].place, sizeof(clients[c].jobs[i].place), "gone%d-%zu-%zu",
                     (int)how, c, i);
        assert_int_equal(pthread_create(&clients[c].thread, NULL, client_run, &clients[c]), 0);
    }
    usleep(300 * 1000);
    change_spool(&f, how);
    long long changed = now_ms();
    usleep(300 * 1000);
    db = spool_lock(&f, db);
    usleep(500 * 1000);
    __atomic_store_n(&stop, true, __ATOMIC_RELEASE);
    for (size_t c = 0; c < CLIENTS; c++)
        pthread_join(clients[c].thread, NULL);

    bool told = service_log_contains(&svc, "removed or replaced while in use");
    /* What the spool's directory holds is what a restart (or the path unit) sees. */
    spooled_stop(&svc);
    spooled_worker_back(&f);
    spooled_start(&svc, &f, NULL);
    assert_true(wait_metric_at_most(&svc, "argus_spool_jobs", 0, BACK_WAIT_MS + 15000));
    unsigned after = 0, missing = 0, twice = 0, refused = 0;
    for (size_t i = 0; i < CLIENTS * PER_CLIENT; i++) {
        if (jobs[i].answered_ms <= changed)
            continue;
        if (!jobs[i].queued) {
            refused += jobs[i].status != 0;
            continue;
        }
        after++;
        unsigned n = standin_count(&f.worker, jobs[i].place);
        if (n == 0 && missing++ < 10)
            fprintf(stderr, "%s answered queued %lld ms after the change, never delivered\n",
                    jobs[i].place, jobs[i].answered_ms - changed);
        twice += n > 1;
    }
    printf("# after the change: %u jobs answered queued (%u missing, %u delivered twice), %u "
           "answered otherwise\n",
           after, missing, twice, refused);
    assert_true(after >= 1);
    assert_int_equal(missing, 0);
    assert_int_equal(twice, 0);
    assert_true(told);
    spooled_stop(&svc);
    free(jobs);
    spooled_cleanup(&f);
}

static void test_spool_files_removed_under_load(void **state)
{
    (void)state;
    removed_under_load(REMOVE_FILES);
}

static void test_spool_dir_swapped_for_a_symlink_under_load(void **state)
{
    (void)state;
    removed_under_load(SWAP_SYMLINK);
}

static void test_spool_dir_removed_under_load(void **state)
{
    (void)state;
    removed_under_load(REMOVE_DIR);
}

int main(void)
{
    harness_skip_unless_runnable();
    if (getenv("ARGUS_TEST_ONLY")) /* a pattern of test names, to run one (cmocka's filter) */
        cmocka_set_test_filter(getenv("ARGUS_TEST_ONLY"));
    curl_global_init(CURL_GLOBAL_ALL); /* before the client threads: it is not thread-safe */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_show_json_and_unknown_ids),
        cmocka_unit_test(test_delete_and_flush_seen_at_once),
        cmocka_unit_test(test_hold_and_release),
        cmocka_unit_test(test_held_job_lets_the_service_exit_when_idle),
        cmocka_unit_test(test_requeue_dead_letters_goes_out_once),
        cmocka_unit_test(test_spool_files_removed_under_load),
        cmocka_unit_test(test_spool_dir_swapped_for_a_symlink_under_load),
        cmocka_unit_test(test_spool_dir_removed_under_load),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
