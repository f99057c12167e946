/* SPDX-License-Identifier: MIT */
#pragma once

#include <sqlite3.h>
#include <stdbool.h>

/* The spool's file under spool-store.c: opening it, telling whether it is ours (the header, the
 * application_id, the user_version, the schema, PRAGMA quick_check), making a fresh one, migrating
 * one of an older schema version, moving a corrupt one aside; and SQLite's result codes as
 * negative errnos. */

#define SPOOL_APPLICATION_ID 0x41524753 /* "ARGS" */
/* The schema version this program reads and writes (PRAGMA user_version); 1 was release 0.1.0's,
 * 2 release 0.2.0's, 3 (each job's trace) 0.3.0's. Every version has its step in spool-schema.c. */
#define SPOOL_USER_VERSION 3

/* The errno (negative) for SQLite's result code rc on db (may be NULL): -ENOSPC, -EROFS, -EIO,
 * -EBADMSG, -EBUSY, -ENOMEM, -EACCES, …; a CANTOPEN in a directory we may not write (dir_fd, or
 * -1) is -EROFS. */
int spool_sqlite_errno(sqlite3 *db, int rc, int dir_fd);

/* Opens dir/file (made with its directory when create) in WAL mode with synchronous=FULL and a busy
 * timeout, and checks that it is a spool. Absent or empty: made when create, else -ENOENT. Not a
 * spool: -EBADMSG with *ret_why, or when repair it is moved aside (*ret_moved_aside) and a fresh
 * one made. Of a newer schema version: -EPROTO with *ret_why, never written nor moved aside. Of an
 * older one: migrated when create; else read as it is (*ret_version is then below
 * SPOOL_USER_VERSION: the jobs table reads with the current columns, the new ones at their
 * defaults, and cannot be written before spool_schema_upgrade()). *ret_why and *ret_moved_aside
 * are malloc'd or NULL, on success and on failure. */
int spool_schema_open(const char *dir, const char *file, bool create, bool repair, sqlite3 **ret,
                      int *ret_version, char **ret_moved_aside, char **ret_why);
/* Migrates a file of version (as spool_schema_open() gave it, read as it is) to
 * SPOOL_USER_VERSION, in one transaction of its own; on failure it is read as it was. Statements
 * prepared before see the new schema at their next step (SQLite prepares them again). */
int spool_schema_upgrade(sqlite3 *db, int dir_fd, int version, char **ret_why);
