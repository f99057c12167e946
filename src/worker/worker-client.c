/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "clock.h"
#include "hash.h"
#include "log.h"
#include "macro.h"
#include "worker-internal.h"

/* On the joiner's loop: the result of another loop's call one of its requests joined. */
static void on_inbox(MailboxReceiver *r, MailboxMessage *m)
{
    Worker *w = container_of(r, Worker, inbox);
    RemoteResult *x = container_of(m, RemoteResult, link);
    w->n_remote--;
    worker_waiters_sub(w, 1);
    x->done(&x->result, x->userdata);
    free(x);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Worker *, worker_free);

/* At most WORKER_MAX_CONNECTIONS transfers at once (worker_slot_take keeps that over every loop),
 * one request at a time on each connection; keep_idle connections kept open between them. */
static int multi_setup(CURLM *multi, long max_connections, long keep_idle)
{
    if (curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, max_connections) != CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, max_connections) != CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, keep_idle) != CURLM_OK ||
        curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_NOTHING) != CURLM_OK)
        return -EINVAL;
    return 0;
}

int worker_new(sd_event *e, Mailbox *mailbox, const Config *c, Metrics *metrics,
               WorkerShared *shared, Worker **ret)
{
    assert(e);
    assert(mailbox);
    assert(c);
    assert(metrics);
    assert(shared);
    assert(ret);

    _cleanup_(worker_freep) Worker *w = calloc(1, sizeof(*w));
    if (!w)
        return -ENOMEM;
    w->event = sd_event_ref(e);
    w->config = c;
    w->metrics = metrics;
    w->shared = shared;
    mailbox_receiver_init(&w->inbox, mailbox, on_inbox);
    int r = curl_event_init(&w->curl, e, worker_on_transfer_done, w);
    if (r < 0)
        return r;
    w->url = curl_url();
    if (!w->url)
        return -ENOMEM;
    if (curl_url_set(w->url, CURLUPART_URL, c->worker_enqueue, 0) != CURLUE_OK)
        return -EINVAL;
    /* WORKER_MAX_CONNECTIONS shared out when each loop gets one or more (the first ones the
     * remainder); else one count for all (max_own 0) */
    unsigned index = relaxed_fetch_add_uint(&shared->n_workers, 1);
    if (shared->max_active >= shared->n_loops)
        w->max_own = shared->max_active / shared->n_loops +
                     (index % shared->n_loops < shared->max_active % shared->n_loops);
    r = multi_setup(w->curl.multi, (long)(w->max_own ? w->max_own : shared->max_active),
                    (long)(w->max_own ? w->max_own : shared->connections_each));
    if (r < 0)
        return r;
    *ret = TAKE_PTR(w);
    return 0;
}

Worker *worker_free(Worker *w)
{
    if (!w)
        return NULL;
    while (w->calls)
        worker_call_free(w->calls);
    for (MailboxMessage *m = mailbox_receiver_done(&w->inbox), *next; m; m = next) {
        next = m->next;
        free(container_of(m, RemoteResult, link));
    }
    while (w->n_easy_pool > 0)
        curl_easy_cleanup(w->easy_pool[--w->n_easy_pool]);
    curl_event_done(&w->curl);
    curl_url_cleanup(w->url);
    sd_event_unref(w->event);
    free(w);
    return NULL;
}

void worker_cancel_all(Worker *w)
{
    while (w->calls) {
        WorkerCall *c = w->calls;
        snprintf(c->errbuf, sizeof(c->errbuf), "cancelled by shutdown");
        worker_call_finish(c, WORKER_UNREACHABLE, 0, CURLE_ABORTED_BY_CALLBACK);
    }
}

unsigned worker_in_flight(const Worker *w)
{
    return relaxed_load_uint(&w->n_calls);
}

size_t worker_pending_jobs(const Worker *w)
{
    return relaxed_load_size(&w->shared->n_waiters);
}

unsigned worker_queued_calls(const Worker *w)
{
    return relaxed_load_uint(&w->n_queued);
}

size_t worker_release_idle(Worker *w)
{
    if (w->n_calls > 0)
        return 0;
    size_t n = w->n_easy_pool;
    while (w->n_easy_pool > 0)
        curl_easy_cleanup(w->easy_pool[--w->n_easy_pool]);
    return n;
}
