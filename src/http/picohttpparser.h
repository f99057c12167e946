/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/* picohttpparser, the HTTP/1 parser inside libh2o: libh2o.so exports it, but Debian's
 * libh2o-dev does not install its header. These are its declarations as h2o 2.2.5 has them. */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* Returns the length of the request head, -1 on a parse error, -2 while it is incomplete. */
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);
