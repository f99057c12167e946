/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "macro.h"
#include "spool-internal.h"

/* SPDX-License-Identifier: MIT */
#include "spool.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "macro.h"

/* How often the thread tries again to open a spool it could not open, and looks whether another
 * process changed the file without inotify saying so (one that keeps it open). */
#define SPOOL_IDLE_CHECK_SEC 2
#define SPOOL_IDLE_CHECK_USEC (SPOOL_IDLE_CHECK_SEC * 1000000ULL)
/* What in the directory may tell of another process's change: it closes the files it wrote
 * (the spool command at its end), a file or the directory removed, moved or made. Not
 * IN_MODIFY: the thread's own commits would wake it every time. */
#define SPOOL_WATCH_EVENTS                                                                         \
    (IN_CLOSE_WRITE | IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |       \
     IN_MOVE_SELF | IN_ONLYDIR)

/* From the thread (or spool_new); takes the lock itself. */
static void notice_post(Spool *s, SpoolNoticeKind kind, const char *text, const char *why)
{
    SpoolNotice *n = calloc(1, sizeof(*n));
    if (!n)
        return;
    n->kind = kind;
    spool_copy_id(n->text, sizeof(n->text), text);
    spool_copy_id(n->why, sizeof(n->why), why);
    pthread_mutex_lock(&s->lock);
    LIST_APPEND(queue, s->notices_head, s->notices_tail, n);
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
    case -ENXIO:
        return "spool unavailable";
    case -ESTALE:
        return SPOOL_FILE " was removed or replaced";
    case -EPROTO:
        return "written by a newer release";
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

/* Watches the spool's directory, once it exists (again), at each open: the one watched may have
 * been moved away and another made in its place (a watch follows the directory, not its name). */
static void spool_watch(Spool *s)
{
    if (s->inotify_fd < 0)
        return;
    int w = inotify_add_watch(s->inotify_fd, s->dir, SPOOL_WATCH_EVENTS);
    if (s->watch >= 0 && w != s->watch)
        (void)inotify_rm_watch(s->inotify_fd, s->watch);
    s->watch = w;
}

/* Opens the store (moving a corrupt one aside); on failure says so once and stays closed. */
static int spool_open_store(Spool *s)
{
    _cleanup_free_ char *moved = NULL, *why = NULL;
    int r =
        spool_store_open(s->dir, SPOOL_OPEN_CREATE | SPOOL_OPEN_REPAIR, &s->store, &moved, &why);
    if (moved)
        notice_post(s, SPOOL_NOTICE_MOVED_ASIDE, moved, why);
    if (r >= 0) {
        s->reset = true; /* another file than before, maybe: counts and held ids again */
        spool_watch(s);
    }
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
    return r;
}

/* Whether record id is still the job the op is about: the file may have been opened again since
 * the delivery read it (removed or replaced under us), and a new file's ids start again from 1.
 * Else -ENOENT, as for a job that no longer waits. */
static int op_same_job(Spool *s, const SpoolOp *op)
{
    SpoolJob j;
    int r = spool_store_get(s->store, op->id, &j);
    if (r < 0)
        return r;
    return strcmp(j.job_id, op->job.job_id) == 0 ? 0 : -ENOENT;
}

/* Each job of a batch in the group's transaction: one past SPOOL_MAX_JOBS is refused alone;
 * any other failure fails the group. op->duplicate: none of them was written. */
static int op_add_batch(Spool *s, SpoolOp *op)
{
    bool any = false;
    const char *reason = op->batch_text, *tp = reason + strlen(reason) + 1,
               *ts = tp + strlen(tp) + 1, *p = ts + strlen(ts) + 1;
    for (size_t i = 0; i < op->max; i++) {
        JobRef job = {.place_id = p, .traceparent = tp, .tracestate = ts};
        job.job_id = job.place_id + strlen(job.place_id) + 1;
        job.request_id = job.job_id + strlen(job.job_id) + 1;
        p = job.request_id + strlen(job.request_id) + 1;
        spool_job_set(&op->job, &job, reason); /* op->job: one job at a time */
        bool duplicate = false;
        int r = spool_store_add(s->store, &op->job, s->max_jobs, &duplicate);
        if (r == -EDQUOT) {
            op->statuses[i] = SPOOL_REFUSED_FULL;
            continue;
        }
        if (r < 0)
            return r;
        op->statuses[i] = duplicate ? SPOOL_ALREADY : SPOOL_ADDED;
        any |= !duplicate;
    }
    op->duplicate = !any;
    return 0;
}

static int op_run(Spool *s, SpoolOp *op)
{
    if (op->type == OP_DELIVERED || op->type == OP_RETRY || op->type == OP_DEAD) {
        int r = op_same_job(s, op);
        if (r < 0)
            return r;
    }
    switch (op->type) {
    case OP_ADD:
        return spool_store_add(s->store, &op->job, s->max_jobs, &op->duplicate);
    case OP_ADD_BATCH:
        return op_add_batch(s, op);
    case OP_FETCH_DUE:
        if (!op->jobs)
            op->jobs = calloc(op->max ? op->max : 1, sizeof(SpoolJob));
        if (!op->jobs)
            return -ENOMEM;
        return spool_store_fetch_due(s->store, clock_usec(CLOCK_REALTIME), op->id, op->jobs,
                                     op->max, &op->n_jobs);
    case OP_DELIVERED:
        return spool_store_delete(s->store, op->id);
    case OP_RETRY:
        return spool_store_retry_later(s->store, op->id, op->due_usec, op->job.last_error);
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
        bool kept = false;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
            snprintf(from, sizeof(from), "%s/" SPOOL_FILE "%s", s->dir, suffixes[i]);
            snprintf(to, sizeof(to), "%s/" SPOOL_FILE ".orphaned-%s%s", s->dir, stamp, suffixes[i]);
            if (rename(from, to) == 0 && i == 0) {
                notice_post(s, SPOOL_NOTICE_REPLACED, to, NULL);
                kept = true;
            }
        }
        if (!kept)
            notice_post(s, SPOOL_NOTICE_REPLACED, "", NULL);
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
    s->reset = true;
    return true;
}

/* The whole group failed: nothing of it is on disk, and nothing it read may be used (it may
 * have read its own adds). */
static void group_fail(Spool *s, SpoolOp *ops, int error)
{
    char words[SPOOL_ERROR_MAX];
    describe_error(s, error, words, sizeof(words));
    bool writes = false;
    for (SpoolOp *op = ops; op; op = op->queue_next) {
        if (op->error != -EDQUOT) /* an add refused as full stays refused as full */
            op->error = error;
        snprintf(op->error_text, sizeof(op->error_text), "%s", words);
        op->n_jobs = 0;
        writes |= op->type != OP_ADD && op->type != OP_ADD_BATCH && op->type != OP_FETCH_DUE;
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

/* The group's ops in one transaction: 0 once committed, else a negative errno (rolled back;
 * the ops' results are not to be used). An add refused as full, or a write on a job that no
 * longer waits, is that op's result alone. */
static int group_apply(Spool *s, SpoolOp *ops)
{
    int r = spool_store_begin(s->store);
    if (r < 0)
        return r;
    for (SpoolOp *op = ops; op; op = op->queue_next) {
        op->duplicate = false;
        op->n_jobs = 0;
        op->error = op_run(s, op);
        if (op->error == -EDQUOT)
            snprintf(op->error_text, sizeof(op->error_text), "%s", errno_words(-EDQUOT));
        if (op->error < 0 && op->error != -EDQUOT && op->error != -ENOENT) {
            r = op->error;
            spool_store_rollback(s->store);
            return r;
        }
    }
    return spool_store_commit(s->store);
}

/* One group: one transaction, one commit, one fsync. A group that found the file removed or
 * replaced (at begin, or committed into it: its identity is checked again after the commit,
 * before anything is answered) is written again into the spool opened again; if that fails
 * too, it fails (adds refused). */
static void group_run(Spool *s, SpoolOp *ops)
{
    if (!s->store && clock_usec(CLOCK_MONOTONIC) >= s->next_open_usec)
        (void)spool_open_store(s);
    if (!s->store) {
        for (SpoolOp *op = ops; op; op = op->queue_next) {
            op->error = -ENXIO;
            snprintf(op->error_text, sizeof(op->error_text), "spool unavailable");
        }
        return;
    }

    int r = group_apply(s, ops);
    if (r == 0)
        r = spool_store_check_identity(s->store);
    if (r == -ESTALE) { /* found at begin, or after the commit */
        spool_reopen(s, -ESTALE);
        r = s->store ? group_apply(s, ops) : -ENXIO;
        if (r == 0)
            r = spool_store_check_identity(s->store);
    }
    if (r < 0) {
        group_fail(s, ops, r);
        return;
    }
    if (s->failing) {
        notice_post(s, SPOOL_NOTICE_AVAILABLE, s->dir, NULL);
        s->failing = false;
        s->reset = true; /* writes may have failed meanwhile: the delivery walks again */
    }
    for (SpoolOp *op = ops; op; op = op->queue_next)
        if ((op->type == OP_ADD || op->type == OP_ADD_BATCH) && op->error == 0 && !op->duplicate) {
            s->generation++;
            break;
        }
}

/* The held jobs' ids as spool_store_held_ids gives them. */
typedef struct HeldList {
    char **ids;
    size_t n, allocated;
    bool failed;
} HeldList;

static void held_collect(const char *job_id, void *userdata)
{
    HeldList *l = userdata;
    if (l->failed)
        return;
    if (l->n == l->allocated) {
        size_t n = l->allocated ? l->allocated * 2 : 16;
        char **ids = realloc(l->ids, n * sizeof(char *));
        if (!ids) {
            l->failed = true;
            return;
        }
        l->ids = ids;
        l->allocated = n;
    }
    l->ids[l->n] = strdup(job_id);
    if (!l->ids[l->n])
        l->failed = true;
    else
        l->n++;
}

int spool_compare_ids(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void held_free(char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* The held jobs' ids read again; on failure the ones known stay. */
static void held_refresh(Spool *s)
{
    HeldList l = {0};
    if (spool_store_held_ids(s->store, held_collect, &l) < 0 || l.failed) {
        held_free(l.ids, l.n);
        return;
    }
    if (l.n > 1)
        qsort(l.ids, l.n, sizeof(char *), spool_compare_ids);
    pthread_mutex_lock(&s->lock);
    char **old = s->held;
    size_t n_old = s->n_held;
    s->held = l.ids;
    relaxed_store_size(&s->n_held, l.n);
    pthread_mutex_unlock(&s->lock);
    held_free(old, n_old);
}

/* The counts for the loops; after a change by another process or a reopen (s->reset) also the
 * held jobs, and the delivery told to walk from the first job again. */
static void state_refresh(Spool *s)
{
    SpoolState st = {.up = s->store && !s->failing};
    if (s->store) {
        (void)spool_store_stats(s->store, &st.stats);
        if (s->reset || st.stats.held != relaxed_load_size(&s->n_held))
            held_refresh(s);
    }
    if (s->reset) {
        s->generation++;
        s->reset_generation++;
        s->reset = false;
    }
    st.generation = s->generation;
    st.reset_generation = s->reset_generation;
    pthread_mutex_lock(&s->lock);
    s->state = st;
    pthread_mutex_unlock(&s->lock);
}

/* Each result to its loop; the main loop is woken every time (its changed callback). */
static void results_post(Spool *s, SpoolOp *ops)
{
    SpoolPort *woken[8];
    size_t n_woken = 0;
    pthread_mutex_lock(&s->lock);
    for (SpoolOp *op = ops, *next; op; op = next) {
        next = op->queue_next;
        SpoolPort *p = op->port;
        LIST_APPEND(queue, p->out_head, p->out_tail, op);
        bool seen = p == s->main;
        for (size_t i = 0; i < n_woken && !seen; i++)
            seen = woken[i] == p;
        if (!seen && n_woken < ELEMENTSOF(woken))
            woken[n_woken++] = p;
        else if (!seen)
            spool_port_wake(p);
    }
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n_woken; i++)
        spool_port_wake(woken[i]);
    spool_wake_loop(s);
}

/* Whether something changed that the loops should hear of: the spool opened (or recovered, or
 * opened again because its file was removed or replaced), or another process (the spool
 * command) changed it (*ret_elsewhere). */
static bool spool_look(Spool *s, bool *ret_elsewhere)
{
    *ret_elsewhere = false;
    s->next_look_usec = clock_usec(CLOCK_MONOTONIC) + SPOOL_IDLE_CHECK_USEC;
    if (!s->store) {
        if (clock_usec(CLOCK_MONOTONIC) < s->next_open_usec || spool_open_store(s) < 0)
            return false;
        notice_post(s, SPOOL_NOTICE_AVAILABLE, s->dir, NULL);
        s->failing = false;
        return true;
    }
    if (s->failing)
        return spool_try_recover(s);
    if (spool_store_check_identity(s->store) == -ESTALE) {
        spool_reopen(s, -ESTALE);
        return true;
    }
    if (!spool_store_changed_elsewhere(s->store))
        return false;
    s->reset = true;
    *ret_elsewhere = true;
    return true;
}

static void spool_look_and_tell(Spool *s)
{
    bool elsewhere;
    if (!spool_look(s, &elsewhere))
        return;
    s->generation++;
    state_refresh(s);
    if (elsewhere) {
        SpoolState st;
        pthread_mutex_lock(&s->lock);
        st = s->state;
        pthread_mutex_unlock(&s->lock);
        char text[160];
        snprintf(text, sizeof(text), "%llu waiting, %llu held, %llu dead letters",
                 (unsigned long long)st.stats.jobs, (unsigned long long)st.stats.held,
                 (unsigned long long)st.stats.dead);
        notice_post(s, SPOOL_NOTICE_CHANGED, text, NULL);
    }
    spool_wake_loop(s);
}

/* Reads what inotify has; whether any of it may be another process's change. The directory's
 * watch is gone when the directory is (IN_IGNORED): made again when the spool is opened again. */
static bool inotify_drain(Spool *s)
{
    char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
    bool any = false;
    for (;;) {
        ssize_t n = read(s->inotify_fd, buf, sizeof(buf));
        if (n <= 0)
            return any;
        for (char *p = buf; p < buf + n;) {
            const struct inotify_event *e = (const struct inotify_event *)p;
            if (e->mask & IN_IGNORED)
                s->watch = -1;
            any = true;
            p += sizeof(*e) + e->len;
        }
    }
}

/* Nothing asked: waits for the loops (the thread's mailbox), the directory's changes (inotify),
 * or the idle check's time. */
static void spool_wait(Spool *s)
{
    struct pollfd fds[2] = {{.fd = mailbox_fd(&s->in), .events = POLLIN},
                            {.fd = s->inotify_fd, .events = POLLIN}};
    int n = poll(fds, s->inotify_fd >= 0 ? 2 : 1, SPOOL_IDLE_CHECK_SEC * 1000);
    if (n < 0)
        return; /* EINTR */
    bool look = n == 0;
    if (fds[0].revents & POLLIN)
        mailbox_dispatch(&s->in); /* the ring only: spool_thread takes what is asked */
    if (s->inotify_fd >= 0 && (fds[1].revents & POLLIN))
        look |= inotify_drain(s);
    if (look)
        spool_look_and_tell(s);
}

static void *spool_thread(void *userdata)
{
    Spool *s = userdata;
    for (;;) {
        pthread_mutex_lock(&s->lock);
        SpoolOp *ops = s->in_head;
        s->in_head = s->in_tail = NULL;
        bool stop = s->stop;
        pthread_mutex_unlock(&s->lock);
        if (!ops) {
            if (stop)
                break; /* everything asked is done */
            spool_wait(s);
            continue;
        }
        group_run(s, ops);
        state_refresh(s);
        results_post(s, ops);
        /* Busy: another process's change is looked for now and then all the same. */
        if (clock_usec(CLOCK_MONOTONIC) >= s->next_look_usec)
            spool_look_and_tell(s);
    }
    return NULL;
}

static void on_asked(MailboxBell *b)
{
    (void)b; /* spool_thread takes what is asked after each wait */
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Spool *, spool_free);

int spool_new(Mailbox *mailbox, const char *dir, uint64_t max_jobs, size_t max_adding,
              const SpoolCallbacks *callbacks, Spool **ret)
{
    assert(mailbox);
    assert(dir);
    assert(ret);

    _cleanup_(spool_freep) Spool *s = calloc(1, sizeof(*s));
    if (!s)
        return -ENOMEM;
    pthread_mutex_init(&s->lock, NULL);
    s->in.fd = s->inotify_fd = s->watch = -1;
    s->max_jobs = max_jobs;
    s->max_adding = max_adding;
    if (callbacks)
        s->cb = *callbacks;
    s->dir = strdup(dir);
    if (!s->dir)
        return -ENOMEM;
    int r = spool_port_new(s, mailbox, &s->main);
    if (r < 0)
        return r;
    r = mailbox_init(&s->in, NULL, NULL);
    if (r < 0)
        return r;
    mailbox_bell_init(&s->asked, &s->in, on_asked);
    /* Without inotify (out of watches), changes by another process are seen every
     * SPOOL_IDLE_CHECK_SEC. */
    s->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);

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

Spool *spool_free(Spool *s)
{
    if (!s)
        return NULL;
    if (s->thread_started) {
        pthread_mutex_lock(&s->lock);
        s->stop = true;
        pthread_mutex_unlock(&s->lock);
        mailbox_bell_ring(&s->asked);
        pthread_join(s->thread, NULL);
    }
    spool_op_list_free(s->in_head);
    while (s->ports) {
        SpoolPort *p = s->ports;
        s->ports = p->next;
        spool_port_free(p);
    }
    s->main = NULL;
    for (SpoolNotice *x = s->notices_head, *next; x; x = next) {
        next = x->queue_next;
        free(x);
    }
    spool_store_close(s->store);
    held_free(s->held, s->n_held);
    for (size_t i = 0; i < SPOOL_FORGET_RING; i++)
        free(s->forgotten[i]);
    mailbox_bell_done(&s->asked);
    mailbox_done(&s->in);
    if (s->inotify_fd >= 0)
        close(s->inotify_fd);
    pthread_mutex_destroy(&s->lock);
    free(s->dir);
    free(s);
    return NULL;
}
