/* SPDX-License-Identifier: MIT */
#include "spool-store.h"

#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "macro.h"
#include "spool-schema.h"

/* The columns of a job as read_job() takes them; since_usec 0 is a job of schema version 1, whose
 * lifetime began when it was spooled. */
#define JOB_COLUMNS                                                                                \
    "id, created_usec, attempts, dead, place_id, job_id, request_id, last_error, due_usec, held,"  \
    " CASE since_usec WHEN 0 THEN created_usec ELSE since_usec END, last_attempt_usec,"            \
    " traceparent, tracestate"

/* The statements that read come first: a file of an older schema version, read as it is, has
 * only those prepared until its first write migrates it (upgrade()). */
enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_DATA_VERSION,
    ST_WAITS,
    ST_WAITS_ELSEWHERE,
    ST_STATE,
    ST_FETCH,
    ST_FETCH_DUE,
    ST_GET,
    ST_COUNT,
    ST_COUNT_HELD,
    ST_OLDEST,
    ST_NEXT_DUE,
    ST_HELD_IDS,
    ST_FIRST_WRITE,
    ST_ADD = ST_FIRST_WRITE,
    ST_DELETE,
    ST_RETRY,
    ST_DEAD,
    ST_FORGET,
    ST_REQUEUE,
    ST_HOLD,
    ST_FLUSH,
    ST_DROP_DEAD,
    ST_REQUEUE_DEAD,
    ST_PROMOTE,
    ST_MAX,
};

static const char *const statements[ST_MAX] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_DATA_VERSION] = "PRAGMA data_version",
    [ST_WAITS] = "SELECT 1 FROM jobs WHERE dead = 0 AND job_id = ?1",
    /* another record of job ?1's job id waits */
    [ST_WAITS_ELSEWHERE] = "SELECT 1 FROM jobs WHERE dead = 0 AND id != ?1 AND job_id ="
                           " (SELECT job_id FROM jobs WHERE id = ?1)",
    [ST_STATE] = "SELECT dead, held FROM jobs WHERE id = ?1",
    [ST_FETCH] =
        "SELECT " JOB_COLUMNS " FROM jobs WHERE dead = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    /* Two ranges of jobs_due, merged in id order: the jobs due now (due_usec 0), in id order in
     * the index; and those whose time has come since the last commit (see ST_PROMOTE), sorted
     * (only they: the jobs in their backoff are past the range's end). "+id": else SQLite walks
     * that part by jobs_by_state in id order, every waiting job, to find the few due. */
    [ST_FETCH_DUE] = "SELECT " JOB_COLUMNS " FROM jobs WHERE dead = 0 AND held = 0 AND due_usec = 0"
                     " AND id > ?2"
                     " UNION ALL SELECT " JOB_COLUMNS " FROM jobs WHERE dead = 0 AND held = 0"
                     " AND due_usec > 0 AND due_usec <= ?1 AND +id > ?2"
                     " ORDER BY id LIMIT ?3",
    [ST_GET] = "SELECT " JOB_COLUMNS " FROM jobs WHERE id = ?1",
    [ST_COUNT] = "SELECT count(*) FROM jobs WHERE dead = ?1",
    [ST_COUNT_HELD] = "SELECT count(*) FROM jobs WHERE dead = 0 AND held = 1",
    /* by jobs_by_state, in id order, skipping the held ones (+: not by jobs_due, whose rows are
     * not in id order) */
    [ST_OLDEST] = "SELECT created_usec FROM jobs WHERE dead = 0 AND +held = 0 ORDER BY id LIMIT 1",
    [ST_NEXT_DUE] = "SELECT min(due_usec) FROM jobs WHERE dead = 0 AND held = 0 AND due_usec > 0",
    [ST_HELD_IDS] = "SELECT job_id FROM jobs WHERE dead = 0 AND held = 1",
    /* the partial unique index ignores a second waiting record of a job */
    [ST_ADD] = "INSERT OR IGNORE INTO jobs (created_usec, since_usec, place_id, job_id,"
               " request_id, last_error, traceparent, tracestate)"
               " VALUES (?1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [ST_DELETE] = "DELETE FROM jobs WHERE id = ?1 RETURNING dead, held",
    [ST_RETRY] = "UPDATE jobs SET attempts = attempts + 1, last_error = ?2, due_usec = ?3,"
                 " last_attempt_usec = ?4 WHERE id = ?1 AND dead = 0",
    [ST_DEAD] = "UPDATE jobs SET dead = 1, held = 0, attempts = attempts + 1, last_error = ?2,"
                " last_attempt_usec = ?3 WHERE id = ?1 AND dead = 0",
    [ST_FORGET] = "DELETE FROM jobs WHERE job_id = ?1 AND dead = 0 AND held = 0",
    [ST_REQUEUE] = "UPDATE jobs SET dead = 0, held = 0, due_usec = 0, attempts = 0,"
                   " since_usec = ?2 WHERE id = ?1",
    [ST_HOLD] = "UPDATE jobs SET held = ?2 WHERE id = ?1",
    [ST_FLUSH] = "UPDATE jobs SET due_usec = 0 WHERE dead = 0 AND held = 0 AND due_usec > 0",
    /* a dead letter whose job waits already, or of a job with an older dead letter: dropped
     * (EXISTS by jobs_waiting, not a list of every waiting job id) */
    [ST_DROP_DEAD] = "DELETE FROM jobs WHERE dead = 1 AND (EXISTS (SELECT 1 FROM jobs w"
                     " WHERE w.dead = 0 AND w.job_id = jobs.job_id) OR id NOT IN"
                     " (SELECT min(id) FROM jobs WHERE dead = 1 GROUP BY job_id))",
    /* At each commit: the jobs whose time has come are due now, so that they join the first
     * range of ST_FETCH_DUE, read in index order, instead of being sorted at every fetch (100,000
     * of them cost 10 ms a fetch). */
    [ST_PROMOTE] = "UPDATE jobs SET due_usec = 0 WHERE dead = 0 AND held = 0 AND due_usec > 0"
                   " AND due_usec <= ?1",
    [ST_REQUEUE_DEAD] = "UPDATE jobs SET dead = 0, held = 0, due_usec = 0, attempts = 0,"
                        " since_usec = ?1 WHERE dead = 1",
};

struct SpoolStore {
    sqlite3 *db;
    sqlite3_stmt *st[ST_MAX];
    int dir_fd;
    char *dir; /* as given to spool_store_open: the directory moved away, or another put in its
                * place (a symlink swapped), is seen */
    dev_t dev; /* SPOOL_FILE's, at open: a file replaced or removed under us is seen */
    ino_t ino;
    /* Its write-ahead log's, once seen: one removed under us (an `rm spool.sqlite*` that ran
     * while the spool was opened again) holds commits that no one else would read */
    dev_t wal_dev;
    ino_t wal_ino;
    bool wal_known;
    int version; /* the file's schema version: below SPOOL_USER_VERSION until upgrade() */
    bool in_tx;
    int tx_error; /* SQLite rolled the open transaction back by itself: why */
    /* waiting, held ones included (the bound), and held: counted at open, kept by the writes */
    uint64_t n_jobs, n_held;
    /* dead letters, counted when asked after a change (they change rarely; a count each
     * group would walk them all) */
    uint64_t n_dead;
    bool dead_known;
    int64_t oldest_cached; /* oldest_waiting()'s, while the same number of jobs is held */
    uint64_t oldest_n_held;
    uint64_t oldest_read_usec; /* CLOCK_MONOTONIC when it was read; 0: never */
    int64_t data_version;      /* PRAGMA data_version when last looked at */
    bool changed_elsewhere;    /* seen moving, not yet told */
    char error[SPOOL_ERROR_MAX];
};

static int set_error(SpoolStore *s, int r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->error, sizeof(s->error), fmt, ap);
    va_end(ap);
    return r;
}

/* Steps st to its end; 0 or the errno (with SQLite's words kept when record). The first n
 * columns of its last row, if any, into cols. */
static int step_cols(SpoolStore *s, sqlite3_stmt *st, bool record, int64_t *cols, int n)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        for (int i = 0; i < n; i++)
            cols[i] = sqlite3_column_int64(st, i);
    int r = 0;
    if (rc != SQLITE_DONE) {
        r = spool_sqlite_errno(s->db, rc, s->dir_fd);
        r = r ? r : -EIO;
        if (record)
            set_error(s, r, "%s", sqlite3_errmsg(s->db));
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return r;
}

static int step(SpoolStore *s, sqlite3_stmt *st, bool record, int64_t *ret_col0)
{
    return step_cols(s, st, record, ret_col0, ret_col0 ? 1 : 0);
}

static int recount(SpoolStore *s, bool record)
{
    int64_t n = 0, held = 0;
    sqlite3_bind_int(s->st[ST_COUNT], 1, 0);
    int r = step(s, s->st[ST_COUNT], record, &n);
    if (r == 0)
        r = step(s, s->st[ST_COUNT_HELD], record, &held);
    if (r == 0) {
        s->n_jobs = (uint64_t)n;
        s->n_held = (uint64_t)held;
    }
    s->dead_known = false;
    return r;
}

/* Another connection committed since we last looked: the counts are read again. */
static int refresh(SpoolStore *s)
{
    int64_t v = s->data_version;
    int r = step(s, s->st[ST_DATA_VERSION], true, &v);
    if (r < 0 || v == s->data_version)
        return r;
    s->data_version = v;
    s->changed_elsewhere = true;
    return recount(s, true);
}

/* Jobs that wait for delivery: the ones SPOOL_MARKER stands for. */
static bool any_due_some_day(const SpoolStore *s)
{
    return s->n_jobs > s->n_held;
}

static int marker_make(SpoolStore *s)
{
    if (faccessat(s->dir_fd, SPOOL_MARKER, F_OK, AT_SYMLINK_NOFOLLOW) == 0)
        return 0;
    _cleanup_close_ int fd =
        openat(s->dir_fd, SPOOL_MARKER, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
    if (fd < 0 || fsync(fd) < 0 || fsync(s->dir_fd) < 0) {
        int e = errno, r = e == EACCES || e == EPERM ? -EROFS : -e;
        set_error(s, r, "cannot make %s: %s", SPOOL_MARKER, strerror(e));
        if (fd >= 0) /* not known to be on disk: made again next time */
            (void)unlinkat(s->dir_fd, SPOOL_MARKER, 0);
        return r;
    }
    return 0;
}

/* After a commit that left no job waiting (held ones aside): under the write lock again, so that
 * no other connection's jobs are committed between our look and the unlink. Best effort: a
 * marker left is removed by the next such commit, or the daemon's next open. */
static void marker_drop(SpoolStore *s)
{
    if (faccessat(s->dir_fd, SPOOL_MARKER, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    if (step(s, s->st[ST_BEGIN], false, NULL) < 0)
        return;
    if (refresh(s) == 0 && !any_due_some_day(s))
        (void)unlinkat(s->dir_fd, SPOOL_MARKER, 0);
    if (step(s, s->st[ST_COMMIT], false, NULL) < 0 && !sqlite3_get_autocommit(s->db))
        (void)step(s, s->st[ST_ROLLBACK], false, NULL);
}

int spool_store_check_identity(SpoolStore *s)
{
    struct stat f, d, p;
    if (fstat(s->dir_fd, &d) < 0 || d.st_nlink == 0)
        return set_error(s, -ESTALE, "the spool's directory was removed");
    if (stat(s->dir, &p) < 0 || p.st_dev != d.st_dev || p.st_ino != d.st_ino)
        return set_error(s, -ESTALE, "the spool's directory was moved or replaced");
    if (fstatat(s->dir_fd, SPOOL_FILE, &f, AT_SYMLINK_NOFOLLOW) < 0 || f.st_dev != s->dev ||
        f.st_ino != s->ino)
        return set_error(s, -ESTALE, SPOOL_FILE " was removed or replaced");
    /* A connection in WAL mode made its -wal at its first read, at the open, and SQLite
     * removes it only at the last connection's close: missing, it was removed under us */
    struct stat w;
    if (fstatat(s->dir_fd, SPOOL_FILE "-wal", &w, AT_SYMLINK_NOFOLLOW) < 0)
        return set_error(s, -ESTALE, SPOOL_FILE "-wal was removed");
    if (s->wal_known && (w.st_dev != s->wal_dev || w.st_ino != s->wal_ino))
        return set_error(s, -ESTALE, SPOOL_FILE "-wal was replaced");
    s->wal_dev = w.st_dev;
    s->wal_ino = w.st_ino;
    s->wal_known = true;
    return 0;
}

static int prepare(SpoolStore *s, size_t from, size_t to)
{
    for (size_t i = from; i < to; i++) {
        int rc = sqlite3_prepare_v3(s->db, statements[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                                    NULL);
        if (rc != SQLITE_OK) {
            int r = spool_sqlite_errno(s->db, rc, s->dir_fd);
            return set_error(s, r ? r : -EIO, "%s", sqlite3_errmsg(s->db));
        }
    }
    return 0;
}

/* The first write to a file of an older schema version, read as it is until now: migrated. */
static int upgrade(SpoolStore *s)
{
    _cleanup_free_ char *why = NULL;
    int r = spool_schema_upgrade(s->db, s->dir_fd, s->version, &why);
    if (r < 0)
        return set_error(s, r, "cannot migrate the spool from schema version %d: %s", s->version,
                         why ? why : sqlite3_errmsg(s->db));
    s->version = SPOOL_USER_VERSION;
    return prepare(s, ST_FIRST_WRITE, ST_MAX);
}

int spool_store_begin(SpoolStore *s)
{
    if (s->in_tx)
        return set_error(s, -EINVAL, "a transaction is already open");
    if (sqlite3_db_readonly(s->db, "main") == 1) /* first: a read-only one may have no -wal */
        return set_error(s, -EROFS, "the spool is read-only here");
    int r = spool_store_check_identity(s);
    if (r < 0)
        return r;
    if (s->version < SPOOL_USER_VERSION) {
        r = upgrade(s);
        if (r < 0)
            return r;
    }
    r = step(s, s->st[ST_BEGIN], true, NULL);
    if (r < 0)
        return r;
    s->in_tx = true;
    s->tx_error = 0;
    r = refresh(s); /* the counts are exact inside the transaction: the bound, the marker */
    if (r < 0) {
        char saved[SPOOL_ERROR_MAX];
        memcpy(saved, s->error, sizeof(saved));
        spool_store_rollback(s);
        memcpy(s->error, saved, sizeof(saved));
    }
    return r;
}

void spool_store_rollback(SpoolStore *s)
{
    if (!s || !s->in_tx)
        return;
    if (!sqlite3_get_autocommit(s->db))
        (void)step(s, s->st[ST_ROLLBACK], false, NULL);
    s->in_tx = false;
    s->tx_error = 0;
    if (recount(s, false) == 0 && !any_due_some_day(s))
        marker_drop(s);
}

int spool_store_commit(SpoolStore *s)
{
    if (!s->in_tx)
        return set_error(s, -EINVAL, "no transaction is open");
    int r = s->tx_error;
    if (r == 0) { /* best effort: only a failure that rolled the group back counts */
        sqlite3_bind_int64(s->st[ST_PROMOTE], 1, (int64_t)clock_usec(CLOCK_REALTIME));
        r = step(s, s->st[ST_PROMOTE], true, NULL);
        if (r < 0 && !sqlite3_get_autocommit(s->db))
            r = 0;
    }
    if (r == 0 && any_due_some_day(s))
        r = marker_make(s); /* before: a crash after the commit finds it */
    if (r == 0)
        r = step(s, s->st[ST_COMMIT], true, NULL);
    if (r < 0) {
        spool_store_rollback(s);
        return r;
    }
    s->in_tx = false;
    if (!any_due_some_day(s))
        marker_drop(s);
    return 0;
}

/* A write outside begin/commit is a group of its own. */
static int write_begin(SpoolStore *s, bool *own)
{
    *own = !s->in_tx;
    if (*own)
        return spool_store_begin(s);
    return s->tx_error;
}

static int write_end(SpoolStore *s, bool own, int r)
{
    if (r < 0 && s->in_tx && sqlite3_get_autocommit(s->db))
        s->tx_error = r; /* SQLite rolled the whole group back */
    if (!own)
        return r;
    if (r < 0) {
        spool_store_rollback(s);
        return r;
    }
    return spool_store_commit(s);
}

static int job_waits(SpoolStore *s, const char *job_id)
{
    int64_t found = 0;
    sqlite3_bind_text(s->st[ST_WAITS], 1, job_id, -1, SQLITE_STATIC);
    int r = step(s, s->st[ST_WAITS], true, &found);
    return r < 0 ? r : found != 0;
}

int spool_store_add(SpoolStore *s, const SpoolJob *job, uint64_t max_jobs, bool *ret_duplicate)
{
    bool own, duplicate = false;
    int r = write_begin(s, &own);
    if (r < 0)
        return own ? r : write_end(s, own, r);
    if (max_jobs > 0 && s->n_jobs >= max_jobs) {
        r = job_waits(s, job->job_id);
        if (r == 0)
            r = set_error(s, -EDQUOT, "%llu jobs wait: SPOOL_MAX_JOBS reached",
                          (unsigned long long)s->n_jobs);
        else if (r > 0)
            duplicate = true, r = 0;
    } else {
        sqlite3_stmt *st = s->st[ST_ADD];
        uint64_t created = job->created_usec ? job->created_usec : clock_usec(CLOCK_REALTIME);
        sqlite3_bind_int64(st, 1, (int64_t)created);
        sqlite3_bind_text(st, 2, job->place_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, job->job_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, job->request_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 5, job->last_error, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 6, job->traceparent, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 7, job->tracestate, -1, SQLITE_STATIC);
        r = step(s, st, true, NULL);
        if (r == 0 && sqlite3_changes(s->db) == 0)
            duplicate = true;
        else if (r == 0)
            s->n_jobs++;
    }
    if (ret_duplicate)
        *ret_duplicate = duplicate;
    return write_end(s, own, r);
}

/* Job id's state: *ret_dead and *ret_held, or -ENOENT when there is no such job. */
static int job_state(SpoolStore *s, int64_t id, bool *ret_dead, bool *ret_held)
{
    int64_t cols[2] = {-1, 0};
    sqlite3_bind_int64(s->st[ST_STATE], 1, id);
    int r = step_cols(s, s->st[ST_STATE], true, cols, 2);
    if (r < 0)
        return r;
    if (cols[0] < 0)
        return set_error(s, -ENOENT, "no job %lld", (long long)id);
    *ret_dead = cols[0] != 0;
    *ret_held = cols[1] != 0;
    return 0;
}

/* The counts after a job left (or, arrived, entered) the waiting ones, held or not. */
static void count_waiting(SpoolStore *s, bool held, int delta)
{
    if (delta > 0)
        s->n_jobs++;
    else if (s->n_jobs > 0)
        s->n_jobs--;
    if (held && delta > 0)
        s->n_held++;
    else if (held && s->n_held > 0)
        s->n_held--;
}

int spool_store_delete(SpoolStore *s, int64_t id)
{
    bool own;
    int r = write_begin(s, &own);
    if (r < 0)
        return own ? r : write_end(s, own, r);
    int64_t was[2] = {-1, 0}; /* dead, held */
    sqlite3_bind_int64(s->st[ST_DELETE], 1, id);
    r = step_cols(s, s->st[ST_DELETE], true, was, 2);
    if (r == 0 && was[0] < 0)
        r = set_error(s, -ENOENT, "no job %lld", (long long)id);
    else if (r == 0 && was[0] == 0)
        count_waiting(s, was[1] != 0, -1);
    else if (r == 0)
        s->dead_known = false;
    return write_end(s, own, r);
}

int spool_store_forget(SpoolStore *s, const char *job_id)
{
    bool own;
    int r = write_begin(s, &own);
    if (r < 0)
        return own ? r : write_end(s, own, r);
    sqlite3_stmt *st = s->st[ST_FORGET];
    sqlite3_bind_text(st, 1, job_id, -1, SQLITE_STATIC);
    r = step(s, st, true, NULL);
    if (r == 0 && sqlite3_changes(s->db) == 0)
        r = set_error(s, -ENOENT, "no waiting job %s that is not held", job_id);
    else if (r == 0)
        count_waiting(s, false, -1);
    return write_end(s, own, r);
}

int spool_store_retry_later(SpoolStore *s, int64_t id, uint64_t due_usec, const char *error)
{
    bool own;
    int r = write_begin(s, &own);
    if (r < 0)
        return own ? r : write_end(s, own, r);
    sqlite3_stmt *st = s->st[ST_RETRY];
    sqlite3_bind_int64(st, 1, id);
    sqlite3_bind_text(st, 2, error ? error : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, due_usec > INT64_MAX ? INT64_MAX : (int64_t)due_usec);
    sqlite3_bind_int64(st, 4, (int64_t)clock_usec(CLOCK_REALTIME));
    r = step(s, st, true, NULL);
    if (r == 0 && sqlite3_changes(s->db) == 0)
        r = set_error(s, -ENOENT, "no waiting job %lld", (long long)id);
    return write_end(s, own, r);
}

int spool_store_mark_dead(SpoolStore *s, int64_t id, const char *error)
{
    bool own, dead = false, held = false;
    int r = write_begin(s, &own);
    if (r < 0)
        return own ? r : write_end(s, own, r);
    r = job_state(s, id, &dead, &held);
    if (r == 0 && dead)
        r = set_error(s, -ENOENT, "no waiting job %lld", (long long)id);
    if (r == 0) {
        sqlite3_stmt *st = s->st[ST_DEAD];
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_text(st, 2, error ? error : "", -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (int64_t)clock_usec(CLOCK_REALTIME));
        r = step(s, st, true, NULL);
    }
    if (r == 0) {
        count_waiting(s, held, -1);
        s->dead_known = false;
    }
    return write_end(s, own, r);
}

/* A dead letter whose job waits in another record: deleted (*ret_dropped); else job id waits
 * again in place, due now, not held, attempts 0, its lifetime from now. */
static int requeue_one(SpoolStore *s, int64_t id, bool dead, bool held, bool *ret_dropped)
{
    int64_t elsewhere = 0;
    int r = 0;
    *ret_dropped = false;
    if (dead) {
        sqlite3_bind_int64(s->st[ST_WAITS_ELSEWHERE], 1, id);
        r = step(s, s->st[ST_WAITS_ELSEWHERE], true, &elsewhere);
    }
    if (r == 0 && elsewhere) {
        sqlite3_bind_int64(s->st[ST_DELETE], 1, id);
        r = step(s, s->st[ST_DELETE], true, NULL);
        *ret_dropped = r == 0;
    } else if (r == 0) {
        sqlite3_bind_int64(s->st[ST_REQUEUE], 1, id);
        sqlite3_bind_int64(s->st[ST_REQUEUE], 2, (int64_t)clock_usec(CLOCK_REALTIME));
        r = step(s, s->st[ST_REQUEUE], true, NULL);
    }
    if (r == 0 && dead)
        s->dead_known = false;
    if (r == 0 && dead && !elsewhere)
        count_waiting(s, false, +1);
    else if (r == 0 && held && s->n_held > 0)
        s->n_held--;
    return r;
}

int spool_store_requeue(SpoolStore *s, int64_t id, bool *ret_dropped)
{
    bool own, dead = false, held = false, dropped = false;
    int r = write_begin(s, &own);
    if (r < 0)
        return own ? r : write_end(s, own, r);
    r = job_state(s, id, &dead, &held);
    if (r == 0)
        r = requeue_one(s, id, dead, held, &dropped);
    if (ret_dropped)
        *ret_dropped = r == 0 && dropped;
    return write_end(s, own, r);
}

int spool_store_requeue_dead(SpoolStore *s, uint64_t *ret_n)
{
    uint64_t n = 0;
    bool own;
    int r = write_begin(s, &own);
    if (r < 0)
        return own ? r : write_end(s, own, r);
    r = step(s, s->st[ST_DROP_DEAD], true, NULL);
    if (r == 0) {
        sqlite3_bind_int64(s->st[ST_REQUEUE_DEAD], 1, (int64_t)clock_usec(CLOCK_REALTIME));
        r = step(s, s->st[ST_REQUEUE_DEAD], true, NULL);
    }
    if (r == 0) {
        n = (uint64_t)sqlite3_changes(s->db);
        s->n_jobs += n;
    }
    s->dead_known = false;
    if (ret_n)
        *ret_n = r == 0 ? n : 0;
    return write_end(s, own, r);
}

int spool_store_flush(SpoolStore *s, uint64_t *ret_n)
{
    uint64_t n = 0;
    bool own;
    int r = write_begin(s, &own);
    if (r < 0)
        return own ? r : write_end(s, own, r);
    r = step(s, s->st[ST_FLUSH], true, NULL);
    if (r == 0)
        n = (uint64_t)sqlite3_changes(s->db);
    if (ret_n)
        *ret_n = n;
    return write_end(s, own, r);
}

int spool_store_hold(SpoolStore *s, int64_t id, bool hold)
{
    bool own, dead = false, held = false;
    int r = write_begin(s, &own);
    if (r < 0)
        return own ? r : write_end(s, own, r);
    r = job_state(s, id, &dead, &held);
    if (r == 0 && dead)
        r = set_error(s, -ENOENT, "job %lld is a dead letter, not a waiting job", (long long)id);
    if (r == 0 && held != hold) {
        sqlite3_bind_int64(s->st[ST_HOLD], 1, id);
        sqlite3_bind_int(s->st[ST_HOLD], 2, hold);
        r = step(s, s->st[ST_HOLD], true, NULL);
        if (r == 0 && hold)
            s->n_held++;
        else if (r == 0 && s->n_held > 0)
            s->n_held--;
    }
    return write_end(s, own, r);
}

static void copy_text(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    size_t n = t ? (size_t)sqlite3_column_bytes(st, col) : 0;
    if (n >= size)
        n = size - 1;
    memcpy(dst, t ? (const char *)t : "", n);
    dst[n] = '\0';
}

/* copy_text() of a value that is whole or nothing (a trace: cut, a hand-edited one would read
 * as another): one that does not fit is "". */
static void copy_text_whole(char *dst, size_t size, sqlite3_stmt *st, int col)
{
    if ((size_t)sqlite3_column_bytes(st, col) >= size)
        dst[0] = '\0';
    else
        copy_text(dst, size, st, col);
}

/* A row of JOB_COLUMNS. */
static void read_job(sqlite3_stmt *st, SpoolJob *j)
{
    j->id = sqlite3_column_int64(st, 0);
    j->created_usec = (uint64_t)sqlite3_column_int64(st, 1);
    j->attempts = (unsigned)sqlite3_column_int64(st, 2);
    j->dead = sqlite3_column_int(st, 3) != 0;
    copy_text(j->place_id, sizeof(j->place_id), st, 4);
    copy_text(j->job_id, sizeof(j->job_id), st, 5);
    copy_text(j->request_id, sizeof(j->request_id), st, 6);
    copy_text(j->last_error, sizeof(j->last_error), st, 7);
    j->due_usec = (uint64_t)sqlite3_column_int64(st, 8);
    j->held = sqlite3_column_int(st, 9) != 0;
    j->since_usec = (uint64_t)sqlite3_column_int64(st, 10);
    j->last_attempt_usec = (uint64_t)sqlite3_column_int64(st, 11);
    copy_text_whole(j->traceparent, sizeof(j->traceparent), st, 12);
    copy_text_whole(j->tracestate, sizeof(j->tracestate), st, 13);
}

/* Up to max rows of st (bound) into out. */
static int fetch_rows(SpoolStore *s, sqlite3_stmt *st, SpoolJob *out, size_t max, size_t *ret_n)
{
    size_t n = 0;
    int rc = SQLITE_DONE;
    while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW)
        read_job(st, &out[n++]);
    int r = 0;
    if (n < max && rc != SQLITE_DONE) {
        r = spool_sqlite_errno(s->db, rc, s->dir_fd);
        r = set_error(s, r ? r : -EIO, "%s", sqlite3_errmsg(s->db));
        n = 0;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    *ret_n = n;
    return r;
}

int spool_store_fetch(SpoolStore *s, bool dead, int64_t after_id, SpoolJob *out, size_t max,
                      size_t *ret_n)
{
    sqlite3_stmt *st = s->st[ST_FETCH];
    sqlite3_bind_int(st, 1, dead);
    sqlite3_bind_int64(st, 2, after_id);
    sqlite3_bind_int64(st, 3, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    return fetch_rows(s, st, out, max, ret_n);
}

int spool_store_fetch_due(SpoolStore *s, uint64_t now_usec, int64_t after_id, SpoolJob *out,
                          size_t max, size_t *ret_n)
{
    sqlite3_stmt *st = s->st[ST_FETCH_DUE];
    sqlite3_bind_int64(st, 1, now_usec > INT64_MAX ? INT64_MAX : (int64_t)now_usec);
    sqlite3_bind_int64(st, 2, after_id);
    sqlite3_bind_int64(st, 3, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    return fetch_rows(s, st, out, max, ret_n);
}

int spool_store_get(SpoolStore *s, int64_t id, SpoolJob *ret)
{
    size_t n = 0;
    sqlite3_bind_int64(s->st[ST_GET], 1, id);
    int r = fetch_rows(s, s->st[ST_GET], ret, 1, &n);
    if (r == 0 && n == 0)
        r = set_error(s, -ENOENT, "no job %lld", (long long)id);
    return r;
}

int spool_store_held_ids(SpoolStore *s, void (*fn)(const char *job_id, void *userdata),
                         void *userdata)
{
    int r = refresh(s);
    if (r < 0 || s->n_held == 0) /* the daemon's usual case: no query */
        return r;
    sqlite3_stmt *st = s->st[ST_HELD_IDS];
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        fn((const char *)sqlite3_column_text(st, 0), userdata);
    if (rc != SQLITE_DONE) {
        r = spool_sqlite_errno(s->db, rc, s->dir_fd);
        r = set_error(s, r ? r : -EIO, "%s", sqlite3_errmsg(s->db));
    }
    sqlite3_reset(st);
    return r;
}

/* The oldest waiting job not held. Held jobs at the head of the spool are stepped over one by
 * one (no index is in id order without them), so while the same jobs are held the answer is
 * read again at most once a second: a gauge, where every group asked (half a million held: 94 ms
 * a group). A hold or a release reads it again at once. */
static int oldest_waiting(SpoolStore *s, int64_t *ret)
{
    uint64_t now = clock_usec(CLOCK_MONOTONIC);
    if (s->n_jobs == s->n_held) {
        *ret = 0;
        return 0;
    }
    if (s->n_held > 0 && s->n_held == s->oldest_n_held && s->oldest_read_usec > 0 &&
        now - s->oldest_read_usec < 1000000) {
        *ret = s->oldest_cached;
        return 0;
    }
    int r = step(s, s->st[ST_OLDEST], true, ret);
    if (r == 0) {
        s->oldest_cached = *ret;
        s->oldest_n_held = s->n_held;
        s->oldest_read_usec = now;
    }
    return r;
}

int spool_store_stats(SpoolStore *s, SpoolStats *ret)
{
    int64_t dead = (int64_t)s->n_dead, oldest = 0, next_due = 0;
    int r = refresh(s);
    if (r == 0 && !s->dead_known) {
        sqlite3_bind_int(s->st[ST_COUNT], 1, 1);
        r = step(s, s->st[ST_COUNT], true, &dead);
        s->n_dead = (uint64_t)dead;
        s->dead_known = r == 0;
    }
    if (r == 0)
        r = oldest_waiting(s, &oldest);
    if (r == 0)
        r = step(s, s->st[ST_NEXT_DUE], true, &next_due); /* NULL, so 0, when none */
    if (r < 0)
        return r;
    *ret = (SpoolStats){
        .jobs = any_due_some_day(s) ? s->n_jobs - s->n_held : 0,
        .held = s->n_held,
        .dead = (uint64_t)dead,
        .oldest_usec = (uint64_t)oldest,
        .next_due_usec = (uint64_t)next_due,
    };
    return 0;
}

bool spool_store_changed_elsewhere(SpoolStore *s)
{
    (void)refresh(s);
    bool changed = s->changed_elsewhere;
    s->changed_elsewhere = false;
    return changed;
}

const char *spool_store_error(const SpoolStore *s)
{
    return s && s->error[0] ? s->error : "no error";
}

void spool_store_close(SpoolStore *s)
{
    if (!s)
        return;
    spool_store_rollback(s);
    for (size_t i = 0; i < ST_MAX; i++)
        sqlite3_finalize(s->st[i]);
    sqlite3_close_v2(s->db);
    if (s->dir_fd >= 0)
        close(s->dir_fd);
    free(s->dir);
    free(s);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(SpoolStore *, spool_store_close);

int spool_store_open(const char *dir, SpoolOpenFlags flags, SpoolStore **ret,
                     char **ret_moved_aside, char **ret_why)
{
    sqlite3 *db;
    char *moved, *why;
    int version;
    int r = spool_schema_open(dir, SPOOL_FILE, flags & SPOOL_OPEN_CREATE, flags & SPOOL_OPEN_REPAIR,
                              &db, &version, &moved, &why);
    if (ret_moved_aside)
        *ret_moved_aside = moved;
    else
        free(moved);
    if (ret_why)
        *ret_why = why;
    else
        free(why);
    if (r < 0)
        return r;

    _cleanup_(spool_store_closep) SpoolStore *s = calloc(1, sizeof(SpoolStore));
    if (!s) {
        sqlite3_close_v2(db);
        return -ENOMEM;
    }
    s->db = db;
    s->version = version;
    s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0)
        return -errno;
    s->dir = strdup(dir);
    if (!s->dir)
        return -ENOMEM;
    struct stat st;
    if (fstatat(s->dir_fd, SPOOL_FILE, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    r = prepare(s, 0, version < SPOOL_USER_VERSION ? ST_FIRST_WRITE : ST_MAX);
    if (r == 0)
        r = step(s, s->st[ST_DATA_VERSION], true, &s->data_version);
    if (r == 0)
        r = recount(s, true);
    struct stat w; /* its -wal, made by those reads (not by a read-only connection's) */
    if (r == 0 && fstatat(s->dir_fd, SPOOL_FILE "-wal", &w, AT_SYMLINK_NOFOLLOW) == 0) {
        s->wal_dev = w.st_dev;
        s->wal_ino = w.st_ino;
        s->wal_known = true;
    }
    if (r < 0)
        return r;
    /* The daemon's open: the marker as the jobs say (a crash may have left either way). */
    if (flags & SPOOL_OPEN_CREATE) {
        if (any_due_some_day(s))
            (void)marker_make(s);
        else
            marker_drop(s);
        s->error[0] = '\0';
    }
    *ret = TAKE_PTR(s);
    return 0;
}
