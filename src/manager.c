/* SPDX-License-Identifier: MIT */
#include "manager.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"
#include "macro.h"
#include "routes.h"

#define STATUS_INTERVAL_USEC (5 * 1000000ULL)

static void manager_notify_status(Manager *m)
{
    const Metrics *mt = &m->metrics;
    const char *worker = !mt->worker_seen       ? "not yet contacted"
                         : mt->worker_answering ? "answering"
                                                : "not answering";
    char spooled[64] = "";
    if (m->spool) {
        SpoolState st;
        spool_state(m->spool, &st);
        if (st.up)
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
                   m->listen_desc, (unsigned long long)mt->jobs_enqueued,
                   (unsigned long long)mt->spool_queued, (unsigned long long)mt->jobs_failed,
                   (unsigned long long)mt->requests_rejected, worker, spooled);
    m->status_sent_events = metrics_status_events(mt);
}

/* After a burst the heap keeps what it held at the peak (pooled curl handles, freed buffers):
 * a whole status interval without jobs gives it back to the system, once. */
static void manager_release_memory(Manager *m)
{
    size_t handles = worker_release_idle(m->worker);
    int trimmed = malloc_trim(0);
    if (handles > 0 || trimmed)
        log_debug(NULL, NULL, "quiet: released %zu pooled worker handle(s)%s", handles,
                  trimmed ? ", returned free heap memory to the system" : "");
}

static int on_status_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    Manager *m = userdata;
    uint64_t events = metrics_status_events(&m->metrics);
    if (events != m->status_sent_events)
        manager_notify_status(m);
    bool quiet = events == m->events_at_tick;
    m->events_at_tick = events;
    if (!quiet)
        m->memory_released = false;
    else if (!m->memory_released && !m->stopping && manager_pending(m) == 0 &&
             worker_in_flight(m->worker) == 0) {
        manager_release_memory(m);
        m->memory_released = true;
    }
    (void)sd_event_source_set_time(s, usec + STATUS_INTERVAL_USEC);
    return 0;
}

static int on_post(sd_event_source *s, void *userdata)
{
    (void)s, (void)userdata;
    log_flush();
    return 0;
}

static void manager_check_drained(Manager *m)
{
    if (m->stopping && manager_pending(m) == 0 && m->server.n_conns == 0 &&
        worker_in_flight(m->worker) == 0)
        (void)sd_event_exit(m->event, 0);
}

/* Jobs wait in the spool: the service stays up to deliver them (IDLE_EXIT_SEC waits). */
static bool manager_spool_holds_jobs(Manager *m)
{
    if (!m->spool)
        return false;
    SpoolState st;
    spool_state(m->spool, &st);
    return st.stats.jobs > 0 || !st.up; /* unreadable now: it may well hold some */
}

static int on_final_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)s, (void)usec;
    Manager *m = userdata;
    log_warn(MSGID_STOPPED, NULL,
             "%zu connection(s) still open after the shutdown timeout; exiting", m->server.n_conns);
    return sd_event_exit(m->event, 0);
}

/* The drain took too long: the requests still waiting get 503 now, and a second later the process
 * exits whatever is left. */
static int on_shutdown_timeout(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)usec;
    Manager *m = userdata;
    log_warn(MSGID_STOPPED, NULL,
             "shutdown timeout of %us reached with %u request(s) waiting on the worker; "
             "answering them now (spooled, or 503 without a spool)",
             m->config.shutdown_timeout_sec, manager_pending(m));
    (void)s;
    worker_cancel_all(m->worker);
    if (sd_event_add_time_relative(m->event, &m->final_timer, CLOCK_MONOTONIC, 1000000, 1000,
                                   on_final_timeout, m) < 0)
        return sd_event_exit(m->event, 0);
    (void)sd_event_source_set_description(m->final_timer, "shutdown-final");
    manager_check_drained(m);
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

    uv_event_sync(&m->uv);
    server_drain(&m->server);
    int r = sd_event_add_time_relative(m->event, &m->shutdown_timer, CLOCK_MONOTONIC,
                                       (uint64_t)m->config.shutdown_timeout_sec * 1000000ULL, 1000,
                                       on_shutdown_timeout, m);
    if (r >= 0)
        (void)sd_event_source_set_description(m->shutdown_timer, "shutdown-timeout");
    manager_check_drained(m);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
    (void)s;
    manager_begin_shutdown(userdata, si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
    return 0;
}

static int on_idle_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
    (void)s, (void)usec;
    Manager *m = userdata;
    log_info(MSGID_IDLE_EXIT, NULL, "no connection for %us, exiting until the next one",
             m->config.idle_exit_sec);
    manager_begin_shutdown(m, "idle");
    return 0;
}

/* IDLE_EXIT_SEC counts from the moment the last connection closes; only when systemd owns the
 * socket, since nobody would start us again otherwise. */
static void manager_update_idle(Manager *m)
{
    if (m->stopping || m->config.idle_exit_sec == 0 || !m->server.socket_activated)
        return;
    bool idle = m->server.n_conns == 0 && manager_pending(m) == 0 &&
                worker_in_flight(m->worker) == 0 && !manager_spool_holds_jobs(m);
    if (!idle) {
        if (m->idle_timer)
            (void)sd_event_source_set_enabled(m->idle_timer, SD_EVENT_OFF);
        return;
    }
    uint64_t usec = (uint64_t)m->config.idle_exit_sec * 1000000ULL;
    if (m->idle_timer) {
        (void)sd_event_source_set_time_relative(m->idle_timer, usec);
        (void)sd_event_source_set_enabled(m->idle_timer, SD_EVENT_ONESHOT);
        return;
    }
    if (sd_event_add_time_relative(m->event, &m->idle_timer, CLOCK_MONOTONIC, usec, 1000000,
                                   on_idle_timer, m) >= 0)
        (void)sd_event_source_set_description(m->idle_timer, "idle-exit");
}

static void on_conn_change(Server *s, void *userdata)
{
    (void)s;
    Manager *m = userdata;
    manager_update_idle(m);
    manager_check_drained(m);
}

/* A POST /enqueue that waited for the worker is done; or a delivery from the spool. */
static void on_api_pending_end(void *userdata)
{
    Manager *m = userdata;
    manager_update_idle(m);
    manager_check_drained(m);
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
    }
}

/* After every group the spool committed: new jobs to deliver, and the idle exit may wait or
 * go. */
static void on_spool_changed(void *userdata)
{
    Manager *m = userdata;
    if (m->delivery)
        spool_delivery_changed(m->delivery);
    manager_update_idle(m);
}

/* The spool and its delivery, when SPOOL_DIR (or the unit's StateDirectory=) names one. */
static int manager_setup_spool(Manager *m)
{
    if (!m->config.spool_dir)
        return 0;
    int r = spool_new(m->event, m->config.spool_dir, m->config.spool_max_jobs,
                      m->config.max_pending_jobs,
                      &(const SpoolCallbacks){
                          .notice = on_spool_notice,
                          .changed = on_spool_changed,
                          .userdata = m,
                      },
                      &m->spool);
    if (r < 0)
        return r;
    return spool_delivery_new(
        &(const SpoolDeliverySettings){
            .event = m->event,
            .spool = m->spool,
            .worker = m->worker,
            .metrics = &m->metrics,
            .config = &m->config,
            .on_delivery_end = on_api_pending_end,
            .userdata = m,
        },
        &m->delivery);
}

DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* A private loop, not sd_event_default(): the default one checks its thread with a gettid()
 * system call on every iteration. SIGTERM and SIGINT start the drain. */
static int manager_setup_event(Manager *m)
{
    int r = sd_event_new(&m->event);
    if (r < 0)
        return r;
    (void)sd_event_set_watchdog(m->event, true);
    log_attach_event(m->event);
    signal(SIGPIPE, SIG_IGN);
    r = sd_event_add_signal(m->event, &m->sigterm, SIGTERM | SD_EVENT_SIGNAL_PROCMASK, on_signal,
                            m);
    if (r < 0)
        return r;
    return sd_event_add_signal(m->event, &m->sigint, SIGINT | SD_EVENT_SIGNAL_PROCMASK, on_signal,
                               m);
}

/* The HTTP side (libuv, h2o), the worker client and the handlers. */
static int manager_setup_server(Manager *m)
{
    int r = uv_event_attach(&m->uv, m->event);
    if (r < 0)
        return r;
    r = server_init(&m->server, &m->config, &m->uv.loop);
    if (r < 0)
        return r;
    m->server.on_conn_change = on_conn_change;
    m->server.errors.metrics = &m->metrics;
    m->server.userdata = m;
    r = worker_new(m->event, &m->config, &m->metrics, &m->worker);
    if (r < 0)
        return r;
    r = manager_setup_spool(m);
    if (r < 0)
        return r;
    m->api =
        routes_register(m->server.pathconf, &(const ApiSettings){
                                                .config = &m->config,
                                                .api_token = m->api_token,
                                                .worker = m->worker,
                                                .spool = m->spool,
                                                .metrics = &m->metrics,
                                                .server = &m->server,
                                                .loop = &m->uv.loop,
                                                .started_monotonic_usec = m->started_monotonic_usec,
                                                .started_realtime_usec = m->started_realtime_usec,
                                                .on_pending_end = on_api_pending_end,
                                                .userdata = m,
                                            });
    return 0;
}

/* The log flush after each loop iteration and the status tick. */
static int manager_setup_timers(Manager *m)
{
    int r = sd_event_add_post(m->event, &m->log_flush, on_post, m);
    if (r < 0)
        return r;
    (void)sd_event_source_set_description(m->log_flush, "log-flush");

    r = sd_event_add_time_relative(m->event, &m->status_timer, CLOCK_MONOTONIC,
                                   STATUS_INTERVAL_USEC, 100000, on_status_timer, m);
    if (r < 0)
        return r;
    (void)sd_event_source_set_enabled(m->status_timer, SD_EVENT_ON);
    (void)sd_event_source_set_description(m->status_timer, "status");
    return 0;
}

int manager_new(Config *config, char *api_token, Manager **ret)
{
    assert(config);
    assert(ret);

    _cleanup_free_ char *token = api_token;
    _cleanup_(manager_freep) Manager *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->config = *config;
    *config = (Config){0};
    m->api_token = TAKE_PTR(token);

    m->started_monotonic_usec = clock_usec(CLOCK_MONOTONIC);
    m->started_realtime_usec = clock_usec(CLOCK_REALTIME);

    int r = manager_setup_event(m);
    if (r < 0)
        return r;
    r = manager_setup_server(m);
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
    int n = server_listen(&m->server, m->config.port);
    if (n < 0)
        return n;
    server_describe(&m->server, m->listen_desc, sizeof(m->listen_desc));
    manager_update_idle(m);
    return n;
}

int manager_run(Manager *m)
{
    log_info(MSGID_STARTED, LOG_FIELDS(.worker_url = m->config.worker_url),
             "argus-orchestrator listening on %s, forwarding to %s%s%s", m->listen_desc,
             m->config.worker_enqueue, m->spool ? ", spooling in " : "",
             m->spool ? m->config.spool_dir : "");
    (void)sd_notify(false, "READY=1");
    manager_notify_status(m);
    log_set_buffered(true);
    int r = sd_event_loop(m->event);
    log_set_buffered(false);
    if (r < 0)
        return r;
    log_info(MSGID_STOPPED, NULL, "stopped: %llu enqueued, %llu queued, %llu failed",
             (unsigned long long)m->metrics.jobs_enqueued,
             (unsigned long long)m->metrics.spool_queued,
             (unsigned long long)m->metrics.jobs_failed);
    return 0;
}

Manager *manager_free(Manager *m)
{
    if (!m)
        return NULL;
    /* The worker first (its calls end without calling back), then what waited on them. */
    m->worker = worker_free(m->worker);
    m->delivery = spool_delivery_free(m->delivery);
    m->spool = spool_free(m->spool);
    if (m->uv.event)
        uv_event_sync(&m->uv);
    server_done(&m->server);
    uv_event_detach(&m->uv);
    sd_event_source_disable_unref(m->sigterm);
    sd_event_source_disable_unref(m->sigint);
    sd_event_source_disable_unref(m->shutdown_timer);
    sd_event_source_disable_unref(m->final_timer);
    sd_event_source_disable_unref(m->idle_timer);
    sd_event_source_disable_unref(m->status_timer);
    sd_event_source_disable_unref(m->log_flush);
    if (m->event)
        log_detach_event();
    sd_event_unref(m->event);
    config_done(&m->config);
    free(m->api_token);
    free(m);
    return NULL;
}
