/* SPDX-License-Identifier: MIT */
/* What the spool's delivery tests share (test-spool-delivery.c, test-spool-ops.c): a spool
 * folder of the test's own, a worker that is down (a loopback port nothing listens on) and comes
 * back (a stand-in started on that port), the daemon spooling there, the `spool` command run on
 * that folder, many jobs posted at once, and the stand-in's counts. Every wait is bounded. */
#pragma once

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "harness.h"

typedef struct Spooled {
    char dir[64];       /* SPOOL_DIR */
    unsigned down_port; /* where the daemon looks for the worker */
    Standin worker;     /* started on down_port when the worker comes back */
    char env_worker[64], env_dir[96];
} Spooled;

void spooled_init(Spooled *f);
/* A stand-in on the worker's port: the worker is back (its counts start at 0). */
void spooled_worker_back(Spooled *f);
/* The stand-in stopped: connections to the worker are refused again. */
void spooled_worker_down(Spooled *f);
/* Stops the stand-in, removes the spool folder and what is in it (a symlink swapped in for it
 * and the folder it points to included). */
void spooled_cleanup(Spooled *f);

/* The daemon pointed at the worker's port, spooling in f->dir, with BREAKER_COOLDOWN_SEC=1 and
 * WORKER_TIMEOUT_MS=1000, and up to eight more "NAME=value" (NULL-terminated; a later one
 * overrides an earlier one of the same name). */
void spooled_start(Service *svc, const Spooled *f, ...);
/* SIGTERM, checks the exit status 0, cleans up. */
void spooled_stop(Service *svc);

/* Runs `argus-orchestrator spool --spool-dir DIR ARGS…` (NULL-terminated); its stdout and
 * stderr in out; returns its exit status. */
int spool_cli(const Spooled *f, char *out, size_t n, ...);
/* spool_cli() with the arguments given as an array. */
int spool_cli_argv(const Spooled *f, char *out, size_t n, const char *const *args);
/* `spool list --json` (`list --dead --json` when dead): the array of jobs (its owner frees it),
 * or NULL when it failed or printed something else. */
json_object *spool_list_json(const Spooled *f, bool dead);
/* `spool show ID --json`: the job (its owner frees it), or NULL. */
json_object *spool_show_json(const Spooled *f, int64_t id);
/* The id of the job with that placeId (waiting, or dead when dead), by `spool list --json`;
 * -1 when none. */
int64_t spool_id_of(const Spooled *f, const char *place_id, bool dead);
/* A member of a job's JSON object: a string (NULL when absent or null), an integer (-1 when
 * absent). */
const char *job_string(json_object *job, const char *key);
int64_t job_int(json_object *job, const char *key);

/* POSTs n jobs with placeIds "<prefix><first + i>", up to `at_once` at a time on separate
 * connections; counts the answers 202 with that status ("queued", "enqueued") and returns how
 * many. */
size_t post_many(const Service *svc, const char *prefix, size_t first, size_t n, size_t at_once,
                 const char *status);
/* One POST: the answer's status (202 only), else NULL; `status` receives it (size 16). */
bool post_status(const Service *svc, const char *place_id, char status[static 16]);

/* POSTs places[i] with X-Request-Id: rids[i], all at once on separate connections; fills the
 * HTTP statuses and the answers' "status" members ("" for none). */
void post_parallel_rid(const Service *svc, const char *const *places, const char *const *rids,
                       size_t n, long *statuses, char (*status)[16]);

/* Polls a metric (bounded) until it is at least / at most value; whether it did. */
bool wait_metric_at_least(const Service *svc, const char *series, double value, int timeout_ms);
bool wait_metric_at_most(const Service *svc, const char *series, double value, int timeout_ms);

/* The stand-in's GET /prefix: placeIds beginning with prefix that got POSTs, their POSTs, the
 * most POSTs one got. False when it did not answer. */
typedef struct PrefixCounts {
    unsigned long long keys, posts, max;
} PrefixCounts;
bool standin_prefix(const Standin *s, const char *prefix, PrefixCounts *ret);
/* Polls GET /prefix (bounded) until `keys` placeIds with that prefix got a POST. */
bool standin_wait_keys(const Standin *s, const char *prefix, unsigned long long keys,
                       int timeout_ms);
/* The stand-in's GET /stats (its owner frees it), or NULL. */
json_object *standin_stats(const Standin *s);
/* A number in GET /stats: "posts", "refusedAll", or a pool's "pool4x20.accepted"; -1 if none. */
long long standin_stat(const Standin *s, const char *path);
/* GET /refuse?ms=: every POST answered 503 for the next ms milliseconds. */
void standin_refuse(const Standin *s, long ms);
/* GET /requests?placeId=: the X-Request-Ids of its POSTs, one a line (malloc'd), or NULL. */
char *standin_requests(const Standin *s, const char *place_id);

/* Whether the daemon's log has a JSON line at `level` whose "msg" or "error" contains `text`
 * and whose "placeId" is place_id (any when NULL); waits up to 2 s. */
bool log_has_line(const Service *svc, const char *level, const char *text, const char *place_id);
/* How many JSON lines of the log have `text` in their "msg". */
unsigned log_count_msg(const Service *svc, const char *text);

/* Jobs are kept modest under a sanitizer: n, or n / div there. */
size_t sized(size_t n, size_t div);
