/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "log-level.h"

#define CONFIG_THREADS_MAX 256

typedef struct Config {
    uint16_t port;
    char *worker_url;     /* base URL, no trailing '/' */
    char *worker_enqueue; /* worker_url + "/enqueue" */
    LogLevel log_level;
    uint32_t worker_timeout_ms;
    uint32_t worker_retries;
    uint32_t worker_max_connections;
    uint32_t max_body_bytes;
    uint32_t max_batch;       /* POST /enqueue/batch: placeIds in one request at most */
    uint32_t max_batch_bytes; /* and its body at most */
    uint32_t shutdown_timeout_sec;
    uint32_t idle_exit_sec;     /* 0: never */
    uint32_t breaker_threshold; /* consecutive failed calls that open the breaker; 0: never */
    uint32_t breaker_cooldown_sec;
    uint32_t max_connections;     /* client connections served at once */
    uint32_t max_pending_jobs;    /* requests waiting for the worker, joined ones included */
    char *spool_dir;              /* NULL: no spool */
    uint32_t spool_max_jobs;      /* jobs that may wait in the spool */
    uint32_t spool_retry_max_sec; /* a spooled job's retries wait at most this long */
    uint32_t spool_max_age_sec;   /* a spooled job's lifetime; 0: never expires */
    uint32_t threads;             /* event loops */
    bool http2;
} Config;

/* Where configuration values come from: getenv() in the daemon, a table in tests. */
typedef const char *(*config_lookup_fn)(const char *name, void *userdata);

/* Fills *c from the lookup. On a bad value returns -EINVAL with *ret_name naming the variable
 * (a static string) and *ret_value the offending value (borrowed from the lookup). */
int config_load(Config *c, config_lookup_fn lookup, void *userdata, const char **ret_name,
                const char **ret_value);
void config_done(Config *c);

/* Whole CPUs (rounded up) of a cgroup v2 cpu.max text ("200000 100000": 2), 0 for "max" or
 * text that is not a quota. THREADS defaults to the CPUs of sched_getaffinity(), no more than
 * this. */
uint32_t config_cpus_of_quota(const char *cpu_max);

/* Writes "NAME=value" lines of the effective configuration, as --check-config prints them. */
int config_dump(const Config *c, char **ret);
