-- A spool written by release 0.1.0 (schema version 1): `sqlite3 spool.sqlite .dump` of a file
-- made with that release's store (commit c0acbd4's src/spool-store.c): six jobs waiting (w-a
-- with 2 attempts, w-e with odd bytes in its request id and last error, dw-f whose job id also
-- has a dead letter), four dead letters (dup-d twice), id 9 delivered (sqlite_sequence 11).
-- Row 6's request_id and last_error are written as SQL expressions (char(), a blob cast to text)
-- instead of the dump's raw control and non-UTF-8 bytes; the bytes are the same. .dump leaves
-- out the two pragmas of the header: they are the last lines. The unit tests load it with
-- sqlite3_exec into a WAL file (tests/unit/test-spool-store.c, test-spool-cli.c).
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE jobs ( id INTEGER PRIMARY KEY AUTOINCREMENT, created_usec INTEGER NOT NULL, place_id TEXT NOT NULL, job_id TEXT NOT NULL, request_id TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0, dead INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '');
INSERT INTO jobs VALUES(1,1700000000000000,'w-a','reviews:w-a:start','req-a',2,0,'worker answered 503');
INSERT INTO jobs VALUES(2,1700000001000000,'d-b','reviews:d-b:start','req-b',1,1,'worker answered 400: bad place');
INSERT INTO jobs VALUES(3,1700000002000000,'w-c','reviews:w-c:start','',0,0,'worker unreachable');
INSERT INTO jobs VALUES(4,1700000003000000,'dup-d','reviews:dup-d:start','req-d1',0,1,'worker answered 422: first');
INSERT INTO jobs VALUES(5,1700000004000000,'dup-d','reviews:dup-d:start','req-d2',1,1,'worker answered 422: second');
INSERT INTO jobs VALUES(6,1700000005000000,'w-e','reviews:w-e:start','req-'||char(27)||'[31mred',1,0,'worker answered 500: '||char(27)||']0;title'||char(7)||' '||char(127)||' '||CAST(X'FFFE' AS TEXT)||' end');
INSERT INTO jobs VALUES(7,1700000006000000,'dw-f','reviews:dw-f:start','req-f1',0,1,'worker answered 404');
INSERT INTO jobs VALUES(8,1700000007000000,'dw-f','reviews:dw-f:start','req-f2',0,0,'worker unreachable');
INSERT INTO jobs VALUES(10,1700000009000000,'w-h','reviews:w-h:start','req-h',0,0,'worker unreachable');
INSERT INTO jobs VALUES(11,1700000010000000,'w-i','reviews:w-i:start','req-i',0,0,'worker unreachable');
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('jobs',11);
CREATE UNIQUE INDEX jobs_waiting ON jobs (job_id) WHERE dead = 0;
CREATE INDEX jobs_by_state ON jobs (dead, id);
COMMIT;
PRAGMA application_id = 1095911251;
PRAGMA user_version = 1;
