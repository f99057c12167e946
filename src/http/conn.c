/* SPDX-License-Identifier: MIT */
#include "conn.h"

#include <sys/socket.h>

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
