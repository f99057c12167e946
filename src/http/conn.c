/* SPDX-License-Identifier: MIT */
#include "conn.h"

#include <sys/socket.h>

#include "budget.h"

void conn_close_when_idle(Conn *c)
{
    uv_os_fd_t fd;
    if (uv_fileno(&c->h.handle, &fd) == 0)
        (void)shutdown(fd, SHUT_RD);
}

void conn_hold(Conn *c)
{
    if (c)
        c->pending++;
}

void conn_release(Conn *c)
{
    if (!c)
        return;
    c->pending--;
    if (c->pending == 0 && *c->draining)
        conn_close_when_idle(c);
}

bool conn_large_body_take(Conn *c)
{
    if (c->large_body_place)
        return true;
    c->large_body_place = budget_take(c->large_bodies, LARGE_BODY_PLACES, 1);
    return c->large_body_place;
}

void conn_large_body_give(Conn *c)
{
    if (!c || !c->large_body_place)
        return;
    c->large_body_place = false;
    budget_give(c->large_bodies, 1);
}
