-- Build an index without blocking writes: CONCURRENTLY cannot run inside a
-- transaction, so this migration runs statement by statement and resumes
-- where it stopped if it fails.
-- flotilla:options no-transaction lock_timeout=2s statement_timeout=10min
-- flotilla:up
CREATE INDEX CONCURRENTLY IF NOT EXISTS users_status_idx ON users (status);
-- flotilla:down
DROP INDEX CONCURRENTLY IF EXISTS users_status_idx;
