/* SPDX-License-Identifier: MIT */
#pragma once

#include <h2o.h>
#include <stdbool.h>
#include <stddef.h>

#include "job.h"

typedef struct Manager Manager;

/* One handler on "/" that answers every path: POST /enqueue, GET|HEAD /health, and the 404 and
 * 405 answers (README.md, "API"). */
int routes_register(h2o_pathconf_t *pathconf, Manager *m);

/* Whether a client's X-Request-Id can be taken as is: 1 to REQUEST_ID_MAX printable ASCII
 * characters, no spaces or quotes (it goes into headers, logs and JSON). */
bool request_id_is_valid(const char *s, size_t len);

/* Whether a Content-Type value names application/json, parameters allowed. */
bool content_type_is_json(const char *s, size_t len);
