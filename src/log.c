/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "buffer.h"
#include "json-writer.h"
#include "macro.h"
#include "timefmt.h"
#include "utf8.h"

/* The sink and level are process-wide by nature (there is one stderr), set once at start. */
static LogLevel log_min_level = LOG_LEVEL_INFO;
static bool log_to_journal;

static void stderr_setup(void);

bool log_fd_is_journal_stream(const char *journal_stream, int fd)
{
    if (!journal_stream)
        return false;
    unsigned long long dev, ino;
    char tail;
    if (sscanf(journal_stream, "%llu:%llu%c", &dev, &ino, &tail) != 2)
        return false;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

void log_setup(LogLevel level)
{
    log_min_level = level;
    log_to_journal = log_fd_is_journal_stream(getenv("JOURNAL_STREAM"), STDERR_FILENO);
    stderr_setup();
}

void log_set_journal(bool on)
{
    log_to_journal = on;
}

bool log_enabled(LogLevel level)
{
    return level >= log_min_level;
}

static int level_to_priority(LogLevel l)
{
    switch (l) {
    case LOG_LEVEL_DEBUG:
        return LOG_DEBUG;
    case LOG_LEVEL_INFO:
        return LOG_INFO;
    case LOG_LEVEL_WARN:
        return LOG_WARNING;
    default:
        return LOG_ERR;
    }
}

/* The optional fields of an event, in the order both sinks write them: a new field is a member
 * of LogFields and a line here. */
typedef enum LogFieldType {
    FIELD_STRING,   /* const char *, left out when NULL */
    FIELD_INT,      /* int, left out when 0 */
    FIELD_DURATION, /* duration_usec, with has_duration: microseconds in the journal, Go's
                     * duration string in JSON */
    FIELD_COUNT,    /* dropped, left out when 0 */
} LogFieldType;

typedef struct LogFieldDef {
    const char *journal; /* the journal field's name */
    const char *json;    /* the JSON member's name */
    LogFieldType type;
    size_t offset; /* in LogFields */
} LogFieldDef;

static const LogFieldDef log_fields[] = {
    {"PLACE_ID", "placeId", FIELD_STRING, offsetof(LogFields, place_id)},
    {"JOB_ID", "jobId", FIELD_STRING, offsetof(LogFields, job_id)},
    {"REQUEST_ID", "requestId", FIELD_STRING, offsetof(LogFields, request_id)},
    {"HTTP_STATUS", "status", FIELD_INT, offsetof(LogFields, http_status)},
    {"DURATION_USEC", "duration", FIELD_DURATION, offsetof(LogFields, duration_usec)},
    {"WORKER_URL", "workerUrl", FIELD_STRING, offsetof(LogFields, worker_url)},
    {"WORKER_STATUS", "workerStatus", FIELD_INT, offsetof(LogFields, worker_status)},
    {"ATTEMPT", "attempt", FIELD_INT, offsetof(LogFields, attempt)},
    {"ERROR", "error", FIELD_STRING, offsetof(LogFields, error)},
    {"DROPPED_ENTRIES", "droppedEntries", FIELD_COUNT, offsetof(LogFields, dropped)},
};

static const char *field_string(const LogFields *f, const LogFieldDef *d)
{
    return *(const char *const *)((const char *)f + d->offset);
}

static int field_int(const LogFields *f, const LogFieldDef *d)
{
    return *(const int *)((const char *)f + d->offset);
}

static bool field_present(const LogFields *f, const LogFieldDef *d)
{
    switch (d->type) {
    case FIELD_STRING:
        return field_string(f, d) != NULL;
    case FIELD_INT:
        return field_int(f, d) != 0;
    case FIELD_DURATION:
        return f->has_duration;
    case FIELD_COUNT:
        return f->dropped != 0;
    }
    return false;
}

/* Calls fn for each field of f that is present, in the table's order; f may be NULL. */
static void log_fields_walk(const LogFields *f,
                            void (*fn)(void *sink, const LogFieldDef *d, const LogFields *f),
                            void *sink)
{
    for (size_t i = 0; f && i < ELEMENTSOF(log_fields); i++)
        if (field_present(f, &log_fields[i]))
            fn(sink, &log_fields[i], f);
}

/* ---- the journal sink ----
 *
 * Entries are written in journald's native protocol by hand, as sd_journal_sendv() does (systemd
 * 252, src/libsystemd/sd-journal/journal-send.c): "NAME=value\n" per field, or for a value that
 * holds a newline "NAME\n", its length as 64-bit little endian, the value and "\n"; an entry too
 * large for a datagram goes as a sealed memfd passed with SCM_RIGHTS. Unlike sd_journal_sendv(),
 * the socket is our own, connected (so that EPOLLOUT says when journald's queue has room) and
 * non-blocking: an entry journald cannot take now waits in a bounded queue, flushed when the
 * socket is writable again, and never holds up the loop. */

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
#define JOURNAL_SNDBUF (8 * 1024 * 1024) /* SNDBUF_SIZE of journal-send.c */

/* The queue's bounds: 4 MiB is some 12k entries of ~350 bytes (a job's), or 16k at most, i.e.
 * about a second of the service's full rate: it rides out journald's short stalls (a rotation,
 * a flush) and costs at most 4 MiB beside the 8 MiB socket buffer; past it, a longer stall
 * costs entries (counted) rather than memory. */
#define QUEUE_MAX_BYTES (4 * 1024 * 1024)
#define QUEUE_MAX_ENTRIES 16384

/* Queued records, oldest first, from p + head: for the journal each is a 32-bit length and a
 * datagram; for stderr, bytes. */
typedef struct LogQueue {
    Buffer buf;
    size_t head;
    size_t n;               /* entries (journal) */
    uint64_t dropped;       /* since the last "dropped" entry */
    uint64_t dropped_total; /* for /metrics */
    sd_event_source *io;    /* EPOLLOUT, enabled while the queue is not empty */
} LogQueue;

static int journal_fd = -EBADF;
static bool journal_fd_given; /* by log_set_journal_fd(): never reconnected */
static LogQueue journal_queue;
static Buffer journal_entry; /* the entry being formatted, reused */

static size_t queue_bytes(const LogQueue *q)
{
    return q->buf.len - q->head;
}

static void queue_consumed(LogQueue *q, size_t n)
{
    q->head += n;
    if (q->head == q->buf.len) {
        q->head = q->buf.len = 0;
        if (q->buf.cap > 256 * 1024)
            buffer_free(&q->buf); /* a stall should not keep its memory */
    } else if (q->head > 64 * 1024 && q->head > q->buf.len / 2) {
        memmove(q->buf.p, q->buf.p + q->head, q->buf.len - q->head);
        q->buf.len -= q->head;
        q->head = 0;
    }
}

/* The loop the queues are flushed from (log_attach_event), or NULL. */
static sd_event *log_loop;

/* Turns the queue's EPOLLOUT source on while it holds something (creating it on fd if need be),
 * off when it is empty. */
static void queue_arm(LogQueue *q, int fd, sd_event_io_handler_t handler)
{
    bool want = queue_bytes(q) > 0;
    if (!q->io && want && log_loop && fd >= 0 &&
        sd_event_add_io(log_loop, &q->io, fd, EPOLLOUT, handler, NULL) >= 0)
        (void)sd_event_source_set_description(q->io, "log-writable");
    if (q->io)
        (void)sd_event_source_set_enabled(q->io, want ? SD_EVENT_ON : SD_EVENT_OFF);
}

static int on_journal_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata);

static int journal_connect(void)
{
    if (journal_fd >= 0)
        return 0;
    if (journal_fd_given)
        return -ENOTCONN;
    _cleanup_close_ int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int v = JOURNAL_SNDBUF, cur = 0;
    socklen_t sl = sizeof(cur);
    (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &v, sizeof(v));
    if (getsockopt(fd, SOL_SOCKET, SO_SNDBUF, &cur, &sl) == 0 && cur < 2 * v)
        (void)setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &v, sizeof(v)); /* as root */
    static const struct sockaddr_un sa = {.sun_family = AF_UNIX, .sun_path = JOURNAL_SOCKET};
    if (connect(fd, (const struct sockaddr *)&sa,
                offsetof(struct sockaddr_un, sun_path) + sizeof(JOURNAL_SOCKET)) < 0)
        return -errno;
    journal_fd = TAKE_FD(fd);
    return 0;
}

static void journal_disconnect(void)
{
    journal_queue.io = sd_event_source_disable_unref(journal_queue.io);
    if (!journal_fd_given)
        closep(&journal_fd);
    journal_fd = -EBADF;
}

/* An entry too large for a datagram: journald reads it from a sealed memfd. */
static int journal_send_memfd(const char *p, size_t l)
{
    _cleanup_close_ int mfd = memfd_create("argus-journal-entry", MFD_ALLOW_SEALING | MFD_CLOEXEC);
    if (mfd < 0)
        return -errno;
    for (size_t off = 0; off < l;) {
        ssize_t k = write(mfd, p + off, l - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -EIO;
        off += (size_t)k;
    }
    if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
        return -errno;
    union {
        struct cmsghdr h;
        char buf[CMSG_SPACE(sizeof(int))];
    } control = {0};
    struct msghdr mh = {.msg_control = &control, .msg_controllen = sizeof(control)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &mfd, sizeof(int));
    if (sendmsg(journal_fd, &mh, MSG_DONTWAIT | MSG_NOSIGNAL) < 0)
        return -errno;
    return 0;
}

/* Sends one entry now: 0, -EAGAIN when journald cannot take it yet, or another error (lost). */
static int journal_send_now(const char *p, size_t l)
{
    for (int attempt = 0;; attempt++) {
        int r = journal_connect();
        if (r < 0)
            return r;
        if (send(journal_fd, p, l, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0)
            return 0;
        r = -errno;
        if (r == -EINTR)
            continue;
        if (r == -EAGAIN || r == -EWOULDBLOCK)
            return -EAGAIN;
        if (r == -EMSGSIZE || r == -ENOBUFS) {
            r = journal_send_memfd(p, l);
            return r == -EWOULDBLOCK ? -EAGAIN : r;
        }
        /* journald restarted (the socket we are connected to is gone): connect again, once */
        if (attempt > 0 || !(r == -ECONNREFUSED || r == -ENOTCONN || r == -ENOENT))
            return r;
        journal_disconnect();
    }
}

static void journal_enqueue(const char *p, size_t l)
{
    uint32_t l32 = (uint32_t)l;
    buffer_append(&journal_queue.buf, (const char *)&l32, sizeof(l32));
    buffer_append(&journal_queue.buf, p, l);
    if (journal_queue.buf.failed) {
        /* out of memory: the queue is lost, counted */
        journal_queue.dropped += journal_queue.n + 1;
        journal_queue.dropped_total += journal_queue.n + 1;
        buffer_free(&journal_queue.buf);
        journal_queue.head = journal_queue.n = 0;
        return;
    }
    journal_queue.n++;
    queue_arm(&journal_queue, journal_fd, on_journal_writable);
}

static bool journal_queue_has_room(size_t l)
{
    return journal_queue.n < QUEUE_MAX_ENTRIES &&
           queue_bytes(&journal_queue) + sizeof(uint32_t) + l <= QUEUE_MAX_BYTES;
}

static void journal_note_drops(void);

/* Sends the entry, or queues it behind those waiting, or drops it (counted) when the queue is
 * full. `note` is the "dropped" entry itself, which always gets a place. */
static void journal_submit(const char *p, size_t l, bool note)
{
    if (!note && journal_queue.dropped > 0 && journal_queue_has_room(512))
        journal_note_drops(); /* where the gap is, before what follows it */
    if (journal_queue.n == 0) {
        int r = journal_send_now(p, l);
        if (r != -EAGAIN) {
            if (r < 0 && !note && r != -ENOENT && r != -ECONNREFUSED) {
                journal_queue.dropped++; /* cannot be sent at all */
                journal_queue.dropped_total++;
            }
            return;
        }
    }
    if (!note && !journal_queue_has_room(l)) {
        journal_queue.dropped++;
        journal_queue.dropped_total++;
        return;
    }
    journal_enqueue(p, l);
}

/* Appends one field, NAME=value, as journald's native protocol has it. What is not UTF-8 in the
 * value is replaced by U+FFFD: a field can hold a client's bytes (MESSAGE has request paths), and
 * the journal should hold text there, as the JSON lines do. */
static void entry_put(Buffer *b, const char *name, size_t nl, const char *v, size_t vl)
{
    bool valid = utf8_is_valid(v, vl);
    size_t out = valid ? vl : utf8_sanitized_length(v, vl);
    bool binary = memchr(v, '\n', vl) != NULL; /* sanitizing keeps newlines as they are */
    if (!buffer_reserve(b, nl + 1 + sizeof(uint64_t) + out + 1))
        return;
    char *w = b->p + b->len;
    memcpy(w, name, nl);
    w += nl;
    if (binary) {
        *w++ = '\n';
        uint64_t le = htole64((uint64_t)out);
        memcpy(w, &le, sizeof(le));
        w += sizeof(le);
    } else
        *w++ = '=';
    if (valid)
        memcpy(w, v, vl);
    else
        utf8_sanitize(v, vl, w);
    w += out;
    *w++ = '\n';
    b->len = (size_t)(w - b->p);
}

static void entry_put_str(Buffer *b, const char *name, const char *v)
{
    entry_put(b, name, strlen(name), v, strlen(v));
}

static void entry_put_int(Buffer *b, const char *name, long long v)
{
    char d[24];
    char *e = d + sizeof(d), *s = e;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do
        *--s = (char)('0' + u % 10);
    while ((u /= 10) > 0);
    if (v < 0)
        *--s = '-';
    entry_put(b, name, strlen(name), s, (size_t)(e - s));
}

static void journal_field(void *sink, const LogFieldDef *d, const LogFields *f)
{
    Buffer *b = sink;
    switch (d->type) {
    case FIELD_STRING:
        entry_put_str(b, d->journal, field_string(f, d));
        break;
    case FIELD_INT:
        entry_put_int(b, d->journal, field_int(f, d));
        break;
    case FIELD_DURATION:
        entry_put_int(b, d->journal, (long long)f->duration_usec);
        break;
    case FIELD_COUNT:
        entry_put_int(b, d->journal, (long long)f->dropped);
        break;
    }
}

/* The entry's fields in the order sd_journal_sendv() got them before: MESSAGE, PRIORITY,
 * SYSLOG_IDENTIFIER, MESSAGE_ID, then the table's. */
static void journal_format(Buffer *b, LogLevel level, const char *message_id, const LogFields *f,
                           const char *msg)
{
    static const char *const priority[] = {[LOG_DEBUG] = "PRIORITY=7\n",
                                           [LOG_INFO] = "PRIORITY=6\n",
                                           [LOG_WARNING] = "PRIORITY=4\n",
                                           [LOG_ERR] = "PRIORITY=3\n"};
    static const char ident[] = "SYSLOG_IDENTIFIER=argus-orchestrator\n";
    b->len = 0;
    b->failed = false;
    entry_put(b, "MESSAGE", 7, msg, strlen(msg));
    buffer_append(b, priority[level_to_priority(level)], 11);
    buffer_append(b, ident, sizeof(ident) - 1);
    if (message_id)
        entry_put(b, "MESSAGE_ID", 10, message_id, strlen(message_id));
    log_fields_walk(f, journal_field, b);
}

static void send_journal(LogLevel level, const char *message_id, const LogFields *f,
                         const char *msg)
{
    Buffer *b = &journal_entry;
    journal_format(b, level, message_id, f, msg);
    if (b->failed) {
        journal_queue.dropped++;
        journal_queue.dropped_total++;
        buffer_free(b);
        return;
    }
    journal_submit(b->p, b->len, false);
}

static void journal_note_drops(void)
{
    uint64_t n = journal_queue.dropped;
    journal_queue.dropped = 0;
    char msg[128];
    snprintf(msg, sizeof(msg), "journald was not taking entries: %llu log entries dropped",
             (unsigned long long)n);
    Buffer b = {0};
    journal_format(&b, LOG_LEVEL_WARN, MSGID_LOG_DROPPED, LOG_FIELDS(.dropped = n), msg);
    if (!b.failed)
        journal_submit(b.p, b.len, true);
    buffer_free(&b);
}

/* Sends what the queue holds until journald stops taking it; true once it is empty. */
static bool journal_flush(void)
{
    LogQueue *q = &journal_queue;
    bool sent = false;
    while (q->n > 0) {
        uint32_t l;
        memcpy(&l, q->buf.p + q->head, sizeof(l));
        int r = journal_send_now(q->buf.p + q->head + sizeof(l), l);
        if (r == -EAGAIN)
            break;
        if (r < 0 && r != -ENOENT && r != -ECONNREFUSED) {
            q->dropped++;
            q->dropped_total++;
        }
        q->n--;
        queue_consumed(q, sizeof(l) + l);
        sent = true;
    }
    if (sent && q->dropped > 0 && journal_queue_has_room(512))
        journal_note_drops();
    queue_arm(q, journal_fd, on_journal_writable);
    return q->n == 0;
}

static int on_journal_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s, (void)fd, (void)revents, (void)userdata;
    (void)journal_flush();
    return 0;
}

void log_set_journal_fd(int fd)
{
    journal_disconnect();
    journal_fd_given = fd >= 0;
    journal_fd = fd >= 0 ? fd : -EBADF;
    journal_queue.dropped = 0;
}

/* ---- the JSON-lines sink on stderr ----
 *
 * Under the event loop, JSON lines are gathered and written once per loop iteration
 * (log_flush), not once each: a busy loop logs with one write(2) for many requests. When stderr
 * is a pipe or a socket, whoever reads it may stop (a container runtime, a log shipper): then it
 * is written without waiting (a pipe through a description of its own opened O_NONBLOCK, so that
 * the flag does not leak into the one shared with the parent; a socket with MSG_DONTWAIT), and
 * what it does not take waits in `pending` up to QUEUE_MAX_BYTES, past which whole lines are
 * dropped and counted. A file or a terminal is written as it always was. */
typedef enum StderrMode {
    STDERR_BLOCKING,
    STDERR_PIPE,   /* stderr_fd: our O_NONBLOCK description of the pipe */
    STDERR_SOCKET, /* send(MSG_DONTWAIT) */
} StderrMode;

static JsonWriter pending;
static LogQueue stderr_queue; /* its buf is unused: pending.buf is the queue */
static StderrMode stderr_mode = STDERR_BLOCKING;
static int stderr_fd = STDERR_FILENO;
static bool buffered;

static void stderr_setup(void)
{
    stderr_queue.io = sd_event_source_disable_unref(stderr_queue.io);
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

static void json_field(void *sink, const LogFieldDef *d, const LogFields *f)
{
    JsonWriter *w = sink;
    switch (d->type) {
    case FIELD_STRING:
        json_writer_string(w, d->json, field_string(f, d));
        break;
    case FIELD_INT:
        json_writer_int(w, d->json, field_int(f, d));
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

static void send_json_line(LogLevel level, const LogFields *f, const char *msg)
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
    if (w->buf.len - stderr_queue.head > QUEUE_MAX_BYTES) {
        w->buf.len = before; /* stderr is not being read: the line is dropped, counted */
        w->buf.p[before] = '\0';
        stderr_queue.dropped++;
        stderr_queue.dropped_total++;
        return;
    }
    if (!buffered || w->buf.len - stderr_queue.head >= 64 * 1024)
        log_flush();
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
    }
    b->len = stderr_queue.head = 0;
    return true;
}

void log_flush(void)
{
    if (stderr_queue.io && sd_event_source_get_enabled(stderr_queue.io, NULL) > 0)
        return; /* waiting for stderr to be writable: on_stderr_writable writes */
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
    if (!stderr_queue.io && !drained && log_loop &&
        sd_event_add_io(log_loop, &stderr_queue.io, stderr_fd, EPOLLOUT, on_stderr_writable,
                        NULL) >= 0)
        (void)sd_event_source_set_description(stderr_queue.io, "log-stderr-writable");
    if (stderr_queue.io)
        (void)sd_event_source_set_enabled(stderr_queue.io, drained ? SD_EVENT_OFF : SD_EVENT_ON);
}

static int on_stderr_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)fd, (void)revents, (void)userdata;
    (void)sd_event_source_set_enabled(s, SD_EVENT_OFF);
    log_flush();
    return 0;
}

void log_set_buffered(bool on)
{
    buffered = on;
    if (!on)
        log_flush();
}

/* ---- the loop, the exit and /metrics ---- */

void log_attach_event(sd_event *e)
{
    log_loop = e;
    queue_arm(&journal_queue, journal_fd, on_journal_writable);
    log_flush();
}

void log_detach_event(void)
{
    journal_queue.io = sd_event_source_disable_unref(journal_queue.io);
    stderr_queue.io = sd_event_source_disable_unref(stderr_queue.io);
    log_loop = NULL;
}

uint64_t log_drain(uint64_t timeout_usec)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    uint64_t deadline = now + timeout_usec;
    for (;;) {
        bool j = journal_flush();
        log_flush();
        bool s = pending.buf.len == 0;
        if ((j && s) || now >= deadline)
            break;
        struct pollfd fds[2] = {{.fd = j ? -1 : journal_fd, .events = POLLOUT},
                                {.fd = s ? -1 : stderr_fd, .events = POLLOUT}};
        int ms = (int)((deadline - now + 999) / 1000);
        if (poll(fds, 2, ms) < 0 && errno != EINTR)
            break;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
    }
    /* what is still waiting is lost: count it */
    uint64_t lost_stderr = 0;
    for (size_t i = stderr_queue.head; i < pending.buf.len; i++)
        lost_stderr += pending.buf.p[i] == '\n';
    stderr_queue.dropped_total += lost_stderr;
    uint64_t lost = journal_queue.n + lost_stderr;
    journal_queue.dropped_total += journal_queue.n;
    journal_queue.n = journal_queue.head = journal_queue.buf.len = 0;
    buffer_free(&journal_queue.buf);
    json_writer_free(&pending);
    stderr_queue.head = 0;
    return lost;
}

uint64_t log_dropped(LogSink sink)
{
    return sink == LOG_SINK_JOURNAL ? journal_queue.dropped_total : stderr_queue.dropped_total;
}

/* A truncated message may end inside a UTF-8 sequence: cut the partial sequence off. */
static void utf8_trim_partial(char *s, size_t len)
{
    size_t i = len;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80)
        i--; /* continuation bytes */
    if (i == 0 || (unsigned char)s[i - 1] < 0x80)
        return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (len - (i - 1) < need)
        s[i - 1] = '\0';
}

void log_event(LogLevel level, const char *message_id, const LogFields *f, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    int saved_errno = errno;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof(msg))
        utf8_trim_partial(msg, sizeof(msg) - 1);
    if (log_to_journal)
        send_journal(level, message_id, f, msg);
    else
        send_json_line(level, f, msg);
    errno = saved_errno;
}
