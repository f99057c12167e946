/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include <systemd/sd-event.h>

#include "log-backlog.h"
#include "log-fields.h"
#include "log-level.h"

/* The JSON-lines sink of log.c on stderr: lines gathered and written once per loop iteration
 * when buffered; on a pipe or a socket written without waiting, what is not taken kept in a
 * bounded queue (log-queue.h) flushed when stderr is writable again; past the bound lines are
 * dropped, counted, and one line says how many once stderr is read again. */

/* Every function here is called with log_lock() held (log-queue.h), from any thread but those that
 * say otherwise. */

/* Looks at what stderr is (a pipe, a socket, or a file or terminal written as it always was).
 * Before the loop is attached. */
void log_stderr_setup(void);

/* Gathers one line; writes what is gathered unless buffered and under 64 KiB. */
void log_stderr_send(LogLevel level, const LogFields *f, const char *msg);
/* log_flush: writes what is gathered, or what stderr takes of it. */
void log_stderr_flush(void);
void log_stderr_set_buffered(bool on);
/* Nothing gathered or waiting. */
bool log_stderr_empty(void);
/* The fd written to, to poll for POLLOUT at exit. */
int log_stderr_fd(void);

/* The loop whose io source flushes the queue while it holds something; detach before the loop is
 * freed. Both on the loop's thread. */
void log_stderr_attach_event(sd_event *e);
void log_stderr_detach_event(void);

/* At exit: gives up on what is still waiting, counted as dropped; returns how many lines that
 * was. */
uint64_t log_stderr_discard(void);
/* Lines dropped since the start. */
uint64_t log_stderr_dropped(void);
/* log_set_owed: room past the high-water mark for owed_bytes (log-backlog.h). Configuration. */
void log_stderr_set_owed(size_t owed_bytes);
/* The queue's pressure (log-backlog.h); without the lock, from any thread. */
LogPressure log_stderr_pressure(void);
