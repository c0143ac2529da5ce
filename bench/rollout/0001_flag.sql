-- flotilla:options allow=require-concurrent-index-creation 1,000 rows
-- flotilla:options allow=require-concurrent-index-deletion 1,000 rows
-- flotilla:up
ALTER TABLE items ADD COLUMN flag int NOT NULL DEFAULT 7;
CREATE INDEX items_flag ON items (flag);
UPDATE items SET v = v + 1;
-- flotilla:down
DROP INDEX items_flag;
ALTER TABLE items DROP COLUMN flag;
