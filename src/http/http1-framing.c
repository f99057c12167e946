/* SPDX-License-Identifier: MIT */
#include "http1-framing.h"

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

/* A Content-Length of digits alone (libh2o refuses any other), or -1. */
static long long length_of(const struct phr_header *h)
{
    long long v = 0;
    if (h->value_len == 0 || h->value_len > 18)
        return -1;
    for (size_t i = 0; i < h->value_len; i++) {
        if (h->value[i] < '0' || h->value[i] > '9')
            return -1;
        v = v * 10 + (h->value[i] - '0');
    }
    return v;
}

static const char *problem_of(const char *buf, int head, int minor_version,
                              const struct phr_header *headers, size_t n, bool *ret_chunked)
{
    const struct phr_header *length = NULL;
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
            *ret_chunked = true;
    }
    if (length && *ret_chunked)
        return "ambiguous request framing: Content-Length together with Transfer-Encoding";
    if (*ret_chunked && minor_version == 0)
        return "ambiguous request framing: Transfer-Encoding in an HTTP/1.0 request";
    if (has_bare_lf(buf, (size_t)head))
        return "ambiguous request framing: a line ending in LF without CR";
    return NULL;
}

void http1_framing_inspect(const char *buf, size_t len, Http1Framing *ret)
{
    struct phr_header headers[MAX_HEADERS];
    size_t n = MAX_HEADERS;
    const char *method, *path;
    size_t method_len, path_len;
    int minor_version;
    int head = phr_parse_request(buf, len, &method, &method_len, &path, &path_len, &minor_version,
                                 headers, &n, 0);
    *ret = (Http1Framing){.head_length = head == -2 ? 0 : head, .content_length = -1};
    if (head <= 0)
        return;
    ret->problem = problem_of(buf, head, minor_version, headers, n, &ret->chunked);
    ret->target = path;
    ret->target_len = path_len;
    for (size_t i = 0; i < n; i++)
        if (headers[i].name && name_is(&headers[i], "content-length", 14))
            ret->content_length = length_of(&headers[i]);
}
