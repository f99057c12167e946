/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>

/* Intrusive doubly linked lists with a head and a tail, after systemd's src/basic/list.h: an item
 * has LIST_FIELDS(type, name), that is name_prev and name_next, for each list it can be on. */

#define LIST_FIELDS(type, name) type *name##_prev, *name##_next

#define LIST_PREPEND(name, head, tail, item)                                                       \
    do {                                                                                           \
        (item)->name##_prev = NULL;                                                                \
        (item)->name##_next = (head);                                                              \
        if (head)                                                                                  \
            (head)->name##_prev = (item);                                                          \
        else                                                                                       \
            (tail) = (item);                                                                       \
        (head) = (item);                                                                           \
    } while (0)

#define LIST_APPEND(name, head, tail, item)                                                        \
    do {                                                                                           \
        (item)->name##_next = NULL;                                                                \
        (item)->name##_prev = (tail);                                                              \
        if (tail)                                                                                  \
            (tail)->name##_next = (item);                                                          \
        else                                                                                       \
            (head) = (item);                                                                       \
        (tail) = (item);                                                                           \
    } while (0)

#define LIST_REMOVE(name, head, tail, item)                                                        \
    do {                                                                                           \
        if ((item)->name##_prev)                                                                   \
            (item)->name##_prev->name##_next = (item)->name##_next;                                \
        else                                                                                       \
            (head) = (item)->name##_next;                                                          \
        if ((item)->name##_next)                                                                   \
            (item)->name##_next->name##_prev = (item)->name##_prev;                                \
        else                                                                                       \
            (tail) = (item)->name##_prev;                                                          \
        (item)->name##_prev = (item)->name##_next = NULL;                                          \
    } while (0)
