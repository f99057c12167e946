/* SPDX-License-Identifier: MIT */
#pragma once

/* Inside the spool (spool.h is its interface): what its two sides share. spool-thread.c: the
 * thread, the store and the spool's life (spool_new, spool_free); spool-port.c: the loops'
 * side, their ports, the ops they ask, and the state and held set as they see it. The two meet
 * under Spool.lock and through the mailboxes: a port's bell on its loop's, the thread's own. */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "atomics.h"
#include "list.h"
#include "mailbox.h"
#include "spool-store.h"
#include "spool.h"

typedef enum SpoolOpType {
    OP_ADD,
    OP_ADD_BATCH,
    OP_FETCH_DUE,
    OP_DELIVERED,
    OP_RETRY,
    OP_DEAD,
    OP_FORGET,
} SpoolOpType;

typedef struct SpoolOp SpoolOp;
struct SpoolOp {
    LIST_FIELDS(SpoolOp, queue); /* on the thread's in, or its port's out */
    SpoolPort *port;             /* where the result goes */
    SpoolOpType type;
    int error; /* the result: 0 or a negative errno */
    bool duplicate;
    int64_t id;        /* delivered, retry, dead; fetch: after this id */
    size_t max;        /* fetch */
    uint64_t due_usec; /* retry */
    spool_add_fn add_done;
    spool_add_batch_fn add_batch_done;
    SpoolAddStatus *statuses; /* add batch: one a job (.max of them) */
    char *batch_text;         /* add batch: the reason, then each job's strings (spool-port.c) */
    spool_fetch_fn fetch_done;
    void *userdata;
    SpoolJob *jobs; /* fetch: the result */
    size_t n_jobs;
    char error_text[SPOOL_ERROR_MAX];
    SpoolJob job; /* add: the job; the others: job.last_error */
};

typedef struct SpoolNotice SpoolNotice;
struct SpoolNotice {
    LIST_FIELDS(SpoolNotice, queue); /* on the spool's notices */
    SpoolNoticeKind kind;
    char text[512];
    char why[SPOOL_ERROR_MAX];
};

/* An event loop's way in: results of its adds come back to it, rung through its mailbox. */
struct SpoolPort {
    Spool *spool;
    SpoolPort *next;  /* every port of the spool: freed with it */
    MailboxBell bell; /* on the loop's mailbox: out (or on the main loop, notices) to take */
    SpoolOp *out_head, *out_tail; /* under spool->lock: done, for this loop */
};

/* Forgets a fetch can be checked against; past them a fetch's jobs are all skipped once. */
#define SPOOL_FORGET_RING 64

struct Spool {
    SpoolPort *main;  /* the loop of spool_new: fetches, notices, the changed callback */
    SpoolPort *ports; /* every port, main included: freed once the thread is joined */
    SpoolCallbacks cb;
    size_t n_adding; /* atomic: adds from every loop waiting for their commit */
    size_t max_adding;
    char *dir;
    uint64_t max_jobs;

    pthread_t thread;
    bool thread_started;

    /* shared, under lock */
    pthread_mutex_t lock;
    bool stop;
    SpoolOp *in_head, *in_tail; /* asked by the loops, for the thread */
    SpoolNotice *notices_head, *notices_tail;
    SpoolState state;
    char *forgotten[SPOOL_FORGET_RING]; /* the job ids of the last forgets asked (NULL: unknown) */
    uint64_t forget_seq;                /* forgets asked so far; the newest at (seq - 1) % RING */
    char **held;                        /* the job ids of the held jobs, sorted */
    size_t n_held;                      /* atomic: spool_job_held()'s fast path */
    Mailbox in;                         /* the thread's (no sd-event: polled): ops asked, or stop */
    MailboxBell asked;                  /* on in */

    /* the thread's (and spool_new's, before the thread starts) */
    SpoolStore *store;
    uint64_t next_open_usec;
    bool failing;              /* the last group failed: UNAVAILABLE was said */
    uint64_t generation;       /* SpoolState.generation */
    uint64_t reset_generation; /* SpoolState.reset_generation */
    bool reset;                /* changed elsewhere or reopened: counts and held ids again */
    int inotify_fd, watch;     /* the directory's watch; watch -1 while there is none */
    uint64_t next_look_usec;   /* the next look for another process's change while busy */
};

/* From the thread: p has results to take (its loop's mailbox). */
void spool_port_wake(SpoolPort *p);

/* The main loop's port: notices, or the changed callback. */
void spool_wake_loop(Spool *s);

/* src (NULL: "") into dst of n bytes, cut to fit. */
void spool_copy_id(char *dst, size_t n, const char *src);

/* *j as spool_add writes it: job's strings (cut to fit), reason as its last error. */
void spool_job_set(SpoolJob *j, const JobRef *job, const char *reason);

/* qsort()/bsearch() order of the held job ids (char *). */
int spool_compare_ids(const void *a, const void *b);

/* Ops linked by queue_next, whose callbacks will not be called. */
void spool_op_list_free(SpoolOp *op);

/* Once the thread is joined: nothing can reach p any more. */
void spool_port_free(SpoolPort *p);
