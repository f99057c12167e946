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

void spool_port_wake(SpoolPort *p)
{
    mailbox_bell_ring(&p->bell);
}

void spool_wake_loop(Spool *s)
{
    spool_port_wake(s->main);
}

void spool_copy_id(char *dst, size_t n, const char *src)
{
    size_t len = src ? strnlen(src, n - 1) : 0;
    memcpy(dst, src ? src : "", len);
    dst[len] = '\0';
}

static void op_free(SpoolOp *op)
{
    if (!op)
        return;
    free(op->jobs);
    free(op->statuses);
    free(op->batch_text);
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

/* A batch's results: each job's, or the whole batch refused (op->error). */
static void add_batch_done(Spool *s, SpoolOp *op)
{
    relaxed_sub_size(&s->n_adding, 1);
    if (op->error < 0)
        for (size_t i = 0; i < op->max; i++)
            op->statuses[i] = add_status(op);
    op->add_batch_done(op->statuses, op->max, op->error < 0 ? op->error_text : NULL, op->userdata);
}

/* A loop's side: what the thread did for it; on the main loop also the notices and the
 * changed callback. */
static void on_port_bell(MailboxBell *b)
{
    SpoolPort *p = container_of(b, SpoolPort, bell);
    Spool *s = p->spool;

    bool main = p == s->main;
    pthread_mutex_lock(&s->lock);
    SpoolOp *ops = p->out_head;
    SpoolNotice *notices = main ? s->notices_head : NULL;
    p->out_head = p->out_tail = NULL;
    if (main)
        s->notices_head = s->notices_tail = NULL;
    pthread_mutex_unlock(&s->lock);

    for (SpoolNotice *x = notices, *next; x; x = next) {
        next = x->queue_next;
        if (s->cb.notice)
            s->cb.notice(x->kind, x->text, x->why[0] ? x->why : NULL, s->cb.userdata);
        free(x);
    }
    for (SpoolOp *op = ops, *next; op; op = next) {
        next = op->queue_next;
        if (op->type == OP_ADD) {
            relaxed_sub_size(&s->n_adding, 1);
            op->add_done(add_status(op), op->error < 0 ? op->error_text : NULL, op->userdata);
        } else if (op->type == OP_ADD_BATCH)
            add_batch_done(s, op);
        else if (op->type == OP_FETCH_DUE)
            op->fetch_done(op->error, op->jobs, op->n_jobs, op->userdata);
        op_free(op);
    }
    if (main && s->cb.changed)
        s->cb.changed(s->cb.userdata);
}

void spool_op_list_free(SpoolOp *op)
{
    for (SpoolOp *next; op; op = next) {
        next = op->queue_next;
        op_free(op);
    }
}

int spool_port_new(Spool *s, Mailbox *mailbox, SpoolPort **ret)
{
    SpoolPort *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->spool = s;
    mailbox_bell_init(&p->bell, mailbox, on_port_bell);
    pthread_mutex_lock(&s->lock);
    p->next = s->ports;
    s->ports = p;
    pthread_mutex_unlock(&s->lock);
    *ret = p;
    return 0;
}

void spool_port_free(SpoolPort *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->spool->lock);
    SpoolOp *ops = p->out_head;
    p->out_head = p->out_tail = NULL;
    pthread_mutex_unlock(&p->spool->lock);
    spool_op_list_free(ops);
    mailbox_bell_done(&p->bell);
    free(p);
}

static void spool_ask(Spool *s, SpoolOp *op)
{
    pthread_mutex_lock(&s->lock);
    bool was_empty = !s->in_head;
    LIST_APPEND(queue, s->in_head, s->in_tail, op);
    pthread_mutex_unlock(&s->lock);
    /* One ring per batch: the thread takes the whole list after each wait. */
    if (was_empty)
        mailbox_bell_ring(&s->asked);
}

static SpoolOp *op_new(SpoolOpType type, SpoolPort *port)
{
    SpoolOp *op = malloc(sizeof(*op));
    if (!op)
        return NULL;
    memset(op, 0, offsetof(SpoolOp, job));
    op->job.last_error[0] = '\0';
    op->type = type;
    op->port = port;
    return op;
}

void spool_job_set(SpoolJob *j, const JobRef *job, const char *reason)
{
    j->id = 0;
    j->created_usec = 0;
    j->attempts = 0;
    j->dead = false;
    spool_copy_id(j->place_id, sizeof(j->place_id), job->place_id);
    spool_copy_id(j->job_id, sizeof(j->job_id), job->job_id);
    spool_copy_id(j->request_id, sizeof(j->request_id), job->request_id);
    spool_copy_id(j->last_error, sizeof(j->last_error), reason);
    spool_copy_id(j->traceparent, sizeof(j->traceparent), job->traceparent);
    spool_copy_id(j->tracestate, sizeof(j->tracestate), job->tracestate);
}

#define STR_OR_EMPTY(s) ((s) ? (s) : "")

/* "reason\0traceparent\0tracestate\0" (the first job's: one request's) then
 * "place_id\0job_id\0request_id\0" a job: a batch's jobs as compact as their strings (a SpoolJob
 * each would be some 2.6 KiB, whatever their length). */
static char *batch_text(const JobRef *jobs, size_t n, const char *reason)
{
    const char *tp = n ? STR_OR_EMPTY(jobs[0].traceparent) : "",
               *ts = n ? STR_OR_EMPTY(jobs[0].tracestate) : "";
    size_t total = strlen(STR_OR_EMPTY(reason)) + strlen(tp) + strlen(ts) + 3;
    for (size_t i = 0; i < n; i++)
        total += strlen(jobs[i].place_id) + strlen(jobs[i].job_id) +
                 strlen(jobs[i].request_id ? jobs[i].request_id : "") + 3;
    char *text = malloc(total), *p = text;
    if (!text)
        return NULL;
    p = stpcpy(p, STR_OR_EMPTY(reason)) + 1;
    p = stpcpy(p, tp) + 1;
    p = stpcpy(p, ts) + 1;
    for (size_t i = 0; i < n; i++) {
        p = stpcpy(p, jobs[i].place_id) + 1;
        p = stpcpy(p, jobs[i].job_id) + 1;
        p = stpcpy(p, jobs[i].request_id ? jobs[i].request_id : "") + 1;
    }
    return text;
}

/* Refused without asking the thread (the disk is slower than the clients), answered on the
 * loop's next turn like any other. */
static void refuse_now(Spool *s, SpoolPort *port, SpoolOp *op)
{
    op->error = -EDQUOT;
    snprintf(op->error_text, sizeof(op->error_text), "too many jobs waiting to be spooled");
    pthread_mutex_lock(&s->lock);
    LIST_APPEND(queue, port->out_head, port->out_tail, op);
    pthread_mutex_unlock(&s->lock);
    spool_port_wake(port);
}

int spool_add(SpoolPort *port, const JobRef *job, const char *reason, spool_add_fn done,
              void *userdata)
{
    Spool *s = port->spool;
    SpoolOp *op = op_new(OP_ADD, port);
    if (!op)
        return -ENOMEM;
    op->add_done = done;
    op->userdata = userdata;
    spool_job_set(&op->job, job, reason);
    if (relaxed_add_size(&s->n_adding, 1) > s->max_adding) {
        refuse_now(s, port, op);
        return 0;
    }
    spool_ask(s, op);
    return 0;
}

int spool_add_batch(SpoolPort *port, const JobRef *jobs, size_t n, const char *reason,
                    spool_add_batch_fn done, void *userdata)
{
    Spool *s = port->spool;
    SpoolOp *op = op_new(OP_ADD_BATCH, port);
    if (!op)
        return -ENOMEM;
    op->batch_text = batch_text(jobs, n, reason);
    op->statuses = calloc(n ? n : 1, sizeof(SpoolAddStatus));
    if (!op->batch_text || !op->statuses) {
        op_free(op);
        return -ENOMEM;
    }
    op->max = n;
    op->add_batch_done = done;
    op->userdata = userdata;
    if (relaxed_add_size(&s->n_adding, 1) > s->max_adding) {
        refuse_now(s, port, op);
        return 0;
    }
    spool_ask(s, op);
    return 0;
}

int spool_fetch_due(Spool *s, int64_t after_id, size_t max, spool_fetch_fn done, void *userdata)
{
    SpoolOp *op = op_new(OP_FETCH_DUE, s->main);
    if (!op)
        return -ENOMEM;
    op->id = after_id;
    op->max = max < SPOOL_FETCH_MAX ? max : SPOOL_FETCH_MAX;
    op->fetch_done = done;
    op->userdata = userdata;
    spool_ask(s, op);
    return 0;
}

static int spool_write(Spool *s, SpoolOpType type, int64_t id, const char *job_id,
                       uint64_t due_usec, const char *error)
{
    SpoolOp *op = op_new(type, s->main);
    if (!op)
        return -ENOMEM;
    op->id = id;
    op->due_usec = due_usec;
    spool_copy_id(op->job.job_id, sizeof(op->job.job_id), job_id);
    spool_copy_id(op->job.last_error, sizeof(op->job.last_error), error);
    spool_ask(s, op);
    return 0;
}

int spool_delivered(Spool *s, int64_t id, const char *job_id)
{
    return spool_write(s, OP_DELIVERED, id, job_id, 0, NULL);
}

int spool_retry_later(Spool *s, int64_t id, const char *job_id, uint64_t due_usec,
                      const char *error)
{
    return spool_write(s, OP_RETRY, id, job_id, due_usec, error);
}

int spool_dead(Spool *s, int64_t id, const char *job_id, const char *error)
{
    return spool_write(s, OP_DEAD, id, job_id, 0, error);
}

int spool_forget(Spool *s, const char *job_id)
{
    SpoolOp *op = op_new(OP_FORGET, s->main);
    if (!op)
        return -ENOMEM;
    spool_copy_id(op->job.job_id, sizeof(op->job.job_id), job_id);
    char *id = strdup(job_id); /* NULL: "unknown", which skips every job of a fetch once */
    pthread_mutex_lock(&s->lock);
    char **slot = &s->forgotten[s->forget_seq++ % SPOOL_FORGET_RING];
    free(*slot);
    *slot = id;
    pthread_mutex_unlock(&s->lock);
    spool_ask(s, op);
    return 0;
}

uint64_t spool_forget_seq(Spool *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t seq = s->forget_seq;
    pthread_mutex_unlock(&s->lock);
    return seq;
}

bool spool_forgotten_since(Spool *s, uint64_t seq, const char *job_id)
{
    pthread_mutex_lock(&s->lock);
    bool found = s->forget_seq - seq > SPOOL_FORGET_RING;
    for (uint64_t i = seq; i < s->forget_seq && !found; i++) {
        const char *id = s->forgotten[i % SPOOL_FORGET_RING];
        found = !id || strcmp(id, job_id) == 0;
    }
    pthread_mutex_unlock(&s->lock);
    return found;
}

void spool_state(Spool *s, SpoolState *ret)
{
    pthread_mutex_lock(&s->lock);
    *ret = s->state;
    pthread_mutex_unlock(&s->lock);
}

SpoolPort *spool_main_port(Spool *s)
{
    return s->main;
}

bool spool_job_held(Spool *s, const char *job_id)
{
    if (relaxed_load_size(&s->n_held) == 0)
        return false;
    pthread_mutex_lock(&s->lock);
    bool held = s->n_held > 0 &&
                bsearch(&job_id, s->held, s->n_held, sizeof(char *), spool_compare_ids) != NULL;
    pthread_mutex_unlock(&s->lock);
    return held;
}
