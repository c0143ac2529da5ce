-- Unsafe: some users have no email, so SET NOT NULL would fail halfway
-- through a deploy.  Flotilla counts the NULLs first and refuses.
-- flotilla:up
ALTER TABLE users ALTER COLUMN email SET NOT NULL;
-- flotilla:down
ALTER TABLE users ALTER COLUMN email DROP NOT NULL;
