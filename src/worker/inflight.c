/* SPDX-License-Identifier: MIT */
#include "inflight.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"

/* The low bits pick the bucket (the high ones the worker's shard: hash.h). */
static size_t hash_key(const char *s)
{
    return (size_t)hash_string(s);
}

InflightEntry *inflight_find(const Inflight *t, const char *key)
{
    if (t->n_buckets == 0)
        return NULL;
    size_t h = hash_key(key);
    for (InflightEntry *e = t->buckets[h & (t->n_buckets - 1)]; e; e = e->next)
        if (e->hash == h && strcmp(e->key, key) == 0)
            return e;
    return NULL;
}

static int grow(Inflight *t)
{
    size_t n = t->n_buckets ? t->n_buckets * 2 : 64;
    InflightEntry **b = calloc(n, sizeof(*b));
    if (!b)
        return -ENOMEM;
    for (size_t i = 0; i < t->n_buckets; i++)
        for (InflightEntry *e = t->buckets[i], *next; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    free(t->buckets);
    t->buckets = b;
    t->n_buckets = n;
    return 0;
}

int inflight_add(Inflight *t, InflightEntry *e)
{
    if (t->n_entries >= t->n_buckets) {
        int r = grow(t);
        if (r < 0 && t->n_buckets == 0)
            return r; /* a full table still works, only slower */
    }
    e->hash = hash_key(e->key);
    InflightEntry **head = &t->buckets[e->hash & (t->n_buckets - 1)];
    e->next = *head;
    *head = e;
    t->n_entries++;
    return 0;
}

void inflight_remove(Inflight *t, InflightEntry *e)
{
    if (t->n_buckets == 0)
        return;
    for (InflightEntry **p = &t->buckets[e->hash & (t->n_buckets - 1)]; *p; p = &(*p)->next)
        if (*p == e) {
            *p = e->next;
            t->n_entries--;
            return;
        }
}

void inflight_done(Inflight *t)
{
    free(t->buckets);
    *t = (Inflight){0};
}
