/* SPDX-License-Identifier: MIT */
#include "manager.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "event-timer.h"
#include "heartbeat.h"
#include "log.h"
#include "macro.h"

#define STATUS_INTERVAL_USEC (5 * 1000000ULL)
#define IDLE_CHECK_USEC (1000000ULL)

/* Requests waiting for the worker or the spool, over every loop: the drain waits for them. */
static unsigned manager_pending(const Manager *m)
{
    unsigned n = 0;
    for (size_t i = 0; i < m->n_loops; i++)
        n += loop_pending(m->loops[i]);
    return n;
}

static size_t manager_connections(const Manager *m)
{
    size_t n = 0;
    for (size_t i = 0; i < m->n_loops; i++)
        n += loop_connections(m->loops[i]);
    return n;
}

static void manager_sum_metrics(const Manager *m, Metrics *ret)
{
    *ret = (Metrics){0};
    for (size_t i = 0; i < m->n_loops; i++)
        metrics_sum(ret, &m->loops[i]->metrics);
}

static void manager_notify_status(Manager *m)
{
    Metrics mt;
    manager_sum_metrics(m, &mt);
    const char *worker = !mt.worker_seen       ? "not yet contacted"
                         : mt.worker_answering ? "answering"
                                               : "not answering";
    char spooled[64] = "";
    if (m->shared.spool) {
        SpoolState st;
        spool_state(m->shared.spool, &st);
        if (st.up && st.stats.held > 0)
            snprintf(spooled, sizeof(spooled), "; %llu spooled, %llu held",
                     (unsigned long long)st.stats.jobs, (unsigned long long)st.stats.held);
        else if (st.up)
            snprintf(spooled, sizeof(spooled), "; %llu spooled", (unsigned long long)st.stats.jobs);
        else
            snprintf(spooled, sizeof(spooled), "; spool unavailable");
    }
    if (m->stopping)
        sd_notifyf(false, "STATUS=Draining: %u request(s) in flight%s", manager_pending(m),
                   spooled);
    else
        sd_notifyf(false,
                   "STATUS=Serving on %s; %llu enqueued, %llu queued, %llu failed, %llu rejected; "
                   "worker %s%s",
                   m->listen_desc, (unsigned long long)mt.jobs_enqueued,
                   (unsigned long long)mt.spool_queued, (unsigned long long)mt.jobs_failed,
                   (unsigned long long)mt.requests_rejected, worker, spooled);
    m->status_sent_events = metrics_status_events(&mt) + (m->shared.spool ? mt.spool_delivered : 0);
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    Manager *m = userdata;
    Metrics mt;
    manager_sum_metrics(m, &mt);
    if (metrics_status_events(&mt) + (m->shared.spool ? mt.spool_delivered : 0) !=
        m->status_sent_events)
        manager_notify_status(m);
    (void)sd_event_source_set_time(s, usec + STATUS_INTERVAL_USEC);
    return 0;
}

/* WATCHDOG=1 only while every loop's heartbeat moves (heartbeat.h): a loop stuck in a callback
 * stops the pings, and systemd restarts the service after WatchdogSec=. */
static int on_watchdog_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    Manager *m = userdata;
    uint64_t beats[CONFIG_THREADS_MAX];
    bool finished[CONFIG_THREADS_MAX];
    for (size_t i = 0; i < m->n_loops; i++) {
        beats[i] = loop_heartbeat(m->loops[i]);
        finished[i] = loop_drained(m->loops[i]);
    }
    size_t stuck = heartbeat_stuck(beats, finished, m->heartbeats, m->n_loops);
    if (stuck == 0)
        (void)sd_notify(false, "WATCHDOG=1");
    else
        log_warn(NULL, NULL, "%zu event loop(s) did not run for %llus: watchdog not pinged", stuck,
                 (unsigned long long)(m->watchdog_usec / 2000000));
    (void)sd_event_source_set_time(s, usec + m->watchdog_usec / 2);
    return 0;
}

static bool manager_all_drained(const Manager *m)
{
    for (size_t i = 0; i < m->n_loops; i++)
        if (!loop_drained(m->loops[i]))
            return false;
    return true;
}

static void manager_check_drained(Manager *m)
{
    if (m->stopping && manager_all_drained(m) &&
        (!m->delivery || spool_delivery_in_flight(m->delivery) == 0))
        (void)sd_event_exit(m->event, 0);
}

/* A loop drained (or ended). */
static void on_loop_drained(MailboxReceiver *r, MailboxMessage *msg)
{
    (void)msg;
    manager_check_drained(container_of(r, Manager, drained));
}

static void manager_request_all(Manager *m, LoopRequest what)
{
    for (size_t i = 0; i < m->n_loops; i++)
        loop_request(m->loops[i], what);
}

static int on_final_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)s, (void)usec;
    Manager *m = userdata;
    log_warn(MSGID_STOPPED, NULL,
             "%zu connection(s) still open after the shutdown timeout; exiting",
             manager_connections(m));
    manager_request_all(m, LOOP_EXIT);
    return sd_event_exit(m->event, 0);
}

/* The drain took too long: the requests still waiting get their answer now (503, or spooled),
 * and a second later the process exits whatever is left. */
static int on_shutdown_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)s, (void)usec;
    Manager *m = userdata;
    log_warn(MSGID_STOPPED, NULL,
             "shutdown timeout of %us reached with %u request(s) waiting on the worker; "
             "answering them now (spooled, or 503 without a spool)",
             m->config.shutdown_timeout_sec, manager_pending(m));
    manager_request_all(m, LOOP_CANCEL);
    if (sd_event_add_time_relative(m->event, &m->final_timer, CLOCK_MONOTONIC, 1000000, 1000,
                                   on_final_timeout, m) < 0) {
        manager_request_all(m, LOOP_EXIT);
        return sd_event_exit(m->event, 0);
    }
    (void)sd_event_source_set_description(m->final_timer, "shutdown-final");
    return 0;
}

static void manager_begin_shutdown(Manager *m, const char *why)
{
    if (m->stopping)
        return;
    m->stopping = true;
    m->idle_timer = sd_event_source_disable_unref(m->idle_timer);
    if (m->delivery)
        spool_delivery_stop(m->delivery);
    (void)sd_notify(false, "STOPPING=1");
    manager_notify_status(m);
    log_info(MSGID_STOPPING, NULL, "%s: stopping, draining %u in-flight request(s)", why,
             manager_pending(m));
    manager_request_all(m, LOOP_DRAIN);
    int r = sd_event_add_time_relative(m->event, &m->shutdown_timer, CLOCK_MONOTONIC,
                                       (uint64_t)m->config.shutdown_timeout_sec * 1000000ULL, 1000,
                                       on_shutdown_timeout, m);
    if (r >= 0)
        (void)sd_event_source_set_description(m->shutdown_timer, "shutdown-timeout");
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
    (void)s;
    manager_begin_shutdown(userdata, si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
    return 0;
}

/* Jobs wait in the spool: the service stays up to deliver them. Held ones do not count: they
 * wait for an operator, not for the service (releasing one makes spool.pending, which starts
 * the service again). */
static bool manager_spool_holds_jobs(Manager *m)
{
    if (!m->shared.spool)
        return false;
    SpoolState st;
    spool_state(m->shared.spool, &st);
    return st.stats.jobs > 0 || !st.up; /* unreadable now: it may well hold some */
}

static bool manager_idle(Manager *m)
{
    if (manager_connections(m) > 0 || manager_spool_holds_jobs(m) ||
        (m->delivery && spool_delivery_in_flight(m->delivery) > 0))
        return false;
    for (size_t i = 0; i < m->n_loops; i++)
        if (loop_busy(m->loops[i]))
            return false;
    return true;
}

/* IDLE_EXIT_SEC counts from the moment the last connection of every loop closed (looked at
 * every second); only when systemd owns the socket, since nobody would start us again
 * otherwise. */
static int on_idle_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    Manager *m = userdata;
    uint64_t now = clock_usec(CLOCK_MONOTONIC);
    if (!manager_idle(m))
        m->idle_since_usec = 0;
    else if (m->idle_since_usec == 0)
        m->idle_since_usec = now;
    else if (now - m->idle_since_usec >= (uint64_t)m->config.idle_exit_sec * 1000000ULL) {
        log_info(MSGID_IDLE_EXIT, NULL, "no connection for %us, exiting until the next one",
                 m->config.idle_exit_sec);
        manager_begin_shutdown(m, "idle");
        return 0;
    }
    (void)sd_event_source_set_time(s, usec + IDLE_CHECK_USEC);
    return 0;
}

static void on_spool_notice(SpoolNoticeKind kind, const char *text, const char *why, void *userdata)
{
    (void)userdata;
    switch (kind) {
    case SPOOL_NOTICE_UNAVAILABLE:
        log_error(MSGID_SPOOL_UNAVAILABLE, LOG_FIELDS(.error = text),
                  "spool unavailable, jobs the worker cannot take now are answered with an "
                  "error: %s",
                  text);
        break;
    case SPOOL_NOTICE_AVAILABLE:
        log_info(MSGID_SPOOL_UNAVAILABLE, NULL, "spool in %s takes jobs again", text);
        break;
    case SPOOL_NOTICE_MOVED_ASIDE:
        log_error(MSGID_SPOOL_CORRUPT, LOG_FIELDS(.error = why),
                  "corrupt spool moved aside to %s (%s); a fresh spool is used, the jobs in the "
                  "old one were not delivered",
                  text, why ? why : "unreadable");
        break;
    case SPOOL_NOTICE_WRITE_FAILED:
        log_error(MSGID_SPOOL_UNAVAILABLE, LOG_FIELDS(.error = text),
                  "spool: a delivery's record was not written (%s); the job stays and will be "
                  "delivered again",
                  text);
        break;
    case SPOOL_NOTICE_REPLACED:
        if (text[0])
            log_error(MSGID_SPOOL_REPLACED, NULL,
                      "spool.sqlite was removed or replaced while in use; the old file's "
                      "write-ahead log is kept at %s; the spool was opened again, and jobs are "
                      "spooled into it from now on (those being written then included)",
                      text);
        else
            log_error(MSGID_SPOOL_REPLACED, NULL,
                      "spool.sqlite was removed or replaced while in use; the spool was opened "
                      "again, and jobs are spooled into it from now on (those being written then "
                      "included)");
        break;
    case SPOOL_NOTICE_CHANGED:
        log_info(NULL, NULL, "spool changed by another process (the spool command): %s", text);
        break;
    }
}

/* After every group the spool committed: new jobs to deliver. */
static void on_spool_changed(void *userdata)
{
    Manager *m = userdata;
    if (m->delivery)
        spool_delivery_changed(m->delivery);
}

/* A delivery from the spool ended: the drain may be over. */
static void on_delivery_end(void *userdata)
{
    Manager *m = userdata;
    loop_check_drained(m->loops[0]);
    manager_check_drained(m);
}

/* A private loop, not sd_event_default(): the default one checks its thread with a gettid()
 * system call on every iteration. SIGTERM and SIGINT start the drain; they are blocked before
 * any loop's thread starts, so those inherit the mask and only this loop sees them. */
static int manager_setup_event(Manager *m)
{
    int r = sd_event_new(&m->event);
    if (r < 0)
        return r;
    /* the main thread's mailbox: the manager's, the first loop's, the spool's main port's and
     * the log queues' wake-ups */
    r = mailbox_init(&m->mailbox, m->event, "main-mailbox");
    if (r < 0)
        return r;
    mailbox_receiver_init(&m->drained, &m->mailbox, on_loop_drained);
    log_attach_loop(m->event, &m->mailbox);
    signal(SIGPIPE, SIG_IGN);
    r = sd_event_add_signal(m->event, &m->sigterm, SIGTERM | SD_EVENT_SIGNAL_PROCMASK, on_signal,
                            m);
    if (r < 0)
        return r;
    r = sd_event_add_signal(m->event, &m->sigint, SIGINT | SD_EVENT_SIGNAL_PROCMASK, on_signal, m);
    if (r < 0)
        return r;
    return 0;
}

/* The spool and its delivery (on the first loop), when SPOOL_DIR (or the unit's
 * StateDirectory=) names one. */
static int manager_setup_spool(Manager *m)
{
    if (!m->config.spool_dir)
        return 0;
    return spool_new(&m->mailbox, m->config.spool_dir, m->config.spool_max_jobs,
                     m->config.max_pending_jobs,
                     &(const SpoolCallbacks){
                         .notice = on_spool_notice,
                         .changed = on_spool_changed,
                         .userdata = m,
                     },
                     &m->shared.spool);
}

static int manager_setup_delivery(Manager *m)
{
    if (!m->shared.spool)
        return 0;
    return spool_delivery_new(
        &(const SpoolDeliverySettings){
            .event = m->event,
            .spool = m->shared.spool,
            .worker = m->loops[0]->worker,
            .metrics = &m->loops[0]->metrics,
            .config = &m->config,
            .on_delivery_end = on_delivery_end,
            .userdata = m,
        },
        &m->delivery);
}

static int manager_setup_loops(Manager *m)
{
    m->n_loops = m->config.threads ? m->config.threads : 1;
    m->loops = calloc(m->n_loops, sizeof(Loop *));
    m->heartbeats = calloc(m->n_loops, sizeof(uint64_t));
    if (!m->loops || !m->heartbeats)
        return -ENOMEM;
    m->shared = (LoopShared){
        .config = &m->config,
        .api_token = m->api_token,
        .spool = m->shared.spool,
        .started_monotonic_usec = clock_usec(CLOCK_MONOTONIC),
        .started_realtime_usec = clock_usec(CLOCK_REALTIME),
        .loops = m->loops,
        .n_loops = m->n_loops,
        .main_mailbox = &m->mailbox,
        .drained_to = &m->drained,
    };
    /* Each loop beats several times between two looks of the watchdog (every WatchdogSec/2), so
     * that a loop that runs is never taken for a stuck one. */
    if (sd_watchdog_enabled(false, &m->watchdog_usec) <= 0)
        m->watchdog_usec = 0;
    m->shared.heartbeat_usec =
        m->watchdog_usec && m->watchdog_usec / 8 < 1000000 ? m->watchdog_usec / 8 : 1000000;
    worker_shared_init(&m->shared.worker, &m->config, (unsigned)m->n_loops);
    if (m->n_loops > 1) {
        m->shared.worker.on_slot_free = loop_on_worker_slot_free;
        m->shared.worker.userdata = &m->shared;
    }
    for (size_t i = 0; i < m->n_loops; i++) {
        int r = loop_new(&m->shared, (unsigned)i, m->event, &m->loops[i]);
        if (r < 0)
            return r;
    }
    return 0;
}

static int manager_setup_timers(Manager *m)
{
    int r = event_add_timer(m->event, &m->status_timer, STATUS_INTERVAL_USEC, 100000,
                            on_status_timer, m, "status");
    if (r < 0 || m->watchdog_usec == 0)
        return r;
    return event_add_timer(m->event, &m->watchdog_timer, m->watchdog_usec / 2,
                           m->watchdog_usec / 20, on_watchdog_timer, m, "watchdog");
}

int manager_new(Config *config, char *api_token, Manager **ret)
{
    assert(config);
    assert(ret);

    _cleanup_free_ char *token = api_token;
    _cleanup_(manager_freep) Manager *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->mailbox.fd = -EBADF;
    m->config = *config;
    *config = (Config){0};
    m->api_token = TAKE_PTR(token);

    int r = manager_setup_event(m);
    if (r < 0)
        return r;
    r = manager_setup_spool(m);
    if (r < 0)
        return r;
    r = manager_setup_loops(m);
    if (r < 0)
        return r;
    r = manager_setup_delivery(m);
    if (r < 0)
        return r;
    r = manager_setup_timers(m);
    if (r < 0)
        return r;
    *ret = TAKE_PTR(m);
    return 0;
}

int manager_listen(Manager *m)
{
    ListenFds fds;
    int n = listen_fds_collect(&fds, m->config.port);
    if (n < 0)
        return n;
    m->socket_activated = fds.socket_activated;
    for (size_t i = 0; i < m->n_loops; i++) {
        int r = loop_listen(m->loops[i], &fds);
        if (r < 0) {
            listen_fds_done(&fds);
            return r;
        }
    }
    listen_fds_done(&fds); /* each loop has its own descriptors of the sockets */
    server_describe(&m->loops[0]->server, m->listen_desc, sizeof(m->listen_desc));
    if (m->config.idle_exit_sec > 0 && m->socket_activated) {
        int r = sd_event_add_time_relative(m->event, &m->idle_timer, CLOCK_MONOTONIC,
                                           IDLE_CHECK_USEC, 100000, on_idle_timer, m);
        if (r < 0)
            return r;
        (void)sd_event_source_set_enabled(m->idle_timer, SD_EVENT_ON);
        (void)sd_event_source_set_description(m->idle_timer, "idle-exit");
    }
    return n;
}

int manager_run(Manager *m)
{
    for (size_t i = 1; i < m->n_loops; i++) {
        int r = loop_start(m->loops[i]);
        if (r < 0)
            return r;
    }
    log_info(MSGID_STARTED, LOG_FIELDS(.worker_url = m->config.worker_url),
             "argus-orchestrator listening on %s with %zu event loop(s), forwarding to %s%s%s",
             m->listen_desc, m->n_loops, m->config.worker_enqueue,
             m->shared.spool ? ", spooling in " : "", m->shared.spool ? m->config.spool_dir : "");
    (void)sd_notify(false, "READY=1");
    manager_notify_status(m);
    log_set_buffered(true);
    int r = sd_event_loop(m->event);
    log_set_buffered(false);
    /* Every loop leaves its event loop now, drained or not. */
    manager_request_all(m, LOOP_EXIT);
    for (size_t i = 1; i < m->n_loops; i++)
        loop_join(m->loops[i]);
    if (r < 0)
        return r;
    Metrics mt;
    manager_sum_metrics(m, &mt);
    log_info(MSGID_STOPPED, NULL, "stopped: %llu enqueued, %llu queued, %llu failed",
             (unsigned long long)mt.jobs_enqueued, (unsigned long long)mt.spool_queued,
             (unsigned long long)mt.jobs_failed);
    return 0;
}

Manager *manager_free(Manager *m)
{
    if (!m)
        return NULL;
    /* Every loop's worker first (its calls end without calling back), then the delivery that
     * waited on the first one's, then the spool (its thread finishes what was asked, then its
     * ports go: the loops' sd-events are still there), then the loops. */
    bool shared_init = m->loops != NULL;
    m->shared.worker.on_slot_free = NULL;
    for (size_t i = 0; m->loops && i < m->n_loops; i++) {
        loop_join(m->loops[i]);
        if (m->loops[i])
            m->loops[i]->worker = worker_free(m->loops[i]->worker);
    }
    m->delivery = spool_delivery_free(m->delivery);
    m->shared.spool = spool_free(m->shared.spool);
    (void)mailbox_receiver_done(&m->drained); /* the messages are the loops' */
    for (size_t i = 0; m->loops && i < m->n_loops; i++)
        m->loops[i] = loop_free(m->loops[i]);
    free(m->loops);
    free(m->heartbeats);
    if (shared_init)
        worker_shared_done(&m->shared.worker);
    sd_event_source_disable_unref(m->sigterm);
    sd_event_source_disable_unref(m->sigint);
    sd_event_source_disable_unref(m->shutdown_timer);
    sd_event_source_disable_unref(m->final_timer);
    sd_event_source_disable_unref(m->idle_timer);
    sd_event_source_disable_unref(m->status_timer);
    sd_event_source_disable_unref(m->watchdog_timer);
    if (m->event)
        log_detach_event(); /* before the mailbox it wakes the loop through */
    mailbox_done(&m->mailbox);
    sd_event_unref(m->event);
    config_done(&m->config);
    free(m->api_token);
    free(m);
    return NULL;
}
