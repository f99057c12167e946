/* SPDX-License-Identifier: MIT */
#pragma once

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "mailbox.h"
#include "metrics.h"
#include "routes.h"
#include "server.h"
#include "spool.h"
#include "uv-event.h"
#include "worker.h"

/* One event loop (THREADS of them, the way h2o runs one per thread): its own sd-event with libuv
 * and h2o nested in it, its own worker client (curl multi and connections to the worker), its
 * own counters; it accepts on every listening socket. The first loop runs on the main thread
 * beside the manager's sources (signals, STATUS=, the watchdog, the spool's delivery); the
 * others each on a thread of their own. Other threads talk to a loop only through loop_request()
 * and the atomic reads below. */

typedef struct Loop Loop;

/* What the process shares with every loop; it outlives them. */
typedef struct LoopShared {
    const Config *config;
    const char *api_token;
    WorkerShared worker; /* the one breaker and pending-work count */
    Spool *spool;        /* NULL: no spool */
    uint64_t started_monotonic_usec, started_realtime_usec;
    Loop **loops; /* every loop, for GET /metrics */
    size_t n_loops;
    Mailbox *main_mailbox;       /* the main thread's: the manager's and the first loop's */
    MailboxReceiver *drained_to; /* the manager's: a loop drained (Loop.drained_msg) */
    size_t total_conns;          /* atomic: client connections of every loop (MAX_CONNECTIONS) */
    size_t large_bodies;         /* atomic: LARGE_BODY_PLACES taken, every loop's (conn.h) */
    size_t batch_bytes;          /* atomic: BATCH_BUDGET_BYTES taken, every loop's (batch.h) */
    uint64_t heartbeat_usec;     /* how often each loop shows it runs (the watchdog's looks) */
} LoopShared;

typedef enum LoopRequest {
    LOOP_DRAIN = 1 << 0,  /* stop accepting, finish what is in flight, then report drained */
    LOOP_CANCEL = 1 << 1, /* the shutdown timeout: end the worker calls now */
    LOOP_EXIT = 1 << 2,   /* leave the event loop whatever is left */
    LOOP_RESUME = 1 << 3, /* a connection slot freed on another loop: take a paused one */
    LOOP_PUMP = 1 << 4,   /* a worker connection freed on another loop: start a queued call */
} LoopRequest;

struct Loop {
    unsigned index;
    LoopShared *shared;
    sd_event *event;
    bool own_thread;
    UvEvent uv;
    Server server;
    Worker *worker;
    ApiHandler *api;
    SpoolPort *spool_port;
    Metrics metrics;

    pthread_t thread;
    bool thread_started;
    Mailbox own_mailbox; /* a loop on a thread of its own: its mailbox (fd -1 for the first) */
    Mailbox *mailbox;    /* this loop's: own_mailbox, or the main thread's */
    MailboxReceiver control;
    MailboxMessage control_msg; /* posted when requests turns non-zero */
    unsigned requests;          /* atomic: LoopRequest bits not yet handled */
    MailboxMessage drained_msg; /* to the manager, once (drained_told) */
    bool drained_told;          /* atomic */
    bool stopping;
    bool drained;       /* atomic */
    uint64_t heartbeat; /* atomic: moves while the loop runs */
    uint64_t events_at_tick;
    bool memory_released; /* since the last job */
    sd_event_source *heartbeat_timer, *quiet_timer, *log_flush;
};

/* Loop index of shared: on e (the main thread's) for index 0, else on a new sd_event that
 * loop_start runs on a thread of its own. */
int loop_new(LoopShared *shared, unsigned index, sd_event *e, Loop **ret);
/* Accepts on fds; returns how many, or a negative errno. */
int loop_listen(Loop *l, const ListenFds *fds);
/* A loop with its own event: its thread, which runs it until drained or told to exit, then tears
 * it down. */
int loop_start(Loop *l);
/* From any thread. */
void loop_request(Loop *l, LoopRequest what);
/* On the loop's thread: after something it does not see ended (a delivery from the spool on the
 * first loop's worker), whether it has drained now. */
void loop_check_drained(Loop *l);
/* Waits for the thread of a started loop (after LOOP_EXIT, or once drained). */
void loop_join(Loop *l);
/* Frees what the loop holds (on its own thread for a started one, done by the thread itself);
 * then the struct. Takes NULL. */
Loop *loop_free(Loop *l);

/* WorkerShared.on_slot_free, userdata the LoopShared. */
void loop_on_worker_slot_free(Worker *w, void *userdata);

/* From any thread. */
size_t loop_connections(const Loop *l);
unsigned loop_pending(const Loop *l);
bool loop_drained(const Loop *l);
uint64_t loop_heartbeat(const Loop *l);
/* Requests waiting and worker calls in flight: the loop is busy. */
bool loop_busy(const Loop *l);
