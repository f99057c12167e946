/* SPDX-License-Identifier: MIT */
#include "curl-event.h"

#include <errno.h>

static void drain_messages(CurlEvent *ce)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(ce->multi, &left)))
        if (msg->msg == CURLMSG_DONE) {
            CURL *easy = msg->easy_handle;
            CURLcode result = msg->data.result;
            curl_multi_remove_handle(ce->multi, easy);
            ce->done(easy, result, ce->userdata);
        }
}

static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s;
    CurlEvent *ce = userdata;
    int action = 0, running;
    if (revents & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
        action |= CURL_CSELECT_IN;
    if (revents & EPOLLOUT)
        action |= CURL_CSELECT_OUT;
    if (revents & EPOLLERR)
        action |= CURL_CSELECT_ERR;
    curl_multi_socket_action(ce->multi, fd, action, &running);
    drain_messages(ce);
    return 0;
}

static void on_timer(void *userdata)
{
    CurlEvent *ce = userdata;
    int running;
    curl_multi_socket_action(ce->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_messages(ce);
}

static int on_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    CurlEvent *ce = userp;
    sd_event_source *io = socketp;

    if (what == CURL_POLL_REMOVE) {
        if (io) {
            sd_event_source_disable_unref(io);
            curl_multi_assign(ce->multi, fd, NULL);
        }
        return 0;
    }
    /* Edge-triggered: a level-triggered socket that stays readable is polled again by every
     * epoll_wait(2) until curl reads it, and with many connections that re-polling cost more
     * than the forwarding itself (measured: 15k against 26k requests/s at 64 connections).
     * It is safe because curl drains what it is told about: after a read it keeps reading
     * while the socket has data (its data_pending check), and a change of interest goes
     * through EPOLL_CTL_MOD, which reports a socket that is ready already. */
    uint32_t events = EPOLLET;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= EPOLLOUT;

    if (io)
        return sd_event_source_set_io_events(io, events) < 0 ||
                       sd_event_source_set_enabled(io, SD_EVENT_ON) < 0
                   ? -1
                   : 0;
    if (sd_event_add_io(ce->event, &io, fd, events, on_io, ce) < 0)
        return -1;
    (void)sd_event_source_set_description(io, "worker-io");
    if (curl_multi_assign(ce->multi, fd, io) != CURLM_OK) {
        sd_event_source_disable_unref(io);
        return -1;
    }
    return 0;
}

static int on_timer_request(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    CurlEvent *ce = userp;
    return event_timer_arm(&ce->timer, timeout_ms) < 0 ? -1 : 0;
}

int curl_event_init(CurlEvent *ce, sd_event *e, curl_event_done_fn done, void *userdata)
{
    *ce = (CurlEvent){.event = sd_event_ref(e), .done = done, .userdata = userdata};
    ce->multi = curl_multi_init();
    if (!ce->multi) {
        curl_event_done(ce);
        return -ENOMEM;
    }
    int r = event_timer_init(&ce->timer, e, "worker-timer", on_timer, ce);
    if (r < 0) {
        curl_event_done(ce);
        return r;
    }
    curl_multi_setopt(ce->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(ce->multi, CURLMOPT_SOCKETDATA, ce);
    curl_multi_setopt(ce->multi, CURLMOPT_TIMERFUNCTION, on_timer_request);
    curl_multi_setopt(ce->multi, CURLMOPT_TIMERDATA, ce);
    return 0;
}

void curl_event_done(CurlEvent *ce)
{
    if (ce->multi)
        curl_multi_cleanup(ce->multi);
    ce->multi = NULL;
    event_timer_done(&ce->timer);
    ce->event = sd_event_unref(ce->event);
}

int curl_event_add(CurlEvent *ce, CURL *easy)
{
    return curl_multi_add_handle(ce->multi, easy) == CURLM_OK ? 0 : -ENOMEM;
}

void curl_event_remove(CurlEvent *ce, CURL *easy)
{
    curl_multi_remove_handle(ce->multi, easy);
}
