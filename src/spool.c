/* SPDX-License-Identifier: MIT */
#include "spool.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "macro.h"

/* How often the thread tries again to open a spool it could not open, and looks whether the
 * spool command changed the file (requeue-dead) while nothing else happens. */
#define SPOOL_IDLE_CHECK_SEC 2

typedef enum SpoolOpType {
    OP_ADD,
    OP_FETCH,
    OP_DELIVERED,
    OP_ATTEMPT_FAILED,
    OP_DEAD,
    OP_FORGET,
} SpoolOpType;

typedef struct SpoolOp SpoolOp;
struct SpoolOp {
    SpoolOp *next;
    SpoolOpType type;
    int error; /* the result: 0 or a negative errno */
    bool duplicate;
    int64_t id; /* delivered, attempt failed, dead; fetch: after this id */
    size_t max; /* fetch */
    spool_add_fn add_done;
    spool_fetch_fn fetch_done;
    void *userdata;
    SpoolJob *jobs; /* fetch: the result */
    size_t n_jobs;
    char error_text[SPOOL_ERROR_MAX];
    SpoolJob job; /* add: the job; the others: job.last_error */
};

typedef struct SpoolNotice SpoolNotice;
struct SpoolNotice {
    SpoolNotice *next;
    SpoolNoticeKind kind;
    char text[512];
    char why[SPOOL_ERROR_MAX];
};

/* A singly linked FIFO of ops or notices. */
#define FIFO_PUSH(head, tail, x)                                                                   \
    do {                                                                                           \
        (x)->next = NULL;                                                                          \
        if (tail)                                                                                  \
            (tail)->next = (x);                                                                    \
        else                                                                                       \
            (head) = (x);                                                                          \
        (tail) = (x);                                                                              \
    } while (0)

struct Spool {
    /* the loop's */
    sd_event_source *wakeup;
    int efd;
    SpoolCallbacks cb;
    size_t n_adding, max_adding;
    char *dir;
    uint64_t max_jobs;

    pthread_t thread;
    bool thread_started;

    /* shared, under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    bool stop;
    SpoolOp *in_head, *in_tail;   /* asked by the loop, for the thread */
    SpoolOp *out_head, *out_tail; /* done by the thread, for the loop */
    SpoolNotice *notices_head, *notices_tail;
    SpoolState state;

    /* the thread's (and spool_new's, before the thread starts) */
    SpoolStore *store;
    uint64_t next_open_usec;
    bool failing;        /* the last group failed: UNAVAILABLE was said */
    uint64_t generation; /* SpoolState.generation */
};

static void spool_wake_loop(Spool *s)
{
    uint64_t one = 1;
    (void)!write(s->efd, &one, sizeof(one));
}

/* src (NULL: "") into dst of n bytes, cut to fit. */
static void copy_id(char *dst, size_t n, const char *src)
{
    size_t len = src ? strnlen(src, n - 1) : 0;
    memcpy(dst, src ? src : "", len);
    dst[len] = '\0';
}

/* From the thread (or spool_new); takes the lock itself. */
static void notice_post(Spool *s, SpoolNoticeKind kind, const char *text, const char *why)
{
    SpoolNotice *n = calloc(1, sizeof(*n));
    if (!n)
        return;
    n->kind = kind;
    copy_id(n->text, sizeof(n->text), text);
    copy_id(n->why, sizeof(n->why), why);
    pthread_mutex_lock(&s->lock);
    FIFO_PUSH(s->notices_head, s->notices_tail, n);
    pthread_mutex_unlock(&s->lock);
}

static const char *errno_words(int error)
{
    switch (error) {
    case -ENOSPC:
        return "disk full";
    case -EDQUOT:
        return "spool full (SPOOL_MAX_JOBS)";
    case -EROFS:
        return "read-only";
    case -EACCES:
        return "permission denied";
    case -EBADMSG:
        return "corrupt";
    case -EBUSY:
        return "locked by another process";
    default:
        return strerror(-error);
    }
}

/* "disk full: database or disk is full": what failed, in the system's and SQLite's words. */
static void describe_error(const Spool *s, int error, char *buf, size_t n)
{
    const char *sq = s->store ? spool_store_error(s->store) : NULL;
    if (sq && sq[0] && strcmp(sq, "not an error") != 0)
        snprintf(buf, n, "%s: %s", errno_words(error), sq);
    else
        snprintf(buf, n, "%s", errno_words(error));
}

/* Opens the store (moving a corrupt one aside); on failure says so once and stays closed. */
static int spool_open_store(Spool *s)
{
    char *moved = NULL, *why = NULL;
    int r =
        spool_store_open(s->dir, SPOOL_OPEN_CREATE | SPOOL_OPEN_REPAIR, &s->store, &moved, &why);
    if (moved)
        notice_post(s, SPOOL_NOTICE_MOVED_ASIDE, moved, why);
    free(moved);
    if (r < 0) {
        s->store = NULL;
        if (!s->failing) {
            char buf[SPOOL_ERROR_MAX];
            snprintf(buf, sizeof(buf), "cannot open %s/" SPOOL_FILE ": %s", s->dir,
                     why ? why : errno_words(r));
            notice_post(s, SPOOL_NOTICE_UNAVAILABLE, buf, NULL);
            s->failing = true;
        }
        s->next_open_usec = clock_usec(CLOCK_MONOTONIC) + SPOOL_IDLE_CHECK_SEC * 1000000ULL;
    }
    free(why);
    return r;
}

static int op_run(Spool *s, SpoolOp *op)
{
    switch (op->type) {
    case OP_ADD:
        return spool_store_add(s->store, &op->job, s->max_jobs, &op->duplicate);
    case OP_FETCH:
        op->jobs = calloc(op->max ? op->max : 1, sizeof(SpoolJob));
        if (!op->jobs)
            return -ENOMEM;
        return spool_store_fetch(s->store, false, op->id, op->jobs, op->max, &op->n_jobs);
    case OP_DELIVERED:
        return spool_store_delete(s->store, op->id);
    case OP_ATTEMPT_FAILED:
        return spool_store_note_attempt(s->store, op->id, op->job.last_error);
    case OP_DEAD:
        return spool_store_mark_dead(s->store, op->id, op->job.last_error);
    case OP_FORGET:
        return spool_store_forget(s->store, op->job.job_id);
    }
    return -EINVAL;
}

/* Found corrupt while running (moved aside at the reopen, a fresh one made), or its file or
 * directory removed or replaced under us: the store is opened again. The spool stays failing
 * until a group (or the idle check) commits. */
static void spool_reopen(Spool *s, int why)
{
    spool_store_close(s->store);
    s->store = NULL;
    if (why == -ESTALE) {
        /* SQLite leaves the write-ahead log of a file that moved: beside a replacing file it
         * would be replayed into that one. It holds what the old file had not taken yet (all of
         * it when the file was deleted): moved aside, never deleted. */
        char stamp[32], from[PATH_MAX], to[PATH_MAX];
        time_t now = time(NULL);
        struct tm tm;
        strftime(stamp, sizeof(stamp), "%Y%m%dT%H%M%SZ", gmtime_r(&now, &tm));
        static const char *const suffixes[] = {"-wal", "-shm"};
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
            snprintf(from, sizeof(from), "%s/" SPOOL_FILE "%s", s->dir, suffixes[i]);
            snprintf(to, sizeof(to), "%s/" SPOOL_FILE ".orphaned-%s%s", s->dir, stamp, suffixes[i]);
            if (rename(from, to) == 0 && i == 0)
                notice_post(s, SPOOL_NOTICE_MOVED_ASIDE, to,
                            SPOOL_FILE " was removed or replaced while in use; its "
                                       "write-ahead log is kept");
        }
    }
    (void)spool_open_store(s);
}

/* Idle and failing: whether a commit works again (space freed, the lock released, the file
 * back). An empty transaction writes nothing. */
static bool spool_try_recover(Spool *s)
{
    int r = spool_store_begin(s->store);
    if (r == 0)
        r = spool_store_commit(s->store);
    if (r == -EBADMSG || r == -ESTALE) {
        spool_reopen(s, r);
        return false;
    }
    if (r < 0)
        return false;
    notice_post(s, SPOOL_NOTICE_AVAILABLE, s->dir, NULL);
    s->failing = false;
    return true;
}

/* The whole group failed: nothing of it is on disk, and nothing it read may be used (it may
 * have read its own adds). */
static void group_fail(Spool *s, SpoolOp *ops, int error)
{
    char words[SPOOL_ERROR_MAX];
    describe_error(s, error, words, sizeof(words));
    bool writes = false;
    for (SpoolOp *op = ops; op; op = op->next) {
        if (op->error != -EDQUOT) /* an add refused as full stays refused as full */
            op->error = error;
        snprintf(op->error_text, sizeof(op->error_text), "%s", words);
        op->n_jobs = 0;
        writes |= op->type != OP_ADD && op->type != OP_FETCH;
    }
    if (writes)
        notice_post(s, SPOOL_NOTICE_WRITE_FAILED, words, NULL);
    if (!s->failing) {
        notice_post(s, SPOOL_NOTICE_UNAVAILABLE, words, NULL);
        s->failing = true;
    }
    if (error == -EBADMSG || error == -ESTALE)
        spool_reopen(s, error);
}

/* One group: one transaction, one commit, one fsync. */
static void group_run(Spool *s, SpoolOp *ops)
{
    if (!s->store && clock_usec(CLOCK_MONOTONIC) >= s->next_open_usec)
        (void)spool_open_store(s);
    if (!s->store) {
        for (SpoolOp *op = ops; op; op = op->next) {
            op->error = -ENXIO;
            snprintf(op->error_text, sizeof(op->error_text), "spool unavailable");
        }
        return;
    }

    int r = spool_store_begin(s->store);
    if (r < 0) {
        group_fail(s, ops, r);
        return;
    }
    for (SpoolOp *op = ops; op; op = op->next) {
        op->error = op_run(s, op);
        if (op->error == -EDQUOT)
            snprintf(op->error_text, sizeof(op->error_text), "%s", errno_words(-EDQUOT));
        if (op->error < 0 && op->error != -EDQUOT && op->error != -ENOENT) {
            r = op->error;
            spool_store_rollback(s->store);
            group_fail(s, ops, r);
            return;
        }
    }
    r = spool_store_commit(s->store);
    if (r < 0) {
        group_fail(s, ops, r);
        return;
    }
    if (s->failing) {
        notice_post(s, SPOOL_NOTICE_AVAILABLE, s->dir, NULL);
        s->failing = false;
    }
    for (SpoolOp *op = ops; op; op = op->next)
        if (op->type == OP_ADD && op->error == 0 && !op->duplicate) {
            s->generation++;
            break;
        }
}

static void state_refresh(Spool *s)
{
    SpoolState st = {.up = s->store && !s->failing, .generation = s->generation};
    if (s->store)
        (void)spool_store_stats(s->store, &st.stats);
    pthread_mutex_lock(&s->lock);
    s->state = st;
    pthread_mutex_unlock(&s->lock);
}

static void *spool_thread(void *userdata)
{
    Spool *s = userdata;
    pthread_mutex_lock(&s->lock);
    for (;;) {
        while (!s->in_head && !s->stop) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until);
            until.tv_sec += SPOOL_IDLE_CHECK_SEC;
            if (pthread_cond_timedwait(&s->cond, &s->lock, &until) != ETIMEDOUT)
                continue;
            /* Idle: open the spool if it could not be, and see whether another process changed
             * it (the spool command). */
            pthread_mutex_unlock(&s->lock);
            bool changed = false;
            if (!s->store) {
                if (clock_usec(CLOCK_MONOTONIC) >= s->next_open_usec && spool_open_store(s) >= 0) {
                    notice_post(s, SPOOL_NOTICE_AVAILABLE, s->dir, NULL);
                    s->failing = false;
                    changed = true;
                }
            } else if (s->failing)
                changed = spool_try_recover(s);
            else
                changed = spool_store_changed_elsewhere(s->store);
            if (changed) {
                s->generation++;
                state_refresh(s);
                spool_wake_loop(s);
            }
            pthread_mutex_lock(&s->lock);
        }
        if (!s->in_head)
            break; /* stopping, and everything asked is done */
        SpoolOp *ops = s->in_head;
        s->in_head = s->in_tail = NULL;
        pthread_mutex_unlock(&s->lock);

        group_run(s, ops);
        state_refresh(s);

        pthread_mutex_lock(&s->lock);
        for (SpoolOp *op = ops, *next; op; op = next) {
            next = op->next;
            FIFO_PUSH(s->out_head, s->out_tail, op);
        }
        spool_wake_loop(s);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static void op_free(SpoolOp *op)
{
    if (!op)
        return;
    free(op->jobs);
    free(op);
}

static SpoolAddStatus add_status(const SpoolOp *op)
{
    if (op->error == -EDQUOT)
        return SPOOL_REFUSED_FULL;
    if (op->error < 0)
        return SPOOL_REFUSED_ERROR;
    return op->duplicate ? SPOOL_ALREADY : SPOOL_ADDED;
}

/* The loop's side: what the thread did. */
static int on_wakeup(sd_event_source *src, int fd, uint32_t revents, void *userdata)
{
    (void)src, (void)revents;
    Spool *s = userdata;
    uint64_t n;
    (void)!read(fd, &n, sizeof(n));

    pthread_mutex_lock(&s->lock);
    SpoolOp *ops = s->out_head;
    SpoolNotice *notices = s->notices_head;
    s->out_head = s->out_tail = NULL;
    s->notices_head = s->notices_tail = NULL;
    pthread_mutex_unlock(&s->lock);

    for (SpoolNotice *x = notices, *next; x; x = next) {
        next = x->next;
        if (s->cb.notice)
            s->cb.notice(x->kind, x->text, x->why[0] ? x->why : NULL, s->cb.userdata);
        free(x);
    }
    for (SpoolOp *op = ops, *next; op; op = next) {
        next = op->next;
        if (op->type == OP_ADD) {
            s->n_adding--;
            op->add_done(add_status(op), op->error < 0 ? op->error_text : NULL, op->userdata);
        } else if (op->type == OP_FETCH)
            op->fetch_done(op->error, op->jobs, op->n_jobs, op->userdata);
        op_free(op);
    }
    if (s->cb.changed)
        s->cb.changed(s->cb.userdata);
    return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Spool *, spool_free);

int spool_new(sd_event *e, const char *dir, uint64_t max_jobs, size_t max_adding,
              const SpoolCallbacks *callbacks, Spool **ret)
{
    assert(e);
    assert(dir);
    assert(ret);

    _cleanup_(spool_freep) Spool *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    s->efd = -EBADF;
    pthread_mutex_init(&s->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cond, &ca);
    pthread_condattr_destroy(&ca);
    s->max_jobs = max_jobs;
    s->max_adding = max_adding;
    if (callbacks)
        s->cb = *callbacks;
    s->dir = strdup(dir);
    if (!s->dir)
        return -ENOMEM;
    s->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (s->efd < 0)
        return -errno;
    int r = sd_event_add_io(e, &s->wakeup, s->efd, EPOLLIN, on_wakeup, s);
    if (r < 0)
        return r;
    (void)sd_event_source_set_description(s->wakeup, "spool");

    (void)spool_open_store(s); /* unavailable is not an error: the thread tries again */
    state_refresh(s);
    spool_wake_loop(s); /* the notices of the open, on the loop's first turn */

    r = -pthread_create(&s->thread, NULL, spool_thread, s);
    if (r < 0)
        return r;
    s->thread_started = true;
    *ret = TAKE_PTR(s);
    return 0;
}

static void op_list_free(SpoolOp *op)
{
    for (SpoolOp *next; op; op = next) {
        next = op->next;
        op_free(op);
    }
}

Spool *spool_free(Spool *s)
{
    if (!s)
        return NULL;
    if (s->thread_started) {
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_cond_signal(&s->cond);
        pthread_mutex_unlock(&s->lock);
        pthread_join(s->thread, NULL);
    }
    op_list_free(s->in_head);
    op_list_free(s->out_head);
    for (SpoolNotice *x = s->notices_head, *next; x; x = next) {
        next = x->next;
        free(x);
    }
    spool_store_close(s->store);
    sd_event_source_disable_unref(s->wakeup);
    if (s->efd >= 0)
        close(s->efd);
    pthread_cond_destroy(&s->cond);
    pthread_mutex_destroy(&s->lock);
    free(s->dir);
    free(s);
    return NULL;
}

static void spool_ask(Spool *s, SpoolOp *op)
{
    pthread_mutex_lock(&s->lock);
    bool was_empty = !s->in_head;
    FIFO_PUSH(s->in_head, s->in_tail, op);
    if (was_empty)
        pthread_cond_signal(&s->cond);
    pthread_mutex_unlock(&s->lock);
}

static SpoolOp *op_new(SpoolOpType type)
{
    SpoolOp *op = malloc(sizeof(*op));
    if (!op)
        return NULL;
    memset(op, 0, offsetof(SpoolOp, job));
    op->job.last_error[0] = '\0';
    op->type = type;
    return op;
}

int spool_add(Spool *s, const char *place_id, const char *job_id, const char *request_id,
              const char *reason, spool_add_fn done, void *userdata)
{
    SpoolOp *op = op_new(OP_ADD);
    if (!op)
        return -ENOMEM;
    op->add_done = done;
    op->userdata = userdata;
    op->job.id = 0;
    op->job.created_usec = 0;
    op->job.attempts = 0;
    op->job.dead = false;
    copy_id(op->job.place_id, sizeof(op->job.place_id), place_id);
    copy_id(op->job.job_id, sizeof(op->job.job_id), job_id);
    copy_id(op->job.request_id, sizeof(op->job.request_id), request_id);
    copy_id(op->job.last_error, sizeof(op->job.last_error), reason);
    s->n_adding++;
    if (s->n_adding > s->max_adding) {
        /* The disk is slower than the clients: refused without asking the thread, answered
         * on the loop's next turn like any other. */
        op->error = -EDQUOT;
        snprintf(op->error_text, sizeof(op->error_text), "too many jobs waiting to be spooled");
        pthread_mutex_lock(&s->lock);
        FIFO_PUSH(s->out_head, s->out_tail, op);
        pthread_mutex_unlock(&s->lock);
        spool_wake_loop(s);
        return 0;
    }
    spool_ask(s, op);
    return 0;
}

int spool_fetch(Spool *s, int64_t after_id, size_t max, spool_fetch_fn done, void *userdata)
{
    SpoolOp *op = op_new(OP_FETCH);
    if (!op)
        return -ENOMEM;
    op->id = after_id;
    op->max = max < SPOOL_FETCH_MAX ? max : SPOOL_FETCH_MAX;
    op->fetch_done = done;
    op->userdata = userdata;
    spool_ask(s, op);
    return 0;
}

static int spool_write(Spool *s, SpoolOpType type, int64_t id, const char *error)
{
    SpoolOp *op = op_new(type);
    if (!op)
        return -ENOMEM;
    op->id = id;
    copy_id(op->job.last_error, sizeof(op->job.last_error), error);
    spool_ask(s, op);
    return 0;
}

int spool_delivered(Spool *s, int64_t id)
{
    return spool_write(s, OP_DELIVERED, id, NULL);
}

int spool_attempt_failed(Spool *s, int64_t id, const char *error)
{
    return spool_write(s, OP_ATTEMPT_FAILED, id, error);
}

int spool_dead(Spool *s, int64_t id, const char *error)
{
    return spool_write(s, OP_DEAD, id, error);
}

int spool_forget(Spool *s, const char *job_id)
{
    SpoolOp *op = op_new(OP_FORGET);
    if (!op)
        return -ENOMEM;
    copy_id(op->job.job_id, sizeof(op->job.job_id), job_id);
    spool_ask(s, op);
    return 0;
}

void spool_state(Spool *s, SpoolState *ret)
{
    pthread_mutex_lock(&s->lock);
    *ret = s->state;
    pthread_mutex_unlock(&s->lock);
}

size_t spool_adding(const Spool *s)
{
    return s->n_adding;
}

const char *spool_dir(const Spool *s)
{
    return s->dir;
}
