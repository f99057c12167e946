/* SPDX-License-Identifier: MIT */
#include "error-filter.h"

#include <ctype.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "clock.h"
#include "conn.h"
#include "linger.h"
#include "log.h"
#include "response.h"
#include "timefmt.h"

#define LOG_INTERVAL_USEC 1000000

/* What h2o 2.2.5's lib/http1.c (send_bad_request) writes for a request it cannot parse. */
static const char H2O_BAD_REQUEST[] = "HTTP/1.1 400 Bad Request\r\n"
                                      "Content-Type: text/plain; charset=utf-8\r\n"
                                      "Connection: close\r\n"
                                      "Content-Length: 11\r\n"
                                      "\r\n"
                                      "Bad Request";

typedef struct Filter {
    h2o_filter_t super;
    ErrorFilter *shared;
} Filter;

typedef struct Logger {
    h2o_logger_t super;
} Logger;

typedef struct JsonErrorStream {
    h2o_ostream_t super;
    h2o_iovec_t body;
} JsonErrorStream;

/* One limit for the process, whichever loop's client caused the error. */
static pthread_mutex_t log_limit_lock = PTHREAD_MUTEX_INITIALIZER;
static RateLimit log_limit = {.interval_usec = LOG_INTERVAL_USEC};

void error_filter_init(ErrorFilter *f)
{
    *f = (ErrorFilter){0};
}

static bool log_limit_pass(uint64_t *ret_suppressed)
{
    pthread_mutex_lock(&log_limit_lock);
    bool pass = ratelimit_pass(&log_limit, clock_usec(CLOCK_MONOTONIC), ret_suppressed);
    pthread_mutex_unlock(&log_limit_lock);
    return pass;
}

void error_filter_note(ErrorFilter *f, const char *who, int status, const char *error,
                       const char *what)
{
    if (f->metrics)
        metrics_count_protocol_error(f->metrics, status);
    uint64_t suppressed;
    if (!log_enabled(LOG_LEVEL_INFO) || !log_limit_pass(&suppressed))
        return;
    char more[96] = "";
    if (suppressed)
        snprintf(more, sizeof(more), " (and %llu more since the last such entry, not logged)",
                 (unsigned long long)suppressed);
    log_info(MSGID_PROTOCOL_ERROR, LOG_FIELDS(.http_status = status, .error = error),
             "%s answered %d itself: %s: %s%s", who, status, error, what, more);
}

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
    /* The routes answer every error in JSON: one that is not came from h2o itself. */
    if (req->res.status >= 400 && !is_json(req)) {
        char msg[128], what[256];
        size_t len;
        message_for(req, msg, sizeof(msg));
        snprintf(what, sizeof(what), "%.*s %.*s", (int)req->input.method.len,
                 req->input.method.base, (int)req->input.path.len, req->input.path.base);
        error_filter_note(((Filter *)self)->shared, "h2o", req->res.status, msg, what);
        /* h2o answers a body over the limit (413), one it cannot read (400) or an expectation
         * (417) before the body is read, and closes the connection after */
        if (req->version < 0x200 && !req->http1_is_persistent)
            linger_arm(conn_of_request(req));
        char *body = response_error(msg, rfc3339_now(), &len);
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

/* h2o calls this when it is done with a request, its answer written (or its connection
 * closing): what the connection has written by then is not part of an answer that comes later.
 * HTTP/2 frames its own errors, and a connection that carried HTTP/2 is left out of the test at
 * close. An HTTP/1 request's place for a large body (conn.h) is free from here: the next
 * request on the connection takes its own. */
static void on_request_done(h2o_logger_t *self, h2o_req_t *req)
{
    (void)self;
    Conn *c = conn_of_request(req);
    if (!c)
        return;
    c->written_at_request_done = req->version >= 0x200 ? SIZE_MAX : c->sock->bytes_written;
    if (req->version < 0x200)
        conn_large_body_give(c);
}

void error_filter_register(h2o_pathconf_t *pathconf, ErrorFilter *f)
{
    Filter *filter = (Filter *)h2o_create_filter(pathconf, sizeof(*filter));
    filter->super.on_setup_ostream = on_setup_ostream;
    filter->shared = f;
    Logger *logger = (Logger *)h2o_create_logger(pathconf, sizeof(*logger));
    logger->super.log_access = on_request_done;
}

void error_filter_on_socket_close(void *conn)
{
    /* h2o calls this from its socket's disposal, before it frees the socket. */
    Conn *c = conn;
    if (c->written_at_request_done != SIZE_MAX &&
        c->sock->bytes_written - c->written_at_request_done == sizeof(H2O_BAD_REQUEST) - 1)
        error_filter_note(
            c->errors, "h2o", 400, "bad request",
            "bytes that are not an HTTP/1 request (or a request head too large); connection "
            "closed");
}
