/* SPDX-License-Identifier: MIT */
#include "raw-answer.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "http-util.h"
#include "response.h"
#include "timefmt.h"

void raw_answer_error(int fd, int status, const char *message)
{
    char head[256];
    size_t body_len = 0;
    char *body = response_error(message, rfc3339_now(), &body_len);
    int head_len = snprintf(head, sizeof(head),
                            "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                            status, http_reason_phrase(status), body_len);
    if (body && head_len > 0 && (size_t)head_len < sizeof(head)) {
        struct iovec iov[2] = {{head, (size_t)head_len}, {body, body_len}};
        (void)!writev(fd, iov, 2);
    }
    free(body);
    (void)shutdown(fd, SHUT_WR);
    char sink[4096];
    for (int r = 0; r < 16 && read(fd, sink, sizeof(sink)) > 0; r++)
        ;
}
