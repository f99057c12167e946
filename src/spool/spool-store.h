/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"
#include "trace.h"

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
 * the open (begin checks: reopen), -EPROTO a spool of a newer schema version. spool_store_error()
 * gives SQLite's words for the last failure.
 */

#define SPOOL_FILE "spool.sqlite"
/* Exists while the spool holds jobs waiting for delivery (not dead letters): the packaged
 * argus-orchestrator.path starts the service when it appears, also at boot. */
#define SPOOL_MARKER "spool.pending"
#define SPOOL_ERROR_MAX 320

typedef struct SpoolStore SpoolStore;

typedef struct SpoolJob {
    int64_t id;            /* the order of arrival: oldest first; what `spool list` prints */
    uint64_t created_usec; /* CLOCK_REALTIME, when spooled (kept by a requeue) */
    uint64_t since_usec;   /* when its lifetime (SPOOL_MAX_AGE_SEC) began: spooled or requeued */
    uint64_t due_usec;     /* CLOCK_REALTIME of its next attempt; 0: due now, or passed */
    uint64_t last_attempt_usec; /* when its last delivery attempt ended; 0: never tried */
    unsigned attempts;          /* delivery attempts so far (the inline one not counted) */
    bool dead;                  /* the worker refused it for good (a 4xx), or it expired */
    bool held;                  /* an operator holds it: never tried until released */
    char place_id[PLACE_ID_MAX + 1];
    char job_id[JOB_ID_MAX + 1];
    char request_id[REQUEST_ID_MAX + 1]; /* may be empty */
    /* The W3C trace of the request that spooled it (Trace.traceparent, .tracestate), sent with
     * every delivery; empty for a job spooled by an older release */
    char traceparent[TRACEPARENT_LEN + 1];
    char tracestate[TRACESTATE_MAX + 1];
    char last_error[SPOOL_ERROR_MAX]; /* why it is here, or why its last delivery failed */
} SpoolJob;

typedef struct SpoolStats {
    uint64_t jobs;          /* waiting for delivery, held ones not counted */
    uint64_t held;          /* waiting, held by an operator */
    uint64_t dead;          /* dead letters */
    uint64_t oldest_usec;   /* created_usec of the oldest waiting job not held; 0 when none */
    uint64_t next_due_usec; /* the earliest due_usec of a waiting job not held that is not due
                             * yet (due_usec > 0); 0 when none */
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
 * With SPOOL_OPEN_CREATE it also sets SPOOL_MARKER right (a crash may have left it either way).
 *
 * Schema versions: a spool of an older version (user_version 1, release 0.1.0) is migrated in
 * place when it is opened for writing, in one transaction (new columns with defaults, new
 * indexes, then the version), fsync'd like any commit; every later schema change is one more
 * step on that path (spool-schema.c). Opened for writing: with SPOOL_OPEN_CREATE (the daemon) at
 * the open; without it (the command) the file is read as it is, the new columns at their
 * defaults, until the first begin migrates it. A spool of a newer version than this program knows
 * (a later release's, after a downgrade) is -EPROTO with *ret_why, never moved aside nor written:
 * the daemon reports the spool unavailable until that release runs again. */
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

/* Adds a waiting job, due now (id, attempts, dead, held, due_usec and last_attempt_usec are
 * ignored; created_usec 0 means now; since_usec is created_usec). At most max_jobs may wait,
 * held ones included (0: no bound): past it -EDQUOT, and nothing is written. A job whose job_id
 * already waits (held or not) is not added twice: 0 with *ret_duplicate true (ret_duplicate may
 * be NULL). */
int spool_store_add(SpoolStore *s, const SpoolJob *job, uint64_t max_jobs, bool *ret_duplicate);
/* Delivered, or an operator's delete: removed, whatever its state (-ENOENT when there is no
 * job id). */
int spool_store_delete(SpoolStore *s, int64_t id);
/* The worker took the job some other way (a client sent it again): its waiting record, if
 * any and not held, is removed (-ENOENT when there was none). */
int spool_store_forget(SpoolStore *s, const char *job_id);
/* A failed delivery attempt of a waiting job: attempts + 1, its error kept, last_attempt_usec
 * now, next due at due_usec (CLOCK_REALTIME). -ENOENT when it no longer waits. */
int spool_store_retry_later(SpoolStore *s, int64_t id, uint64_t due_usec, const char *error);
/* Refused for good, or expired, after a failed delivery attempt: attempts + 1, kept as a dead
 * letter with its error, never delivered by itself. -ENOENT when it no longer waits. */
int spool_store_mark_dead(SpoolStore *s, int64_t id, const char *error);

/* The operator's verbs (`argus-orchestrator spool …`). Each returns -ENOENT when there is no job
 * id (in the state the verb acts on), and changes nothing then. */
/* A dead letter or a waiting job (held or not) waits again, due now, not held, its attempts 0
 * and its lifetime starting now; it keeps its id, so its place in arrival order, its
 * created_usec and its last error. A dead letter whose job_id already waits in another record
 * is deleted instead (that record will be delivered): *ret_dropped true then (may be NULL). */
int spool_store_requeue(SpoolStore *s, int64_t id, bool *ret_dropped);
/* spool_store_requeue for every dead letter; of several dead letters of one job_id, the oldest
 * is kept and the others deleted. *ret_n how many now wait again (may be NULL). */
int spool_store_requeue_dead(SpoolStore *s, uint64_t *ret_n);
/* Every waiting job not held is due now (its attempts and lifetime kept); *ret_n how many were
 * not due yet (may be NULL). */
int spool_store_flush(SpoolStore *s, uint64_t *ret_n);
/* A waiting job held (never tried, never expires until released) or released (then due at the
 * time it had, so at once when that has passed). -ENOENT for a dead letter or no such job;
 * holding a held job, or releasing one not held, is 0 and changes nothing. */
int spool_store_hold(SpoolStore *s, int64_t id, bool hold);
/* One job, in any state; -ENOENT when there is none. */
int spool_store_get(SpoolStore *s, int64_t id, SpoolJob *ret);

/* Up to max jobs (dead letters when dead, else waiting ones, held included) with id > after_id,
 * oldest first, into out; *ret_n how many. Inside or outside a transaction. */
int spool_store_fetch(SpoolStore *s, bool dead, int64_t after_id, SpoolJob *out, size_t max,
                      size_t *ret_n);
/* The delivery's question: up to max waiting jobs not held that are due at now_usec
 * (CLOCK_REALTIME; due_usec 0 or <= now_usec) with id > after_id, in id order (arrival order,
 * whatever their due times). Cheap with a million waiting and the oldest not due: an index on
 * (dead, held, due_usec, id) serves both the jobs due now (due_usec 0, in id order) and those
 * whose time has come. */
int spool_store_fetch_due(SpoolStore *s, uint64_t now_usec, int64_t after_id, SpoolJob *out,
                          size_t max, size_t *ret_n);
/* Counts, the oldest and the next due time (SpoolStats). */
int spool_store_stats(SpoolStore *s, SpoolStats *ret);
/* The job ids of the held jobs, for the daemon (a client's request for a held job is answered
 * "queued" and leaves it held): calls fn for each. */
int spool_store_held_ids(SpoolStore *s, void (*fn)(const char *job_id, void *userdata),
                         void *userdata);
/* Whether another connection (the spool command) committed since the last call: the daemon's
 * counts are then re-read. */
bool spool_store_changed_elsewhere(SpoolStore *s);
/* The file this connection wrote is still the spool's (not removed or replaced, its directory
 * not removed, nor its write-ahead log once made): 0, else -ESTALE. Checked at begin, and by the
 * daemon again after a commit and before it answers: a group committed into a file removed
 * meanwhile is written again. */
int spool_store_check_identity(SpoolStore *s);
