/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse-util.h"

/* Accepts http://host[:port][/path] and https://…: curl's own URL parser decides what curl will
 * accept (host syntax, port range, IPv6 brackets); on top of it no user info, query, fragment
 * or whitespace. The result has no trailing '/'. */
static int parse_worker_url(const char *s, char **ret)
{
    if (strncasecmp(s, "http://", 7) != 0 && strncasecmp(s, "https://", 8) != 0)
        return -EINVAL;
    const char *authority = strstr(s, "://") + 3;
    if (*authority == '\0' || *authority == '/' || *authority == ':')
        return -EINVAL; /* curl would take "http:///x" as host "x" */
    for (const char *p = s; *p; p++)
        if (!isgraph((unsigned char)*p) || *p == '?' || *p == '#' || *p == '\\' || *p == '"' ||
            *p == '@')
            return -EINVAL;

    CURLU *u = curl_url();
    if (!u)
        return -ENOMEM;
    char *host = NULL;
    int r = 0;
    if (curl_url_set(u, CURLUPART_URL, s, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host || !host[0])
        r = -EINVAL;
    else if (host[0] != '[') /* a name or IPv4 address; curl lets "%zz" through */
        for (const char *p = host; *p; p++)
            if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' && *p != '_')
                r = -EINVAL;
    curl_free(host);
    curl_url_cleanup(u);
    if (r < 0)
        return r;

    size_t len = strlen(s), min = (size_t)(authority - s);
    while (len > min && s[len - 1] == '/')
        len--;
    char *v = strndup(s, len);
    if (!v)
        return -ENOMEM;
    *ret = v;
    return 0;
}

typedef struct UintVar {
    const char *name;
    const char *def;
    uint32_t min, max;
    size_t offset;
} UintVar;

static const UintVar uint_vars[] = {
    {"WORKER_TIMEOUT_MS", "5000", 1, 600000, offsetof(Config, worker_timeout_ms)},
    {"WORKER_RETRIES", "2", 0, 10, offsetof(Config, worker_retries)},
    {"WORKER_MAX_CONNECTIONS", "64", 1, 4096, offsetof(Config, worker_max_connections)},
    {"MAX_BODY_BYTES", "16384", 64, 16 * 1024 * 1024, offsetof(Config, max_body_bytes)},
    {"SHUTDOWN_TIMEOUT_SEC", "20", 1, 3600, offsetof(Config, shutdown_timeout_sec)},
    {"IDLE_EXIT_SEC", "0", 0, 86400 * 7, offsetof(Config, idle_exit_sec)},
    {"BREAKER_THRESHOLD", "5", 0, 1000, offsetof(Config, breaker_threshold)},
    {"BREAKER_COOLDOWN_SEC", "5", 1, 3600, offsetof(Config, breaker_cooldown_sec)},
    /* below the 48 × 1024 events one uv_run() takes (see uv-event.c) */
    {"MAX_CONNECTIONS", "4096", 1, 40000, offsetof(Config, max_connections)},
    /* no default here: it follows WORKER_MAX_CONNECTIONS (config_load) */
    {"MAX_PENDING_JOBS", NULL, 1, 1000000, offsetof(Config, max_pending_jobs)},
    {"SPOOL_MAX_JOBS", "1000000", 1, 100000000, offsetof(Config, spool_max_jobs)},
    /* a day at most: a job's backoff doubles from 2 s to it */
    {"SPOOL_RETRY_MAX_SEC", "300", 1, 86400, offsetof(Config, spool_retry_max_sec)},
    /* 5 days, as Postfix's maximal_queue_lifetime; a year at most; 0: never */
    {"SPOOL_MAX_AGE_SEC", "432000", 0, 31536000, offsetof(Config, spool_max_age_sec)},
    /* no default here: the CPUs the process may run on (config_load) */
    {"THREADS", NULL, 1, CONFIG_THREADS_MAX, offsetof(Config, threads)},
};

uint32_t config_cpus_of_quota(const char *cpu_max)
{
    unsigned long long quota, period;
    if (!cpu_max || sscanf(cpu_max, "%llu %llu", &quota, &period) != 2 || period == 0)
        return 0; /* "max …": no quota */
    unsigned long long n = (quota + period - 1) / period;
    return n < 1 ? 1 : n > CONFIG_THREADS_MAX ? CONFIG_THREADS_MAX : (uint32_t)n;
}

/* The CPU quota of this process's cgroup (cgroup v2's cpu.max: CPUQuota=, a container's CPU
 * limit) in whole CPUs, rounded up; 0 when there is none or it cannot be read. */
static uint32_t cpus_of_cgroup_quota(void)
{
    char line[512], path[640], text[64] = "";
    FILE *f = fopen("/proc/self/cgroup", "re");
    if (!f)
        return 0;
    bool found = false;
    while (!found && fgets(line, sizeof(line), f))
        found = strncmp(line, "0::", 3) == 0;
    fclose(f);
    if (!found)
        return 0;
    line[strcspn(line, "\n")] = '\0';
    snprintf(path, sizeof(path), "/sys/fs/cgroup%s/cpu.max", strcmp(line + 3, "/") ? line + 3 : "");
    f = fopen(path, "re");
    if (!f)
        return 0;
    if (!fgets(text, sizeof(text), f))
        text[0] = '\0';
    fclose(f);
    return config_cpus_of_quota(text);
}

/* The CPUs this process may run on (CPUAffinity=, cpusets of cgroups and containers), no more
 * than its cgroup's CPU quota allows, at least one and at most CONFIG_THREADS_MAX. */
static uint32_t cpus_available(void)
{
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) < 0)
        return 1;
    int n = CPU_COUNT(&set);
    uint32_t cpus = n < 1 ? 1 : n > CONFIG_THREADS_MAX ? CONFIG_THREADS_MAX : (uint32_t)n;
    uint32_t quota = cpus_of_cgroup_quota();
    return quota > 0 && quota < cpus ? quota : cpus;
}

/* Jobs that may wait for the worker by default, per connection to it: enough that a burst
 * waits a few round trips rather than being refused, few enough that a worker that hangs
 * holds a bounded amount of memory (about 7 KiB a job: README, "Limits"). */
#define PENDING_JOBS_PER_WORKER_CONNECTION 16

static const char *value_or(config_lookup_fn lookup, void *userdata, const char *name,
                            const char *def)
{
    const char *v = lookup(name, userdata);
    return v ? v : def;
}

/* on/1/true/yes or off/0/false/no, any case. */
static int parse_switch(const char *v, bool *ret)
{
    if (strcasecmp(v, "on") == 0 || strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0 ||
        strcasecmp(v, "yes") == 0)
        *ret = true;
    else if (strcasecmp(v, "off") == 0 || strcmp(v, "0") == 0 || strcasecmp(v, "false") == 0 ||
             strcasecmp(v, "no") == 0)
        *ret = false;
    else
        return -EINVAL;
    return 0;
}

/* SPOOL_DIR: unset, the unit's StateDirectory= (its first, should there be several); set and
 * empty, no spool. Either way an absolute path. -EINVAL: *ret_name and *ret_value say which. */
static int load_spool_dir(Config *c, config_lookup_fn lookup, void *userdata, const char **ret_name,
                          const char **ret_value)
{
    const char *name = "SPOOL_DIR", *v = lookup(name, userdata);
    size_t dir_len = v ? strlen(v) : 0;
    if (!v) {
        name = "STATE_DIRECTORY"; /* systemd's: several are separated by ':' */
        v = lookup(name, userdata);
        dir_len = v ? strcspn(v, ":") : 0;
    }
    *ret_name = name;
    *ret_value = v;
    if (dir_len == 0)
        return 0;
    if (v[0] != '/' || dir_len > 4000)
        return -EINVAL;
    c->spool_dir = strndup(v, dir_len);
    return c->spool_dir ? 0 : -ENOMEM;
}

int config_load(Config *c, config_lookup_fn lookup, void *userdata, const char **ret_name,
                const char **ret_value)
{
    *c = (Config){0};
    const char *name, *v;
    uint32_t u;
    int r;

    name = "PORT";
    v = value_or(lookup, userdata, name, "8080");
    if (parse_uint32(v, 1, 65535, &u) < 0)
        goto invalid;
    c->port = (uint16_t)u;

    name = "LOG_LEVEL";
    v = value_or(lookup, userdata, name, "info");
    if (log_level_from_string(v, &c->log_level) < 0)
        goto invalid;

    for (size_t i = 0; i < sizeof(uint_vars) / sizeof(uint_vars[0]); i++) {
        name = uint_vars[i].name;
        v = value_or(lookup, userdata, name, uint_vars[i].def);
        if (!v)
            continue;
        if (parse_uint32(v, uint_vars[i].min, uint_vars[i].max,
                         (uint32_t *)((char *)c + uint_vars[i].offset)) < 0)
            goto invalid;
    }

    if (!lookup("THREADS", userdata))
        c->threads = cpus_available();
    if (!lookup("MAX_PENDING_JOBS", userdata))
        c->max_pending_jobs = c->worker_max_connections * PENDING_JOBS_PER_WORKER_CONNECTION;

    name = "HTTP2";
    v = value_or(lookup, userdata, name, "off");
    if (parse_switch(v, &c->http2) < 0)
        goto invalid;

    r = load_spool_dir(c, lookup, userdata, &name, &v);
    if (r == -EINVAL)
        goto invalid;
    if (r < 0) {
        config_done(c);
        return r;
    }

    name = "WORKER_NODE_URL";
    v = value_or(lookup, userdata, name, "http://localhost:3000");
    r = parse_worker_url(v, &c->worker_url);
    if (r == -ENOMEM)
        return r;
    if (r < 0)
        goto invalid;
    if (asprintf(&c->worker_enqueue, "%s/enqueue", c->worker_url) < 0) {
        config_done(c);
        return -ENOMEM;
    }
    return 0;

invalid:
    config_done(c);
    *ret_name = name;
    *ret_value = v;
    return -EINVAL;
}

void config_done(Config *c)
{
    if (!c)
        return;
    free(c->worker_url);
    free(c->worker_enqueue);
    free(c->spool_dir);
    c->worker_url = c->worker_enqueue = c->spool_dir = NULL;
}

int config_dump(const Config *c, char **ret)
{
    char *s;
    if (asprintf(&s,
                 "PORT=%u\nWORKER_NODE_URL=%s\nLOG_LEVEL=%s\nWORKER_TIMEOUT_MS=%u\n"
                 "WORKER_RETRIES=%u\nWORKER_MAX_CONNECTIONS=%u\nMAX_BODY_BYTES=%u\n"
                 "SHUTDOWN_TIMEOUT_SEC=%u\nIDLE_EXIT_SEC=%u\nHTTP2=%s\nBREAKER_THRESHOLD=%u\n"
                 "BREAKER_COOLDOWN_SEC=%u\nMAX_CONNECTIONS=%u\nMAX_PENDING_JOBS=%u\n"
                 "SPOOL_DIR=%s\nSPOOL_MAX_JOBS=%u\nSPOOL_RETRY_MAX_SEC=%u\nSPOOL_MAX_AGE_SEC=%u\n"
                 "THREADS=%u\n",
                 c->port, c->worker_url, log_level_to_string(c->log_level), c->worker_timeout_ms,
                 c->worker_retries, c->worker_max_connections, c->max_body_bytes,
                 c->shutdown_timeout_sec, c->idle_exit_sec, c->http2 ? "on" : "off",
                 c->breaker_threshold, c->breaker_cooldown_sec, c->max_connections,
                 c->max_pending_jobs, c->spool_dir ? c->spool_dir : "", c->spool_max_jobs,
                 c->spool_retry_max_sec, c->spool_max_age_sec, c->threads) < 0)
        return -ENOMEM;
    *ret = s;
    return 0;
}
