/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "job.h"

/* The body of POST /enqueue/batch: {"placeIds": ["…", …]} (README.md, "POST /enqueue/batch").
 * A body wrong as a whole refuses the batch; a placeId that is not valid is its item's error
 * alone. */

typedef enum JobBatchError {
    JOB_BATCH_OK,
    JOB_BATCH_INVALID_JSON,       /* not one JSON object */
    JOB_BATCH_PLACE_IDS_REQUIRED, /* no "placeIds", or null */
    JOB_BATCH_NOT_ARRAY,          /* "placeIds" is not an array */
    JOB_BATCH_ITEM_NOT_STRING,    /* an item is not a string */
    JOB_BATCH_EMPTY,              /* an empty array */
    JOB_BATCH_TOO_MANY,           /* more than the most allowed */
} JobBatchError;

typedef struct JobBatchItem {
    const char *place_id; /* NUL-terminated, in JobBatch.text; "" for an empty one */
    JobError error;       /* JOB_OK, JOB_PLACE_ID_REQUIRED (""), or JOB_PLACE_ID_INVALID */
    size_t first;         /* the index of the first item with the same placeId: itself if none */
} JobBatchItem;

typedef struct JobBatch {
    size_t n;
    JobBatchItem *items;
    char *text; /* the placeIds, one after the other */
} JobBatch;

/* The client-facing message for e ("placeIds must be an array", …). */
const char *job_batch_error_message(JobBatchError e);

/* Parses a batch body of up to max_items placeIds, in order, each checked as POST /enqueue
 * checks its placeId, duplicates marked (.first). Returns 0, or -ENOMEM; *ret_error says
 * whether the body was a batch (then *ret holds it: job_batch_done() it). */
int job_batch_parse(const char *body, size_t len, size_t max_items, JobBatch *ret,
                    JobBatchError *ret_error);
void job_batch_done(JobBatch *b);
