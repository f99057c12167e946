/* SPDX-License-Identifier: MIT */
#include "job-batch.h"

#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include "macro.h"

const char *job_batch_error_message(JobBatchError e)
{
    switch (e) {
    case JOB_BATCH_OK:
        return "ok";
    case JOB_BATCH_INVALID_JSON:
        return "invalid JSON";
    case JOB_BATCH_PLACE_IDS_REQUIRED:
        return "placeIds is required";
    case JOB_BATCH_NOT_ARRAY:
        return "placeIds must be an array";
    case JOB_BATCH_ITEM_NOT_STRING:
        return "placeIds must hold strings";
    case JOB_BATCH_EMPTY:
        return "placeIds is empty";
    case JOB_BATCH_TOO_MANY:
        return "too many placeIds";
    }
    return "invalid request";
}

/* The array of "placeIds", or why the body is not a batch. */
static JobBatchError batch_array(json_object *o, size_t max_items, json_object **ret)
{
    json_object *a;
    if (!json_object_is_type(o, json_type_object))
        return JOB_BATCH_INVALID_JSON;
    if (!json_object_object_get_ex(o, "placeIds", &a) || json_object_is_type(a, json_type_null))
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
    *ret = a;
    return JOB_BATCH_OK;
}

static int compare_items(const void *a, const void *b, void *userdata)
{
    const JobBatchItem *items = userdata;
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    int c = strcmp(items[x].place_id, items[y].place_id);
    return c ? c : x < y ? -1 : x > y;
}

/* Each item's .first: sorted by placeId (then by index), equal neighbours share the first. */
static int mark_duplicates(JobBatch *b)
{
    _cleanup_free_ size_t *order = malloc(b->n * sizeof(size_t));
    if (!order)
        return -ENOMEM;
    for (size_t i = 0; i < b->n; i++)
        order[i] = i;
    qsort_r(order, b->n, sizeof(size_t), compare_items, b->items);
    for (size_t k = 0; k < b->n; k++) {
        JobBatchItem *it = &b->items[order[k]];
        const JobBatchItem *prev = k > 0 ? &b->items[order[k - 1]] : NULL;
        it->first = prev && strcmp(prev->place_id, it->place_id) == 0 ? prev->first : order[k];
    }
    return 0;
}

/* The strings of a (all of them strings) into b, each checked. */
static int batch_fill(json_object *a, size_t text_max, JobBatch *b)
{
    size_t n = json_object_array_length(a);
    b->items = calloc(n, sizeof(JobBatchItem));
    b->text = malloc(text_max + n);
    if (!b->items || !b->text)
        return -ENOMEM;
    b->n = n;
    char *p = b->text;
    for (size_t i = 0; i < n; i++) {
        json_object *s = json_object_array_get_idx(a, i);
        const char *v = json_object_get_string(s);
        size_t l = (size_t)json_object_get_string_len(s);
        JobBatchItem *it = &b->items[i];
        if (l == 0)
            it->error = JOB_PLACE_ID_REQUIRED;
        else if (!place_id_is_valid(v, l) || strlen(v) != l)
            it->error = JOB_PLACE_ID_INVALID;
        if (it->error != JOB_OK)
            l = 0; /* not kept: only a valid one is answered with its placeId */
        memcpy(p, v, l);
        p[l] = '\0';
        it->place_id = p;
        p += l + 1;
    }
    return mark_duplicates(b);
}

int job_batch_parse(const char *body, size_t len, size_t max_items, JobBatch *ret,
                    JobBatchError *ret_error)
{
    *ret = (JobBatch){0};
    json_object *o = job_parse_json(body, len), *a = NULL;
    if (!o) {
        *ret_error = JOB_BATCH_INVALID_JSON;
        return 0;
    }
    JobBatchError e = batch_array(o, max_items, &a);
    int r = 0;
    if (e == JOB_BATCH_OK) {
        /* a placeId kept (a valid one) takes no fewer bytes in the body: len bounds the text */
        r = batch_fill(a, len, ret);
        if (r < 0)
            job_batch_done(ret);
    }
    json_object_put(o);
    *ret_error = e;
    return r;
}

void job_batch_done(JobBatch *b)
{
    free(b->items);
    free(b->text);
    *b = (JobBatch){0};
}
