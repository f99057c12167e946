/* SPDX-License-Identifier: MIT */
/* Unit tests of src/basic/mailbox.h: several threads post to two receivers on one mailbox, one
 * thread receives; every message arrives once, in order per sender, and none is lost at close. */
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <cmocka.h>

#include "macro.h"
#include "mailbox.h"

#define SENDERS 4
#define PER_SENDER 20000

typedef struct Note {
    MailboxMessage link;
    unsigned sender;
    unsigned seq;
} Note;

typedef struct Inbox {
    MailboxReceiver receiver; /* first: the callback finds the Inbox from it */
    unsigned next_seq[SENDERS];
    unsigned received;
} Inbox;

typedef struct Sender {
    Inbox *inboxes; /* two: even seqs to the first, odd to the second */
    Note *notes;
    unsigned index;
} Sender;

static void on_note(MailboxReceiver *r, MailboxMessage *m)
{
    Inbox *in = (Inbox *)r;
    Note *n = container_of(m, Note, link);
    assert_true(n->sender < SENDERS);
    /* in order per sender: this receiver gets every other seq of each sender */
    assert_int_equal(n->seq, in->next_seq[n->sender]);
    in->next_seq[n->sender] += 2;
    in->received++;
}

static void *sender_thread(void *userdata)
{
    Sender *s = userdata;
    for (unsigned i = 0; i < PER_SENDER; i++) {
        Note *n = &s->notes[i];
        n->sender = s->index;
        n->seq = i;
        mailbox_post(&s->inboxes[i % 2].receiver, &n->link);
    }
    return NULL;
}

static void test_many_senders_one_receiver(void **state)
{
    (void)state;
    Mailbox m;
    assert_int_equal(mailbox_init(&m, NULL, "test"), 0);
    Inbox inboxes[2] = {0};
    for (unsigned i = 0; i < 2; i++) {
        mailbox_receiver_init(&inboxes[i].receiver, &m, on_note);
        inboxes[i].next_seq[0] = inboxes[i].next_seq[1] = i;
        inboxes[i].next_seq[2] = inboxes[i].next_seq[3] = i;
    }
    Sender senders[SENDERS];
    pthread_t threads[SENDERS];
    for (unsigned i = 0; i < SENDERS; i++) {
        senders[i] =
            (Sender){.inboxes = inboxes, .index = i, .notes = calloc(PER_SENDER, sizeof(Note))};
        assert_non_null(senders[i].notes);
        assert_int_equal(pthread_create(&threads[i], NULL, sender_thread, &senders[i]), 0);
    }
    /* bounded: every post signals the eventfd at least once after it is linked */
    while (inboxes[0].received + inboxes[1].received < SENDERS * PER_SENDER) {
        struct pollfd p = {.fd = mailbox_fd(&m), .events = POLLIN};
        assert_int_equal(poll(&p, 1, 10000), 1);
        mailbox_dispatch(&m);
    }
    for (unsigned i = 0; i < SENDERS; i++)
        assert_int_equal(pthread_join(threads[i], NULL), 0);
    for (unsigned i = 0; i < 2; i++) {
        assert_int_equal(inboxes[i].received, SENDERS * PER_SENDER / 2);
        for (unsigned s = 0; s < SENDERS; s++)
            assert_int_equal(inboxes[i].next_seq[s], PER_SENDER + i);
        assert_null(mailbox_receiver_done(&inboxes[i].receiver));
    }
    /* nothing left to wake for */
    struct pollfd p = {.fd = mailbox_fd(&m), .events = POLLIN};
    mailbox_dispatch(&m);
    assert_int_equal(poll(&p, 1, 0), 0);
    for (unsigned i = 0; i < SENDERS; i++)
        free(senders[i].notes);
    mailbox_done(&m);
}

/* Closing with messages posted and not received hands them back, oldest first. */
static void test_close_returns_undelivered(void **state)
{
    (void)state;
    Mailbox m;
    assert_int_equal(mailbox_init(&m, NULL, "test"), 0);
    Inbox a = {0}, b = {0};
    mailbox_receiver_init(&a.receiver, &m, on_note);
    mailbox_receiver_init(&b.receiver, &m, on_note);
    Note notes[5] = {0};
    for (unsigned i = 0; i < 5; i++) {
        notes[i].seq = i;
        mailbox_post(i == 2 ? &b.receiver : &a.receiver, &notes[i].link);
    }
    MailboxMessage *left = mailbox_receiver_done(&a.receiver);
    unsigned expect[] = {0, 1, 3, 4}, n = 0;
    for (MailboxMessage *x = left; x; x = x->next, n++)
        assert_int_equal(container_of(x, Note, link)->seq, expect[n]);
    assert_int_equal(n, 4);
    /* b still receives its one; a, gone, nothing */
    b.next_seq[0] = 2;
    mailbox_dispatch(&m);
    assert_int_equal(b.received, 1);
    assert_int_equal(a.received, 0);
    assert_null(mailbox_receiver_done(&b.receiver));
    mailbox_done(&m);
}

/* A callback may post its message again: it is unlinked before the callback runs. */
static unsigned reposts;
static void on_repost(MailboxReceiver *r, MailboxMessage *m)
{
    if (++reposts < 3)
        mailbox_post(r, m);
}

static void test_repost_from_callback(void **state)
{
    (void)state;
    Mailbox m;
    assert_int_equal(mailbox_init(&m, NULL, "test"), 0);
    MailboxReceiver r;
    mailbox_receiver_init(&r, &m, on_repost);
    MailboxMessage msg;
    mailbox_post(&r, &msg);
    for (unsigned i = 0; i < 5; i++)
        mailbox_dispatch(&m);
    assert_int_equal(reposts, 3);
    assert_null(mailbox_receiver_done(&r));
    mailbox_done(&m);
}

/* A bell rung many times before its receiver runs is received once; rung from its own
 * on_ring, it comes again on the next dispatch. */
static unsigned rings;
static void on_ring(MailboxBell *b)
{
    if (++rings == 2)
        mailbox_bell_ring(b);
}

static void test_bell_coalesces(void **state)
{
    (void)state;
    Mailbox m;
    assert_int_equal(mailbox_init(&m, NULL, "test"), 0);
    MailboxBell b;
    mailbox_bell_init(&b, &m, on_ring);
    for (unsigned i = 0; i < 10; i++)
        mailbox_bell_ring(&b);
    mailbox_dispatch(&m);
    assert_int_equal(rings, 1);
    mailbox_bell_ring(&b);
    mailbox_dispatch(&m); /* the second ring rings again, received in the same round */
    assert_int_equal(rings, 3);
    mailbox_dispatch(&m);
    assert_int_equal(rings, 3);
    mailbox_bell_ring(&b); /* left unreceived: done takes it back */
    mailbox_bell_done(&b);
    mailbox_dispatch(&m);
    assert_int_equal(rings, 3);
    mailbox_done(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_many_senders_one_receiver),
        cmocka_unit_test(test_close_returns_undelivered),
        cmocka_unit_test(test_repost_from_callback),
        cmocka_unit_test(test_bell_coalesces),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
