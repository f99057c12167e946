/* SPDX-License-Identifier: MIT */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "credentials.h"
#include "http-util.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "probe.h"
#include "server.h"
#include "spool-cli.h"

#define EXIT_CONFIG 78 /* EX_CONFIG */

static const char *lookup_env(const char *name, void *userdata)
{
    (void)userdata;
    return getenv(name);
}

/* MAX_CONNECTIONS clients plus the worker connections need more descriptors than the usual soft
 * limit of 1024; the loop uses epoll, so the hard limit is safe to take. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void help(void)
{
    printf("Usage: argus-orchestrator [--check-config | --probe URL | --help | --version]\n"
           "       argus-orchestrator spool status | list [--dead] | show ID | delete ID... |\n"
           "                 requeue ID... | requeue-dead | flush | hold ID... | release ID...\n"
           "                 [--json] [--spool-dir DIR]\n"
           "\n"
           "Takes review-collection jobs over HTTP and forwards them to the Argus worker node.\n"
           "Listens on the sockets systemd passes, or on [::]:$PORT when run by hand.\n"
           "\n"
           "Options:\n"
           "  --check-config  validate the environment, print the effective configuration, exit\n"
           "  --probe URL     health check: GET URL, exit 0 when it answers 200, else 1;\n"
           "                  URL is http://HOST[:PORT][/PATH], or /PATH on 127.0.0.1:$PORT\n"
           "  -h, --help      show this help\n"
           "  --version       show the version\n"
           "\n"
           "Commands on the spool (argus-orchestrator spool --help says more):\n"
           "  spool status        jobs waiting, held, dead letters, the oldest, the next attempt\n"
           "  spool list [--dead] the jobs waiting, or the dead letters, oldest first\n"
           "  spool show ID       every field of one job\n"
           "  spool delete ID...  remove jobs\n"
           "  spool requeue ID... jobs wait again in their place, due now, attempts from 0\n"
           "  spool requeue-dead  every dead letter waits again\n"
           "  spool flush         every waiting job not held is due now\n"
           "  spool hold ID...    never try these jobs until they are released\n"
           "  spool release ID... try them again\n"
           "\n"
           "Environment: PORT, WORKER_NODE_URL, LOG_LEVEL, WORKER_TIMEOUT_MS, WORKER_RETRIES,\n"
           "WORKER_MAX_CONNECTIONS, MAX_BODY_BYTES, MAX_CONNECTIONS, MAX_PENDING_JOBS,\n"
           "BREAKER_THRESHOLD, BREAKER_COOLDOWN_SEC, SHUTDOWN_TIMEOUT_SEC, IDLE_EXIT_SEC, HTTP2,\n"
           "THREADS, SPOOL_DIR, SPOOL_MAX_JOBS, SPOOL_RETRY_MAX_SEC, SPOOL_MAX_AGE_SEC.\n"
           "See argus-orchestrator(8).\n");
}

#define EXIT_USAGE 64 /* EX_USAGE */

typedef enum Action {
    ACTION_RUN,
    ACTION_CHECK_CONFIG,
    ACTION_PROBE,
    ACTION_HELP,
    ACTION_VERSION,
    ACTION_SPOOL,
} Action;

/* `spool …` is a command of its own (spool-cli.c parses the rest). Else the first of --help,
 * --version and --probe wins, as it comes; returns 0 or EXIT_USAGE. */
static int parse_argv(int argc, char **argv, Action *ret_action, const char **ret_probe_url)
{
    enum { ARG_VERSION = 0x100, ARG_CHECK_CONFIG, ARG_PROBE };
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, ARG_VERSION},
        {"check-config", no_argument, NULL, ARG_CHECK_CONFIG},
        {"probe", required_argument, NULL, ARG_PROBE},
        {},
    };
    *ret_action = ACTION_RUN;
    if (argc > 1 && strcmp(argv[1], "spool") == 0) {
        *ret_action = ACTION_SPOOL;
        return 0;
    }
    int c;
    while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
        switch (c) {
        case 'h':
            *ret_action = ACTION_HELP;
            return 0;
        case ARG_VERSION:
            *ret_action = ACTION_VERSION;
            return 0;
        case ARG_CHECK_CONFIG:
            *ret_action = ACTION_CHECK_CONFIG;
            break;
        case ARG_PROBE:
            *ret_action = ACTION_PROBE;
            *ret_probe_url = optarg;
            return 0;
        default:
            return EXIT_USAGE; /* getopt said why */
        }
    if (optind < argc) {
        fprintf(stderr, "argus-orchestrator: unexpected argument '%s'\n", argv[optind]);
        return EXIT_USAGE;
    }
    return 0;
}

/* Loads the configuration from the environment and sets the log level; returns 0, or the exit
 * status when it is invalid. */
static int load_config(Config *ret, bool check_only)
{
    const char *bad_name = NULL, *bad_value = NULL;
    log_setup(LOG_LEVEL_INFO);
    int r = config_load(ret, lookup_env, NULL, &bad_name, &bad_value);
    if (r == -EINVAL) {
        /* a URL with user info is refused, and its password must not reach the log either */
        _cleanup_free_ char *shown = NULL;
        const char *value = bad_value;
        if (strcmp(bad_name, "WORKER_NODE_URL") == 0)
            value = url_redact_userinfo(bad_value, &shown) < 0 ? "(not shown)" : shown;
        log_error(MSGID_CONFIG_INVALID, LOG_FIELDS(.error = bad_name),
                  "invalid configuration: %s=%s", bad_name, value);
        if (!check_only)
            server_refuse_pending("service unavailable: invalid configuration");
        return EXIT_CONFIG;
    }
    if (r < 0) {
        log_error(NULL, NULL, "failed to load configuration: %s", strerror(-r));
        return EXIT_FAILURE;
    }
    log_setup(ret->log_level);
    /* Room past the log's high-water mark for the jobs admitted before it sheds: those waiting
     * on the worker and the spool's adds (MAX_PENDING_JOBS each), each with its outcome, a
     * line per retry and "client went away" (README, "Logs"). */
    log_set_owed(2 * (size_t)ret->max_pending_jobs, 2 + (size_t)ret->worker_retries);
    return 0;
}

static int check_config(Config *config)
{
    char *dump;
    int r = config_dump(config, &dump);
    config_done(config);
    if (r < 0)
        return EXIT_FAILURE;
    fputs(dump, stdout);
    free(dump);
    return EXIT_SUCCESS;
}

/* Why credential_read() refused a credential, for the log line. */
static const char *credential_error(int r)
{
    switch (r) {
    case -EINVAL:
        return "empty, larger than 4096 bytes, or with a NUL byte";
    case -EBADFD:
        return "not a regular file";
    default:
        return strerror(-r);
    }
}

/* Without api-token, POST /enqueue is open: a credential named like a misspelt one is most
 * likely meant to close it. */
static void warn_misspelt_token(void)
{
    _cleanup_free_ char *name = NULL;
    if (credential_find_misspelt_token(&name) >= 0 && name)
        log_warn(MSGID_CONFIG_INVALID, LOG_FIELDS(.error = "api-token"),
                 "no credential api-token, so POST /enqueue needs no token, but there is a "
                 "credential named %s: a misspelt api-token?",
                 name);
}

/* The api-token credential, if there is one; returns 0, or the exit status when it is bad or
 * no client could send it (check_only: --check-config, with no connection waiting for an
 * answer). The line says why, never what the token is. */
static int load_token(bool check_only, char **ret)
{
    _cleanup_free_ char *token = NULL;
    *ret = NULL;
    int r = credential_read("api-token", &token);
    if (r == -ENOENT) {
        warn_misspelt_token();
        return 0;
    }
    const char *why = r < 0 ? credential_error(r) : token_unsendable(token);
    if (why) {
        log_error(MSGID_CONFIG_INVALID, LOG_FIELDS(.error = "api-token"),
                  "invalid configuration: credential api-token cannot be used: %s", why);
        if (!check_only)
            server_refuse_pending("service unavailable: invalid configuration");
        return EXIT_CONFIG;
    }
    *ret = TAKE_PTR(token);
    return 0;
}

/* glibc gives the free top of a heap back as soon as it exceeds 128 KiB; a thread's arena
 * (every loop but the first has one) then grows again at the next burst, so under load each
 * loop paid page faults and, the process having several threads, TLB shootdowns to the other
 * CPUs: with THREADS=2, 20 000 page faults in 4 s of GET /health. 1 MiB of slack per heap
 * ends that (about 30 in 4 s); a loop's quiet timer still gives everything back to the
 * system once the jobs stop (malloc_trim(), loop.c). */
#define HEAP_TRIM_THRESHOLD (1024 * 1024)

/* The daemon itself: takes config and token; returns the exit status. */
static int serve(Config *config, char *token)
{
    _cleanup_free_ char *owned_token = token;
    _cleanup_(manager_freep) Manager *m = NULL;
    int r;

    raise_fd_limit();
    (void)mallopt(M_TRIM_THRESHOLD, HEAP_TRIM_THRESHOLD);

    /* Once, before anything else could start a thread (libcurl's rule). */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        config_done(config);
        r = -EIO;
    } else
        r = manager_new(config, TAKE_PTR(owned_token), &m); /* config's and the token's owner */
    if (r < 0) {
        log_error(NULL, NULL, "failed to set up: %s", strerror(-r));
        return EXIT_FAILURE;
    }
    r = manager_listen(m);
    if (r < 0) {
        log_error(NULL, NULL, "failed to listen: %s", strerror(-r));
        (void)sd_notifyf(false, "STATUS=Failed to listen: %s\nERRNO=%i", strerror(-r), -r);
        return EXIT_FAILURE;
    }
    r = manager_run(m);
    m = manager_free(m); /* before the last line: it takes the log off the loop */
    if (r < 0) {
        log_error(NULL, NULL, "event loop failed: %s", strerror(-r));
        return EXIT_FAILURE;
    }
    return EXIT_SUCCESS;
}

static int run(int argc, char **argv)
{
    Action action;
    const char *probe_url = NULL;
    int r = parse_argv(argc, argv, &action, &probe_url);
    if (r != 0)
        return r;
    switch (action) {
    case ACTION_HELP:
        help();
        return EXIT_SUCCESS;
    case ACTION_VERSION:
        printf("argus-orchestrator %s\n", ARGUS_VERSION);
        return EXIT_SUCCESS;
    case ACTION_PROBE:
        return probe_main(probe_url, getenv("PORT"), 5000);
    case ACTION_SPOOL:
        return spool_cli_main(argc - 1, argv + 1);
    case ACTION_CHECK_CONFIG:
    case ACTION_RUN:
        break;
    }

    Config config;
    r = load_config(&config, action == ACTION_CHECK_CONFIG);
    if (r != 0)
        return r;
    char *token;
    r = load_token(action == ACTION_CHECK_CONFIG, &token);
    if (r != 0) {
        config_done(&config);
        return r;
    }
    if (action == ACTION_CHECK_CONFIG) {
        free(token);
        return check_config(&config);
    }
    return serve(&config, token);
}

int main(int argc, char **argv)
{
    int r = run(argc, argv);
    /* What journald or stderr has not taken yet gets a second at most: a stopped journald
     * must not hold up the exit (systemd would kill us at TimeoutStopSec=). */
    (void)log_drain(1000000);
    return r;
}
