/* SPDX-License-Identifier: MIT */
/* job_batch_parse: a POST /enqueue/batch body, refused as a whole or read item by item. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "job-batch.h"

static JobBatchError parse(const char *body, size_t max, JobBatch *ret)
{
    JobBatchError e = JOB_BATCH_OK;
    size_t len = strlen(body);
    char *copy = malloc(len ? len : 1); /* no NUL after it, as from h2o */
    assert_non_null(copy);
    memcpy(copy, body, len);
    assert_int_equal(job_batch_parse(copy, len, max, ret, &e), 0);
    free(copy);
    return e;
}

static void refused(const char *body, size_t max, JobBatchError want, const char *message)
{
    JobBatch b;
    JobBatchError e = parse(body, max, &b);
    if (e != want)
        fail_msg("%s: %d, want %d", body, e, want);
    assert_string_equal(job_batch_error_message(e), message);
    assert_int_equal(b.n, 0);
    assert_null(b.items);
    job_batch_done(&b);
}

static void test_refused_as_a_whole(void **state)
{
    (void)state;
    refused("", 10, JOB_BATCH_INVALID_JSON, "invalid JSON");
    refused("{\"placeIds\":[\"a\"]", 10, JOB_BATCH_INVALID_JSON, "invalid JSON");
    refused("{\"placeIds\":[\"a\"]} {}", 10, JOB_BATCH_INVALID_JSON, "invalid JSON");
    refused("[\"a\"]", 10, JOB_BATCH_INVALID_JSON, "invalid JSON");
    refused("{}", 10, JOB_BATCH_PLACE_IDS_REQUIRED, "placeIds is required");
    refused("{\"placeIds\":null}", 10, JOB_BATCH_PLACE_IDS_REQUIRED, "placeIds is required");
    refused("{\"placeId\":\"a\"}", 10, JOB_BATCH_PLACE_IDS_REQUIRED, "placeIds is required");
    refused("{\"placeIds\":\"a\"}", 10, JOB_BATCH_NOT_ARRAY, "placeIds must be an array");
    refused("{\"placeIds\":{\"a\":1}}", 10, JOB_BATCH_NOT_ARRAY, "placeIds must be an array");
    refused("{\"placeIds\":[\"a\",null]}", 10, JOB_BATCH_ITEM_NOT_STRING,
            "placeIds must hold strings");
    refused("{\"placeIds\":[[\"a\"]]}", 10, JOB_BATCH_ITEM_NOT_STRING,
            "placeIds must hold strings");
    refused("{\"placeIds\":[]}", 10, JOB_BATCH_EMPTY, "placeIds is empty");
    refused("{\"placeIds\":[\"a\",\"b\",\"c\"]}", 2, JOB_BATCH_TOO_MANY, "too many placeIds");
    /* the count first: a batch too large is not read further */
    refused("{\"placeIds\":[\"a\",1,\"c\"]}", 2, JOB_BATCH_TOO_MANY, "too many placeIds");
}

static void test_items_in_order_each_checked(void **state)
{
    (void)state;
    JobBatch b;
    assert_int_equal(
        parse("{\"placeIds\":[\"ChIJ_a-1\",\"bad id\",\"\",\"\\u0041b\",\"a\\u0000\"]}", 5, &b),
        JOB_BATCH_OK);
    assert_int_equal(b.n, 5);
    assert_int_equal(b.items[0].error, JOB_OK);
    assert_string_equal(b.items[0].place_id, "ChIJ_a-1");
    assert_int_equal(b.items[1].error, JOB_PLACE_ID_INVALID);
    assert_string_equal(b.items[1].place_id, "");
    assert_int_equal(b.items[2].error, JOB_PLACE_ID_REQUIRED);
    assert_int_equal(b.items[3].error, JOB_OK);
    assert_string_equal(b.items[3].place_id, "Ab");
    assert_int_equal(b.items[4].error, JOB_PLACE_ID_INVALID); /* a NUL inside */
    job_batch_done(&b);
    assert_null(b.items);
}

static void test_duplicates_point_at_the_first(void **state)
{
    (void)state;
    JobBatch b;
    assert_int_equal(parse("{\"placeIds\":[\"b\",\"a\",\"b\",\"c\",\"a\",\"b\"]}", 1000, &b),
                     JOB_BATCH_OK);
    static const size_t first[] = {0, 1, 0, 3, 1, 0};
    assert_int_equal(b.n, 6);
    for (size_t i = 0; i < 6; i++)
        assert_int_equal(b.items[i].first, first[i]);
    job_batch_done(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_refused_as_a_whole),
        cmocka_unit_test(test_items_in_order_each_checked),
        cmocka_unit_test(test_duplicates_point_at_the_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
