-- Add a status column, fill it from existing data, then make it required.
-- The NOT NULL check runs after the UPDATE inside the same transaction, so
-- it sees the filled column.
-- flotilla:options lock_timeout=2s statement_timeout=1min
-- flotilla:options allow=adding-not-nullable-field users is small; the scan is short
-- flotilla:up
ALTER TABLE users ADD COLUMN IF NOT EXISTS status text;
UPDATE users SET status = CASE WHEN active THEN 'active' ELSE 'inactive' END;
ALTER TABLE users ALTER COLUMN status SET NOT NULL;
-- flotilla:down
ALTER TABLE users DROP COLUMN status;
-- flotilla:verify
SELECT status FROM users LIMIT 0;
