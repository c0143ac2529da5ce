/*
 * shape.h - the tables and columns a run of migrations leaves behind, read
 * from their parse trees: what `flotilla baseline` expects to find in a
 * database whose history already ran ("does it look migrated?").
 *
 * Migrations are added in the order they ran; each statement updates the
 * expected shape as PostgreSQL would: CREATE TABLE (its columns),
 * CREATE TABLE AS and SELECT INTO (the table), ALTER TABLE ADD COLUMN and
 * DROP COLUMN, RENAME of a table or a column, ALTER TABLE SET SCHEMA, DROP
 * TABLE.  Temporary tables are left out.  What the text does not say
 * (DO blocks, functions, dynamic SQL, columns of CREATE TABLE AS, LIKE,
 * inheritance) is not expected: the shape is a lower bound of what must
 * exist, never a claim that nothing else does.  Names are as PostgreSQL
 * folds them (the parser's), schema NULL when the statement did not
 * qualify the name.
 *
 * Thread safety: no global state.
 */
#ifndef FL_LINT_SHAPE_H
#define FL_LINT_SHAPE_H

#include <stddef.h>

#include "common/error.h"

typedef struct {
    char *schema;  /* NULL when unqualified */
    char *table;
    char *column;  /* NULL: the table itself */
    char *origin;  /* the migration that created it, or gave it the name
                      it has (its label) */
} fl_shape_item_t;

typedef struct {
    fl_shape_item_t *items; /* tables before their columns, in the order
                               they were created */
    size_t count;
} fl_shape_t;

#define FL_SHAPE_INIT {NULL, 0}

/*
 * Updates shape with the statements of sql, the up text of the migration
 * called origin (copied; named in fl_shape_item_t.origin).  Statements
 * that do not parse change nothing.  Fails only when the text cannot be
 * split at all: FL_EINVAL naming origin.
 */
int fl_shape_add(fl_shape_t *shape, const char *sql, const char *origin,
                 fl_error_t *err) FL_NODISCARD;

void fl_shape_release(fl_shape_t *shape);

#endif
