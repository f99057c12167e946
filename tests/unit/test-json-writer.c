/* SPDX-License-Identifier: MIT */
#include <json-c/json.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "json-writer.h"

static void test_object_of_strings_and_ints(void **state)
{
    (void)state;
    JsonWriter w = {0};
    json_writer_begin(&w);
    json_writer_string(&w, "a", "plain");
    json_writer_int(&w, "n", -42);
    json_writer_string(&w, "esc", "q\"b\\n\nr\rt\t\x01\x1f/é");
    json_writer_end(&w);
    size_t len;
    char *s = json_writer_take(&w, &len);
    assert_non_null(s);
    assert_int_equal(strlen(s), len);
    assert_string_equal(
        s, "{\"a\":\"plain\",\"n\":-42,\"esc\":\"q\\\"b\\\\n\\nr\\rt\\t\\u0001\\u001f/é\"}");
    /* and json-c reads back the same values */
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    json_object *v;
    assert_true(json_object_object_get_ex(o, "esc", &v));
    assert_string_equal(json_object_get_string(v), "q\"b\\n\nr\rt\t\x01\x1f/é");
    assert_true(json_object_object_get_ex(o, "n", &v));
    assert_int_equal(json_object_get_int(v), -42);
    json_object_put(o);
    free(s);
    assert_null(w.p); /* taken */
}

static void test_integer_limits(void **state)
{
    (void)state;
    JsonWriter w = {0};
    json_writer_begin(&w);
    json_writer_int(&w, "zero", 0);
    json_writer_int(&w, "max", LLONG_MAX);
    json_writer_int(&w, "min", LLONG_MIN);
    json_writer_int(&w, "ten", 10);
    json_writer_end(&w);
    size_t len;
    char *s = json_writer_take(&w, &len);
    assert_non_null(s);
    assert_string_equal(s, "{\"zero\":0,\"max\":9223372036854775807,"
                           "\"min\":-9223372036854775808,\"ten\":10}");
    free(s);
}

/* {"k": value}, written whole */
static char *object_of_one(const char *value, size_t *ret_len)
{
    JsonWriter w = {0};
    json_writer_begin(&w);
    json_writer_string(&w, "k", value);
    json_writer_end(&w);
    char *s = json_writer_take(&w, ret_len);
    assert_non_null(s);
    return s;
}

static void test_every_control_byte_is_escaped(void **state)
{
    (void)state;
    char in[40], *p = in;
    for (int c = 1; c < 0x20; c++)
        *p++ = (char)c;
    *p++ = 'x', *p = '\0';
    size_t len;
    char *s = object_of_one(in, &len);
    json_object *o = json_tokener_parse(s);
    assert_non_null(o);
    json_object *v;
    assert_true(json_object_object_get_ex(o, "k", &v));
    assert_string_equal(json_object_get_string(v), in);
    assert_non_null(strstr(s, "\\u001f"));
    assert_non_null(strstr(s, "\\u0008"));
    json_object_put(o);
    free(s);
}

static void test_grows_for_long_values(void **state)
{
    (void)state;
    size_t n = 100000;
    char *big = malloc(n + 1);
    assert_non_null(big);
    memset(big, '\n', n); /* each becomes two bytes */
    big[n] = '\0';
    size_t len;
    char *s = object_of_one(big, &len);
    assert_int_equal(len, 2 * n + strlen("{\"k\":\"\"}"));
    free(s);
    free(big);
}

static void test_empty_writer_takes_null(void **state)
{
    (void)state;
    JsonWriter w = {0};
    size_t len = 7;
    assert_null(json_writer_take(&w, &len));
    json_writer_free(&w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_object_of_strings_and_ints),
        cmocka_unit_test(test_integer_limits),
        cmocka_unit_test(test_every_control_byte_is_escaped),
        cmocka_unit_test(test_grows_for_long_values),
        cmocka_unit_test(test_empty_writer_takes_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
