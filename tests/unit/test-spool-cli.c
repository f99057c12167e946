/* SPDX-License-Identifier: MIT */
/* `argus-orchestrator spool …` (src/spool/spool-cli.c): the built binary ($ARGUS_BINARY) run
 * against a temporary spool made with spool-store, its output and exit status. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <setjmp.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include <json-c/json.h>
#include <sqlite3.h>

#include "clock.h"
#include "spool-schema.h"
#include "spool-store.h"

extern char **environ;

typedef struct Fixture {
    char dir[64];
    char out[128], err[128]; /* the last run's stdout and stderr */
} Fixture;

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    Fixture *f = calloc(1, sizeof(Fixture));
    assert_non_null(f);
    strcpy(f->dir, "/tmp/argus-spool-cli-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    Fixture *f = *state;
    (void)nftw(f->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

static void slurp(const char *path, char *buf, size_t size)
{
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(buf, 1, size - 1, fp);
    buf[n] = '\0';
    fclose(fp);
}

/* Runs the binary with "spool" and the NULL-terminated arguments, with SPOOL_DIR set to
 * spool_dir (NULL: unset) and STATE_DIRECTORY unset; its exit status, its stdout and stderr into
 * out and err. */
static int run(Fixture *f, const char *spool_dir, char *out, char *err, size_t size, ...)
{
    const char *bin = getenv("ARGUS_BINARY");
    if (!bin)
        fail_msg("ARGUS_BINARY is not set (meson test sets it)");
    char *argv[16] = {(char *)bin, (char *)"spool"};
    int argc = 2;
    va_list ap;
    va_start(ap, size);
    for (char *a; (a = va_arg(ap, char *)) && argc < 15;)
        argv[argc++] = a;
    va_end(ap);

    char **envp = calloc(1024, sizeof(char *));
    assert_non_null(envp);
    size_t n = 0;
    for (char **e = environ; *e && n < 1020; e++)
        if (strncmp(*e, "SPOOL_DIR=", 10) != 0 && strncmp(*e, "STATE_DIRECTORY=", 16) != 0)
            envp[n++] = *e;
    char spool_env[256];
    if (spool_dir) {
        snprintf(spool_env, sizeof(spool_env), "SPOOL_DIR=%s", spool_dir);
        envp[n++] = spool_env;
    }

    snprintf(f->out, sizeof(f->out), "%s.out", f->dir);
    snprintf(f->err, sizeof(f->err), "%s.err", f->dir);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, f->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    posix_spawn_file_actions_addopen(&fa, 2, f->err, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, bin, &fa, NULL, argv, envp), 0);
    posix_spawn_file_actions_destroy(&fa);
    free(envp);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    slurp(f->out, out, size);
    slurp(f->err, err, size);
    unlink(f->out);
    unlink(f->err);
    return WEXITSTATUS(status);
}

static SpoolJob job(const char *place, uint64_t created)
{
    SpoolJob j = {.created_usec = created};
    snprintf(j.place_id, sizeof(j.place_id), "%s", place);
    job_id_format(j.place_id, j.job_id);
    snprintf(j.last_error, sizeof(j.last_error), "worker unreachable\tat\nonce");
    return j;
}

/* a and b wait, c is a dead letter; created 2001-09-09T01:46:40Z and a second later each */
static SpoolStore *make_spool(const char *dir)
{
    SpoolStore *s;
    assert_int_equal(spool_store_open(dir, SPOOL_OPEN_CREATE, &s, NULL, NULL), 0);
    const char *places[] = {"a", "b", "c"};
    for (int i = 0; i < 3; i++) {
        SpoolJob j = job(places[i], 1000000000000000ULL + 1000000ULL * (uint64_t)i);
        assert_int_equal(spool_store_add(s, &j, 0, NULL), 0);
    }
    assert_int_equal(spool_store_mark_dead(s, 3, "worker answered 400"), 0);
    return s;
}

#define LIST_HEADER                                                                                \
    "id\tstate\tcreated\tplaceId\tjobId\tattempts\tlastAttempt\tnextAttempt\tlastError\n"

/* out as one JSON document (fails the test if it is not). */
static json_object *parse_json(const char *out)
{
    enum json_tokener_error e;
    json_object *o = json_tokener_parse_verbose(out, &e);
    if (!o)
        fail_msg("not JSON (%s): %s", json_tokener_error_desc(e), out);
    return o;
}

static json_object *json_get(json_object *o, const char *key)
{
    json_object *v = NULL;
    if (!json_object_object_get_ex(o, key, &v))
        fail_msg("no member %s", key);
    return v;
}

static json_type json_type_of(json_object *o, const char *key)
{
    return json_object_get_type(json_get(o, key));
}

static const char *json_str(json_object *o, const char *key)
{
    json_object *v = json_get(o, key);
    assert_int_equal(json_object_get_type(v), json_type_string);
    return json_object_get_string(v);
}

/* dir/SPOOL_FILE from tests/unit/spool-v1.sql, a spool of release 0.1.0, at user_version
 * version. */
static void make_v1(const char *dir, int version)
{
    char sql[65536], path[256], pragma[64];
    FILE *fp = fopen(getenv("SPOOL_V1_SQL"), "r");
    assert_non_null(fp);
    sql[fread(sql, 1, sizeof(sql) - 1, fp)] = '\0';
    fclose(fp);
    snprintf(path, sizeof(path), "%s/%s", dir, SPOOL_FILE);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA journal_mode = WAL", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", version);
    assert_int_equal(sqlite3_exec(db, pragma, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_close(db), SQLITE_OK);
}

static int64_t user_version(const char *dir)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, SPOOL_FILE);
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int64_t v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

#define BUF 8192

static void test_usage(void **state)
{
    Fixture *f = *state;
    char out[BUF], err[BUF];
    assert_int_equal(run(f, f->dir, out, err, BUF, NULL), 64);
    assert_non_null(strstr(err, "Usage: argus-orchestrator spool"));
    assert_int_equal(run(f, f->dir, out, err, BUF, "frobnicate", NULL), 64);
    assert_non_null(strstr(err, "unknown command 'frobnicate'"));
    assert_int_equal(run(f, f->dir, out, err, BUF, "status", "--dead", NULL), 64);
    assert_int_equal(run(f, f->dir, out, err, BUF, "status", "--bogus", NULL), 64);
    assert_int_equal(run(f, f->dir, out, err, BUF, "status", "list", NULL), 64);
    assert_int_equal(run(f, f->dir, out, err, BUF, "list", "--spool-dir", NULL), 64);
    assert_int_equal(run(f, f->dir, out, err, BUF, "--help", NULL), 0);
    assert_non_null(strstr(out, "requeue-dead"));
    assert_string_equal(err, "");
}

static void test_no_spool(void **state)
{
    Fixture *f = *state;
    char out[BUF], err[BUF], dir[128];
    assert_int_equal(run(f, NULL, out, err, BUF, "status", "--spool-dir", f->dir, NULL), 1);
    assert_non_null(strstr(err, "no spool at"));
    assert_string_equal(out, "");
    snprintf(dir, sizeof(dir), "%s/absent", f->dir);
    assert_int_equal(run(f, dir, out, err, BUF, "list", NULL), 1);
    assert_non_null(strstr(err, "no spool at"));
    assert_int_equal(access(dir, F_OK), -1); /* never made */
    assert_int_equal(run(f, "", out, err, BUF, "status", NULL), 1);
    assert_non_null(strstr(err, "SPOOL_DIR is set and empty"));
}

static void test_status_list_requeue(void **state)
{
    Fixture *f = *state;
    char out[BUF], err[BUF];
    SpoolStore *s = make_spool(f->dir); /* kept open: as the service would */

    assert_int_equal(run(f, NULL, out, err, BUF, "status", "--spool-dir", f->dir, NULL), 0);
    assert_string_equal(err, "");
    assert_non_null(strstr(out, "/spool.sqlite\nJobs waiting: 2\nHeld:         0\n"
                                "Dead letters: 1\nOldest job:   2001-09-09T01:46:40Z ("));
    assert_non_null(strstr(out, " ago)\nNext attempt: now\n"));

    assert_int_equal(run(f, f->dir, out, err, BUF, "list", NULL), 0); /* SPOOL_DIR */
    assert_string_equal(out, LIST_HEADER
                        "1\twaiting\t2001-09-09T01:46:40Z\ta\treviews:a:start\t0\t-\tnow\t"
                        "worker unreachable\\tat\\nonce\n"
                        "2\twaiting\t2001-09-09T01:46:41Z\tb\treviews:b:start\t0\t-\tnow\t"
                        "worker unreachable\\tat\\nonce\n");
    assert_int_equal(run(f, f->dir, out, err, BUF, "list", "--dead", NULL), 0);
    const char *want = LIST_HEADER "3\tdead\t2001-09-09T01:46:42Z\tc\treviews:c:start\t1\t20";
    assert_int_equal(strncmp(out, want, strlen(want)), 0); /* its last attempt: now */
    assert_non_null(strstr(out, "Z\t-\tworker answered 400\n"));

    assert_int_equal(run(f, f->dir, out, err, BUF, "requeue-dead", NULL), 0);
    assert_string_equal(out, "1 dead letter waits again\n");
    SpoolStats st;
    assert_true(spool_store_changed_elsewhere(s));
    assert_int_equal(spool_store_stats(s, &st), 0);
    assert_int_equal(st.jobs, 3);
    assert_int_equal(st.dead, 0);
    assert_int_equal(run(f, f->dir, out, err, BUF, "list", "--dead", NULL), 0);
    assert_string_equal(out, LIST_HEADER);
    assert_int_equal(run(f, f->dir, out, err, BUF, "list", NULL), 0); /* c in its place */
    assert_non_null(strstr(out, "\n3\twaiting\t2001-09-09T01:46:42Z\tc\treviews:c:start\t0\t20"));
    assert_int_equal(run(f, f->dir, out, err, BUF, "requeue-dead", NULL), 0);
    assert_string_equal(out, "0 dead letters wait again\n");
    spool_store_close(s);

    /* an empty spool */
    SpoolJob all[4];
    size_t n;
    assert_int_equal(spool_store_open(f->dir, 0, &s, NULL, NULL), 0);
    assert_int_equal(spool_store_fetch(s, false, 0, all, 4, &n), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(spool_store_delete(s, all[i].id), 0);
    spool_store_close(s);
    assert_int_equal(run(f, f->dir, out, err, BUF, "status", NULL), 0);
    assert_non_null(strstr(out, "Jobs waiting: 0\nHeld:         0\nDead letters: 0\n"
                                "Oldest job:   -\nNext attempt: -\n"));
}

/* Odd bytes in any field never reach the terminal raw: controls, DEL, C1 and bidirectional
 * controls and what is not UTF-8 as \xNN, a backslash doubled; UTF-8 as it is. */
static void test_escaping(void **state)
{
    Fixture *f = *state;
    char out[BUF], err[BUF];
    SpoolStore *s;
    assert_int_equal(spool_store_open(f->dir, SPOOL_OPEN_CREATE, &s, NULL, NULL), 0);
    SpoolJob j = job("caf\xc3\xa9\x1b[2J\x7f", 1000000000000000ULL);
    snprintf(j.request_id, sizeof(j.request_id),
             "r\xc2\x9b"
             "1m\\\xff\xe2\x82");
    snprintf(j.last_error, sizeof(j.last_error),
             "a\tb\nc\rd\x01"
             "e\x80"
             "\xe2\x80\xae"
             "f\xe2\x81\xa6"
             "g\xd8\x9c");
    assert_int_equal(spool_store_add(s, &j, 0, NULL), 0);
    spool_store_close(s);

    assert_int_equal(run(f, f->dir, out, err, BUF, "list", NULL), 0);
    assert_non_null(
        strstr(out, "\tcaf\xc3\xa9\\x1b[2J\\x7f\treviews:caf\xc3\xa9\\x1b[2J\\x7f:start\t"));
    assert_non_null(
        strstr(out, "\ta\\tb\\nc\\rd\\x01e\\x80\\xe2\\x80\\xaef\\xe2\\x81\\xa6g\\xd8\\x9c\n"));
    assert_int_equal(run(f, f->dir, out, err, BUF, "show", "1", NULL), 0);
    assert_non_null(strstr(out, "\nplaceId:       caf\xc3\xa9\\x1b[2J\\x7f\n"));
    assert_non_null(strstr(out, "\nrequestId:     r\\xc2\\x9b1m\\\\\\xff\\xe2\\x82\n"));
    assert_non_null(strstr(out,
                           "\nLast error:    "
                           "a\\tb\\nc\\rd\\x01e\\x80\\xe2\\x80\\xaef\\xe2\\x81\\xa6g\\xd8\\x9c\n"));
    for (const unsigned char *p = (const unsigned char *)out; *p; p++)
        assert_true((*p >= 0x20 && *p != 0x7f && *p != 0xff && *p != 0x9b) || *p == '\n');
}

/* show: every field of one job, in text and in JSON; an ID that is not there. */
static void test_show(void **state)
{
    Fixture *f = *state;
    char out[BUF], err[BUF];
    SpoolStore *s = make_spool(f->dir);
    uint64_t now = clock_usec(CLOCK_REALTIME);
    assert_int_equal(spool_store_retry_later(s, 2, now + 3600 * 1000000ULL, "timeout"), 0);
    spool_store_close(s);

    assert_int_equal(run(f, f->dir, out, err, BUF, "show", "2", NULL), 0);
    assert_non_null(strstr(out, "ID:            2\nState:         waiting\n"
                                "placeId:       b\njobId:         reviews:b:start\n"
                                "requestId:     -\n"
                                "Created:       2001-09-09T01:46:41Z ("));
    assert_non_null(strstr(out, "\nLifetime from: 2001-09-09T01:46:41Z ("));
    assert_non_null(strstr(out, "\nAttempts:      1\nLast attempt:  20"));
    assert_non_null(strstr(out, "\nNext attempt:  20"));
    assert_non_null(strstr(out, "(in 59m5")); /* 3599 or 3600 s: "59m59s" or "1h0m0s" */
    assert_non_null(strstr(out, "\nLast error:    timeout\n"));

    assert_int_equal(run(f, f->dir, out, err, BUF, "show", "2", "--json", NULL), 0);
    json_object *o = parse_json(out);
    assert_int_equal(json_type_of(o, "id"), json_type_int);
    assert_string_equal(json_str(o, "state"), "waiting");
    assert_string_equal(json_str(o, "placeId"), "b");
    assert_string_equal(json_str(o, "jobId"), "reviews:b:start");
    assert_string_equal(json_str(o, "requestId"), "");
    assert_string_equal(json_str(o, "created"), "2001-09-09T01:46:41Z");
    assert_string_equal(json_str(o, "lastError"), "timeout");
    assert_int_equal(json_type_of(o, "lastAttempt"), json_type_string);
    assert_int_equal(json_type_of(o, "nextAttempt"), json_type_string);
    assert_int_equal(json_type_of(o, "dueNow"), json_type_boolean);
    json_object_put(o);

    assert_int_equal(run(f, f->dir, out, err, BUF, "show", "3", "--json", NULL), 0);
    o = parse_json(out);
    assert_string_equal(json_str(o, "state"), "dead");
    assert_int_equal(json_type_of(o, "nextAttempt"), json_type_null);
    json_object_put(o);

    assert_int_equal(run(f, f->dir, out, err, BUF, "show", "9", NULL), 1);
    assert_string_equal(out, "");
    assert_non_null(strstr(err, "no job 9\n"));
    assert_int_equal(run(f, f->dir, out, err, BUF, "show", "1", "2", NULL), 64);
    assert_int_equal(run(f, f->dir, out, err, BUF, "show", NULL), 64);
    assert_int_equal(run(f, f->dir, out, err, BUF, "show", "b", NULL), 64);
    assert_non_null(strstr(err, "'b' is not a job ID"));
}

/* status and list as one JSON document each. */
static void test_json(void **state)
{
    Fixture *f = *state;
    char out[BUF], err[BUF];
    SpoolStore *s = make_spool(f->dir);
    assert_int_equal(spool_store_hold(s, 1, true), 0);
    spool_store_close(s);

    assert_int_equal(run(f, f->dir, out, err, BUF, "status", "--json", NULL), 0);
    json_object *o = parse_json(out);
    assert_int_equal(json_object_get_int64(json_get(o, "jobs")), 1);
    assert_int_equal(json_object_get_int64(json_get(o, "held")), 1);
    assert_int_equal(json_object_get_int64(json_get(o, "deadLetters")), 1);
    assert_string_equal(json_str(o, "oldestJob"), "2001-09-09T01:46:41Z"); /* b: a is held */
    assert_true(json_object_get_int64(json_get(o, "oldestJobAgeSeconds")) > 700000000);
    assert_true(json_object_get_boolean(json_get(o, "dueNow")));
    assert_int_equal(json_type_of(o, "nextDue"), json_type_null);
    assert_non_null(strstr(json_str(o, "file"), "/spool.sqlite"));
    json_object_put(o);

    assert_int_equal(run(f, f->dir, out, err, BUF, "list", "--json", NULL), 0);
    o = parse_json(out);
    assert_int_equal(json_object_array_length(o), 2);
    json_object *a = json_object_array_get_idx(o, 0);
    assert_int_equal(json_object_get_int64(json_get(a, "id")), 1);
    assert_string_equal(json_str(a, "state"), "held");
    assert_false(json_object_get_boolean(json_get(a, "dueNow")));
    assert_string_equal(json_str(a, "lastError"), "worker unreachable\tat\nonce");
    json_object_put(o);
    assert_int_equal(run(f, f->dir, out, err, BUF, "list", "--dead", "--json", NULL), 0);
    o = parse_json(out);
    assert_int_equal(json_object_array_length(o), 1);
    json_object_put(o);
    assert_int_equal(spool_store_open(f->dir, 0, &s, NULL, NULL), 0);
    for (int64_t id = 1; id <= 3; id++)
        assert_int_equal(spool_store_delete(s, id), 0);
    spool_store_close(s);
    assert_int_equal(run(f, f->dir, out, err, BUF, "list", "--json", NULL), 0);
    assert_string_equal(out, "[]\n");
    assert_int_equal(run(f, f->dir, out, err, BUF, "requeue-dead", "--json", NULL), 64);
}

/* delete, requeue, hold, release on several IDs: one transaction; an ID that is not there is
 * named and makes the exit status 1, the others are acted on. */
static void test_verbs_on_ids(void **state)
{
    Fixture *f = *state;
    char out[BUF], err[BUF];
    SpoolStore *s = make_spool(f->dir);
    SpoolJob j;
    uint64_t now = clock_usec(CLOCK_REALTIME);
    assert_int_equal(spool_store_retry_later(s, 1, now + 3600 * 1000000ULL, "timeout"), 0);

    assert_int_equal(run(f, f->dir, out, err, BUF, "hold", "1", "9", "2", NULL), 1);
    assert_string_equal(out, "1 held\n2 held\n");
    assert_string_equal(err, "argus-orchestrator spool: no job 9\n");
    assert_true(spool_store_changed_elsewhere(s));
    SpoolStats st;
    assert_int_equal(spool_store_stats(s, &st), 0);
    assert_int_equal(st.held, 2);
    assert_int_equal(st.jobs, 0);
    assert_int_equal(run(f, f->dir, out, err, BUF, "hold", "3", NULL), 1);
    assert_non_null(strstr(err, "job 3 is a dead letter"));
    assert_int_equal(run(f, f->dir, out, err, BUF, "release", "2", "2", "02", NULL), 0);
    assert_string_equal(out, "2 released\n"); /* an ID named again: acted on and said once */
    assert_int_equal(run(f, f->dir, out, err, BUF, "flush", NULL), 0);
    assert_string_equal(out, "0 jobs that waited for their next attempt are due now\n");
    assert_int_equal(run(f, f->dir, out, err, BUF, "release", "1", NULL), 0);
    assert_int_equal(run(f, f->dir, out, err, BUF, "flush", NULL), 0);
    assert_string_equal(out, "1 job that waited for its next attempt is due now\n");
    assert_int_equal(spool_store_get(s, 1, &j), 0);
    assert_int_equal(j.due_usec, 0);
    assert_int_equal(j.attempts, 1);

    assert_int_equal(run(f, f->dir, out, err, BUF, "requeue", "3", "1", NULL), 0);
    assert_string_equal(out, "3 waits again, due now\n1 waits again, due now\n");
    assert_int_equal(spool_store_get(s, 1, &j), 0);
    assert_int_equal(j.attempts, 0);
    assert_int_equal(spool_store_get(s, 3, &j), 0);
    assert_false(j.dead);

    /* a usage error acts on nothing */
    assert_int_equal(run(f, f->dir, out, err, BUF, "delete", "1", "x2", NULL), 64);
    assert_int_equal(run(f, f->dir, out, err, BUF, "delete", "1", "-2", NULL), 64);
    assert_int_equal(run(f, f->dir, out, err, BUF, "delete", NULL), 64);
    assert_int_equal(spool_store_get(s, 1, &j), 0);
    assert_int_equal(run(f, f->dir, out, err, BUF, "delete", "1", "7", "3", "1", NULL), 1);
    assert_string_equal(out, "1 deleted\n3 deleted\n");
    assert_string_equal(err, "argus-orchestrator spool: no job 7\n");
    assert_int_equal(spool_store_get(s, 1, &j), -ENOENT);
    assert_int_equal(spool_store_get(s, 3, &j), -ENOENT);
    assert_int_equal(run(f, f->dir, out, err, BUF, "delete", "2", NULL), 0);
    assert_int_equal(spool_store_stats(s, &st), 0);
    assert_int_equal(st.jobs + st.held + st.dead, 0);
    spool_store_close(s);
}

/* A spool of release 0.1.0: read as it is, migrated by the first command that changes it. */
static void test_v1_spool(void **state)
{
    Fixture *f = *state;
    char out[BUF], err[BUF], path[256];
    make_v1(f->dir, 1);
    assert_int_equal(run(f, f->dir, out, err, BUF, "status", NULL), 0);
    assert_non_null(strstr(out, "Jobs waiting: 6\nHeld:         0\nDead letters: 4\n"));
    assert_int_equal(run(f, f->dir, out, err, BUF, "list", NULL), 0);
    assert_non_null(strstr(out, "\n6\twaiting\t2023-11-14T22:13:25Z\tw-e\treviews:w-e:start\t1\t-\t"
                                "now\tworker answered 500: \\x1b]0;title\\x07 \\x7f \\xff\\xfe "
                                "end\n"));
    assert_int_equal(user_version(f->dir), 1);
    assert_int_equal(run(f, f->dir, out, err, BUF, "hold", "3", NULL), 0);
    assert_int_equal(user_version(f->dir), SPOOL_USER_VERSION);
    assert_int_equal(run(f, f->dir, out, err, BUF, "list", NULL), 0);
    assert_non_null(strstr(out, "\n3\theld\t"));

    /* a newer release's: left alone */
    snprintf(path, sizeof(path), "%s/%s", f->dir, SPOOL_FILE);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    assert_int_equal(run(f, f->dir, out, err, BUF, "status", NULL), 1);
    assert_non_null(strstr(err, "written by a newer release (schema version 99)"));
    assert_int_equal(run(f, f->dir, out, err, BUF, "delete", "3", NULL), 1);
    assert_int_equal(user_version(f->dir), 99);
}

static void test_corrupt(void **state)
{
    Fixture *f = *state;
    char out[BUF], err[BUF], path[128];
    snprintf(path, sizeof(path), "%s/%s", f->dir, SPOOL_FILE);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    for (int i = 0; i < 4096; i++)
        fputc(i * 31 % 256, fp);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(run(f, f->dir, out, err, BUF, "status", NULL), 1);
    assert_non_null(strstr(err, "is corrupt"));
    assert_non_null(strstr(err, "the service moves it aside at its next start"));
    struct stat st;
    assert_int_equal(stat(path, &st), 0); /* left where it is */
    assert_int_equal(st.st_size, 4096);
}

int main(void)
{
#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_usage),        T(test_no_spool), T(test_status_list_requeue),
        T(test_escaping),     T(test_show),     T(test_json),
        T(test_verbs_on_ids), T(test_v1_spool), T(test_corrupt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
