/* SPDX-License-Identifier: MIT */
#include "spool-cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "spool-store.h"
#include "timefmt.h"

#define EXIT_USAGE 64 /* EX_USAGE */
#define DEFAULT_SPOOL_DIR "/var/lib/argus-orchestrator"
#define PROGRAM "argus-orchestrator spool"

static void help(void)
{
    printf("Usage: " PROGRAM " status | list [--dead] | requeue-dead [--spool-dir DIR]\n"
           "\n"
           "The service's spool: the jobs answered 202 \"queued\" that the worker has not taken\n"
           "yet. Usable while the service runs.\n"
           "\n"
           "Commands:\n"
           "  status          jobs waiting, the oldest one, dead letters, the file\n"
           "  list            the jobs waiting, oldest first, tab-separated\n"
           "  list --dead     the dead letters (jobs the worker refused for good)\n"
           "  requeue-dead    every dead letter waits again, as the newest\n"
           "\n"
           "Options:\n"
           "  --spool-dir DIR the spool's directory (default: $SPOOL_DIR, else\n"
           "                  $STATE_DIRECTORY, else " DEFAULT_SPOOL_DIR ")\n"
           "  -h, --help      show this help\n");
}

static int usage(const char *why)
{
    fprintf(stderr,
            PROGRAM ": %s\nUsage: " PROGRAM
                    " status | list [--dead] | requeue-dead [--spool-dir DIR]\n",
            why);
    return EXIT_USAGE;
}

static int open_error(const char *dir, int r, const char *why)
{
    switch (r) {
    case -ENOENT:
        fprintf(stderr, PROGRAM ": no spool at %s (no %s there)\n", dir, SPOOL_FILE);
        break;
    case -EACCES:
    case -EPERM:
        fprintf(stderr, PROGRAM ": cannot open the spool at %s: permission denied: run as root\n",
                dir);
        break;
    case -EROFS:
        fprintf(stderr,
                PROGRAM ": cannot open the spool at %s: the directory is not writable (SQLite "
                        "keeps its -shm there): run as root, or the filesystem is read-only\n",
                dir);
        break;
    case -EBADMSG:
        fprintf(stderr,
                PROGRAM ": the spool %s/%s is corrupt (%s); the service moves it aside at its "
                        "next start\n",
                dir, SPOOL_FILE, why ? why : "unreadable");
        break;
    case -EBUSY:
        fprintf(stderr, PROGRAM ": the spool at %s is locked by another process; try again\n", dir);
        break;
    default:
        fprintf(stderr, PROGRAM ": cannot open the spool at %s: %s\n", dir, strerror(-r));
    }
    return EXIT_FAILURE;
}

static int failed(SpoolStore *s, const char *what, int r)
{
    fprintf(stderr, PROGRAM ": %s: %s (%s)%s\n", what, strerror(-r), spool_store_error(s),
            r == -EROFS || r == -EACCES ? ": run as root, or the filesystem is read-only" : "");
    return EXIT_FAILURE;
}

static void format_time(uint64_t usec, char buf[static RFC3339_MAX])
{
    if (format_rfc3339((time_t)(usec / 1000000), buf) < 0)
        snprintf(buf, RFC3339_MAX, "-");
}

static int status(SpoolStore *s, const char *dir)
{
    SpoolStats st;
    int r = spool_store_stats(s, &st);
    if (r < 0)
        return failed(s, "cannot read the spool", r);
    char when[RFC3339_MAX] = "-", age[GO_DURATION_MAX] = "";
    if (st.oldest_usec > 0) {
        uint64_t now = clock_usec(CLOCK_REALTIME);
        uint64_t sec = now > st.oldest_usec ? (now - st.oldest_usec) / 1000000 : 0;
        format_time(st.oldest_usec, when);
        format_go_duration(sec * 1000000000ULL, age);
    }
    printf("File:         %s/%s\n"
           "Jobs waiting: %llu\n"
           "Oldest job:   %s%s%s%s\n"
           "Dead letters: %llu\n",
           dir, SPOOL_FILE, (unsigned long long)st.jobs, when, age[0] ? " (" : "", age,
           age[0] ? " ago)" : "", (unsigned long long)st.dead);
    return EXIT_SUCCESS;
}

/* Tabs, line ends and other control characters as spaces: one line, six fields. */
static const char *one_field(char *s)
{
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return s;
}

static int list(SpoolStore *s, bool dead)
{
    enum { PAGE = 64 };
    SpoolJob *page = calloc(PAGE, sizeof(SpoolJob));
    if (!page)
        return failed(s, "cannot list", -ENOMEM);
    printf("id\tcreated\tplaceId\tjobId\tattempts\tlastError\n");
    int64_t after = 0;
    size_t n;
    int r;
    do {
        r = spool_store_fetch(s, dead, after, page, PAGE, &n);
        for (size_t i = 0; r == 0 && i < n; i++) {
            SpoolJob *j = &page[i];
            char when[RFC3339_MAX];
            format_time(j->created_usec, when);
            printf("%lld\t%s\t%s\t%s\t%u\t%s\n", (long long)j->id, when, j->place_id, j->job_id,
                   j->attempts, one_field(j->last_error));
            after = j->id;
        }
    } while (r == 0 && n == PAGE);
    free(page);
    return r < 0 ? failed(s, "cannot list", r) : EXIT_SUCCESS;
}

static int requeue_dead(SpoolStore *s)
{
    uint64_t n = 0;
    int r = spool_store_begin(s);
    if (r == 0) {
        r = spool_store_requeue_dead(s, &n);
        if (r == 0)
            r = spool_store_commit(s);
        else
            spool_store_rollback(s);
    }
    if (r < 0)
        return failed(s, "cannot requeue the dead letters", r);
    printf("%llu dead letter%s wait%s again\n", (unsigned long long)n, n == 1 ? "" : "s",
           n == 1 ? "s" : "");
    return EXIT_SUCCESS;
}

int spool_cli_main(int argc, char **argv)
{
    enum { ARG_SPOOL_DIR = 0x100, ARG_DEAD };
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {"spool-dir", required_argument, NULL, ARG_SPOOL_DIR},
        {"dead", no_argument, NULL, ARG_DEAD},
        {},
    };
    const char *dir = NULL;
    bool dead = false;
    int c;
    argv[0] = (char *)PROGRAM; /* getopt's messages begin with it */
    optind = 0;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
        switch (c) {
        case 'h':
            help();
            return EXIT_SUCCESS;
        case ARG_SPOOL_DIR:
            if (!optarg[0])
                return usage("--spool-dir wants a directory");
            dir = optarg;
            break;
        case ARG_DEAD:
            dead = true;
            break;
        default:
            return EXIT_USAGE; /* getopt said why */
        }
    if (optind >= argc)
        return usage("which: status, list or requeue-dead?");
    if (optind + 1 < argc)
        return usage("one command at a time");
    const char *verb = argv[optind];
    if (strcmp(verb, "status") != 0 && strcmp(verb, "list") != 0 &&
        strcmp(verb, "requeue-dead") != 0) {
        fprintf(stderr, PROGRAM ": unknown command '%s'\n", verb);
        return usage("the commands are status, list and requeue-dead");
    }
    if (dead && strcmp(verb, "list") != 0)
        return usage("--dead goes with list");

    if (!dir) {
        const char *e = getenv("SPOOL_DIR");
        if (e && !e[0]) {
            fprintf(stderr, PROGRAM ": SPOOL_DIR is set and empty: no spool (--spool-dir DIR "
                                    "names one)\n");
            return EXIT_FAILURE;
        }
        dir = e ? e : getenv("STATE_DIRECTORY");
        if (!dir || !dir[0])
            dir = DEFAULT_SPOOL_DIR;
    }

    SpoolStore *s;
    char *why = NULL;
    int r = spool_store_open(dir, 0, &s, NULL, &why);
    if (r < 0) {
        r = open_error(dir, r, why);
        free(why);
        return r;
    }
    free(why);
    if (strcmp(verb, "status") == 0)
        r = status(s, dir);
    else if (strcmp(verb, "list") == 0)
        r = list(s, dead);
    else
        r = requeue_dead(s);
    spool_store_close(s);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, PROGRAM ": cannot write: %s\n", strerror(errno));
        return EXIT_FAILURE;
    }
    return r;
}
