/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "log-backlog.h"
#include "log-fields.h"
#include "log-level.h"

/* The journal sink of log.c: entries in journald's native protocol on a non-blocking socket of
 * our own, what journald cannot take now in a bounded queue (log-queue.h), flushed when the
 * socket is writable again; past the bound entries are dropped, counted, and one entry says how
 * many once journald takes entries again. The queue's marks (log-backlog.h) tell the service when
 * to shed jobs instead (log_pressure). */

/* Every function here is called with log_lock() held (log-queue.h), from any thread but those that
 * say otherwise. */

/* Sends one entry, or queues it, or drops it (counted). */
void log_journal_send(LogLevel level, const char *message_id, const LogFields *f, const char *msg);
/* Sends what the queue holds until journald stops taking it; true once it is empty. */
bool log_journal_flush(void);
/* The socket (-EBADF when not connected), to poll for POLLOUT at exit. */
int log_journal_fd(void);

/* The loop whose io source flushes the queue while it holds something; detach before the loop is
 * freed. Both on the loop's thread. */
void log_journal_attach_event(sd_event *e);
void log_journal_detach_event(void);

/* At exit: gives up on what the queue still holds, counted as dropped; returns how many entries
 * that was. */
uint64_t log_journal_discard(void);
/* Entries dropped since the start. */
uint64_t log_journal_dropped(void);

/* log_set_owed: room past the high-water mark for owed_bytes (log-backlog.h). Configuration. */
void log_journal_set_owed(size_t owed_bytes);
/* The queue's pressure (log-backlog.h); without the lock, from any thread. */
LogPressure log_journal_pressure(void);

/* log_set_journal_fd (tests): fd instead of journald's socket; -1 goes back to it. */
void log_journal_set_fd(int fd);
