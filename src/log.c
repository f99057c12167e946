/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <syslog.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "json-writer.h"
#include "macro.h"
#include "timefmt.h"
#include "utf8.h"

/* The sink and level are process-wide by nature (there is one stderr), set once at start. */
static LogLevel log_min_level = LOG_LEVEL_INFO;
static bool log_to_journal;

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

#define MAX_FIELDS 16

/* The fields of one journal entry, formatted into one stack buffer (a field that does not fit
 * gets its own allocation): an entry per request should cost no malloc. */
typedef struct JournalEntry {
    struct iovec iov[MAX_FIELDS];
    int n;
    char *heap[MAX_FIELDS];
    int n_heap;
    size_t used;
    char buf[8192];
} JournalEntry;

/* The field at p (in the stack buffer, or malloc'd when `heap`) with what is not UTF-8 replaced
 * by U+FFFD: a field can hold a client's bytes (MESSAGE has request paths), and the journal
 * should hold text there, as the JSON lines do. Checking costs one pass over bytes that are
 * nearly always ASCII; only a field that needs it is copied. */
static void entry_push(JournalEntry *e, char *p, size_t l, bool heap)
{
    if (!utf8_is_valid(p, l)) {
        size_t sl = utf8_sanitized_length(p, l);
        bool fits = !heap && sl < sizeof(e->buf) - e->used;
        char *q = fits ? e->buf + e->used : malloc(sl + 1);
        if (q) {
            utf8_sanitize(p, l, q);
            q[sl] = '\0';
        }
        if (fits)
            e->used += sl + 1;
        if (heap)
            free(p);
        if (!q)
            return;
        p = q, l = sl, heap = !fits;
    }
    if (heap)
        e->heap[e->n_heap++] = p;
    e->iov[e->n++] = (struct iovec){p, l};
}

__attribute__((format(printf, 2, 3))) static void entry_add(JournalEntry *e, const char *fmt, ...)
{
    if (e->n >= MAX_FIELDS)
        return;
    va_list ap;
    va_start(ap, fmt);
    int l = vsnprintf(e->buf + e->used, sizeof(e->buf) - e->used, fmt, ap);
    va_end(ap);
    if (l < 0)
        return;
    if ((size_t)l < sizeof(e->buf) - e->used) {
        char *p = e->buf + e->used;
        e->used += (size_t)l + 1;
        entry_push(e, p, (size_t)l, false);
        return;
    }
    char *h;
    va_start(ap, fmt);
    l = vasprintf(&h, fmt, ap);
    va_end(ap);
    if (l < 0)
        return;
    entry_push(e, h, (size_t)l, true);
}

static void journal_field(void *sink, const LogFieldDef *d, const LogFields *f)
{
    JournalEntry *e = sink;
    switch (d->type) {
    case FIELD_STRING:
        entry_add(e, "%s=%s", d->journal, field_string(f, d));
        break;
    case FIELD_INT:
        entry_add(e, "%s=%d", d->journal, field_int(f, d));
        break;
    case FIELD_DURATION:
        entry_add(e, "%s=%lld", d->journal, (long long)f->duration_usec);
        break;
    }
}

static void send_journal(LogLevel level, const char *message_id, const LogFields *f,
                         const char *msg)
{
    JournalEntry e;
    e.n = e.n_heap = 0;
    e.used = 0;
    entry_add(&e, "MESSAGE=%s", msg);
    entry_add(&e, "PRIORITY=%d", level_to_priority(level));
    entry_add(&e, "SYSLOG_IDENTIFIER=argus-orchestrator");
    if (message_id)
        entry_add(&e, "MESSAGE_ID=%s", message_id);
    log_fields_walk(f, journal_field, &e);
    sd_journal_sendv(e.iov, e.n);
    for (int i = 0; i < e.n_heap; i++)
        free(e.heap[i]);
}

/* Under the event loop, JSON lines are gathered and written once per loop iteration
 * (log_flush), not once each: a busy loop logs with one write(2) for many requests. */
static JsonWriter pending;
static bool buffered;

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
    }
}

static void send_json_line(LogLevel level, const LogFields *f, const char *msg)
{
    JsonWriter *w = &pending;
    json_writer_begin(w);
    json_writer_string(w, "level", log_level_to_string(level));
    json_writer_string(w, "time", rfc3339_now());
    json_writer_string(w, "msg", msg);
    log_fields_walk(f, json_field, w);
    json_writer_end(w);
    json_writer_raw(w, "\n", 1);
    if (w->buf.failed) {
        /* out of memory: drop what was gathered rather than write half a line */
        json_writer_free(w);
        return;
    }
    if (!buffered || w->buf.len >= 64 * 1024)
        log_flush();
}

void log_flush(void)
{
    size_t off = 0;
    while (off < pending.buf.len) {
        ssize_t k = write(STDERR_FILENO, pending.buf.p + off, pending.buf.len - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break; /* stderr is gone: nothing else to tell it with */
        off += (size_t)k;
    }
    pending.buf.len = 0;
    if (pending.buf.cap > 256 * 1024)
        json_writer_free(&pending); /* a burst should not keep its memory */
}

void log_set_buffered(bool on)
{
    buffered = on;
    if (!on)
        log_flush();
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
