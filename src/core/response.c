/* SPDX-License-Identifier: MIT */
#include "response.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json-writer.h"
#include "macro.h"

char *response_object(size_t *ret_len, const char *key, ...)
{
    JsonWriter w = {0};
    json_writer_begin(&w);
    va_list ap;
    va_start(ap, key);
    for (const char *k = key; k; k = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        if (v)
            json_writer_string(&w, k, v);
    }
    va_end(ap);
    json_writer_end(&w);
    return json_writer_take(&w, ret_len);
}

char *response_enqueued(const char *place_id, const char *job_id, const char *timestamp,
                        size_t *ret_len)
{
    return response_object(ret_len, "status", "enqueued", "placeId", place_id, "jobId", job_id,
                           "timestamp", timestamp, NULL);
}

char *response_queued(const char *place_id, const char *job_id, const char *timestamp,
                      size_t *ret_len)
{
    return response_object(ret_len, "status", "queued", "placeId", place_id, "jobId", job_id,
                           "timestamp", timestamp, NULL);
}

char *response_error(const char *message, const char *timestamp, size_t *ret_len)
{
    return response_object(ret_len, "status", "error", "error", message, "timestamp", timestamp,
                           NULL);
}

char *response_worker_error(const char *reason, const char *place_id, const char *job_id,
                            const char *timestamp, size_t *ret_len)
{
    _cleanup_free_ char *msg = NULL;
    if (asprintf(&msg, "worker enqueue failed: %s", reason) < 0) {
        msg = NULL; /* undefined after a failure */
        return NULL;
    }
    return response_object(ret_len, "status", "error", "error", msg, "placeId", place_id, "jobId",
                           job_id, "timestamp", timestamp, NULL);
}

char *response_health(const char *timestamp, const char *uptime, const char *worker_url,
                      size_t *ret_len)
{
    return response_object(ret_len, "status", "healthy", "service", "argus-orchestrator",
                           "timestamp", timestamp, "uptime", uptime, "worker_url", worker_url,
                           NULL);
}
