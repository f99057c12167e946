/* SPDX-License-Identifier: MIT */
#pragma once

#include <h2o.h>

/* Gives the error answers that h2o makes on its own (413 for a body over the limit, 400, 431, …)
 * the JSON body and Content-Type of every other answer. Responses that are already
 * application/json pass through untouched. */
void error_filter_register(h2o_pathconf_t *pathconf);
