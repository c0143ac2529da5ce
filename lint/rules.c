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
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
    int base_tx;                /* the runner's transaction holds the file */
    size_t begin_stmt;
    size_t sub_at;              /* ALTER TABLE: where the sub-command being
                                   checked starts (SIZE_MAX: none) */
    fl_lint_set_t created;      /* table keys created in the file */
    fl_lint_set_t populated;    /* of those, the ones given rows (CREATE
                                   TABLE AS, INSERT, COPY) */
    fl_lint_set_t created_idx;  /* indexes built on tables of the file */
    int lock_local, statement_local; /* set with SET LOCAL */
    int tz_utc;                 /* SET TimeZone to UTC earlier */
    fl_lint_set_t notvalid_tx;  /* "table|name" added NOT VALID in this tx */
    fl_lint_set_t notnull;      /* "table|column" proven by a valid CHECK */
    s_pair_t *pending;          /* NOT VALID "col IS NOT NULL" checks */
    size_t npending;
    char **enum_vals;           /* values added in this transaction */
    size_t nenum_vals;
    int lock_timeout, statement_timeout;
    int lock_reported, statement_reported;
    /* What stays after COMMIT (session-level SETs), and what it was at
     * BEGIN (ROLLBACK puts it back): PostgreSQL undoes a SET made in a
     * transaction rolled back, and a SET LOCAL at its end. */
    int lock_session, statement_session;
    int lock_at_begin, statement_at_begin;
} s_state_t;

static int
s_in_tx(const s_state_t *s)
{
    return s->in_tx || s->base_tx;
}

static int
s_tx_mode(const s_state_t *s)
{
    return s->run->opts->assume_in_transaction;
}

static const fl_stmt_t *
s_stmt(const s_state_t *s)
{
    return &s->run->stmts.items[s->cur];
}

/*
 * Byte offset in the input of a node location; for none, the ALTER TABLE
 * sub-command being checked, else the statement's start.
 */
static size_t
s_at(const s_state_t *s, int32_t location)
{
    if (location < 0)
        return s->sub_at != SIZE_MAX ? s->sub_at : s_stmt(s)->offset;
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
s_in_set(const fl_lint_set_t *set, const PgQuery__RangeVar *rv)
{
    char *k;
    int has;

    if (!rv || !set)
        return 0;
    k = s_key(rv);
    has = fl_lint_set_has(set, k);
    free(k);
    return has;
}

static int
s_created(const s_state_t *s, const PgQuery__RangeVar *rv)
{
    return s_in_set(&s->created, rv);
}

/* Created earlier in the file and filled with rows since. */
static int
s_populated(const s_state_t *s, const PgQuery__RangeVar *rv)
{
    return s_in_set(&s->populated, rv);
}

static void
s_set_rv(fl_lint_set_t *set, const PgQuery__RangeVar *rv)
{
    char *k;
    if (!rv)
        return;
    k = s_key(rv);
    fl_lint_set_add(set, k);
    free(k);
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

static PgQuery__Node
s_node(PgQuery__Node__NodeCase kind, void *msg)
{
    PgQuery__Node n = PG_QUERY__NODE__INIT;
    n.node_case = kind;
    n.alter_table_stmt = msg; /* one union: any member stores the pointer */
    return n;
}

/*
 * The safe form of a validated foreign key, as SQL the PostgreSQL 15
 * grammar parses (deparsed from trees, not pasted from text): the column
 * first when the key came inline with ADD COLUMN (col), then the key NOT
 * VALID, then VALIDATE CONSTRAINT, which scans under a lock that blocks
 * no reads or writes.  New string, or NULL.
 */
static char *
s_fk_fix(const PgQuery__RangeVar *rv, const PgQuery__Constraint *con,
         const PgQuery__ColumnDef *col)
{
    PgQuery__Constraint fk = *con;
    PgQuery__ColumnDef coldef;
    PgQuery__String colname = PG_QUERY__STRING__INIT;
    PgQuery__AlterTableCmd cmd[3] = {PG_QUERY__ALTER_TABLE_CMD__INIT,
                                     PG_QUERY__ALTER_TABLE_CMD__INIT,
                                     PG_QUERY__ALTER_TABLE_CMD__INIT};
    PgQuery__AlterTableStmt stmt[3] = {PG_QUERY__ALTER_TABLE_STMT__INIT,
                                       PG_QUERY__ALTER_TABLE_STMT__INIT,
                                       PG_QUERY__ALTER_TABLE_STMT__INIT};
    PgQuery__Node colname_node, def[2], cmd_node[3], stmt_node[3];
    PgQuery__Node *attrs[1], *cmds[3][1], *stmts[3], **keep = NULL;
    const char *first = NULL;
    char *name, *fix;
    size_t i, n = 0, nkeep = 0;

    if (col) {
        first = col->colname;
    } else if (con->n_fk_attrs) {
        first = fl_lint_node_str(con->fk_attrs[0]);
    }
    /* PostgreSQL's own name for it: <table>_<first column>_fkey. */
    name = *con->conname ? fl_strdup(con->conname)
                         : fl_asprintf("%s_%s_fkey", rv->relname,
                                       first ? first : "col");
    fk.conname = name;
    fk.skip_validation = 1;
    fk.initially_valid = 0;
    if (col) {
        colname.sval = col->colname;
        colname_node = s_node(PG_QUERY__NODE__NODE_STRING, &colname);
        attrs[0] = &colname_node;
        fk.fk_attrs = attrs;
        fk.n_fk_attrs = 1;
        coldef = *col;
        keep = fl_reallocarray(NULL, col->n_constraints + 1, sizeof(*keep));
        for (i = 0; i < col->n_constraints; i++)
            if (col->constraints[i]->node_case != PG_QUERY__NODE__NODE_CONSTRAINT ||
                col->constraints[i]->constraint->contype !=
                    PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN)
                keep[nkeep++] = col->constraints[i];
        coldef.constraints = keep;
        coldef.n_constraints = nkeep;
        def[0] = s_node(PG_QUERY__NODE__NODE_COLUMN_DEF, &coldef);
        cmd[n].subtype = PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn;
        cmd[n].def = &def[0];
        n++;
    }
    def[1] = s_node(PG_QUERY__NODE__NODE_CONSTRAINT, &fk);
    cmd[n].subtype = PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint;
    cmd[n].def = &def[1];
    n++;
    cmd[n].subtype = PG_QUERY__ALTER_TABLE_TYPE__AT_ValidateConstraint;
    cmd[n].name = name;
    n++;
    for (i = 0; i < n; i++) {
        cmd[i].behavior = PG_QUERY__DROP_BEHAVIOR__DROP_RESTRICT;
        cmd_node[i] = s_node(PG_QUERY__NODE__NODE_ALTER_TABLE_CMD, &cmd[i]);
        cmds[i][0] = &cmd_node[i];
        stmt[i].relation = (PgQuery__RangeVar *)rv;
        stmt[i].cmds = cmds[i];
        stmt[i].n_cmds = 1;
        stmt[i].objtype = PG_QUERY__OBJECT_TYPE__OBJECT_TABLE;
        stmt_node[i] = s_node(PG_QUERY__NODE__NODE_ALTER_TABLE_STMT, &stmt[i]);
        stmts[i] = &stmt_node[i];
    }
    fix = fl_lint_deparse_stmts(stmts, n);
    free(keep);
    free(name);
    return fix;
}

/*
 * Whether a foreign key added with column col (NULL for ADD CONSTRAINT)
 * makes PostgreSQL check existing rows: not for a new column without a
 * DEFAULT clause, whose rows are all NULL (PostgreSQL 15 then reads no
 * row: tests/integration/test_lint_pg.c); with any DEFAULT, even NULL, or
 * a column filled from a sequence or an expression, it scans.
 */
static int
s_fk_scans(const PgQuery__ColumnDef *col)
{
    if (!col)
        return 1;
    return s_col_constraint(col, PG_QUERY__CONSTR_TYPE__CONSTR_DEFAULT) ||
           s_col_constraint(col, PG_QUERY__CONSTR_TYPE__CONSTR_GENERATED) ||
           s_col_constraint(col, PG_QUERY__CONSTR_TYPE__CONSTR_IDENTITY) ||
           s_is_serial_type(col->type_name);
}

static void
s_foreign_key(s_state_t *s, const PgQuery__RangeVar *rv,
              const PgQuery__Constraint *con, const PgQuery__ColumnDef *col,
              int created)
{
    const char *ref = con->pktable ? con->pktable->relname : "?";
    fl_finding_t *f = NULL;

    if (con->skip_validation || !s_fk_scans(col))
        return;
    if (!created)
        f = S_REPORT(s, "adding-foreign-key-constraint", con->location,
                     "adding a foreign key to \"%s\" without NOT VALID locks "
                     "it and \"%s\" (SHARE ROW EXCLUSIVE) while every row is "
                     "checked", rv->relname, ref);
    else if (s_populated(s, rv))
        f = S_REPORT(s, "adding-foreign-key-constraint", con->location,
                     "\"%s\" was given rows earlier in this file, so adding a "
                     "foreign key checks every one of them while \"%s\" is "
                     "locked SHARE ROW EXCLUSIVE", rv->relname, ref);
    if (f && !f->fix)
        f->fix = s_fk_fix(rv, con, col);
}

static void
s_add_constraint(s_state_t *s, const PgQuery__RangeVar *rv,
                 const PgQuery__Constraint *con, const PgQuery__ColumnDef *column,
                 int created)
{
    char *tk = s_key(rv);
    char *k = NULL;
    const char *col;

    switch (con->contype) {
    case PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN:
        s_foreign_key(s, rv, con, column, created);
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
        }
        /*
         * By its name (PostgreSQL's own, TABLE_COLUMN_check, when it has
         * none): VALIDATE CONSTRAINT proves the column, DROP CONSTRAINT
         * takes the proof away (before, a dropped CHECK still proved it:
         * found by an audit).
         */
        if (col) {
            s->pending = fl_reallocarray(s->pending, s->npending + 1,
                                         sizeof(*s->pending));
            s->pending[s->npending].key =
                *con->conname ? fl_asprintf("%s|%s", tk, con->conname)
                              : fl_asprintf("%s|%s_%s_check", tk, rv->relname,
                                            col);
            s->pending[s->npending++].column = fl_strdup(col);
        }
        break;
    default:
        break;
    }
    /* A foreign key's scan is adding-foreign-key-constraint's finding:
     * one finding per hazard. */
    if (!created && !con->skip_validation &&
        con->contype == PG_QUERY__CONSTR_TYPE__CONSTR_CHECK)
        S_REPORT(s, "constraint-missing-not-valid", con->location,
                 "adding a CHECK constraint to \"%s\" without NOT VALID scans "
                 "the table while holding its lock", rv->relname);
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
            s_add_constraint(s, rv, col->constraints[i]->constraint, col,
                             created);
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


/* Skips the quoted token at i ('...', E'...', "...", $tag$...$tag$);
 * returns i itself when none starts there. */
static size_t
s_skip_quoted(const char *t, size_t i, size_t end)
{
    char q = t[i];
    size_t k;

    if (q == '\'' || q == '"') {
        int esc = q == '\'' && fl_lint_opens_escape_string(t, i);
        for (k = i + 1; k < end; k++) {
            if (esc && t[k] == '\\')
                k++;
            else if (t[k] == q && k + 1 < end && t[k + 1] == q)
                k++;
            else if (t[k] == q)
                return k + 1;
        }
        return end;
    }
    if (q == '$' && (i == 0 || !(isalnum((unsigned char)t[i - 1]) || t[i - 1] == '_'))) {
        for (k = i + 1; k < end && (isalnum((unsigned char)t[k]) || t[k] == '_'); k++)
            ;
        if (k < end && t[k] == '$') {
            size_t tl = k - i + 1;
            for (k++; k + tl <= end; k++)
                if (memcmp(t + k, t + i, tl) == 0)
                    return k + tl;
            return end;
        }
    }
    return i;
}

/*
 * The sub-commands of an ALTER TABLE whose relation name starts at rel and
 * whose text ends at end: start[i] and stop[i] (after its last character)
 * for each of the n commas-separated ones.  0 when the text does not hold
 * exactly n; the positions then fall back to the statement.
 */
static int
s_subcommands(const char *t, size_t rel, size_t end, size_t *start,
              size_t *stop, size_t n)
{
    size_t i = rel, k = 0, j;
    int depth = 0;

    for (;;) { /* [schema.]name, each part quoted or not */
        if (i < end && t[i] == '"')
            i = s_skip_quoted(t, i, end);
        else
            while (i < end && (isalnum((unsigned char)t[i]) || t[i] == '_' ||
                               t[i] == '$' || (unsigned char)t[i] >= 0x80))
                i++;
        i = fl_lint_skip_space(t, i, end);
        if (i < end && t[i] == '.') {
            i = fl_lint_skip_space(t, i + 1, end);
            continue;
        }
        break;
    }
    if (i < end && t[i] == '*')
        i = fl_lint_skip_space(t, i + 1, end);
    if (n == 0 || i >= end)
        return 0;
    start[k] = i;
    while (i < end) {
        j = s_skip_quoted(t, i, end);
        if (j != i) {
            i = j;
            continue;
        }
        j = fl_lint_skip_space(t, i, end);
        if (j != i) {
            i = j;
            continue;
        }
        if (t[i] == '(' || t[i] == '[') {
            depth++;
        } else if (t[i] == ')' || t[i] == ']') {
            depth--;
        } else if (t[i] == ',' && depth == 0) {
            if (k + 1 >= n)
                return 0;
            for (j = i; j > start[k] && (t[j - 1] == ' ' || t[j - 1] == '\t' ||
                                         t[j - 1] == '\n' || t[j - 1] == '\r');)
                j--;
            stop[k++] = j;
            start[k] = fl_lint_skip_space(t, i + 1, end);
        }
        i++;
    }
    stop[k] = end;
    return k + 1 == n;
}

/* The changing-column-type message's note on timestamp <-> timestamptz. */
static const char *
s_timestamp_note(const s_state_t *s, const PgQuery__Node *def)
{
    const PgQuery__TypeName *t;
    const char *last;

    if (s->pgv < 120000 || !def || def->node_case != PG_QUERY__NODE__NODE_COLUMN_DEF)
        return "";
    t = def->column_def->type_name;
    last = t && t->n_names ? fl_lint_node_str(t->names[t->n_names - 1]) : NULL;
    if (!last || (strcmp(last, "timestamptz") != 0 && strcmp(last, "timestamp") != 0))
        return "";
    if (s->tz_utc)
        return "; between timestamp and timestamptz, with TimeZone UTC as this "
               "file sets it, PostgreSQL 12+ rewrites nothing (a USING clause "
               "still rewrites)";
    return "; between timestamp and timestamptz PostgreSQL 12+ rewrites "
           "nothing when the session TimeZone is UTC: SET TimeZone = 'UTC' first";
}

static int
s_undoes(const s_state_t *s, const char *key)
{
    return s->run->undo && fl_lint_set_has(s->run->undo, key);
}

static void
s_alter_table(s_state_t *s, const PgQuery__AlterTableStmt *a)
{
    const PgQuery__RangeVar *rv = a->relation;
    int created = s_created(s, rv);
    int robust = !s_in_tx(s);
    const fl_stmt_t *st = s_stmt(s);
    size_t *starts = NULL, *stops = NULL, i;
    int spans = 0;

    if (!rv)
        return;
    if (a->n_cmds > 0 && rv->location >= 0) {
        starts = fl_reallocarray(NULL, a->n_cmds, sizeof(size_t));
        stops = fl_reallocarray(NULL, a->n_cmds, sizeof(size_t));
        spans = s_subcommands(s->run->sql, s_at(s, rv->location),
                              st->offset + st->length, starts, stops, a->n_cmds);
    }
    for (i = 0; i < a->n_cmds; i++) {
        const PgQuery__AlterTableCmd *cmd;
        const PgQuery__Node *def;
        char *k;

        if (a->cmds[i]->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_CMD)
            continue;
        cmd = a->cmds[i]->alter_table_cmd;
        def = cmd->def;
        if (spans) {
            s->sub_at = starts[i];
            s->run->span_start = starts[i];
            s->run->span_end = stops[i];
        }
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
                s_add_constraint(s, rv, def->constraint, NULL, created);
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
                         "changing the type of \"%s\".\"%s\" takes an ACCESS "
                         "EXCLUSIVE lock and rewrites the table and its "
                         "indexes, unless the new type is binary-compatible "
                         "(a longer varchar, varchar to text)%s",
                         rv->relname, cmd->name, s_timestamp_note(s, def));
            if (def && def->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF)
                s_check_type(s, def->column_def->type_name);
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_DropColumn:
            {
                char *tk = s_key(rv);
                k = fl_asprintf("%s|%s", tk, cmd->name);
                free(tk);
            }
            if (!s_undoes(s, k))
                S_REPORT(s, "ban-drop-column", -1,
                         "dropping column \"%s\" of \"%s\" breaks clients "
                         "that still read it and destroys its data", cmd->name,
                         rv->relname);
            free(k);
            if (robust && !cmd->missing_ok)
                S_REPORT(s, "prefer-robust-stmts", -1,
                         "DROP COLUMN without IF EXISTS outside a transaction "
                         "cannot be re-run after a failure");
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_DropConstraint: {
            char *tk = s_key(rv);
            k = fl_asprintf("%s|%s", tk, cmd->name ? cmd->name : "");
            for (size_t p = 0; p < s->npending; p++)
                if (strcmp(s->pending[p].key, k) == 0) {
                    char *nk = fl_asprintf("%s|%s", tk, s->pending[p].column);
                    fl_lint_set_remove(&s->notnull, nk);
                    free(nk);
                }
            free(k);
            free(tk);
        }
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
        case PG_QUERY__ALTER_TABLE_TYPE__AT_SetLogged:
        case PG_QUERY__ALTER_TABLE_TYPE__AT_SetUnLogged:
            /* Both write the table anew (pg_class.relfilenode changes). */
            if (!created)
                S_REPORT(s, "ban-set-logged", -1,
                         "SET %sLOGGED rewrites \"%s\" under an ACCESS "
                         "EXCLUSIVE lock", cmd->subtype ==
                         PG_QUERY__ALTER_TABLE_TYPE__AT_SetUnLogged ? "UN" : "",
                         rv->relname);
            break;
        default:
            break;
        }
    }
    s->sub_at = SIZE_MAX;
    s->run->span_start = s->run->span_end = 0;
    free(starts);
    free(stops);
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

/* Whether every object a DROP names ([schema.]name) is in set. */
static int
s_drops_only(const fl_lint_set_t *set, const PgQuery__DropStmt *d)
{
    size_t i;

    for (i = 0; i < d->n_objects; i++) {
        const PgQuery__Node *o = d->objects[i];
        const char *schema = NULL, *name;
        char *k;
        int has;

        if (o->node_case != PG_QUERY__NODE__NODE_LIST || !o->list->n_items)
            return 0;
        if (o->list->n_items >= 2)
            schema = fl_lint_node_str(o->list->items[o->list->n_items - 2]);
        name = fl_lint_node_str(o->list->items[o->list->n_items - 1]);
        k = fl_lint_table_key(schema, name);
        has = fl_lint_set_has(set, k);
        free(k);
        if (!has)
            return 0;
    }
    return 1;
}

/* A down dropping only tables its up created. */
static int
s_drops_only_undone(const s_state_t *s, const PgQuery__DropStmt *d)
{
    return s->run->undo && s_drops_only(s->run->undo, d);
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

/*
 * A timeout set to 0 or to its default (0 unless the server's
 * configuration says otherwise) is none: "SET lock_timeout = 0", "= '0s'",
 * "TO DEFAULT", RESET.  Anything else counts as set.
 */
static int
s_is_zero_value(const PgQuery__Node *arg)
{
    const PgQuery__AConst *c;
    const char *v;

    if (!arg || arg->node_case != PG_QUERY__NODE__NODE_A_CONST)
        return 0;
    c = arg->a_const;
    if (c->val_case == PG_QUERY__A__CONST__VAL_IVAL)
        return !c->ival || c->ival->ival == 0;
    if (c->val_case == PG_QUERY__A__CONST__VAL_FVAL)
        return c->fval && strtod(c->fval->fval, NULL) == 0.0;
    if (c->val_case != PG_QUERY__A__CONST__VAL_SVAL || !c->sval)
        return 0;
    v = c->sval->sval;
    while (*v == ' ')
        v++;
    if (*v != '0' && !(*v == '.' && v[1] == '0'))
        return 0;
    while (*v == '0' || *v == '.')
        v++;
    while (*v == ' ')
        v++;
    return !*v || strcmp(v, "us") == 0 || strcmp(v, "ms") == 0 ||
           strcmp(v, "s") == 0 || strcmp(v, "min") == 0 || strcmp(v, "h") == 0 ||
           strcmp(v, "d") == 0;
}

/* A timeout set (on), cleared (off) or neither (-1) by name = value. */
static void
s_timeout(s_state_t *s, const char *name, int on, int local)
{
    int *flag = NULL, *reported = NULL, *loc = NULL, *session = NULL;

    if (strcmp(name, "lock_timeout") == 0) {
        flag = &s->lock_timeout;
        reported = &s->lock_reported;
        loc = &s->lock_local;
        session = &s->lock_session;
    } else if (strcmp(name, "statement_timeout") == 0) {
        flag = &s->statement_timeout;
        reported = &s->statement_reported;
        loc = &s->statement_local;
        session = &s->statement_session;
    } else {
        return;
    }
    /* SET LOCAL outside a transaction block does nothing (PostgreSQL warns). */
    if (local && !s_in_tx(s))
        return;
    *flag = on;
    *loc = on && local;
    if (!local)
        *session = on;
    if (!on)
        *reported = 0; /* unprotected again: the next slow lock is news */
}

/*
 * The end of an explicit transaction: each timeout is what it was at
 * BEGIN after a ROLLBACK, else its last session-level value.  Before,
 * a ROLLBACK kept a SET made in the transaction, and a COMMIT turned a
 * timeout off that a SET LOCAL had covered, whatever the session had
 * set (found by an audit).
 */
static void
s_timeouts_at_end(s_state_t *s, int rollback)
{
    if (rollback) {
        s->lock_session = s->lock_at_begin;
        s->statement_session = s->statement_at_begin;
    }
    s->lock_local = s->statement_local = 0;
    s->lock_timeout = s->lock_session;
    s->statement_timeout = s->statement_session;
    if (!s->lock_timeout)
        s->lock_reported = 0;
    if (!s->statement_timeout)
        s->statement_reported = 0;
}

static int
s_is_utc(const PgQuery__Node *arg)
{
    static const char *const zero[] = {
        "UTC", "Etc/UTC", "UCT", "Etc/UCT", "GMT", "Etc/GMT", "Zulu",
        "Etc/Zulu", "Universal", "Etc/Universal", "Z", NULL,
    };
    size_t i;

    if (!arg || arg->node_case != PG_QUERY__NODE__NODE_A_CONST ||
        arg->a_const->val_case != PG_QUERY__A__CONST__VAL_SVAL ||
        !arg->a_const->sval)
        return s_is_zero_value(arg); /* SET TIME ZONE 0 */
    for (i = 0; zero[i]; i++)
        if (strcasecmp(arg->a_const->sval->sval, zero[i]) == 0)
            return 1;
    return 0;
}

static void
s_variable_set(s_state_t *s, const PgQuery__VariableSetStmt *v)
{
    const char *name = v->name ? v->name : "";

    switch (v->kind) {
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_VALUE:
        if (strcmp(name, "timezone") == 0)
            s->tz_utc = v->n_args > 0 && s_is_utc(v->args[0]);
        else
            s_timeout(s, name, !(v->n_args > 0 && s_is_zero_value(v->args[0])),
                      v->is_local);
        break;
    case PG_QUERY__VARIABLE_SET_KIND__VAR_SET_DEFAULT:
    case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET:
        if (strcmp(name, "timezone") == 0)
            s->tz_utc = 0;
        s_timeout(s, name, 0, 0);
        break;
    case PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL:
        s->tz_utc = 0;
        s_timeout(s, "lock_timeout", 0, 0);
        s_timeout(s, "statement_timeout", 0, 0);
        break;
    default:
        break;
    }
}

/* SELECT set_config('lock_timeout', '2s', is_local) sets it too. */
static int
s_set_config(const ProtobufCMessage *msg, void *arg)
{
    s_state_t *s = arg;
    const PgQuery__FuncCall *f;
    const char *fn, *name;

    if (msg->descriptor != &pg_query__func_call__descriptor)
        return 0;
    f = (const PgQuery__FuncCall *)msg;
    fn = f->n_funcname ? fl_lint_node_str(f->funcname[f->n_funcname - 1]) : NULL;
    if (!fn || strcmp(fn, "set_config") != 0 || f->n_args != 3 ||
        f->args[0]->node_case != PG_QUERY__NODE__NODE_A_CONST ||
        f->args[0]->a_const->val_case != PG_QUERY__A__CONST__VAL_SVAL)
        return 0;
    name = f->args[0]->a_const->sval->sval;
    s_timeout(s, name, !s_is_zero_value(f->args[1]),
              f->args[2]->node_case == PG_QUERY__NODE__NODE_A_CONST &&
                  f->args[2]->a_const->val_case ==
                      PG_QUERY__A__CONST__VAL_BOOLVAL &&
                  f->args[2]->a_const->boolval->boolval);
    return 0;
}

static void
s_transaction(s_state_t *s, const PgQuery__TransactionStmt *t)
{
    /* In one query string, BEGIN and COMMIT are the author's own
     * boundaries inside PostgreSQL's implicit transaction: allowed. */
    int wrapped = s->base_tx && s_tx_mode(s) != FL_LINT_TX_IMPLICIT;

    switch (t->kind) {
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN:
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START:
        if (s->in_tx)
            S_REPORT(s, "transaction-nesting", -1,
                     "BEGIN inside a transaction: PostgreSQL does not nest "
                     "transactions");
        else if (wrapped)
            S_REPORT(s, "transaction-nesting", -1,
                     "BEGIN in a migration that already runs in a transaction");
        s->in_tx = 1;
        s->begin_stmt = s->cur;
        s->lock_at_begin = s->lock_session;
        s->statement_at_begin = s->statement_session;
        break;
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT:
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK:
        if (!s->in_tx && s_tx_mode(s) != FL_LINT_TX_IMPLICIT)
            S_REPORT(s, "transaction-nesting", -1,
                     wrapped ? "COMMIT or ROLLBACK ends the transaction the "
                               "migration runs in"
                             : "COMMIT or ROLLBACK without a BEGIN");
        s->in_tx = 0;
        if (s->lock_local || s->statement_local ||
            t->kind == PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK)
            s_timeouts_at_end(s, t->kind ==
                PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK);
        s_end_tx(s);
        /* AND CHAIN: the next transaction begins at once (before, what
         * followed was taken for outside one: found by an audit). */
        if (t->chain) {
            s->in_tx = 1;
            s->begin_stmt = s->cur;
            s->lock_at_begin = s->lock_session;
            s->statement_at_begin = s->statement_session;
        }
        break;
    default:
        break;
    }
}

/* DROP INDEX without CONCURRENTLY of an index not built in this file on
 * a table of this file: ACCESS EXCLUSIVE on a table its text does not
 * name (pg_locks, PostgreSQL 15). */
static int
s_drops_live_index(const s_state_t *s, const PgQuery__Node *n)
{
    const PgQuery__DropStmt *d;

    if (!n || n->node_case != PG_QUERY__NODE__NODE_DROP_STMT)
        return 0;
    d = n->drop_stmt;
    return d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_INDEX &&
           !d->concurrent && !s_drops_only(&s->created_idx, d);
}

static int
s_slow_lock(const s_state_t *s, const fl_stmt_t *st, const PgQuery__Node *n)
{
    size_t i;

    if (s_drops_live_index(s, n))
        return 1;
    /* ALTER TABLE ALL IN TABLESPACE: every table of it, none named. */
    if (n && n->node_case == PG_QUERY__NODE__NODE_ALTER_TABLE_MOVE_ALL_STMT)
        return 1;
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
        const char *why = !s->in_tx && s_tx_mode(s) == FL_LINT_TX_IMPLICIT
            ? ", and a file of several statements sent as one query string "
              "runs as one transaction"
            : "";
        if (n->node_case == PG_QUERY__NODE__NODE_INDEX_STMT)
            S_REPORT(s, "ban-concurrent-index-creation-in-transaction", -1,
                     "CREATE INDEX CONCURRENTLY cannot run inside a transaction "
                     "block%s", why);
        else
            S_REPORT(s, "no-transaction-statement-in-transaction", -1,
                     "%s cannot run inside a transaction block%s", st->kind,
                     s_tx_mode(s) == FL_LINT_TX_AUTO && !s->in_tx
                         ? ", and Flyway does not see it needs none: it runs "
                           "the script in a transaction"
                         : why);
    }
    if (!s->lock_timeout && !s->lock_reported && s_slow_lock(s, st, n)) {
        s->lock_reported = 1;
        S_REPORT(s, "require-lock-timeout", -1,
                 "this statement takes a lock that can queue behind long "
                 "transactions and block everyone else, and no lock_timeout is set");
    }
    if (!s->statement_timeout && !s->statement_reported && s_slow_lock(s, st, n)) {
        s->statement_reported = 1;
        S_REPORT(s, "require-statement-timeout", -1,
                 "this statement may run long under its lock, and no "
                 "statement_timeout is set");
    }

    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_ALTER_TABLE_MOVE_ALL_STMT:
        S_REPORT(s, "ban-set-tablespace", -1,
                 "ALTER ... ALL IN TABLESPACE copies every table it moves, "
                 "each under an ACCESS EXCLUSIVE lock");
        break;
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
            !n->create_table_as_stmt->into->skip_data)
            s_set_rv(&s->populated, n->create_table_as_stmt->into->rel);
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
        fl_finding_t *f = NULL;
        if (!ix->concurrent && !s_created(s, ix->relation))
            S_REPORT(s, "require-concurrent-index-creation", -1,
                     "CREATE INDEX without CONCURRENTLY blocks writes to \"%s\" "
                     "while the index builds",
                     ix->relation ? ix->relation->relname : "?");
        if (*ix->idxname && s_created(s, ix->relation)) {
            char *k = fl_lint_table_key(ix->relation->schemaname, ix->idxname);
            fl_lint_set_add(&s->created_idx, k);
            free(k);
        }
        if (ix->if_not_exists || !(robust || ix->concurrent) ||
            (ix->concurrent && s_in_tx(s)))
            break;
        if (!*ix->idxname && ix->concurrent)
            f = S_REPORT(s, "prefer-robust-stmts", -1,
                         "an unnamed CREATE INDEX CONCURRENTLY that fails leaves "
                         "an invalid index behind, and running it again builds "
                         "a second one under another name");
        else if (!*ix->idxname)
            f = S_REPORT(s, "prefer-robust-stmts", -1,
                         "an unnamed CREATE INDEX outside a transaction builds "
                         "a second index when it is run again after a failure "
                         "later in the file");
        else if (ix->concurrent)
            S_REPORT(s, "prefer-robust-stmts", -1,
                     "CREATE INDEX CONCURRENTLY without IF NOT EXISTS cannot "
                     "be run again after a failure, which leaves the invalid "
                     "index \"%s\" behind", ix->idxname);
        else
            S_REPORT(s, "prefer-robust-stmts", -1,
                     "CREATE INDEX without IF NOT EXISTS outside a transaction "
                     "cannot be run again after a failure later in the file");
        if (f) /* IF NOT EXISTS is a syntax error without a name */
            f->help = "name the index and add IF NOT EXISTS; after a failed "
                      "CONCURRENTLY build, drop the invalid index first";
        break;
    }
    case PG_QUERY__NODE__NODE_DROP_STMT: {
        const PgQuery__DropStmt *d = n->drop_stmt;
        s_drop_cascade(s, d);
        if (d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE) {
            if (!s_drops_only_undone(s, d))
                S_REPORT(s, "ban-drop-table", -1,
                         "dropping a table breaks clients that still use it "
                         "and destroys its data");
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
        /* SET NOT NULL scans them too (SHARE lock, pg_stat: one scan). */
        else if (n->alter_domain_stmt->subtype &&
                 strcmp(n->alter_domain_stmt->subtype, "O") == 0)
            S_REPORT(s, "ban-alter-domain-with-add-constraint", -1,
                     "ALTER DOMAIN ... SET NOT NULL checks every column that "
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
    case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
        s_variable_set(s, n->variable_set_stmt);
        /* Unqualified names may mean other tables from here on. */
        if (fl_lint_sets_search_path(n)) {
            fl_lint_set_forget_unqualified(&s->created);
            fl_lint_set_forget_unqualified(&s->populated);
        }
        break;
    case PG_QUERY__NODE__NODE_SELECT_STMT:
        if (n->select_stmt->into_clause && n->select_stmt->into_clause->rel &&
            !n->select_stmt->into_clause->skip_data)
            s_set_rv(&s->populated, n->select_stmt->into_clause->rel);
        (void)fl_lint_walk(&n->base, s_set_config, s);
        break;
    case PG_QUERY__NODE__NODE_INSERT_STMT:
        if (s_created(s, n->insert_stmt->relation))
            s_set_rv(&s->populated, n->insert_stmt->relation);
        break;
    case PG_QUERY__NODE__NODE_COPY_STMT:
        if (n->copy_stmt->is_from && s_created(s, n->copy_stmt->relation))
            s_set_rv(&s->populated, n->copy_stmt->relation);
        break;
    case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
        s_transaction(s, n->transaction_stmt);
        break;
    default:
        break;
    }
}

/* ---- syntax newer than the parser ---- */

/*
 * Syntax PostgreSQL 16 to 19 added, which the PostgreSQL 15 grammar
 * rejects.  A pattern is upper-case words in order; "*" skips any number
 * of words, "^" anchors at the statement's first word, "#N" is a numeric
 * literal PostgreSQL 16 reads and 15 does not (1_000, 0x1F, 0o17, 0b101).
 */
static const struct {
    int version;
    const char *pattern;
    const char *what;
} s_newer[] = {
    {160000, "#N", "a numeric literal with '_' or a 0x, 0o or 0b prefix"},
    {160000, "SYSTEM_USER", "SYSTEM_USER"},
    {160000, "IS JSON", "IS JSON"},
    {160000, "JSON_OBJECT", "JSON_OBJECT()"},
    {160000, "JSON_ARRAY", "JSON_ARRAY()"},
    {160000, "JSON_OBJECTAGG", "JSON_OBJECTAGG()"},
    {160000, "JSON_ARRAYAGG", "JSON_ARRAYAGG()"},
    {160000, "^GRANT * WITH INHERIT", "GRANT ... WITH INHERIT"},
    {160000, "^GRANT * WITH SET", "GRANT ... WITH SET"},
    {170000, "JSON_TABLE", "JSON_TABLE"},
    {170000, "JSON_EXISTS", "JSON_EXISTS()"},
    {170000, "JSON_QUERY", "JSON_QUERY()"},
    {170000, "JSON_VALUE", "JSON_VALUE()"},
    {170000, "JSON_SCALAR", "JSON_SCALAR()"},
    {170000, "JSON_SERIALIZE", "JSON_SERIALIZE()"},
    {170000, "SET EXPRESSION", "ALTER COLUMN ... SET EXPRESSION"},
    {170000, "NOT MATCHED BY", "MERGE ... WHEN NOT MATCHED BY SOURCE"},
    {170000, "^MERGE * RETURNING", "MERGE ... RETURNING"},
    {170000, "SET ACCESS METHOD DEFAULT", "SET ACCESS METHOD DEFAULT"},
    {180000, "NOT ENFORCED", "NOT ENFORCED constraints"},
    {180000, "VIRTUAL", "virtual generated columns"},
    {180000, "WITHOUT OVERLAPS", "WITHOUT OVERLAPS"},
    {180000, "PERIOD", "PERIOD in a foreign key"},
    {180000, "NOT NULL * NOT VALID", "NOT NULL ... NOT VALID"},
    {180000, "RETURNING WITH", "RETURNING WITH (OLD ..., NEW ...)"},
    {190000, "^REPACK", "REPACK"},
};

/* The words of a statement, upper-cased, strings and comments skipped;
 * "#N" for a numeric literal only PostgreSQL 16+ reads. */
static char **
s_words(const char *t, size_t len, size_t *count)
{
    char **w = NULL;
    size_t n = 0, i = 0, j;

    while (i < len) {
        j = s_skip_quoted(t, i, len);
        if (j == i)
            j = fl_lint_skip_space(t, i, len);
        if (j != i) {
            i = j;
            continue;
        }
        if (isalpha((unsigned char)t[i]) || t[i] == '_') {
            for (j = i; j < len && (isalnum((unsigned char)t[j]) || t[j] == '_' ||
                                    t[j] == '$'); j++)
                ;
        } else if (isdigit((unsigned char)t[i])) {
            int newer = t[i] == '0' && i + 1 < len && strchr("xXoObB", t[i + 1]);
            for (j = i; j < len && (isalnum((unsigned char)t[j]) || t[j] == '_'); j++)
                newer |= t[j] == '_';
            if (!newer) {
                i = j;
                continue;
            }
            w = fl_reallocarray(w, n + 1, sizeof(char *));
            w[n++] = fl_strdup("#N");
            i = j;
            continue;
        } else {
            i++;
            continue;
        }
        w = fl_reallocarray(w, n + 1, sizeof(char *));
        w[n] = fl_strndup(t + i, j - i);
        for (char *c = w[n]; *c; c++)
            *c = (char)toupper((unsigned char)*c);
        n++;
        i = j;
    }
    *count = n;
    return w;
}

static int
s_match_words(char **w, size_t n, const char *pattern)
{
    char pat[64], *tok[8], *save = NULL, *p;
    size_t ntok = 0, i = 0, k, start;
    int anchored = pattern[0] == '^';

    (void)snprintf(pat, sizeof(pat), "%s", pattern + anchored);
    for (p = strtok_r(pat, " ", &save); p && ntok < 8; p = strtok_r(NULL, " ", &save))
        tok[ntok++] = p;
    for (start = 0; start < n; start++) {
        size_t at = start;
        int ok = 1;
        if (anchored && start > 0)
            return 0;
        for (k = 0; k < ntok && ok; k++) {
            if (strcmp(tok[k], "*") == 0) {
                /* find the next word anywhere after */
                k++;
                if (k >= ntok)
                    break;
                while (at < n && strcmp(w[at], tok[k]) != 0)
                    at++;
                ok = at < n;
                at++;
            } else {
                ok = at < n && strcmp(w[at], tok[k]) == 0;
                at++;
            }
        }
        if (ok)
            return 1;
    }
    (void)i;
    return 0;
}

/* Reports a statement the grammar rejected, naming newer syntax in it. */
static void
s_syntax_error(s_state_t *s, const fl_stmt_t *st)
{
    size_t at = st->error_line > 0 ? st->error_offset : st->offset, n = 0, i, k;
    char **w = s_words(st->sql, strlen(st->sql), &n);
    const char *err = st->error ? st->error : "syntax error";

    for (k = 0; k < sizeof(s_newer) / sizeof(s_newer[0]); k++)
        if (s_match_words(w, n, s_newer[k].pattern))
            break;
    if (k == sizeof(s_newer) / sizeof(s_newer[0]))
        fl_lint_report(s->run, "syntax-error", s->cur, at,
                       "the PostgreSQL 15 grammar cannot parse this statement: "
                       "%s", err);
    else if (s->pgv >= s_newer[k].version)
        fl_lint_report(s->run, "unsupported-syntax", s->cur, st->offset,
                       "this statement uses %s, PostgreSQL %d syntax that the "
                       "PostgreSQL 15 grammar flotilla checks with cannot read "
                       "(%s), so it is not checked", s_newer[k].what,
                       s_newer[k].version / 10000, err);
    else
        fl_lint_report(s->run, "syntax-error", s->cur, at,
                       "the PostgreSQL 15 grammar cannot parse this statement: "
                       "%s; %s is PostgreSQL %d syntax, newer than the target "
                       "PostgreSQL %d (--pg-version)", err, s_newer[k].what,
                       s_newer[k].version / 10000, s->pgv / 10000);
    for (i = 0; i < n; i++)
        free(w[i]);
    free(w);
}

/* ---- the transaction the runner holds ---- */

/*
 * Statements Flyway's PostgreSQL parser sees cannot run in a transaction
 * (PostgreSQLParser.detectCanExecuteInTransaction): it then runs the
 * script without one.  REINDEX ... CONCURRENTLY of a table or index and
 * DETACH PARTITION ... CONCURRENTLY are not among them.
 */
static int
s_flyway_no_tx(const PgQuery__Node *n, int pgv)
{
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_INDEX_STMT:
        return n->index_stmt->concurrent;
    case PG_QUERY__NODE__NODE_DROP_STMT:
        return n->drop_stmt->concurrent;
    case PG_QUERY__NODE__NODE_VACUUM_STMT:
        return n->vacuum_stmt->is_vacuumcmd;
    case PG_QUERY__NODE__NODE_CREATEDB_STMT:
    case PG_QUERY__NODE__NODE_DROPDB_STMT:
    case PG_QUERY__NODE__NODE_CREATE_TABLE_SPACE_STMT:
    case PG_QUERY__NODE__NODE_DROP_TABLE_SPACE_STMT:
    case PG_QUERY__NODE__NODE_CREATE_SUBSCRIPTION_STMT:
    case PG_QUERY__NODE__NODE_DROP_SUBSCRIPTION_STMT:
    case PG_QUERY__NODE__NODE_ALTER_SYSTEM_STMT:
        return 1;
    case PG_QUERY__NODE__NODE_REINDEX_STMT:
        return n->reindex_stmt->kind != PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_TABLE &&
               n->reindex_stmt->kind != PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_INDEX;
    case PG_QUERY__NODE__NODE_DISCARD_STMT:
        return n->discard_stmt->target == PG_QUERY__DISCARD_MODE__DISCARD_ALL;
    case PG_QUERY__NODE__NODE_ALTER_ENUM_STMT:
        return pgv < 120000 && *n->alter_enum_stmt->new_val &&
               !*n->alter_enum_stmt->old_val;
    default:
        return 0;
    }
}

/* Whether the runner's transaction holds the whole input (FL_LINT_TX_*). */
static int
s_base_tx(s_state_t *s)
{
    const fl_lint_run_t *run = s->run;
    size_t i, found = SIZE_MAX, others = 0;

    switch (s_tx_mode(s)) {
    case FL_LINT_TX_WRAPPED:
        return 1;
    case FL_LINT_TX_IMPLICIT:
        return run->stmts.count > 1;
    case FL_LINT_TX_AUTO:
        for (i = 0; i < run->stmts.count; i++) {
            const PgQuery__Node *n = run->tree.nodes[i];
            if (n && s_flyway_no_tx(n, s->pgv)) {
                if (found == SIZE_MAX)
                    found = i;
            } else {
                others++;
            }
        }
        if (found == SIZE_MAX)
            return 1;
        if (others) {
            s->cur = found;
            S_REPORT(s, "no-transaction-statement-in-transaction", -1,
                     "Flyway refuses a script that mixes %s, which it runs "
                     "outside a transaction, with other statements (unless "
                     "mixed=true, which runs every statement on its own)",
                     run->stmts.items[found].kind);
        }
        return 0;
    default:
        return 0;
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
    s.sub_at = SIZE_MAX;
    s.lock_timeout = run->opts->lock_timeout_set;
    s.statement_timeout = run->opts->statement_timeout_set;
    s.lock_session = s.lock_at_begin = s.lock_timeout;
    s.statement_session = s.statement_at_begin = s.statement_timeout;
    s.base_tx = s_base_tx(&s);
    for (s.cur = 0; s.cur < run->stmts.count; s.cur++) {
        const fl_stmt_t *st = &run->stmts.items[s.cur];
        const PgQuery__Node *n = run->tree.nodes[s.cur];

        if (st->parse_error) {
            s_syntax_error(&s, st);
            continue;
        }
        if (!n)
            continue;
        s_statement(&s, n);
        /* Only now: a CREATE TABLE's own rules see the table as new. */
        for (i = 0; i < st->ntables; i++) {
            if (st->tables[i].created && !st->tables[i].if_not_exists) {
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
    fl_lint_set_release(&s.populated);
    fl_lint_set_release(&s.created_idx);
    fl_lint_set_release(&s.notnull);
    for (i = 0; i < s.npending; i++) {
        free(s.pending[i].key);
        free(s.pending[i].column);
    }
    free(s.pending);
}
