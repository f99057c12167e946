/* SPDX-License-Identifier: MIT */
#include "log-fields.h"

#include "macro.h"

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

static bool field_present(const LogFields *f, const LogFieldDef *d)
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

void log_fields_walk(const LogFields *f,
                     void (*fn)(void *sink, const LogFieldDef *d, const LogFields *f), void *sink)
{
    for (size_t i = 0; f && i < ELEMENTSOF(log_fields); i++)
        if (field_present(f, &log_fields[i]))
            fn(sink, &log_fields[i], f);
}
