/*
 * compare.h - whether two statements define the same object, compared on
 * their PostgreSQL 15 parse trees rather than their text, so spacing,
 * case, parentheses and the spelling of defaults do not matter.
 */
#ifndef FL_LINT_COMPARE_H
#define FL_LINT_COMPARE_H

#include "common/error.h"

/*
 * Sets *same to 1 when a and b, each one CREATE [UNIQUE] INDEX statement,
 * define the same index: the same method, key columns and expressions
 * with their collations, operator classes and ordering, INCLUDE columns,
 * predicate, storage parameters, uniqueness and NULLS [NOT] DISTINCT.
 * The index's name, its table (the caller compares what the names
 * resolve to), CONCURRENTLY and IF NOT EXISTS are not compared.  An
 * expression PostgreSQL writes back with a cast the statement left
 * implicit compares different: the answer errs on "not the same".
 * FL_EINVAL when either is not one CREATE INDEX statement.  Thread safe.
 */
int fl_compare_index_definitions(const char *a, const char *b, int *same,
                                 fl_error_t *err) FL_NODISCARD;

#endif
