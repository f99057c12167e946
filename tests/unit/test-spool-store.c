/* SPDX-License-Identifier: MIT */
/* The spool's storage (src/spool/spool-store.c) against a temporary directory: order, group commit,
 * duplicates, dead letters, the bound, the marker, reopening, corrupt files moved aside, another
 * connection's commits, and I/O errors on a read-only and on a full filesystem (a tmpfs mounted
 * in a private mount namespace, in a child process). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
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

#include "clock.h"
#include "spool-schema.h"
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

/* A spool of version 1 whose table lacks a column: corrupt, and not migrated first (moved aside
 * as it was). */
static void test_corrupt_old_version(void **state)
{
    Fixture *f = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", f->dir, SPOOL_FILE);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(
            db,
            "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, created_usec INTEGER,"
            " place_id TEXT, job_id TEXT, request_id TEXT, attempts INTEGER, dead INTEGER);"
            "CREATE UNIQUE INDEX jobs_waiting ON jobs (job_id) WHERE dead = 0;"
            "CREATE INDEX jobs_by_state ON jobs (dead, id);"
            "PRAGMA application_id = 1095911251; PRAGMA user_version = 1;",
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

/* Its write-ahead log removed while a store is open (an `rm spool.sqlite*` that ran while the
 * file was made again): commits would go to a log nobody else reads, so begin says -ESTALE; the
 * close writes what it held into the file, and a new open sees it. */
static void test_wal_removed_under_an_open_store(void **state)
{
    Fixture *f = *state;
    char wal[256];
    snprintf(wal, sizeof(wal), "%s/%s-wal", f->dir, SPOOL_FILE);
    /* removed before this connection wrote anything (right after it made the file) */
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    assert_int_equal(unlink(wal), 0);
    assert_int_equal(spool_store_begin(s), -ESTALE);
    spool_store_close(s);

    s = open_store(f->dir, SPOOL_OPEN_CREATE);
    add(s, "before-wal-unlink", false);
    assert_int_equal(spool_store_check_identity(s), 0);
    assert_int_equal(unlink(wal), 0);
    assert_int_equal(spool_store_begin(s), -ESTALE);
    assert_int_equal(spool_store_check_identity(s), -ESTALE);
    spool_store_close(s);
    s = open_store(f->dir, SPOOL_OPEN_CREATE);
    assert_int_equal(stats(s).jobs, 1);
    add(s, "after-reopen", false);
    assert_int_equal(stats(s).jobs, 2);
    spool_store_close(s);
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

/* The ids of the jobs fetch_due gives at now_usec after after_id (up to max), joined by commas. */
static char *due_ids(SpoolStore *s, uint64_t now_usec, int64_t after_id, size_t max, char *buf,
                     size_t size)
{
    SpoolJob out[16];
    size_t n, len = 0;
    assert_true(max <= 16);
    assert_int_equal(spool_store_fetch_due(s, now_usec, after_id, out, max, &n), 0);
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        assert_false(out[i].dead);
        assert_false(out[i].held);
        len +=
            (size_t)snprintf(buf + len, size - len, "%s%lld", len ? "," : "", (long long)out[i].id);
    }
    return buf;
}

static SpoolJob get(SpoolStore *s, int64_t id)
{
    SpoolJob j;
    assert_int_equal(spool_store_get(s, id, &j), 0);
    assert_int_equal(j.id, id);
    return j;
}

#define SEC 1000000ULL

/* Jobs 1 to n, places p1 to pn. */
static void add_n(SpoolStore *s, int n)
{
    assert_int_equal(spool_store_begin(s), 0);
    for (int i = 1; i <= n; i++) {
        char p[16];
        snprintf(p, sizeof(p), "p%d", i);
        add(s, p, false);
    }
    assert_int_equal(spool_store_commit(s), 0);
}

/* The due jobs in id order, whatever their due times; held ones and dead letters never; jobs in
 * their backoff once their time has come; paging by after_id and max. */
static void test_fetch_due(void **state)
{
    Fixture *f = *state;
    char buf[128];
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    add_n(s, 8);
    uint64_t now = clock_usec(CLOCK_REALTIME);
    assert_string_equal(due_ids(s, now, 0, 16, buf, sizeof(buf)), "1,2,3,4,5,6,7,8");
    assert_int_equal(spool_store_retry_later(s, 1, now + 100 * SEC, "worker answered 503"), 0);
    assert_int_equal(spool_store_retry_later(s, 4, now + 50 * SEC, "timeout"), 0);
    assert_int_equal(spool_store_hold(s, 2, true), 0);
    assert_int_equal(spool_store_mark_dead(s, 6, "worker answered 400"), 0);
    assert_string_equal(due_ids(s, now, 0, 16, buf, sizeof(buf)), "3,5,7,8");
    /* later: 4's time has come (in its place by id), then 1's too */
    assert_string_equal(due_ids(s, now + 60 * SEC, 0, 16, buf, sizeof(buf)), "3,4,5,7,8");
    assert_string_equal(due_ids(s, now + 100 * SEC, 0, 16, buf, sizeof(buf)), "1,3,4,5,7,8");
    assert_string_equal(due_ids(s, now + 100 * SEC, 0, 3, buf, sizeof(buf)), "1,3,4");
    assert_string_equal(due_ids(s, now + 100 * SEC, 4, 3, buf, sizeof(buf)), "5,7,8");
    assert_string_equal(due_ids(s, now + 100 * SEC, 3, 1, buf, sizeof(buf)), "4");
    assert_string_equal(due_ids(s, now + 100 * SEC, 8, 16, buf, sizeof(buf)), "");
    /* a job whose retry time has passed at a commit is due now from then on */
    assert_int_equal(spool_store_retry_later(s, 3, now - SEC, "timeout"), 0);
    assert_int_equal(get(s, 3).due_usec, 0);
    assert_int_equal(get(s, 1).due_usec, now + 100 * SEC);
    assert_string_equal(due_ids(s, now, 0, 16, buf, sizeof(buf)), "3,5,7,8");
    spool_store_close(s);
}

/* retry_later: attempts + 1, the error, the last attempt now, the next due time; mark_dead counts
 * the attempt too; neither acts on a dead letter or on nothing. */
static void test_retry_later_and_mark_dead(void **state)
{
    Fixture *f = *state;
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    add_n(s, 2);
    uint64_t before = clock_usec(CLOCK_REALTIME), due = before + 30 * SEC;
    SpoolJob j = get(s, 1);
    assert_int_equal(j.attempts, 0);
    assert_int_equal(j.due_usec, 0);
    assert_int_equal(j.last_attempt_usec, 0);
    assert_int_equal(j.since_usec, j.created_usec);
    assert_false(j.held);
    assert_int_equal(spool_store_retry_later(s, 1, due, "worker answered 503"), 0);
    assert_int_equal(spool_store_retry_later(s, 1, due + SEC, "timeout"), 0);
    j = get(s, 1);
    assert_int_equal(j.attempts, 2);
    assert_int_equal(j.due_usec, due + SEC);
    assert_string_equal(j.last_error, "timeout");
    assert_true(j.last_attempt_usec >= before && j.last_attempt_usec <= clock_usec(CLOCK_REALTIME));
    assert_int_equal(spool_store_mark_dead(s, 1, "worker answered 404"), 0);
    j = get(s, 1);
    assert_true(j.dead);
    assert_int_equal(j.attempts, 3);
    assert_string_equal(j.last_error, "worker answered 404");
    assert_int_equal(spool_store_retry_later(s, 1, due, "x"), -ENOENT); /* a dead letter */
    assert_int_equal(spool_store_mark_dead(s, 1, "x"), -ENOENT);
    assert_int_equal(spool_store_retry_later(s, 99, due, "x"), -ENOENT);
    assert_int_equal(get(s, 1).attempts, 3);
    SpoolStats st = stats(s);
    assert_int_equal(st.jobs, 1);
    assert_int_equal(st.dead, 1);
    assert_int_equal(st.next_due_usec, 0);
    SpoolJob none;
    assert_int_equal(spool_store_get(s, 99, &none), -ENOENT);
    spool_store_close(s);
}

/* requeue: in place (its id, its created time, its last error), due now, not held, attempts 0,
 * its lifetime from now; a dead letter waits again, or is dropped when its job waits in another
 * record; nothing changed for an id that does not exist. */
static void test_requeue_in_place(void **state)
{
    Fixture *f = *state;
    char buf[64];
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    add_n(s, 4);
    uint64_t now = clock_usec(CLOCK_REALTIME);
    SpoolJob was = get(s, 1);
    assert_int_equal(spool_store_retry_later(s, 1, now + 3600 * SEC, "worker answered 503"), 0);
    assert_int_equal(spool_store_hold(s, 1, true), 0);
    assert_int_equal(spool_store_mark_dead(s, 2, "worker answered 400"), 0);
    assert_int_equal(spool_store_mark_dead(s, 3, "worker answered 422"), 0);
    add(s, "p3", false); /* job 5 */
    assert_int_equal(stats(s).held, 1);

    bool dropped = true;
    assert_int_equal(spool_store_requeue(s, 1, &dropped), 0);
    assert_false(dropped);
    SpoolJob j = get(s, 1);
    assert_false(j.held);
    assert_false(j.dead);
    assert_int_equal(j.due_usec, 0);
    assert_int_equal(j.attempts, 0);
    assert_int_equal(j.created_usec, was.created_usec);
    assert_true(j.since_usec >= now);
    assert_string_equal(j.last_error, "worker answered 503");

    assert_int_equal(spool_store_requeue(s, 2, &dropped), 0);
    assert_false(dropped);
    j = get(s, 2);
    assert_false(j.dead);
    assert_int_equal(j.attempts, 0);
    assert_string_equal(j.last_error, "worker answered 400");
    assert_int_equal(spool_store_requeue(s, 3, &dropped), 0); /* p3 waits as job 5 */
    assert_true(dropped);
    assert_int_equal(spool_store_get(s, 3, &j), -ENOENT);
    assert_int_equal(spool_store_requeue(s, 3, &dropped), -ENOENT);
    assert_int_equal(spool_store_requeue(s, 99, NULL), -ENOENT);
    assert_string_equal(places(s, false, buf, sizeof(buf)), "p1,p2,p4,p3");
    assert_string_equal(due_ids(s, now, 0, 16, buf, sizeof(buf)), "1,2,4,5");
    SpoolStats st = stats(s);
    assert_int_equal(st.jobs, 4);
    assert_int_equal(st.held, 0);
    assert_int_equal(st.dead, 0);
    assert_int_equal(spool_store_requeue(s, 4, NULL), 0); /* a waiting job: due now already */
    assert_int_equal(stats(s).jobs, 4);
    spool_store_close(s);
}

/* requeue-dead: every dead letter waits again in place; of several of one job the oldest is
 * kept; one whose job waits already is dropped. */
static void test_requeue_dead_keeps_the_oldest(void **state)
{
    Fixture *f = *state;
    char buf[64];
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    add(s, "x", false); /* 1 */
    add(s, "y", false); /* 2 */
    assert_int_equal(spool_store_mark_dead(s, 1, "first"), 0);
    add(s, "x", false); /* 3 */
    assert_int_equal(spool_store_mark_dead(s, 3, "second"), 0);
    add(s, "z", false); /* 4 */
    assert_int_equal(spool_store_mark_dead(s, 4, "z refused"), 0);
    add(s, "z", false); /* 5: z waits again by itself */
    assert_int_equal(stats(s).dead, 3);
    uint64_t n = 0;
    assert_int_equal(spool_store_requeue_dead(s, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(places(s, false, buf, sizeof(buf)), "x,y,z");
    SpoolJob x = get(s, 1);
    assert_string_equal(x.last_error, "first");
    assert_int_equal(x.attempts, 0);
    assert_int_equal(spool_store_get(s, 3, &x), -ENOENT);
    assert_int_equal(spool_store_get(s, 4, &x), -ENOENT);
    SpoolStats st = stats(s);
    assert_int_equal(st.jobs, 3);
    assert_int_equal(st.dead, 0);
    spool_store_close(s);
}

/* flush: every waiting job not held due now, attempts and lifetime kept; how many were not. */
static void test_flush(void **state)
{
    Fixture *f = *state;
    char buf[64];
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    add_n(s, 4);
    uint64_t now = clock_usec(CLOCK_REALTIME), n = 99;
    assert_int_equal(spool_store_retry_later(s, 1, now + 600 * SEC, "a"), 0);
    assert_int_equal(spool_store_retry_later(s, 2, now + 60 * SEC, "b"), 0);
    assert_int_equal(spool_store_retry_later(s, 3, now + 60 * SEC, "c"), 0);
    assert_int_equal(spool_store_hold(s, 3, true), 0);
    SpoolStats st = stats(s);
    assert_int_equal(st.next_due_usec, now + 60 * SEC); /* 3 is held */
    SpoolJob before = get(s, 1);
    assert_int_equal(spool_store_flush(s, &n), 0);
    assert_int_equal(n, 2);
    SpoolJob j = get(s, 1);
    assert_int_equal(j.due_usec, 0);
    assert_int_equal(j.attempts, 1);
    assert_int_equal(j.since_usec, before.since_usec);
    assert_int_equal(get(s, 3).due_usec, now + 60 * SEC); /* held: left as it was */
    assert_string_equal(due_ids(s, now, 0, 16, buf, sizeof(buf)), "1,2,4");
    assert_int_equal(stats(s).next_due_usec, 0);
    assert_int_equal(spool_store_flush(s, &n), 0);
    assert_int_equal(n, 0);
    spool_store_close(s);
}

static void collect_id(const char *job_id, void *userdata)
{
    char *buf = userdata;
    size_t len = strlen(buf);
    snprintf(buf + len, 256 - len, "%s%s", len ? "," : "", job_id);
}

/* hold/release: never due while held, not in the counts of jobs, the oldest, or the marker, but
 * against SPOOL_MAX_JOBS; forget leaves a held record; another connection's hold and release are
 * seen (held_ids, the counts, the marker). */
static void test_hold_and_release(void **state)
{
    Fixture *f = *state;
    char buf[256];
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    SpoolStore *cli = open_store(f->dir, 0);
    SpoolJob a = job("a");
    a.created_usec = 1000 * SEC;
    assert_int_equal(spool_store_add(s, &a, 0, NULL), 0);
    add(s, "b", false);
    uint64_t now = clock_usec(CLOCK_REALTIME);
    assert_int_equal(spool_store_retry_later(s, 1, now + 60 * SEC, "timeout"), 0);
    assert_int_equal(spool_store_hold(s, 1, true), 0);
    assert_int_equal(spool_store_hold(s, 1, true), 0); /* held already: nothing changes */
    SpoolStats st = stats(s);
    assert_int_equal(st.jobs, 1);
    assert_int_equal(st.held, 1);
    assert_true(st.oldest_usec > 1000 * SEC); /* b's, not the held a's */
    assert_int_equal(st.next_due_usec, 0);
    assert_true(get(s, 1).held);
    assert_string_equal(due_ids(s, now + 3600 * SEC, 0, 16, buf, sizeof(buf)), "2");
    assert_string_equal(places(s, false, buf, sizeof(buf)), "a,b"); /* fetch: held included */
    buf[0] = '\0';
    assert_int_equal(spool_store_held_ids(s, collect_id, buf), 0);
    assert_string_equal(buf, "reviews:a:start");

    add(s, "a", true); /* a client sends it again: it is there, held */
    assert_int_equal(spool_store_forget(s, a.job_id), -ENOENT);
    SpoolJob c = job("c");
    assert_int_equal(spool_store_add(s, &c, 2, NULL), -EDQUOT); /* the held one counts */

    /* only held jobs wait: no marker */
    assert_int_equal(spool_store_delete(s, 2), 0);
    assert_false(marker_exists(f->dir));
    assert_int_equal(stats(s).jobs, 0);
    assert_int_equal(stats(s).oldest_usec, 0);

    /* released by another connection (the command): due at the time it had */
    assert_int_equal(spool_store_hold(cli, 1, false), 0);
    assert_true(marker_exists(f->dir));
    assert_true(spool_store_changed_elsewhere(s));
    buf[0] = '\0';
    assert_int_equal(spool_store_held_ids(s, collect_id, buf), 0);
    assert_string_equal(buf, "");
    st = stats(s);
    assert_int_equal(st.jobs, 1);
    assert_int_equal(st.held, 0);
    assert_int_equal(st.oldest_usec, 1000 * SEC);
    assert_int_equal(st.next_due_usec, now + 60 * SEC);
    assert_int_equal(spool_store_hold(s, 1, false), 0); /* not held: nothing changes */

    /* held by the command: the daemon's held set follows */
    assert_int_equal(spool_store_hold(cli, 1, true), 0);
    buf[0] = '\0';
    assert_int_equal(spool_store_held_ids(s, collect_id, buf), 0);
    assert_string_equal(buf, "reviews:a:start");
    assert_false(marker_exists(f->dir));

    spool_store_close(cli);
    spool_store_close(s);
}

/* A held job refused for good (its attempt was under way when it was held): a dead letter, not
 * held; a dead letter cannot be held or released. */
static void test_hold_and_dead_letters(void **state)
{
    Fixture *f = *state;
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    add_n(s, 1);
    assert_int_equal(spool_store_hold(s, 1, true), 0);
    assert_int_equal(spool_store_mark_dead(s, 1, "worker answered 400"), 0);
    SpoolStats st = stats(s);
    assert_int_equal(st.held, 0);
    assert_int_equal(st.dead, 1);
    assert_false(get(s, 1).held);
    assert_int_equal(spool_store_hold(s, 1, true), -ENOENT);
    assert_int_equal(spool_store_hold(s, 1, false), -ENOENT);
    assert_int_equal(spool_store_hold(s, 99, true), -ENOENT);
    spool_store_close(s);

    s = open_store(f->dir, 0); /* counted again from the file */
    st = stats(s);
    assert_int_equal(st.jobs + st.held, 0);
    assert_int_equal(st.dead, 1);
    spool_store_close(s);
}

/* The held count and the rest stay exact through a rollback and a reopen. */
static void test_counts_after_rollback_and_reopen(void **state)
{
    Fixture *f = *state;
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    add_n(s, 3);
    assert_int_equal(spool_store_hold(s, 1, true), 0);
    assert_int_equal(spool_store_begin(s), 0);
    assert_int_equal(spool_store_hold(s, 2, true), 0);
    assert_int_equal(spool_store_hold(s, 1, false), 0);
    assert_int_equal(spool_store_delete(s, 3), 0);
    SpoolStats st = stats(s);
    assert_int_equal(st.jobs, 1);
    assert_int_equal(st.held, 1);
    spool_store_rollback(s);
    st = stats(s);
    assert_int_equal(st.jobs, 2);
    assert_int_equal(st.held, 1);
    assert_true(get(s, 1).held);
    spool_store_close(s);
    s = open_store(f->dir, SPOOL_OPEN_CREATE);
    st = stats(s);
    assert_int_equal(st.jobs, 2);
    assert_int_equal(st.held, 1);
    spool_store_close(s);
}

static void test_check_identity(void **state)
{
    Fixture *f = *state;
    char path[256];
    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE);
    add(s, "a", false);
    assert_int_equal(spool_store_check_identity(s), 0);
    snprintf(path, sizeof(path), "%s/%s", f->dir, SPOOL_FILE);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(spool_store_check_identity(s), -ESTALE);
    assert_non_null(strstr(spool_store_error(s), "removed or replaced"));
    spool_store_close(s);
}

/* The jobs of tests/unit/spool-v1.sql, a spool written by release 0.1.0: what a migration keeps. */
typedef struct V1Job {
    int64_t id;
    unsigned sec; /* created 1700000000 + sec */
    const char *place, *request, *error;
    unsigned attempts;
    bool dead;
} V1Job;

static const V1Job v1_jobs[] = {
    {1, 0, "w-a", "req-a", "worker answered 503", 2, false},
    {2, 1, "d-b", "req-b", "worker answered 400: bad place", 1, true},
    {3, 2, "w-c", "", "worker unreachable", 0, false},
    {4, 3, "dup-d", "req-d1", "worker answered 422: first", 0, true},
    {5, 4, "dup-d", "req-d2", "worker answered 422: second", 1, true},
    {6, 5, "w-e", "req-\x1b[31mred", "worker answered 500: \x1b]0;title\a \x7f \xff\xfe end", 1,
     false},
    {7, 6, "dw-f", "req-f1", "worker answered 404", 0, true},
    {8, 7, "dw-f", "req-f2", "worker unreachable", 0, false},
    {10, 9, "w-h", "req-h", "worker unreachable", 0, false},
    {11, 10, "w-i", "req-i", "worker unreachable", 0, false},
};

/* dir/SPOOL_FILE made from the fixture named by the environment variable var (in WAL mode, as
 * the releases wrote it) with user_version version, and SPOOL_MARKER beside it. */
static void make_fixture(const char *dir, const char *var, int version)
{
    const char *fixture = getenv(var);
    if (!fixture)
        fail_msg("%s is not set (meson test sets it)", var);
    size_t len;
    char *sql = slurp(fixture, &len);
    sql[len] = '\0';
    char path[256], pragma[64];
    snprintf(path, sizeof(path), "%s/%s", dir, SPOOL_FILE);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version);
    assert_int_equal(sqlite3_exec(db, pragma, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
    free(sql);
    snprintf(path, sizeof(path), "%s/%s", dir, SPOOL_MARKER);
    spit(path, "", 0);
}

/* dir/SPOOL_FILE made from spool-v1.sql, a spool of release 0.1.0. */
static void make_v1(const char *dir, int version)
{
    make_fixture(dir, "SPOOL_V1_SQL", version);
}

/* One integer that sql gives on dir/SPOOL_FILE, read by a connection of its own. */
static int64_t file_int(const char *dir, const char *sql)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, SPOOL_FILE);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Every job of the fixture, in order, as it was, the new columns at their defaults. */
static void check_v1_jobs(SpoolStore *s, bool held3)
{
    for (int dead = 0; dead <= 1; dead++) {
        SpoolJob out[16];
        size_t n, k = 0;
        assert_int_equal(spool_store_fetch(s, dead, 0, out, 16, &n), 0);
        for (size_t i = 0; i < sizeof(v1_jobs) / sizeof(v1_jobs[0]); i++) {
            const V1Job *v = &v1_jobs[i];
            if (v->dead != dead)
                continue;
            assert_true(k < n);
            const SpoolJob *j = &out[k++];
            assert_int_equal(j->id, v->id);
            assert_int_equal(j->created_usec, 1700000000 * SEC + v->sec * SEC);
            assert_string_equal(j->place_id, v->place);
            char job_id[JOB_ID_MAX + 1];
            job_id_format(v->place, job_id);
            assert_string_equal(j->job_id, job_id);
            assert_string_equal(j->request_id, v->request);
            assert_string_equal(j->last_error, v->error);
            assert_int_equal(j->attempts, v->attempts);
            assert_int_equal(j->dead, v->dead);
            assert_int_equal(j->held, held3 && v->id == 3);
            assert_int_equal(j->due_usec, 0);
            assert_int_equal(j->since_usec, j->created_usec);
            assert_int_equal(j->last_attempt_usec, 0);
        }
        assert_int_equal(k, n);
    }
    SpoolStats st = stats(s);
    assert_int_equal(st.jobs + st.held, 6);
    assert_int_equal(st.held, held3 ? 1 : 0);
    assert_int_equal(st.dead, 4);
    assert_int_equal(st.oldest_usec, 1700000000 * SEC);
    assert_int_equal(st.next_due_usec, 0);
}

/* A spool of release 0.1.0: the daemon's open migrates it to version 2 in place, keeping every
 * job; a second open changes nothing. */
static void test_migrate_v1(void **state)
{
    Fixture *f = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", f->dir, SPOOL_FILE);
    make_v1(f->dir, 1);
    assert_int_equal(file_int(f->dir, "PRAGMA user_version"), 1);

    SpoolStore *s = open_store(f->dir, SPOOL_OPEN_CREATE | SPOOL_OPEN_REPAIR);
    assert_int_equal(file_int(f->dir, "PRAGMA user_version"), SPOOL_USER_VERSION);
    check_v1_jobs(s, false);
    assert_true(marker_exists(f->dir));
    char buf[64];
    assert_string_equal(due_ids(s, clock_usec(CLOCK_REALTIME), 0, 16, buf, sizeof(buf)),
                        "1,3,6,8,10,11");
    spool_store_close(s);
    assert_int_equal(file_int(f->dir, "SELECT count(*) FROM sqlite_schema WHERE type = 'index'"
                                      " AND name = 'jobs_due'"),
                     1);
    assert_int_equal(file_int(f->dir, "SELECT seq FROM sqlite_sequence WHERE name = 'jobs'"), 11);

    size_t len;
    char *migrated = slurp(path, &len);
    s = open_store(f->dir, SPOOL_OPEN_CREATE | SPOOL_OPEN_REPAIR);
    check_v1_jobs(s, false);
    spool_store_close(s);
    assert_same_file(path, migrated, len); /* nothing written by the second open */
    free(migrated);

    /* and it works as any spool: a new job takes the next id */
    s = open_store(f->dir, SPOOL_OPEN_CREATE);
    add(s, "w-a", true);
    add(s, "new", false);
    SpoolJob out[8];
    size_t n;
    assert_int_equal(spool_store_fetch(s, false, 10, out, 8, &n), 0);
    assert_int_equal(n, 2);
    assert_true(out[1].id > 11); /* never an id handed out before */
    assert_string_equal(out[1].place_id, "new");
    spool_store_close(s);
}

/* The command's open reads a 0.1.0 spool as it is, without writing; its first write migrates
 * it, also when another connection migrated it meanwhile. */
static void test_v1_read_as_it_is(void **state)
{
    Fixture *f = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", f->dir, SPOOL_FILE);
    make_v1(f->dir, 1);
    size_t len;
    char *v1 = slurp(path, &len);

    SpoolStore *a = open_store(f->dir, 0), *b = open_store(f->dir, 0);
    check_v1_jobs(a, false);
    SpoolJob j = get(a, 6);
    assert_string_equal(j.last_error, v1_jobs[5].error);
    char buf[256] = "";
    assert_int_equal(spool_store_held_ids(a, collect_id, buf), 0);
    assert_string_equal(buf, "");
    spool_store_close(a);
    assert_int_equal(file_int(f->dir, "PRAGMA user_version"), 1);
    assert_same_file(path, v1, len);
    free(v1);

    a = open_store(f->dir, 0);
    assert_int_equal(spool_store_hold(a, 3, true), 0); /* migrates, then holds */
    assert_int_equal(file_int(f->dir, "PRAGMA user_version"), SPOOL_USER_VERSION);
    check_v1_jobs(a, true);
    /* b read it as version 1: its first write finds it migrated already */
    assert_int_equal(spool_store_hold(b, 3, true), 0);
    check_v1_jobs(b, true);
    assert_int_equal(spool_store_hold(b, 3, false), 0);
    check_v1_jobs(a, false);
    spool_store_close(b);
    spool_store_close(a);
}

/* Every job of spool-v2.sql (spool-v1.sql's, then job 3 held, job 1 due later, job 10's lifetime
 * restarted), its schedule kept, and no trace (a delivery starts one). */
static void check_v2_jobs(SpoolStore *s)
{
    SpoolJob j = get(s, 1);
    assert_int_equal(j.due_usec, 1900000000 * SEC);
    assert_int_equal(j.last_attempt_usec, 1700000100 * SEC);
    assert_int_equal(j.attempts, 2);
    assert_true(get(s, 3).held);
    assert_int_equal(get(s, 10).since_usec, 1700000200 * SEC);
    assert_int_equal(get(s, 11).since_usec, 1700000010 * SEC);
    j = get(s, 6);
    assert_string_equal(j.request_id, v1_jobs[5].request);
    assert_string_equal(j.last_error, v1_jobs[5].error);
    for (int64_t id = 1; id <= 11; id++) {
        if (id == 9)
            continue;
        j = get(s, id);
        assert_string_equal(j.traceparent, ""); /* '' at its default, not "0" */
        assert_string_equal(j.tracestate, "");
    }
    SpoolStats st = stats(s);
    assert_int_equal(st.jobs, 5);
    assert_int_equal(st.held, 1);
    assert_int_equal(st.dead, 4);
}

/* A spool of release 0.2.0 (schema version 2): read as it is by the command's open, migrated to
 * version 3 in place by the daemon's, every job and schedule kept; a new job keeps its trace. */
static void test_migrate_v2(void **state)
{
    Fixture *f = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", f->dir, SPOOL_FILE);
    make_fixture(f->dir, "SPOOL_V2_SQL", 2);
    size_t len;
    char *v2 = slurp(path, &len);
    SpoolStore *s = open_store(f->dir, 0);
    check_v2_jobs(s);
    spool_store_close(s);
    assert_int_equal(file_int(f->dir, "PRAGMA user_version"), 2);
    assert_same_file(path, v2, len);
    free(v2);

    s = open_store(f->dir, SPOOL_OPEN_CREATE | SPOOL_OPEN_REPAIR);
    assert_int_equal(file_int(f->dir, "PRAGMA user_version"), SPOOL_USER_VERSION);
    check_v2_jobs(s);
    char buf[64];
    assert_string_equal(due_ids(s, 1800000000 * SEC, 0, 16, buf, sizeof(buf)), "6,8,10,11");

    SpoolJob j = job("traced");
    snprintf(j.traceparent, sizeof(j.traceparent), "%s",
             "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    snprintf(j.tracestate, sizeof(j.tracestate), "%s", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    assert_int_equal(spool_store_add(s, &j, 0, NULL), 0);
    SpoolJob out[8];
    size_t n;
    assert_int_equal(spool_store_fetch(s, false, 11, out, 8, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].traceparent, j.traceparent);
    assert_string_equal(out[0].tracestate, j.tracestate);
    spool_store_close(s);
}

/* A spool of a newer release: -EPROTO, and the file is left as it is, byte for byte. */
static void test_newer_version(void **state)
{
    Fixture *f = *state;
    char path[256], corrupt[300];
    snprintf(path, sizeof(path), "%s/%s", f->dir, SPOOL_FILE);
    make_v1(f->dir, SPOOL_USER_VERSION + 1);
    size_t len;
    char *data = slurp(path, &len);

    SpoolStore *s = NULL;
    char *moved = NULL, *why = NULL;
    assert_int_equal(
        spool_store_open(f->dir, SPOOL_OPEN_CREATE | SPOOL_OPEN_REPAIR, &s, &moved, &why), -EPROTO);
    assert_null(s);
    assert_null(moved);
    assert_non_null(why);
    print_message("why: %s\n", why);
    char want[64];
    snprintf(want, sizeof(want), "written by a newer release (schema version %d)",
             SPOOL_USER_VERSION + 1);
    assert_non_null(strstr(why, want));
    free(why);
    assert_int_equal(spool_store_open(f->dir, 0, &s, NULL, NULL), -EPROTO);
    assert_same_file(path, data, len);
    snprintf(corrupt, sizeof(corrupt), "%s/%s.corrupt-*", f->dir, SPOOL_FILE);
    glob_t g;
    assert_int_equal(glob(corrupt, 0, NULL, &g), GLOB_NOMATCH);
    assert_int_equal(file_int(f->dir, "PRAGMA user_version"), SPOOL_USER_VERSION + 1);
    free(data);
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

/* make_v1() for a child: dir/SPOOL_FILE from the fixture, version 1. */
static void make_v1_in_child(const char *dir)
{
    static char sql[65536];
    FILE *fp = fopen(getenv("SPOOL_V1_SQL"), "r");
    CHECK(fp);
    size_t len = fread(sql, 1, sizeof(sql) - 1, fp);
    fclose(fp);
    sql[len] = '\0';
    char path[300];
    snprintf(path, sizeof(path), "%s/%s", dir, SPOOL_FILE);
    CHECK(mkdir(dir, 0755) == 0);
    sqlite3 *db;
    CHECK(sqlite3_open(path, &db) == SQLITE_OK);
    CHECK(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK);
    CHECK(sqlite3_close(db) == SQLITE_OK);
}

/* A 0.1.0 spool on a read-only filesystem: the command reads it as it is. */
static void readonly_v1(const char *old)
{
    SpoolStore *s;
    SpoolStats st;
    CHECK_R(spool_store_open(old, SPOOL_OPEN_CREATE, &s, NULL, NULL), -EROFS);
    CHECK_R(spool_store_open(old, 0, &s, NULL, NULL), 0);
    CHECK_R(spool_store_stats(s, &st), 0);
    CHECK(st.jobs == 6 && st.dead == 4 && st.held == 0);
    SpoolJob j;
    CHECK_R(spool_store_get(s, 6, &j), 0);
    CHECK(strcmp(j.place_id, "w-e") == 0 && j.attempts == 1 && j.since_usec == j.created_usec);
    CHECK_R(spool_store_hold(s, 6, true), -EROFS);
    spool_store_close(s);
}

static void readonly_child(const char *dir)
{
    mount_tmpfs(dir, "size=4m,mode=0755");
    char spool[256], old[256];
    snprintf(spool, sizeof(spool), "%s/spool", dir);
    snprintf(old, sizeof(old), "%s/old", dir);
    SpoolStore *s;
    CHECK_R(spool_store_open(spool, SPOOL_OPEN_CREATE, &s, NULL, NULL), 0);
    SpoolJob j = job("a");
    CHECK_R(spool_store_add(s, &j, 0, NULL), 0);
    spool_store_close(s);
    make_v1_in_child(old);
    CHECK(mount(NULL, dir, NULL, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, NULL) == 0);
    readonly_v1(old);

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
        T(test_corrupt_old_version),
        T(test_corrupt_empty_file_beside_wal),
        T(test_removed_or_replaced_under_an_open_store),
        T(test_wal_removed_under_an_open_store),
        T(test_forget),
        T(test_changed_elsewhere),
        T(test_readonly_directory),
        T(test_marker_cannot_be_made),
        T(test_full_filesystem),
        T(test_fetch_due),
        T(test_retry_later_and_mark_dead),
        T(test_requeue_in_place),
        T(test_requeue_dead_keeps_the_oldest),
        T(test_flush),
        T(test_hold_and_release),
        T(test_hold_and_dead_letters),
        T(test_counts_after_rollback_and_reopen),
        T(test_check_identity),
        T(test_migrate_v1),
        T(test_v1_read_as_it_is),
        T(test_migrate_v2),
        T(test_newer_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
