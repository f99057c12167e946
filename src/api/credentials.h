/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define CREDENTIAL_MAX 4096

/* Reads systemd credential `name` from $CREDENTIALS_DIRECTORY (LoadCredential=): its content
 * without trailing whitespace. -ENOENT when there is no such credential (or no directory),
 * -EBADFD when it is not a regular file (a FIFO, a directory: the open does not wait for a
 * writer), -EINVAL when it is empty, larger than CREDENTIAL_MAX or holds a NUL byte, another
 * negative errno on I/O errors. A symbolic link is followed (Kubernetes mounts a Secret's keys
 * as links). */
int credential_read(const char *name, char **ret);

/* Why no client could ever send this token as "Authorization: Bearer <token>", or NULL when
 * one can: the bearer check skips the blanks before it, and a header value has no control
 * bytes and, from most clients, nothing outside printable ASCII. */
const char *token_unsendable(const char *token);

/* A file in $CREDENTIALS_DIRECTORY named like a misspelt api-token (api_token, apitoken, token,
 * API-Token…, case-insensitively), for a warning when api-token itself is absent: 0 and the
 * name in *ret (malloc'd), or NULL when there is none; a negative errno when the directory
 * cannot be read. */
int credential_find_misspelt_token(char **ret);

/* Whether an Authorization header value is "Bearer <token>" for this token. The comparison of
 * the token takes the same time whatever the first differing byte. */
bool bearer_matches(const char *header, size_t header_len, const char *token, size_t token_len);
