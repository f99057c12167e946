/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

static void remove_entry(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (unlink(path) < 0)
        (void)rmdir(path);
}

static int teardown(void **state)
{
    (void)state;
    const char *names[] = {"api-token", "API_Token", "token", "api-token.txt"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        remove_entry(names[i]);
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

/* A FIFO (its open would wait for a writer), a directory, a socket: refused at once. A link to
 * a regular file is read (Kubernetes mounts a Secret's keys so). */
static void test_read_only_a_regular_file(void **state)
{
    (void)state;
    char path[128], target[128];
    snprintf(path, sizeof(path), "%s/api-token", dir);
    char *t = NULL;

    remove_entry("api-token"); /* the earlier tests' */
    assert_int_equal(mkfifo(path, 0600), 0);
    alarm(10); /* a blocking open fails the test instead of hanging it */
    assert_int_equal(credential_read("api-token", &t), -EBADFD);
    alarm(0);
    assert_null(t);
    remove_entry("api-token");

    assert_int_equal(mkdir(path, 0700), 0);
    assert_int_equal(credential_read("api-token", &t), -EBADFD);
    remove_entry("api-token");

    snprintf(target, sizeof(target), "%s/token", dir);
    FILE *f = fopen(target, "we");
    assert_non_null(f);
    fputs("linked\n", f);
    fclose(f);
    assert_int_equal(symlink(target, path), 0);
    assert_int_equal(credential_read("api-token", &t), 0);
    assert_string_equal(t, "linked");
    free(t);
    remove_entry("api-token");
    remove_entry("token");
}

static void test_token_unsendable(void **state)
{
    (void)state;
    assert_null(token_unsendable("s3cret-token"));
    assert_null(token_unsendable("with inner blanks"));
    assert_null(token_unsendable("!~"));
    assert_non_null(token_unsendable(" lead"));
    assert_non_null(token_unsendable("\tlead"));
    assert_non_null(token_unsendable("in\x01side"));
    assert_non_null(token_unsendable("tab\tinside"));
    assert_non_null(token_unsendable("line\nbreak"));
    assert_non_null(token_unsendable("del\x7f"));
    assert_non_null(token_unsendable("caf\xc3\xa9"));
    assert_non_null(token_unsendable("\xff"));
}

static void touch(const char *name)
{
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "we");
    assert_non_null(f);
    fputs("x\n", f);
    fclose(f);
}

static void test_find_misspelt_token(void **state)
{
    (void)state;
    char *name = NULL;
    remove_entry("api-token");
    assert_int_equal(credential_find_misspelt_token(&name), 0);
    assert_null(name);
    touch("api-token.txt"); /* not among the lookalikes */
    assert_int_equal(credential_find_misspelt_token(&name), 0);
    assert_null(name);

    char path[128];
    snprintf(path, sizeof(path), "%s/api-token", dir);
    assert_int_equal(symlink("/nonexistent/argus", path), 0); /* api-token itself, dangling */
    assert_int_equal(credential_find_misspelt_token(&name), 0);
    assert_null(name);
    remove_entry("api-token");

    touch("API_Token");
    assert_int_equal(credential_find_misspelt_token(&name), 0);
    assert_non_null(name);
    assert_string_equal(name, "API_Token");
    free(name);
    remove_entry("API_Token");

    touch("token");
    assert_int_equal(credential_find_misspelt_token(&name), 0);
    assert_string_equal(name, "token");
    free(name);
    remove_entry("token");
    remove_entry("api-token.txt");

    unsetenv("CREDENTIALS_DIRECTORY");
    assert_int_equal(credential_find_misspelt_token(&name), 0);
    assert_null(name);
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
        cmocka_unit_test(test_read_only_a_regular_file),
        cmocka_unit_test(test_token_unsendable),
        cmocka_unit_test(test_find_misspelt_token),
        cmocka_unit_test(test_bearer_matches),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
