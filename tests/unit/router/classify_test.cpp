#include "router/classify.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <iterator>
#include <ostream>
#include <string>
#include <vector>

namespace shardgate::router {
namespace {

using K = StatementKind;
constexpr Dialect PG = Dialect::Postgres;
constexpr Dialect MY = Dialect::Mysql;

// Expected flags of a row; every row checks all four exactly.
enum Flag : unsigned { kNone = 0, kLock = 1, kFn = 2, kRo = 4, kMulti = 8 };

struct Row {
  const char* sql;
  Dialect dialect;
  StatementKind kind;
  bool needs_primary;
  unsigned flags = kNone;
};

const char* kind_name(StatementKind k) {
  constexpr const char* kNames[] = {"Read",       "Write",     "Ddl",        "Begin",   "Commit",
                                    "Rollback",   "Savepoint", "SessionSet", "Prepare", "Execute",
                                    "Deallocate", "Listen",    "Utility",    "Empty"};
  return kNames[static_cast<int>(k)];
}

void PrintTo(const Row& row, std::ostream* os) {
  *os << (row.dialect == PG ? "[pg] " : "[mysql] ") << row.sql;
}

// clang-format off
const Row kRows[] = {
    // ---- PostgreSQL: plain reads, keywords hidden in strings/comments/quotes
    {"SELECT 1", PG, K::Read, false},
    {"select * from users where id = $1", PG, K::Read, false},
    {"  \n\tSELECT 1", PG, K::Read, false},
    {"SeLeCt 1", PG, K::Read, false},
    {"SELECT 'insert into x' FROM t", PG, K::Read, false},
    {"SELECT \"update\" FROM t", PG, K::Read, false},
    {"SELECT $$delete from t$$", PG, K::Read, false},
    {"SELECT $fn$ DROP TABLE t; $fn$ AS body", PG, K::Read, false},
    {"SELECT $a$ $b$ ; DELETE $b$ $a$", PG, K::Read, false},
    {"SELECT 1 -- ; DELETE FROM t", PG, K::Read, false},
    {"SELECT /* ; DELETE FROM t */ 1", PG, K::Read, false},
    {"/* leading */ SELECT 1", PG, K::Read, false},
    {"-- comment\nSELECT 1", PG, K::Read, false},
    {"SELECT /* outer /* nested */ still comment; DELETE FROM t */ 1", PG, K::Read, false},
    {"(SELECT 1) UNION (SELECT 2)", PG, K::Read, false},
    {"((SELECT 1))", PG, K::Read, false},
    {"( VALUES (1) )", PG, K::Read, false},
    {"VALUES (1), (2)", PG, K::Read, false},
    {"TABLE users", PG, K::Read, false},
    {"SHOW search_path", PG, K::Read, false},
    {"SHOW ALL", PG, K::Read, false},
    {"SELECT 'it''s' FROM t", PG, K::Read, false},
    {R"(SELECT E'it\'s; DELETE FROM t' FROM t)", PG, K::Read, false},
    {R"(SELECT e'\\' FROM t)", PG, K::Read, false},
    {R"(SELECT 'C:\' FROM t)", PG, K::Read, false},
    {R"(SELECT * FROM t WHERE a LIKE 'x\_y')", PG, K::Read, false},
    {R"(SELECT U&'d\0061t' FROM t)", PG, K::Read, false},
    {"SELECT \"weird \"\" name\" FROM t", PG, K::Read, false},
    {"SELECT 1 AS \"select\", 2 AS \"insert\"", PG, K::Read, false},
    {"SELECT $1::int", PG, K::Read, false},
    {"SELECT x->>'a' FROM t WHERE y ? 'k'", PG, K::Read, false},
    {"SELECT 1--2\n", PG, K::Read, false},
    {"SELECT/**/1", PG, K::Read, false},
    {"SELECT * FROM t WHERE a = $1 AND b = $2", PG, K::Read, false},
    {"SELECT * FROM t WHERE id IN (SELECT id FROM u)", PG, K::Read, false},
    {"SELECT '/*' FROM t", PG, K::Read, false},
    {"SELECT \"a\"\"b\" FROM \"My Table\"", PG, K::Read, false},
    {"SELECT xmin FROM t WHERE ctid = '(0,1)'", PG, K::Read, false},
    {"SELECT 1\r\n", PG, K::Read, false},
    {"SELECT a FROM t WHERE b = 'x' -- trailing\n", PG, K::Read, false},
    {"SELECT 1 /* shardgate:primary */", PG, K::Read, false},
    {"SELECT substring(name FROM 1 FOR 3) FROM t", PG, K::Read, false},
    {"SELECT overlay(a PLACING 'x' FROM 2 FOR 1) FROM t", PG, K::Read, false},
    {"SELECT nextval FROM t", PG, K::Read, false},
    {"SELECT 'nextval(1)' FROM t", PG, K::Read, false},
    {"SELECT count(*) FROM t", PG, K::Read, false},
    {"SELECT lower(name) FROM t", PG, K::Read, false},
    {"SELECT pg_sleep(1)", PG, K::Read, false},
    {"SELECT now(), random()", PG, K::Read, false},
    {"SELECT my_writer(1)", PG, K::Read, false},
    {"SELECT update FROM t", PG, K::Read, false},
    {"SELECT 1.5e-3, .5, 0x1F", PG, K::Read, false},
    {"SELECT a$b FROM t", PG, K::Read, false},
    {"SELECT * FROM t ORDER BY a FETCH FIRST 3 ROWS WITH TIES", PG, K::Read, false},
    // ---- EXPLAIN
    {"EXPLAIN SELECT * FROM t", PG, K::Read, false},
    {"EXPLAIN DELETE FROM t", PG, K::Read, false},
    {"EXPLAIN ANALYZE DELETE FROM t", PG, K::Write, true},
    {"explain analyze delete from t", PG, K::Write, true},
    {"EXPLAIN ANALYZE SELECT * FROM t", PG, K::Read, false},
    {"EXPLAIN (ANALYZE, BUFFERS) UPDATE t SET a = 1", PG, K::Write, true},
    {"EXPLAIN (ANALYZE false) DELETE FROM t", PG, K::Read, false},
    {"EXPLAIN (ANALYZE 0) DELETE FROM t", PG, K::Read, false},
    {"EXPLAIN (ANALYZE on) DELETE FROM t", PG, K::Write, true},
    {"EXPLAIN (FORMAT JSON) INSERT INTO t VALUES (1)", PG, K::Read, false},
    {"EXPLAIN (ANALYZE) SELECT * FROM t", PG, K::Read, false},
    {"EXPLAIN ANALYSE INSERT INTO t VALUES (1)", PG, K::Write, true},
    {"EXPLAIN ANALYZE VERBOSE SELECT nextval('s')", PG, K::Read, true, kFn},
    {"EXPLAIN SELECT nextval('s')", PG, K::Read, false},
    {"EXPLAIN ANALYZE SELECT * FROM t FOR UPDATE", PG, K::Read, true, kLock},
    {"EXPLAIN ANALYZE CREATE TABLE t2 AS SELECT 1", PG, K::Ddl, true},
    {"EXPLAIN ANALYZE EXECUTE q(1)", PG, K::Execute, true},
    {"EXPLAIN ANALYZE", PG, K::Utility, true},
    // ---- WITH
    {"WITH x AS (SELECT 1) SELECT * FROM x", PG, K::Read, false},
    {"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", PG, K::Write, true},
    {"WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 5) SELECT * FROM r", PG, K::Read, false},
    {"with u as (update t set a = 1 returning a) select * from u", PG, K::Write, true},
    {"WITH i AS (INSERT INTO t VALUES (1) RETURNING id) SELECT id FROM i", PG, K::Write, true},
    {"WITH m AS MATERIALIZED (SELECT * FROM t) SELECT * FROM m", PG, K::Read, false},
    {"WITH x AS (SELECT * FROM t FOR UPDATE) SELECT * FROM x", PG, K::Read, true, kLock},
    {"WITH x AS (SELECT * FROM t FOR NO KEY UPDATE) SELECT * FROM x", PG, K::Read, true, kLock},
    {"WITH x AS (SELECT 1) INSERT INTO t SELECT * FROM x", PG, K::Write, true},
    {"WITH x AS (SELECT 1) UPDATE t SET a = x.a FROM x", PG, K::Write, true},
    {"WITH x AS (SELECT 'delete' AS w) SELECT * FROM x", PG, K::Read, false},
    {"WITH x AS (SELECT 1) MERGE INTO t USING x ON true WHEN MATCHED THEN DELETE", PG, K::Write, true},
    {"WITH x AS (SELECT 1) SELECT * INTO t2 FROM x", PG, K::Write, true},
    {"WITH a AS (WITH b AS (DELETE FROM t RETURNING 1) SELECT * FROM b) SELECT * FROM a", PG, K::Write, true},
    {"(WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d)", PG, K::Write, true},
    {"WITH x AS (SELECT nextval('s')) SELECT * FROM x", PG, K::Read, true, kFn},
    // ---- locking reads
    {"SELECT * FROM t FOR UPDATE", PG, K::Read, true, kLock},
    {"SELECT * FROM t FOR NO KEY UPDATE", PG, K::Read, true, kLock},
    {"SELECT * FROM t FOR SHARE", PG, K::Read, true, kLock},
    {"SELECT * FROM t FOR KEY SHARE", PG, K::Read, true, kLock},
    {"SELECT * FROM t FOR UPDATE SKIP LOCKED", PG, K::Read, true, kLock},
    {"SELECT * FROM t FOR UPDATE OF t NOWAIT", PG, K::Read, true, kLock},
    {"select * from t for update", PG, K::Read, true, kLock},
    {"SELECT * FROM (SELECT * FROM t) s FOR UPDATE", PG, K::Read, true, kLock},
    {"(SELECT * FROM t FOR UPDATE)", PG, K::Read, true, kLock},
    {"SELECT * FROM t /* FOR UPDATE */", PG, K::Read, false},
    {"SELECT 'FOR UPDATE' FROM t", PG, K::Read, false},
    // ---- writing functions
    {"SELECT nextval('s')", PG, K::Read, true, kFn},
    {"SELECT NEXTVAL('s')", PG, K::Read, true, kFn},
    {"SELECT public.setval('s', 10)", PG, K::Read, true, kFn},
    {"SELECT pg_catalog.nextval('s')", PG, K::Read, true, kFn},
    {"SELECT \"nextval\"('s')", PG, K::Read, true, kFn},
    {"SELECT currval('s')", PG, K::Read, true, kFn},
    {"SELECT lastval()", PG, K::Read, true, kFn},
    {"SELECT pg_advisory_lock(1)", PG, K::Read, true, kFn},
    {"SELECT pg_try_advisory_xact_lock(1, 2)", PG, K::Read, true, kFn},
    {"select pg_advisory_xact_lock(42)", PG, K::Read, true, kFn},
    {"SELECT pg_advisory_unlock_all()", PG, K::Read, true, kFn},
    {"SELECT lo_create(0)", PG, K::Read, true, kFn},
    {"SELECT lo_import('/tmp/x')", PG, K::Read, true, kFn},
    {"SELECT lo_unlink(123)", PG, K::Read, true, kFn},
    {"SELECT pg_notify('ch', 'msg')", PG, K::Read, true, kFn},
    {"SELECT txid_current()", PG, K::Read, true, kFn},
    {"SELECT txid_current_if_assigned()", PG, K::Read, true, kFn},
    {"SELECT pg_current_xact_id()", PG, K::Read, true, kFn},
    {"SELECT set_config('search_path', 'x', false)", PG, K::Read, true, kFn},
    {"SELECT pg_terminate_backend(123)", PG, K::Read, true, kFn},
    {"SELECT pg_cancel_backend(123)", PG, K::Read, true, kFn},
    {"SELECT dblink_exec('conn', 'DELETE FROM t')", PG, K::Read, true, kFn},
    {"SELECT pg_switch_wal()", PG, K::Read, true, kFn},
    {"SELECT pg_create_restore_point('x')", PG, K::Read, true, kFn},
    {"SELECT pg_logical_emit_message(true, 'p', 'x')", PG, K::Read, true, kFn},
    {"SELECT pg_stat_reset()", PG, K::Read, true, kFn},
    {"SELECT nextval ('s')", PG, K::Read, true, kFn},
    {"SELECT nextval/* c */('s')", PG, K::Read, true, kFn},
    {"SELECT * FROM t WHERE id = currval('s')", PG, K::Read, true, kFn},
    {"VALUES (nextval('s'))", PG, K::Read, true, kFn},
    // ---- SELECT INTO / writes
    {"SELECT * INTO new_t FROM t", PG, K::Write, true},
    {"SELECT a INTO TEMP tmp FROM t", PG, K::Write, true},
    {"INSERT INTO t VALUES (1)", PG, K::Write, true},
    {"insert into t select * from u", PG, K::Write, true},
    {"INSERT INTO t VALUES (nextval('s'))", PG, K::Write, true, kFn},
    {"INSERT INTO t VALUES ('select') ON CONFLICT (id) DO UPDATE SET a = 1", PG, K::Write, true},
    {"UPDATE t SET a = 1", PG, K::Write, true},
    {"DELETE FROM t WHERE id = 1", PG, K::Write, true},
    {"MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN UPDATE SET a = s.a", PG, K::Write, true},
    {"UPSERT INTO t VALUES (1)", PG, K::Write, true},
    {"CALL proc(1)", PG, K::Write, true},
    {"LOCK TABLE t IN ACCESS EXCLUSIVE MODE", PG, K::Write, true},
    // ---- COPY
    {"COPY t FROM STDIN", PG, K::Write, true},
    {"COPY t (a, b) FROM '/tmp/f.csv' WITH (FORMAT csv)", PG, K::Write, true},
    {"copy t from stdin with (format binary)", PG, K::Write, true},
    {"COPY t TO STDOUT", PG, K::Read, false},
    {"COPY t (a, b) TO STDOUT WITH (FORMAT csv)", PG, K::Read, false},
    {"COPY (SELECT * FROM t) TO STDOUT WITH CSV", PG, K::Read, false},
    {"COPY t TO '/tmp/out.csv'", PG, K::Read, true},
    {"COPY (SELECT * FROM t) TO PROGRAM 'gzip > /tmp/x'", PG, K::Read, true},
    {"COPY (DELETE FROM t RETURNING *) TO STDOUT", PG, K::Write, true},
    {"COPY (SELECT nextval('s')) TO STDOUT", PG, K::Read, true, kFn},
    {"COPY (SELECT * FROM t FOR UPDATE) TO STDOUT", PG, K::Read, true, kLock},
    {"COPY t", PG, K::Utility, true},
    // ---- DDL
    {"CREATE TABLE t2 AS SELECT * FROM t", PG, K::Ddl, true},
    {"CREATE TABLE t (id int)", PG, K::Ddl, true},
    {"ALTER TABLE t ADD COLUMN b int", PG, K::Ddl, true},
    {"DROP TABLE t", PG, K::Ddl, true},
    {"DROP INDEX i", PG, K::Ddl, true},
    {"TRUNCATE t", PG, K::Ddl, true},
    {"GRANT SELECT ON t TO bob", PG, K::Ddl, true},
    {"REVOKE ALL ON t FROM bob", PG, K::Ddl, true},
    {"COMMENT ON TABLE t IS 'x'", PG, K::Ddl, true},
    {"REINDEX TABLE t", PG, K::Ddl, true},
    {"CLUSTER t USING t_pkey", PG, K::Ddl, true},
    {"REFRESH MATERIALIZED VIEW mv", PG, K::Ddl, true},
    {"REFRESH MATERIALIZED VIEW CONCURRENTLY mv", PG, K::Ddl, true},
    {"SECURITY LABEL ON TABLE t IS 'x'", PG, K::Ddl, true},
    {"CREATE INDEX CONCURRENTLY i ON t (a)", PG, K::Ddl, true},
    {"CREATE TABLE t (id bigint DEFAULT nextval('s'))", PG, K::Ddl, true, kFn},
    {"CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql", PG, K::Ddl, true},
    {"ALTER SYSTEM SET work_mem = '64MB'", PG, K::Ddl, true},
    {"IMPORT FOREIGN SCHEMA s FROM SERVER srv INTO local", PG, K::Ddl, true},
    {"REASSIGN OWNED BY a TO b", PG, K::Ddl, true},
    // ---- transactions
    {"BEGIN", PG, K::Begin, true},
    {"BEGIN READ ONLY", PG, K::Begin, false, kRo},
    {"begin transaction read only", PG, K::Begin, false, kRo},
    {"BEGIN ISOLATION LEVEL SERIALIZABLE, READ ONLY, DEFERRABLE", PG, K::Begin, false, kRo},
    {"BEGIN ISOLATION LEVEL REPEATABLE READ", PG, K::Begin, true},
    {"BEGIN READ WRITE", PG, K::Begin, true},
    {"BEGIN READ ONLY, READ WRITE", PG, K::Begin, true},
    {"START TRANSACTION READ ONLY", PG, K::Begin, false, kRo},
    {"START TRANSACTION ISOLATION LEVEL SERIALIZABLE READ ONLY", PG, K::Begin, false, kRo},
    {"START TRANSACTION", PG, K::Begin, true},
    {"BEGIN WORK", PG, K::Begin, true},
    {"COMMIT", PG, K::Commit, true},
    {"commit and chain", PG, K::Commit, true},
    {"END", PG, K::Commit, true},
    {"COMMIT PREPARED 'gid'", PG, K::Commit, true},
    {"PREPARE TRANSACTION 'gid'", PG, K::Commit, true},
    {"ROLLBACK", PG, K::Rollback, true},
    {"ABORT", PG, K::Rollback, true},
    {"ROLLBACK PREPARED 'gid'", PG, K::Rollback, true},
    {"ROLLBACK TO SAVEPOINT sp", PG, K::Savepoint, true},
    {"ROLLBACK TO sp", PG, K::Savepoint, true},
    {"ROLLBACK WORK TO SAVEPOINT sp", PG, K::Savepoint, true},
    {"ROLLBACK TRANSACTION TO sp", PG, K::Savepoint, true},
    {"SAVEPOINT sp", PG, K::Savepoint, true},
    {"RELEASE SAVEPOINT sp", PG, K::Savepoint, true},
    {"RELEASE sp", PG, K::Savepoint, true},
    // ---- SET / RESET
    {"SET search_path TO app", PG, K::SessionSet, true},
    {"SET SESSION statement_timeout = 1000", PG, K::SessionSet, true},
    {"SET LOCAL statement_timeout = 1000", PG, K::Utility, true},
    {"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", PG, K::Utility, true},
    {"SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY", PG, K::SessionSet, true},
    {"SET CONSTRAINTS ALL DEFERRED", PG, K::Utility, true},
    {"SET TIME ZONE 'UTC'", PG, K::SessionSet, true},
    {"set application_name = 'select'", PG, K::SessionSet, true},
    {"RESET ALL", PG, K::SessionSet, true},
    {"RESET search_path", PG, K::SessionSet, true},
    // ---- prepared statements, LISTEN, utilities
    {"PREPARE q AS SELECT * FROM t WHERE id = $1", PG, K::Prepare, false},
    {"PREPARE q (int) AS SELECT * FROM t WHERE id = $1", PG, K::Prepare, false},
    {"PREPARE w AS INSERT INTO t VALUES ($1)", PG, K::Prepare, true},
    {"PREPARE l AS SELECT * FROM t FOR UPDATE", PG, K::Prepare, true, kLock},
    {"PREPARE n AS SELECT nextval('s')", PG, K::Prepare, true, kFn},
    {"PREPARE x AS WITH d AS (DELETE FROM t RETURNING 1) SELECT * FROM d", PG, K::Prepare, true},
    {"PREPARE broken", PG, K::Prepare, true},
    {"EXECUTE q(1)", PG, K::Execute, true},
    {"DEALLOCATE q", PG, K::Deallocate, true},
    {"DEALLOCATE ALL", PG, K::Deallocate, true},
    {"LISTEN ch", PG, K::Listen, true},
    {"UNLISTEN *", PG, K::Listen, true},
    {"NOTIFY ch, 'x'", PG, K::Listen, true},
    {"DO $$ BEGIN PERFORM 1; END $$", PG, K::Utility, true},
    {"DO LANGUAGE plpgsql $body$ BEGIN DELETE FROM t; END $body$", PG, K::Utility, true},
    {"DISCARD ALL", PG, K::Utility, true},
    {"VACUUM ANALYZE t", PG, K::Utility, true},
    {"ANALYZE t", PG, K::Utility, true},
    {"CHECKPOINT", PG, K::Utility, true},
    {"LOAD 'auto_explain'", PG, K::Utility, true},
    {"DECLARE c CURSOR FOR SELECT * FROM t", PG, K::Utility, true},
    {"FETCH 10 FROM c", PG, K::Utility, true},
    {"FROBNICATE the widgets", PG, K::Utility, true},
    {"(INSERT INTO t VALUES (1))", PG, K::Utility, true},
    {"'SELECT 1'", PG, K::Utility, true},
    {"USE db", PG, K::Utility, true},
    // ---- empty text
    {"", PG, K::Empty, true},
    {"   \n\t ", PG, K::Empty, true},
    {"-- only a comment", PG, K::Empty, true},
    {"/* only */ /* comments */", PG, K::Empty, true},
    {";", PG, K::Empty, true},
    {" ; ;; ", PG, K::Empty, true},
    // ---- several statements
    {"SELECT 1;", PG, K::Read, false},
    {"SELECT 1;  ;  ", PG, K::Read, false},
    {"SELECT 1; -- done", PG, K::Read, false},
    {"SELECT 1; SELECT 2", PG, K::Read, false, kMulti},
    {"SELECT 1; DELETE FROM t", PG, K::Write, true, kMulti},
    {"DELETE FROM t; SELECT 1", PG, K::Write, true, kMulti},
    {"SELECT 1; SET search_path = x", PG, K::Read, true, kMulti},
    {"SELECT 1; CREATE TABLE t (a int)", PG, K::Read, true, kMulti},
    {"BEGIN; SELECT 1; COMMIT", PG, K::Begin, true, kMulti},
    {"BEGIN READ ONLY; SELECT 1; COMMIT", PG, K::Begin, true, kRo | kMulti},
    {"SELECT 1; SELECT nextval('s')", PG, K::Read, true, kFn | kMulti},
    {"SELECT 1 FROM t FOR UPDATE; SELECT 2", PG, K::Read, true, kLock | kMulti},
    {"SELECT 'a;b'; SELECT 2", PG, K::Read, false, kMulti},
    {"TABLE t; TABLE u", PG, K::Read, false, kMulti},
    {R"(SELECT E'\n' ; DELETE FROM t)", PG, K::Write, true, kMulti},
    {"SELECT '--' FROM t; DELETE FROM t", PG, K::Write, true, kMulti},
    {"SELECT 1; SELECT 'unterminated", PG, K::Utility, true},
    // ---- text the lexer cannot read: fail closed
    {"SELECT 'unterminated", PG, K::Utility, true},
    {"SELECT \"unterminated", PG, K::Utility, true},
    {"SELECT 1 /* unterminated", PG, K::Utility, true},
    {"SELECT /* nested /* */ 1", PG, K::Utility, true},
    {"SELECT $$unterminated", PG, K::Utility, true},
    {"SELECT $a$ body $b$", PG, K::Utility, true},
    {R"(SELECT E'a\')", PG, K::Utility, true},
    {"DELETE FROM t WHERE a = 'x", PG, K::Utility, true},
    // ---- standard_conforming_strings: a string ending in a backslash
    {R"(SELECT 'a\', ' ; DELETE FROM t; -- ')", PG, K::Write, true, kMulti},
    {R"(SELECT 'a\' || 'x(' FROM t)", PG, K::Read, false},
    {R"(SELECT 'a\', 'nextval(' FROM t)", PG, K::Read, false},

    // ---- MySQL: reads, quoting and comments
    {"SELECT 1", MY, K::Read, false},
    {"SELECT * FROM `orders` WHERE id = ?", MY, K::Read, false},
    {"SELECT `update` FROM t", MY, K::Read, false},
    {"SELECT \"delete from t\" FROM t", MY, K::Read, false},
    {"select `a``b` from `t`", MY, K::Read, false},
    {"SELECT * FROM t WHERE a = \"it\"\"s\"", MY, K::Read, false},
    {"SELECT 1 # ; DELETE FROM t", MY, K::Read, false},
    {"# comment\nSELECT 1", MY, K::Read, false},
    {"SELECT 1 -- ; DELETE FROM t", MY, K::Read, false},
    {"SELECT 1--1", MY, K::Read, false},
    {"SELECT 1 -- ", MY, K::Read, false},
    {"SELECT 1 --", MY, K::Read, false},
    {"SELECT /* /* */ 1", MY, K::Read, false},
    {"SELECT /*+ MAX_EXECUTION_TIME(1000) */ * FROM t", MY, K::Read, false},
    {"SELECT /*! STRAIGHT_JOIN */ * FROM t", MY, K::Read, false},
    {"SELECT 'a' 'b'", MY, K::Read, false},
    {"SELECT _utf8mb4'abc' COLLATE utf8mb4_bin", MY, K::Read, false},
    {"SELECT X'4142', 0x41, b'01'", MY, K::Read, false},
    {"SELECT 1e-5, .5, 1.5E+3", MY, K::Read, false},
    {"SELECT $col FROM t", MY, K::Read, false},
    {"SELECT * FROM t PARTITION (p0)", MY, K::Read, false},
    {"SELECT REPLACE(name, 'a', 'b') FROM t", MY, K::Read, false},
    {"SELECT INSERT(name, 1, 2, 'x') FROM t", MY, K::Read, false},
    {"SELECT SLEEP(1)", MY, K::Read, false},
    {"SELECT CONNECTION_ID()", MY, K::Read, false},
    {"SELECT @@version", MY, K::Read, false},
    {"SELECT a, COUNT(*) FROM t GROUP BY a WITH ROLLUP", MY, K::Read, false},
    {"(SELECT a FROM t) UNION (SELECT a FROM u) LIMIT 10", MY, K::Read, false},
    {"TABLE t", MY, K::Read, false},
    {"WITH x AS (SELECT 1) SELECT * FROM x", MY, K::Read, false},
    {R"(SELECT 'O\'Brien' FROM t)", MY, K::Read, false},
    {R"(SELECT 'a\\' FROM t)", MY, K::Read, false},
    {R"(SELECT 'a\'b')", MY, K::Read, false},
    // ---- MySQL locking reads, SELECT INTO, session-bound reads
    {"SELECT * FROM t FOR UPDATE", MY, K::Read, true, kLock},
    {"SELECT * FROM t LOCK IN SHARE MODE", MY, K::Read, true, kLock},
    {"select * from t lock in share mode", MY, K::Read, true, kLock},
    {"SELECT * FROM t FOR SHARE", MY, K::Read, true, kLock},
    {"SELECT * FROM t FOR UPDATE SKIP LOCKED", MY, K::Read, true, kLock},
    {"SELECT * FROM t WHERE note = '-- not a comment' FOR UPDATE", MY, K::Read, true, kLock},
    {"WITH cte AS (SELECT * FROM t) SELECT * FROM cte FOR UPDATE", MY, K::Read, true, kLock},
    {"SELECT a INTO @x FROM t", MY, K::Write, true},
    {"SELECT * FROM t INTO OUTFILE '/tmp/t.csv'", MY, K::Write, true},
    {"SELECT * INTO DUMPFILE '/tmp/x' FROM t", MY, K::Write, true},
    {"SELECT 1 FROM dual WHERE 'x' = 'x' INTO @a", MY, K::Write, true},
    {"SELECT SQL_CALC_FOUND_ROWS * FROM t LIMIT 10", MY, K::Read, true},
    {"SELECT @@identity", MY, K::Read, true},
    {"SELECT @@last_insert_id", MY, K::Read, true},
    {"SELECT @@session.identity", MY, K::Read, true},
    // ---- MySQL writing functions
    {"SELECT GET_LOCK('x', 10)", MY, K::Read, true, kFn},
    {"select get_lock ('x', 1)", MY, K::Read, true, kFn},
    {"SELECT RELEASE_LOCK('x')", MY, K::Read, true, kFn},
    {"SELECT release_all_locks()", MY, K::Read, true, kFn},
    {"SELECT IS_FREE_LOCK('x')", MY, K::Read, true, kFn},
    {"SELECT is_used_lock('x')", MY, K::Read, true, kFn},
    {"SELECT LAST_INSERT_ID()", MY, K::Read, true, kFn},
    {"SELECT FOUND_ROWS()", MY, K::Read, true, kFn},
    {"SELECT ROW_COUNT()", MY, K::Read, true, kFn},
    {"SELECT NEXTVAL(seq)", MY, K::Read, true, kFn},
    {"SELECT SETVAL(seq, 10)", MY, K::Read, true, kFn},
    {"SELECT LASTVAL(seq)", MY, K::Read, true, kFn},
    {"SELECT /*!99999 GET_LOCK('x', 1) */ 1", MY, K::Read, true, kFn},
    // ---- MySQL writes and DDL
    {"INSERT INTO t (a) VALUES (1) ON DUPLICATE KEY UPDATE a = a + 1", MY, K::Write, true},
    {"INSERT INTO t SELECT * FROM u FOR UPDATE", MY, K::Write, true},
    {"UPDATE t SET a = 1 WHERE id = 2", MY, K::Write, true},
    {"DELETE t1 FROM t1 JOIN t2 ON t1.id = t2.id", MY, K::Write, true},
    {"REPLACE INTO t VALUES (1)", MY, K::Write, true},
    {"REPLACE t SET a = 1", MY, K::Write, true},
    {"LOAD DATA INFILE '/tmp/x' INTO TABLE t", MY, K::Write, true},
    {"LOAD DATA LOCAL INFILE 'x.csv' INTO TABLE t", MY, K::Write, true},
    {"LOAD XML INFILE 'x.xml' INTO TABLE t", MY, K::Write, true},
    {"LOCK TABLES t READ", MY, K::Write, true},
    {"CALL p()", MY, K::Write, true},
    {"WITH x AS (SELECT 1) DELETE FROM t WHERE id IN (SELECT * FROM x)", MY, K::Write, true},
    {"CREATE TABLE t2 SELECT * FROM t", MY, K::Ddl, true},
    {"RENAME TABLE a TO b", MY, K::Ddl, true},
    {"TRUNCATE TABLE t", MY, K::Ddl, true},
    {"GRANT SELECT ON db.* TO 'u'@'%'", MY, K::Ddl, true},
    {"DROP TABLE IF EXISTS t", MY, K::Ddl, true},
    // ---- MySQL session, transactions, prepared statements
    {"USE shop", MY, K::SessionSet, true},
    {"SET NAMES utf8mb4", MY, K::SessionSet, true},
    {"SET autocommit = 0", MY, K::SessionSet, true},
    {"SET @x = 1", MY, K::SessionSet, true},
    {"SET SESSION sql_mode = 'ANSI'", MY, K::SessionSet, true},
    {"SET CHARACTER SET utf8", MY, K::SessionSet, true},
    {"SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", MY, K::SessionSet, true},
    {"SET GLOBAL max_connections = 100", MY, K::Utility, true},
    {"SET @@global.max_connections = 100", MY, K::Utility, true},
    {"SET PERSIST max_connections = 100", MY, K::Utility, true},
    {"SET TRANSACTION ISOLATION LEVEL READ COMMITTED", MY, K::Utility, true},
    {"SET PASSWORD = 'x'", MY, K::Utility, true},
    {"SET @x = GET_LOCK('a', 1)", MY, K::SessionSet, true, kFn},
    {"SET @a := (SELECT LAST_INSERT_ID())", MY, K::SessionSet, true, kFn},
    {"SET STATEMENT max_statement_time=1 FOR SELECT * FROM t", MY, K::Read, false},
    {"SET STATEMENT max_statement_time=1 FOR DELETE FROM t", MY, K::Write, true},
    {"SET STATEMENT max_statement_time=1", MY, K::Utility, true},
    {"/*!40101 SET NAMES utf8 */", MY, K::SessionSet, true},
    {"START TRANSACTION READ ONLY", MY, K::Begin, false, kRo},
    {"START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY", MY, K::Begin, false, kRo},
    {"START TRANSACTION WITH CONSISTENT SNAPSHOT", MY, K::Begin, true},
    {"START TRANSACTION READ WRITE", MY, K::Begin, true},
    {"BEGIN", MY, K::Begin, true},
    {"BEGIN WORK", MY, K::Begin, true},
    {"BEGIN NOT ATOMIC DELETE FROM t; END", MY, K::Utility, true, kMulti},
    {"COMMIT", MY, K::Commit, true},
    {"ROLLBACK", MY, K::Rollback, true},
    {"ROLLBACK TO SAVEPOINT sp", MY, K::Savepoint, true},
    {"SAVEPOINT sp", MY, K::Savepoint, true},
    {"RELEASE SAVEPOINT sp", MY, K::Savepoint, true},
    {"PREPARE s FROM 'SELECT * FROM t WHERE id = ?'", MY, K::Prepare, false},
    {"PREPARE s FROM 'DELETE FROM t WHERE id = ?'", MY, K::Prepare, true},
    {"PREPARE s FROM 'SELECT GET_LOCK(?, 1)'", MY, K::Prepare, true, kFn},
    {"PREPARE s FROM 'SELECT 1; SELECT 2'", MY, K::Prepare, true},
    {"PREPARE s FROM @sql", MY, K::Prepare, true},
    {R"(PREPARE s FROM 'SELECT * FROM t WHERE name = \'x\'')", MY, K::Prepare, true},
    {"EXECUTE s USING @a", MY, K::Execute, true},
    {"DEALLOCATE PREPARE s", MY, K::Deallocate, true},
    {"DROP PREPARE s", MY, K::Deallocate, true},
    // ---- MySQL SHOW / EXPLAIN
    {"SHOW TABLES", MY, K::Read, false},
    {"SHOW FULL TABLES FROM shop", MY, K::Read, false},
    {"SHOW VARIABLES LIKE 'max%'", MY, K::Read, false},
    {"SHOW CREATE TABLE t", MY, K::Read, false},
    {"SHOW WARNINGS", MY, K::Read, true},
    {"SHOW COUNT(*) ERRORS", MY, K::Read, true},
    {"SHOW MASTER STATUS", MY, K::Read, true},
    {"SHOW SLAVE STATUS", MY, K::Read, true},
    {"SHOW FULL PROCESSLIST", MY, K::Read, true},
    {"DESCRIBE t", MY, K::Read, false},
    {"DESC t", MY, K::Read, false},
    {"EXPLAIN SELECT * FROM t", MY, K::Read, false},
    {"EXPLAIN FORMAT=JSON SELECT * FROM t", MY, K::Read, false},
    {"EXPLAIN ANALYZE SELECT * FROM t", MY, K::Read, false},
    {"EXPLAIN ANALYZE DELETE FROM t", MY, K::Write, true},
    {"EXPLAIN ANALYZE SELECT * FROM t FOR UPDATE", MY, K::Read, true, kLock},
    {"EXPLAIN DELETE FROM t", MY, K::Read, false},
    {"EXPLAIN INTO @p FORMAT=JSON SELECT 1", MY, K::Read, true},
    // ---- MySQL utilities
    {"HANDLER t OPEN", MY, K::Utility, true},
    {"HANDLER t READ FIRST", MY, K::Utility, true},
    {"XA START 'x'", MY, K::Utility, true},
    {"XA COMMIT 'x'", MY, K::Utility, true},
    {"UNLOCK TABLES", MY, K::Utility, true},
    {"DO GET_LOCK('x', 1)", MY, K::Utility, true, kFn},
    {"DO SLEEP(1)", MY, K::Utility, true},
    {"ANALYZE TABLE t", MY, K::Utility, true},
    {"OPTIMIZE TABLE t", MY, K::Utility, true},
    {"FLUSH PRIVILEGES", MY, K::Utility, true},
    {"KILL 12", MY, K::Utility, true},
    {"RESET MASTER", MY, K::Utility, true},
    {"START SLAVE", MY, K::Utility, true},
    {"CHANGE MASTER TO MASTER_HOST='x'", MY, K::Utility, true},
    // ---- MySQL several statements, executable comments, escapes
    {"SELECT 1; ", MY, K::Read, false},
    {"SELECT * FROM t WHERE a = ?; SELECT 2", MY, K::Read, false, kMulti},
    {"SELECT 1--1; DELETE FROM t", MY, K::Write, true, kMulti},
    {"SELECT 1 /*!50000 ; DELETE FROM t */", MY, K::Write, true, kMulti},
    {"SELECT * FROM t WHERE id = 1 LOCK IN SHARE MODE; COMMIT", MY, K::Read, true, kLock | kMulti},
    {"INSERT INTO t VALUES ('a;b'); SELECT LAST_INSERT_ID()", MY, K::Write, true, kFn | kMulti},
    {R"(SELECT 'x\'; DELETE FROM t; -- ')", MY, K::Write, true, kMulti},
    {R"(SELECT "a\" ; DELETE FROM t; -- ")", MY, K::Write, true, kMulti},
    {R"(SELECT 'x\'get_lock(\'y' FROM t)", MY, K::Read, true, kFn},
    {"", MY, K::Empty, true},
    {"# only", MY, K::Empty, true},
    {"/*!*/", MY, K::Empty, true},
    {"SELECT 'unterminated", MY, K::Utility, true},
    {"SELECT 1 /* unterminated", MY, K::Utility, true},
    {"SELECT `unterminated FROM t", MY, K::Utility, true},
    {"/*!50000 SELECT 1", MY, K::Utility, true},
    {R"(SELECT 'a\')", MY, K::Utility, true},
    {"SELECT 1 /*!50000 /*!50000 2 */ */", MY, K::Utility, true},
};
// clang-format on

class ClassifyTable : public ::testing::TestWithParam<Row> {};

TEST_P(ClassifyTable, KindPrimaryAndFlags) {
  const Row& row = GetParam();
  const Statement s = analyze(row.sql, row.dialect, AnalyzeOptions{});
  EXPECT_STREQ(kind_name(s.kind), kind_name(row.kind));
  EXPECT_EQ(s.needs_primary, row.needs_primary);
  EXPECT_EQ(s.locking_read, (row.flags & kLock) != 0);
  EXPECT_EQ(s.writes_in_function, (row.flags & kFn) != 0);
  EXPECT_EQ(s.read_only_txn, (row.flags & kRo) != 0);
  EXPECT_EQ(s.multi_statement, (row.flags & kMulti) != 0);
}

INSTANTIATE_TEST_SUITE_P(Statements, ClassifyTable, ::testing::ValuesIn(kRows));

TEST(ClassifyTableSize, HasAtLeast250Rows) {
  EXPECT_GE(std::size(kRows), 250U);
}

// Invariant over the whole table: only reads, read-only BEGINs and PREPAREs
// of reads may skip the primary.
TEST(ClassifyInvariant, OnlyReadsMaySkipThePrimary) {
  for (const Row& row : kRows) {
    const Statement s = analyze(row.sql, row.dialect, AnalyzeOptions{});
    if (s.needs_primary) continue;
    const bool allowed =
        s.kind == K::Read || s.kind == K::Prepare || (s.kind == K::Begin && s.read_only_txn);
    EXPECT_TRUE(allowed) << row.sql;
    EXPECT_FALSE(s.locking_read || s.writes_in_function) << row.sql;
  }
}

TEST(ClassifyOptions, ExtraWritingFunctions) {
  AnalyzeOptions options;
  options.writing_functions = {"my_writer", "audit_log"};
  for (const char* sql : {"SELECT my_writer(1)", "SELECT app.MY_WRITER(1)", "SELECT audit_log()"}) {
    const Statement s = analyze(sql, PG, options);
    EXPECT_TRUE(s.writes_in_function) << sql;
    EXPECT_TRUE(s.needs_primary) << sql;
  }
  EXPECT_FALSE(analyze("SELECT my_writer FROM t", PG, options).needs_primary);
  EXPECT_FALSE(analyze("SELECT my_writer(1)", PG, AnalyzeOptions{}).needs_primary);
}

struct HintRow {
  const char* sql;
  Dialect dialect;
  HintRole role;
};

TEST(ClassifyHints, LeadingCommentsOnly) {
  const HintRow rows[] = {
      {"/* shardgate:primary */ SELECT 1", PG, HintRole::Primary},
      {"/*shardgate:replica*/SELECT 1", PG, HintRole::Replica},
      {"/*  ShardGate : Replica  */ SELECT 1", PG, HintRole::Replica},
      {"/*\tSHARDGATE:PRIMARY\n*/ SELECT 1", PG, HintRole::Primary},
      {"-- shardgate:primary\nSELECT 1", PG, HintRole::Primary},
      {"/* shardgate: replica, app=billing */ SELECT 1", PG, HintRole::Replica},
      {"/* other */ /* shardgate:replica */ SELECT 1", PG, HintRole::Replica},
      {"/* shardgate:replica */ /* shardgate:primary */ SELECT 1", PG, HintRole::Primary},
      {"/* shardgate:replica */ DELETE FROM t", PG, HintRole::Replica},
      {"/* shardgate:replica */", PG, HintRole::Replica},
      {"/* shardgate:primary */ SELECT 'unterminated", PG, HintRole::Primary},
      {"# shardgate:replica\nSELECT 1", MY, HintRole::Replica},
      {"SELECT /* shardgate:primary */ 1", PG, HintRole::None},
      {"SELECT 1 /* shardgate:replica */", PG, HintRole::None},
      {"/* shardgate:primaryx */ SELECT 1", PG, HintRole::None},
      {"/* shardgate primary */ SELECT 1", PG, HintRole::None},
      {"/* not shardgate:primary */ SELECT 1", PG, HintRole::None},
      {"SELECT '/* shardgate:primary */'", PG, HintRole::None},
      {"/*!50000 shardgate:primary */ SELECT 1", MY, HintRole::None},
  };
  for (const HintRow& row : rows) {
    const Statement s = analyze(row.sql, row.dialect, AnalyzeOptions{});
    EXPECT_EQ(static_cast<int>(s.hints.role), static_cast<int>(row.role)) << row.sql;
  }
}

TEST(ClassifyHints, CacheHint) {
  const struct {
    const char* sql;
    std::optional<std::uint32_t> ttl;
  } rows[] = {
      {"/* shardgate:cache */ SELECT 1", 0u},
      {"/* shardgate:cache ttl_ms=250 */ SELECT 1", 250u},
      {"/*ShardGate: CACHE TTL_MS = 5000*/ SELECT 1", 5000u},
      {"/* shardgate:cache ttl_ms=abc */ SELECT 1", std::nullopt},
      {"/* shardgate:cached */ SELECT 1", std::nullopt},
      {"SELECT /* shardgate:cache */ 1", std::nullopt},
      {"SELECT 1", std::nullopt},
  };
  for (const auto& row : rows)
    EXPECT_EQ(analyze(row.sql, PG, AnalyzeOptions{}).hints.cache_ttl_ms, row.ttl) << row.sql;
  const Statement both =
      analyze("/* shardgate:cache */ /* shardgate:primary */ SELECT 1", PG, AnalyzeOptions{});
  EXPECT_EQ(both.hints.role, HintRole::Primary);
  EXPECT_EQ(both.hints.cache_ttl_ms, 0u);
}

TEST(ClassifyHints, HintDoesNotChangeClassification) {
  const Statement s = analyze("/* shardgate:replica */ DELETE FROM t", PG, AnalyzeOptions{});
  EXPECT_EQ(s.kind, K::Write);
  EXPECT_TRUE(s.needs_primary);
}

struct TablesRow {
  const char* sql;
  Dialect dialect;
  std::vector<std::string> tables;
};

TEST(ClassifyTables, BestEffortNames) {
  const TablesRow rows[] = {
      {"SELECT * FROM users", PG, {"users"}},
      {"SELECT * FROM Public.Users u JOIN orders o ON u.id = o.uid",
       PG,
       {"public.users", "orders"}},
      {"SELECT * FROM \"MyTable\"", PG, {"MyTable"}},
      {"SELECT * FROM \"Sch\".\"T\"\"x\"", PG, {"Sch.T\"x"}},
      {"SELECT * FROM `Shop`.`Orders`", MY, {"shop.orders"}},
      {"INSERT INTO t (a) VALUES (1)", PG, {"t"}},
      {"UPDATE ONLY accounts SET x = 1", PG, {"accounts"}},
      {"UPDATE LOW_PRIORITY accounts SET x = 1", MY, {"accounts"}},
      {"DELETE FROM a USING b", PG, {"a"}},
      {"SELECT * FROM a, b AS bb, c", PG, {"a", "b", "c"}},
      {"SELECT extract(year FROM ts) FROM t", PG, {"t"}},
      {"SELECT * FROM generate_series(1, 3)", PG, {}},
      {"SELECT * FROM t WHERE id IN (SELECT id FROM u)", PG, {"t", "u"}},
      {"COPY t FROM STDIN", PG, {"t"}},
      {"TABLE t", PG, {"t"}},
      {"SELECT * FROM t FOR UPDATE OF t", PG, {"t"}},
      {"SELECT 'from x'", PG, {}},
      {"SELECT * FROM t; SELECT * FROM T", PG, {"t"}},
      {"CREATE TABLE IF NOT EXISTS s.t (id int)", PG, {"s.t"}},
      {"INSERT INTO t VALUES (1) ON DUPLICATE KEY UPDATE a = 1", MY, {"t"}},
      {"INSERT INTO t VALUES (1) ON CONFLICT (id) DO UPDATE SET a = 1", PG, {"t"}},
      {"SELECT a INTO @x FROM t", MY, {"t"}},
      {"SELECT * FROM t INTO OUTFILE '/tmp/x'", MY, {"t"}},
      {"PREPARE s FROM 'SELECT * FROM inner_t'", MY, {"inner_t"}},
      {"TRUNCATE TABLE logs", MY, {"logs"}},
      {"SELECT 'unterminated FROM t", PG, {}},
  };
  for (const TablesRow& row : rows) {
    const Statement s = analyze(row.sql, row.dialect, AnalyzeOptions{});
    EXPECT_EQ(s.tables, row.tables) << row.sql;
  }
}

TEST(ClassifyRobustness, DeepNestingFailsClosed) {
  std::string sql;
  for (int i = 0; i < 100; ++i) sql += "EXPLAIN ANALYZE ";
  sql += "SELECT 1";
  const Statement s = analyze(sql, PG, AnalyzeOptions{});
  EXPECT_EQ(s.kind, K::Utility);
  EXPECT_TRUE(s.needs_primary);
}

TEST(ClassifyRobustness, NulByteFailsClosed) {
  const std::string pg("SELECT 1\0; DELETE FROM t", 24);
  EXPECT_EQ(analyze(pg, PG, AnalyzeOptions{}).kind, K::Utility);
  const std::string mysql("SELECT '\0' FROM t", 17);
  EXPECT_EQ(analyze(mysql, MY, AnalyzeOptions{}).kind, K::Read);
  const std::string mysql_bare("SELECT 1 \0 FROM t", 17);
  EXPECT_TRUE(analyze(mysql_bare, MY, AnalyzeOptions{}).needs_primary);
}

TEST(ClassifyRobustness, EveryPrefixOfTheTableIsSafe) {
  // Truncated text must never turn a write into a replica-safe read.
  for (const Row& row : kRows) {
    const std::string_view sql = row.sql;
    for (std::size_t n = 0; n <= sql.size(); ++n) {
      const Statement s = analyze(sql.substr(0, n), row.dialect, AnalyzeOptions{});
      if (!s.needs_primary) {
        ASSERT_TRUE(s.kind == K::Read || s.kind == K::Prepare || s.kind == K::Begin)
            << sql.substr(0, n);
      }
    }
  }
}

}  // namespace
}  // namespace shardgate::router
