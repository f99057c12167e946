/* SPDX-License-Identifier: MIT */
/* What finding the due jobs costs with a big spool (README, "The spool"): N jobs waiting (default
 * 1,000,000), the oldest 1,000 in their backoff (due in an hour), in a temporary spool under DIR
 * (default /var/tmp), removed at the end. Prints µs per spool_store_fetch_due() of 64 from the
 * first id (what the delivery asks when it starts its walk again), per page deeper in the walk,
 * and per spool_store_stats(); then the same with 100,000 jobs whose retry time has passed since
 * the last commit (the second range of the query, which is sorted), and after a commit (which
 * makes them due now). Figures only, no pass or fail:
 *   build/spool-due [N] [DIR] */
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "spool-store.h"

#define PAGE 64
#define IN_BACKOFF 1000
#define PASSED 100000
#define ROUNDS 2000

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void die(SpoolStore *s, const char *what, int r)
{
    fprintf(stderr, "spool-due: %s: %s (%s)\n", what, strerror(-r), spool_store_error(s));
    exit(1);
}

/* n jobs, in groups of 10,000; the ids are 1 to n. */
static void fill(SpoolStore *s, long n)
{
    uint64_t t0 = clock_usec(CLOCK_MONOTONIC), created = 1700000000000000ULL;
    for (long i = 0; i < n;) {
        int r = spool_store_begin(s);
        for (long k = 0; r == 0 && k < 10000 && i < n; k++, i++) {
            SpoolJob j = {.created_usec = created + (uint64_t)i * 1000};
            snprintf(j.place_id, sizeof(j.place_id), "ChIJN1t_tDeuEmsRUsoyG83f-%ld", i);
            job_id_format(j.place_id, j.job_id);
            snprintf(j.last_error, sizeof(j.last_error), "worker unreachable");
            r = spool_store_add(s, &j, 0, NULL);
        }
        if (r == 0)
            r = spool_store_commit(s);
        if (r < 0)
            die(s, "fill", r);
    }
    printf("filled %ld jobs in %.1f s\n", n, (double)(clock_usec(CLOCK_MONOTONIC) - t0) / 1e6);
}

/* Jobs first to first + n - 1 failed: due at due_usec. */
static void schedule(SpoolStore *s, int64_t first, long n, uint64_t due_usec)
{
    int r = spool_store_begin(s);
    for (long i = 0; r == 0 && i < n; i++)
        r = spool_store_retry_later(s, first + i, due_usec, "worker answered 503");
    if (r == 0)
        r = spool_store_commit(s);
    if (r < 0)
        die(s, "retry_later", r);
}

/* µs per fetch_due of PAGE after after_id; the first id it gives into *ret_first. */
static double time_fetch(SpoolStore *s, int64_t after_id, int64_t *ret_first)
{
    static SpoolJob page[PAGE];
    size_t n = 0;
    uint64_t now = clock_usec(CLOCK_REALTIME), t0 = clock_usec(CLOCK_MONOTONIC);
    for (int i = 0; i < ROUNDS; i++) {
        int r = spool_store_fetch_due(s, now, after_id, page, PAGE, &n);
        if (r < 0)
            die(s, "fetch_due", r);
    }
    *ret_first = n ? page[0].id : 0;
    return (double)(clock_usec(CLOCK_MONOTONIC) - t0) / ROUNDS;
}

static void report(SpoolStore *s, const char *title)
{
    int64_t first, deep = 0;
    printf("%s\n", title);
    double head = time_fetch(s, 0, &first);
    printf("  fetch_due of %d from the start: %8.1f µs (first id %lld)\n", PAGE, head,
           (long long)first);
    double mid = time_fetch(s, 500000, &deep);
    printf("  fetch_due of %d after id 500000: %7.1f µs (first id %lld)\n", PAGE, mid,
           (long long)deep);
    SpoolStats st;
    uint64_t t0 = clock_usec(CLOCK_MONOTONIC);
    for (int i = 0; i < ROUNDS; i++) {
        int r = spool_store_stats(s, &st);
        if (r < 0)
            die(s, "stats", r);
    }
    printf("  stats:                          %8.1f µs (jobs %llu, next due in %.0f s)\n",
           (double)(clock_usec(CLOCK_MONOTONIC) - t0) / ROUNDS, (unsigned long long)st.jobs,
           st.next_due_usec ? ((double)st.next_due_usec - (double)clock_usec(CLOCK_REALTIME)) / 1e6
                            : 0.0);
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IOLBF, 0);
    long n = argc > 1 ? atol(argv[1]) : 1000000;
    const char *base = argc > 2 ? argv[2] : "/var/tmp";
    if (n < PASSED + IN_BACKOFF + 1) {
        fprintf(stderr, "spool-due: N must be over %d\n", PASSED + IN_BACKOFF);
        return 64;
    }
    char dir[4096];
    snprintf(dir, sizeof(dir), "%s/argus-spool-due-XXXXXX", base);
    if (!mkdtemp(dir)) {
        fprintf(stderr, "spool-due: mkdtemp %s: %s\n", dir, strerror(errno));
        return 1;
    }
    SpoolStore *s;
    int r = spool_store_open(dir, SPOOL_OPEN_CREATE, &s, NULL, NULL);
    if (r < 0)
        die(NULL, "open", r);
    fill(s, n);
    schedule(s, 1, IN_BACKOFF, clock_usec(CLOCK_REALTIME) + 3600 * 1000000ULL);
    report(s, "the oldest 1000 in their backoff, the rest due now:");
    uint64_t due = clock_usec(CLOCK_REALTIME) + 2000000;
    schedule(s, IN_BACKOFF + 1, PASSED, due);
    while (clock_usec(CLOCK_REALTIME) <= due)
        usleep(100000);
    report(s, "and 100000 more failed once, their retry time passed since the last commit:");
    if ((r = spool_store_begin(s)) < 0 || (r = spool_store_commit(s)) < 0)
        die(s, "commit", r);
    report(s, "after a commit (which makes them due now):");
    spool_store_close(s);
    (void)nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}
