/* SPDX-License-Identifier: MIT */
#pragma once

#include <h2o.h>

#include "api.h"

/* One handler on "/" that answers every path: POST /enqueue, GET|HEAD /health, /ready and
 * /metrics, and the 404 and 405 answers (README.md, "API"). Copies *settings. */
ApiHandler *routes_register(h2o_pathconf_t *pathconf, const ApiSettings *settings);
