/*
 * shape.c - the tables and columns a run of migrations leaves behind
 * (see shape.h), from the same parse trees the statement facts use.
 */
#include "lint/shape.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "lint/lint_internal.h"

static const char *
s_nz(const char *s)
{
    return s && *s ? s : NULL;
}

/*
 * Whether a name written one way names the same table as one written
 * another: the same table name, and the same schema unless one of them
 * is unqualified (which the search_path decides, not the text).
 */
static int
s_same_table(const fl_shape_item_t *it, const char *schema, const char *table)
{
    if (strcmp(it->table, table) != 0)
        return 0;
    return it->schema == NULL || schema == NULL ||
           strcmp(it->schema, schema) == 0;
}

static void
s_item_free(fl_shape_item_t *it)
{
    free(it->schema);
    free(it->table);
    free(it->column);
    free(it->origin);
}

static void
s_remove_at(fl_shape_t *s, size_t i)
{
    s_item_free(&s->items[i]);
    memmove(&s->items[i], &s->items[i + 1],
            (s->count - i - 1) * sizeof(s->items[0]));
    s->count--;
}

/* Removes the table (column NULL) with all its columns, or one column. */
static void
s_remove(fl_shape_t *s, const char *schema, const char *table,
         const char *column)
{
    for (size_t i = s->count; i-- > 0;) {
        fl_shape_item_t *it = &s->items[i];
        if (!s_same_table(it, schema, table))
            continue;
        if (column == NULL ||
            (it->column && strcmp(it->column, column) == 0))
            s_remove_at(s, i);
    }
}

static void
s_add(fl_shape_t *s, const char *schema, const char *table,
      const char *column, const char *origin)
{
    fl_shape_item_t *it;

    s_remove(s, schema, table, column);
    s->items = fl_reallocarray(s->items, s->count + 1, sizeof(s->items[0]));
    it = &s->items[s->count++];
    it->schema = schema ? fl_strdup(schema) : NULL;
    it->table = fl_strdup(table);
    it->column = column ? fl_strdup(column) : NULL;
    it->origin = fl_strdup(origin);
}

/*
 * Renames a table (new_schema NULL: keeps its schema) or moves it.  The
 * names it leaves come from the migration that renamed it (origin).
 */
static void
s_rename_table(fl_shape_t *s, const char *schema, const char *table,
               const char *new_schema, const char *new_table,
               const char *origin)
{
    for (size_t i = 0; i < s->count; i++) {
        fl_shape_item_t *it = &s->items[i];
        if (!s_same_table(it, schema, table))
            continue;
        if (new_table) {
            free(it->table);
            it->table = fl_strdup(new_table);
        }
        if (new_schema) {
            free(it->schema);
            it->schema = fl_strdup(new_schema);
        }
        free(it->origin);
        it->origin = fl_strdup(origin);
    }
}

static void
s_rename_column(fl_shape_t *s, const char *schema, const char *table,
                const char *column, const char *new_column, const char *origin)
{
    for (size_t i = 0; i < s->count; i++) {
        fl_shape_item_t *it = &s->items[i];
        if (s_same_table(it, schema, table) && it->column &&
            strcmp(it->column, column) == 0) {
            free(it->column);
            it->column = fl_strdup(new_column);
            free(it->origin);
            it->origin = fl_strdup(origin);
        }
    }
}

static int
s_is_temp(const PgQuery__RangeVar *rv)
{
    return rv->relpersistence && rv->relpersistence[0] == 't';
}

static void
s_create(fl_shape_t *s, const PgQuery__CreateStmt *cs, const char *origin)
{
    const PgQuery__RangeVar *rv = cs->relation;

    if (rv == NULL || s_nz(rv->relname) == NULL || s_is_temp(rv))
        return;
    /* A partition or a typed table: its columns come from elsewhere. */
    s_add(s, s_nz(rv->schemaname), rv->relname, NULL, origin);
    for (size_t i = 0; i < cs->n_table_elts; i++) {
        const PgQuery__Node *e = cs->table_elts[i];
        if (e && e->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF &&
            s_nz(e->column_def->colname))
            s_add(s, s_nz(rv->schemaname), rv->relname,
                  e->column_def->colname, origin);
    }
}

static void
s_alter(fl_shape_t *s, const PgQuery__AlterTableStmt *as, const char *origin)
{
    const PgQuery__RangeVar *rv = as->relation;

    if (rv == NULL || s_nz(rv->relname) == NULL ||
        as->objtype != PG_QUERY__OBJECT_TYPE__OBJECT_TABLE)
        return;
    for (size_t i = 0; i < as->n_cmds; i++) {
        const PgQuery__Node *n = as->cmds[i];
        const PgQuery__AlterTableCmd *c;

        if (n == NULL || n->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_CMD)
            continue;
        c = n->alter_table_cmd;
        if (c->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn && c->def &&
            c->def->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF &&
            s_nz(c->def->column_def->colname))
            s_add(s, s_nz(rv->schemaname), rv->relname,
                  c->def->column_def->colname, origin);
        else if (c->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_DropColumn &&
                 s_nz(c->name))
            s_remove(s, s_nz(rv->schemaname), rv->relname, c->name);
    }
}

static void
s_rename(fl_shape_t *s, const PgQuery__RenameStmt *rs, const char *origin)
{
    const PgQuery__RangeVar *rv = rs->relation;

    if (rv == NULL || s_nz(rv->relname) == NULL || s_nz(rs->newname) == NULL)
        return;
    if (rs->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE)
        s_rename_table(s, s_nz(rv->schemaname), rv->relname, NULL,
                       rs->newname, origin);
    else if (rs->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN &&
             rs->relation_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE &&
             s_nz(rs->subname))
        s_rename_column(s, s_nz(rv->schemaname), rv->relname, rs->subname,
                        rs->newname, origin);
}

static void
s_drop(fl_shape_t *s, const PgQuery__DropStmt *ds)
{
    if (ds->remove_type != PG_QUERY__OBJECT_TYPE__OBJECT_TABLE)
        return;
    for (size_t i = 0; i < ds->n_objects; i++) {
        const PgQuery__Node *o = ds->objects[i];
        const PgQuery__List *l;
        const char *parts[3] = {NULL, NULL, NULL};

        if (o == NULL || o->node_case != PG_QUERY__NODE__NODE_LIST)
            continue;
        l = o->list;
        if (l->n_items == 0 || l->n_items > 3)
            continue;
        for (size_t k = 0; k < l->n_items; k++) {
            if (l->items[k] == NULL ||
                l->items[k]->node_case != PG_QUERY__NODE__NODE_STRING)
                goto next;
            parts[k] = l->items[k]->string->sval;
        }
        /* [catalog.]schema.table, or table */
        if (l->n_items == 1)
            s_remove(s, NULL, parts[0], NULL);
        else
            s_remove(s, parts[l->n_items - 2], parts[l->n_items - 1], NULL);
    next:;
    }
}

static void
s_statement(fl_shape_t *s, const PgQuery__Node *n, const char *origin)
{
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_CREATE_STMT:
        s_create(s, n->create_stmt, origin);
        break;
    case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT: {
        const PgQuery__CreateTableAsStmt *c = n->create_table_as_stmt;
        if (c->objtype == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE && c->into &&
            c->into->rel && s_nz(c->into->rel->relname) &&
            !s_is_temp(c->into->rel))
            s_add(s, s_nz(c->into->rel->schemaname), c->into->rel->relname,
                  NULL, origin);
        break;
    }
    case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
        s_alter(s, n->alter_table_stmt, origin);
        break;
    case PG_QUERY__NODE__NODE_RENAME_STMT:
        s_rename(s, n->rename_stmt, origin);
        break;
    case PG_QUERY__NODE__NODE_ALTER_OBJECT_SCHEMA_STMT: {
        const PgQuery__AlterObjectSchemaStmt *a = n->alter_object_schema_stmt;
        if (a->object_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE &&
            a->relation && s_nz(a->relation->relname) && s_nz(a->newschema))
            s_rename_table(s, s_nz(a->relation->schemaname),
                           a->relation->relname, a->newschema, NULL,
                           origin);
        break;
    }
    case PG_QUERY__NODE__NODE_DROP_STMT:
        s_drop(s, n->drop_stmt);
        break;
    default:
        break;
    }
}

int
fl_shape_add(fl_shape_t *shape, const char *sql, const char *origin,
             fl_error_t *err)
{
    fl_stmt_list_t stmts;
    fl_lint_tree_t tree;
    int rc;

    assert(shape && sql && origin);
    rc = fl_facts_analyze_tree(&stmts, &tree, sql, 0, 150000, err);
    if (rc != 0) {
        fl_error_prefix(err, "%s: ", origin);
        return rc;
    }
    for (size_t i = 0; i < tree.count; i++)
        if (tree.nodes[i])
            s_statement(shape, tree.nodes[i], origin);
    fl_lint_tree_release(&tree);
    fl_stmt_list_release(&stmts);
    return 0;
}

void
fl_shape_release(fl_shape_t *shape)
{
    if (shape == NULL)
        return;
    for (size_t i = 0; i < shape->count; i++)
        s_item_free(&shape->items[i]);
    fl_free(&shape->items);
    shape->count = 0;
}
