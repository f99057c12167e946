/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/* Calls in flight by job id, so that a request for a job already on its way to the worker
 * joins that call instead of making another. An intrusive chained hash table: the entries
 * embed InflightEntry and own their key. */
typedef struct InflightEntry {
    struct InflightEntry *next;
    const char *key;
    size_t hash;
} InflightEntry;

typedef struct Inflight {
    InflightEntry **buckets;
    size_t n_buckets; /* a power of two, or 0 */
    size_t n_entries;
} Inflight;

InflightEntry *inflight_find(const Inflight *t, const char *key);
/* Adds e (whose key is set, and not in the table yet); -ENOMEM when the table cannot grow. */
int inflight_add(Inflight *t, InflightEntry *e);
void inflight_remove(Inflight *t, InflightEntry *e);
void inflight_done(Inflight *t);
