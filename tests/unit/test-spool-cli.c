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
    assert_non_null(strstr(out, "Jobs waiting: 2\n"));
    assert_non_null(strstr(out, "Oldest job:   2001-09-09T01:46:40Z ("));
    assert_non_null(strstr(out, "Dead letters: 1\n"));
    assert_non_null(strstr(out, "/spool.sqlite\n"));

    assert_int_equal(run(f, f->dir, out, err, BUF, "list", NULL), 0); /* SPOOL_DIR */
    assert_string_equal(
        out, "id\tcreated\tplaceId\tjobId\tattempts\tlastError\n"
             "1\t2001-09-09T01:46:40Z\ta\treviews:a:start\t0\tworker unreachable at once\n"
             "2\t2001-09-09T01:46:41Z\tb\treviews:b:start\t0\tworker unreachable at once\n");
    assert_int_equal(run(f, f->dir, out, err, BUF, "list", "--dead", NULL), 0);
    assert_string_equal(out,
                        "id\tcreated\tplaceId\tjobId\tattempts\tlastError\n"
                        "3\t2001-09-09T01:46:42Z\tc\treviews:c:start\t0\tworker answered 400\n");

    assert_int_equal(run(f, f->dir, out, err, BUF, "requeue-dead", NULL), 0);
    assert_string_equal(out, "1 dead letter waits again\n");
    SpoolStats st;
    assert_true(spool_store_changed_elsewhere(s));
    assert_int_equal(spool_store_stats(s, &st), 0);
    assert_int_equal(st.jobs, 3);
    assert_int_equal(st.dead, 0);
    assert_int_equal(run(f, f->dir, out, err, BUF, "list", "--dead", NULL), 0);
    assert_string_equal(out, "id\tcreated\tplaceId\tjobId\tattempts\tlastError\n");
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
    assert_non_null(strstr(out, "Jobs waiting: 0\nOldest job:   -\nDead letters: 0\n"));
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
        T(test_usage),
        T(test_no_spool),
        T(test_status_list_requeue),
        T(test_corrupt),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
