/* SPDX-License-Identifier: MIT */
#include "listen.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "macro.h"

#define LISTEN_BACKLOG 4096

static int bind_port(uint16_t port)
{
    _cleanup_close_ int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -errno;
    int on = 1, off = 0;
    (void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    (void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off));
    struct sockaddr_in6 sa = {
        .sin6_family = AF_INET6, .sin6_port = htons(port), .sin6_addr = IN6ADDR_ANY_INIT};
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, LISTEN_BACKLOG) < 0)
        return -errno;
    return TAKE_FD(fd);
}

void listen_fds_done(ListenFds *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->fds[i] >= 0)
            close(l->fds[i]);
    free(l->fds);
    free(l->is_unix);
    *l = (ListenFds){0};
}

static int listen_fds_alloc(ListenFds *l, size_t n)
{
    l->fds = calloc(n, sizeof(int));
    l->is_unix = calloc(n, sizeof(bool));
    if (!l->fds || !l->is_unix)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++)
        l->fds[i] = -EBADF;
    l->n = n;
    return 0;
}

int listen_fds_collect(ListenFds *ret, uint16_t port)
{
    *ret = (ListenFds){0};
    char **names = NULL;
    int n = sd_listen_fds_with_names(1, &names);
    if (n < 0)
        return n;
    for (int i = 0; names && i < n; i++)
        free(names[i]);
    free(names);

    int r = listen_fds_alloc(ret, n > 0 ? (size_t)n : 1);
    if (r < 0) {
        listen_fds_done(ret);
        return r;
    }
    if (n == 0) {
        ret->fds[0] = bind_port(port);
        if (ret->fds[0] < 0) {
            r = ret->fds[0];
            listen_fds_done(ret);
            return r;
        }
        return 1;
    }
    ret->socket_activated = true;
    for (int i = 0; i < n; i++) {
        int fd = SD_LISTEN_FDS_START + i;
        ret->fds[i] = fd;
        if (sd_is_socket(fd, AF_UNIX, SOCK_STREAM, 1) > 0)
            ret->is_unix[i] = true;
        else if (sd_is_socket(fd, AF_INET, SOCK_STREAM, 1) <= 0 &&
                 sd_is_socket(fd, AF_INET6, SOCK_STREAM, 1) <= 0) {
            listen_fds_done(ret);
            return -ENOTSOCK;
        }
    }
    return n;
}
