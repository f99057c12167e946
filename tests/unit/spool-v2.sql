-- A spool of schema version 2 (release 0.2.0): tests/unit/spool-v1.sql taken through 0.2.0's
-- step 1 to 2 (src/spool/spool-schema.c at commit 35196dd), then job 3 held, job 1 due later with
-- a last attempt, job 10's lifetime restarted (a requeue), dumped with `sqlite3 spool.sqlite
-- .dump`. Row 6's odd bytes are written as SQL expressions, as in spool-v1.sql. The unit tests
-- load it as they load spool-v1.sql (tests/unit/test-spool-store.c).
PRAGMA foreign_keys=OFF;
BEGIN TRANSACTION;
CREATE TABLE jobs ( id INTEGER PRIMARY KEY AUTOINCREMENT, created_usec INTEGER NOT NULL, place_id TEXT NOT NULL, job_id TEXT NOT NULL, request_id TEXT NOT NULL DEFAULT '', attempts INTEGER NOT NULL DEFAULT 0, dead INTEGER NOT NULL DEFAULT 0, last_error TEXT NOT NULL DEFAULT '', due_usec INTEGER NOT NULL DEFAULT 0, held INTEGER NOT NULL DEFAULT 0, since_usec INTEGER NOT NULL DEFAULT 0, last_attempt_usec INTEGER NOT NULL DEFAULT 0);
INSERT INTO jobs VALUES(1,1700000000000000,'w-a','reviews:w-a:start','req-a',2,0,'worker answered 503',1900000000000000,0,0,1700000100000000);
INSERT INTO jobs VALUES(2,1700000001000000,'d-b','reviews:d-b:start','req-b',1,1,'worker answered 400: bad place',0,0,0,0);
INSERT INTO jobs VALUES(3,1700000002000000,'w-c','reviews:w-c:start','',0,0,'worker unreachable',0,1,0,0);
INSERT INTO jobs VALUES(4,1700000003000000,'dup-d','reviews:dup-d:start','req-d1',0,1,'worker answered 422: first',0,0,0,0);
INSERT INTO jobs VALUES(5,1700000004000000,'dup-d','reviews:dup-d:start','req-d2',1,1,'worker answered 422: second',0,0,0,0);
INSERT INTO jobs VALUES(6,1700000005000000,'w-e','reviews:w-e:start','req-'||char(27)||'[31mred',1,0,'worker answered 500: '||char(27)||']0;title'||char(7)||' '||char(127)||' '||CAST(X'FFFE' AS TEXT)||' end',0,0,0,0);
INSERT INTO jobs VALUES(7,1700000006000000,'dw-f','reviews:dw-f:start','req-f1',0,1,'worker answered 404',0,0,0,0);
INSERT INTO jobs VALUES(8,1700000007000000,'dw-f','reviews:dw-f:start','req-f2',0,0,'worker unreachable',0,0,0,0);
INSERT INTO jobs VALUES(10,1700000009000000,'w-h','reviews:w-h:start','req-h',0,0,'worker unreachable',0,0,1700000200000000,0);
INSERT INTO jobs VALUES(11,1700000010000000,'w-i','reviews:w-i:start','req-i',0,0,'worker unreachable',0,0,0,0);
DELETE FROM sqlite_sequence;
INSERT INTO sqlite_sequence VALUES('jobs',11);
CREATE UNIQUE INDEX jobs_waiting ON jobs (job_id) WHERE dead = 0;
CREATE INDEX jobs_by_state ON jobs (dead, id);
CREATE INDEX jobs_due ON jobs (dead, held, due_usec, id);
COMMIT;
PRAGMA application_id = 1095911251;
PRAGMA user_version = 2;
