/* SPDX-License-Identifier: MIT */
#include "credentials.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"

int credential_read(const char *name, char **ret)
{
    assert(name);
    assert(ret);

    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !dir[0])
        return -ENOENT;
    char path[4096];
    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return -ENAMETOOLONG;
    /* O_NONBLOCK: the open of a FIFO would wait for a writer, for ever at start; a socket's
     * open fails with ENXIO. */
    _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return errno == ENXIO ? -EBADFD : -errno;
    struct stat st;
    if (fstat(fd, &st) < 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EBADFD;
    _cleanup_free_ char *buf = malloc(CREDENTIAL_MAX + 1);
    if (!buf)
        return -ENOMEM;
    size_t have = 0;
    for (;;) {
        ssize_t k = read(fd, buf + have, CREDENTIAL_MAX + 1 - have);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -errno;
        if (k == 0 || (have += (size_t)k) > CREDENTIAL_MAX)
            break;
    }
    while (have > 0 && (buf[have - 1] == '\n' || buf[have - 1] == '\r' || buf[have - 1] == ' ' ||
                        buf[have - 1] == '\t'))
        have--;
    if (have == 0 || have > CREDENTIAL_MAX || memchr(buf, '\0', have))
        return -EINVAL;
    buf[have] = '\0';
    *ret = TAKE_PTR(buf);
    return 0;
}

const char *token_unsendable(const char *token)
{
    assert(token);

    if (token[0] == ' ')
        return "it starts with a blank";
    for (const unsigned char *p = (const unsigned char *)token; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            return "it holds a control byte";
        if (*p > 0x7e)
            return "it holds a byte outside printable ASCII";
    }
    return NULL;
}

static void closedirp(DIR **d)
{
    if (*d)
        (void)closedir(*d);
}

int credential_find_misspelt_token(char **ret)
{
    static const char *const lookalikes[] = {"api-token", "api_token", "apitoken", "token"};

    assert(ret);

    *ret = NULL;
    const char *dir = getenv("CREDENTIALS_DIRECTORY");
    if (!dir || !dir[0])
        return 0;
    _cleanup_(closedirp) DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    struct dirent *de;
    while ((errno = 0, de = readdir(d))) {
        if (strcmp(de->d_name, "api-token") == 0) /* a link to nowhere: not a misspelling */
            continue;
        for (size_t i = 0; i < ELEMENTSOF(lookalikes); i++)
            if (strcasecmp(de->d_name, lookalikes[i]) == 0) {
                *ret = strdup(de->d_name);
                return *ret ? 0 : -ENOMEM;
            }
    }
    return errno > 0 ? -errno : 0;
}

bool bearer_matches(const char *header, size_t header_len, const char *token, size_t token_len)
{
    if (header_len < 7 || strncasecmp(header, "Bearer ", 7) != 0)
        return false;
    const char *given = header + 7;
    size_t given_len = header_len - 7;
    while (given_len > 0 && *given == ' ') {
        given++;
        given_len--;
    }
    /* Every byte of the token is looked at, whatever the given length. */
    unsigned char diff = given_len != token_len;
    for (size_t i = 0; i < token_len; i++)
        diff |= (unsigned char)token[i] ^ (unsigned char)(i < given_len ? given[i] : 0);
    return diff == 0;
}
