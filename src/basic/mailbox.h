/* SPDX-License-Identifier: MIT */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <systemd/sd-event.h>

/* How threads talk (README.md, "Development"), in the spirit of h2o's h2o_multithread_queue_t:
 * a Mailbox is one eventfd wake-up for the thread that receives on it (an sd-event io source, or
 * a poll() of mailbox_fd() and mailbox_dispatch() on a thread without sd-event); any number of
 * typed receivers share it, each with its own callback and its own FIFO. A message is intrusive:
 * the sender's struct embeds a MailboxMessage, so posting never allocates, and nothing here logs
 * (the log queue is woken through a mailbox from any thread, the spool's included).
 *
 * Ordering: the messages of one sender to one receiver arrive in the order posted; posting
 * happens-before the receiver's callback for that message (the mailbox's mutex). A message is
 * unlinked before its receiver is called with it, so the callback may post it again. */

typedef struct MailboxMessage MailboxMessage;
struct MailboxMessage {
    MailboxMessage *next;
};

typedef struct Mailbox Mailbox;
typedef struct MailboxReceiver MailboxReceiver;

/* Called on the receiving thread, once per message, oldest first. */
typedef void (*mailbox_receive_fn)(MailboxReceiver *r, MailboxMessage *m);

struct MailboxReceiver {
    Mailbox *mailbox;
    mailbox_receive_fn receive;
    MailboxMessage *head, *tail;  /* under mailbox->lock: posted, not yet received */
    MailboxReceiver *active_next; /* under mailbox->lock: on the mailbox's list of receivers
                                   * with messages */
    bool active;
};

struct Mailbox {
    pthread_mutex_t lock;
    int fd;                       /* eventfd */
    bool signalled;               /* under lock: fd written, not yet read */
    MailboxReceiver *active_head; /* under lock: receivers with messages, in the order of their
                                   * first message */
    MailboxReceiver *active_tail;
    sd_event_source *source; /* NULL without an sd-event */
};

/* Makes the eventfd, and with e an io source named description on it. */
int mailbox_init(Mailbox *m, sd_event *e, const char *description);
/* Drops the source and the eventfd; receivers' undelivered messages are theirs to take first
 * (mailbox_receiver_done). Takes a Mailbox that was zeroed with fd = -1, or init failed on. */
void mailbox_done(Mailbox *m);

void mailbox_receiver_init(MailboxReceiver *r, Mailbox *m, mailbox_receive_fn receive);
/* Takes r off its mailbox; returns what was posted to it and not yet received, oldest first,
 * linked by next, for the owner to free (no loss at close). */
MailboxMessage *mailbox_receiver_done(MailboxReceiver *r);

/* From any thread. */
void mailbox_post(MailboxReceiver *r, MailboxMessage *msg);

/* Without sd-event: the fd to poll for POLLIN, and the dispatch to call when it is readable (or
 * at any time: it reads the eventfd first, so a post after it wakes the next poll). */
int mailbox_fd(const Mailbox *m);
void mailbox_dispatch(Mailbox *m);

/* A wake-up without a payload ("look again"), posted at most once until its receiver runs: for
 * a receiver that takes what is new from state of its own (a list under its owner's lock, an
 * atomic). It is cleared before on_ring runs, so a ring during on_ring posts it again. */
typedef struct MailboxBell MailboxBell;
struct MailboxBell {
    MailboxReceiver receiver;
    MailboxMessage message;
    bool rung; /* atomic: posted, on_ring not yet begun */
    void (*on_ring)(MailboxBell *b);
};

void mailbox_bell_init(MailboxBell *b, Mailbox *m, void (*on_ring)(MailboxBell *b));
/* From any thread. Whatever the caller wrote before it is seen by the on_ring it causes. */
void mailbox_bell_ring(MailboxBell *b);
void mailbox_bell_done(MailboxBell *b);
