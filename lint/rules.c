/*
 * rules.c - the statement rules: one pass over the statements of a file in
 * order, with the little state the rules need (explicit transaction, tables
 * created in the file, NOT VALID constraints and enum values added in the
 * current transaction, validated IS NOT NULL checks, timeouts set).
 *
 * "In a transaction" means inside BEGIN ... COMMIT, or anywhere when the
 * runner wraps the file in one (fl_lint_options_t.assume_in_transaction,
 * which flotilla sets for migrations without no-transaction).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "lint/lint_internal.h"

typedef struct {
    char *key; /* "table|constraint" */
    char *column;
} s_pair_t;

typedef struct {
    fl_lint_run_t *run;
    int pgv;
    size_t cur;                 /* statement index */
    int in_tx;                  /* inside an explicit BEGIN */
    size_t begin_stmt;
    fl_lint_set_t created;      /* table keys created in the file */
    fl_lint_set_t notvalid_tx;  /* "table|name" added NOT VALID in this tx */
    fl_lint_set_t notnull;      /* "table|column" proven by a valid CHECK */
    s_pair_t *pending;          /* NOT VALID "col IS NOT NULL" checks */
    size_t npending;
    char **enum_vals;           /* values added in this transaction */
    size_t nenum_vals;
    int lock_timeout, statement_timeout;
    int lock_reported, statement_reported;
} s_state_t;

static int
s_in_tx(const s_state_t *s)
{
    return s->in_tx || s->run->opts->assume_in_transaction;
}

static const fl_stmt_t *
s_stmt(const s_state_t *s)
{
    return &s->run->stmts.items[s->cur];
}

/* Byte offset in the input of a node location (statement start if unknown). */
static size_t
s_at(const s_state_t *s, int32_t location)
{
    if (location < 0)
        return s_stmt(s)->offset;
    return s->run->tree.base[s->cur] + (size_t)location;
}

#define S_REPORT(s, rule, loc, ...) \
    fl_lint_report((s)->run, (rule), (s)->cur, s_at((s), (loc)), __VA_ARGS__)

static char *
s_key(const PgQuery__RangeVar *rv)
{
    return fl_lint_table_key(rv->schemaname, rv->relname);
}

static int
s_created(const s_state_t *s, const PgQuery__RangeVar *rv)
{
    char *k;
    int has;

    if (!rv)
        return 0;
    k = s_key(rv);
    has = fl_lint_set_has(&s->created, k);
    free(k);
    return has;
}

static void
s_end_tx(s_state_t *s)
{
    size_t i;
    fl_lint_set_release(&s->notvalid_tx);
    for (i = 0; i < s->nenum_vals; i++)
        free(s->enum_vals[i]);
    fl_free(&s->enum_vals);
    s->nenum_vals = 0;
}

/* ---- column types ---- */

static void
s_check_type(s_state_t *s, const PgQuery__TypeName *t)
{
    const char *first, *last;
    int catalog;

    if (!t || !t->n_names)
        return;
    first = fl_lint_node_str(t->names[0]);
    last = fl_lint_node_str(t->names[t->n_names - 1]);
    if (!last)
        return;
    catalog = t->n_names == 2 && first && strcmp(first, "pg_catalog") == 0;
    if (catalog && strcmp(last, "bpchar") == 0)
        S_REPORT(s, "ban-char-field", t->location,
                 "char(n) pads values with spaces and is never faster than text");
    if (catalog && strcmp(last, "varchar") == 0 && t->n_typmods > 0)
        S_REPORT(s, "prefer-text-field", t->location,
                 "changing the length of varchar(n) later takes an ACCESS "
                 "EXCLUSIVE lock");
    if (catalog && strcmp(last, "timestamp") == 0)
        S_REPORT(s, "prefer-timestamp-tz", t->location,
                 "timestamp without time zone loses the UTC offset");
    if ((catalog && strcmp(last, "int4") == 0) || strcmp(last, "serial") == 0 ||
        strcmp(last, "serial4") == 0)
        S_REPORT(s, "prefer-bigint-over-int", t->location,
                 "a 32-bit integer column can overflow at 2^31");
    if ((catalog && strcmp(last, "int2") == 0) ||
        strcmp(last, "smallserial") == 0 || strcmp(last, "serial2") == 0)
        S_REPORT(s, "prefer-bigint-over-smallint", t->location,
                 "a 16-bit integer column can overflow at 32767");
    if (t->n_names == 1 &&
        (strcmp(last, "serial") == 0 || strcmp(last, "serial2") == 0 ||
         strcmp(last, "serial4") == 0 || strcmp(last, "serial8") == 0 ||
         strcmp(last, "smallserial") == 0 || strcmp(last, "bigserial") == 0))
        S_REPORT(s, "prefer-identity", t->location,
                 "serial columns own an implicit sequence with its own "
                 "permissions");
}

/* ---- ALTER TABLE ---- */

static const PgQuery__Constraint *
s_col_constraint(const PgQuery__ColumnDef *col, PgQuery__ConstrType type)
{
    size_t i;
    for (i = 0; i < col->n_constraints; i++)
        if (col->constraints[i]->node_case == PG_QUERY__NODE__NODE_CONSTRAINT &&
            col->constraints[i]->constraint->contype == type)
            return col->constraints[i]->constraint;
    return NULL;
}

static int
s_is_serial_type(const PgQuery__TypeName *t)
{
    const char *n = t && t->n_names == 1 ? fl_lint_node_str(t->names[0]) : NULL;
    return n && (strncmp(n, "serial", 6) == 0 || strcmp(n, "smallserial") == 0 ||
                 strcmp(n, "bigserial") == 0);
}

/* The column of "CHECK (col IS NOT NULL)", or NULL. */
static const char *
s_not_null_check_column(const PgQuery__Constraint *con)
{
    const PgQuery__Node *e = con->raw_expr;
    const PgQuery__ColumnRef *cr;

    if (!e || e->node_case != PG_QUERY__NODE__NODE_NULL_TEST ||
        e->null_test->nulltesttype != PG_QUERY__NULL_TEST_TYPE__IS_NOT_NULL ||
        !e->null_test->arg ||
        e->null_test->arg->node_case != PG_QUERY__NODE__NODE_COLUMN_REF)
        return NULL;
    cr = e->null_test->arg->column_ref;
    return cr->n_fields ? fl_lint_node_str(cr->fields[cr->n_fields - 1]) : NULL;
}

static void
s_add_constraint(s_state_t *s, const PgQuery__RangeVar *rv,
                 const PgQuery__Constraint *con, int created)
{
    char *tk = s_key(rv);
    char *k = NULL;
    const char *col;

    switch (con->contype) {
    case PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN:
        if (!created && !con->skip_validation)
            S_REPORT(s, "adding-foreign-key-constraint", con->location,
                     "adding a foreign key to \"%s\" without NOT VALID locks it "
                     "and \"%s\" (SHARE ROW EXCLUSIVE) while every row is checked",
                     rv->relname, con->pktable ? con->pktable->relname : "?");
        break;
    case PG_QUERY__CONSTR_TYPE__CONSTR_UNIQUE:
        if (!created && !*con->indexname)
            S_REPORT(s, "disallowed-unique-constraint", con->location,
                     "adding a UNIQUE constraint builds its index under an "
                     "ACCESS EXCLUSIVE lock on \"%s\"", rv->relname);
        break;
    case PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY:
        if (!created && !*con->indexname)
            S_REPORT(s, "adding-serial-primary-key-field", con->location,
                     "adding a PRIMARY KEY builds its index under an ACCESS "
                     "EXCLUSIVE lock on \"%s\"", rv->relname);
        break;
    case PG_QUERY__CONSTR_TYPE__CONSTR_EXCLUSION:
        if (!created)
            S_REPORT(s, "ban-exclusion-constraint", con->location,
                     "adding an exclusion constraint builds its index under an "
                     "ACCESS EXCLUSIVE lock on \"%s\" and cannot be NOT VALID",
                     rv->relname);
        break;
    case PG_QUERY__CONSTR_TYPE__CONSTR_CHECK:
        col = s_not_null_check_column(con);
        if (col && !con->skip_validation) {
            k = fl_asprintf("%s|%s", tk, col);
            fl_lint_set_add(&s->notnull, k);
        } else if (col && *con->conname) {
            s->pending = fl_reallocarray(s->pending, s->npending + 1,
                                         sizeof(*s->pending));
            s->pending[s->npending].key = fl_asprintf("%s|%s", tk, con->conname);
            s->pending[s->npending++].column = fl_strdup(col);
        }
        break;
    default:
        break;
    }
    if (!created && !con->skip_validation &&
        (con->contype == PG_QUERY__CONSTR_TYPE__CONSTR_CHECK ||
         con->contype == PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN))
        S_REPORT(s, "constraint-missing-not-valid", con->location,
                 "adding a %s constraint to \"%s\" without NOT VALID scans the "
                 "table while holding its lock",
                 con->contype == PG_QUERY__CONSTR_TYPE__CONSTR_CHECK ? "CHECK"
                                                                     : "FOREIGN KEY",
                 rv->relname);
    if (con->skip_validation && *con->conname && s_in_tx(s)) {
        free(k);
        k = fl_asprintf("%s|%s", tk, con->conname);
        fl_lint_set_add(&s->notvalid_tx, k);
    }
    free(k);
    free(tk);
}

static void
s_add_column(s_state_t *s, const PgQuery__RangeVar *rv,
             const PgQuery__ColumnDef *col, int created)
{
    const PgQuery__Constraint *def, *gen, *ident, *nn;
    size_t i;

    s_check_type(s, col->type_name);
    for (i = 0; i < col->n_constraints; i++)
        if (col->constraints[i]->node_case == PG_QUERY__NODE__NODE_CONSTRAINT)
            s_add_constraint(s, rv, col->constraints[i]->constraint, created);
    if (created)
        return;
    def = s_col_constraint(col, PG_QUERY__CONSTR_TYPE__CONSTR_DEFAULT);
    gen = s_col_constraint(col, PG_QUERY__CONSTR_TYPE__CONSTR_GENERATED);
    ident = s_col_constraint(col, PG_QUERY__CONSTR_TYPE__CONSTR_IDENTITY);
    nn = s_col_constraint(col, PG_QUERY__CONSTR_TYPE__CONSTR_NOTNULL);
    if (def && s->pgv < 110000)
        S_REPORT(s, "adding-field-with-default", def->location,
                 "before PostgreSQL 11, adding column \"%s\" with a default "
                 "rewrites \"%s\" under an ACCESS EXCLUSIVE lock",
                 col->colname, rv->relname);
    else if (def && fl_lint_expr_is_volatile(def->raw_expr))
        S_REPORT(s, "adding-field-with-default", def->location,
                 "adding column \"%s\" with a volatile default rewrites \"%s\" "
                 "under an ACCESS EXCLUSIVE lock", col->colname, rv->relname);
    else if (ident || s_is_serial_type(col->type_name))
        S_REPORT(s, "adding-field-with-default", col->location,
                 "adding serial or identity column \"%s\" fills every row of "
                 "\"%s\" from a sequence: a rewrite under an ACCESS EXCLUSIVE "
                 "lock", col->colname, rv->relname);
    if (gen)
        S_REPORT(s, "adding-stored-generated-column", gen->location,
                 "adding stored generated column \"%s\" rewrites \"%s\" under "
                 "an ACCESS EXCLUSIVE lock", col->colname, rv->relname);
    if (nn && !def && !gen && !ident && !s_is_serial_type(col->type_name))
        S_REPORT(s, "adding-required-field", col->location,
                 "adding NOT NULL column \"%s\" without a default fails when "
                 "\"%s\" has rows", col->colname, rv->relname);
}

static void
s_alter_table(s_state_t *s, const PgQuery__AlterTableStmt *a)
{
    const PgQuery__RangeVar *rv = a->relation;
    int created = s_created(s, rv);
    int robust = !s_in_tx(s);
    size_t i;

    if (!rv)
        return;
    for (i = 0; i < a->n_cmds; i++) {
        const PgQuery__AlterTableCmd *cmd;
        const PgQuery__Node *def;
        char *k;

        if (a->cmds[i]->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_CMD)
            continue;
        cmd = a->cmds[i]->alter_table_cmd;
        def = cmd->def;
        switch (cmd->subtype) {
        case PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn:
            if (def && def->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF) {
                s_add_column(s, rv, def->column_def, created);
                if (robust && !cmd->missing_ok)
                    S_REPORT(s, "prefer-robust-stmts", def->column_def->location,
                             "ADD COLUMN without IF NOT EXISTS outside a "
                             "transaction cannot be re-run after a failure");
            }
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint:
            if (def && def->node_case == PG_QUERY__NODE__NODE_CONSTRAINT)
                s_add_constraint(s, rv, def->constraint, created);
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_SetNotNull:
            k = fl_lint_table_key(rv->schemaname, rv->relname);
            {
                char *nk = fl_asprintf("%s|%s", k, cmd->name);
                if (!created && !(s->pgv >= 120000 && fl_lint_set_has(&s->notnull, nk)))
                    S_REPORT(s, "adding-not-nullable-field", -1,
                             "SET NOT NULL on \"%s\".\"%s\" scans the table under "
                             "an ACCESS EXCLUSIVE lock", rv->relname, cmd->name);
                free(nk);
            }
            free(k);
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_DropNotNull:
            S_REPORT(s, "ban-drop-not-null", -1,
                     "dropping NOT NULL on \"%s\".\"%s\" lets clients that do "
                     "not expect NULL read it", rv->relname, cmd->name);
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_AlterColumnType:
            if (!created)
                S_REPORT(s, "changing-column-type", -1,
                         "changing the type of \"%s\".\"%s\" rewrites the table "
                         "and its indexes under an ACCESS EXCLUSIVE lock",
                         rv->relname, cmd->name);
            if (def && def->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF)
                s_check_type(s, def->column_def->type_name);
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_DropColumn:
            S_REPORT(s, "ban-drop-column", -1,
                     "dropping column \"%s\" of \"%s\" breaks clients that "
                     "still read it and destroys its data", cmd->name, rv->relname);
            if (robust && !cmd->missing_ok)
                S_REPORT(s, "prefer-robust-stmts", -1,
                         "DROP COLUMN without IF EXISTS outside a transaction "
                         "cannot be re-run after a failure");
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_DropConstraint:
            if (robust && !cmd->missing_ok)
                S_REPORT(s, "prefer-robust-stmts", -1,
                         "DROP CONSTRAINT without IF EXISTS outside a "
                         "transaction cannot be re-run after a failure");
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_ValidateConstraint: {
            size_t p;
            char *tk = s_key(rv);
            k = fl_asprintf("%s|%s", tk, cmd->name);
            if (fl_lint_set_has(&s->notvalid_tx, k))
                S_REPORT(s, "validate-constraint-in-transaction", -1,
                         "constraint \"%s\" is validated in the transaction that "
                         "added it NOT VALID, so its lock is held during the scan",
                         cmd->name);
            for (p = 0; p < s->npending; p++) {
                if (strcmp(s->pending[p].key, k) == 0) {
                    char *nk = fl_asprintf("%s|%s", tk, s->pending[p].column);
                    fl_lint_set_add(&s->notnull, nk);
                    free(nk);
                }
            }
            free(k);
            free(tk);
            break;
        }
        case PG_QUERY__ALTER_TABLE_TYPE__AT_DetachPartition:
            if (def && def->node_case == PG_QUERY__NODE__NODE_PARTITION_CMD &&
                !def->partition_cmd->concurrent && s->pgv >= 140000)
                S_REPORT(s, "require-concurrent-partition-detach", -1,
                         "DETACH PARTITION without CONCURRENTLY takes an ACCESS "
                         "EXCLUSIVE lock on \"%s\"", rv->relname);
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_SetTableSpace:
            if (!created)
                S_REPORT(s, "ban-set-tablespace", -1,
                         "SET TABLESPACE copies \"%s\" under an ACCESS EXCLUSIVE "
                         "lock", rv->relname);
            break;
        default:
            break;
        }
    }
}

/* ---- other statements ---- */

static int
s_dup_names(s_state_t *s, PgQuery__Node **items, size_t n, int32_t *loc_out,
            const char **name_out)
{
    size_t i, j;
    for (i = 0; i < n; i++) {
        const char *a = NULL;
        int32_t loc = -1;
        const PgQuery__Node *x = items[i];
        if (x->node_case == PG_QUERY__NODE__NODE_RES_TARGET) {
            a = x->res_target->name;
            loc = x->res_target->location;
        } else if (x->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF) {
            a = x->column_def->colname;
            loc = x->column_def->location;
        } else {
            a = fl_lint_node_str(x);
        }
        if (!a || !*a)
            continue;
        for (j = 0; j < i; j++) {
            const PgQuery__Node *y = items[j];
            const char *b = y->node_case == PG_QUERY__NODE__NODE_RES_TARGET
                                ? y->res_target->name
                            : y->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF
                                ? y->column_def->colname
                                : fl_lint_node_str(y);
            if (b && strcmp(a, b) == 0) {
                *loc_out = loc;
                *name_out = a;
                return 1;
            }
        }
    }
    (void)s;
    return 0;
}

static void
s_duplicates(s_state_t *s, PgQuery__Node **items, size_t n, const char *what)
{
    int32_t loc = -1;
    const char *name = NULL;
    if (s_dup_names(s, items, n, &loc, &name))
        S_REPORT(s, "ban-duplicate-column-assignments", loc,
                 "column \"%s\" appears twice in the %s", name, what);
}

/*
 * The SET list of every update a statement makes, wherever it stands: an
 * UPDATE (in a WITH query too), INSERT ... ON CONFLICT DO UPDATE, MERGE
 * ... THEN UPDATE.  (A MERGE INSERT's column list is a target list too.)
 */
static int
s_set_lists(const ProtobufCMessage *msg, void *arg)
{
    s_state_t *s = arg;

    if (msg->descriptor == &pg_query__update_stmt__descriptor) {
        const PgQuery__UpdateStmt *u = (const PgQuery__UpdateStmt *)msg;
        s_duplicates(s, u->target_list, u->n_target_list, "SET list");
    } else if (msg->descriptor == &pg_query__on_conflict_clause__descriptor) {
        const PgQuery__OnConflictClause *oc =
            (const PgQuery__OnConflictClause *)msg;
        s_duplicates(s, oc->target_list, oc->n_target_list,
                     "ON CONFLICT DO UPDATE SET list");
    } else if (msg->descriptor == &pg_query__merge_when_clause__descriptor) {
        const PgQuery__MergeWhenClause *w =
            (const PgQuery__MergeWhenClause *)msg;
        if (w->command_type == PG_QUERY__CMD_TYPE__CMD_UPDATE)
            s_duplicates(s, w->target_list, w->n_target_list,
                         "MERGE UPDATE SET list");
    }
    return 0;
}

/* String nodes joined with dots ("my_schema.f"), as a new string. */
static char *
s_dotted(PgQuery__Node *const *items, size_t n)
{
    char *out = fl_strdup("");
    size_t i;

    for (i = 0; i < n; i++) {
        const char *part = fl_lint_node_str(items[i]);
        char *next = fl_asprintf("%s%s%s", out, i ? "." : "",
                                 part ? part : "?");
        free(out);
        out = next;
    }
    return out;
}

/* The objects a DROP names, quoted and comma-separated, as a new string. */
static char *
s_drop_names(const PgQuery__DropStmt *d)
{
    char *out = fl_strdup("");
    size_t i;

    for (i = 0; i < d->n_objects; i++) {
        const PgQuery__Node *o = d->objects[i];
        char *name, *next;

        if (o->node_case == PG_QUERY__NODE__NODE_LIST)
            name = s_dotted(o->list->items, o->list->n_items);
        else if (o->node_case == PG_QUERY__NODE__NODE_TYPE_NAME)
            name = s_dotted(o->type_name->names, o->type_name->n_names);
        else if (o->node_case == PG_QUERY__NODE__NODE_OBJECT_WITH_ARGS)
            name = s_dotted(o->object_with_args->objname,
                            o->object_with_args->n_objname);
        else
            name = s_dotted(&d->objects[i], 1);
        next = fl_asprintf("%s%s\"%s\"", out, i ? ", " : "", name);
        free(name);
        free(out);
        out = next;
    }
    return out;
}

static void
s_drop_cascade(s_state_t *s, const PgQuery__DropStmt *d)
{
    char *names;

    if (d->behavior != PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE ||
        !fl_lint_cascade_reaches_data(d->remove_type))
        return;
    names = s_drop_names(d);
    if (d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_SCHEMA)
        S_REPORT(s, "ban-drop-cascade", -1,
                 "DROP SCHEMA %s CASCADE drops every table and other object "
                 "in it, and what depends on them elsewhere, columns and "
                 "tables included", names);
    else
        S_REPORT(s, "ban-drop-cascade", -1,
                 "%s %s CASCADE also drops what depends on %s, columns and "
                 "tables included", s_stmt(s)->kind, names,
                 d->n_objects > 1 ? "them" : "it");
    free(names);
}

static void
s_drop_owned(s_state_t *s, const PgQuery__DropOwnedStmt *d)
{
    static const char *const keywords[] = {
        "?", "?", "CURRENT_ROLE", "CURRENT_USER", "SESSION_USER", "PUBLIC",
    };
    char *roles = fl_strdup("");
    size_t i;

    for (i = 0; i < d->n_roles; i++) {
        const PgQuery__RoleSpec *r = d->roles[i]->node_case ==
                                             PG_QUERY__NODE__NODE_ROLE_SPEC
                                         ? d->roles[i]->role_spec : NULL;
        char *next;

        if (r && r->roletype == PG_QUERY__ROLE_SPEC_TYPE__ROLESPEC_CSTRING)
            next = fl_asprintf("%s%s\"%s\"", roles, i ? ", " : "", r->rolename);
        else
            next = fl_asprintf("%s%s%s", roles, i ? ", " : "",
                               r && (size_t)r->roletype <
                                        sizeof(keywords) / sizeof(keywords[0])
                                   ? keywords[r->roletype] : "?");
        free(roles);
        roles = next;
    }
    S_REPORT(s, "ban-drop-owned", -1,
             "DROP OWNED BY %s drops every object %s in this database, "
             "tables included, without naming one", roles,
             d->n_roles > 1 ? "these roles own" : "the role owns");
    free(roles);
}

static void
s_opaque(s_state_t *s, const PgQuery__Node *n)
{
    static const char tail[] = "cannot be analysed; the pipeline's "
                               "before-commit check covers data it destroys";
    const PgQuery__FuncCall *call = NULL;
    char *name = NULL;

    if (!s_stmt(s)->opaque)
        return;
    (void)fl_lint_is_opaque(n, &call);
    if (n->node_case == PG_QUERY__NODE__NODE_EXPLAIN_STMT &&
        n->explain_stmt->query)
        n = n->explain_stmt->query; /* EXPLAIN ANALYZE runs it */
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_DO_STMT:
        S_REPORT(s, "opaque-statement", -1, "the effects of a DO block %s",
                 tail);
        break;
    case PG_QUERY__NODE__NODE_CALL_STMT:
        if (n->call_stmt->funccall)
            name = s_dotted(n->call_stmt->funccall->funcname,
                            n->call_stmt->funccall->n_funcname);
        S_REPORT(s, "opaque-statement", -1,
                 "the effects of procedure \"%s\" %s", name ? name : "?", tail);
        break;
    case PG_QUERY__NODE__NODE_EXECUTE_STMT:
        S_REPORT(s, "opaque-statement", -1,
                 "the effects of prepared statement \"%s\" %s",
                 n->execute_stmt->name, tail);
        break;
    default:
        if (!call) { /* cannot happen while facts and rules agree */
            S_REPORT(s, "opaque-statement", -1,
                     "the effects of this statement %s", tail);
            break;
        }
        name = s_dotted(call->funcname, call->n_funcname);
        S_REPORT(s, "opaque-statement", call->location,
                 "\"%s\" is not a PostgreSQL 15 built-in function, so the "
                 "effects of this statement %s", name, tail);
        break;
    }
    free(name);
}

static int
s_uses_value(const ProtobufCMessage *msg, void *arg)
{
    const s_state_t *s = arg;
    size_t i;
    if (msg->descriptor != &pg_query__a__const__descriptor)
        return 0;
    const PgQuery__AConst *c = (const PgQuery__AConst *)msg;
    if (c->val_case != PG_QUERY__A__CONST__VAL_SVAL || !c->sval)
        return 0;
    for (i = 0; i < s->nenum_vals; i++)
        if (strcmp(s->enum_vals[i], c->sval->sval) == 0)
            return c->location + 1; /* nonzero even at location 0 */
    return 0;
}

static void
s_transaction(s_state_t *s, const PgQuery__TransactionStmt *t)
{
    switch (t->kind) {
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
        if (s->in_tx)
            S_REPORT(s, "transaction-nesting", -1,
                     "BEGIN inside a transaction: PostgreSQL does not nest "
                     "transactions");
        else if (s->run->opts->assume_in_transaction)
            S_REPORT(s, "transaction-nesting", -1,
                     "BEGIN in a migration that already runs in a transaction");
        s->in_tx = 1;
        s->begin_stmt = s->cur;
        break;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK:
        if (!s->in_tx)
            S_REPORT(s, "transaction-nesting", -1,
                     s->run->opts->assume_in_transaction
                         ? "COMMIT or ROLLBACK ends the transaction the "
                           "migration runs in"
                         : "COMMIT or ROLLBACK without a BEGIN");
        s->in_tx = 0;
        s_end_tx(s);
        break;
    default:
        break;
    }
}

static int
s_slow_lock(const s_state_t *s, const fl_stmt_t *st)
{
    size_t i;
    for (i = 0; i < st->ntables; i++) {
        char *k;
        int created;
        if (st->tables[i].lock < FL_LOCK_SHARE_UPDATE_EXCLUSIVE ||
            st->tables[i].created)
            continue;
        k = fl_lint_table_key(st->tables[i].schema, st->tables[i].name);
        created = fl_lint_set_has(&s->created, k);
        free(k);
        if (!created)
            return 1;
    }
    return 0;
}

static void
s_statement(s_state_t *s, const PgQuery__Node *n)
{
    const fl_stmt_t *st = s_stmt(s);
    int robust = !s_in_tx(s);
    size_t i;

    (void)fl_lint_walk(&n->base, s_set_lists, s);
    s_opaque(s, n);
    if (s->nenum_vals && s_in_tx(s)) {
        int at = fl_lint_walk(&n->base, s_uses_value, s);
        if (at)
            S_REPORT(s, "enum-value-used-in-transaction", at - 1,
                     "an enum value added in this transaction is used before "
                     "the transaction commits (PostgreSQL refuses it)");
    }
    if (st->no_transaction && s_in_tx(s)) {
        if (n->node_case == PG_QUERY__NODE__NODE_INDEX_STMT)
            S_REPORT(s, "ban-concurrent-index-creation-in-transaction", -1,
                     "CREATE INDEX CONCURRENTLY cannot run inside a transaction "
                     "block");
        else
            S_REPORT(s, "no-transaction-statement-in-transaction", -1,
                     "%s cannot run inside a transaction block", st->kind);
    }
    if (!s->lock_timeout && !s->lock_reported && s_slow_lock(s, st)) {
        s->lock_reported = 1;
        S_REPORT(s, "require-lock-timeout", -1,
                 "this statement takes a lock that can queue behind long "
                 "transactions and block everyone else, and no lock_timeout is set");
    }
    if (!s->statement_timeout && !s->statement_reported && s_slow_lock(s, st)) {
        s->statement_reported = 1;
        S_REPORT(s, "require-statement-timeout", -1,
                 "this statement may run long under its lock, and no "
                 "statement_timeout is set");
    }

    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_CREATE_STMT: {
        const PgQuery__CreateStmt *c = n->create_stmt;
        for (i = 0; i < c->n_table_elts; i++)
            if (c->table_elts[i]->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF)
                s_check_type(s, c->table_elts[i]->column_def->type_name);
        s_duplicates(s, c->table_elts, c->n_table_elts, "table definition");
        if (robust && !c->if_not_exists)
            S_REPORT(s, "prefer-robust-stmts", -1,
                     "CREATE TABLE without IF NOT EXISTS outside a transaction "
                     "cannot be re-run after a failure");
        if (c->relation && !*c->relation->schemaname)
            S_REPORT(s, "require-table-schema", c->relation->location,
                     "table \"%s\" is not schema-qualified", c->relation->relname);
        break;
    }
    case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT:
        if (n->create_table_as_stmt->into && n->create_table_as_stmt->into->rel &&
            !*n->create_table_as_stmt->into->rel->schemaname)
            S_REPORT(s, "require-table-schema", n->create_table_as_stmt->into->rel->location,
                     "table \"%s\" is not schema-qualified",
                     n->create_table_as_stmt->into->rel->relname);
        break;
    case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
        if (n->alter_table_stmt->relation &&
            !*n->alter_table_stmt->relation->schemaname)
            S_REPORT(s, "require-table-schema",
                     n->alter_table_stmt->relation->location,
                     "table \"%s\" is not schema-qualified",
                     n->alter_table_stmt->relation->relname);
        s_alter_table(s, n->alter_table_stmt);
        break;
    case PG_QUERY__NODE__NODE_INDEX_STMT: {
        const PgQuery__IndexStmt *ix = n->index_stmt;
        if (!ix->concurrent && !s_created(s, ix->relation))
            S_REPORT(s, "require-concurrent-index-creation", -1,
                     "CREATE INDEX without CONCURRENTLY blocks writes to \"%s\" "
                     "while the index builds",
                     ix->relation ? ix->relation->relname : "?");
        if ((robust || ix->concurrent) && !ix->if_not_exists &&
            !(ix->concurrent && s_in_tx(s)))
            S_REPORT(s, "prefer-robust-stmts", -1,
                     "CREATE INDEX without IF NOT EXISTS %s cannot be re-run "
                     "after a failure",
                     ix->concurrent ? "CONCURRENTLY" : "outside a transaction");
        break;
    }
    case PG_QUERY__NODE__NODE_DROP_STMT: {
        const PgQuery__DropStmt *d = n->drop_stmt;
        s_drop_cascade(s, d);
        if (d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE) {
            S_REPORT(s, "ban-drop-table", -1,
                     "dropping a table breaks clients that still use it and "
                     "destroys its data");
            if (robust && !d->missing_ok)
                S_REPORT(s, "prefer-robust-stmts", -1,
                         "DROP TABLE without IF EXISTS outside a transaction "
                         "cannot be re-run after a failure");
        } else if (d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_INDEX) {
            if (!d->concurrent)
                S_REPORT(s, "require-concurrent-index-deletion", -1,
                         "DROP INDEX without CONCURRENTLY takes an ACCESS "
                         "EXCLUSIVE lock on the table");
            if (robust && !d->missing_ok)
                S_REPORT(s, "prefer-robust-stmts", -1,
                         "DROP INDEX without IF EXISTS outside a transaction "
                         "cannot be re-run after a failure");
        }
        break;
    }
    case PG_QUERY__NODE__NODE_DROP_OWNED_STMT:
        s_drop_owned(s, n->drop_owned_stmt);
        break;
    case PG_QUERY__NODE__NODE_DROPDB_STMT:
        S_REPORT(s, "ban-drop-database", -1, "dropping database \"%s\" destroys it",
                 n->dropdb_stmt->dbname);
        break;
    case PG_QUERY__NODE__NODE_TRUNCATE_STMT:
        if (n->truncate_stmt->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE)
            S_REPORT(s, "ban-truncate-cascade", -1,
                     "TRUNCATE ... CASCADE also empties every table that "
                     "references these through a foreign key");
        break;
    case PG_QUERY__NODE__NODE_VIEW_STMT:
        s_duplicates(s, n->view_stmt->aliases, n->view_stmt->n_aliases,
                     "view's column list");
        break;
    case PG_QUERY__NODE__NODE_RENAME_STMT: {
        const PgQuery__RenameStmt *r = n->rename_stmt;
        if (r->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN)
            S_REPORT(s, "renaming-column", -1,
                     "renaming column \"%s\" to \"%s\" breaks clients that use "
                     "the old name", r->subname, r->newname);
        else if (r->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE)
            S_REPORT(s, "renaming-table", -1,
                     "renaming table \"%s\" to \"%s\" breaks clients that use "
                     "the old name", r->relation ? r->relation->relname : "?",
                     r->newname);
        break;
    }
    case PG_QUERY__NODE__NODE_REINDEX_STMT: {
        const PgQuery__ReindexStmt *r = n->reindex_stmt;
        if (s->pgv >= 120000 &&
            r->kind != PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_SYSTEM &&
            !fl_lint_has_option(r->params, r->n_params, "concurrently"))
            S_REPORT(s, "require-concurrent-reindex", -1,
                     "REINDEX without CONCURRENTLY blocks writes, and reads that "
                     "use the index");
        break;
    }
    case PG_QUERY__NODE__NODE_ALTER_ENUM_STMT: {
        const PgQuery__AlterEnumStmt *e = n->alter_enum_stmt;
        if (!*e->new_val || *e->old_val)
            break;
        if (!*e->new_val_neighbor)
            S_REPORT(s, "require-enum-value-ordering", -1,
                     "ADD VALUE '%s' without BEFORE or AFTER puts it last, which "
                     "changes how the type sorts", e->new_val);
        if (s_in_tx(s)) {
            s->enum_vals = fl_reallocarray(s->enum_vals, s->nenum_vals + 1,
                                           sizeof(char *));
            s->enum_vals[s->nenum_vals++] = fl_strdup(e->new_val);
        }
        break;
    }
    case PG_QUERY__NODE__NODE_CREATE_DOMAIN_STMT:
        for (i = 0; i < n->create_domain_stmt->n_constraints; i++) {
            const PgQuery__Node *c = n->create_domain_stmt->constraints[i];
            if (c->node_case == PG_QUERY__NODE__NODE_CONSTRAINT &&
                c->constraint->contype == PG_QUERY__CONSTR_TYPE__CONSTR_CHECK) {
                S_REPORT(s, "ban-create-domain-with-constraint", c->constraint->location,
                         "a domain CHECK constraint is revalidated on every "
                         "column that uses it and is hard to change online");
                break;
            }
        }
        break;
    case PG_QUERY__NODE__NODE_ALTER_DOMAIN_STMT:
        if (n->alter_domain_stmt->subtype && strcmp(n->alter_domain_stmt->subtype, "C") == 0)
            S_REPORT(s, "ban-alter-domain-with-add-constraint", -1,
                     "ALTER DOMAIN ... ADD CONSTRAINT checks every column that "
                     "uses the domain under lock");
        break;
    case PG_QUERY__NODE__NODE_VACUUM_STMT:
        if (n->vacuum_stmt->is_vacuumcmd &&
            fl_lint_has_option(n->vacuum_stmt->options, n->vacuum_stmt->n_options,
                               "full"))
            S_REPORT(s, "ban-vacuum-full", -1,
                     "VACUUM FULL rewrites the table under an ACCESS EXCLUSIVE lock");
        break;
    case PG_QUERY__NODE__NODE_CLUSTER_STMT:
        S_REPORT(s, "ban-cluster", -1,
                 "CLUSTER rewrites the table under an ACCESS EXCLUSIVE lock");
        break;
    case PG_QUERY__NODE__NODE_REFRESH_MAT_VIEW_STMT:
        if (!n->refresh_mat_view_stmt->concurrent)
            S_REPORT(s, "require-concurrent-refresh", -1,
                     "REFRESH MATERIALIZED VIEW without CONCURRENTLY blocks "
                     "reads of \"%s\" until it finishes",
                     n->refresh_mat_view_stmt->relation
                         ? n->refresh_mat_view_stmt->relation->relname : "?");
        break;
    case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT: {
        const char *name = n->variable_set_stmt->name;
        if (name && strcmp(name, "lock_timeout") == 0)
            s->lock_timeout = 1;
        if (name && strcmp(name, "statement_timeout") == 0)
            s->statement_timeout = 1;
        break;
    }
    case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
        s_transaction(s, n->transaction_stmt);
        break;
    default:
        break;
    }
}

void
fl_lint_check(fl_lint_run_t *run)
{
    s_state_t s;
    size_t i;

    memset(&s, 0, sizeof(s));
    s.run = run;
    s.pgv = run->opts->pg_version;
    s.lock_timeout = run->opts->lock_timeout_set;
    s.statement_timeout = run->opts->statement_timeout_set;
    for (s.cur = 0; s.cur < run->stmts.count; s.cur++) {
        const fl_stmt_t *st = &run->stmts.items[s.cur];
        const PgQuery__Node *n = run->tree.nodes[s.cur];

        if (st->parse_error) {
            size_t at = st->error_line > 0 ? st->error_offset : st->offset;
            fl_lint_report(run, "syntax-error", s.cur, at,
                           "the PostgreSQL 15 grammar cannot parse this "
                           "statement: %s", st->error ? st->error : "syntax error");
            continue;
        }
        if (!n)
            continue;
        s_statement(&s, n);
        /* Only now: a CREATE TABLE's own rules see the table as new. */
        for (i = 0; i < st->ntables; i++) {
            if (st->tables[i].created) {
                char *k = fl_lint_table_key(st->tables[i].schema,
                                            st->tables[i].name);
                fl_lint_set_add(&s.created, k);
                free(k);
            }
        }
    }
    if (s.in_tx) {
        s.cur = s.begin_stmt;
        fl_lint_report(run, "ban-uncommitted-transaction", s.cur,
                       run->stmts.items[s.cur].offset,
                       "this transaction is never committed, so its changes are "
                       "discarded");
    }
    s_end_tx(&s);
    fl_lint_set_release(&s.created);
    fl_lint_set_release(&s.notnull);
    for (i = 0; i < s.npending; i++) {
        free(s.pending[i].key);
        free(s.pending[i].column);
    }
    free(s.pending);
}
