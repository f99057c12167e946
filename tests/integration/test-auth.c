/* SPDX-License-Identifier: MIT */
/* Optional access control: with a credential api-token, POST /enqueue needs the bearer token. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "harness.h"

static Standin standin;
static Service svc;
static char creds[64], token_path[128];

static int setup(void **state)
{
    (void)state;
    standin_start(&standin);
    snprintf(creds, sizeof(creds), "/tmp/argus-creds-XXXXXX");
    assert_non_null(mkdtemp(creds));
    snprintf(token_path, sizeof(token_path), "%s/api-token", creds);
    FILE *f = fopen(token_path, "we");
    assert_non_null(f);
    fputs("t0ken-of-42-chars\n", f);
    fclose(f);
    char worker[96], dir[96];
    snprintf(worker, sizeof(worker), "WORKER_NODE_URL=%s", standin.url);
    snprintf(dir, sizeof(dir), "CREDENTIALS_DIRECTORY=%s", creds);
    const char *env[] = {worker, dir, NULL};
    service_start(&svc, env);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    int st = service_stop(&svc, SIGTERM);
    service_cleanup(&svc);
    standin_stop(&standin);
    unlink(token_path);
    rmdir(creds);
    return st == 0 ? 0 : -1;
}

static Response post_with(const char *auth, const char *place)
{
    char url[128], body[128];
    snprintf(url, sizeof(url), "%s/enqueue", svc.base);
    snprintf(body, sizeof(body), "{\"placeId\":\"%s\"}", place);
    return http_request("POST", url, "application/json", body, auth);
}

static void test_enqueue_needs_the_token(void **state)
{
    (void)state;
    const char *wrong[] = {NULL, "Authorization: Bearer wrong",
                           "Authorization: Basic dDA=", "Authorization: Bearer t0ken-of-42-char",
                           "Authorization: Bearer t0ken-of-42-chars-and-more"};
    for (size_t i = 0; i < sizeof(wrong) / sizeof(wrong[0]); i++) {
        Response r = post_with(wrong[i], "auth-denied");
        assert_int_equal(r.status, 401);
        assert_non_null(strstr(r.body, "\"error\":\"unauthorized\""));
        char www[128];
        assert_true(response_header(&r, "WWW-Authenticate", www, sizeof(www)));
        assert_true(strncmp(www, "Bearer", 6) == 0);
        response_free(&r);
    }
    assert_int_equal(standin_count(&standin, "auth-denied"), 0);

    Response r = post_with("Authorization: Bearer t0ken-of-42-chars", "auth-ok");
    assert_int_equal(r.status, 202);
    response_free(&r);
    assert_int_equal(standin_count(&standin, "auth-ok"), 1);
}

static void test_health_and_ready_stay_open(void **state)
{
    (void)state;
    const char *paths[] = {"/health", "/ready"};
    for (size_t i = 0; i < 2; i++) {
        char url[128];
        snprintf(url, sizeof(url), "%s%s", svc.base, paths[i]);
        Response r = http_request("GET", url, NULL, NULL, NULL);
        assert_int_equal(r.status, 200);
        response_free(&r);
    }
}

/* A credentials folder of its own with one entry `name`: a file holding content, or a FIFO when
 * content is NULL. */
static void make_creds(char *cdir, size_t n, const char *name, const char *content)
{
    snprintf(cdir, n, "/tmp/argus-creds-XXXXXX");
    assert_non_null(mkdtemp(cdir));
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", cdir, name);
    if (!content) {
        assert_int_equal(mkfifo(path, 0600), 0);
        return;
    }
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
}

static void remove_creds(const char *cdir, const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", cdir, name);
    unlink(path);
    rmdir(cdir);
}

/* --check-config with that credentials folder: its exit status and output. */
static int check_config_with_creds(const char *cdir, char *out, size_t n)
{
    char env_dir[96];
    snprintf(env_dir, sizeof(env_dir), "CREDENTIALS_DIRECTORY=%s", cdir);
    const char *argv[] = {argus_binary(), "--check-config", NULL};
    const char *env[] = {env_dir, NULL};
    return run_capture(argv, env, out, n);
}

/* The daemon socket-activated with env, refusing to start: the connection that started it gets
 * a 503; its exit status and its log (stderr). */
static int start_refused(const char *const *env, char *out, size_t n)
{
    Service s;
    service_start(&s, env);
    Response r = service_get(&s, "/health");
    assert_int_equal(r.status, 503);
    response_free(&r);
    int st = service_wait_exit(&s, 10000);
    FILE *f = fopen(s.log_path, "re");
    assert_non_null(f);
    size_t k = fread(out, 1, n - 1, f);
    out[k] = '\0';
    fclose(f);
    service_cleanup(&s);
    return st;
}

static int start_with_creds(const char *cdir, char *out, size_t n)
{
    char env_dir[96];
    snprintf(env_dir, sizeof(env_dir), "CREDENTIALS_DIRECTORY=%s", cdir);
    const char *env[] = {env_dir, "WORKER_NODE_URL=http://127.0.0.1:9", NULL};
    return start_refused(env, out, n);
}

/* A token no client can send, or a credential that is not a file (a FIFO would block the start
 * for ever): the start and --check-config both exit 78 with one line that says why and does not
 * print the token. */
static void test_unusable_token_refused_at_start(void **state)
{
    (void)state;
    static const struct {
        const char *content, *why;
    } cases[] = {
        {"  leading-blanks-Tok\n", "starts with a blank"},
        {"ctrl\x01-inside-Tok\n", "control byte"},
        {"tab\tinside-Tok", "control byte"},
        {"caf\xc3\xa9-Tok\n", "outside printable ASCII"},
        {NULL, "not a regular file"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        for (int check = 0; check <= 1; check++) {
            char cdir[64], out[4096];
            make_creds(cdir, sizeof(cdir), "api-token", cases[i].content);
            int st = check ? check_config_with_creds(cdir, out, sizeof(out))
                           : start_with_creds(cdir, out, sizeof(out));
            remove_creds(cdir, "api-token");
            if (st != 78 || !strstr(out, "credential api-token cannot be used") ||
                !strstr(out, cases[i].why) || strstr(out, "-Tok"))
                fail_msg("case %zu%s: exit %d, output: %s", i, check ? " (--check-config)" : "", st,
                         out);
            /* one line of the daemon's (systemd-socket-activate says what it does, too) */
            const char *line = strstr(out, "{\"level\"");
            assert_non_null(line);
            assert_int_equal(strchr(line, '\n') - line + 1, (long)strlen(line));
        }
}

/* --check-config reads a good token (and says nothing of it); a misspelt name gets a warning. */
static void test_check_config_reads_token_and_warns_of_misspelling(void **state)
{
    (void)state;
    char cdir[64], out[4096];
    make_creds(cdir, sizeof(cdir), "api-token", "trailing-blanks-stripped-Tok \r\n");
    assert_int_equal(check_config_with_creds(cdir, out, sizeof(out)), 0);
    remove_creds(cdir, "api-token");
    assert_null(strstr(out, "-Tok"));
    assert_null(strstr(out, "api-token"));

    const char *misspelt[] = {"api_token", "APITOKEN", "Token"};
    for (size_t i = 0; i < sizeof(misspelt) / sizeof(misspelt[0]); i++) {
        make_creds(cdir, sizeof(cdir), misspelt[i], "t0ken\n");
        assert_int_equal(check_config_with_creds(cdir, out, sizeof(out)), 0);
        remove_creds(cdir, misspelt[i]);
        char want[64];
        snprintf(want, sizeof(want), "credential named %s: a misspelt api-token?", misspelt[i]);
        if (!strstr(out, want))
            fail_msg("no warning for %s: %s", misspelt[i], out);
    }
    make_creds(cdir, sizeof(cdir), "other", "t0ken\n");
    assert_int_equal(check_config_with_creds(cdir, out, sizeof(out)), 0);
    remove_creds(cdir, "other");
    assert_null(strstr(out, "misspelt"));
}

/* A WORKER_NODE_URL with user info is refused; the line that says so hides the password, at
 * start as with --check-config. */
static void test_worker_url_password_not_logged(void **state)
{
    (void)state;
    static const struct {
        const char *env, *shown;
    } cases[] = {
        {"WORKER_NODE_URL=http://argus:pa55w0rd@worker.example:3000/x",
         "WORKER_NODE_URL=http://argus:***@worker.example:3000/x"},
        {"WORKER_NODE_URL=https://pa55w0rd@worker.example",
         "WORKER_NODE_URL=https://***@worker.example"},
        {"WORKER_NODE_URL=argus:pa55w0rd@worker.example:3000",
         "WORKER_NODE_URL=argus:***@worker.example:3000"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[4096];
        const char *env[] = {cases[i].env, NULL};
        const char *check[] = {argus_binary(), "--check-config", NULL};
        int st = run_capture(check, env, out, sizeof(out));
        if (st != 78 || !strstr(out, cases[i].shown) || strstr(out, "pa55w0rd"))
            fail_msg("--check-config with %s: exit %d, output: %s", cases[i].env, st, out);
        st = start_refused(env, out, sizeof(out));
        if (st != 78 || !strstr(out, cases[i].shown) || strstr(out, "pa55w0rd"))
            fail_msg("start with %s: exit %d, output: %s", cases[i].env, st, out);
    }
}

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enqueue_needs_the_token),
        cmocka_unit_test(test_health_and_ready_stay_open),
        cmocka_unit_test(test_unusable_token_refused_at_start),
        cmocka_unit_test(test_check_config_reads_token_and_warns_of_misspelling),
        cmocka_unit_test(test_worker_url_password_not_logged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
