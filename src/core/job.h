/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define PLACE_ID_MAX 1024
#define JOB_ID_PREFIX "reviews:"
#define JOB_ID_SUFFIX ":start"
#define JOB_ID_MAX (sizeof(JOB_ID_PREFIX) - 1 + PLACE_ID_MAX + sizeof(JOB_ID_SUFFIX) - 1)
/* An X-Request-Id is taken from the client up to this length (routes.c), else made. */
#define REQUEST_ID_MAX 128
/* Nesting deeper than this is rejected as invalid JSON before it costs anything. */
#define REQUEST_JSON_MAX_DEPTH 16

/* One job as a request or a delivery from the spool names it, handed to the worker client and
 * the spool: strings borrowed for the length of the call. */
typedef struct JobRef {
    const char *place_id;
    const char *job_id;
    const char *request_id; /* may be NULL */
    /* The W3C trace the worker is sent (trace.h): "00-<trace-id>-<our span id>-<flags>" and the
     * tracestate; NULL or "" when none */
    const char *traceparent;
    const char *tracestate;
} JobRef;

typedef enum JobError {
    JOB_OK,
    JOB_INVALID_JSON,
    JOB_PLACE_ID_REQUIRED,
    JOB_PLACE_ID_NOT_STRING,
    JOB_PLACE_ID_INVALID,
} JobError;

/* The client-facing message for e (README.md, "POST /enqueue") ("invalid JSON", "placeId is
 * required", …). */
const char *job_error_message(JobError e);

/* 1 to PLACE_ID_MAX characters of [A-Za-z0-9_-]. */
bool place_id_is_valid(const char *s, size_t len);

/* Parses an /enqueue body: one JSON object with a valid string "placeId". On success copies it,
 * NUL-terminated, into ret_place_id (PLACE_ID_MAX + 1 bytes). */
JobError job_parse_request(const char *body, size_t len,
                           char ret_place_id[static PLACE_ID_MAX + 1]);

/* "reviews:<placeId>:start" into buf (JOB_ID_MAX + 1 bytes); returns its length. */
size_t job_id_format(const char *place_id, char buf[static JOB_ID_MAX + 1]);
