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
    raw_answer_error_retry(fd, status, message, 0);
}

void raw_answer_error_retry(int fd, int status, const char *message, unsigned retry_after_sec)
{
    char head[256], retry[40] = "";
    size_t body_len = 0;
    char *body = response_error(message, rfc3339_now(), &body_len);
    if (retry_after_sec > 0)
        snprintf(retry, sizeof(retry), "Retry-After: %u\r\n", retry_after_sec);
    int head_len = snprintf(head, sizeof(head),
                            "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\n%sConnection: close\r\n\r\n",
                            status, http_reason_phrase(status), body_len, retry);
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
