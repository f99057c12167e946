/* SPDX-License-Identifier: MIT */
#include "request-trace.h"

#include <stdbool.h>

/* Whether a header value holds no list member: blanks and commas only. */
static bool no_member(const h2o_iovec_t *v)
{
    for (size_t i = 0; i < v->len; i++)
        if (v->base[i] != ' ' && v->base[i] != '\t' && v->base[i] != ',')
            return false;
    return true;
}

/* Two traceparent lines are none; at most TRACESTATE_MEMBERS_MAX tracestate lines that hold a
 * member, else none. */
void request_trace(ApiHandler *h, h2o_req_t *req, Trace *t)
{
    static const char tp_name[] = "traceparent", ts_name[] = "tracestate";
    ssize_t i = h2o_find_header_by_str(&req->headers, tp_name, sizeof(tp_name) - 1, -1);
    bool one = i >= 0 && h2o_find_header_by_str(&req->headers, tp_name, sizeof(tp_name) - 1, i) < 0;
    const h2o_iovec_t *tp = one ? &req->headers.entries[i].value : NULL;
    size_t tp_len = tp ? tp->len : 0;
    while (tp_len > 0 && (tp->base[tp_len - 1] == ' ' || tp->base[tp_len - 1] == '\t'))
        tp_len--; /* libh2o 2.2.5 keeps a field's trailing blanks, not part of its value */

    const char *values[TRACESTATE_MEMBERS_MAX];
    size_t lens[TRACESTATE_MEMBERS_MAX], n = 0;
    bool too_many = false;
    for (ssize_t j = -1;
         (j = h2o_find_header_by_str(&req->headers, ts_name, sizeof(ts_name) - 1, j)) >= 0;) {
        if (no_member(&req->headers.entries[j].value))
            continue;
        if (n == TRACESTATE_MEMBERS_MAX) { /* each line left holds a member at least */
            too_many = true;
            break;
        }
        values[n] = req->headers.entries[j].value.base;
        lens[n++] = req->headers.entries[j].value.len;
    }
    char state[TRACESTATE_MAX + 1] = "";
    if (!too_many)
        (void)tracestate_normalize(values, lens, n, state);
    const uint64_t random[3] = {api_random(h), api_random(h), api_random(h)};
    trace_begin(t, tp ? tp->base : NULL, tp_len, state, random);
}
