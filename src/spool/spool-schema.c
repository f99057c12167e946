/* SPDX-License-Identifier: MIT */
#include "spool-schema.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "macro.h"

/* The schema's history, the one path for every file: step i takes a file of user_version i to
 * i + 1. The first makes release 0.1.0's schema from nothing, so that a fresh file and a migrated
 * one are made by the same statements. Each step names the columns and the indexes it adds: what
 * setup() checks of a file of that version. A column added by a later step reads at its default
 * from a file of an older version read as it is (see make_view): 0, or what the step's defaults
 * say (the same as its SQL's). A later schema change is one more step at the end; a step a release
 * shipped is never changed. */
typedef struct SchemaStep {
    const char *sql;
    const char *const *columns;
    const char *const *indexes;
    const char *const *defaults; /* each column's, as SQL; NULL: every one 0 */
} SchemaStep;

static const SchemaStep steps[] = {
    /* 0 to 1, release 0.1.0. The order of arrival is the id: AUTOINCREMENT never hands out an id
     * again, so that a reader paging by id (after_id) never skips a job that took the id of a
     * deleted one. jobs_waiting: at most one waiting record per job; jobs_by_state: fetch,
     * counts and the oldest, by state. */
    {.sql = "CREATE TABLE jobs ("
            " id INTEGER PRIMARY KEY AUTOINCREMENT,"
            " created_usec INTEGER NOT NULL,"
            " place_id TEXT NOT NULL,"
            " job_id TEXT NOT NULL,"
            " request_id TEXT NOT NULL DEFAULT '',"
            " attempts INTEGER NOT NULL DEFAULT 0,"
            " dead INTEGER NOT NULL DEFAULT 0,"
            " last_error TEXT NOT NULL DEFAULT '');"
            "CREATE UNIQUE INDEX jobs_waiting ON jobs (job_id) WHERE dead = 0;"
            "CREATE INDEX jobs_by_state ON jobs (dead, id);",
     .columns = (const char *const[]){"id", "created_usec", "place_id", "job_id", "request_id",
                                      "attempts", "dead", "last_error", NULL},
     .indexes = (const char *const[]){"jobs_waiting", "jobs_by_state", NULL}},
    /* 1 to 2: each job's schedule and the operator's hold. due_usec 0: due now; since_usec 0:
     * its lifetime began at created_usec (so that the step adds columns without rewriting a
     * row). jobs_due: the due jobs (due_usec 0 in id order, then those whose time has come), the
     * held ones, the next due time. */
    {.sql = "ALTER TABLE jobs ADD COLUMN due_usec INTEGER NOT NULL DEFAULT 0;"
            "ALTER TABLE jobs ADD COLUMN held INTEGER NOT NULL DEFAULT 0;"
            "ALTER TABLE jobs ADD COLUMN since_usec INTEGER NOT NULL DEFAULT 0;"
            "ALTER TABLE jobs ADD COLUMN last_attempt_usec INTEGER NOT NULL DEFAULT 0;"
            "CREATE INDEX jobs_due ON jobs (dead, held, due_usec, id);",
     .columns = (const char *const[]){"due_usec", "held", "since_usec", "last_attempt_usec", NULL},
     .indexes = (const char *const[]){"jobs_due", NULL}},
    /* 2 to 3: the W3C trace of the request that spooled the job (trace.h), sent again with every
     * delivery; '' for a job spooled before (a delivery starts a new trace for it). */
    {.sql = "ALTER TABLE jobs ADD COLUMN traceparent TEXT NOT NULL DEFAULT '';"
            "ALTER TABLE jobs ADD COLUMN tracestate TEXT NOT NULL DEFAULT '';",
     .columns = (const char *const[]){"traceparent", "tracestate", NULL},
     .indexes = (const char *const[]){NULL},
     .defaults = (const char *const[]){"''", "''"}},
};
static_assert(ELEMENTSOF(steps) == SPOOL_USER_VERSION, "one step per schema version");

int spool_sqlite_errno(sqlite3 *db, int rc, int dir_fd)
{
    int sys = db ? sqlite3_system_errno(db) : 0;
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_ROW:
    case SQLITE_DONE:
        return 0;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_IOERR:
        if (rc == SQLITE_IOERR_NOMEM)
            return -ENOMEM;
        if (sys == ENOSPC || sys == EDQUOT)
            return -ENOSPC;
        return sys == EROFS ? -EROFS : -EIO;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return -EBADMSG;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_CANTOPEN:
    case SQLITE_PERM:
    case SQLITE_AUTH:
        if (sys == EROFS || (dir_fd >= 0 && faccessat(dir_fd, ".", W_OK, AT_EACCESS) < 0))
            return -EROFS;
        if (sys == ENOSPC || sys == EDQUOT)
            return -ENOSPC;
        return sys == ENOENT ? -ENOENT : -EACCES;
    case SQLITE_TOOBIG:
        return -E2BIG;
    default:
        return -EIO;
    }
}

static uint32_t be(const unsigned char *p, int n)
{
    uint32_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* What SQLite would take for a while: garbage, or a file shorter than its header says. Without
 * a -wal the file holds every page; with one, SQLite's recovery and quick_check judge. */
static int check_header(const char *path, off_t size, char **ret_why)
{
    unsigned char h[100];
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return -errno;
    ssize_t k = pread(fd, h, sizeof(h), 0);
    if (k < 0)
        return -errno;
    if (k < 16 || memcmp(h, "SQLite format 3", 16) != 0) {
        *ret_why = strdup("not an SQLite 3 database (garbage at its start)");
        return -EBADMSG;
    }
    if (k < (ssize_t)sizeof(h)) {
        (void)asprintf(ret_why, "truncated: %lld bytes, shorter than a header", (long long)size);
        return -EBADMSG;
    }
    uint32_t page_size = be(h + 16, 2) == 1 ? 65536 : be(h + 16, 2);
    uint32_t pages = be(h + 28, 4);
    char wal[4096];
    struct stat st;
    if (snprintf(wal, sizeof(wal), "%s-wal", path) < (int)sizeof(wal) &&
        (stat(wal, &st) < 0 || st.st_size == 0) && be(h + 24, 4) == be(h + 92, 4) &&
        (uint64_t)size < (uint64_t)pages * page_size) {
        (void)asprintf(ret_why, "truncated: %lld bytes, its header says %u pages of %u",
                       (long long)size, pages, page_size);
        return -EBADMSG;
    }
    return 0;
}

static int fail(sqlite3 *db, int rc, int dir_fd, const char *what, char **ret_why)
{
    int r = spool_sqlite_errno(db, rc, dir_fd);
    if (r == -EBADMSG && !*ret_why)
        (void)asprintf(ret_why, "%s: %s", what, sqlite3_errmsg(db));
    return r ? r : -EIO;
}

/* One integer or (ret_text) one text of the first row of sql. */
static int query(sqlite3 *db, const char *sql, int64_t *ret_int, char **ret_text)
{
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        if (ret_int)
            *ret_int = sqlite3_column_int64(st, 0);
        if (ret_text) {
            const char *t = (const char *)sqlite3_column_text(st, 0);
            *ret_text = strdup(t ? t : "");
            if (!*ret_text)
                rc = SQLITE_NOMEM;
        }
    }
    if (rc == SQLITE_DONE && (ret_int || ret_text))
        rc = SQLITE_CORRUPT; /* these queries always give a row */
    sqlite3_finalize(st);
    return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* A file of version is one we can read or migrate: not a newer release's (-EPROTO, left as it is),
 * and version 0 only while empty. */
static int check_version(int64_t version, bool empty, char **ret_why)
{
    if (version > SPOOL_USER_VERSION) {
        (void)asprintf(ret_why,
                       "written by a newer release (schema version %lld); this release knows "
                       "version %d and leaves it as it is",
                       (long long)version, SPOOL_USER_VERSION);
        return -EPROTO;
    }
    if (version < 0 || (version == 0 && !empty)) {
        (void)asprintf(ret_why, "wrong schema: user_version %lld", (long long)version);
        return -EBADMSG;
    }
    return 0;
}

/* Runs the steps from the file's version to SPOOL_USER_VERSION, then sets the version, in one
 * transaction under the write lock, fsync'd at its commit (WAL, synchronous=FULL) like any other:
 * a crash leaves the file of the old version or of the new one. The version is read again inside,
 * since another connection may have made or migrated the file meanwhile. A fresh file (version 0,
 * empty) gets its application_id too. */
static int migrate(sqlite3 *db, int dir_fd, char **ret_why)
{
    int64_t version = 0, objects = 0;
    int r = 0, rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = query(db, "PRAGMA user_version", &version, NULL);
    if (rc == SQLITE_OK)
        rc = query(db, "SELECT count(*) FROM main.sqlite_schema", &objects, NULL);
    if (rc == SQLITE_OK)
        r = check_version(version, objects == 0, ret_why);
    char sql[128];
    if (rc == SQLITE_OK && r == 0 && version == 0) {
        snprintf(sql, sizeof(sql), "PRAGMA application_id = %d", SPOOL_APPLICATION_ID);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    for (int64_t v = version; rc == SQLITE_OK && r == 0 && v < SPOOL_USER_VERSION; v++)
        rc = sqlite3_exec(db, steps[v].sql, NULL, NULL, NULL);
    if (rc == SQLITE_OK && r == 0 && version < SPOOL_USER_VERSION) {
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", SPOOL_USER_VERSION);
        rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    }
    if (rc == SQLITE_OK && r == 0)
        rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
    if (r == 0 && rc != SQLITE_OK)
        r = fail(db, rc, dir_fd, version == 0 ? "cannot make the schema" : "cannot migrate",
                 ret_why);
    if (r < 0 && !sqlite3_get_autocommit(db))
        (void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return r;
}

/* The columns of a file of version, comma-separated; with as_current, followed by those that
 * later steps add, as "0 AS name" (their default). */
static int column_list(int version, bool as_current, char *buf, size_t size)
{
    size_t len = 0;
    buf[0] = '\0';
    for (int v = 0; v < (as_current ? SPOOL_USER_VERSION : version); v++)
        for (const char *const *c = steps[v].columns; *c; c++) {
            const char *def = steps[v].defaults ? steps[v].defaults[c - steps[v].columns] : "0";
            int n = v < version
                        ? snprintf(buf + len, size - len, "%s%s", len ? ", " : "", *c)
                        : snprintf(buf + len, size - len, "%s%s AS %s", len ? ", " : "", def, *c);
            if (n < 0 || (size_t)n >= size - len)
                return -ENOBUFS;
            len += (size_t)n;
        }
    return 0;
}

/* The columns and indexes that the steps up to version made are there. */
static int check_shape(sqlite3 *db, int dir_fd, int version, char **ret_why)
{
    if (version == 0) /* empty, fresh */
        return 0;
    char cols[1024], sql[1200];
    int r = column_list(version, false, cols, sizeof(cols));
    if (r < 0)
        return r;
    snprintf(sql, sizeof(sql), "SELECT %s FROM main.jobs LIMIT 0", cols);
    sqlite3_stmt *st;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
    sqlite3_finalize(st);
    if ((rc & 0xff) == SQLITE_ERROR) {
        (void)asprintf(ret_why, "wrong schema: %s", sqlite3_errmsg(db));
        return -EBADMSG;
    }
    for (int v = 0; rc == SQLITE_OK && v < version; v++)
        for (const char *const *i = steps[v].indexes; rc == SQLITE_OK && *i; i++) {
            int64_t found = 0;
            snprintf(sql, sizeof(sql),
                     "SELECT count(*) FROM main.sqlite_schema WHERE type = 'index' AND"
                     " tbl_name = 'jobs' AND name = '%s'",
                     *i);
            rc = query(db, sql, &found, NULL);
            if (rc == SQLITE_OK && found != 1) {
                (void)asprintf(ret_why, "wrong schema: the index %s of the jobs table is missing",
                               *i);
                return -EBADMSG;
            }
        }
    return rc == SQLITE_OK ? 0 : fail(db, rc, dir_fd, "unreadable", ret_why);
}

/* The columns and indexes of a file of version, and PRAGMA quick_check. */
static int check_file(sqlite3 *db, int dir_fd, int version, char **ret_why)
{
    int r = check_shape(db, dir_fd, version, ret_why);
    if (r < 0)
        return r;
    _cleanup_free_ char *check = NULL;
    int rc = query(db, "PRAGMA quick_check", NULL, &check);
    if (rc != SQLITE_OK)
        return fail(db, rc, dir_fd, "unreadable", ret_why);
    if (strcmp(check, "ok") != 0) {
        (void)asprintf(ret_why, "PRAGMA quick_check: %s", check);
        return -EBADMSG;
    }
    return 0;
}

/* A file of an older version, opened without SPOOL_OPEN_CREATE, is read as it is (no write, so
 * that the command's status, list and show leave it for the release that wrote it): a view of
 * its table with the columns it lacks at their defaults, in the connection's temp schema, where
 * it hides main.jobs from the queries. spool_schema_upgrade() drops it. */
static int make_view(sqlite3 *db, int version)
{
    char cols[1024], sql[1200];
    int r = column_list(version, true, cols, sizeof(cols));
    if (r < 0)
        return r;
    snprintf(sql, sizeof(sql), "CREATE TEMP VIEW jobs AS SELECT %s FROM main.jobs", cols);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    r = spool_sqlite_errno(db, rc, -1);
    return rc == SQLITE_OK ? 0 : r ? r : -EIO;
}

static int setup(sqlite3 *db, int dir_fd, bool create, int *ret_version, char **ret_why)
{
    int64_t app = 0, version = 0, objects = 0;
    int rc = query(db, "PRAGMA application_id", &app, NULL);
    if (rc == SQLITE_OK)
        rc = query(db, "PRAGMA user_version", &version, NULL);
    if (rc == SQLITE_OK)
        rc = query(db, "SELECT count(*) FROM main.sqlite_schema", &objects, NULL);
    if (rc != SQLITE_OK)
        return fail(db, rc, dir_fd, "unreadable", ret_why);

    bool fresh = app == 0 && version == 0 && objects == 0;
    if (fresh && !create)
        return -ENOENT;                          /* an empty database: made, but never a spool */
    if (!fresh && app != SPOOL_APPLICATION_ID) { /* nothing written to another's file */
        (void)asprintf(ret_why, "not a spool: application_id %#llx, another program's database",
                       (unsigned long long)app);
        return -EBADMSG;
    }
    /* before anything is written: not to a newer release's file, nor to a corrupt one */
    int r = check_version(version, fresh, ret_why);
    if (r == 0)
        r = check_file(db, dir_fd, (int)version, ret_why);
    if (r < 0)
        return r;

    _cleanup_free_ char *mode = NULL;
    rc = query(db, "PRAGMA journal_mode", NULL, &mode);
    if (rc == SQLITE_OK && strcmp(mode, "wal") != 0 && sqlite3_db_readonly(db, "main") != 1)
        rc = sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL);
    if (rc == SQLITE_OK)
        rc = sqlite3_exec(db, "PRAGMA synchronous = FULL", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return fail(db, rc, dir_fd, "unreadable", ret_why);
    if (create && version < SPOOL_USER_VERSION) {
        r = migrate(db, dir_fd, ret_why);
        if (r == 0)
            r = check_shape(db, dir_fd, SPOOL_USER_VERSION, ret_why);
        version = SPOOL_USER_VERSION;
    } else if (version < SPOOL_USER_VERSION)
        r = make_view(db, (int)version);
    *ret_version = (int)version;
    return r;
}

int spool_schema_upgrade(sqlite3 *db, int dir_fd, int version, char **ret_why)
{
    *ret_why = NULL;
    int rc = sqlite3_exec(db, "DROP VIEW IF EXISTS temp.jobs", NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        return fail(db, rc, dir_fd, "cannot drop the view of the old version", ret_why);
    int r = migrate(db, dir_fd, ret_why);
    if (r == 0)
        r = check_shape(db, dir_fd, SPOOL_USER_VERSION, ret_why);
    if (r < 0)
        (void)make_view(db, version); /* read as it was */
    return r;
}

/* "file:PATH?immutable=1", PATH percent-encoded where a URI needs it */
static char *immutable_uri(const char *path)
{
    char *u = malloc(strlen(path) * 3 + sizeof("file:?immutable=1"));
    if (!u)
        return NULL;
    char *w = stpcpy(u, "file:");
    for (const unsigned char *p = (const unsigned char *)path; *p; p++)
        if (isalnum(*p) || strchr("/._-~", *p))
            *w++ = (char)*p;
        else
            w += sprintf(w, "%%%02X", *p);
    strcpy(w, "?immutable=1");
    return u;
}

static int open_db(const char *path, int dir_fd, bool create, bool immutable, sqlite3 **ret,
                   int *ret_version, char **ret_why)
{
    _cleanup_free_ char *uri = immutable ? immutable_uri(path) : NULL;
    if (immutable && !uri)
        return -ENOMEM;
    int flags = immutable ? SQLITE_OPEN_READONLY | SQLITE_OPEN_URI
                          : SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(immutable ? uri : path, &db,
                             flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE, NULL);
    int r = 0;
    if (rc != SQLITE_OK)
        r = fail(db, rc, dir_fd, "cannot open", ret_why);
    else {
        (void)sqlite3_busy_timeout(db, 5000);
        r = setup(db, dir_fd, create, ret_version, ret_why);
    }
    if (r < 0) {
        sqlite3_close_v2(db);
        return r;
    }
    *ret = db;
    return 0;
}

static int try_open(const char *path, int dir_fd, bool create, sqlite3 **ret, int *ret_version,
                    char **ret_why)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        if (errno != ENOENT)
            return -errno;
        if (!create)
            return -ENOENT;
    } else if (!S_ISREG(st.st_mode)) {
        *ret_why = strdup("not a regular file");
        return -EBADMSG;
    } else if (st.st_size == 0) {
        /* Made and never written: no spool yet. But an empty file beside a WAL that holds pages
         * is a spool whose main file was truncated: SQLite would drop that WAL, and the jobs in
         * it, on opening. */
        char wal[PATH_MAX];
        struct stat ws;
        if (snprintf(wal, sizeof(wal), "%s-wal", path) < (int)sizeof(wal) && stat(wal, &ws) == 0 &&
            ws.st_size > 0) {
            *ret_why = strdup("the file is empty but its write-ahead log holds data");
            return -EBADMSG;
        }
        if (!create)
            return -ENOENT;
    } else {
        int r = check_header(path, st.st_size, ret_why);
        if (r < 0)
            return r;
    }

    int r = open_db(path, dir_fd, create, false, ret, ret_version, ret_why);
    /* SQLite cannot read a WAL database where it may not make the -shm (a read-only
     * filesystem, another user's directory) unless told that the file does not change. With no
     * -wal beside it nothing is being written, so that the command's status and list may read
     * it as it is; the daemon (create) takes such a spool for unavailable. */
    char wal[4096];
    if (r == -EROFS && !create && snprintf(wal, sizeof(wal), "%s-wal", path) < (int)sizeof(wal) &&
        stat(wal, &st) < 0 && errno == ENOENT) {
        free(*ret_why);
        *ret_why = NULL;
        r = open_db(path, dir_fd, false, true, ret, ret_version, ret_why);
    }
    return r;
}

static int mkdir_p(const char *dir)
{
    _cleanup_free_ char *p = strdup(dir);
    if (!p)
        return -ENOMEM;
    for (char *s = p + 1;; s++)
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            struct stat st; /* mkdir() of one that exists on a read-only mount is EROFS */
            if (stat(p, &st) < 0 && mkdir(p, c ? 0755 : 0750) < 0 && errno != EEXIST)
                return -errno;
            if (!c)
                return 0;
            *s = c;
        }
}

/* file (and its -wal and -shm, first: a -wal must never meet another main file) renamed to
 * file.corrupt-<UTC time>[-N]; the directory synced. */
static int move_aside(int dir_fd, const char *dir, const char *file, char **ret)
{
    char stamp[32], name[512], from[512 + 8], to[512 + 8];
    struct tm tm;
    time_t now = time(NULL);
    if (!gmtime_r(&now, &tm) || strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", &tm) == 0)
        return -EINVAL;
    struct stat st;
    for (unsigned i = 0;; i++) {
        if (i == 100)
            return -EEXIST;
        snprintf(name, sizeof(name), i ? "%s.corrupt-%s-%u" : "%s.corrupt-%s", file, stamp, i);
        bool taken = false;
        for (const char *const *x = (const char *const[]){"", "-wal", "-shm", NULL}; *x; x++) {
            snprintf(to, sizeof(to), "%s%s", name, *x);
            taken = taken || fstatat(dir_fd, to, &st, AT_SYMLINK_NOFOLLOW) == 0;
        }
        if (!taken)
            break;
    }
    for (const char *const *x = (const char *const[]){"-wal", "-shm", "", NULL}; *x; x++) {
        snprintf(from, sizeof(from), "%s%s", file, *x);
        snprintf(to, sizeof(to), "%s%s", name, *x);
        if (renameat(dir_fd, from, dir_fd, to) < 0 && (errno != ENOENT || !**x))
            return -errno;
    }
    if (fsync(dir_fd) < 0)
        return -errno;
    return asprintf(ret, "%s/%s", dir, name) < 0 ? -ENOMEM : 0;
}

int spool_schema_open(const char *dir, const char *file, bool create, bool repair, sqlite3 **ret,
                      int *ret_version, char **ret_moved_aside, char **ret_why)
{
    *ret = NULL;
    *ret_version = 0;
    *ret_moved_aside = *ret_why = NULL;
    if (create) {
        int r = mkdir_p(dir);
        if (r < 0)
            return r;
    }
    _cleanup_close_ int dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0)
        return -errno;
    _cleanup_free_ char *path = NULL;
    if (asprintf(&path, "%s/%s", dir, file) < 0)
        return -ENOMEM;
    int r = try_open(path, dir_fd, create, ret, ret_version, ret_why);
    if (r != -EBADMSG || !repair)
        return r;
    r = move_aside(dir_fd, dir, file, ret_moved_aside);
    if (r < 0)
        return r;
    _cleanup_free_ char *why_fresh = NULL;
    return try_open(path, dir_fd, true, ret, ret_version, &why_fresh);
}
