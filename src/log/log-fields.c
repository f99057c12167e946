/* SPDX-License-Identifier: MIT */
#include "log-fields.h"

#include "macro.h"

const LogFieldDef log_fields[] = {
    {"PLACE_ID", "placeId", FIELD_STRING, offsetof(LogFields, place_id)},
    {"JOB_ID", "jobId", FIELD_STRING, offsetof(LogFields, job_id)},
    {"REQUEST_ID", "requestId", FIELD_STRING, offsetof(LogFields, request_id)},
    {"TRACE_ID", "traceId", FIELD_STRING, offsetof(LogFields, trace_id)},
    {"SPAN_ID", "spanId", FIELD_STRING, offsetof(LogFields, span_id)},
    {"HTTP_STATUS", "status", FIELD_INT, offsetof(LogFields, http_status)},
    {"DURATION_USEC", "duration", FIELD_DURATION, offsetof(LogFields, duration_usec)},
    {"WORKER_URL", "workerUrl", FIELD_STRING, offsetof(LogFields, worker_url)},
    {"WORKER_STATUS", "workerStatus", FIELD_INT, offsetof(LogFields, worker_status)},
    {"ATTEMPT", "attempt", FIELD_INT, offsetof(LogFields, attempt)},
    {"ERROR", "error", FIELD_STRING, offsetof(LogFields, error)},
    {"DROPPED_ENTRIES", "droppedEntries", FIELD_COUNT, offsetof(LogFields, dropped)},
};

_Static_assert(ELEMENTSOF(log_fields) == LOG_FIELDS_N, "LOG_FIELDS_N is the table's length");
