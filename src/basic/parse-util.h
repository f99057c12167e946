/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdint.h>

/* Parses a decimal integer in [min, max] with nothing around it: -EINVAL when s is NULL or does
 * not start with a digit, -ERANGE otherwise. */
int parse_uint32(const char *s, uint32_t min, uint32_t max, uint32_t *ret);
