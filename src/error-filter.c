/* SPDX-License-Identifier: MIT */
#include "error-filter.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "response.h"
#include "timefmt.h"

typedef struct JsonErrorStream {
    h2o_ostream_t super;
    h2o_iovec_t body;
} JsonErrorStream;

static void on_send(h2o_ostream_t *self, h2o_req_t *req, h2o_iovec_t *bufs, size_t bufcnt,
                    h2o_send_state_t state)
{
    (void)bufs, (void)bufcnt;
    JsonErrorStream *s = (JsonErrorStream *)self;
    if (h2o_send_state_is_in_progress(state)) {
        h2o_ostream_send_next(self, req, NULL, 0, state);
        return;
    }
    bool head = h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("HEAD"));
    h2o_ostream_send_next(self, req, head ? NULL : &s->body, head ? 0 : 1, state);
}

static bool is_json(h2o_req_t *req)
{
    ssize_t i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1);
    if (i < 0)
        return false;
    h2o_iovec_t v = req->res.headers.entries[i].value;
    return v.len >= 16 && strncasecmp(v.base, "application/json", 16) == 0;
}

static void message_for(const h2o_req_t *req, char *buf, size_t n)
{
    if (req->res.status == 413) {
        snprintf(buf, n, "request body too large");
        return;
    }
    const char *r = req->res.reason ? req->res.reason : "error";
    size_t i = 0;
    for (; r[i] && i + 1 < n; i++)
        buf[i] = (char)tolower((unsigned char)r[i]);
    buf[i] = '\0';
}

static void on_setup_ostream(h2o_filter_t *self, h2o_req_t *req, h2o_ostream_t **slot)
{
    (void)self;
    if (req->res.status >= 400 && !is_json(req)) {
        char msg[128], ts[RFC3339_MAX] = "";
        size_t len;
        message_for(req, msg, sizeof(msg));
        (void)format_rfc3339(time(NULL), ts);
        char *body = response_error(msg, ts, &len);
        if (body) {
            h2o_iovec_t b = h2o_strdup(&req->pool, body, len);
            free(body);
            ssize_t i;
            while ((i = h2o_find_header(&req->res.headers, H2O_TOKEN_CONTENT_TYPE, -1)) >= 0)
                h2o_delete_header(&req->res.headers, i);
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                           H2O_STRLIT("application/json"));
            req->res.content_length = b.len;
            JsonErrorStream *s = (JsonErrorStream *)h2o_add_ostream(req, sizeof(*s), slot);
            s->super.do_send = on_send;
            s->body = b;
            slot = &s->super.next;
        }
    }
    h2o_setup_next_ostream(req, slot);
}

void error_filter_register(h2o_pathconf_t *pathconf)
{
    h2o_filter_t *f = h2o_create_filter(pathconf, sizeof(*f));
    f->on_setup_ostream = on_setup_ostream;
}
