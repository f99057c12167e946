/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a log event carries besides its message, for the front (log.h) and both sinks
 * (log-journal.c, log-stderr.c): its MESSAGE_ID, its optional fields, and the one table both
 * sinks write those fields from. */

/* One MESSAGE_ID per kind of event; argus-orchestrator.catalog explains each. */
#define MSGID_STARTED "0ab6c76247424b319f4e54d04c36e08b"
#define MSGID_ENQUEUED "a4797921098147a0bd3f6417c42ebc5f"
#define MSGID_ENQUEUE_FAILED "b4407eb82a8f4bd8b3165f8e1f7186a6"
#define MSGID_REJECTED "e2c01d17756a49f48483174d2c494213"
#define MSGID_WORKER_RETRY "4dd37ce2369e4eb491a83b3471e713d7"
#define MSGID_CONFIG_INVALID "a625bda2409f4b89bf4e3b7af3c4e81f"
#define MSGID_STOPPING "b4936a867d8f4e8e959822e733b97a97"
#define MSGID_STOPPED "cbf1ed99175f441d9a131933ad581524"
#define MSGID_IDLE_EXIT "b11a1f4b04c34bed82493a1da41560bb"
#define MSGID_REQUEST "dc1155837020477eadc5010f5d3f010f"
#define MSGID_PROTOCOL_ERROR "baaf71ffbd0147ef80b3715a385d509b"
#define MSGID_LOG_DROPPED "c63ae9255ddd4d18b3ae0b3e4e9e0faa"
#define MSGID_SPOOL_QUEUED "ddcfe60150d84d30a758bc95c118c86f"
#define MSGID_SPOOL_DELIVERED "6e055aea87724f12a63b4970bacb22ec"
#define MSGID_SPOOL_DEAD "dc480c3f8f02437a8b8fac2ae5ef268c"
#define MSGID_SPOOL_UNAVAILABLE "37c0a06e54414ee9b7f77944f8e78051"
#define MSGID_SPOOL_CORRUPT "50bb5460132b4dc7891adb94883ee9a3"
#define MSGID_SPOOL_EXPIRED "feb2b0da2a894e56b4a335d20a988016"
#define MSGID_SPOOL_PAUSED "43637256d4d24c8cb522c022c59bd342"
#define MSGID_SPOOL_RESUMED "72d3b78fa0494b2687d89d010ac93348"
#define MSGID_SPOOL_REPLACED "b33bac39404c441db1c6b72554b1a6bc"

/* Optional structured fields of an event; zero/NULL members are left out. Both sinks write
 * them from one table, log-fields.c's log_fields (journal name, JSON name, type). */
typedef struct LogFields {
    const char *place_id;
    const char *job_id;
    const char *request_id;
    const char *trace_id; /* W3C trace context (trace.h): the job's trace, and our span in it */
    const char *span_id;
    const char *worker_url;
    const char *error;
    int http_status;
    int worker_status;
    int attempt;
    int64_t duration_usec; /* with has_duration */
    bool has_duration;
    uint64_t dropped; /* log entries dropped (the "dropped" entry's count) */
} LogFields;

#define LOG_FIELDS(...) (&(const LogFields){__VA_ARGS__})

/* The optional fields of an event, in the order both sinks write them: a new field is a member
 * of LogFields and a line in log-fields.c's table. */
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

static inline const char *log_field_string(const LogFields *f, const LogFieldDef *d)
{
    return *(const char *const *)((const char *)f + d->offset);
}

static inline int log_field_int(const LogFields *f, const LogFieldDef *d)
{
    return *(const int *)((const char *)f + d->offset);
}

/* The table, in log-fields.c; LOG_FIELDS_N is its length (checked there). */
#define LOG_FIELDS_N 12
extern const LogFieldDef log_fields[];

static inline bool log_field_present(const LogFields *f, const LogFieldDef *d)
{
    switch (d->type) {
    case FIELD_STRING:
        return log_field_string(f, d) != NULL;
    case FIELD_INT:
        return log_field_int(f, d) != 0;
    case FIELD_DURATION:
        return f->has_duration;
    case FIELD_COUNT:
        return f->dropped != 0;
    }
    return false;
}

/* Calls fn for each field of f that is present, in the table's order; f may be NULL. Inline, so
 * that each sink's walk calls its fn directly, as when the table was in log.c. */
static inline void log_fields_walk(const LogFields *f,
                                   void (*fn)(void *sink, const LogFieldDef *d, const LogFields *f),
                                   void *sink)
{
    for (size_t i = 0; f && i < LOG_FIELDS_N; i++)
        if (log_field_present(f, &log_fields[i]))
            fn(sink, &log_fields[i], f);
}
