-- Drop a column that still holds data.  Flotilla backs the table up first,
-- so a rollback re-creates the column (down) and puts every value back.
-- flotilla:options lock_timeout=2s statement_timeout=1min
-- flotilla:options allow=ban-drop-column no application version reads legacy_note any more
-- flotilla:up
ALTER TABLE users DROP COLUMN legacy_note;
-- flotilla:down
ALTER TABLE users ADD COLUMN legacy_note text;
