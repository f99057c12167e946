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

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_ADD,
    ST_WAITS,
    ST_DELETE,
    ST_NOTE,
    ST_DEAD,
    ST_FETCH,
    ST_COUNT,
    ST_OLDEST,
    ST_DATA_VERSION,
    ST_FORGET,
    ST_MAX,
};

static const char *const statements[ST_MAX] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    /* the partial unique index ignores a second waiting record of a job */
    [ST_ADD] = "INSERT OR IGNORE INTO jobs (created_usec, place_id, job_id, request_id,"
               " last_error) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_WAITS] = "SELECT 1 FROM jobs WHERE dead = 0 AND job_id = ?1",
    [ST_DELETE] = "DELETE FROM jobs WHERE id = ?1 RETURNING dead",
    [ST_NOTE] = "UPDATE jobs SET attempts = attempts + 1, last_error = ?2 WHERE id = ?1",
    [ST_DEAD] = "UPDATE jobs SET dead = 1, last_error = ?2 WHERE id = ?1 AND dead = 0",
    [ST_FETCH] = "SELECT id, created_usec, attempts, dead, place_id, job_id, request_id,"
                 " last_error FROM jobs WHERE dead = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    [ST_COUNT] = "SELECT count(*) FROM jobs WHERE dead = ?1",
    [ST_OLDEST] = "SELECT created_usec FROM jobs WHERE dead = 0 ORDER BY id LIMIT 1",
    [ST_DATA_VERSION] = "PRAGMA data_version",
    [ST_FORGET] = "DELETE FROM jobs WHERE job_id = ?1 AND dead = 0",
};

struct SpoolStore {
    sqlite3 *db;
    sqlite3_stmt *st[ST_MAX];
    int dir_fd;
    dev_t dev; /* SPOOL_FILE's, at open: a file replaced or removed under us is seen */
    ino_t ino;
    bool in_tx;
    int tx_error;    /* SQLite rolled the open transaction back by itself: why */
    uint64_t n_jobs; /* waiting: counted at open, kept by the writes */
    /* dead letters, counted when asked after a change (they change rarely; a count each
     * group would walk them all) */
    uint64_t n_dead;
    bool dead_known;
    int64_t data_version;   /* PRAGMA data_version when last looked at */
    bool changed_elsewhere; /* seen moving, not yet told */
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

/* Steps st to its end; 0 or the errno (with SQLite's words kept when record). The first
 * column of its last row, if any, into *ret_col0. */
static int step(SpoolStore *s, sqlite3_stmt *st, bool record, int64_t *ret_col0)
{
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        if (ret_col0)
            *ret_col0 = sqlite3_column_int64(st, 0);
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

static int recount(SpoolStore *s, bool record)
{
    int64_t n = 0;
    sqlite3_bind_int(s->st[ST_COUNT], 1, 0);
    int r = step(s, s->st[ST_COUNT], record, &n);
    if (r == 0)
        s->n_jobs = (uint64_t)n;
    s->dead_known = false;
    return r;
}

/* Another connection committed since we last looked: the count is read again. */
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

/* After a commit that left no job waiting: under the write lock again, so that no other
 * connection's jobs are committed between our look and the unlink. Best effort: a marker left
 * is removed by the next such commit, or the daemon's next open. */
static void marker_drop(SpoolStore *s)
{
    if (faccessat(s->dir_fd, SPOOL_MARKER, F_OK, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    if (step(s, s->st[ST_BEGIN], false, NULL) < 0)
        return;
    if (refresh(s) == 0 && s->n_jobs == 0)
        (void)unlinkat(s->dir_fd, SPOOL_MARKER, 0);
    if (step(s, s->st[ST_COMMIT], false, NULL) < 0 && !sqlite3_get_autocommit(s->db))
        (void)step(s, s->st[ST_ROLLBACK], false, NULL);
}

/* The file this connection writes is still the spool's: not removed, not replaced, its
 * directory not removed. Else its commits would land in a file nobody will read again. */
static int check_identity(SpoolStore *s)
{
    struct stat f, d;
    if (fstat(s->dir_fd, &d) < 0 || d.st_nlink == 0)
        return set_error(s, -ESTALE, "the spool's directory was removed");
    if (fstatat(s->dir_fd, SPOOL_FILE, &f, AT_SYMLINK_NOFOLLOW) < 0 || f.st_dev != s->dev ||
        f.st_ino != s->ino)
        return set_error(s, -ESTALE, SPOOL_FILE " was removed or replaced");
    return 0;
}

int spool_store_begin(SpoolStore *s)
{
    if (s->in_tx)
        return set_error(s, -EINVAL, "a transaction is already open");
    int r0 = check_identity(s);
    if (r0 < 0)
        return r0;
    if (sqlite3_db_readonly(s->db, "main") == 1)
        return set_error(s, -EROFS, "the spool is read-only here");
    int r = step(s, s->st[ST_BEGIN], true, NULL);
    if (r < 0)
        return r;
    s->in_tx = true;
    s->tx_error = 0;
    r = refresh(s); /* the count is exact inside the transaction: the bound, the marker */
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
    if (recount(s, false) == 0 && s->n_jobs == 0)
        marker_drop(s);
}

int spool_store_commit(SpoolStore *s)
{
    if (!s->in_tx)
        return set_error(s, -EINVAL, "no transaction is open");
    int r = s->tx_error;
    if (r == 0 && s->n_jobs > 0)
        r = marker_make(s); /* before: a crash after the commit finds it */
    if (r == 0)
        r = step(s, s->st[ST_COMMIT], true, NULL);
    if (r < 0) {
        spool_store_rollback(s);
        return r;
    }
    s->in_tx = false;
    if (s->n_jobs == 0)
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

/* One row changed by st (bound to id and, if given, error), else -ENOENT. */
static int update_one(SpoolStore *s, int which, int64_t id, const char *error)
{
    bool own;
    int r = write_begin(s, &own);
    if (r < 0)
        return own ? r : write_end(s, own, r);
    sqlite3_stmt *st = s->st[which];
    sqlite3_bind_int64(st, 1, id);
    if (error)
        sqlite3_bind_text(st, 2, error, -1, SQLITE_STATIC);
    int64_t was_dead = -1;
    r = step(s, st, true, which == ST_DELETE ? &was_dead : NULL);
    if (r == 0 && sqlite3_changes(s->db) == 0)
        r = set_error(s, -ENOENT, "no job %lld", (long long)id);
    else if (r == 0 && ((which == ST_DELETE && was_dead == 0) || which == ST_DEAD) && s->n_jobs > 0)
        s->n_jobs--;
    if (r == 0 && (which == ST_DEAD || (which == ST_DELETE && was_dead != 0)))
        s->dead_known = false;
    return write_end(s, own, r);
}

int spool_store_delete(SpoolStore *s, int64_t id)
{
    return update_one(s, ST_DELETE, id, NULL);
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
        r = set_error(s, -ENOENT, "no waiting job %s", job_id);
    else if (r == 0 && s->n_jobs > 0)
        s->n_jobs--;
    return write_end(s, own, r);
}

int spool_store_note_attempt(SpoolStore *s, int64_t id, const char *error)
{
    return update_one(s, ST_NOTE, id, error ? error : "");
}

int spool_store_mark_dead(SpoolStore *s, int64_t id, const char *error)
{
    return update_one(s, ST_DEAD, id, error ? error : "");
}

int spool_store_requeue_dead(SpoolStore *s, uint64_t *ret_n)
{
    static const char *const sql[] = {
        /* a job that waits already, or an older dead letter of the same job: dropped */
        "DELETE FROM jobs WHERE dead = 1 AND (job_id IN (SELECT job_id FROM jobs WHERE dead = 0)"
        " OR id NOT IN (SELECT max(id) FROM jobs WHERE dead = 1 GROUP BY job_id))",
        "INSERT INTO jobs (created_usec, place_id, job_id, request_id, last_error)"
        " SELECT ?1, place_id, job_id, request_id, last_error FROM jobs WHERE dead = 1"
        " ORDER BY id",
        "DELETE FROM jobs WHERE dead = 1",
    };
    uint64_t n = 0;
    bool own;
    int r = write_begin(s, &own);
    if (r < 0)
        return own ? r : write_end(s, own, r);
    for (size_t i = 0; i < ELEMENTSOF(sql) && r == 0; i++) {
        sqlite3_stmt *st;
        int rc = sqlite3_prepare_v2(s->db, sql[i], -1, &st, NULL);
        if (rc != SQLITE_OK) {
            r = spool_sqlite_errno(s->db, rc, s->dir_fd);
            r = set_error(s, r ? r : -EIO, "%s", sqlite3_errmsg(s->db));
            break;
        }
        if (i == 1)
            sqlite3_bind_int64(st, 1, (int64_t)clock_usec(CLOCK_REALTIME));
        r = step(s, st, true, NULL);
        if (r == 0 && i == 1)
            n = (uint64_t)sqlite3_changes(s->db);
        sqlite3_finalize(st);
    }
    if (r == 0)
        s->n_jobs += n;
    s->dead_known = false;
    if (ret_n)
        *ret_n = r == 0 ? n : 0;
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

int spool_store_fetch(SpoolStore *s, bool dead, int64_t after_id, SpoolJob *out, size_t max,
                      size_t *ret_n)
{
    sqlite3_stmt *st = s->st[ST_FETCH];
    size_t n = 0;
    sqlite3_bind_int(st, 1, dead);
    sqlite3_bind_int64(st, 2, after_id);
    sqlite3_bind_int64(st, 3, max > INT64_MAX ? INT64_MAX : (int64_t)max);
    int rc;
    while (n < max && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        SpoolJob *j = &out[n++];
        j->id = sqlite3_column_int64(st, 0);
        j->created_usec = (uint64_t)sqlite3_column_int64(st, 1);
        j->attempts = (unsigned)sqlite3_column_int64(st, 2);
        j->dead = sqlite3_column_int(st, 3) != 0;
        copy_text(j->place_id, sizeof(j->place_id), st, 4);
        copy_text(j->job_id, sizeof(j->job_id), st, 5);
        copy_text(j->request_id, sizeof(j->request_id), st, 6);
        copy_text(j->last_error, sizeof(j->last_error), st, 7);
    }
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

int spool_store_stats(SpoolStore *s, SpoolStats *ret)
{
    int64_t dead = (int64_t)s->n_dead, oldest = 0;
    int r = refresh(s);
    if (r == 0 && !s->dead_known) {
        sqlite3_bind_int(s->st[ST_COUNT], 1, 1);
        r = step(s, s->st[ST_COUNT], true, &dead);
        s->n_dead = (uint64_t)dead;
        s->dead_known = r == 0;
    }
    if (r == 0)
        r = step(s, s->st[ST_OLDEST], true, &oldest);
    if (r < 0)
        return r;
    *ret = (SpoolStats){.jobs = s->n_jobs, .dead = (uint64_t)dead, .oldest_usec = (uint64_t)oldest};
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
    free(s);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(SpoolStore *, spool_store_close);

int spool_store_open(const char *dir, SpoolOpenFlags flags, SpoolStore **ret,
                     char **ret_moved_aside, char **ret_why)
{
    sqlite3 *db;
    char *moved, *why;
    int r = spool_schema_open(dir, SPOOL_FILE, flags & SPOOL_OPEN_CREATE, flags & SPOOL_OPEN_REPAIR,
                              &db, &moved, &why);
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
    s->dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (s->dir_fd < 0)
        return -errno;
    struct stat st;
    if (fstatat(s->dir_fd, SPOOL_FILE, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return -errno;
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    for (size_t i = 0; i < ST_MAX; i++) {
        int rc =
            sqlite3_prepare_v3(db, statements[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
        if (rc != SQLITE_OK) {
            r = spool_sqlite_errno(db, rc, s->dir_fd);
            return r ? r : -EIO;
        }
    }
    r = step(s, s->st[ST_DATA_VERSION], true, &s->data_version);
    if (r == 0)
        r = recount(s, true);
    if (r < 0)
        return r;
    /* The daemon's open: the marker as the jobs say (a crash may have left either way). */
    if (flags & SPOOL_OPEN_CREATE) {
        if (s->n_jobs > 0)
            (void)marker_make(s);
        else
            marker_drop(s);
        s->error[0] = '\0';
    }
    *ret = TAKE_PTR(s);
    return 0;
}
