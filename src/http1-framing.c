/* SPDX-License-Identifier: MIT */
#include "http1-framing.h"

#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include "picohttpparser.h"

#define MAX_HEADERS 100 /* libh2o's H2O_MAX_HEADERS: a head with more never reaches a handler */

static bool name_is(const struct phr_header *h, const char *name, size_t len)
{
    return h->name_len == len && strncasecmp(h->name, name, len) == 0;
}

static bool has_bare_lf(const char *head, size_t len)
{
    for (const char *p = memchr(head, '\n', len); p;
         p = memchr(p + 1, '\n', len - (size_t)(p + 1 - head)))
        if (p == head || p[-1] != '\r')
            return true;
    return false;
}

const char *http1_framing_problem(const char *buf, size_t len)
{
    struct phr_header headers[MAX_HEADERS];
    size_t n = MAX_HEADERS;
    int head = phr_parse_request_head(buf, len, headers, &n);
    if (head <= 0)
        return NULL; /* not a whole head: libh2o answers those itself */

    const struct phr_header *length = NULL;
    bool chunked = false;
    for (size_t i = 0; i < n; i++) {
        const struct phr_header *h = &headers[i];
        if (!h->name)
            return "ambiguous request framing: obsolete line folding in a header";
        if (name_is(h, "content-length", 14)) {
            if (length && (length->value_len != h->value_len ||
                           memcmp(length->value, h->value, h->value_len) != 0))
                return "ambiguous request framing: conflicting Content-Length headers";
            length = h;
        } else if (name_is(h, "transfer-encoding", 17))
            chunked = true;
    }
    if (length && chunked)
        return "ambiguous request framing: Content-Length together with Transfer-Encoding";
    if (has_bare_lf(buf, (size_t)head))
        return "ambiguous request framing: a line ending in LF without CR";
    return NULL;
}
