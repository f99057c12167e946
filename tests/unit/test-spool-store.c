/* SPDX-License-Identifier: MIT */
/* The spool's storage (src/spool-store.c) against a temporary directory: order, group commit,
 * duplicates, dead letters, the bound, the marker, reopening, corrupt files moved aside, another
 * connection's commits, and I/O errors on a read-only and on a full filesystem (a tmpfs mounted
 * in a private mount namespace, in a child process). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sched.h>
#include <setjmp.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "spool-store.h"

typedef struct Fixture {
    char dir[64];
} Fixture;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    Fixture *f = calloc(1, sizeof(Fixture));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/argus-spool-test-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;
    (void)nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static SpoolJob job(const char *place)
{
    SpoolJob j = {0};
    snprintf(j.place_id, sizeof(j.place_id), "%s", place);
    job_id_format(j.place_id, j.job_id);
    snprintf(j.request_id, sizeof(j.request_id), "req-%.100s", place);
    snprintf(j.last_error, sizeof(j.last_error), "worker unreachable");
    return j;
}

static SpoolStore *open_store(const char *dir, SpoolOpenFlags flags)
{
    SpoolStore *s = NULL;
    int r = spool_store_open(dir, flags, &s, NULL, NULL);
    if (r < 0)
        fail_msg("spool_store_open(%s): %s", dir, strerror(-r));
    return s;
}

static void add(SpoolStore *s, const char *place, bool want_duplicate)
{
    SpoolJob j = job(place);
    bool dup = !want_duplicate;
    assert_int_equal(spool_store_add(s, &j, 0, &dup), 0);
    assert_int_equal(dup, want_duplicate);
}

static SpoolStats stats(SpoolStore *s)
{
    SpoolStats st;
    assert_int_equal(spool_store_stats(s, &st), 0);
    return st;
}

static bool marker_exists(const char *dir)
{
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", dir, SPOOL_MARKER);
    return access(p, F_OK) == 0;
}

/* The waiting (or dead) jobs' place ids, in order, joined by commas. */
static char *places(SpoolStore *s, bool dead, char *buf, size_t size)
{
    SpoolJob page[3];
    size_t n, len = 0;
    int64_t after = 0;
    buf[0] = '\0';
    do {
        assert_int_equal(spool_store_fetch(s, dead, after, page, 3, &n), 0);
        for (size_t i = 0; i < n; i++) {
            assert_true(page[i].id > after);
            assert_int_equal(page[i].dead, dead);
            after = page[i].id;
            len +=
                (size_t)snprintf(buf + len, size - len, "%s%s", len ? "," : "", page[i].place_id);
        }
    } while (n == 3);
    return buf;
}

static void test_order_and_paging(void **state)
{
    Fixture *f = *state;
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    char buf[512];
    assert_int_equal(spool_store_begin(s), 0);
    for (int i = 0; i < 10; i++) {
        char p[8];
        snprintf(p, sizeof(p), "p%d", i);
        add(s, p, false);
    }
    SpoolJob old = job("given");
    old.created_usec = 1234567;
    assert_int_equal(spool_store_add(s, &old, 0, NULL), 0);
    assert_int_equal(spool_store_commit(s), 0);
    assert_string_equal(places(s, false, buf, sizeof(buf)), "p0,p1,p2,p3,p4,p5,p6,p7,p8,p9,given");

    SpoolJob out[20];
    size_t n;
    assert_int_equal(spool_store_fetch(s, false, 0, out, 20, &n), 0);
    assert_int_equal(n, 11);
    assert_string_equal(out[0].job_id, "reviews:p0:start");
    assert_string_equal(out[0].request_id, "req-p0");
    assert_string_equal(out[0].last_error, "worker unreachable");
    assert_int_equal(out[0].attempts, 0);
    assert_true(out[0].created_usec > 1600000000000000ULL); /* 0 became now */
    assert_int_equal(out[10].created_usec, 1234567);
    assert_int_equal(spool_store_fetch(s, false, out[9].id, out, 20, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].place_id, "given");
    assert_int_equal(spool_store_fetch(s, true, 0, out, 20, &n), 0);
    assert_int_equal(n, 0);
    spool_store_close(s);
}

static void test_group_commit_and_rollback(void **state)
{
    Fixture *f = *state;
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    SpoolStore *other = open_store(f->dir, 0);
    assert_int_equal(spool_store_begin(s), 0);
    for (int i = 0; i < 500; i++) {
        char p[16];
        snprintf(p, sizeof(p), "roll%d", i);
        add(s, p, false);
    }
    assert_int_equal(stats(s).jobs, 500);
    spool_store_rollback(s);
    assert_int_equal(stats(s).jobs, 0);
    assert_int_equal(stats(other).jobs, 0);
    assert_false(marker_exists(f->dir));

    assert_int_equal(spool_store_begin(s), 0);
    for (int i = 0; i < 500; i++) {
        char p[16];
        snprintf(p, sizeof(p), "keep%d", i);
        add(s, p, false);
    }
    assert_int_equal(stats(other).jobs, 0); /* not yet committed */
    assert_int_equal(spool_store_commit(s), 0);
    assert_int_equal(stats(other).jobs, 500);
    SpoolJob out[600];
    size_t n;
    assert_int_equal(spool_store_fetch(other, false, 0, out, 600, &n), 0);
    assert_int_equal(n, 500);
    assert_string_equal(out[499].place_id, "keep499");
    spool_store_close(other);
    spool_store_close(s);
}

static void test_duplicates(void **state)
{
    Fixture *f = *state;
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    add(s, "a", false);
    add(s, "a", true);
    assert_int_equal(spool_store_begin(s), 0);
    add(s, "b", false);
    add(s, "b", true); /* within one group too */
    assert_int_equal(spool_store_commit(s), 0);
    assert_int_equal(stats(s).jobs, 2);

    SpoolJob out[4];
    size_t n;
    assert_int_equal(spool_store_fetch(s, false, 0, out, 4, &n), 0);
    assert_int_equal(n, 2);
    assert_int_equal(spool_store_mark_dead(s, out[0].id, "worker answered 400"), 0);
    add(s, "a", false); /* a dead letter does not block a new waiting record */
    add(s, "a", true);
    SpoolStats st = stats(s);
    assert_int_equal(st.jobs, 2);
    assert_int_equal(st.dead, 1);
    spool_store_close(s);
}

static void test_delete_and_retry_later(void **state)
{
    Fixture *f = *state;
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    add(s, "a", false);
    add(s, "b", false);
    SpoolJob out[4];
    size_t n;
    assert_int_equal(spool_store_fetch(s, false, 0, out, 4, &n), 0);
    assert_int_equal(spool_store_retry_later(s, out[0].id, 0, "timeout"), 0);
    assert_int_equal(spool_store_retry_later(s, out[0].id, 0, "worker answered 503"), 0);
    assert_int_equal(spool_store_fetch(s, false, 0, out, 4, &n), 0);
    assert_int_equal(out[0].attempts, 2);
    assert_string_equal(out[0].last_error, "worker answered 503");
    assert_int_equal(out[1].attempts, 0);

    assert_int_equal(spool_store_delete(s, out[0].id), 0);
    assert_int_equal(spool_store_delete(s, out[0].id), -ENOENT);
    assert_int_equal(spool_store_retry_later(s, out[0].id, 0, "x"), -ENOENT);
    assert_int_equal(spool_store_mark_dead(s, 999999, "x"), -ENOENT);
    assert_int_equal(stats(s).jobs, 1);
    char buf[64];
    assert_string_equal(places(s, false, buf, sizeof(buf)), "b");
    spool_store_close(s);
}

static void test_dead_letters_and_requeue(void **state)
{
    Fixture *f = *state;
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    char buf[128];
    add(s, "a", false);
    add(s, "b", false);
    add(s, "c", false);
    SpoolJob out[8];
    size_t n;
    assert_int_equal(spool_store_fetch(s, false, 0, out, 8, &n), 0);
    assert_int_equal(spool_store_mark_dead(s, out[0].id, "worker answered 400"), 0);
    assert_int_equal(spool_store_mark_dead(s, out[1].id, "worker answered 422"), 0);
    assert_int_equal(spool_store_mark_dead(s, out[1].id, "again"), -ENOENT);
    assert_string_equal(places(s, true, buf, sizeof(buf)), "a,b");
    assert_string_equal(places(s, false, buf, sizeof(buf)), "c");
    SpoolStats st = stats(s);
    assert_int_equal(st.jobs, 1);
    assert_int_equal(st.dead, 2);

    add(s, "a", false); /* a waits again by itself: its dead letter is dropped at requeue */
    uint64_t requeued = 99;
    assert_int_equal(spool_store_begin(s), 0);
    assert_int_equal(spool_store_requeue_dead(s, &requeued), 0);
    assert_int_equal(spool_store_commit(s), 0);
    assert_int_equal(requeued, 1);
    st = stats(s);
    assert_int_equal(st.jobs, 3);
    assert_int_equal(st.dead, 0);
    /* b in its place (it was the newest before this release), then c, and a's new record */
    assert_string_equal(places(s, false, buf, sizeof(buf)), "b,c,a");
    assert_int_equal(spool_store_fetch(s, false, 0, out, 8, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(out[0].place_id, "b");
    assert_string_equal(out[0].last_error, "worker answered 422");
    assert_int_equal(out[0].attempts, 0);
    assert_false(out[0].dead);
    assert_true(marker_exists(f->dir));

    assert_int_equal(spool_store_requeue_dead(s, &requeued), 0); /* none: a group of its own */
    assert_int_equal(requeued, 0);
    spool_store_close(s);
}

static void test_max_jobs(void **state)
{
    Fixture *f = *state;
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    SpoolJob j;
    bool dup;
    for (int i = 0; i < 2; i++) {
        char p[8];
        snprintf(p, sizeof(p), "m%d", i);
        j = job(p);
        assert_int_equal(spool_store_add(s, &j, 3, &dup), 0);
    }
    assert_int_equal(spool_store_begin(s), 0);
    j = job("m2");
    assert_int_equal(spool_store_add(s, &j, 3, &dup), 0);
    assert_false(dup);
    j = job("m3");
    assert_int_equal(spool_store_add(s, &j, 3, &dup), -EDQUOT);
    assert_non_null(strstr(spool_store_error(s), "SPOOL_MAX_JOBS"));
    j = job("m1");
    assert_int_equal(spool_store_add(s, &j, 3, &dup), 0); /* waits already: not past the bound */
    assert_true(dup);
    assert_int_equal(spool_store_commit(s), 0);
    char buf[64];
    assert_string_equal(places(s, false, buf, sizeof(buf)), "m0,m1,m2");
    j = job("m4");
    assert_int_equal(spool_store_add(s, &j, 3, &dup), -EDQUOT);
    assert_int_equal(spool_store_add(s, &j, 0, &dup), 0); /* 0: no bound */
    assert_int_equal(stats(s).jobs, 4);
    spool_store_close(s);
}

static void test_marker(void **state)
{
    Fixture *f = *state;
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    SpoolJob out[4];
    size_t n;
    assert_false(marker_exists(f->dir));
    assert_int_equal(spool_store_begin(s), 0);
    add(s, "a", false);
    spool_store_rollback(s);
    assert_false(marker_exists(f->dir));
    add(s, "a", false);
    assert_true(marker_exists(f->dir));
    add(s, "b", false);
    assert_true(marker_exists(f->dir));
    assert_int_equal(spool_store_fetch(s, false, 0, out, 4, &n), 0);
    assert_int_equal(spool_store_delete(s, out[0].id), 0);
    assert_true(marker_exists(f->dir));
    assert_int_equal(spool_store_mark_dead(s, out[1].id, "400"), 0);
    assert_false(marker_exists(f->dir)); /* a dead letter waits for nobody */
    assert_int_equal(spool_store_requeue_dead(s, NULL), 0);
    assert_true(marker_exists(f->dir));
    assert_int_equal(spool_store_begin(s), 0);
    assert_int_equal(spool_store_fetch(s, false, 0, out, 4, &n), 0);
    assert_int_equal(spool_store_delete(s, out[0].id), 0);
    add(s, "c", false);
    assert_int_equal(spool_store_commit(s), 0);
    assert_true(marker_exists(f->dir));
    spool_store_close(s);

    /* a marker left by a crash is set right by the daemon's next open */
    char p[256];
    snprintf(p, sizeof(p), "%s/%s", f->dir, SPOOL_MARKER);
    assert_int_equal(unlink(p), 0);
    s = open_store(f->dir, SPOOL_OPEN_CREATE);
    assert_true(marker_exists(f->dir));
    assert_int_equal(spool_store_fetch(s, false, 0, out, 4, &n), 0);
    assert_int_equal(spool_store_delete(s, out[0].id), 0);
    assert_false(marker_exists(f->dir));
    spool_store_close(s);
    int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    close(fd);
    s = open_store(f->dir, SPOOL_OPEN_CREATE);
    assert_false(marker_exists(f->dir));
    spool_store_close(s);
}

static void test_stats_and_reopen(void **state)
{
    Fixture *f = *state;
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    SpoolStats st = stats(s);
    assert_int_equal(st.jobs, 0);
    assert_int_equal(st.dead, 0);
    assert_int_equal(st.oldest_usec, 0);
    const char *names[] = {"a", "b", "c", "d"};
    for (int i = 0; i < 4; i++) {
        SpoolJob j = job(names[i]);
        j.created_usec = 1000000 * (uint64_t)(i + 1);
        assert_int_equal(spool_store_add(s, &j, 0, NULL), 0);
    }
    SpoolJob out[4];
    size_t n;
    assert_int_equal(spool_store_fetch(s, false, 0, out, 4, &n), 0);
    assert_int_equal(spool_store_mark_dead(s, out[0].id, "gone"), 0);
    assert_int_equal(spool_store_retry_later(s, out[1].id, 0, "timeout"), 0);
    st = stats(s);
    assert_int_equal(st.jobs, 3);
    assert_int_equal(st.dead, 1);
    assert_int_equal(st.oldest_usec, 2000000);
    spool_store_close(s);

    s = open_store(f->dir, 0);
    st = stats(s);
    assert_int_equal(st.jobs, 3);
    assert_int_equal(st.dead, 1);
    assert_int_equal(st.oldest_usec, 2000000);
    assert_int_equal(spool_store_fetch(s, false, 0, out, 4, &n), 0);
    assert_int_equal(n, 3);
    assert_string_equal(out[0].place_id, "b");
    assert_int_equal(out[0].attempts, 1);
    assert_string_equal(out[0].last_error, "timeout");
    assert_int_equal(spool_store_fetch(s, true, 0, out, 4, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].last_error, "gone");
    assert_true(out[0].dead);
    spool_store_close(s);
}

static void test_open_absent(void **state)
{
    Fixture *f = *state;
    SpoolStore *s = NULL;
    char dir[128];
    assert_int_equal(spool_store_open(f->dir, 0, &s, NULL, NULL), -ENOENT);
    snprintf(dir, sizeof(dir), "%s/not/there", f->dir);
    assert_int_equal(spool_store_open(dir, SPOOL_OPEN_REPAIR, &s, NULL, NULL), -ENOENT);
    assert_null(s);
    s = open_store(dir, SPOOL_OPEN_CREATE); /* makes the directories */
    add(s, "x", false);
    spool_store_close(s);
    s = open_store(dir, 0);
    assert_int_equal(stats(s).jobs, 1);
    spool_store_close(s);
}

static char *slurp(const char *path, size_t *ret_len)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    char *buf = malloc(1 << 22);
    assert_non_null(buf);
    *ret_len = fread(buf, 1, 1 << 22, fp);
    fclose(fp);
    return buf;
}

static void spit(const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
}

static void assert_same_file(const char *a, const void *data, size_t len)
{
    size_t n;
    char *got = slurp(a, &n);
    assert_int_equal(n, len);
    assert_memory_equal(got, data, len);
    free(got);
}

/* dir/SPOOL_FILE holds data (and dir/SPOOL_FILE-wal wal, if given): -EBADMSG without REPAIR,
 * untouched; with it moved aside byte for byte, and a fresh spool works. */
static void check_corrupt(const char *dir, const void *data, size_t len, const void *wal,
                          size_t wal_len)
{
    char path[256], moved_wal[300];
    snprintf(path, sizeof(path), "%s/%s", dir, SPOOL_FILE);
    SpoolStore *s = NULL;
    char *moved = NULL, *why = NULL;
    assert_int_equal(spool_store_open(dir, SPOOL_OPEN_CREATE, &s, &moved, &why), -EBADMSG);
    assert_null(s);
    assert_null(moved);
    assert_non_null(why);
    print_message("why: %s\n", why);
    free(why);
    assert_same_file(path, data, len);

    assert_int_equal(spool_store_open(dir, SPOOL_OPEN_CREATE | SPOOL_OPEN_REPAIR, &s, &moved, &why),
                     0);
    assert_non_null(moved);
    assert_non_null(why);
    char prefix[256];
    snprintf(prefix, sizeof(prefix), "%s/%s.corrupt-20", dir, SPOOL_FILE);
    assert_int_equal(strncmp(moved, prefix, strlen(prefix)), 0);
    assert_same_file(moved, data, len);
    snprintf(moved_wal, sizeof(moved_wal), "%s-wal", moved);
    if (wal)
        assert_same_file(moved_wal, wal, wal_len);
    free(moved);
    free(why);
    SpoolStats st = stats(s);
    assert_int_equal(st.jobs, 0);
    add(s, "fresh", false);
    assert_int_equal(stats(s).jobs, 1);
    spool_store_close(s);
}

static void test_corrupt_garbage(void **state)
{
    Fixture *f = *state;
    char data[8192], wal[1000], path[256];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (char)(i * 7919 % 251);
    memset(wal, 'w', sizeof(wal));
    snprintf(path, sizeof(path), "%s/%s", f->dir, SPOOL_FILE);
    spit(path, data, sizeof(data));
    snprintf(path, sizeof(path), "%s/%s-wal", f->dir, SPOOL_FILE);
    spit(path, wal, sizeof(wal));
    check_corrupt(f->dir, data, sizeof(data), wal, sizeof(wal));
    assert_int_equal(access(path, F_OK), -1); /* the -wal went along */
}

static void test_corrupt_truncated(void **state)
{
    Fixture *f = *state;
    char real[128], path[256];
    snprintf(real, sizeof(real), "%s/real", f->dir);
    SpoolStore *s = open_store(real, SPOOL_OPEN_CREATE);
    assert_int_equal(spool_store_begin(s), 0);
    for (int i = 0; i < 300; i++) {
        char p[PLACE_ID_MAX + 1];
        memset(p, 'a' + i % 26, 200);
        snprintf(p + 200, sizeof(p) - 200, "%d", i);
        add(s, p, false);
    }
    assert_int_equal(spool_store_commit(s), 0);
    spool_store_close(s);
    size_t len;
    snprintf(path, sizeof(path), "%s/%s", real, SPOOL_FILE);
    char *data = slurp(path, &len);
    assert_true(len > 16384);
    snprintf(path, sizeof(path), "%s/%s", f->dir, SPOOL_FILE);
    spit(path, data, len / 2);
    check_corrupt(f->dir, data, len / 2, NULL, 0);
    free(data);
}

static void test_corrupt_other_schema(void **state)
{
    Fixture *f = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", f->dir, SPOOL_FILE);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE jobs (id INTEGER PRIMARY KEY, what TEXT);"
                                  "INSERT INTO jobs (what) VALUES ('not ours');",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    size_t len;
    char *data = slurp(path, &len);
    check_corrupt(f->dir, data, len, NULL, 0);
    free(data);
}

/* A truncated (0-byte) spool.sqlite beside a WAL that holds committed jobs: SQLite would drop
 * that WAL on opening (and the jobs in it), so it is corrupt: -EBADMSG, or with REPAIR both
 * files moved aside, the WAL's bytes intact, and a fresh store. */
static void test_corrupt_empty_file_beside_wal(void **state)
{
    Fixture *f = *state;
    char path[256], wal_path[256];
    snprintf(path, sizeof(path), "%s/%s", f->dir, SPOOL_FILE);
    snprintf(wal_path, sizeof(wal_path), "%s/%s-wal", f->dir, SPOOL_FILE);
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    assert_int_equal(spool_store_begin(s), 0);
    add(s, "in-wal-1", false);
    add(s, "in-wal-2", false);
    assert_int_equal(spool_store_commit(s), 0);
    /* Still open: the commit is in the WAL, not yet checkpointed (a close would). */
    size_t wal_len;
    char *wal = slurp(wal_path, &wal_len);
    assert_true(wal_len > 0);
    spool_store_close(s);
    spit(path, "", 0);
    spit(wal_path, wal, wal_len);
    char sidecar[300];
    snprintf(sidecar, sizeof(sidecar), "%s/%s-shm", f->dir, SPOOL_FILE);
    (void)unlink(sidecar);

    check_corrupt(f->dir, "", 0, wal, wal_len);
    assert_int_equal(access(wal_path, F_OK), -1); /* the -wal went along */
    free(wal);
}

/* spool.sqlite removed, or replaced by another file, while a store is open: its commits would
 * land in a file nobody reads again, so begin says -ESTALE; a new open works. */
static void test_removed_or_replaced_under_an_open_store(void **state)
{
    Fixture *f = *state;
    char path[256], other_dir[160], other_path[256];
    snprintf(path, sizeof(path), "%s/%s", f->dir, SPOOL_FILE);

    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    add(s, "before-unlink", false);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(spool_store_begin(s), -ESTALE);
    SpoolJob j = job("after-unlink");
    assert_int_equal(spool_store_add(s, &j, 0, NULL), -ESTALE);
    spool_store_close(s);
    s = open_store(f->dir, SPOOL_OPEN_CREATE);
    assert_int_equal(stats(s).jobs, 0); /* gone with the removed file */
    add(s, "new-file", false);
    assert_int_equal(stats(s).jobs, 1);

    /* Another spool renamed over it. */
    snprintf(other_dir, sizeof(other_dir), "%s/other", f->dir);
    SpoolStore *o = open_store(other_dir, SPOOL_OPEN_CREATE);
    add(o, "other-1", false);
    add(o, "other-2", false);
    spool_store_close(o);
    snprintf(other_path, sizeof(other_path), "%s/%s", other_dir, SPOOL_FILE);
    assert_int_equal(rename(other_path, path), 0);
    assert_int_equal(spool_store_begin(s), -ESTALE);
    spool_store_close(s);
    s = open_store(f->dir, SPOOL_OPEN_CREATE);
    /* Not checked here: which jobs the reopened store sees. SQLite does not checkpoint nor
     * delete the WAL of a file that moved (SQLITE_FCNTL_HAS_MOVED) at the close, so the removed
     * file's -wal is left beside the replacing file and is replayed into it at the open (seen:
     * "new-file" instead of "other-1,other-2"). See the report of this commit. */
    assert_int_equal(spool_store_begin(s), 0);
    add(s, "after-replace", false);
    assert_int_equal(spool_store_commit(s), 0);
    assert_true(stats(s).jobs >= 1);
    spool_store_close(s);
}

/* forget: the waiting record of a job id removed (the count and the marker follow), -ENOENT when
 * none waits, a dead letter of that id left alone. */
static void test_forget(void **state)
{
    Fixture *f = *state;
    char buf[64];
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    SpoolJob a = job("fa"), b = job("fb"), d = job("fd");
    assert_int_equal(spool_store_forget(s, a.job_id), -ENOENT); /* empty */
    add(s, "fa", false);
    add(s, "fb", false);
    add(s, "fd", false);
    SpoolJob out[4];
    size_t n;
    assert_int_equal(spool_store_fetch(s, false, 0, out, 4, &n), 0);
    assert_int_equal(n, 3);
    assert_int_equal(spool_store_mark_dead(s, out[2].id, "worker answered 400"), 0);
    assert_int_equal(stats(s).jobs, 2);

    assert_int_equal(spool_store_forget(s, a.job_id), 0);
    assert_int_equal(stats(s).jobs, 1);
    assert_string_equal(places(s, false, buf, sizeof(buf)), "fb");
    assert_true(marker_exists(f->dir));
    assert_int_equal(spool_store_forget(s, a.job_id), -ENOENT);
    assert_int_equal(stats(s).jobs, 1);

    /* A dead letter is not waiting: left alone. */
    assert_int_equal(spool_store_forget(s, d.job_id), -ENOENT);
    SpoolStats st = stats(s);
    assert_int_equal(st.jobs, 1);
    assert_int_equal(st.dead, 1);
    assert_string_equal(places(s, true, buf, sizeof(buf)), "fd");

    /* The last one waiting: the marker goes, within a group too. */
    assert_int_equal(spool_store_begin(s), 0);
    assert_int_equal(spool_store_forget(s, b.job_id), 0);
    assert_int_equal(spool_store_commit(s), 0);
    st = stats(s);
    assert_int_equal(st.jobs, 0);
    assert_int_equal(st.dead, 1);
    assert_false(marker_exists(f->dir));
    spool_store_close(s);

    s = open_store(f->dir, 0); /* on disk as counted */
    st = stats(s);
    assert_int_equal(st.jobs, 0);
    assert_int_equal(st.dead, 1);
    spool_store_close(s);
}

static void test_changed_elsewhere(void **state)
{
    Fixture *f = *state;
    SpoolStore *daemon = open_store(f->dir, SPOOL_OPEN_CREATE);
    SpoolStore *cli = open_store(f->dir, 0);
    assert_false(spool_store_changed_elsewhere(daemon));
    add(daemon, "a", false);
    assert_false(spool_store_changed_elsewhere(daemon)); /* its own commit */
    assert_true(spool_store_changed_elsewhere(cli));
    add(cli, "b", false);
    assert_true(spool_store_changed_elsewhere(daemon));
    assert_false(spool_store_changed_elsewhere(daemon));
    assert_int_equal(stats(daemon).jobs, 2);

    /* the bound counts the other's jobs too */
    add(cli, "c", false);
    SpoolJob j = job("d");
    assert_int_equal(spool_store_add(daemon, &j, 3, NULL), -EDQUOT);
    assert_true(spool_store_changed_elsewhere(daemon));
    spool_store_close(cli);
    spool_store_close(daemon);
}

/* In a child: a private mount namespace (as root, or in a user namespace of its own), so that
 * the tmpfs mounted there is seen by nobody else. Exit status 0 passed, 77 skipped, else failed. */
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c);                  \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)
#define CHECK_R(call, want)                                                                        \
    do {                                                                                           \
        int r_ = (call);                                                                           \
        if (r_ != (want)) {                                                                        \
            fprintf(stderr, "%s:%d: %s = %d (%s), want %d\n", __FILE__, __LINE__, #call, r_,       \
                    strerror(-r_), want);                                                          \
            _exit(1);                                                                              \
        }                                                                                          \
    } while (0)

static void write_file(const char *path, const char *s)
{
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    CHECK(fd >= 0 && write(fd, s, strlen(s)) == (ssize_t)strlen(s));
    close(fd);
}

static void mount_tmpfs(const char *dir, const char *opts)
{
    if (unshare(CLONE_NEWNS) < 0) {
        uid_t uid = getuid();
        gid_t gid = getgid();
        if (unshare(CLONE_NEWUSER | CLONE_NEWNS) < 0) {
            fprintf(stderr, "skipped: no private mount namespace (unshare: %s)\n", strerror(errno));
            _exit(77);
        }
        char map[64];
        write_file("/proc/self/setgroups", "deny");
        snprintf(map, sizeof(map), "0 %u 1", (unsigned)uid);
        write_file("/proc/self/uid_map", map);
        snprintf(map, sizeof(map), "0 %u 1", (unsigned)gid);
        write_file("/proc/self/gid_map", map);
    }
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
        mount("tmpfs", dir, "tmpfs", MS_NOSUID | MS_NODEV, opts) < 0) {
        fprintf(stderr, "skipped: cannot mount a tmpfs: %s\n", strerror(errno));
        _exit(77);
    }
}

static void run_in_child(void (*fn)(const char *dir), const char *dir)
{
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        fn(dir);
        _exit(0);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) == 77)
        skip();
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void readonly_child(const char *dir)
{
    mount_tmpfs(dir, "size=4m,mode=0755");
    char spool[256];
    snprintf(spool, sizeof(spool), "%s/spool", dir);
    SpoolStore *s;
    CHECK_R(spool_store_open(spool, SPOOL_OPEN_CREATE, &s, NULL, NULL), 0);
    SpoolJob j = job("a");
    CHECK_R(spool_store_add(s, &j, 0, NULL), 0);
    spool_store_close(s);
    CHECK(mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) == 0);

    /* the daemon takes it for unavailable; the command reads it as it is, and cannot write */
    CHECK_R(spool_store_open(spool, SPOOL_OPEN_CREATE | SPOOL_OPEN_REPAIR, &s, NULL, NULL), -EROFS);
    char path[300];
    snprintf(path, sizeof(path), "%s/%s", spool, SPOOL_FILE);
    CHECK(access(path, F_OK) == 0); /* not taken for corrupt */
    CHECK_R(spool_store_open(spool, 0, &s, NULL, NULL), 0);
    SpoolStats st;
    CHECK_R(spool_store_stats(s, &st), 0);
    CHECK(st.jobs == 1 && st.dead == 0);
    SpoolJob out[2];
    size_t n;
    CHECK_R(spool_store_fetch(s, false, 0, out, 2, &n), 0);
    CHECK(n == 1 && strcmp(out[0].place_id, "a") == 0);
    j = job("b");
    CHECK_R(spool_store_add(s, &j, 0, NULL), -EROFS);
    fprintf(stderr, "read-only: %s\n", spool_store_error(s));
    CHECK_R(spool_store_begin(s), -EROFS);
    CHECK_R(spool_store_delete(s, out[0].id), -EROFS);
    CHECK_R(spool_store_requeue_dead(s, NULL), -EROFS);
    CHECK_R(spool_store_stats(s, &st), 0);
    CHECK(st.jobs == 1);
    spool_store_close(s);

    char fresh[256];
    snprintf(fresh, sizeof(fresh), "%s/fresh", dir);
    CHECK_R(spool_store_open(fresh, SPOOL_OPEN_CREATE, &s, NULL, NULL), -EROFS);
    CHECK_R(spool_store_open(dir, SPOOL_OPEN_CREATE, &s, NULL, NULL), -EROFS);
}

static void test_readonly_directory(void **state)
{
    Fixture *f = *state;
    run_in_child(readonly_child, f->dir);
}

/* No inode left for SPOOL_MARKER: the commit fails before anything is committed. */
static void no_marker_child(const char *dir)
{
    mount_tmpfs(dir, "size=4m,nr_inodes=16,mode=0755");
    SpoolStore *s;
    CHECK_R(spool_store_open(dir, SPOOL_OPEN_CREATE, &s, NULL, NULL), 0);
    char dummy[300];
    int n_dummies = 0;
    for (;; n_dummies++) {
        snprintf(dummy, sizeof(dummy), "%s/dummy%d", dir, n_dummies);
        int fd = open(dummy, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd < 0) {
            CHECK(errno == ENOSPC);
            break;
        }
        close(fd);
    }
    CHECK_R(spool_store_begin(s), 0);
    SpoolJob j = job("a");
    CHECK_R(spool_store_add(s, &j, 0, NULL), 0);
    CHECK_R(spool_store_commit(s), -ENOSPC);
    fprintf(stderr, "no marker: %s\n", spool_store_error(s));
    SpoolStats st;
    CHECK_R(spool_store_stats(s, &st), 0);
    CHECK(st.jobs == 0);
    SpoolJob out[2];
    size_t n;
    CHECK_R(spool_store_fetch(s, false, 0, out, 2, &n), 0);
    CHECK(n == 0);
    snprintf(dummy, sizeof(dummy), "%s/dummy0", dir);
    CHECK(unlink(dummy) == 0);
    CHECK_R(spool_store_add(s, &j, 0, NULL), 0);
    CHECK_R(spool_store_stats(s, &st), 0);
    CHECK(st.jobs == 1);
    spool_store_close(s);
}

static void test_marker_cannot_be_made(void **state)
{
    Fixture *f = *state;
    run_in_child(no_marker_child, f->dir);
}

static void full_child(const char *dir)
{
    mount_tmpfs(dir, "size=256k,mode=0755");
    char filler[256];
    snprintf(filler, sizeof(filler), "%s/filler", dir);
    static char block[65536];
    memset(block, 'f', sizeof(block));
    int fd = open(filler, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    CHECK(fd >= 0 && write(fd, block, sizeof(block)) == (ssize_t)sizeof(block));
    close(fd);

    SpoolStore *s;
    CHECK_R(spool_store_open(dir, SPOOL_OPEN_CREATE, &s, NULL, NULL), 0);
    int r = 0, committed = 0;
    for (int batch = 0; batch < 1000 && r == 0; batch++) {
        CHECK_R(spool_store_begin(s), 0);
        for (int i = 0; i < 10 && r == 0; i++) {
            SpoolJob j = job("x");
            memset(j.place_id, 'a' + i, 900);
            snprintf(j.place_id + 900, 16, "-%d-%d", batch, i);
            job_id_format(j.place_id, j.job_id);
            r = spool_store_add(s, &j, 0, NULL);
        }
        if (r == 0)
            r = spool_store_commit(s);
        else
            spool_store_rollback(s);
        if (r == 0)
            committed += 10;
    }
    fprintf(stderr, "full after %d jobs: %s\n", committed, spool_store_error(s));
    CHECK_R(r, -ENOSPC);
    CHECK(committed > 0);
    SpoolStats st;
    CHECK_R(spool_store_stats(s, &st), 0);
    CHECK(st.jobs == (uint64_t)committed);
    SpoolJob out[4];
    size_t n;
    CHECK_R(spool_store_fetch(s, false, 0, out, 4, &n), 0);
    CHECK(n == 4);

    CHECK(unlink(filler) == 0); /* room again */
    CHECK_R(spool_store_begin(s), 0);
    for (size_t i = 0; i < n; i++)
        CHECK_R(spool_store_delete(s, out[i].id), 0);
    CHECK_R(spool_store_commit(s), 0);
    SpoolJob j = job("after");
    CHECK_R(spool_store_add(s, &j, 0, NULL), 0);
    CHECK_R(spool_store_stats(s, &st), 0);
    CHECK(st.jobs == (uint64_t)committed - 3);
    spool_store_close(s);
}

static void test_full_filesystem(void **state)
{
    Fixture *f = *state;
    run_in_child(full_child, f->dir);
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_order_and_paging),
        T(test_group_commit_and_rollback),
        T(test_duplicates),
        T(test_delete_and_retry_later),
        T(test_dead_letters_and_requeue),
        T(test_max_jobs),
        T(test_marker),
        T(test_stats_and_reopen),
        T(test_open_absent),
        T(test_corrupt_garbage),
        T(test_corrupt_truncated),
        T(test_corrupt_other_schema),
        T(test_corrupt_empty_file_beside_wal),
        T(test_removed_or_replaced_under_an_open_store),
        T(test_forget),
        T(test_changed_elsewhere),
        T(test_readonly_directory),
        T(test_marker_cannot_be_made),
        T(test_full_filesystem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
