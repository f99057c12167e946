/* SPDX-License-Identifier: MIT */
#include "log-stderr.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "json-writer.h"
#include "log-backlog.h"
#include "log-queue.h"
#include "macro.h"
#include "timefmt.h"

/* Under the event loop, JSON lines are gathered and written once per loop iteration
 * (log_flush), not once each: a busy loop logs with one write(2) for many requests. When stderr
 * is a pipe or a socket, whoever reads it may stop (a container runtime, a log shipper): then it
 * is written without waiting (a pipe through a description of its own opened O_NONBLOCK, so that
 * the flag does not leak into the one shared with the parent; a socket with MSG_DONTWAIT), and
 * what it does not take waits in `pending` up to the bound of log-backlog.h, past which whole
 * lines are dropped and counted; its marks tell the service when to shed jobs instead. A file or a
 * terminal is written as it always was. */
typedef enum StderrMode {
    STDERR_BLOCKING,
    STDERR_PIPE,   /* stderr_fd: our O_NONBLOCK description of the pipe */
    STDERR_SOCKET, /* send(MSG_DONTWAIT) */
} StderrMode;

/* All of it under log_lock() (log-queue.h): log.c takes it around the calls of log-stderr.h, the
 * io sources' handler here. Lines are gathered whole under it, so that lines of several threads
 * never interleave. */
static JsonWriter pending;
/* its buf is unused: pending.buf is the queue */
static LogQueue stderr_queue = {.io_name = "log-stderr-writable"};
static LogBacklog stderr_backlog = LOG_BACKLOG_INIT(0); /* its marks and the progress rule */
static bool stderr_took;                                /* stderr took bytes since the last note */
static StderrMode stderr_mode = STDERR_BLOCKING;
static int stderr_fd = STDERR_FILENO;
static bool buffered;

void log_stderr_setup(void)
{
    log_queue_drop_io(&stderr_queue); /* before the loop is attached: none */
    if (stderr_fd != STDERR_FILENO)
        closep(&stderr_fd);
    stderr_fd = STDERR_FILENO;
    stderr_mode = STDERR_BLOCKING;
    struct stat st;
    if (fstat(STDERR_FILENO, &st) < 0)
        return;
    if (S_ISFIFO(st.st_mode)) {
        int fd = open("/proc/self/fd/2", O_WRONLY | O_NONBLOCK | O_CLOEXEC);
        if (fd >= 0) {
            stderr_fd = fd;
            stderr_mode = STDERR_PIPE;
        }
    } else if (S_ISSOCK(st.st_mode))
        stderr_mode = STDERR_SOCKET;
}

static int on_stderr_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata);

/* The marks see the queue as it is now. */
static void stderr_backlog_note(void)
{
    log_backlog_update(&stderr_backlog, pending.buf.len - stderr_queue.head, stderr_took,
                       clock_usec(CLOCK_MONOTONIC));
    stderr_took = false;
}

static void json_field(void *sink, const LogFieldDef *d, const LogFields *f)
{
    JsonWriter *w = sink;
    switch (d->type) {
    case FIELD_STRING:
        json_writer_string(w, d->json, log_field_string(f, d));
        break;
    case FIELD_INT:
        json_writer_int(w, d->json, log_field_int(f, d));
        break;
    case FIELD_DURATION: {
        char dur[GO_DURATION_MAX];
        format_go_duration((uint64_t)f->duration_usec * 1000ULL, dur);
        json_writer_string(w, d->json, dur);
        break;
    }
    case FIELD_COUNT:
        json_writer_int(w, d->json, (long long)f->dropped);
        break;
    }
}

static void json_line(LogLevel level, const LogFields *f, const char *msg)
{
    JsonWriter *w = &pending;
    json_writer_begin(w);
    json_writer_string(w, "level", log_level_to_string(level));
    json_writer_string(w, "time", rfc3339_now());
    json_writer_string(w, "msg", msg);
    log_fields_walk(f, json_field, w);
    json_writer_end(w);
    json_writer_raw(w, "\n", 1);
}

void log_stderr_send(LogLevel level, const LogFields *f, const char *msg)
{
    JsonWriter *w = &pending;
    size_t before = w->buf.len;
    json_line(level, f, msg);
    if (w->buf.failed) {
        /* out of memory: drop what was gathered rather than write half a line */
        json_writer_free(w);
        stderr_queue.head = 0;
        return;
    }
    if (!log_backlog_fits(&stderr_backlog, 0, w->buf.len - stderr_queue.head)) {
        w->buf.len = before; /* stderr is not being read: the line is dropped, counted */
        w->buf.p[before] = '\0';
        stderr_queue.dropped++;
        stderr_queue.dropped_total++;
        return;
    }
    if (!buffered || w->buf.len - stderr_queue.head >= 64 * 1024)
        log_stderr_flush();
    else if (stderr_queue.io_on)
        stderr_backlog_note(); /* waiting for stderr: the line adds to the backlog */
    else if (stderr_queue.loop && !log_queue_on_loop_thread(&stderr_queue))
        log_queue_wake(&stderr_queue); /* the loop may be idle: it flushes at once */
}

/* Writes what is pending; false when stderr would block (what is left stays pending). */
static bool stderr_write(void)
{
    Buffer *b = &pending.buf;
    while (stderr_queue.head < b->len) {
        const char *p = b->p + stderr_queue.head;
        size_t n = b->len - stderr_queue.head;
        ssize_t k = stderr_mode == STDERR_SOCKET
                        ? send(stderr_fd, p, n, MSG_DONTWAIT | MSG_NOSIGNAL)
                        : write(stderr_fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && stderr_mode != STDERR_BLOCKING)
            return false;
        if (k <= 0) {
            stderr_queue.head = b->len; /* stderr is gone: nothing else to tell it with */
            break;
        }
        stderr_queue.head += (size_t)k;
        stderr_took = true;
    }
    b->len = stderr_queue.head = 0;
    return true;
}

void log_stderr_flush(void)
{
    if (stderr_queue.io_on) {
        stderr_backlog_note();
        return; /* waiting for stderr to be writable: on_stderr_writable writes */
    }
    bool drained = stderr_write();
    if (drained && stderr_queue.dropped > 0) {
        char msg[128];
        uint64_t n = stderr_queue.dropped;
        stderr_queue.dropped = 0;
        snprintf(msg, sizeof(msg), "stderr was not being read: %llu log lines dropped",
                 (unsigned long long)n);
        json_line(LOG_LEVEL_WARN, LOG_FIELDS(.dropped = n), msg);
        drained = stderr_write();
    }
    if (drained) {
        if (pending.buf.cap > 256 * 1024)
            json_writer_free(&pending); /* a burst should not keep its memory */
    } else if (stderr_queue.head > 64 * 1024 && stderr_queue.head > pending.buf.len / 2) {
        memmove(pending.buf.p, pending.buf.p + stderr_queue.head,
                pending.buf.len - stderr_queue.head);
        pending.buf.len -= stderr_queue.head;
        pending.buf.p[pending.buf.len] = '\0';
        stderr_queue.head = 0;
    }
    stderr_backlog_note();
    log_queue_arm(&stderr_queue, !drained, stderr_fd, on_stderr_writable);
}

static int on_stderr_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s, (void)fd, (void)revents, (void)userdata;
    log_lock();
    log_queue_arm(&stderr_queue, false, stderr_fd, on_stderr_writable);
    log_stderr_flush();
    log_unlock();
    return 0;
}

void log_stderr_set_buffered(bool on)
{
    buffered = on;
    if (!on)
        log_stderr_flush();
}

void log_stderr_attach_event(sd_event *e)
{
    log_queue_attach(&stderr_queue, e, log_stderr_flush);
    log_stderr_flush();
}

void log_stderr_detach_event(void)
{
    log_queue_attach(&stderr_queue, NULL, NULL);
}

bool log_stderr_empty(void)
{
    return pending.buf.len == 0;
}

int log_stderr_fd(void)
{
    return stderr_fd;
}

uint64_t log_stderr_discard(void)
{
    uint64_t lost = 0;
    for (size_t i = stderr_queue.head; i < pending.buf.len; i++)
        lost += pending.buf.p[i] == '\n';
    stderr_queue.dropped_total += lost;
    json_writer_free(&pending);
    stderr_queue.head = 0;
    stderr_backlog_note();
    return lost;
}

uint64_t log_stderr_dropped(void)
{
    return stderr_queue.dropped_total;
}

void log_stderr_set_owed(size_t owed_bytes)
{
    size_t fill = stderr_backlog.fill;
    log_backlog_init(&stderr_backlog, owed_bytes);
    log_backlog_update(&stderr_backlog, fill, false, clock_usec(CLOCK_MONOTONIC));
}

LogPressure log_stderr_pressure(void)
{
    if (log_backlog_quiet(&stderr_backlog))
        return LOG_PRESSURE_NONE;
    return log_backlog_pressure(&stderr_backlog, clock_usec(CLOCK_MONOTONIC));
}
