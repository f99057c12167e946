/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "job.h"
#include "mailbox.h"
#include "spool-store.h"

/* The spool as the event loop sees it: its own thread owns the SQLite connection (spool-store.c)
 * and runs what the loop asks in groups, one transaction (one fsync) per group, so the loop never
 * waits on the disk; results come back to the loop through its mailbox, and every callback runs
 * on the loop. The thread never logs: what it has to say (unavailable, a corrupt file moved
 * aside, available again) reaches the loop as a notice (spool_notice_fn).
 *
 * The thread also watches the spool's directory (inotify): when another process (the spool
 * command) changed the file, it reads the counts and the held jobs again and tells the main
 * loop at once (SpoolState.reset_generation). After each group's commit, before any result is
 * answered, it checks that the file it wrote is still the spool's: one removed or replaced
 * meanwhile is opened again and the group written again into it (or refused). */

typedef struct Spool Spool;
/* An event loop's way to the spool: results of its adds come back on that loop. */
typedef struct SpoolPort SpoolPort;

typedef enum SpoolAddStatus {
    SPOOL_ADDED,         /* committed: on disk */
    SPOOL_ALREADY,       /* the same job id already waits: nothing written */
    SPOOL_REFUSED_FULL,  /* SPOOL_MAX_JOBS wait already, or too many adds at once */
    SPOOL_REFUSED_ERROR, /* disk full, I/O error, read-only, spool unavailable */
} SpoolAddStatus;

/* error: SQLite's or the system's words when refused, else NULL; borrowed for the call. */
typedef void (*spool_add_fn)(SpoolAddStatus status, const char *error, void *userdata);
/* error: 0 or a negative errno; jobs borrowed for the call. */
typedef void (*spool_fetch_fn)(int error, const SpoolJob *jobs, size_t n, void *userdata);

typedef enum SpoolNoticeKind {
    SPOOL_NOTICE_UNAVAILABLE,  /* cannot take jobs: text says why */
    SPOOL_NOTICE_AVAILABLE,    /* takes jobs again */
    SPOOL_NOTICE_MOVED_ASIDE,  /* a corrupt file was moved aside: text is its new path, why */
    SPOOL_NOTICE_WRITE_FAILED, /* a delivered/dead/attempt record was not written: text why */
    SPOOL_NOTICE_REPLACED,     /* the file was removed or replaced while in use, and opened
                                * again: text is where its write-ahead log was kept, or "" */
    SPOOL_NOTICE_CHANGED,      /* another process changed it: text says what it now holds */
} SpoolNoticeKind;

typedef struct SpoolCallbacks {
    /* Something the operator should hear about; on the loop. */
    void (*notice)(SpoolNoticeKind kind, const char *text, const char *why, void *userdata);
    /* After every group: the counts (spool_state) may have moved. */
    void (*changed)(void *userdata);
    void *userdata;
} SpoolCallbacks;

typedef struct SpoolState {
    bool up;          /* takes jobs */
    SpoolStats stats; /* as of the last group */
    /* Moves when jobs were added (or whatever moved reset_generation): the delivery then looks
     * past where it had got to. */
    uint64_t generation;
    /* Moves when another process (the spool command) changed the file, or it was opened again:
     * the delivery walks again from the first job. */
    uint64_t reset_generation;
} SpoolState;

/* Opens dir's spool on the calling thread (its loop's mailbox given) (moving a corrupt one aside,
 * made known by a notice from the loop's first turn), then starts the thread. A spool that cannot
 * be opened (a read-only or missing directory, a full disk) is not an error: it starts unavailable,
 * and the thread tries again every few seconds. max_jobs: SPOOL_MAX_JOBS; max_adding: adds waiting
 * for their commit at most (past it SPOOL_REFUSED_FULL at once). */
int spool_new(Mailbox *mailbox, const char *dir, uint64_t max_jobs, size_t max_adding,
              const SpoolCallbacks *callbacks, Spool **ret);
/* Lets the thread finish what was asked (a last group), joins it and closes the store.
 * Callbacks of what was asked are not called. Takes NULL. */
Spool *spool_free(Spool *s);

/* A port for the loop whose mailbox is given (another event loop than spool_new's, which has its
 * own: spool_main_port); the results come back to it there.
 * The spool frees its ports (spool_free, after its thread is joined): free the spool once the
 * loops no longer run, before their sd-events go. */
int spool_port_new(Spool *s, Mailbox *mailbox, SpoolPort **ret);
SpoolPort *spool_main_port(Spool *s);

/* Spools a job (reason: why it is spooled, kept as its last error); done is called on the port's
 * loop once the record is committed or refused, never from inside this call. Returns -ENOMEM
 * when not even asked (done not called). */
int spool_add(SpoolPort *port, const JobRef *job, const char *reason, spool_add_fn done,
              void *userdata);

/* Up to max waiting jobs not held that are due now (spool_store_fetch_due) with id > after_id,
 * in id order (max at most SPOOL_FETCH_MAX); done on the main loop. */
#define SPOOL_FETCH_MAX 128
int spool_fetch_due(Spool *s, int64_t after_id, size_t max, spool_fetch_fn done, void *userdata);

/* The delivery's writes, in the next group; a failure is a SPOOL_NOTICE_WRITE_FAILED (the job
 * then stays waiting, and is delivered again: at least once). Each acts on record id only while
 * it is job job_id's (the file opened again since, removed or replaced, has other jobs under
 * those ids): else nothing. */
int spool_delivered(Spool *s, int64_t id, const char *job_id);
/* A failed attempt: tried again at due_usec (CLOCK_REALTIME). */
int spool_retry_later(Spool *s, int64_t id, const char *job_id, uint64_t due_usec,
                      const char *error);
/* Refused for good, or expired (error says so). */
int spool_dead(Spool *s, int64_t id, const char *job_id, const char *error);

/* The worker took job_id from a client's request: a record of it waiting in the spool is removed
 * (so that it is not delivered a second time). */
int spool_forget(Spool *s, const char *job_id);
/* A fetch answered after a forget was asked may still list that job (it ran first): the
 * delivery notes spool_forget_seq() when it asks, and skips a fetched job for which
 * spool_forgotten_since() says a forget was asked since (true also when it cannot tell). */
uint64_t spool_forget_seq(Spool *s);
bool spool_forgotten_since(Spool *s, uint64_t seq, const char *job_id);

void spool_state(Spool *s, SpoolState *ret);

/* Whether an operator holds the job job_id (`spool hold`): a client's request for it is then
 * answered "queued" and leaves it held. From any thread; nothing but an atomic load while no
 * job is held. */
bool spool_job_held(Spool *s, const char *job_id);
