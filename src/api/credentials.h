/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#define CREDENTIAL_MAX 4096

/* Reads systemd credential `name` from $CREDENTIALS_DIRECTORY (LoadCredential=): its content
 * without trailing whitespace. -ENOENT when there is no such credential (or no directory),
 * -EINVAL when it is empty or larger than CREDENTIAL_MAX, another negative errno on I/O errors. */
int credential_read(const char *name, char **ret);

/* Whether an Authorization header value is "Bearer <token>" for this token. The comparison of
 * the token takes the same time whatever the first differing byte. */
bool bearer_matches(const char *header, size_t header_len, const char *token, size_t token_len);
