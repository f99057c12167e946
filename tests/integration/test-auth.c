/* SPDX-License-Identifier: MIT */
/* Optional access control: with a credential api-token, POST /enqueue needs the bearer token. */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(void)
{
    harness_skip_unless_runnable();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_enqueue_needs_the_token),
        cmocka_unit_test(test_health_and_ready_stay_open),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
