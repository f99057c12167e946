/* SPDX-License-Identifier: MIT */
#pragma once

/* Writes a whole JSON error answer (README, "API": the error body) straight to a client socket
 * that h2o does not serve, or no longer will, and ends our side of it. Then it reads what the
 * client has sent and nobody will read, a bounded amount: closing a socket with unread input
 * sends a reset, which can overtake the answer. Best effort on a non-blocking socket; the
 * caller closes fd (or has h2o close it). The reason phrase is http_reason_phrase(status). */
void raw_answer_error(int fd, int status, const char *message);
/* The same with a Retry-After of retry_after_sec seconds (none for 0). */
void raw_answer_error_retry(int fd, int status, const char *message, unsigned retry_after_sec);
