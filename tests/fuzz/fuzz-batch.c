/* SPDX-License-Identifier: MIT */
/* libFuzzer target: the input is a POST /enqueue/batch body for job_batch_parse, parsed with a
 * MAX_BATCH of 1000 and of 3. Besides crashes and sanitizer reports, it aborts when an invariant
 * fails:
 * - what json_check refuses is "invalid JSON" as a whole;
 * - for what it accepts, the verdict on the whole batch is the one json-c's own view of the body
 *   calls for (not an object, no or null "placeIds", not an array, empty, too many, an item not
 *   a string: in that order), and only the item limit tells the two parses apart;
 * - an accepted batch has every item, in order, each checked as job_parse_request checks a
 *   placeId (what it accepts is exactly the string, a valid place id), and .first is the first
 *   item with the same placeId;
 * - every error has its message.
 * Built by scripts/fuzz. */
#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "job-batch.h"
#include "job.h"
#include "json-check.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz-batch: invariant failed at %s:%d: %s\n", __FILE__, __LINE__,     \
                    #cond);                                                                        \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* json-c's parse of a body json_check accepted, as job.c sets it up (one more level: json-c
 * counts values, json_check containers); NUL-terminated, as json-c's documentation suggests. */
static json_object *jsonc_parse(const char *s, size_t len)
{
    char *t = malloc(len + 1);
    CHECK(t);
    memcpy(t, s, len);
    t[len] = '\0';
    json_tokener *tok = json_tokener_new_ex(REQUEST_JSON_MAX_DEPTH + 1);
    CHECK(tok);
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    json_object *o = json_tokener_parse_ex(tok, t, (int)len + 1);
    CHECK(json_tokener_get_error(tok) == json_tokener_success);
    json_tokener_free(tok);
    free(t);
    return o;
}

/* The verdict README.md's "POST /enqueue/batch" calls for, from json-c's view. */
static JobBatchError expected(json_object *o, size_t max_items)
{
    json_object *a;
    if (!json_object_is_type(o, json_type_object))
        return JOB_BATCH_INVALID_JSON;
    if (!json_object_object_get_ex(o, "placeIds", &a) || !a)
        return JOB_BATCH_PLACE_IDS_REQUIRED;
    if (!json_object_is_type(a, json_type_array))
        return JOB_BATCH_NOT_ARRAY;
    size_t n = json_object_array_length(a);
    if (n == 0)
        return JOB_BATCH_EMPTY;
    if (n > max_items)
        return JOB_BATCH_TOO_MANY;
    for (size_t i = 0; i < n; i++)
        if (!json_object_is_type(json_object_array_get_idx(a, i), json_type_string))
            return JOB_BATCH_ITEM_NOT_STRING;
    return JOB_BATCH_OK;
}

/* Item i against json-c's string s, checked as a single request's placeId. */
static void check_item(const JobBatch *b, size_t i, json_object *s)
{
    const JobBatchItem *it = &b->items[i];
    const char *v = json_object_get_string(s);
    size_t l = (size_t)json_object_get_string_len(s);
    JobError want = l == 0                                      ? JOB_PLACE_ID_REQUIRED
                    : place_id_is_valid(v, l) && strlen(v) == l ? JOB_OK
                                                                : JOB_PLACE_ID_INVALID;
    CHECK(it->error == want);
    CHECK(job_error_message(it->error) != NULL);
    if (want == JOB_OK)
        CHECK(strcmp(it->place_id, v) == 0);
    else
        CHECK(it->place_id[0] == '\0');
    CHECK(it->first <= i);
    CHECK(strcmp(b->items[it->first].place_id, it->place_id) == 0);
    if (b->n <= 256) /* quadratic: small batches only */
        for (size_t j = 0; j < it->first; j++)
            CHECK(strcmp(b->items[j].place_id, it->place_id) != 0);
}

static JobBatchError check_parse(const char *body, size_t size, size_t max_items, bool checked)
{
    JobBatch b;
    JobBatchError e;
    CHECK(job_batch_parse(body, size, max_items, &b, &e) == 0);
    CHECK(e >= JOB_BATCH_OK && e <= JOB_BATCH_TOO_MANY);
    CHECK(job_batch_error_message(e) != NULL);
    if (!checked)
        CHECK(e == JOB_BATCH_INVALID_JSON);
    if (e != JOB_BATCH_OK)
        CHECK(b.n == 0 && !b.items && !b.text);
    if (checked) {
        json_object *o = jsonc_parse(body, size), *a;
        CHECK(e == expected(o, max_items));
        if (e == JOB_BATCH_OK) {
            CHECK(json_object_object_get_ex(o, "placeIds", &a));
            CHECK(b.n == json_object_array_length(a) && b.n >= 1 && b.n <= max_items);
            for (size_t i = 0; i < b.n; i++)
                check_item(&b, i, json_object_array_get_idx(a, i));
        }
        json_object_put(o);
    }
    job_batch_done(&b);
    return e;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* an exact-size heap copy: AddressSanitizer sees any read past the end */
    char *body = malloc(size ? size : 1);
    CHECK(body);
    if (size)
        memcpy(body, data, size);
    bool checked = json_check(body, size, REQUEST_JSON_MAX_DEPTH);
    JobBatchError big = check_parse(body, size, 1000, checked);
    JobBatchError small = check_parse(body, size, 3, checked);
    CHECK(big == small || small == JOB_BATCH_TOO_MANY); /* the limit is checked first */
    free(body);
    return 0;
}
