/* SPDX-License-Identifier: MIT */
/* A stand-in for the Argus worker node, for tests and the README's quick start.
 *
 * POST /enqueue answers by the placeId's prefix, so that one stand-in serves concurrent tests:
 *   (none)            201 {"queued":true}
 *   status<NNN>-…     always NNN (400, 429, 500, 503, …)
 *   fail<K>x-…        500 for the first K attempts of that job, then 201
 *   fail<K>x<NNN>-…   NNN (400, 503, …) for the first K attempts of that job, then 201
 *   later<N>s<K>x-…   503 with Retry-After: N for the first K attempts of that job, then 201
 *   pool<N>x<MS>-…    a worker with a pool of N: at most N such calls (of every placeId with
 *                     that same prefix) in progress at once over all connections, each answered
 *                     201 after MS milliseconds; past N, 503 at once (see GET /stats)
 *   slow<MS>-…        201 after MS milliseconds
 *   hang-…            never answers (holds the connection until the client closes it)
 *   close-…           closes the connection without an answer
 *   garbage-…         answers bytes that are not HTTP
 *   truncated-…       answers 201 with a Content-Length longer than the body, then closes
 *   reset-…           resets the connection (RST) without an answer
 *   retry<N>s-…       429 with Retry-After: N on the first attempt of that job, then 201
 *   flap<MS>-…        503 during every other window of MS milliseconds, 201 in between
 *   retryforever-…    429 with Retry-After: 99999999999 on the first attempt, then 201
 *   retrydate-…       503 with Retry-After: a date in the year 9999 on the first attempt, then 201
 *   bighead-…         201 with one header line of 2 MiB
 *   manyheads-…       201 with 2 MiB of header lines of 1 KiB
 *   bigbody-…         201 with a chunked body that never ends (until the client goes away)
 *   bigbodycl-…       201 announcing a body of 100 MiB in Content-Length, then sending it
 * While a GET /refuse?ms=M is in force (the next M milliseconds), every POST /enqueue is answered
 * 503 at once, whatever its placeId (a worker failing every job); counted as any POST.
 * Every request must carry Content-Type: application/json, a body {"placeId":P,"jobId":J} and
 * Idempotency-Key: J; otherwise 422 with the reason.
 * GET /count?placeId=P answers {"count":N}: how many POSTs that placeId got.
 * GET /requests?placeId=P answers the X-Request-Id of that placeId's POSTs in the order they
 * arrived (the first 8; "-" for none), one a line, as text/plain.
 * GET /traces?placeId=P answers the traceparent and the tracestate of that placeId's POSTs (the
 * first 8), one POST a line, the two separated by a tab, "-" for a header not sent.
 * GET /prefix?p=X answers {"keys":K,"posts":N,"max":M}: how many placeIds beginning with X got
 * POSTs, how many POSTs they got together, and the most one of them got.
 * GET /stats answers {"posts":N,"peak":P,"refusedAll":R,"pools":{"pool<N>x<MS>":{"accepted":A,
 * "refused":B,"peak":C},…}}: every POST /enqueue with a valid body, the most of them in progress
 * at once, those answered 503 under /refuse, and each pool's calls taken, refused, and the most
 * in progress at once.
 * GET /order answers the placeIds of the POSTs in the order they arrived (a first arrival
 * each; the first 16384 placeIds), one a line, as text/plain.
 * GET /health answers 200.
 *
 * Usage: argus-worker-standin [PORT] [ADDRESS]; port 0 picks one, printed as "PORT=N" on stdout.
 * One thread per connection, keep-alive, loopback by default. */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQUEST 65536
#define MAX_KEYS 16384
#define MAX_RIDS 8 /* X-Request-Ids kept per placeId */
#define MAX_POOLS 16

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* In the order of their first POST: the array's order is the arrival order. */
static struct {
    char *key;
    unsigned count;
    char *rids[MAX_RIDS];   /* the X-Request-Id of its first POSTs */
    char *traces[MAX_RIDS]; /* their "traceparent\ttracestate" */
} counts[MAX_KEYS];

/* The pools of pool<N>x<MS>-… (one per N and MS), and the totals for GET /stats. */
typedef struct Pool {
    int size, ms;
    unsigned busy, peak;
    unsigned long long accepted, refused;
} Pool;

static struct {
    Pool pools[MAX_POOLS];
    size_t n_pools;
    unsigned long long posts, refused_all;
    unsigned busy, peak;    /* POSTs in progress now, and the most at once */
    long long refuse_until; /* CLOCK_MONOTONIC ms: every POST answered 503 until then */
} stats;

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The POSTs of `key` so far, one more first when `rid` is not NULL (its X-Request-Id, "" for
 * none; trace its "traceparent\ttracestate"). */
static unsigned count_bump(const char *key, const char *rid, const char *trace)
{
    pthread_mutex_lock(&lock);
    unsigned n = 0;
    size_t i;
    for (i = 0; i < MAX_KEYS && counts[i].key; i++)
        if (strcmp(counts[i].key, key) == 0)
            break;
    if (i < MAX_KEYS) {
        if (!counts[i].key && rid)
            counts[i].key = strdup(key);
        if (counts[i].key) {
            if (rid) {
                if (counts[i].count < MAX_RIDS) {
                    counts[i].rids[counts[i].count] = strdup(rid[0] ? rid : "-");
                    counts[i].traces[counts[i].count] = strdup(trace ? trace : "-\t-");
                }
                counts[i].count++;
            }
            n = counts[i].count;
        }
    }
    pthread_mutex_unlock(&lock);
    return n;
}

/* A POST begins (true) or ends (false): counted for GET /stats. */
static void post_busy(bool begin)
{
    pthread_mutex_lock(&lock);
    if (begin) {
        stats.posts++;
        if (++stats.busy > stats.peak)
            stats.peak = stats.busy;
    } else
        stats.busy--;
    pthread_mutex_unlock(&lock);
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return false;
        p += k;
        n -= (size_t)k;
    }
    return true;
}

static bool respond(int fd, int status, const char *body)
{
    char buf[1024];
    size_t len = strlen(body);
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d Status\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     status, len, len < 512 ? body : "");
    return write_all(fd, buf, (size_t)n) && (len < 512 || write_all(fd, body, len));
}

/* The placeIds in the order of their first POST, one a line. */
static bool respond_order(int fd)
{
    size_t cap = 4096, len = 0;
    char *text = malloc(cap);
    if (!text)
        return false;
    text[0] = '\0';
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < MAX_KEYS && counts[i].key; i++) {
        size_t k = strlen(counts[i].key);
        if (len + k + 2 > cap) {
            char *t = realloc(text, cap = (len + k + 2) * 2);
            if (!t)
                break;
            text = t;
        }
        memcpy(text + len, counts[i].key, k);
        len += k;
        text[len++] = '\n';
        text[len] = '\0';
    }
    pthread_mutex_unlock(&lock);
    char head[256];
    int n =
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n", len);
    bool ok = write_all(fd, head, (size_t)n) && write_all(fd, text, len);
    free(text);
    return ok;
}

/* An answer to the first attempt of a job, with a Retry-After of `value`; 201 after that. */
static bool retry_after_once(int fd, unsigned n, int status, const char *value)
{
    if (n > 1)
        return respond(fd, 201, "{\"queued\":true}");
    char buf[256];
    int k = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d Try Later\r\nRetry-After: %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                     status, value);
    return write_all(fd, buf, (size_t)k);
}

/* A 201 whose head is too large: one line of 2 MiB, or 2 MiB of 1 KiB lines. Written until the
 * client gives up on it (the write then fails). */
static bool big_head(int fd, bool one_line)
{
    static const char start[] = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n",
                      end[] = "Content-Length: 2\r\n\r\n{}";
    char line[1024];
    memset(line, 'a', sizeof(line));
    if (!write_all(fd, start, sizeof(start) - 1))
        return false;
    for (int i = 0; i < 2048; i++) {
        if (i == 0 || !one_line)
            memcpy(line, "X-Big: ", 7);
        else
            memset(line, 'a', 7);
        if (!one_line || i == 2047)
            memcpy(line + sizeof(line) - 2, "\r\n", 2);
        if (!write_all(fd, line, sizeof(line)))
            return false;
    }
    return write_all(fd, end, sizeof(end) - 1);
}

/* A 201 with a body of 100 MiB, in chunks that never end or announced in Content-Length. */
static bool big_body(int fd, bool announced)
{
    char buf[16384 + 16];
    int k = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n%s\r\n\r\n",
                     announced ? "Content-Length: 104857600" : "Transfer-Encoding: chunked");
    if (!write_all(fd, buf, (size_t)k))
        return false;
    char *body = buf;
    size_t n = 16384;
    if (!announced) {
        memcpy(buf, "4000\r\n", 6); /* 16 KiB chunks */
        body = buf + 6;
        memcpy(body + n, "\r\n", 2);
        n += 8;
    }
    memset(body, ' ', 16384);
    for (size_t sent = 0; announced ? sent < 104857600 : true; sent += 16384)
        if (!write_all(fd, buf, n))
            return false;
    return true;
}

/* Finds a header's value in the head (case-insensitive name); copies it into out. */
static bool header(const char *head, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = strstr(head, "\r\n"); p; p = strstr(p + 2, "\r\n")) {
        const char *line = p + 2;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            size_t l = strcspn(v, "\r\n");
            if (l >= n)
                l = n - 1;
            memcpy(out, v, l);
            out[l] = '\0';
            return true;
        }
    }
    return false;
}

/* The rest of the table: Retry-After, big answers, flapping. */
static bool answer_more(int fd, const char *place, unsigned n)
{
    int v;
    char c;
    if (sscanf(place, "retry%ds%c", &v, &c) == 2 && c == '-') {
        if (n > 1)
            return respond(fd, 201, "{\"queued\":true}");
        char buf[256];
        int k = snprintf(buf, sizeof(buf),
                         "HTTP/1.1 429 Too Many Requests\r\nRetry-After: %d\r\n"
                         "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                         v);
        return write_all(fd, buf, (size_t)k);
    }
    if (strncmp(place, "retryforever-", 13) == 0)
        return retry_after_once(fd, n, 429, "99999999999");
    if (strncmp(place, "retrydate-", 10) == 0)
        return retry_after_once(fd, n, 503, "Fri, 31 Dec 9999 23:59:59 GMT");
    if (strncmp(place, "bighead-", 8) == 0)
        return big_head(fd, true);
    if (strncmp(place, "manyheads-", 10) == 0)
        return big_head(fd, false);
    if (strncmp(place, "bigbody-", 8) == 0)
        return big_body(fd, false);
    if (strncmp(place, "bigbodycl-", 10) == 0)
        return big_body(fd, true);
    if (sscanf(place, "flap%d%c", &v, &c) == 2 && c == '-' && v > 0) {
        return (mono_ms() / v) % 2 ? respond(fd, 503, "{\"error\":\"flapping\"}")
                                   : respond(fd, 201, "{\"queued\":true}");
    }
    return respond(fd, 201, "{\"queued\":true}");
}

/* Answers text/plain. */
static bool respond_text(int fd, const char *text, size_t len)
{
    char head[256];
    int n =
        snprintf(head, sizeof(head),
                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n\r\n", len);
    return write_all(fd, head, (size_t)n) && write_all(fd, text, len);
}

/* The X-Request-Ids of a placeId's first POSTs, one a line. */
static bool respond_requests(int fd, const char *key)
{
    char text[MAX_RIDS * 160] = "";
    size_t len = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < MAX_KEYS && counts[i].key; i++) {
        if (strcmp(counts[i].key, key) != 0)
            continue;
        for (size_t r = 0; r < MAX_RIDS && counts[i].rids[r]; r++)
            len += (size_t)snprintf(text + len, sizeof(text) - len, "%.150s\n", counts[i].rids[r]);
        break;
    }
    pthread_mutex_unlock(&lock);
    return respond_text(fd, text, len);
}

/* The traceparent and tracestate of a placeId's first POSTs, one a line. */
static bool respond_traces(int fd, const char *key)
{
    char text[MAX_RIDS * 600] = "";
    size_t len = 0;
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < MAX_KEYS && counts[i].key; i++) {
        if (strcmp(counts[i].key, key) != 0)
            continue;
        for (size_t r = 0; r < MAX_RIDS && counts[i].traces[r]; r++)
            len +=
                (size_t)snprintf(text + len, sizeof(text) - len, "%.590s\n", counts[i].traces[r]);
        break;
    }
    pthread_mutex_unlock(&lock);
    return respond_text(fd, text, len);
}

/* How many placeIds beginning with `prefix` got POSTs, their POSTs, the most one got. */
static bool respond_prefix(int fd, const char *prefix)
{
    unsigned long long keys = 0, posts = 0, most = 0;
    size_t pl = strlen(prefix);
    pthread_mutex_lock(&lock);
    for (size_t i = 0; i < MAX_KEYS && counts[i].key; i++)
        if (strncmp(counts[i].key, prefix, pl) == 0) {
            keys++;
            posts += counts[i].count;
            if (counts[i].count > most)
                most = counts[i].count;
        }
    pthread_mutex_unlock(&lock);
    char b[160];
    snprintf(b, sizeof(b), "{\"keys\":%llu,\"posts\":%llu,\"max\":%llu}", keys, posts, most);
    return respond(fd, 200, b);
}

static bool respond_stats(int fd)
{
    char b[4096];
    size_t len = 0;
    pthread_mutex_lock(&lock);
    len += (size_t)snprintf(b, sizeof(b),
                            "{\"posts\":%llu,\"peak\":%u,\"refusedAll\":%llu,\"pools\":{",
                            stats.posts, stats.peak, stats.refused_all);
    for (size_t i = 0; i < stats.n_pools; i++) {
        const Pool *p = &stats.pools[i];
        len += (size_t)snprintf(b + len, sizeof(b) - len,
                                "%s\"pool%dx%d\":{\"accepted\":%llu,\"refused\":%llu,\"peak\":%u}",
                                i ? "," : "", p->size, p->ms, p->accepted, p->refused, p->peak);
    }
    pthread_mutex_unlock(&lock);
    snprintf(b + len, sizeof(b) - len, "}}");
    return respond(fd, 200, b);
}

/* GET /refuse?ms=M: every POST answered 503 for the next M milliseconds (0 ends it). */
static bool set_refuse(int fd, const char *ms)
{
    long long v = atoll(ms);
    pthread_mutex_lock(&lock);
    stats.refuse_until = v > 0 ? mono_ms() + v : 0;
    pthread_mutex_unlock(&lock);
    return respond(fd, 200, "{\"refusing\":true}");
}

/* Whether a GET /refuse is in force: then the POST is answered 503, counted. */
static bool refusing_all(void)
{
    pthread_mutex_lock(&lock);
    bool on = stats.refuse_until > 0 && mono_ms() < stats.refuse_until;
    if (on)
        stats.refused_all++;
    pthread_mutex_unlock(&lock);
    return on;
}

/* One call at the pool of that size and latency: taken (201 after ms) while fewer than size are
 * in progress, else refused at once. */
static bool pool_call(int fd, int size, int ms)
{
    pthread_mutex_lock(&lock);
    Pool *p = NULL;
    for (size_t i = 0; i < stats.n_pools && !p; i++)
        if (stats.pools[i].size == size && stats.pools[i].ms == ms)
            p = &stats.pools[i];
    if (!p && stats.n_pools < MAX_POOLS) {
        p = &stats.pools[stats.n_pools++];
        *p = (Pool){.size = size, .ms = ms};
    }
    bool taken = p && p->busy < (unsigned)size;
    if (taken) {
        p->accepted++;
        if (++p->busy > p->peak)
            p->peak = p->busy;
    } else if (p)
        p->refused++;
    pthread_mutex_unlock(&lock);
    if (!taken)
        return respond(fd, 503, "{\"error\":\"pool busy\"}");
    usleep((useconds_t)ms * 1000);
    pthread_mutex_lock(&lock);
    p->busy--;
    pthread_mutex_unlock(&lock);
    return respond(fd, 201, "{\"queued\":true}");
}

/* 503 with Retry-After: seconds. */
static bool respond_retry_after(int fd, int seconds)
{
    char buf[256];
    int k = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 503 Busy\r\nRetry-After: %d\r\n"
                     "Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
                     seconds);
    return write_all(fd, buf, (size_t)k);
}

/* The prefixes that count attempts or share a pool; *ret_handled false when none matched. */
static bool answer_counted(int fd, const char *place, unsigned n, bool *ret_handled)
{
    int v, k;
    char c;
    *ret_handled = true;
    if (sscanf(place, "fail%dx%3d%c", &k, &v, &c) == 3 && c == '-')
        return (int)n <= k ? respond(fd, v, "{\"error\":\"failing as asked\"}")
                           : respond(fd, 201, "{\"queued\":true}");
    if (sscanf(place, "later%ds%dx%c", &v, &k, &c) == 3 && c == '-')
        return (int)n <= k ? respond_retry_after(fd, v) : respond(fd, 201, "{\"queued\":true}");
    if (sscanf(place, "pool%dx%d%c", &k, &v, &c) == 3 && c == '-' && k > 0 && v >= 0)
        return pool_call(fd, k, v);
    *ret_handled = false;
    return true;
}

/* Answers a POST /enqueue by its placeId's prefix (the table at the top). */
static bool answer(int fd, const char *place, unsigned n)
{
    int v;
    char c;
    bool handled;
    bool r = answer_counted(fd, place, n, &handled);
    if (handled)
        return r;
    if (sscanf(place, "status%3d%c", &v, &c) == 2 && c == '-')
        return respond(fd, v, "{\"error\":\"as asked\"}");
    if (sscanf(place, "fail%dx%c", &v, &c) == 2 && c == '-')
        return (int)n <= v ? respond(fd, 500, "{\"error\":\"failing as asked\"}")
                           : respond(fd, 201, "{\"queued\":true}");
    if (sscanf(place, "slow%d%c", &v, &c) == 2 && c == '-') {
        usleep((useconds_t)v * 1000);
        return respond(fd, 201, "{\"queued\":true}");
    }
    if (strncmp(place, "hang-", 5) == 0) {
        char sink[256];
        while (read(fd, sink, sizeof(sink)) > 0)
            ;
        return false;
    }
    if (strncmp(place, "close-", 6) == 0)
        return false;
    if (strncmp(place, "garbage-", 8) == 0) {
        write_all(fd, "NOT HTTP AT ALL\r\n\r\n", 19);
        return false;
    }
    if (strncmp(place, "truncated-", 10) == 0) {
        static const char r[] = "HTTP/1.1 201 Created\r\nContent-Length: 100\r\n\r\n{\"queu";
        write_all(fd, r, sizeof(r) - 1);
        return false;
    }
    if (strncmp(place, "reset-", 6) == 0) {
        struct linger l = {.l_onoff = 1, .l_linger = 0};
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        return false;
    }
    return answer_more(fd, place, n);
}

/* GET requests: the counts and controls; *ret_handled false for another path. */
static bool handle_get(int fd, const char *path, bool *ret_handled)
{
    *ret_handled = true;
    if (strncmp(path, "/count?placeId=", 15) == 0) {
        char b[64];
        snprintf(b, sizeof(b), "{\"count\":%u}", count_bump(path + 15, NULL, NULL));
        return respond(fd, 200, b);
    }
    if (strncmp(path, "/requests?placeId=", 18) == 0)
        return respond_requests(fd, path + 18);
    if (strncmp(path, "/traces?placeId=", 16) == 0)
        return respond_traces(fd, path + 16);
    if (strncmp(path, "/prefix?p=", 10) == 0)
        return respond_prefix(fd, path + 10);
    if (strcmp(path, "/stats") == 0)
        return respond_stats(fd);
    if (strncmp(path, "/refuse?ms=", 11) == 0)
        return set_refuse(fd, path + 11);
    if (strcmp(path, "/health") == 0)
        return respond(fd, 200, "{\"status\":\"ok\"}");
    if (strcmp(path, "/order") == 0)
        return respond_order(fd);
    *ret_handled = false;
    return true;
}

/* Returns false when the connection must end. */
static bool handle(int fd, const char *head, const char *body, size_t body_len)
{
    char method[16] = "", path[2048] = "";
    sscanf(head, "%15s %2047s", method, path);

    bool handled = false;
    if (strcmp(method, "GET") == 0) {
        bool r = handle_get(fd, path, &handled);
        if (handled)
            return r;
    }
    if (strcmp(method, "POST") != 0 || strcmp(path, "/enqueue") != 0)
        return respond(fd, 404, "{\"error\":\"not found\"}");

    json_object *o = json_tokener_parse(body_len ? body : "");
    json_object *p = NULL, *j = NULL;
    char ct[128] = "", key[1200] = "", rid[160] = "";
    const char *problem = NULL;
    if (!o || !json_object_object_get_ex(o, "placeId", &p) ||
        !json_object_object_get_ex(o, "jobId", &j))
        problem = "body must have placeId and jobId";
    else if (!header(head, "Content-Type", ct, sizeof(ct)) ||
             strcasecmp(ct, "application/json") != 0)
        problem = "Content-Type must be application/json";
    else if (!header(head, "Idempotency-Key", key, sizeof(key)) ||
             strcmp(key, json_object_get_string(j)) != 0)
        problem = "Idempotency-Key must equal jobId";
    if (problem) {
        char b[256];
        snprintf(b, sizeof(b), "{\"error\":\"%s\"}", problem);
        json_object_put(o);
        return respond(fd, 422, b);
    }

    char place[1100];
    snprintf(place, sizeof(place), "%s", json_object_get_string(p));
    json_object_put(o);
    header(head, "X-Request-Id", rid, sizeof(rid));
    char tp[128] = "-", ts[600] = "-", trace[740];
    header(head, "traceparent", tp, sizeof(tp));
    header(head, "tracestate", ts, sizeof(ts));
    snprintf(trace, sizeof(trace), "%s\t%s", tp, ts);
    unsigned n = count_bump(place, rid, trace);
    post_busy(true);
    bool r = refusing_all() ? respond(fd, 503, "{\"error\":\"refusing every job\"}")
                            : answer(fd, place, n);
    post_busy(false);
    return r;
}

static void *serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *buf = malloc(MAX_REQUEST + 1);
    size_t have = 0;
    while (buf) {
        char *end;
        buf[have] = '\0';
        while (!(end = strstr(buf, "\r\n\r\n"))) {
            if (have >= MAX_REQUEST)
                goto out;
            ssize_t k = read(fd, buf + have, MAX_REQUEST - have);
            if (k <= 0)
                goto out;
            have += (size_t)k;
            buf[have] = '\0';
        }
        size_t head_len = (size_t)(end - buf) + 4;
        char cl[32] = "0";
        *end = '\0';
        header(buf, "Content-Length", cl, sizeof(cl));
        size_t body_len = strtoul(cl, NULL, 10);
        if (body_len > MAX_REQUEST - head_len)
            goto out;
        while (have < head_len + body_len) {
            ssize_t k = read(fd, buf + have, MAX_REQUEST - have);
            if (k <= 0)
                goto out;
            have += (size_t)k;
        }
        char body[MAX_REQUEST / 4 + 1];
        size_t bl = body_len < sizeof(body) - 1 ? body_len : sizeof(body) - 1;
        memcpy(body, buf + head_len, bl);
        body[bl] = '\0';
        if (!handle(fd, buf, body, bl))
            goto out;
        memmove(buf, buf + head_len + body_len, have - head_len - body_len);
        have -= head_len + body_len;
    }
out:
    free(buf);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    int port = argc > 1 ? atoi(argv[1]) : 3000;
    const char *addr = argc > 2 ? argv[2] : "127.0.0.1";
    signal(SIGPIPE, SIG_IGN);

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on));
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1 ||
        bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 1024) < 0) {
        fprintf(stderr, "argus-worker-standin: cannot listen on %s:%d: %m\n", addr, port);
        return 1;
    }
    socklen_t sl = sizeof(sa);
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    printf("PORT=%u\n", ntohs(sa.sin_port));
    fflush(stdout);

    for (;;) {
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED || errno == EMFILE)
                continue;
            return 1;
        }
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on));
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 256 * 1024);
        if (pthread_create(&t, &attr, serve, (void *)(intptr_t)c) != 0)
            close(c);
        pthread_attr_destroy(&attr);
    }
}
