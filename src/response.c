/* SPDX-License-Identifier: MIT */
#include "response.h"

#include <json-c/json.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *json_object_of_strings(size_t *ret_len, const char *key, ...)
{
    json_object *o = json_object_new_object();
    if (!o)
        return NULL;

    va_list ap;
    va_start(ap, key);
    bool ok = true;
    for (const char *k = key; k; k = va_arg(ap, const char *)) {
        const char *v = va_arg(ap, const char *);
        if (!v)
            continue;
        json_object *s = json_object_new_string(v);
        if (!s || json_object_object_add(o, k, s) < 0) {
            json_object_put(s);
            ok = false;
            break;
        }
    }
    va_end(ap);

    char *r = NULL;
    if (ok) {
        size_t len;
        const char *t = json_object_to_json_string_length(
            o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        if (t && (r = malloc(len + 1))) {
            memcpy(r, t, len + 1);
            *ret_len = len;
        }
    }
    json_object_put(o);
    return r;
}

char *response_enqueued(const char *place_id, const char *job_id, const char *timestamp,
                        size_t *ret_len)
{
    return json_object_of_strings(ret_len, "status", "enqueued", "placeId", place_id, "jobId",
                                  job_id, "timestamp", timestamp, NULL);
}

char *response_error(const char *message, const char *timestamp, size_t *ret_len)
{
    return json_object_of_strings(ret_len, "status", "error", "error", message, "timestamp",
                                  timestamp, NULL);
}

char *response_worker_error(const char *reason, const char *place_id, const char *job_id,
                            const char *timestamp, size_t *ret_len)
{
    char *msg;
    if (asprintf(&msg, "worker enqueue failed: %s", reason) < 0)
        return NULL;
    char *r = json_object_of_strings(ret_len, "status", "error", "error", msg, "placeId", place_id,
                                     "jobId", job_id, "timestamp", timestamp, NULL);
    free(msg);
    return r;
}

char *response_health(const char *timestamp, const char *uptime, const char *worker_url,
                      size_t *ret_len)
{
    return json_object_of_strings(ret_len, "status", "healthy", "service", "argus-orchestrator",
                                  "timestamp", timestamp, "uptime", uptime, "worker_url",
                                  worker_url, NULL);
}
