/* SPDX-License-Identifier: MIT */
/* The spool's promise under SIGKILL (issue #11): rounds in which 64 clients post distinct jobs
 * while the worker is down and the daemon is killed at a random moment (after a random count of
 * 202s), and rounds in which it
 * is killed while it delivers the spool to a slow worker. At the end, with the worker up, every
 * job ever answered 202 has reached the worker stand-in at least once, and no job reached it
 * that no client sent. No restart finds the spool corrupt.
 *
 * ARGUS_SPOOL_KILL_ROUNDS sets the rounds (default 30), ARGUS_SPOOL_KILL_SEED the random seed
 * (printed, for a failure to be replayed). */
#include <curl/curl.h>
#include <dirent.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

#define CLIENTS 64
/* Jobs a client sends in a round at most: MAX_ROUNDS of them stay within the 16384 ids the
 * stand-in keeps (one round in DELIVERY_EVERY sends none). */
#define PER_CLIENT 8
#define DEFAULT_ROUNDS 30
#define MAX_ROUNDS 40
#define MAX_JOBS (MAX_ROUNDS * CLIENTS * PER_CLIENT)
/* Every DELIVERY_EVERY-th round the worker is up and slow, and the kill lands in the delivery. */
#define DELIVERY_EVERY 4
#define DELIVERY_KILL_MAX_MS 600
#define FINAL_WAIT_MS 90000

typedef struct Job {
    char place[48];
    bool sent;     /* a client began to send it */
    bool answered; /* a client got 202 for it */
} Job;

static Job jobs[MAX_JOBS];
static size_t n_jobs;
/* 202s in this round so far: the kill lands after a random count of them. */
static unsigned round_answered;

typedef struct Client {
    pthread_t thread;
    const Service *svc;
    Job *jobs; /* PER_CLIENT of them */
    unsigned answered, other, failed;
} Client;

static void *client_run(void *arg)
{
    Client *c = arg;
    for (size_t i = 0; i < PER_CLIENT; i++) {
        Job *j = &c->jobs[i];
        char body[96];
        snprintf(body, sizeof(body), "{\"placeId\":\"%s\"}", j->place);
        j->sent = true;
        Response r = http_post_json(c->svc, "/enqueue", body);
        bool ok =
            r.status == 202 && r.body &&
            (strstr(r.body, "\"status\":\"queued\"") || strstr(r.body, "\"status\":\"enqueued\""));
        if (ok) {
            j->answered = true;
            c->answered++;
            __atomic_add_fetch(&round_answered, 1, __ATOMIC_RELAXED);
        } else if (r.status == 0)
            c->failed++;
        else
            c->other++;
        response_free(&r);
        if (r.status == 0)
            break; /* the daemon is gone */
    }
    return NULL;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.') {
                char path[384];
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                unlink(path);
            }
        closedir(d);
    }
    rmdir(dir);
}

/* How many distinct placeIds have reached the stand-in. */
static size_t arrivals(const Standin *worker)
{
    char *order = standin_order(worker);
    size_t n = 0;
    for (const char *p = order; p && (p = strchr(p, '\n')); p++)
        n++;
    free(order);
    return n;
}

static int cmp_place(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void test_sigkill_rounds(void **state)
{
    (void)state;
    unsigned rounds = DEFAULT_ROUNDS, seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    if (getenv("ARGUS_SPOOL_KILL_ROUNDS"))
        rounds = (unsigned)atoi(getenv("ARGUS_SPOOL_KILL_ROUNDS"));
    if (rounds < 1 || rounds > MAX_ROUNDS)
        rounds = DEFAULT_ROUNDS;
    if (getenv("ARGUS_SPOOL_KILL_SEED"))
        seed = (unsigned)strtoul(getenv("ARGUS_SPOOL_KILL_SEED"), NULL, 10);
    printf("# %u rounds, ARGUS_SPOOL_KILL_SEED=%u\n", rounds, seed);
    srand(seed);

    char dir[64] = "/tmp/argus-spool-kill-XXXXXX";
    assert_non_null(mkdtemp(dir));
    Standin worker;
    standin_start(&worker);
    char env_dir[96], env_down[64], env_up[96];
    snprintf(env_dir, sizeof(env_dir), "SPOOL_DIR=%s", dir);
    snprintf(env_down, sizeof(env_down), "WORKER_NODE_URL=http://127.0.0.1:%u", free_port());
    snprintf(env_up, sizeof(env_up), "WORKER_NODE_URL=%s", worker.url);

    unsigned answered = 0, other = 0, failed = 0, delivery_rounds = 0, mid_post = 0;
    for (unsigned round = 0; round < rounds; round++) {
        bool delivering = round % DELIVERY_EVERY == DELIVERY_EVERY - 1;
        const char *env[] = {delivering ? env_up : env_down, env_dir, "BREAKER_COOLDOWN_SEC=1",
                             "WORKER_TIMEOUT_MS=1000", NULL};
        size_t before = delivering ? arrivals(&worker) : 0;
        Service svc;
        service_start(&svc, env);
        if (delivering) {
            /* No client: the daemon delivers what earlier rounds spooled, 10 ms a job. */
            delivery_rounds++;
            usleep((useconds_t)(50 + rand() % DELIVERY_KILL_MAX_MS) * 1000);
            service_stop(&svc, SIGKILL);
            printf("# round %u: killed while delivering, %zu jobs had reached the worker, "
                   "%zu now\n",
                   round, before, arrivals(&worker));
        } else {
            Client clients[CLIENTS];
            __atomic_store_n(&round_answered, 0, __ATOMIC_RELAXED);
            for (size_t i = 0; i < CLIENTS; i++) {
                clients[i] = (Client){.svc = &svc, .jobs = &jobs[n_jobs]};
                for (size_t k = 0; k < PER_CLIENT; k++)
                    snprintf(jobs[n_jobs++].place, sizeof(jobs[0].place), "slow10-kill-%u-%zu-%zu",
                             round, i, k);
                assert_int_equal(pthread_create(&clients[i].thread, NULL, client_run, &clients[i]),
                                 0);
            }
            /* The kill after a random count of 202s, so it lands while the clients post. */
            unsigned target = (unsigned)rand() % (CLIENTS * PER_CLIENT);
            long long until = now_ms() + 10000;
            while (__atomic_load_n(&round_answered, __ATOMIC_RELAXED) < target && now_ms() < until)
                usleep(500);
            service_stop(&svc, SIGKILL);
            unsigned failed_before = failed;
            for (size_t i = 0; i < CLIENTS; i++) {
                pthread_join(clients[i].thread, NULL);
                answered += clients[i].answered;
                other += clients[i].other;
                failed += clients[i].failed;
            }
            mid_post += failed > failed_before;
        }
        if (svc.pid > 0)
            service_stop(&svc, SIGKILL);
        /* Each start opened the spool that the kill before left: never corrupt. */
        assert_true(service_log_lacks(&svc, "corrupt spool moved aside"));
        assert_true(service_log_lacks(&svc, "spool unavailable"));
        service_cleanup(&svc);
    }
    printf("# %zu jobs sent, %u answered 202, %u other answers, %u transport errors, "
           "%u rounds killed while clients posted, %u delivery rounds\n",
           n_jobs, answered, other, failed, mid_post, delivery_rounds);
    assert_true(answered > 0);

    /* The worker up for good: the spool empties with no client request. */
    const char *env[] = {env_up, env_dir, "BREAKER_COOLDOWN_SEC=1", "WORKER_TIMEOUT_MS=1000", NULL};
    Service svc;
    service_start(&svc, env);
    long long deadline = now_ms() + FINAL_WAIT_MS;
    while (service_metric(&svc, "argus_spool_jobs") != 0 && now_ms() < deadline) {
        service_wait_notify(&svc, "\n", 0); /* keeps the notify socket read */
        usleep(100 * 1000);
    }
    assert_true(service_metric(&svc, "argus_spool_jobs") == 0);
    assert_true(service_metric(&svc, "argus_spool_dead_letters") == 0);
    assert_true(service_log_lacks(&svc, "corrupt spool moved aside"));
    assert_int_equal(service_stop(&svc, SIGTERM), 0);
    service_cleanup(&svc);

    /* What reached the worker, against what was sent and what was answered. */
    char *order = standin_order(&worker);
    assert_non_null(order);
    const char **sent = calloc(n_jobs, sizeof(char *));
    assert_non_null(sent);
    for (size_t i = 0; i < n_jobs; i++)
        sent[i] = jobs[i].place;
    qsort(sent, n_jobs, sizeof(char *), cmp_place);
    const char **arrived = calloc(n_jobs + 1, sizeof(char *));
    size_t n_arrived = 0, invented = 0;
    for (char *line = strtok(order, "\n"); line; line = strtok(NULL, "\n")) {
        if (!bsearch(&line, sent, n_jobs, sizeof(char *), cmp_place)) {
            fprintf(stderr, "invented: %s reached the worker, no client sent it\n", line);
            invented++;
        } else if (n_arrived < n_jobs)
            arrived[n_arrived++] = line;
    }
    qsort(arrived, n_arrived, sizeof(char *), cmp_place);
    size_t lost = 0;
    for (size_t i = 0; i < n_jobs; i++) {
        const char *p = jobs[i].place;
        if (jobs[i].answered && !bsearch(&p, arrived, n_arrived, sizeof(char *), cmp_place)) {
            fprintf(stderr, "lost: %s was answered 202, never reached the worker\n", p);
            lost++;
        }
    }
    printf("# %zu reached the worker, %zu lost, %zu invented\n", n_arrived, lost, invented);
    assert_int_equal(invented, 0);
    assert_int_equal(lost, 0);
    free(arrived);
    free(sent);
    free(order);
    standin_stop(&worker);
    remove_dir(dir);
}

int main(void)
{
    harness_skip_unless_runnable();
    curl_global_init(CURL_GLOBAL_ALL); /* before the client threads: it is not thread-safe */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_rounds),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
