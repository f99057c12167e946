/* SPDX-License-Identifier: MIT */
/* What one log_event() costs, for callgrind: N entries of an enqueued job (the fields routes.c
 * gives it) to one sink, JSON lines to /dev/null or journal entries to a datagram socket read
 * back as they come. Count the instructions of log_event alone with
 *   valgrind --tool=callgrind --toggle-collect=log_event build/log-bench json|journal [N]
 * and divide by N. */
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"

static void log_job(int i)
{
    log_info(MSGID_ENQUEUED,
             LOG_FIELDS(.place_id = "ChIJN1t_tDeuEmsRUsoyG83frY4",
                        .job_id = "reviews:ChIJN1t_tDeuEmsRUsoyG83frY4:start",
                        .request_id = "3f1c2a9e-8d4b-4c6e-9a7f-1b2c3d4e5f60", .http_status = 202,
                        .duration_usec = 1200 + i % 7, .has_duration = true,
                        .worker_url = "http://localhost:3000/enqueue", .worker_status = 201,
                        .attempt = 1),
             "job enqueued successfully");
}

int main(int argc, char **argv)
{
    bool journal = argc > 1 && strcmp(argv[1], "journal") == 0;
    int n = argc > 2 ? atoi(argv[2]) : 10000;
    int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null < 0 || dup2(null, STDERR_FILENO) < 0)
        return 1;
    log_setup(LOG_LEVEL_INFO);
    log_set_journal(false);
    if (!journal) {
        for (int i = 0; i < n; i++)
            log_job(i);
        log_flush();
        printf("%d JSON lines, %llu dropped\n", n,
               (unsigned long long)log_dropped(LOG_SINK_STDERR));
        return 0;
    }

    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) < 0)
        return 1;
    log_set_journal_fd(sv[0]);
    log_set_journal(true);
    char buf[4096];
    for (int i = 0; i < n; i++) {
        log_job(i);
        if (recv(sv[1], buf, sizeof(buf), 0) <= 0)
            return 1;
    }
    log_set_journal_fd(-1);
    printf("%d journal entries, %llu dropped\n", n,
           (unsigned long long)log_dropped(LOG_SINK_JOURNAL));
    return 0;
}
