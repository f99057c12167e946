/* SPDX-License-Identifier: MIT */
#include "mailbox.h"

#include <errno.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "atomics.h"

static int on_mailbox(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s, (void)fd, (void)revents;
    mailbox_dispatch(userdata);
    return 0;
}

int mailbox_init(Mailbox *m, sd_event *e, const char *description)
{
    *m = (Mailbox){.fd = -1};
    pthread_mutex_init(&m->lock, NULL);
    m->fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (m->fd < 0)
        return -errno;
    if (!e)
        return 0;
    int r = sd_event_add_io(e, &m->source, m->fd, EPOLLIN, on_mailbox, m);
    if (r < 0)
        return r;
    (void)sd_event_source_set_description(m->source, description);
    return 0;
}

void mailbox_done(Mailbox *m)
{
    m->source = sd_event_source_disable_unref(m->source);
    if (m->fd >= 0) {
        close(m->fd);
        m->fd = -1;
        pthread_mutex_destroy(&m->lock);
    }
}

void mailbox_receiver_init(MailboxReceiver *r, Mailbox *m, mailbox_receive_fn receive)
{
    *r = (MailboxReceiver){.mailbox = m, .receive = receive};
}

/* Under the lock. */
static void unlink_active(Mailbox *m, MailboxReceiver *r)
{
    MailboxReceiver **p = &m->active_head, *prev = NULL;
    while (*p && *p != r) {
        prev = *p;
        p = &(*p)->active_next;
    }
    if (!*p)
        return;
    *p = r->active_next;
    if (m->active_tail == r)
        m->active_tail = prev;
    r->active_next = NULL;
    r->active = false;
}

MailboxMessage *mailbox_receiver_done(MailboxReceiver *r)
{
    Mailbox *m = r->mailbox;
    if (!m)
        return NULL;
    pthread_mutex_lock(&m->lock);
    if (r->active)
        unlink_active(m, r);
    MailboxMessage *left = r->head;
    r->head = r->tail = NULL;
    pthread_mutex_unlock(&m->lock);
    r->mailbox = NULL;
    return left;
}

void mailbox_post(MailboxReceiver *r, MailboxMessage *msg)
{
    Mailbox *m = r->mailbox;
    bool wake = false;
    msg->next = NULL;
    pthread_mutex_lock(&m->lock);
    if (r->tail)
        r->tail->next = msg;
    else
        r->head = msg;
    r->tail = msg;
    if (!r->active) {
        r->active = true;
        r->active_next = NULL;
        if (m->active_tail)
            m->active_tail->active_next = r;
        else
            m->active_head = r;
        m->active_tail = r;
    }
    if (!m->signalled)
        wake = m->signalled = true;
    pthread_mutex_unlock(&m->lock);
    if (wake) {
        uint64_t one = 1;
        (void)!write(m->fd, &one, sizeof(one));
    }
}

int mailbox_fd(const Mailbox *m)
{
    return m->fd;
}

/* Takes the first receiver with messages and its whole FIFO, so that a callback that posts to
 * its own receiver (or frees another) is seen at the next round, not mid-list. */
static MailboxReceiver *take_one(Mailbox *m, MailboxMessage **ret_list)
{
    pthread_mutex_lock(&m->lock);
    MailboxReceiver *r = m->active_head;
    if (r) {
        m->active_head = r->active_next;
        if (!m->active_head)
            m->active_tail = NULL;
        r->active_next = NULL;
        r->active = false;
        *ret_list = r->head;
        r->head = r->tail = NULL;
    }
    pthread_mutex_unlock(&m->lock);
    return r;
}

void mailbox_dispatch(Mailbox *m)
{
    uint64_t n;
    /* read before taking: a post after the take signals again and wakes the next round */
    pthread_mutex_lock(&m->lock);
    m->signalled = false;
    (void)!read(m->fd, &n, sizeof(n));
    pthread_mutex_unlock(&m->lock);
    MailboxMessage *list;
    for (MailboxReceiver *r; (r = take_one(m, &list));)
        for (MailboxMessage *x = list, *next; x; x = next) {
            next = x->next;
            r->receive(r, x);
        }
}

static void on_bell(MailboxReceiver *r, MailboxMessage *m)
{
    (void)m;
    MailboxBell *b = (MailboxBell *)r;
    seq_cst_store_bool(&b->rung, false);
    b->on_ring(b);
}

void mailbox_bell_init(MailboxBell *b, Mailbox *m, void (*on_ring)(MailboxBell *b))
{
    mailbox_receiver_init(&b->receiver, m, on_bell);
    b->rung = false;
    b->on_ring = on_ring;
}

void mailbox_bell_ring(MailboxBell *b)
{
    if (!seq_cst_exchange_bool(&b->rung, true))
        mailbox_post(&b->receiver, &b->message);
}

void mailbox_bell_done(MailboxBell *b)
{
    (void)mailbox_receiver_done(&b->receiver); /* its one message is b's */
    b->rung = false;
}
