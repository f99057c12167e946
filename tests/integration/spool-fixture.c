/* SPDX-License-Identifier: MIT */
#include "spool-fixture.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: fixture check failed: %s\n", __FILE__, __LINE__, #cond);       \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

void spooled_init(Spooled *f)
{
    memset(f, 0, sizeof(*f));
    snprintf(f->dir, sizeof(f->dir), "/tmp/argus-spool-XXXXXX");
    CHECK(mkdtemp(f->dir));
    f->down_port = free_port();
    snprintf(f->env_worker, sizeof(f->env_worker), "WORKER_NODE_URL=http://127.0.0.1:%u",
             f->down_port);
    snprintf(f->env_dir, sizeof(f->env_dir), "SPOOL_DIR=%s", f->dir);
}

void spooled_worker_back(Spooled *f)
{
    standin_start_port(&f->worker, f->down_port);
}

void spooled_worker_down(Spooled *f)
{
    standin_stop(&f->worker);
}

/* Removes a folder's files and sub-folders (one level deep is all the tests make), then it. */
static void remove_tree(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
                char path[512];
                snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
                struct stat st;
                if (depth < 2 && lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
                    remove_tree(path, depth + 1);
                else
                    (void)unlink(path);
            }
        closedir(d);
    }
    (void)rmdir(dir);
}

void spooled_cleanup(Spooled *f)
{
    standin_stop(&f->worker);
    struct stat st;
    if (lstat(f->dir, &st) == 0 && S_ISLNK(st.st_mode)) {
        char target[256];
        ssize_t k = readlink(f->dir, target, sizeof(target) - 1);
        if (k > 0) {
            target[k] = '\0';
            remove_tree(target, 0);
        }
        (void)unlink(f->dir);
    } else
        remove_tree(f->dir, 0);
    /* the folders the tests move aside: DIR.old, DIR.new */
    char aside[96];
    snprintf(aside, sizeof(aside), "%s.old", f->dir);
    remove_tree(aside, 0);
    snprintf(aside, sizeof(aside), "%s.new", f->dir);
    remove_tree(aside, 0);
}

/* Whether two "NAME=value" have the same NAME. */
static bool same_name(const char *a, const char *b)
{
    size_t n = strcspn(a, "=");
    return strncmp(a, b, n) == 0 && b[n] == '=';
}

void spooled_start(Service *svc, const Spooled *f, ...)
{
    const char *env[16] = {f->env_worker, f->env_dir, "BREAKER_COOLDOWN_SEC=1",
                           "WORKER_TIMEOUT_MS=1000"};
    size_t n = 4;
    va_list ap;
    va_start(ap, f);
    for (const char *v; n < 15 && (v = va_arg(ap, const char *));) {
        size_t i;
        for (i = 0; i < n && !same_name(env[i], v); i++)
            ;
        env[i] = v;
        if (i == n)
            n++;
    }
    va_end(ap);
    env[n] = NULL;
    service_start(svc, env);
}

void spooled_stop(Service *svc)
{
    int st = service_stop(svc, SIGTERM);
    if (st != 0)
        fprintf(stderr, "the daemon's exit status on SIGTERM: %d (log: %s)\n", st, svc->log_path);
    CHECK(st == 0);
    service_cleanup(svc);
}

int spool_cli_argv(const Spooled *f, char *out, size_t n, const char *const *args)
{
    const char *argv[24] = {argus_binary(), "spool", "--spool-dir", f->dir};
    size_t k = 4;
    for (size_t i = 0; args[i] && k < 23; i++)
        argv[k++] = args[i];
    argv[k] = NULL;
    return run_capture(argv, NULL, out, n);
}

int spool_cli(const Spooled *f, char *out, size_t n, ...)
{
    const char *args[20];
    size_t k = 0;
    va_list ap;
    va_start(ap, n);
    for (const char *v; k < 19 && (v = va_arg(ap, const char *));)
        args[k++] = v;
    va_end(ap);
    args[k] = NULL;
    return spool_cli_argv(f, out, n, args);
}

/* Parses the JSON in a command's output (from its first '[' or '{': the command prints nothing
 * else on success). */
static json_object *parse_output(const char *out)
{
    const char *p = out + strcspn(out, "[{");
    return *p ? json_tokener_parse(p) : NULL;
}

#define OUT_MAX (1 << 20)

json_object *spool_list_json(const Spooled *f, bool dead)
{
    char *out = malloc(OUT_MAX);
    CHECK(out);
    const char *const live[] = {"list", "--json", NULL}, *const dead_args[] = {"list", "--dead",
                                                                               "--json", NULL};
    int st = spool_cli_argv(f, out, OUT_MAX, dead ? dead_args : live);
    json_object *o = st == 0 ? parse_output(out) : NULL;
    if (!o)
        fprintf(stderr, "spool list --json: exit %d: %.2000s\n", st, out);
    free(out);
    /* An array of jobs, or an object holding one under "jobs". */
    json_object *jobs = NULL;
    if (o && json_object_is_type(o, json_type_object) &&
        json_object_object_get_ex(o, "jobs", &jobs) && json_object_is_type(jobs, json_type_array)) {
        json_object_get(jobs);
        json_object_put(o);
        return jobs;
    }
    if (o && !json_object_is_type(o, json_type_array)) {
        json_object_put(o);
        return NULL;
    }
    return o;
}

json_object *spool_show_json(const Spooled *f, int64_t id)
{
    char ids[32], out[16384];
    snprintf(ids, sizeof(ids), "%lld", (long long)id);
    int st = spool_cli(f, out, sizeof(out), "show", ids, "--json", NULL);
    json_object *o = st == 0 ? parse_output(out) : NULL;
    if (!o)
        fprintf(stderr, "spool show %s --json: exit %d: %s\n", ids, st, out);
    json_object *job = NULL;
    if (o && json_object_is_type(o, json_type_object) &&
        json_object_object_get_ex(o, "job", &job) && json_object_is_type(job, json_type_object)) {
        json_object_get(job);
        json_object_put(o);
        return job;
    }
    return o;
}

const char *job_string(json_object *job, const char *key)
{
    json_object *v;
    return job && json_object_object_get_ex(job, key, &v) && v ? json_object_get_string(v) : NULL;
}

int64_t job_int(json_object *job, const char *key)
{
    json_object *v;
    return job && json_object_object_get_ex(job, key, &v) && v ? json_object_get_int64(v) : -1;
}

int64_t spool_id_of(const Spooled *f, const char *place_id, bool dead)
{
    json_object *jobs = spool_list_json(f, dead);
    int64_t id = -1;
    for (size_t i = 0; jobs && i < json_object_array_length(jobs) && id < 0; i++) {
        json_object *j = json_object_array_get_idx(jobs, i);
        const char *p = job_string(j, "placeId");
        if (p && strcmp(p, place_id) == 0)
            id = job_int(j, "id");
    }
    json_object_put(jobs);
    return id;
}

/* The "status" member of an answer's body, into status (size 16); false when none. */
static bool answer_status(const char *body, char status[static 16])
{
    json_object *o = body ? json_tokener_parse(body) : NULL;
    json_object *v;
    bool ok = o && json_object_object_get_ex(o, "status", &v);
    if (ok)
        snprintf(status, 16, "%s", json_object_get_string(v));
    json_object_put(o);
    return ok;
}

size_t post_many(const Service *svc, const char *prefix, size_t first, size_t n, size_t at_once,
                 const char *status)
{
    char url[128];
    snprintf(url, sizeof(url), "%s/enqueue", svc->base);
    char(*bodies)[160] = calloc(at_once, sizeof(*bodies));
    const char **ptrs = calloc(at_once, sizeof(*ptrs));
    long *statuses = calloc(at_once, sizeof(*statuses));
    char **answers = calloc(at_once, sizeof(*answers));
    CHECK(bodies && ptrs && statuses && answers);
    size_t matched = 0, told = 0;
    for (size_t done = 0; done < n;) {
        size_t k = n - done < at_once ? n - done : at_once;
        for (size_t i = 0; i < k; i++) {
            snprintf(bodies[i], sizeof(bodies[i]), "{\"placeId\":\"%s%zu\"}", prefix,
                     first + done + i);
            ptrs[i] = bodies[i];
        }
        http_post_parallel(url, ptrs, k, statuses, answers);
        for (size_t i = 0; i < k; i++) {
            char st[16];
            if (statuses[i] == 202 && answer_status(answers[i], st) && strcmp(st, status) == 0)
                matched++;
            else if (told++ < 5)
                fprintf(stderr, "post_many: %s%zu answered %ld %s\n", prefix, first + done + i,
                        statuses[i], answers[i] ? answers[i] : "");
            free(answers[i]);
        }
        done += k;
    }
    free(bodies);
    free(ptrs);
    free(statuses);
    free(answers);
    return matched;
}

bool post_status(const Service *svc, const char *place_id, char status[static 16])
{
    Response r = service_enqueue(svc, place_id);
    bool ok = r.status == 202 && answer_status(r.body, status);
    if (!ok)
        fprintf(stderr, "POST %s: %ld %s\n", place_id, r.status, r.body ? r.body : "");
    response_free(&r);
    return ok;
}

bool wait_metric_at_least(const Service *svc, const char *series, double value, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    do {
        if (service_metric(svc, series) >= value)
            return true;
        usleep(50 * 1000);
    } while (now_ms() < deadline);
    fprintf(stderr, "%s is %g, not >= %g, after %d ms\n", series, service_metric(svc, series),
            value, timeout_ms);
    return false;
}

bool wait_metric_at_most(const Service *svc, const char *series, double value, int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    do {
        double v = service_metric(svc, series);
        if (v >= 0 && v <= value)
            return true;
        usleep(50 * 1000);
    } while (now_ms() < deadline);
    fprintf(stderr, "%s is %g, not <= %g, after %d ms\n", series, service_metric(svc, series),
            value, timeout_ms);
    return false;
}

bool standin_prefix(const Standin *s, const char *prefix, PrefixCounts *ret)
{
    char path[256];
    snprintf(path, sizeof(path), "/prefix?p=%s", prefix);
    char *body = standin_get(s, path);
    bool ok = body && sscanf(body, "{\"keys\":%llu,\"posts\":%llu,\"max\":%llu}", &ret->keys,
                             &ret->posts, &ret->max) == 3;
    free(body);
    return ok;
}

bool standin_wait_keys(const Standin *s, const char *prefix, unsigned long long keys,
                       int timeout_ms)
{
    long long deadline = now_ms() + timeout_ms;
    PrefixCounts c = {0};
    do {
        if (standin_prefix(s, prefix, &c) && c.keys >= keys)
            return true;
        usleep(100 * 1000);
    } while (now_ms() < deadline);
    fprintf(stderr, "%llu of %llu placeIds \"%s…\" reached the worker in %d ms\n", c.keys, keys,
            prefix, timeout_ms);
    return false;
}

json_object *standin_stats(const Standin *s)
{
    char *body = standin_get(s, "/stats");
    json_object *o = body ? json_tokener_parse(body) : NULL;
    free(body);
    return o;
}

long long standin_stat(const Standin *s, const char *path)
{
    json_object *o = standin_stats(s), *v = o;
    char key[64];
    snprintf(key, sizeof(key), "%s", path);
    char *dot = strchr(key, '.');
    if (dot) {
        *dot = '\0';
        json_object *pools;
        if (!json_object_object_get_ex(o, "pools", &pools) ||
            !json_object_object_get_ex(pools, key, &v))
            v = NULL;
    }
    long long n = -1;
    json_object *x;
    if (v && json_object_object_get_ex(v, dot ? dot + 1 : key, &x))
        n = json_object_get_int64(x);
    json_object_put(o);
    return n;
}

void standin_refuse(const Standin *s, long ms)
{
    char path[64];
    snprintf(path, sizeof(path), "/refuse?ms=%ld", ms);
    free(standin_get(s, path));
}

char *standin_requests(const Standin *s, const char *place_id)
{
    char path[256];
    snprintf(path, sizeof(path), "/requests?placeId=%s", place_id);
    return standin_get(s, path);
}

/* Calls fn for each JSON line of the daemon's log; stops when it returns true. */
static bool log_any(const Service *svc, bool (*fn)(json_object *o, void *userdata), void *userdata)
{
    FILE *fp = fopen(svc->log_path, "re");
    if (!fp)
        return false;
    char *line = NULL;
    size_t cap = 0;
    bool found = false;
    while (!found && getline(&line, &cap, fp) > 0) {
        json_object *o = json_tokener_parse(line);
        found = o && fn(o, userdata);
        json_object_put(o);
    }
    free(line);
    fclose(fp);
    return found;
}

typedef struct LineQuery {
    const char *level, *text, *place_id;
} LineQuery;

static bool line_matches(json_object *o, void *userdata)
{
    const LineQuery *q = userdata;
    const char *level = job_string(o, "level"), *msg = job_string(o, "msg"),
               *error = job_string(o, "error"), *place = job_string(o, "placeId");
    if (!level || strcmp(level, q->level) != 0)
        return false;
    if (q->place_id && (!place || strcmp(place, q->place_id) != 0))
        return false;
    return (msg && strstr(msg, q->text)) || (error && strstr(error, q->text));
}

bool log_has_line(const Service *svc, const char *level, const char *text, const char *place_id)
{
    LineQuery q = {level, text, place_id};
    long long deadline = now_ms() + 2000;
    do {
        if (log_any(svc, line_matches, &q))
            return true;
        usleep(20 * 1000);
    } while (now_ms() < deadline);
    return false;
}

typedef struct MsgCount {
    const char *text;
    unsigned n;
} MsgCount;

static bool count_msg(json_object *o, void *userdata)
{
    MsgCount *c = userdata;
    const char *msg = job_string(o, "msg");
    c->n += msg && strstr(msg, c->text);
    return false;
}

unsigned log_count_msg(const Service *svc, const char *text)
{
    MsgCount c = {text, 0};
    log_any(svc, count_msg, &c);
    return c.n;
}

size_t sized(size_t n, size_t div)
{
    return harness_sanitized() ? n / div : n;
}

/* The answer's body, gathered. */
typedef struct Gathered {
    char buf[512];
    size_t len;
} Gathered;

static size_t gather(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    Gathered *g = userdata;
    size_t n = size * nmemb, room = sizeof(g->buf) - 1 - g->len;
    memcpy(g->buf + g->len, ptr, n < room ? n : room);
    g->len += n < room ? n : room;
    g->buf[g->len] = '\0';
    return n;
}

void post_parallel_rid(const Service *svc, const char *const *places, const char *const *rids,
                       size_t n, long *statuses, char (*status)[16])
{
    char url[128];
    snprintf(url, sizeof(url), "%s/enqueue", svc->base);
    CURLM *multi = curl_multi_init();
    CURL **easy = calloc(n, sizeof(*easy));
    struct curl_slist **headers = calloc(n, sizeof(*headers));
    char(*bodies)[160] = calloc(n, sizeof(*bodies));
    Gathered *got = calloc(n, sizeof(*got));
    CHECK(multi && easy && headers && bodies && got);
    for (size_t i = 0; i < n; i++) {
        char rid[160];
        snprintf(bodies[i], sizeof(bodies[i]), "{\"placeId\":\"%s\"}", places[i]);
        snprintf(rid, sizeof(rid), "X-Request-Id: %s", rids[i]);
        headers[i] = curl_slist_append(NULL, "Content-Type: application/json");
        headers[i] = curl_slist_append(headers[i], "Expect:");
        headers[i] = curl_slist_append(headers[i], rid);
        easy[i] = curl_easy_init();
        CHECK(easy[i]);
        curl_easy_setopt(easy[i], CURLOPT_URL, url);
        curl_easy_setopt(easy[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(easy[i], CURLOPT_POSTFIELDS, bodies[i]);
        curl_easy_setopt(easy[i], CURLOPT_HTTPHEADER, headers[i]);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, gather);
        curl_easy_setopt(easy[i], CURLOPT_WRITEDATA, &got[i]);
        curl_easy_setopt(easy[i], CURLOPT_FORBID_REUSE, 1L);
        curl_multi_add_handle(multi, easy[i]);
    }
    int running = 1;
    long long deadline = now_ms() + 60000;
    while (running && now_ms() < deadline) {
        curl_multi_perform(multi, &running);
        if (running)
            curl_multi_poll(multi, NULL, 0, 100, NULL);
    }
    for (size_t i = 0; i < n; i++) {
        statuses[i] = 0;
        curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &statuses[i]);
        if (!answer_status(got[i].buf, status[i]))
            status[i][0] = '\0';
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
        curl_slist_free_all(headers[i]);
    }
    curl_multi_cleanup(multi);
    free(easy);
    free(headers);
    free(bodies);
    free(got);
}
