/* SPDX-License-Identifier: MIT */
#pragma once

/* The operators' command, `argus-orchestrator spool status | list [--dead] | requeue-dead
 * [--spool-dir DIR]`: argv[0] is "spool". The spool is in DIR, else $SPOOL_DIR, else
 * $STATE_DIRECTORY, else /var/lib/argus-orchestrator; it is never made or repaired here, and may
 * be in use by the service meanwhile. Returns the exit status: 0; 1 on an error, said on stderr;
 * 64 (EX_USAGE) on a usage error. */
int spool_cli_main(int argc, char **argv);
