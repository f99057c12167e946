/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/* JSON bodies of the answers of README.md's "API". Each returns a malloc'd NUL-terminated string
 * (NULL when out of memory) and its length in *ret_len. `timestamp` is RFC 3339. */

/* A flat object of string members from a NULL-terminated list of key, value pairs; a pair with a
 * NULL value is left out. */
char *response_object(size_t *ret_len, const char *key, ...) __attribute__((sentinel));

char *response_enqueued(const char *place_id, const char *job_id, const char *timestamp,
                        size_t *ret_len);
/* The 202 of a job the spool holds (README.md, "What a 202 means"). */
char *response_queued(const char *place_id, const char *job_id, const char *timestamp,
                      size_t *ret_len);
char *response_error(const char *message, const char *timestamp, size_t *ret_len);
char *response_worker_error(const char *reason, const char *place_id, const char *job_id,
                            const char *timestamp, size_t *ret_len);
char *response_health(const char *timestamp, const char *uptime, const char *worker_url,
                      size_t *ret_len);
