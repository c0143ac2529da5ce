/*
 * compare.c - definitions compared on their parse trees (see compare.h).
 *
 * libpg_query renders a parse tree as JSON; the trees of two statements
 * are compared after the fields that do not define the object (token
 * locations, the name, the table, CONCURRENTLY, IF NOT EXISTS) are taken
 * out and defaults spelt the same way.
 */
#include "lint/compare.h"

#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <pg_query.h>

/* Removes every "location" member, at any depth. */
static void
s_strip_locations(json_t *v)
{
    const char *key = NULL;
    json_t *item = NULL;
    void *tmp = NULL;
    size_t i;

    if (json_is_object(v)) {
        json_object_foreach_safe(v, tmp, key, item) {
            if (strcmp(key, "location") == 0)
                json_object_del(v, key);
            else
                s_strip_locations(item);
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, item)
            s_strip_locations(item);
    }
}

/* The IndexStmt of sql, normalised; a new reference, or NULL. */
static json_t *
s_index(const char *sql, fl_error_t *err)
{
    PgQueryParseResult r = pg_query_parse(sql);
    json_t *root = NULL, *stmts = NULL, *index = NULL;

    if (r.error != NULL) {
        FL_ERR(err, FL_EINVAL, "could not parse \"%.200s\": %s", sql,
               r.error->message);
        pg_query_free_parse_result(r);
        return NULL;
    }
    root = json_loads(r.parse_tree, 0, NULL);
    pg_query_free_parse_result(r);
    stmts = json_object_get(root, "stmts");
    if (json_array_size(stmts) == 1)
        index = json_object_get(json_object_get(json_array_get(stmts, 0),
                                                "stmt"), "IndexStmt");
    if (index == NULL) {
        FL_ERR(err, FL_EINVAL, "\"%.200s\" is not one CREATE INDEX statement",
               sql);
        json_decref(root);
        return NULL;
    }
    json_incref(index);
    json_decref(root);
    json_object_del(index, "idxname");
    json_object_del(index, "relation");
    json_object_del(index, "concurrent");
    json_object_del(index, "if_not_exists");
    s_strip_locations(index);
    if (json_object_get(index, "accessMethod") == NULL)
        json_object_set_new(index, "accessMethod", json_string("btree"));
    return index;
}

int
fl_compare_index_definitions(const char *a, const char *b, int *same,
                             fl_error_t *err)
{
    json_t *ia = NULL, *ib = NULL;
    int rc = 0;

    *same = 0;
    if ((ia = s_index(a, err)) == NULL || (ib = s_index(b, err)) == NULL) {
        rc = FL_EINVAL;
        goto cleanup;
    }
    *same = json_equal(ia, ib);
cleanup:
    json_decref(ia);
    json_decref(ib);
    return rc;
}
