/* SPDX-License-Identifier: MIT */
#include "loop.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "atomics.h"
#include "event-timer.h"
#include "log.h"
#include "macro.h"

#ifdef __SANITIZE_ADDRESS__
/* libh2o keeps freed buffers and pool chunks for reuse in per-thread lists (its
 * h2o_socket_buffer_prototype and memory pool allocator are __thread) and never frees them: when
 * a loop's thread ends, LeakSanitizer sees them as leaked. They are bounded (16 a list) and
 * gone with the process. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:h2o_mem_alloc_recycle\n";
}
#endif

#ifdef __SANITIZE_THREAD__
/* libuv closes its sockets with syscall(SYS_close), which ThreadSanitizer does not see: when
 * another loop's thread then opens the same number (GET /metrics walking /proc/self/fd), TSan
 * takes the closed socket's last read and the new open for a race on the descriptor. */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
    return "race:count_fds\n";
}
#endif

/* How often a loop looks whether it has been quiet (then gives memory back), as STATUS= does. */
#define QUIET_INTERVAL_USEC (5 * 1000000ULL)

/* Tells the manager that this loop drained (or ended): once, as drained never turns back. */
static void tell_manager_drained(Loop *l)
{
    if (!acq_rel_exchange_bool(&l->drained_told, true))
        mailbox_post(l->shared->drained_to, &l->drained_msg);
}

void loop_check_drained(Loop *l)
{
    if (!l->stopping || loop_drained(l) || api_pending(l->api) > 0 || l->server.n_conns > 0 ||
        worker_in_flight(l->worker) > 0)
        return;
    release_store_bool(&l->drained, true);
    tell_manager_drained(l);
    if (l->own_thread)
        (void)sd_event_exit(l->event, 0);
}

static void on_conn_change(Server *s, void *userdata)
{
    (void)s;
    loop_check_drained(userdata);
}

/* At the cap a connection closed here: a loop whose listener is paused may take one now. */
static void on_slot_free(Server *s, void *userdata)
{
    (void)s;
    Loop *l = userdata;
    for (size_t i = 0; i < l->shared->n_loops; i++) {
        Loop *other = l->shared->loops[i];
        if (other != l && seq_cst_load_bool(&other->server.paused))
            loop_request(other, LOOP_RESUME);
    }
}

/* A connection to the worker freed on a loop: loops with calls queued take it (worker_pump). */
void loop_on_worker_slot_free(Worker *w, void *userdata)
{
    LoopShared *sh = userdata;
    for (size_t i = 0; i < sh->n_loops; i++) {
        Loop *other = sh->loops[i];
        if (other->worker != w && worker_queued_calls(other->worker) > 0)
            loop_request(other, LOOP_PUMP);
    }
}

/* A POST /enqueue that waited for the worker (or the spool) is done. */
static void on_pending_end(void *userdata)
{
    loop_check_drained(userdata);
}

static void loop_begin_drain(Loop *l)
{
    if (l->stopping)
        return;
    l->stopping = true;
    uv_event_sync(&l->uv);
    server_drain(&l->server);
    loop_check_drained(l);
}

/* The message is off the mailbox's list before this runs: a request from now on posts it again,
 * one from before is in `what`. */
static void on_control(MailboxReceiver *r, MailboxMessage *m)
{
    (void)m;
    Loop *l = container_of(r, Loop, control);
    unsigned what = acq_rel_exchange_uint(&l->requests, 0);
    if (what & LOOP_DRAIN)
        loop_begin_drain(l);
    if (what & LOOP_CANCEL) {
        worker_cancel_all(l->worker);
        loop_check_drained(l);
    }
    if (what & LOOP_PUMP)
        worker_pump(l->worker);
    if (what & LOOP_RESUME) {
        uv_event_sync(&l->uv);
        server_resume(&l->server);
    }
    if ((what & LOOP_EXIT) && l->own_thread)
        (void)sd_event_exit(l->event, 0);
}

void loop_request(Loop *l, LoopRequest what)
{
    if (acq_rel_fetch_or_uint(&l->requests, (unsigned)what) == 0)
        mailbox_post(&l->control, &l->control_msg);
}

/* After a burst the heap keeps what it held at the peak (pooled curl handles, freed buffers):
 * a whole interval without jobs gives it back to the system, once. */
static int on_quiet_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    Loop *l = userdata;
    uint64_t events = metrics_status_events(&l->metrics);
    bool quiet = events == l->events_at_tick;
    l->events_at_tick = events;
    if (!quiet)
        l->memory_released = false;
    else if (!l->memory_released && !l->stopping && api_pending(l->api) == 0 &&
             worker_in_flight(l->worker) == 0) {
        size_t handles = worker_release_idle(l->worker);
        /* One heap for the process: the main thread's loop gives it back (malloc_trim() walks
         * every arena; and under ThreadSanitizer, whose allocator it is not, only the main
         * thread may call it). */
        int trimmed = l->index == 0 ? malloc_trim(0) : 0;
        if (handles > 0 || trimmed)
            log_debug(NULL, NULL, "loop %u quiet: released %zu pooled worker handle(s)%s", l->index,
                      handles, trimmed ? ", returned free heap memory to the system" : "");
        l->memory_released = true;
    }
    (void)sd_event_source_set_time(s, usec + QUIET_INTERVAL_USEC);
    return 0;
}

static int on_heartbeat(sd_event_source *s, uint64_t usec, void *userdata)
{
    Loop *l = userdata;
    relaxed_add_u64(&l->heartbeat, 1);
    (void)sd_event_source_set_time(s, usec + l->shared->heartbeat_usec);
    return 0;
}

static int on_post(sd_event_source *s, void *userdata)
{
    (void)s, (void)userdata;
    log_flush();
    return 0;
}

/* GET /metrics and STATUS=: every loop's counters, and the gauges of the moment. */
static void loop_collect(Metrics *ret_sum, MetricsGauges *g, void *userdata)
{
    const LoopShared *sh = ((Loop *)userdata)->shared;
    g->n_loops = sh->n_loops < METRICS_LOOPS_MAX ? sh->n_loops : METRICS_LOOPS_MAX;
    for (size_t i = 0; i < sh->n_loops; i++) {
        const Loop *l = sh->loops[i];
        metrics_sum(ret_sum, &l->metrics);
        g->in_flight += loop_pending(l);
        g->connections += loop_connections(l);
        g->calls_queued += worker_queued_calls(l->worker);
        if (i < METRICS_LOOPS_MAX)
            g->loop_connections[i] = relaxed_load_u64(&l->metrics.connections_accepted);
    }
}

static int add_timer(Loop *l, sd_event_source **ret, uint64_t usec, sd_event_time_handler_t cb,
                     const char *name)
{
    return event_add_timer(l->event, ret, usec, usec / 10, cb, l, name);
}

/* The mailbox (a loop's own, or the main thread's) and loop control on it, the log flush after
 * each iteration, and the timers. */
static int loop_setup_sources(Loop *l)
{
    int r;
    if (l->own_thread) {
        r = mailbox_init(&l->own_mailbox, l->event, "loop-mailbox");
        if (r < 0)
            return r;
        l->mailbox = &l->own_mailbox;
    } else
        l->mailbox = l->shared->main_mailbox;
    mailbox_receiver_init(&l->control, l->mailbox, on_control);
    r = sd_event_add_post(l->event, &l->log_flush, on_post, l);
    if (r < 0)
        return r;
    (void)sd_event_source_set_description(l->log_flush, "log-flush");
    r = add_timer(l, &l->quiet_timer, QUIET_INTERVAL_USEC, on_quiet_timer, "quiet");
    if (r < 0)
        return r;
    return add_timer(l, &l->heartbeat_timer, l->shared->heartbeat_usec, on_heartbeat, "heartbeat");
}

/* The HTTP side (libuv, h2o), the worker client, the way to the spool and the handlers. */
static int loop_setup_server(Loop *l)
{
    const LoopShared *sh = l->shared;
    int r = uv_event_attach(&l->uv, l->event);
    if (r < 0)
        return r;
    r = server_init(&l->server, &(const ServerSettings){
                                    .config = sh->config,
                                    .loop = &l->uv.loop,
                                    .event = l->event,
                                    .total_conns = &l->shared->total_conns,
                                    .large_bodies = &l->shared->large_bodies,
                                    .n_loops = sh->n_loops,
                                    .metrics = &l->metrics,
                                    .on_conn_change = on_conn_change,
                                    .on_slot_free = on_slot_free,
                                    .userdata = l,
                                });
    if (r < 0)
        return r;
    r = worker_new(l->event, l->mailbox, sh->config, &l->metrics, &l->shared->worker, &l->worker);
    if (r < 0)
        return r;
    if (sh->spool) {
        if (l->index == 0)
            l->spool_port = spool_main_port(sh->spool);
        else {
            r = spool_port_new(sh->spool, l->mailbox, &l->spool_port);
            if (r < 0)
                return r;
        }
    }
    l->api = routes_register(l->server.pathconf,
                             &(const ApiSettings){
                                 .config = sh->config,
                                 .api_token = sh->api_token,
                                 .worker = l->worker,
                                 .spool = sh->spool,
                                 .spool_port = l->spool_port,
                                 .collect = loop_collect,
                                 .metrics = &l->metrics,
                                 .loop = &l->uv.loop,
                                 .started_monotonic_usec = sh->started_monotonic_usec,
                                 .started_realtime_usec = sh->started_realtime_usec,
                                 .on_pending_end = on_pending_end,
                                 .batch_bytes = &l->shared->batch_bytes,
                                 .userdata = l,
                             });
    return 0;
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Loop *, loop_free);

int loop_new(LoopShared *shared, unsigned index, sd_event *e, Loop **ret)
{
    assert(shared);
    assert(ret);

    _cleanup_(loop_freep) Loop *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->own_mailbox.fd = -EBADF;
    l->index = index;
    l->shared = shared;
    int r;
    if (index == 0)
        l->event = sd_event_ref(e);
    else {
        l->own_thread = true;
        r = sd_event_new(&l->event);
        if (r < 0)
            return r;
    }
    r = loop_setup_sources(l);
    if (r < 0)
        return r;
    r = loop_setup_server(l);
    if (r < 0)
        return r;
    *ret = TAKE_PTR(l);
    return 0;
}

int loop_listen(Loop *l, const ListenFds *fds)
{
    return server_listen(&l->server, fds);
}

static void *loop_thread(void *userdata)
{
    Loop *l = userdata;
    int r = sd_event_loop(l->event);
    if (r < 0)
        log_error(NULL, NULL, "event loop %u failed: %s", l->index, strerror(-r));
    /* Whatever ended it, the manager should not wait for this loop. */
    release_store_bool(&l->drained, true);
    tell_manager_drained(l);
    return NULL;
}

int loop_start(Loop *l)
{
    assert(l->own_thread);
    int r = -pthread_create(&l->thread, NULL, loop_thread, l);
    if (r < 0)
        return r;
    l->thread_started = true;
    return 0;
}

void loop_join(Loop *l)
{
    if (l && l->thread_started) {
        pthread_join(l->thread, NULL);
        l->thread_started = false;
    }
}

Loop *loop_free(Loop *l)
{
    if (!l)
        return NULL;
    assert(!l->thread_started);
    l->worker = worker_free(l->worker);
    l->spool_port = NULL; /* the spool's (spool_free) */
    if (l->uv.event)
        uv_event_sync(&l->uv);
    server_done(&l->server);
    uv_event_detach(&l->uv);
    (void)mailbox_receiver_done(&l->control); /* its one message is l's */
    sd_event_source_disable_unref(l->heartbeat_timer);
    sd_event_source_disable_unref(l->quiet_timer);
    sd_event_source_disable_unref(l->log_flush);
    mailbox_done(&l->own_mailbox);
    sd_event_unref(l->event);
    free(l);
    return NULL;
}

size_t loop_connections(const Loop *l)
{
    return relaxed_load_size(&l->server.n_conns);
}

unsigned loop_pending(const Loop *l)
{
    return l->api ? api_pending(l->api) : 0;
}

bool loop_drained(const Loop *l)
{
    return acquire_load_bool(&l->drained);
}

uint64_t loop_heartbeat(const Loop *l)
{
    return relaxed_load_u64(&l->heartbeat);
}

bool loop_busy(const Loop *l)
{
    return loop_pending(l) > 0 || worker_in_flight(l->worker) > 0;
}
