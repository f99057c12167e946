/* SPDX-License-Identifier: MIT */
/* What the integration tests share: the worker stand-in, the real daemon under
 * systemd-socket-activate with NOTIFY_SOCKET read here, and an HTTP client. Every wait is
 * bounded; every process started is ended by the matching stop. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct Standin {
    pid_t pid;
    unsigned port;
    char url[64];
} Standin;

typedef struct Service {
    pid_t pid;
    unsigned port;
    char base[64];
    char dir[64];      /* private temporary folder */
    char log_path[96]; /* the daemon's stderr (JSON lines) */
    char notify_path[96];
    int notify_fd;
    char notified[8192]; /* every sd_notify message seen so far, newline separated */
    size_t notified_len;
} Service;

typedef struct Response {
    long status;
    char *body;
    char *headers; /* raw response head */
    int curl_code;
} Response;

/* Exits with status 77 (a skipped test under meson), saying why, when what the tests start is
 * missing: systemd-socket-activate. Call it first in main(). */
void harness_skip_unless_runnable(void);

void standin_start(Standin *s);
/* A stand-in on that loopback port (0: any free one), say where a daemon already points. */
void standin_start_port(Standin *s, unsigned port);

/* One stand-in for a whole group of tests: give these to cmocka_run_group_tests(). */
extern Standin group_standin;
int standin_group_setup(void **state);
int standin_group_teardown(void **state);
void standin_stop(Standin *s);
/* How many POST /enqueue the stand-in got for that placeId. */
unsigned standin_count(const Standin *s, const char *place_id);
/* The placeIds in the order they first reached the stand-in, one a line (its GET /order);
 * malloc'd, NULL when it did not answer. */
char *standin_order(const Standin *s);
/* A GET of path on the stand-in: its body (malloc'd), or NULL unless it answered 200. */
char *standin_get(const Standin *s, const char *path);
/* A loopback TCP port free a moment ago: nothing listens there (a worker that is down). */
unsigned free_port(void);

/* Starts the daemon socket-activated on 127.0.0.1 with the given "NAME=value" variables
 * (NULL-terminated, may be NULL); WORKER_NODE_URL should be among them. */
void service_start(Service *svc, const char *const *env);
/* service_start() with the daemon's stderr on stderr_fd (a pipe the test reads, say) instead of
 * the log file; service_log_contains() then sees nothing. */
void service_start_stderr(Service *svc, const char *const *env, int stderr_fd);
/* One stand-in and one daemon (default configuration, pointed at it) for a whole group of
 * tests: give these to cmocka_run_group_tests(). The teardown checks the daemon drains and
 * exits 0 on SIGTERM. */
extern Service group_service;
int service_group_setup(void **state);
int service_group_teardown(void **state);
/* service_start() pointed at group_standin, with up to three more "NAME=value" variables
 * (NULL for none). */
void service_start_for_group(Service *svc, const char *a, const char *b, const char *c);

/* Waits (bounded) until a notify message containing `what` has arrived. The notify socket is
 * read only here: the kernel queues 10 datagrams, and the daemon sends STATUS= every 5 s, so a
 * test that runs longer than about 50 s must call this now and then, or the daemon blocks in
 * sd_notify() (systemd itself always reads). */
bool service_wait_notify(Service *svc, const char *what, int timeout_ms);
/* Sends sig, waits for the exit (bounded), returns the exit status or -1 on a signal/timeout. */
int service_stop(Service *svc, int sig);
/* Waits for the process to exit on its own (bounded); exit status, or -1 if it did not. */
int service_wait_exit(Service *svc, int timeout_ms);
/* Whether the daemon's log (stderr) has a line with `needle`, waiting up to 2 s for it: the
 * daemon writes its JSON lines once per loop iteration, just after the answers. */
bool service_log_contains(const Service *svc, const char *needle);
/* Whether no line of the log has `needle`, at once (for a daemon that has exited). */
bool service_log_lacks(const Service *svc, const char *needle);
void service_cleanup(Service *svc);

/* One request on a new connection. `content_type` NULL sends none; `body` NULL sends none. */
Response http_request(const char *method, const char *url, const char *content_type,
                      const char *body, const char *extra_header);
Response http_post_json(const Service *svc, const char *path, const char *body);
/* POST /enqueue of {"placeId":place_id}, and a GET of path, on the service. */
Response service_enqueue(const Service *svc, const char *place_id);
Response service_get(const Service *svc, const char *path);
void response_free(Response *r);
/* The value of a sample in the service's GET /metrics (checked to be Prometheus text 0.0.4),
 * or -1 when it has none. */
double service_metric(const Service *svc, const char *series);
/* Polls GET /metrics (bounded) until the sample has the value; whether it did. */
bool service_wait_metric(const Service *svc, const char *series, double value, int timeout_ms);
/* A header's value from the response head (case-insensitive), copied into out. */
bool response_header(const Response *r, const char *name, char *out, size_t n);

/* `n` POSTs of bodies[i] to url, all at once on separate connections; fills statuses. */
void http_post_parallel(const char *url, const char *const *bodies, size_t n, long *statuses,
                        char **bodies_out);

/* Opens a connection, sends one GET /health keep-alive request and reads its answer; returns
 * the still-open socket. */
int keepalive_connection(unsigned port);
/* Whether the peer closed fd within timeout_ms (read returns 0 or an error). */
bool peer_closed(int fd, int timeout_ms);

/* A plain TCP connection to 127.0.0.1:port (the test writes and reads it itself). */
int raw_connect(unsigned port);
/* Reads what arrives on fd until the peer closes or timeout_ms pass; NUL-terminated. */
size_t raw_read(int fd, char *buf, size_t n, int timeout_ms);

/* Runs argv (NULL-terminated) with the extra env, captures stdout+stderr into out (bounded),
 * returns the exit status (-1 on signal or timeout). */
int run_capture(const char *const *argv, const char *const *env, char *out, size_t n);

const char *argus_binary(void);

/* CLOCK_MONOTONIC in milliseconds, for bounded waits and liveness limits. */
long long now_ms(void);

/* Whether the daemon runs under a sanitizer (ARGUS_SANITIZED=1, set by meson): its memory
 * figures then say nothing (shadow memory, ASan's quarantine). */
bool harness_sanitized(void);
/* A process's resident set in KiB, or 0 if it cannot be read. */
unsigned long process_rss_kib(pid_t pid);
