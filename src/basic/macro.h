/* SPDX-License-Identifier: MIT */
#pragma once

/* The few macros of systemd's src/fundamental/macro.h and src/basic/alloc-util.h that the
 * constructors here use: a variable with _cleanup_(f) has f(&var) called when it goes out of
 * scope, and TAKE_PTR() hands the pointer on (to *ret) so that the cleanup sees NULL. */

#include <assert.h>
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <unistd.h>

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)

/* Defines `static inline void funcp(type *p)`, which calls func(*p) when *p is not NULL. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                    \
    static inline void func##p(type *p)                                                            \
    {                                                                                              \
        if (*p)                                                                                    \
            func(*p);                                                                              \
    }

/* Returns *&var and sets var to its type's zero. */
#define TAKE_GENERIC(var, type, nullvalue)                                                         \
    ({                                                                                             \
        type *_pvar_ = &(var);                                                                     \
        type _var_ = *_pvar_;                                                                      \
        type _nullvalue_ = nullvalue;                                                              \
        *_pvar_ = _nullvalue_;                                                                     \
        _var_;                                                                                     \
    })
#define TAKE_PTR(ptr) TAKE_GENERIC(ptr, __typeof__(ptr), NULL)
#define TAKE_FD(fd) TAKE_GENERIC(fd, int, -EBADF)

#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))

/* The struct of type `type` whose member `member` is at ptr. */
#define container_of(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void freep(void *p)
{
    free(*(void **)p);
}

/* For an fd that may be negative (not open); keeps errno. */
static inline void closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        (void)close(*fd);
        errno = saved;
    }
}
