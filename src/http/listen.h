/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The listening sockets of the process: the ones systemd passed (TCP and AF_UNIX streams), or
 * [::]:port bound here. Every event loop accepts from all of them. */
typedef struct ListenFds {
    int *fds;
    bool *is_unix;
    size_t n;
    bool socket_activated;
} ListenFds;

/* Returns the number of sockets, or a negative errno (then nothing is left open). */
int listen_fds_collect(ListenFds *ret, uint16_t port);
void listen_fds_done(ListenFds *l);
