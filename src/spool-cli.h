/* SPDX-License-Identifier: MIT */
#pragma once

/* The operators' command, `argus-orchestrator spool status | list [--dead] | show ID |
 * delete ID... | requeue ID... | requeue-dead | flush | hold ID... | release ID... [--json]
 * [--spool-dir DIR]`: argv[0] is "spool". The spool is in DIR, else $SPOOL_DIR, else
 * $STATE_DIRECTORY, else /var/lib/argus-orchestrator; it is never made or repaired here, and may
 * be in use by the service meanwhile. A spool of release 0.1.0 is read as it is, and migrated by
 * the first command that changes it. Returns the exit status: 0; 1 on an error, or an ID that
 * does not exist, said on stderr; 64 (EX_USAGE) on a usage error. */
int spool_cli_main(int argc, char **argv);
