/* SPDX-License-Identifier: MIT */
#include "spool-cli.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "json-writer.h"
#include "macro.h"
#include "spool-store.h"
#include "timefmt.h"
#include "utf8.h"

#define EXIT_USAGE 64 /* EX_USAGE */
#define DEFAULT_SPOOL_DIR "/var/lib/argus-orchestrator"
#define PROGRAM "argus-orchestrator spool"
#define USAGE                                                                                      \
    "Usage: " PROGRAM " status | list [--dead] | show ID | delete ID... |\n"                       \
    "         requeue ID... | requeue-dead | flush | hold ID... | release ID...\n"                 \
    "         [--json] [--spool-dir DIR]\n"

typedef enum Verb {
    VERB_STATUS,
    VERB_LIST,
    VERB_SHOW,
    VERB_DELETE,
    VERB_REQUEUE,
    VERB_REQUEUE_DEAD,
    VERB_FLUSH,
    VERB_HOLD,
    VERB_RELEASE,
    VERB_MAX,
} Verb;

typedef enum Ids { IDS_NONE, IDS_ONE, IDS_SOME } Ids;

static const struct {
    const char *name;
    Ids ids;
    bool json;
} verbs[VERB_MAX] = {
    [VERB_STATUS] = {"status", IDS_NONE, true},
    [VERB_LIST] = {"list", IDS_NONE, true},
    [VERB_SHOW] = {"show", IDS_ONE, true},
    [VERB_DELETE] = {"delete", IDS_SOME, false},
    [VERB_REQUEUE] = {"requeue", IDS_SOME, false},
    [VERB_REQUEUE_DEAD] = {"requeue-dead", IDS_NONE, false},
    [VERB_FLUSH] = {"flush", IDS_NONE, false},
    [VERB_HOLD] = {"hold", IDS_SOME, false},
    [VERB_RELEASE] = {"release", IDS_SOME, false},
};

/* The command line, and the spool it acts on. */
typedef struct Cli {
    Verb verb;
    bool dead, json;
    const char *dir;
    int64_t *ids;
    size_t n_ids;
    SpoolStore *store;
    uint64_t now_usec;
} Cli;

static void help(void)
{
    printf(USAGE
           "\n"
           "The service's spool: the jobs answered 202 \"queued\" that the worker has not taken\n"
           "yet. Usable while the service runs, which sees a change at once.\n"
           "\n"
           "Commands:\n"
           "  status          jobs waiting, held, dead letters, the oldest job, the next\n"
           "                  attempt, the file\n"
           "  list            the waiting jobs (held ones too), oldest first, a line each:\n"
           "                  id, state, created, placeId, jobId, attempts, last attempt,\n"
           "                  next attempt, last error, tab-separated\n"
           "  list --dead     the dead letters (refused for good, or expired)\n"
           "  show ID         every field of one job\n"
           "  delete ID...    remove jobs, whatever their state\n"
           "  requeue ID...   a dead letter or a waiting job waits again in its place, due\n"
           "                  now, not held, its attempts and its lifetime from zero\n"
           "  requeue-dead    requeue every dead letter (of several of one job, the oldest)\n"
           "  flush           every waiting job that is not held is due now\n"
           "  hold ID...      never try these jobs until they are released\n"
           "  release ID...   try them again, at the time they were due\n"
           "\n"
           "IDs are as list prints them. A command on several IDs acts in one transaction:\n"
           "an ID that does not exist (for hold and release, also a dead letter) is named on\n"
           "stderr and the exit status is 1, and the others are acted on all the same.\n"
           "Text shows a backslash as \\\\, a tab, line feed or carriage return as \\t, \\n,\n"
           "\\r, and other control characters, DEL and bytes that are not UTF-8 as \\xNN.\n"
           "\n"
           "Options:\n"
           "  --json          status, list and show as one JSON document\n"
           "  --spool-dir DIR the spool's directory (default: $SPOOL_DIR, else\n"
           "                  $STATE_DIRECTORY, else " DEFAULT_SPOOL_DIR ")\n"
           "  -h, --help      show this help\n"
           "\n"
           "Exit status: 0; 1 on an error, or an ID that does not exist; 64 on a wrong\n"
           "command line.\n");
}

static int usage(const char *why)
{
    fprintf(stderr, PROGRAM ": %s\n" USAGE, why);
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
    case -EPROTO:
        fprintf(stderr,
                PROGRAM ": the spool %s/%s is not of this release (%s): use the release that "
                        "wrote it\n",
                dir, SPOOL_FILE, why ? why : "a newer schema version");
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

/* Whether the UTF-8 character p (l bytes, valid) is one a terminal may obey or that reorders
 * what follows: a C1 control (U+0080 to U+009F), or a bidirectional control (U+061C, U+200E,
 * U+200F, U+202A to U+202E, U+2066 to U+2069), which can make a line read as another. */
static bool utf8_is_control(const unsigned char *p, size_t l)
{
    if (l == 2)
        return (p[0] == 0xc2 && p[1] < 0xa0) || (p[0] == 0xd8 && p[1] == 0x9c);
    if (l != 3 || p[0] != 0xe2)
        return false;
    return (p[1] == 0x80 && (p[2] == 0x8e || p[2] == 0x8f || (p[2] >= 0xaa && p[2] <= 0xae))) ||
           (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xa9);
}

/* s as text safe on a terminal, and unambiguous: printable ASCII and well-formed UTF-8 as they
 * are (but the controls of utf8_is_control); a backslash doubled; \t, \n, \r; any other
 * control byte, DEL, and each byte of those controls and of what is not UTF-8 as \xNN. */
static void put_text(FILE *out, const char *s)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + strlen(s);
    while (p < end) {
        if (*p == '\\' || *p == '\t' || *p == '\n' || *p == '\r') {
            fputc('\\', out);
            fputc(*p == '\t' ? 't' : *p == '\n' ? 'n' : *p == '\r' ? 'r' : '\\', out);
            p++;
        } else if (*p >= 0x20 && *p < 0x7f) {
            fputc(*p++, out);
        } else if (*p < 0x80) {
            fprintf(out, "\\x%02x", *p++);
        } else {
            bool valid;
            size_t l = utf8_next(p, (size_t)(end - p), &valid);
            if (valid && !utf8_is_control(p, l))
                fwrite(p, 1, l, out);
            else
                for (size_t i = 0; i < l; i++)
                    fprintf(out, "\\x%02x", p[i]);
            p += l;
        }
    }
}

static void format_time(uint64_t usec, char buf[static RFC3339_MAX])
{
    if (format_rfc3339((time_t)(usec / 1000000), buf) < 0)
        snprintf(buf, RFC3339_MAX, "-");
}

/* " (4m30s ago)" or " (in 4m30s)": usec against now, to the second. */
static void format_age(uint64_t usec, uint64_t now, char buf[static GO_DURATION_MAX + 8])
{
    char d[GO_DURATION_MAX];
    uint64_t sec = (usec > now ? usec - now : now - usec) / 1000000;
    format_go_duration(sec * 1000000000ULL, d);
    snprintf(buf, GO_DURATION_MAX + 8, usec > now ? " (in %s)" : " (%s ago)", d);
}

/* A member of JSON's own (null, true, false) after at least one other one. */
static void json_raw_member(JsonWriter *w, const char *key, const char *raw)
{
    char m[64];
    int n = snprintf(m, sizeof(m), ",\"%s\":%s", key, raw);
    json_writer_raw(w, m, (size_t)n);
}

/* An RFC 3339 member, or null when usec is 0. */
static void json_time(JsonWriter *w, const char *key, uint64_t usec)
{
    char t[RFC3339_MAX];
    if (usec == 0) {
        json_raw_member(w, key, "null");
        return;
    }
    format_time(usec, t);
    json_writer_string(w, key, t);
}

/* The writer's text to stdout, the writer emptied. */
static int json_put(JsonWriter *w)
{
    size_t len;
    _cleanup_free_ char *text = json_writer_take(w, &len);
    if (!text)
        return -ENOMEM;
    fwrite(text, 1, len, stdout);
    return 0;
}

/* Whether a waiting job not held is due at now: in status, the next attempt is then "now". */
static int any_due(Cli *c, bool *ret)
{
    SpoolJob j;
    size_t n = 0;
    int r = spool_store_fetch_due(c->store, c->now_usec, 0, &j, 1, &n);
    *ret = n > 0;
    return r;
}

static void status_json(Cli *c, const SpoolStats *st, bool due)
{
    JsonWriter w = {0};
    char file[4096];
    snprintf(file, sizeof(file), "%s/%s", c->dir, SPOOL_FILE);
    json_writer_begin(&w);
    json_writer_string(&w, "file", file);
    json_writer_int(&w, "jobs", (long long)st->jobs);
    json_writer_int(&w, "held", (long long)st->held);
    json_writer_int(&w, "deadLetters", (long long)st->dead);
    json_time(&w, "oldestJob", st->oldest_usec);
    json_writer_int(&w, "oldestJobAgeSeconds",
                    st->oldest_usec && c->now_usec > st->oldest_usec
                        ? (long long)((c->now_usec - st->oldest_usec) / 1000000)
                        : 0);
    json_raw_member(&w, "dueNow", due ? "true" : "false");
    json_time(&w, "nextDue", st->next_due_usec);
    json_writer_end(&w);
    json_writer_raw(&w, "\n", 1);
    if (json_put(&w) < 0)
        fprintf(stderr, PROGRAM ": out of memory\n");
}

static int status(Cli *c)
{
    SpoolStats st;
    bool due = false;
    int r = spool_store_stats(c->store, &st);
    if (r == 0)
        r = any_due(c, &due);
    if (r < 0)
        return failed(c->store, "cannot read the spool", r);
    if (c->json) {
        status_json(c, &st, due);
        return EXIT_SUCCESS;
    }
    char oldest[RFC3339_MAX] = "-", age[GO_DURATION_MAX + 8] = "";
    char next[RFC3339_MAX] = "-", in[GO_DURATION_MAX + 8] = "";
    if (st.oldest_usec > 0) {
        format_time(st.oldest_usec, oldest);
        format_age(st.oldest_usec, c->now_usec, age);
    }
    if (due)
        snprintf(next, sizeof(next), "now");
    else if (st.next_due_usec > 0) {
        format_time(st.next_due_usec, next);
        format_age(st.next_due_usec, c->now_usec, in);
    }
    printf("File:         ");
    put_text(stdout, c->dir);
    printf("/%s\n"
           "Jobs waiting: %llu\n"
           "Held:         %llu\n"
           "Dead letters: %llu\n"
           "Oldest job:   %s%s\n"
           "Next attempt: %s%s\n",
           SPOOL_FILE, (unsigned long long)st.jobs, (unsigned long long)st.held,
           (unsigned long long)st.dead, oldest, age, next, in);
    return EXIT_SUCCESS;
}

static const char *state_name(const SpoolJob *j)
{
    return j->dead ? "dead" : j->held ? "held" : "waiting";
}

/* A job's next attempt as list and show print it: "now", its time, or "-" (held, dead). */
static const char *next_attempt(const Cli *c, const SpoolJob *j, char buf[static RFC3339_MAX])
{
    if (j->dead || j->held)
        return "-";
    if (j->due_usec <= c->now_usec)
        return "now";
    format_time(j->due_usec, buf);
    return buf;
}

static void job_json(const Cli *c, const SpoolJob *j)
{
    JsonWriter w = {0};
    json_writer_begin(&w);
    json_writer_int(&w, "id", (long long)j->id);
    json_writer_string(&w, "state", state_name(j));
    json_writer_string(&w, "placeId", j->place_id);
    json_writer_string(&w, "jobId", j->job_id);
    json_writer_string(&w, "requestId", j->request_id);
    json_time(&w, "created", j->created_usec);
    json_time(&w, "lifetimeFrom", j->since_usec);
    json_writer_int(&w, "attempts", (long long)j->attempts);
    json_time(&w, "lastAttempt", j->last_attempt_usec);
    json_raw_member(&w, "dueNow",
                    !j->dead && !j->held && j->due_usec <= c->now_usec ? "true" : "false");
    json_time(&w, "nextAttempt", j->dead || j->due_usec <= c->now_usec ? 0 : j->due_usec);
    json_writer_string(&w, "lastError", j->last_error);
    /* null: spooled by an older release, a delivery starts a new trace */
    if (j->traceparent[0])
        json_writer_string(&w, "traceparent", j->traceparent);
    else
        json_raw_member(&w, "traceparent", "null");
    json_writer_string(&w, "tracestate", j->tracestate);
    json_writer_end(&w);
    if (json_put(&w) < 0)
        fprintf(stderr, PROGRAM ": out of memory\n");
}

static void job_line(const Cli *c, const SpoolJob *j)
{
    char created[RFC3339_MAX], last[RFC3339_MAX] = "-", next[RFC3339_MAX];
    format_time(j->created_usec, created);
    if (j->last_attempt_usec)
        format_time(j->last_attempt_usec, last);
    printf("%lld\t%s\t%s\t", (long long)j->id, state_name(j), created);
    put_text(stdout, j->place_id);
    putchar('\t');
    put_text(stdout, j->job_id);
    printf("\t%u\t%s\t%s\t", j->attempts, last, next_attempt(c, j, next));
    put_text(stdout, j->last_error);
    putchar('\n');
}

static int list(Cli *c)
{
    enum { PAGE = 64 };
    _cleanup_free_ SpoolJob *page = calloc(PAGE, sizeof(SpoolJob));
    if (!page)
        return failed(c->store, "cannot list", -ENOMEM);
    if (c->json)
        printf("[");
    else
        printf("id\tstate\tcreated\tplaceId\tjobId\tattempts\tlastAttempt\tnextAttempt\t"
               "lastError\n");
    int64_t after = 0;
    size_t n, total = 0;
    int r;
    do {
        r = spool_store_fetch(c->store, c->dead, after, page, PAGE, &n);
        for (size_t i = 0; r == 0 && i < n; i++, total++) {
            if (c->json) {
                printf(total ? ",\n" : "\n");
                job_json(c, &page[i]);
            } else
                job_line(c, &page[i]);
            after = page[i].id;
        }
    } while (r == 0 && n == PAGE);
    if (r < 0)
        return failed(c->store, "cannot list", r);
    if (c->json)
        printf(total ? "\n]\n" : "]\n");
    return EXIT_SUCCESS;
}

static void show_field(const char *label, const char *value)
{
    printf("%-15s", label);
    put_text(stdout, value[0] ? value : "-");
    putchar('\n');
}

/* A time and how long ago (or in how long), or what 0 means. */
static void show_time(const Cli *c, const char *label, uint64_t usec, const char *zero)
{
    char t[RFC3339_MAX], age[GO_DURATION_MAX + 8];
    if (!usec) {
        printf("%-15s%s\n", label, zero);
        return;
    }
    format_time(usec, t);
    format_age(usec, c->now_usec, age);
    printf("%-15s%s%s\n", label, t, age);
}

static int show(Cli *c)
{
    SpoolJob j;
    int r = spool_store_get(c->store, c->ids[0], &j);
    if (r == -ENOENT) {
        fprintf(stderr, PROGRAM ": no job %" PRId64 "\n", c->ids[0]);
        return EXIT_FAILURE;
    }
    if (r < 0)
        return failed(c->store, "cannot read the spool", r);
    if (c->json) {
        job_json(c, &j);
        putchar('\n');
        return EXIT_SUCCESS;
    }
    printf("%-15s%lld\n", "ID:", (long long)j.id);
    printf("%-15s%s\n", "State:",
           j.dead   ? "dead letter"
           : j.held ? "held (not tried until released)"
                    : "waiting");
    show_field("placeId:", j.place_id);
    show_field("jobId:", j.job_id);
    show_field("requestId:", j.request_id);
    show_time(c, "Created:", j.created_usec, "-");
    show_time(c, "Lifetime from:", j.since_usec, "-");
    printf("%-15s%u\n", "Attempts:", j.attempts);
    show_time(c, "Last attempt:", j.last_attempt_usec, "never");
    if (j.dead || j.held || j.due_usec <= c->now_usec) {
        char next[RFC3339_MAX];
        printf("%-15s%s\n", "Next attempt:", next_attempt(c, &j, next));
    } else
        show_time(c, "Next attempt:", j.due_usec, "now");
    show_field("Last error:", j.last_error);
    show_field("traceparent:", j.traceparent[0] ? j.traceparent : "- (a new trace at delivery)");
    show_field("tracestate:", j.tracestate);
    return EXIT_SUCCESS;
}

/* What one ID's verb did: 1 done, 2 done otherwise (a requeued dead letter dropped), 0 no such
 * job (said on stderr), or a negative errno that undoes the whole transaction. */
static int act_on(Cli *c, int64_t id)
{
    bool dropped = false;
    int r;
    switch (c->verb) {
    case VERB_DELETE:
        r = spool_store_delete(c->store, id);
        break;
    case VERB_REQUEUE:
        r = spool_store_requeue(c->store, id, &dropped);
        break;
    default:
        r = spool_store_hold(c->store, id, c->verb == VERB_HOLD);
    }
    if (r != -ENOENT)
        return r < 0 ? r : dropped ? 2 : 1;
    SpoolJob j;
    if ((c->verb == VERB_HOLD || c->verb == VERB_RELEASE) &&
        spool_store_get(c->store, id, &j) == 0 && j.dead)
        fprintf(stderr, PROGRAM ": job %" PRId64 " is a dead letter, not a waiting job\n", id);
    else
        fprintf(stderr, PROGRAM ": no job %" PRId64 "\n", id);
    return 0;
}

static void say_done(const Cli *c, int64_t id, int done)
{
    static const char *const what[VERB_MAX] = {
        [VERB_DELETE] = "deleted",
        [VERB_REQUEUE] = "waits again, due now",
        [VERB_HOLD] = "held",
        [VERB_RELEASE] = "released",
    };
    if (done == 2)
        printf("%" PRId64 " deleted: its job waits already in another record\n", id);
    else if (done == 1)
        printf("%" PRId64 " %s\n", id, what[c->verb]);
}

typedef struct IdAt {
    int64_t id;
    size_t at;
} IdAt;

static int id_at_compare(const void *a, const void *b)
{
    const IdAt *x = a, *y = b;
    return x->id != y->id ? (x->id < y->id ? -1 : 1) : (x->at < y->at ? -1 : x->at > y->at);
}

/* Marks in repeated[] every ID named before on the command line (acted on, and said, once). */
static int mark_repeated(const Cli *c, bool *repeated)
{
    _cleanup_free_ IdAt *v = calloc(c->n_ids, sizeof(IdAt));
    if (!v)
        return -ENOMEM;
    for (size_t i = 0; i < c->n_ids; i++)
        v[i] = (IdAt){c->ids[i], i};
    qsort(v, c->n_ids, sizeof(IdAt), id_at_compare);
    for (size_t i = 1; i < c->n_ids; i++)
        repeated[v[i].at] = v[i].id == v[i - 1].id;
    return 0;
}

/* delete, requeue, hold and release: every ID in one transaction, said once it is committed;
 * an ID named twice is acted on once. */
static int act_on_ids(Cli *c)
{
    _cleanup_free_ int *done = calloc(c->n_ids, sizeof(int));
    _cleanup_free_ bool *repeated = calloc(c->n_ids, sizeof(bool));
    if (!done || !repeated || mark_repeated(c, repeated) < 0)
        return failed(c->store, "cannot change the spool", -ENOMEM);
    int r = spool_store_begin(c->store);
    for (size_t i = 0; r == 0 && i < c->n_ids; i++) {
        if (repeated[i]) {
            done[i] = 3; /* said with its first */
            continue;
        }
        int k = act_on(c, c->ids[i]);
        if (k < 0)
            r = k;
        else
            done[i] = k;
    }
    if (r == 0)
        r = spool_store_commit(c->store);
    else
        spool_store_rollback(c->store);
    if (r < 0)
        return failed(c->store, "cannot change the spool", r);
    bool missing = false;
    for (size_t i = 0; i < c->n_ids; i++) {
        say_done(c, c->ids[i], done[i]);
        missing = missing || done[i] == 0;
    }
    return missing ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* requeue-dead and flush: one transaction each. */
static int act_on_all(Cli *c)
{
    uint64_t n = 0;
    int r = spool_store_begin(c->store);
    if (r == 0) {
        r = c->verb == VERB_FLUSH ? spool_store_flush(c->store, &n)
                                  : spool_store_requeue_dead(c->store, &n);
        if (r == 0)
            r = spool_store_commit(c->store);
        else
            spool_store_rollback(c->store);
    }
    if (r < 0)
        return failed(c->store,
                      c->verb == VERB_FLUSH ? "cannot flush" : "cannot requeue the dead letters",
                      r);
    if (c->verb == VERB_FLUSH)
        printf("%llu job%s that waited for %s next attempt %s due now\n", (unsigned long long)n,
               n == 1 ? "" : "s", n == 1 ? "its" : "their", n == 1 ? "is" : "are");
    else
        printf("%llu dead letter%s wait%s again\n", (unsigned long long)n, n == 1 ? "" : "s",
               n == 1 ? "s" : "");
    return EXIT_SUCCESS;
}

/* An ID as list prints it: decimal digits, 1 to INT64_MAX. */
static bool parse_id(const char *s, int64_t *ret)
{
    if (!s[0] || strspn(s, "0123456789") != strlen(s))
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || v == 0 || v > INT64_MAX)
        return false;
    *ret = (int64_t)v;
    return true;
}

/* The verb and its IDs, after the options: 0, or the exit status of a usage error. */
static int parse_verb(Cli *c, int argc, char **argv)
{
    if (optind >= argc)
        return usage("which command?");
    const char *name = argv[optind++];
    for (c->verb = 0; c->verb < VERB_MAX && strcmp(verbs[c->verb].name, name) != 0; c->verb++)
        ;
    if (c->verb == VERB_MAX) {
        fprintf(stderr, PROGRAM ": unknown command '%s'\n" USAGE, name);
        return EXIT_USAGE;
    }
    c->n_ids = (size_t)(argc - optind);
    Ids want = verbs[c->verb].ids;
    if (want == IDS_NONE && c->n_ids > 0)
        return usage("one command at a time, and this one takes no ID");
    if (want != IDS_NONE && c->n_ids == 0)
        return usage("which job? An ID, as list prints it");
    if (want == IDS_ONE && c->n_ids > 1)
        return usage("show takes one ID");
    if (c->dead && c->verb != VERB_LIST)
        return usage("--dead goes with list");
    if (c->json && !verbs[c->verb].json)
        return usage("--json goes with status, list and show");
    c->ids = calloc(c->n_ids ? c->n_ids : 1, sizeof(int64_t));
    if (!c->ids)
        return EXIT_FAILURE;
    for (size_t i = 0; i < c->n_ids; i++)
        if (!parse_id(argv[optind + i], &c->ids[i])) {
            fprintf(stderr, PROGRAM ": '%s' is not a job ID (a number, as list prints it)\n",
                    argv[optind + i]);
            return usage("IDs are numbers");
        }
    return 0;
}

/* The options and the verb: 0, or the exit status to end with (help, a usage error). */
static int parse_argv(Cli *c, int argc, char **argv)
{
    enum { ARG_SPOOL_DIR = 0x100, ARG_DEAD, ARG_JSON };
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {"spool-dir", required_argument, NULL, ARG_SPOOL_DIR},
        {"dead", no_argument, NULL, ARG_DEAD},
        {"json", no_argument, NULL, ARG_JSON},
        {},
    };
    int o;
    argv[0] = (char *)PROGRAM; /* getopt's messages begin with it */
    optind = 0;
    while ((o = getopt_long(argc, argv, "h", options, NULL)) >= 0)
        switch (o) {
        case 'h':
            help();
            return -1;
        case ARG_SPOOL_DIR:
            if (!optarg[0])
                return usage("--spool-dir wants a directory");
            c->dir = optarg;
            break;
        case ARG_DEAD:
            c->dead = true;
            break;
        case ARG_JSON:
            c->json = true;
            break;
        default:
            return EXIT_USAGE; /* getopt said why */
        }
    return parse_verb(c, argc, argv);
}

/* --spool-dir, else $SPOOL_DIR, else $STATE_DIRECTORY, else the package's; NULL when
 * SPOOL_DIR is set and empty (no spool: said on stderr). */
static const char *spool_dir(const char *given)
{
    if (given)
        return given;
    const char *e = getenv("SPOOL_DIR");
    if (e && !e[0]) {
        fprintf(stderr, PROGRAM ": SPOOL_DIR is set and empty: no spool (--spool-dir DIR "
                                "names one)\n");
        return NULL;
    }
    const char *dir = e ? e : getenv("STATE_DIRECTORY");
    return dir && dir[0] ? dir : DEFAULT_SPOOL_DIR;
}

static int run(Cli *c)
{
    switch (c->verb) {
    case VERB_STATUS:
        return status(c);
    case VERB_LIST:
        return list(c);
    case VERB_SHOW:
        return show(c);
    case VERB_REQUEUE_DEAD:
    case VERB_FLUSH:
        return act_on_all(c);
    default:
        return act_on_ids(c);
    }
}

/* What parse_argv allocated (_cleanup_). */
static void cli_done(Cli *c)
{
    free(c->ids);
}

int spool_cli_main(int argc, char **argv)
{
    _cleanup_(cli_done) Cli c = {0};
    int r = parse_argv(&c, argc, argv);
    if (r != 0)
        return r < 0 ? EXIT_SUCCESS : r;
    c.dir = spool_dir(c.dir);
    if (!c.dir)
        return EXIT_FAILURE;
    _cleanup_free_ char *why = NULL;
    r = spool_store_open(c.dir, 0, &c.store, NULL, &why);
    if (r < 0)
        return open_error(c.dir, r, why);
    c.now_usec = clock_usec(CLOCK_REALTIME);
    r = run(&c);
    spool_store_close(c.store);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, PROGRAM ": cannot write: %s\n", strerror(errno));
        return EXIT_FAILURE;
    }
    return r;
}
