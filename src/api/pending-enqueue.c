/* SPDX-License-Identifier: MIT */
#include "pending-enqueue.h"

#include <stdlib.h>

#include "macro.h"

/* Lives in the request's pool; tells the pending enqueue when the request dies first. */
struct RequestGuard {
    PendingEnqueue *pe;
};

static void on_guard_dispose(void *p)
{
    RequestGuard *g = p;
    PendingEnqueue *pe = g->pe;
    if (!pe)
        return;
    pe->req = NULL;
    pe->guard = NULL;
    conn_release(pe->conn);
    pe->conn = NULL;
}

PendingEnqueue *pending_enqueue_new(h2o_req_t *req, ApiHandler *owner)
{
    _cleanup_free_ PendingEnqueue *pe = calloc(1, sizeof(*pe));
    RequestGuard *g = pe ? h2o_mem_alloc_shared(&req->pool, sizeof(*g), on_guard_dispose) : NULL;
    if (!g)
        return NULL;
    pe->owner = owner;
    pe->req = req;
    pe->guard = g;
    g->pe = pe;
    return TAKE_PTR(pe);
}

void pending_enqueue_hold(PendingEnqueue *pe)
{
    pe->conn = conn_of_request(pe->req);
    conn_hold(pe->conn);
}

h2o_req_t *pending_enqueue_untie(PendingEnqueue *pe)
{
    h2o_req_t *req = pe->req;
    if (!req)
        return NULL;
    pe->guard->pe = NULL;
    conn_release(pe->conn);
    pe->req = NULL;
    pe->guard = NULL;
    pe->conn = NULL;
    return req;
}

void pending_enqueue_free(PendingEnqueue *pe)
{
    if (!pe)
        return;
    if (pe->guard)
        pe->guard->pe = NULL;
    free(pe);
}
