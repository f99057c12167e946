/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "job.h"

/* Pure HTTP helpers of the handlers (routes.c): no h2o, so that the fuzz targets and the unit
 * tests link them alone. */

/* Whether a client's X-Request-Id can be taken as is: 1 to REQUEST_ID_MAX printable ASCII
 * characters, no spaces or quotes (it goes into headers, logs and JSON). */
bool request_id_is_valid(const char *s, size_t len);

/* Whether a Content-Type value names application/json, parameters allowed. */
bool content_type_is_json(const char *s, size_t len);

/* The reason phrase of the statuses the service answers itself; "Error" for another. */
const char *http_reason_phrase(int status);

/* Retry-After in whole seconds for a wait of usec: rounded up, at least 1. */
uint64_t http_retry_after_sec(uint64_t usec);

/* Where the path of a request target in absolute form ("http://host[:port]/path?query", RFC 9112
 * section 3.2.2) starts: true and its offset (len when the target has no path, which means
 * "/"); false for a target in another form (origin form "/path", authority form, "*") or one
 * that is not an http or https URL with a host. */
bool http_target_absolute_path(const char *target, size_t len, size_t *ret_offset);

/* The path of POST /enqueue/batch, whose body may take MAX_BATCH_BYTES rather than
 * MAX_BODY_BYTES. */
#define ENQUEUE_BATCH_PATH "/enqueue/batch"

/* Whether a raw request target (origin or absolute form, a query aside) is exactly path, as
 * written: not normalized, so that a target only libh2o's normalization makes path is not. */
bool http_target_is(const char *target, size_t len, const char *path);

/* The URL for a log line, its user info hidden: "user:***@host" where it had "user:password@host",
 * "***@host" where it had a user info without a password. Everything before the last '@' after
 * the scheme counts as user info (a password may hold a '/' or an '@' that should have been
 * escaped); a URL without '@' is copied as it is. 0, or -ENOMEM. */
int url_redact_userinfo(const char *url, char **ret);
