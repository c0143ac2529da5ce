/*
 * keys.h - the foreign keys a rollback must leave holding.
 *
 * A rollback writes rows with foreign keys off (the restore, as
 * pg_restore --disable-triggers does) and re-creates constraints the
 * migration dropped; either can meet rows the application changed since
 * the migration.  These checks find the rows that break a key and refuse
 * with the count and a sample, in words an operator can act on, before
 * anything commits.
 */
#ifndef FL_AGENT_KEYS_H
#define FL_AGENT_KEYS_H

#include "agent/pg.h"
#include "common/error.h"

/*
 * Each validated foreign key with one of tables (a JSON array of
 * qualified names, the tables the restore wrote) on either side must
 * hold; when only the referencing side is among them, only the rows this
 * transaction wrote are read.  FL_EFAIL, "the restore leaves N rows of
 * ... referring to no row of ...", with a sample, when one does not.
 */
int fl_keys_check_restored(fl_pg_t *pg, const char *tables,
                           fl_error_t *err) FL_NODISCARD;

/*
 * The same for one foreign key, name on table (qualified, quoted as SQL),
 * made NOT VALID by the rollback that re-creates it: every row is read.
 */
int fl_keys_check_one(fl_pg_t *pg, const char *table, const char *name,
                      fl_error_t *err) FL_NODISCARD;

#endif
