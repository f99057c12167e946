/* SPDX-License-Identifier: MIT */
#include "log-journal.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

#include "buffer.h"
#include "clock.h"
#include "log-backlog.h"
#include "log-queue.h"
#include "macro.h"
#include "utf8.h"

/* Entries are written in journald's native protocol by hand, as sd_journal_sendv() does (systemd
 * 252, src/libsystemd/sd-journal/journal-send.c): "NAME=value\n" per field, or for a value that
 * holds a newline "NAME\n", its length as 64-bit little endian, the value and "\n"; an entry too
 * large for a datagram goes as a sealed memfd passed with SCM_RIGHTS. Unlike sd_journal_sendv(),
 * the socket is our own, connected (so that EPOLLOUT says when journald's queue has room) and
 * non-blocking: an entry journald cannot take now waits in a bounded queue, flushed when the
 * socket is writable again, and never holds up the loop. */

#define JOURNAL_SOCKET "/run/systemd/journal/socket"
#define JOURNAL_SNDBUF (8 * 1024 * 1024) /* SNDBUF_SIZE of journal-send.c */

/* All of it under log_lock() (log-queue.h): log.c takes it around the calls of log-journal.h,
 * the io sources' handlers here. */
static int journal_fd = -EBADF;
static bool journal_fd_given; /* by log_journal_set_fd(): never reconnected */
static LogQueue journal_queue = {.io_name = "log-writable"};
static LogBacklog journal_backlog = LOG_BACKLOG_INIT(0); /* its marks and the progress rule */
static Buffer journal_entry;                             /* the entry being formatted, reused */
/* Another thread left the socket the queue's io source watches (journald restarted): the loop's
 * thread drops the source and closes the socket (retired; -EBADF when it was log_journal_set_fd's).
 */
static bool journal_io_stale;
static int journal_retired_fd = -EBADF;

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

/* Closes the socket. When the queue's io source watches it, only the loop's thread may drop the
 * source: another thread leaves the socket to that thread (journal_reap), and fails (false) when
 * one is left already. */
static bool journal_disconnect(void)
{
    LogQueue *q = &journal_queue;
    if (q->io && !log_queue_on_loop_thread(q)) {
        if (!journal_fd_given) {
            if (journal_retired_fd >= 0)
                return false;
            journal_retired_fd = journal_fd;
        }
        journal_fd = -EBADF;
        journal_io_stale = true;
        log_queue_wake(q);
        return true;
    }
    log_queue_drop_io(q);
    if (!journal_fd_given)
        closep(&journal_fd);
    journal_fd = -EBADF;
    return true;
}

/* On the loop's thread: the source and socket another thread left (journal_disconnect). */
static void journal_reap(void)
{
    log_queue_drop_io(&journal_queue);
    closep(&journal_retired_fd);
    journal_retired_fd = -EBADF;
    journal_io_stale = false;
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
        if (attempt > 0 || !(r == -ECONNREFUSED || r == -ENOTCONN || r == -ENOENT) ||
            !journal_disconnect())
            return r;
    }
}

/* The queue's fill for its marks: its bytes, an entry counting at least
 * LOG_BACKLOG_MIN_ENTRY_BYTES (which bounds the number of entries). */
static size_t journal_fill(void)
{
    size_t bytes = log_queue_bytes(&journal_queue);
    size_t entries = journal_queue.n * LOG_BACKLOG_MIN_ENTRY_BYTES;
    return bytes > entries ? bytes : entries;
}

/* The marks see the queue as it is now; `took`: journald took entries. */
static void journal_backlog_note(bool took)
{
    log_backlog_update(&journal_backlog, journal_fill(), took, clock_usec(CLOCK_MONOTONIC));
}

static bool journal_queue_has_room(size_t l)
{
    size_t need = sizeof(uint32_t) + l;
    if (need < LOG_BACKLOG_MIN_ENTRY_BYTES)
        need = LOG_BACKLOG_MIN_ENTRY_BYTES;
    return log_backlog_fits(&journal_backlog, journal_fill(), need);
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
        journal_backlog_note(false);
        return;
    }
    journal_queue.n++;
    journal_backlog_note(false);
    log_queue_arm(&journal_queue, true, journal_fd, on_journal_writable);
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
        entry_put_str(b, d->journal, log_field_string(f, d));
        break;
    case FIELD_INT:
        entry_put_int(b, d->journal, log_field_int(f, d));
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

void log_journal_send(LogLevel level, const char *message_id, const LogFields *f, const char *msg)
{
    if (journal_io_stale && log_queue_on_loop_thread(&journal_queue))
        journal_reap();
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
bool log_journal_flush(void)
{
    LogQueue *q = &journal_queue;
    if (journal_io_stale && log_queue_on_loop_thread(q))
        journal_reap();
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
        log_queue_consumed(q, sizeof(l) + l);
        sent = true;
    }
    if (sent && q->dropped > 0 && journal_queue_has_room(512))
        journal_note_drops();
    journal_backlog_note(sent);
    log_queue_arm(q, q->n > 0, journal_fd, on_journal_writable);
    return q->n == 0;
}

/* The queue's flush on the loop's thread, when another thread asks (log_queue_wake). */
static void journal_loop_flush(void)
{
    (void)log_journal_flush();
}

static int on_journal_writable(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
    (void)s, (void)fd, (void)revents, (void)userdata;
    log_lock();
    (void)log_journal_flush();
    log_unlock();
    return 0;
}

void log_journal_set_fd(int fd)
{
    if (journal_io_stale && log_queue_on_loop_thread(&journal_queue))
        journal_reap();
    (void)journal_disconnect();
    journal_fd_given = fd >= 0;
    journal_fd = fd >= 0 ? fd : -EBADF;
    journal_queue.dropped = 0;
}

void log_journal_attach_event(sd_event *e)
{
    if (journal_io_stale)
        journal_reap(); /* on the loop's thread */
    log_queue_attach(&journal_queue, e, journal_loop_flush);
    log_queue_arm(&journal_queue, journal_queue.n > 0, journal_fd, on_journal_writable);
}

void log_journal_detach_event(void)
{
    if (journal_io_stale)
        journal_reap(); /* on the loop's thread */
    log_queue_attach(&journal_queue, NULL, NULL);
}

int log_journal_fd(void)
{
    return journal_fd;
}

uint64_t log_journal_discard(void)
{
    uint64_t lost = journal_queue.n;
    journal_queue.dropped_total += journal_queue.n;
    journal_queue.n = journal_queue.head = journal_queue.buf.len = 0;
    buffer_free(&journal_queue.buf);
    journal_backlog_note(false);
    return lost;
}

uint64_t log_journal_dropped(void)
{
    return journal_queue.dropped_total;
}

void log_journal_set_owed(size_t owed_bytes)
{
    size_t fill = journal_backlog.fill;
    log_backlog_init(&journal_backlog, owed_bytes);
    log_backlog_update(&journal_backlog, fill, false, clock_usec(CLOCK_MONOTONIC));
}

LogPressure log_journal_pressure(void)
{
    if (log_backlog_quiet(&journal_backlog))
        return LOG_PRESSURE_NONE;
    return log_backlog_pressure(&journal_backlog, clock_usec(CLOCK_MONOTONIC));
}
