/* SPDX-License-Identifier: MIT */
#include "curl-event.h"

#include <errno.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "macro.h"

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

static int action_of(uint32_t events)
{
    int action = 0;
    if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
        action |= CURL_CSELECT_IN;
    if (events & EPOLLOUT)
        action |= CURL_CSELECT_OUT;
    if (events & EPOLLERR)
        action |= CURL_CSELECT_ERR;
    return action;
}

/* Everything that is ready in curl's epoll set, then the finished transfers at once. */
static int on_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s, (void)fd, (void)revents;
    CurlEvent *ce = userdata;
    struct epoll_event ev[64];
    int n, running;
    do {
        n = epoll_wait(ce->epfd, ev, 64, 0);
        for (int i = 0; i < n; i++)
            curl_multi_socket_action(ce->multi, ev[i].data.fd, action_of(ev[i].events), &running);
    } while (n == 64);
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
    bool watched = socketp != NULL;

    if (what == CURL_POLL_REMOVE) {
        if (watched) {
            (void)epoll_ctl(ce->epfd, EPOLL_CTL_DEL, fd, NULL);
            curl_multi_assign(ce->multi, fd, NULL);
        }
        return 0;
    }
    /* Edge-triggered: it is safe because curl drains what it is told about (after a read it
     * keeps reading while the socket has data), and a change of interest goes through
     * EPOLL_CTL_MOD, which reports a socket that is ready already. */
    struct epoll_event ev = {.events = EPOLLET, .data.fd = fd};
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        ev.events |= EPOLLIN;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        ev.events |= EPOLLOUT;

    int op = watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(ce->epfd, op, fd, &ev) < 0) {
        /* The set and curl's hash disagree: a closed socket leaves the set by itself, and its
         * number may come back for a new one before curl's entry for it goes. Trust the set. */
        int other = errno == EEXIST ? EPOLL_CTL_MOD : errno == ENOENT ? EPOLL_CTL_ADD : -1;
        if (other < 0 || epoll_ctl(ce->epfd, other, fd, &ev) < 0)
            return -1;
    }
    if (!watched && curl_multi_assign(ce->multi, fd, ce) != CURLM_OK) {
        (void)epoll_ctl(ce->epfd, EPOLL_CTL_DEL, fd, NULL);
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

DEFINE_TRIVIAL_CLEANUP_FUNC(CurlEvent *, curl_event_done);

int curl_event_init(CurlEvent *ce, sd_event *e, curl_event_done_fn done, void *userdata)
{
    assert(ce);
    assert(e);
    assert(done);

    *ce = (CurlEvent){.event = sd_event_ref(e), .epfd = -EBADF, .done = done, .userdata = userdata};
    _cleanup_(curl_event_donep) CurlEvent *unwind = ce;
    int r;

    _cleanup_close_ int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        return -errno;
    r = sd_event_add_io(e, &ce->io, epfd, EPOLLIN, on_io, ce);
    if (r < 0)
        return r;
    r = sd_event_source_set_io_fd_own(ce->io, true);
    if (r < 0)
        return r;
    ce->epfd = TAKE_FD(epfd);
    (void)sd_event_source_set_description(ce->io, "worker-io");

    ce->multi = curl_multi_init();
    if (!ce->multi)
        return -ENOMEM;
    r = event_timer_init(&ce->timer, e, "worker-timer", on_timer, ce);
    if (r < 0)
        return r;
    if (curl_multi_setopt(ce->multi, CURLMOPT_SOCKETFUNCTION, on_socket) != CURLM_OK ||
        curl_multi_setopt(ce->multi, CURLMOPT_SOCKETDATA, ce) != CURLM_OK ||
        curl_multi_setopt(ce->multi, CURLMOPT_TIMERFUNCTION, on_timer_request) != CURLM_OK ||
        curl_multi_setopt(ce->multi, CURLMOPT_TIMERDATA, ce) != CURLM_OK)
        return -EINVAL;
    TAKE_PTR(unwind);
    return 0;
}

void curl_event_done(CurlEvent *ce)
{
    if (ce->multi)
        curl_multi_cleanup(ce->multi); /* its last socket callbacks still need epfd */
    ce->multi = NULL;
    ce->io = sd_event_source_disable_unref(ce->io);
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
