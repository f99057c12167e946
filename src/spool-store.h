/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"

/* The spool's storage: jobs answered 202 that the worker has not taken yet, in one SQLite 3
 * database, SPOOL_FILE in the spool directory (WAL mode, synchronous=FULL: a commit that
 * returned 0 is on disk). Synchronous and single-threaded: the spool thread (spool.c) uses it
 * for the daemon, and `argus-orchestrator spool …` (spool-cli.c) for operators, also while the
 * daemon runs (another connection waits up to a few seconds for the other's write lock).
 *
 * Functions return 0 or a negative errno: -ENOSPC disk full, -EDQUOT SPOOL_MAX_JOBS reached,
 * -EROFS read-only, -EACCES cannot open, -EIO an I/O error, -EBADMSG corrupt (see
 * spool_store_open), -EBUSY locked by another connection past the wait, -ENOMEM,
 * -ENOENT nothing to act on, -ESTALE the file or its directory was removed or replaced since
 * the open (begin checks: reopen). spool_store_error() gives SQLite's words for the last failure.
 */

#define SPOOL_FILE "spool.sqlite"
/* Exists while the spool holds jobs waiting for delivery (not dead letters): the packaged
 * argus-orchestrator.path starts the service when it appears, also at boot. */
#define SPOOL_MARKER "spool.pending"
#define SPOOL_ERROR_MAX 320

typedef struct SpoolStore SpoolStore;

typedef struct SpoolJob {
    int64_t id;            /* the order of arrival: oldest first */
    uint64_t created_usec; /* CLOCK_REALTIME, when spooled */
    unsigned attempts;     /* delivery attempts so far (the inline one not counted) */
    bool dead;             /* the worker refused it for good (a 4xx): a dead letter */
    char place_id[PLACE_ID_MAX + 1];
    char job_id[JOB_ID_MAX + 1];
    char request_id[REQUEST_ID_MAX + 1]; /* may be empty */
    char last_error[SPOOL_ERROR_MAX];    /* why it is here, or why its last delivery failed */
} SpoolJob;

typedef struct SpoolStats {
    uint64_t jobs;        /* waiting for delivery */
    uint64_t dead;        /* dead letters */
    uint64_t oldest_usec; /* created_usec of the oldest waiting job; 0 when none */
} SpoolStats;

typedef enum SpoolOpenFlags {
    SPOOL_OPEN_CREATE = 1 << 0, /* make the directory and the file when absent (else -ENOENT) */
    SPOOL_OPEN_REPAIR = 1 << 1, /* move a corrupt file aside and start a fresh one (else
                                 * -EBADMSG) */
} SpoolOpenFlags;

/* Opens dir/SPOOL_FILE. A file that is not this spool (garbage, truncated, another schema,
 * PRAGMA quick_check failing) is -EBADMSG, or with SPOOL_OPEN_REPAIR moved aside, never
 * deleted: renamed to SPOOL_FILE ".corrupt-<UTC time>" (its -wal and -shm along) and a fresh one
 * made; *ret_moved_aside (malloc'd, or NULL) is then the new path and *ret_why what was wrong
 * (malloc'd; also set on -EBADMSG). Both out-parameters may be NULL. A spool in a directory we
 * may not write (a read-only filesystem, another user's) is -EROFS with SPOOL_OPEN_CREATE; without
 * it, and while no -wal is beside it, it is opened read-only (begin and the writes are -EROFS).
 * With SPOOL_OPEN_CREATE it also sets SPOOL_MARKER right (a crash may have left it either way). */
int spool_store_open(const char *dir, SpoolOpenFlags flags, SpoolStore **ret,
                     char **ret_moved_aside, char **ret_why);
/* Rolls back an open transaction; takes NULL. */
void spool_store_close(SpoolStore *s);
const char *spool_store_error(const SpoolStore *s);

/* Writes happen inside begin/commit: a group of them costs one fsync. Commit also keeps
 * SPOOL_MARKER: made (and its directory synced) before a commit that leaves jobs waiting,
 * removed after one that leaves none. On a failed commit the transaction is rolled back and
 * every write of the group is lost; the caller answers each as failed. A write outside
 * begin/commit is a group of its own. */
int spool_store_begin(SpoolStore *s);
int spool_store_commit(SpoolStore *s);
void spool_store_rollback(SpoolStore *s);

/* Adds a waiting job (id, attempts and dead are ignored; created_usec 0 means now). At most
 * max_jobs may wait (0: no bound): past it -EDQUOT, and nothing is written. A job whose job_id
 * already waits is not added twice: 0 with *ret_duplicate true (ret_duplicate may be NULL). */
int spool_store_add(SpoolStore *s, const SpoolJob *job, uint64_t max_jobs, bool *ret_duplicate);
/* Delivered: removed. */
int spool_store_delete(SpoolStore *s, int64_t id);
/* The worker took the job some other way (a client sent it again): its waiting record, if
 * any, is removed (-ENOENT when there was none). */
int spool_store_forget(SpoolStore *s, const char *job_id);
/* A failed delivery attempt: attempts + 1 and its error kept. */
int spool_store_note_attempt(SpoolStore *s, int64_t id, const char *error);
/* Refused for good: kept as a dead letter with its error, never delivered by itself. */
int spool_store_mark_dead(SpoolStore *s, int64_t id, const char *error);
/* Every dead letter waits again, as the newest jobs (created now, attempts 0, its last error
 * kept; a dead letter whose job_id already waits, or an older one of a job_id, is dropped
 * instead: that job will be delivered); *ret_n how many now wait again. */
int spool_store_requeue_dead(SpoolStore *s, uint64_t *ret_n);

/* Up to max jobs (dead letters when dead, else waiting ones) with id > after_id, oldest first,
 * into out; *ret_n how many. Inside or outside a transaction. */
int spool_store_fetch(SpoolStore *s, bool dead, int64_t after_id, SpoolJob *out, size_t max,
                      size_t *ret_n);
int spool_store_stats(SpoolStore *s, SpoolStats *ret);
/* Whether another connection (the spool command) committed since the last call: the daemon's
 * counts are then re-read. */
bool spool_store_changed_elsewhere(SpoolStore *s);
