/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "credentials.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/argus-cred-XXXXXX");
    assert_non_null(mkdtemp(dir));
    setenv("CREDENTIALS_DIRECTORY", dir, 1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    char path[128];
    snprintf(path, sizeof(path), "%s/api-token", dir);
    unlink(path);
    rmdir(dir);
    unsetenv("CREDENTIALS_DIRECTORY");
    return 0;
}

static void write_token(const char *content, size_t len)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/api-token", dir);
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    assert_int_equal(fwrite(content, 1, len, f), len);
    fclose(f);
}

static void test_read_trims_trailing_whitespace(void **state)
{
    (void)state;
    write_token("s3cret-token\r\n \n", 16);
    char *t = NULL;
    assert_int_equal(credential_read("api-token", &t), 0);
    assert_string_equal(t, "s3cret-token");
    free(t);
}

static void test_read_missing_empty_and_oversized(void **state)
{
    (void)state;
    char *t = NULL;
    assert_int_equal(credential_read("no-such-credential", &t), -ENOENT);
    write_token("\n\n", 2);
    assert_int_equal(credential_read("api-token", &t), -EINVAL);
    char *big = malloc(CREDENTIAL_MAX + 1);
    assert_non_null(big);
    memset(big, 'a', CREDENTIAL_MAX + 1);
    write_token(big, CREDENTIAL_MAX + 1);
    assert_int_equal(credential_read("api-token", &t), -EINVAL);
    write_token(big, CREDENTIAL_MAX);
    assert_int_equal(credential_read("api-token", &t), 0);
    assert_int_equal(strlen(t), CREDENTIAL_MAX);
    free(t);
    free(big);
    write_token("a\0b", 3);
    assert_int_equal(credential_read("api-token", &t), -EINVAL);
    unsetenv("CREDENTIALS_DIRECTORY");
    assert_int_equal(credential_read("api-token", &t), -ENOENT);
    setenv("CREDENTIALS_DIRECTORY", dir, 1);
}

static bool matches(const char *header, const char *token)
{
    return bearer_matches(header, strlen(header), token, strlen(token));
}

static void test_bearer_matches(void **state)
{
    (void)state;
    assert_true(matches("Bearer abc", "abc"));
    assert_true(matches("bearer abc", "abc"));
    assert_true(matches("BEARER   abc", "abc"));
    assert_false(matches("Bearer abd", "abc"));
    assert_false(matches("Bearer ab", "abc"));
    assert_false(matches("Bearer abcd", "abc"));
    assert_false(matches("Bearer ", "abc"));
    assert_false(matches("Basic abc", "abc"));
    assert_false(matches("abc", "abc"));
    assert_false(matches("", "abc"));
    assert_false(matches("Bearerabc", "abc"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_trims_trailing_whitespace),
        cmocka_unit_test(test_read_missing_empty_and_oversized),
        cmocka_unit_test(test_bearer_matches),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
