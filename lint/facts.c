/*
 * facts.c - statement facts from the PostgreSQL 15 parser (libpg_query).
 *
 * The input is parsed once as a whole with pg_query_parse_protobuf(),
 * which splits exactly as pg_query_split_with_parser() does (both run the
 * grammar and report stmt_location/stmt_len) but also gives the trees, so
 * a 10,000-statement file is parsed once, not twice.  When the whole input
 * does not parse, pg_query_split_with_scanner() splits it and each piece
 * is parsed alone, so one bad statement costs only itself.
 *
 * Lock levels follow the PostgreSQL 15 documentation (ALTER TABLE notes,
 * 13.3.1); when one ALTER TABLE has several subcommands the strictest lock
 * wins, as in the server.  Tables created earlier in the same input get no
 * TABLE_EXISTS check (they cannot exist yet on the live database).
 */
#include <assert.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <pg_query.h>

#include "common/alloc.h"
#include "lint/lint_internal.h"

/* A NOT VALID constraint seen earlier, for VALIDATE CONSTRAINT's check. */
typedef struct {
    char *table_key;
    char *name;
    fl_check_t check; /* FOREIGN_KEY or CHECK as it would have been */
} s_pending_t;

typedef struct {
    int pg_version;
    fl_lint_set_t created;  /* table keys created earlier in the input */
    s_pending_t *pending;
    size_t npending;
} s_ctx_t;

const char *
fl_lock_level_name(fl_lock_level level)
{
    static const char *const names[] = {
        "", "ACCESS SHARE", "ROW SHARE", "ROW EXCLUSIVE",
        "SHARE UPDATE EXCLUSIVE", "SHARE", "SHARE ROW EXCLUSIVE",
        "EXCLUSIVE", "ACCESS EXCLUSIVE",
    };
    if ((int)level < 0 || (size_t)level >= sizeof(names) / sizeof(names[0]))
        return "";
    return names[level];
}

/* ---- small helpers shared with rules.c ---- */

/* protobuf-c leaves unset strings NULL or "" depending on the field. */
static const char *
s_str(const char *s)
{
    return s ? s : "";
}

char *
fl_lint_table_key(const char *schema, const char *name)
{
    if (schema && *schema)
        return fl_asprintf("%s.%s", schema, name ? name : "");
    return fl_strdup(name ? name : "");
}

const char *
fl_lint_node_str(const PgQuery__Node *node)
{
    if (node && node->node_case == PG_QUERY__NODE__NODE_STRING && node->string)
        return node->string->sval;
    return NULL;
}

static size_t
s_hash(const char *s)
{
    size_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

static size_t
s_set_find(const fl_lint_set_t *set, const char *key)
{
    size_t i = s_hash(key) & (set->cap - 1);
    while (set->slots[i] && strcmp(set->slots[i], key) != 0)
        i = (i + 1) & (set->cap - 1);
    return i;
}

void
fl_lint_set_add(fl_lint_set_t *set, const char *key)
{
    size_t i;

    if ((set->count + 1) * 2 > set->cap) {
        fl_lint_set_t bigger = {NULL, set->cap ? set->cap * 2 : 16, 0};
        bigger.slots = fl_calloc(bigger.cap, sizeof(char *));
        for (i = 0; i < set->cap; i++) {
            if (set->slots[i]) {
                bigger.slots[s_set_find(&bigger, set->slots[i])] = set->slots[i];
                bigger.count++;
            }
        }
        free(set->slots);
        *set = bigger;
    }
    i = s_set_find(set, key);
    if (!set->slots[i]) {
        set->slots[i] = fl_strdup(key);
        set->count++;
    }
}

int
fl_lint_set_has(const fl_lint_set_t *set, const char *key)
{
    return set->cap && set->slots[s_set_find(set, key)] != NULL;
}

void
fl_lint_set_remove(fl_lint_set_t *set, const char *key)
{
    size_t i, j;

    if (!fl_lint_set_has(set, key))
        return;
    i = s_set_find(set, key);
    fl_free(&set->slots[i]);
    set->count--;
    /* Re-insert the rest of the cluster so lookups keep finding it. */
    for (j = (i + 1) & (set->cap - 1); set->slots[j]; j = (j + 1) & (set->cap - 1)) {
        char *moved = set->slots[j];
        set->slots[j] = NULL;
        set->slots[s_set_find(set, moved)] = moved;
    }
}

void
fl_lint_set_forget_unqualified(fl_lint_set_t *set)
{
    char **gone = fl_calloc(set->count + 1, sizeof(char *));
    size_t n = 0;

    for (size_t i = 0; i < set->cap; i++)
        if (set->slots[i] && strchr(set->slots[i], '.') == NULL)
            gone[n++] = fl_strdup(set->slots[i]);
    for (size_t i = 0; i < n; i++) {
        fl_lint_set_remove(set, gone[i]);
        free(gone[i]);
    }
    free(gone);
}

int
fl_lint_sets_search_path(const PgQuery__Node *n)
{
    const PgQuery__VariableSetStmt *v;

    if (!n || n->node_case != PG_QUERY__NODE__NODE_VARIABLE_SET_STMT)
        return 0;
    v = n->variable_set_stmt;
    return v->kind == PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL ||
           (v->name && strcmp(v->name, "search_path") == 0);
}

void
fl_lint_set_release(fl_lint_set_t *set)
{
    size_t i;
    for (i = 0; i < set->cap; i++)
        free(set->slots[i]);
    free(set->slots);
    set->slots = NULL;
    set->cap = set->count = 0;
}

int
fl_lint_walk(const ProtobufCMessage *msg, fl_lint_walk_fn fn, void *arg)
{
    const ProtobufCMessageDescriptor *d;
    unsigned i;
    int rc;

    if (!msg)
        return 0;
    if ((rc = fn(msg, arg)) != 0)
        return rc;
    d = msg->descriptor;
    if (d == &pg_query__node__descriptor) {
        /* A Node is a oneof of some 250 message fields: go straight to the
         * one set (its field id is node_case) instead of testing each. */
        const PgQuery__Node *n = (const PgQuery__Node *)msg;
        const ProtobufCFieldDescriptor *f =
            n->node_case ? protobuf_c_message_descriptor_get_field(
                               d, (unsigned)n->node_case)
                         : NULL;
        if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE)
            return 0;
        return fl_lint_walk(*(ProtobufCMessage *const *)((const char *)msg +
                                                        f->offset),
                            fn, arg);
    }
    for (i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)msg;

        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *items =
                *(ProtobufCMessage *const *const *)(base + f->offset);
            size_t k;
            for (k = 0; k < n; k++)
                if ((rc = fl_lint_walk(items[k], fn, arg)) != 0)
                    return rc;
        } else {
            const ProtobufCMessage *sub =
                *(ProtobufCMessage *const *)(base + f->offset);
            if ((rc = fl_lint_walk(sub, fn, arg)) != 0)
                return rc;
        }
    }
    return 0;
}

char *
fl_lint_deparse_expr(const PgQuery__Node *expr)
{
    /* Deparse "SELECT WHERE <expr>" and keep what follows WHERE. */
    PgQuery__SelectStmt sel = PG_QUERY__SELECT_STMT__INIT;
    PgQuery__Node node = PG_QUERY__NODE__INIT;
    PgQuery__RawStmt raw = PG_QUERY__RAW_STMT__INIT;
    PgQuery__RawStmt *raws[1];
    PgQuery__ParseResult pr = PG_QUERY__PARSE_RESULT__INIT;
    PgQueryProtobuf pb = {0, NULL};
    PgQueryDeparseResult dr;
    char *out = NULL;
    const char *where;

    if (!expr)
        return NULL;
    sel.where_clause = (PgQuery__Node *)expr;
    sel.op = PG_QUERY__SET_OPERATION__SETOP_NONE;
    sel.limit_option = PG_QUERY__LIMIT_OPTION__LIMIT_OPTION_DEFAULT;
    node.node_case = PG_QUERY__NODE__NODE_SELECT_STMT;
    node.select_stmt = &sel;
    raw.stmt = &node;
    raws[0] = &raw;
    pr.version = PG_VERSION_NUM;
    pr.n_stmts = 1;
    pr.stmts = raws;
    pb.len = pg_query__parse_result__get_packed_size(&pr);
    pb.data = fl_malloc(pb.len ? pb.len : 1);
    (void)pg_query__parse_result__pack(&pr, (uint8_t *)pb.data);
    dr = pg_query_deparse_protobuf(pb);
    if (!dr.error && dr.query && (where = strstr(dr.query, "WHERE ")) != NULL)
        out = fl_strdup(where + 6);
    pg_query_free_deparse_result(dr);
    free(pb.data);
    return out;
}

char *
fl_lint_deparse_stmts(PgQuery__Node *const *stmts, size_t n)
{
    PgQuery__RawStmt raw = PG_QUERY__RAW_STMT__INIT;
    PgQuery__RawStmt *raws[1];
    PgQuery__ParseResult pr = PG_QUERY__PARSE_RESULT__INIT;
    PgQueryProtobuf pb = {0, NULL};
    char *out = fl_strdup(""), *next;
    size_t i;

    raws[0] = &raw;
    pr.version = PG_VERSION_NUM;
    pr.n_stmts = 1;
    pr.stmts = raws;
    /* One at a time: the deparser joins statements with "; " only. */
    for (i = 0; i < n && out; i++) {
        PgQueryDeparseResult dr;
        raw.stmt = stmts[i];
        pb.len = pg_query__parse_result__get_packed_size(&pr);
        pb.data = fl_malloc(pb.len ? pb.len : 1);
        (void)pg_query__parse_result__pack(&pr, (uint8_t *)pb.data);
        dr = pg_query_deparse_protobuf(pb);
        if (dr.error || !dr.query) {
            fl_free(&out);
        } else {
            next = fl_asprintf("%s%s;\n", out, dr.query);
            free(out);
            out = next;
        }
        pg_query_free_deparse_result(dr);
        fl_free(&pb.data);
    }
    return out;
}

/* ---- positions ---- */

void
fl_lint_lines_init(fl_lint_lines_t *lines, const char *text, size_t len)
{
    size_t cap = 64, i;

    lines->text = text;
    lines->len = len;
    lines->starts = fl_malloc(cap * sizeof(size_t));
    lines->starts[0] = 0;
    lines->nlines = 1;
    for (i = 0; i < len; i++) {
        if (text[i] != '\n')
            continue;
        if (lines->nlines == cap) {
            cap *= 2;
            lines->starts = fl_reallocarray(lines->starts, cap, sizeof(size_t));
        }
        lines->starts[lines->nlines++] = i + 1;
    }
}

void
fl_lint_lines_release(fl_lint_lines_t *lines)
{
    fl_free(&lines->starts);
    lines->nlines = 0;
}

void
fl_lint_lines_pos(const fl_lint_lines_t *lines, size_t offset, int *line,
                  int *column)
{
    size_t lo = 0, hi = lines->nlines, i;
    int col = 1;

    if (offset > lines->len)
        offset = lines->len;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (lines->starts[mid] <= offset)
            lo = mid;
        else
            hi = mid;
    }
    /* Columns count characters, not UTF-8 continuation bytes. */
    for (i = lines->starts[lo]; i < offset; i++)
        if (((unsigned char)lines->text[i] & 0xC0) != 0x80)
            col++;
    *line = (int)lo + 1;
    *column = col;
}

size_t
fl_lint_skip_space(const char *s, size_t i, size_t end)
{
    while (i < end) {
        if (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' ||
            s[i] == '\f' || s[i] == '\v') {
            i++;
        } else if (s[i] == '-' && i + 1 < end && s[i + 1] == '-') {
            while (i < end && s[i] != '\n')
                i++;
        } else if (s[i] == '/' && i + 1 < end && s[i + 1] == '*') {
            int depth = 1;
            i += 2;
            while (i < end && depth > 0) {
                if (s[i] == '/' && i + 1 < end && s[i + 1] == '*') {
                    depth++;
                    i += 2;
                } else if (s[i] == '*' && i + 1 < end && s[i + 1] == '/') {
                    depth--;
                    i += 2;
                } else {
                    i++;
                }
            }
        } else {
            break;
        }
    }
    return i;
}

/* ---- building one fl_stmt_t ---- */

static fl_table_ref_t *
s_add_table(fl_stmt_t *st, const char *schema, const char *name,
            fl_lock_level lock, int writes)
{
    size_t i;
    fl_table_ref_t *t;

    if (!name)
        return NULL;
    if (schema && !*schema)
        schema = NULL;
    for (i = 0; i < st->ntables; i++) {
        t = &st->tables[i];
        if (strcmp(t->name, name) == 0 &&
            ((!t->schema && !schema) ||
             (t->schema && schema && strcmp(t->schema, schema) == 0))) {
            if (lock > t->lock)
                t->lock = lock;
            t->writes |= writes;
            return t;
        }
    }
    st->tables = fl_reallocarray(st->tables, st->ntables + 1, sizeof(*t));
    t = &st->tables[st->ntables++];
    memset(t, 0, sizeof(*t));
    t->schema = schema && *schema ? fl_strdup(schema) : NULL;
    t->name = fl_strdup(name);
    t->lock = lock;
    t->writes = writes;
    return t;
}

static fl_table_ref_t *
s_add_rv(fl_stmt_t *st, const PgQuery__RangeVar *rv, fl_lock_level lock,
         int writes)
{
    return rv ? s_add_table(st, rv->schemaname, rv->relname, lock, writes) : NULL;
}

/* What a no-transaction statement reaches (fl_stmt_t.reach). */
static void
s_reach(fl_stmt_t *st, const char *schema, const char *name)
{
    fl_check_rel_t *r;

    st->reach = fl_reallocarray(st->reach, st->nreach + 1, sizeof(*r));
    r = &st->reach[st->nreach++];
    r->schema = schema && *schema ? fl_strdup(schema) : NULL;
    r->name = name && *name ? fl_strdup(name) : NULL;
}

/* The relation a list item names: a RangeVar, or VACUUM's VacuumRelation. */
static const PgQuery__RangeVar *
s_node_rv(const PgQuery__Node *n)
{
    if (n->node_case == PG_QUERY__NODE__NODE_RANGE_VAR)
        return n->range_var;
    if (n->node_case == PG_QUERY__NODE__NODE_VACUUM_RELATION)
        return n->vacuum_relation->relation;
    return NULL;
}

static void
s_reach_rv(fl_stmt_t *st, const PgQuery__RangeVar *rv)
{
    if (rv != NULL)
        s_reach(st, rv->schemaname, rv->relname);
}

static int
s_is_created(const s_ctx_t *ctx, const char *schema, const char *name)
{
    char *key = fl_lint_table_key(schema, name);
    int has = fl_lint_set_has(&ctx->created, key);
    free(key);
    return has;
}

static fl_check_t *
s_add_check(fl_stmt_t *st, fl_check_kind kind, const char *schema,
            const char *table)
{
    fl_check_t *c;

    st->checks = fl_reallocarray(st->checks, st->nchecks + 1, sizeof(*c));
    c = &st->checks[st->nchecks++];
    memset(c, 0, sizeof(*c));
    c->kind = kind;
    c->schema = schema && *schema ? fl_strdup(schema) : NULL;
    c->table = fl_strdup(table ? table : "");
    return c;
}

static void
s_check_add_column(char ***cols, size_t *n, const char *col)
{
    *cols = fl_reallocarray(*cols, *n + 1, sizeof(char *));
    (*cols)[(*n)++] = fl_strdup(col ? col : "");
}

static void
s_table_exists(fl_stmt_t *st, const s_ctx_t *ctx, const char *schema,
               const char *name)
{
    size_t i;

    if (schema && !*schema)
        schema = NULL;
    if (!name || s_is_created(ctx, schema, name))
        return;
    for (i = 0; i < st->nchecks; i++) {
        const fl_check_t *c = &st->checks[i];
        if (c->kind == FL_CHECK_TABLE_EXISTS && strcmp(c->table, name) == 0 &&
            ((!c->schema && !schema) ||
             (c->schema && schema && strcmp(c->schema, schema) == 0)))
            return;
    }
    (void)s_add_check(st, FL_CHECK_TABLE_EXISTS, schema, name);
}

static int
s_same(const char *a, const char *b)
{
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/*
 * A check on a column of rv.  It runs just before its statement, after
 * the statements before it, so a table created earlier in the input has
 * its checks too (its rows are the migration's own).
 */
static fl_check_t *
s_column_check(fl_stmt_t *st, fl_check_kind kind, const PgQuery__RangeVar *rv,
               const char *column)
{
    fl_check_t *c;
    size_t i;

    if (!rv)
        return NULL;
    /* NOT NULL PRIMARY KEY: one count of the NULLs is enough. */
    for (i = 0; kind == FL_CHECK_NOT_NULL && column && i < st->nchecks; i++) {
        c = &st->checks[i];
        if (c->kind == kind && c->ncolumns == 1 &&
            strcmp(c->columns[0], column) == 0 &&
            strcmp(c->table, rv->relname) == 0 &&
            s_same(c->schema, rv->schemaname && *rv->schemaname
                                  ? rv->schemaname : NULL))
            return c;
    }
    c = s_add_check(st, kind, rv->schemaname, rv->relname);
    if (column)
        s_check_add_column(&c->columns, &c->ncolumns, column);
    c->only = !rv->inh;
    return c;
}

/* Records what the statement destroys, once (two CTEs may delete from one
 * table).  table is NULL only for DROP_SCHEMA. */
static void
s_destroy(fl_stmt_t *st, fl_destroy_kind kind, const char *schema,
          const char *table, const char *column)
{
    fl_destroy_t *d;
    size_t i;

    if (schema && !*schema)
        schema = NULL;
    st->destructive = 1;
    for (i = 0; i < st->ndestroys; i++) {
        d = &st->destroys[i];
        if (d->kind == kind && s_same(d->schema, schema) &&
            s_same(d->table, table) && s_same(d->column, column))
            return;
    }
    st->destroys = fl_reallocarray(st->destroys, st->ndestroys + 1, sizeof(*d));
    d = &st->destroys[st->ndestroys++];
    d->kind = kind;
    d->schema = schema ? fl_strdup(schema) : NULL;
    d->table = table ? fl_strdup(table) : NULL;
    d->column = column ? fl_strdup(column) : NULL;
}

static void
s_cols_free(fl_check_col_t *cols, size_t n)
{
    size_t j;
    for (j = 0; j < n; j++) {
        free(cols[j].name);
        free(cols[j].value);
        free(cols[j].type);
    }
    free(cols);
}

static void
s_check_free(fl_check_t *c)
{
    size_t j;
    free(c->schema);
    free(c->table);
    for (j = 0; j < c->ncolumns; j++) {
        free(c->columns[j]);
        if (c->exprs)
            free(c->exprs[j]);
    }
    free(c->columns);
    free(c->exprs);
    free(c->ref_schema);
    free(c->ref_table);
    for (j = 0; j < c->nref_columns; j++)
        free(c->ref_columns[j]);
    free(c->ref_columns);
    free(c->expr);
    free(c->predicate);
    s_cols_free(c->pending, c->npending);
    free(c->if_added);
    free(c->if_no_relation);
    for (j = 0; j < c->ndropped_with; j++) {
        free(c->dropped_with[j].schema);
        free(c->dropped_with[j].name);
    }
    free(c->dropped_with);
}

/* Appends copies of n pending columns to c's. */
static void
s_check_add_pending(fl_check_t *c, const fl_check_col_t *cols, size_t n)
{
    size_t j;

    if (n == 0)
        return;
    c->pending = fl_reallocarray(c->pending, c->npending + n,
                                 sizeof(*c->pending));
    for (j = 0; j < n; j++) {
        fl_check_col_t *d = &c->pending[c->npending++];
        *d = cols[j];
        d->name = fl_strdup_or_null(cols[j].name);
        d->value = fl_strdup_or_null(cols[j].value);
        d->type = fl_strdup_or_null(cols[j].type);
    }
}

static void
s_check_copy(fl_check_t *dst, const fl_check_t *src)
{
    size_t j;

    memset(dst, 0, sizeof(*dst));
    dst->kind = src->kind;
    dst->schema = src->schema ? fl_strdup(src->schema) : NULL;
    dst->table = fl_strdup(src->table);
    for (j = 0; j < src->ncolumns; j++)
        s_check_add_column(&dst->columns, &dst->ncolumns, src->columns[j]);
    if (src->exprs) {
        dst->exprs = fl_calloc(src->ncolumns ? src->ncolumns : 1,
                               sizeof(char *));
        for (j = 0; j < src->ncolumns; j++)
            dst->exprs[j] = fl_strdup_or_null(src->exprs[j]);
    }
    dst->ref_schema = src->ref_schema ? fl_strdup(src->ref_schema) : NULL;
    dst->ref_table = src->ref_table ? fl_strdup(src->ref_table) : NULL;
    for (j = 0; j < src->nref_columns; j++)
        s_check_add_column(&dst->ref_columns, &dst->nref_columns,
                           src->ref_columns[j]);
    dst->expr = src->expr ? fl_strdup(src->expr) : NULL;
    dst->predicate = fl_strdup_or_null(src->predicate);
    dst->nulls_not_distinct = src->nulls_not_distinct;
    s_check_add_pending(dst, src->pending, src->npending);
    dst->if_added = fl_strdup_or_null(src->if_added);
    dst->if_table = src->if_table;
    dst->if_no_relation = fl_strdup_or_null(src->if_no_relation);
    dst->only = src->only;
    dst->match_full = src->match_full;
    dst->validates = src->validates;
    if (src->ndropped_with) {
        dst->dropped_with = fl_calloc(src->ndropped_with,
                                      sizeof(*dst->dropped_with));
        for (j = 0; j < src->ndropped_with; j++) {
            dst->dropped_with[j].schema = fl_strdup_or_null(src->dropped_with[j].schema);
            dst->dropped_with[j].name = fl_strdup_or_null(src->dropped_with[j].name);
        }
        dst->ndropped_with = src->ndropped_with;
    }
}

static int
s_collect_row_share(const ProtobufCMessage *msg, void *arg)
{
    fl_stmt_t *st = arg;
    if (msg->descriptor == &pg_query__range_var__descriptor)
        (void)s_add_rv(st, (const PgQuery__RangeVar *)msg,
                       FL_LOCK_ROW_SHARE, 0);
    return 0;
}

/*
 * A table a query reads takes ACCESS SHARE; one a FOR UPDATE, NO KEY
 * UPDATE, SHARE or KEY SHARE clause locks rows of takes ROW SHARE
 * (pg_locks, PostgreSQL 15).  Every table of that query level's FROM
 * list is counted, also those its OF list leaves out: a lock overstated,
 * never one understated.
 */
static int
s_collect_reads(const ProtobufCMessage *msg, void *arg)
{
    fl_stmt_t *st = arg;
    if (msg->descriptor == &pg_query__range_var__descriptor)
        (void)s_add_rv(st, (const PgQuery__RangeVar *)msg,
                       FL_LOCK_ACCESS_SHARE, 0);
    if (msg->descriptor == &pg_query__select_stmt__descriptor) {
        const PgQuery__SelectStmt *sel = (const PgQuery__SelectStmt *)msg;
        size_t i;
        for (i = 0; sel->n_locking_clause && i < sel->n_from_clause; i++)
            (void)fl_lint_walk(&sel->from_clause[i]->base,
                               s_collect_row_share, st);
    }
    return 0;
}

/* Tables read by a query (FROM lists, subqueries, CTEs). */
static void
s_reads(fl_stmt_t *st, const PgQuery__Node *query)
{
    if (query)
        (void)fl_lint_walk(&query->base, s_collect_reads, st);
}

/*
 * The target of an INSERT, UPDATE, DELETE or MERGE, wherever it stands:
 * ROW EXCLUSIVE and written.  When the statement can change or remove rows
 * of a live table (UPDATE, DELETE, INSERT ... ON CONFLICT DO UPDATE,
 * MERGE's WHEN MATCHED THEN UPDATE or DELETE), also a TABLE_EXISTS check
 * and a destroy per kind, UPDATE before DELETE.  Other nodes add nothing.
 */
static void
s_dml(fl_stmt_t *st, s_ctx_t *ctx, const PgQuery__Node *n)
{
    const PgQuery__RangeVar *rv = NULL;
    const PgQuery__OnConflictClause *oc = NULL;
    int update = 0, del = 0;
    size_t i;

    if (!n)
        return;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_INSERT_STMT:
        rv = n->insert_stmt->relation;
        oc = n->insert_stmt->on_conflict_clause;
        update = oc && oc->action ==
                           PG_QUERY__ON_CONFLICT_ACTION__ONCONFLICT_UPDATE;
        break;
    case PG_QUERY__NODE__NODE_UPDATE_STMT:
        rv = n->update_stmt->relation;
        update = 1;
        break;
    case PG_QUERY__NODE__NODE_DELETE_STMT:
        rv = n->delete_stmt->relation;
        del = 1;
        break;
    case PG_QUERY__NODE__NODE_MERGE_STMT:
        rv = n->merge_stmt->relation;
        for (i = 0; i < n->merge_stmt->n_merge_when_clauses; i++) {
            const PgQuery__Node *w = n->merge_stmt->merge_when_clauses[i];
            if (w->node_case != PG_QUERY__NODE__NODE_MERGE_WHEN_CLAUSE ||
                !w->merge_when_clause->matched)
                continue;
            update |= w->merge_when_clause->command_type ==
                      PG_QUERY__CMD_TYPE__CMD_UPDATE;
            del |= w->merge_when_clause->command_type ==
                   PG_QUERY__CMD_TYPE__CMD_DELETE;
        }
        break;
    default:
        return;
    }
    if (!rv)
        return;
    (void)s_add_rv(st, rv, FL_LOCK_ROW_EXCLUSIVE, 1);
    if ((!update && !del) || s_is_created(ctx, rv->schemaname, rv->relname))
        return;
    s_table_exists(st, ctx, rv->schemaname, rv->relname);
    if (update)
        s_destroy(st, FL_DESTROY_UPDATE, rv->schemaname, rv->relname, NULL);
    if (del)
        s_destroy(st, FL_DESTROY_DELETE, rv->schemaname, rv->relname, NULL);
}

/*
 * Built-ins a predicate may call and still select the same rows when it
 * is evaluated a second time, just before the statement, in the same
 * transaction, with no side effect: immutable or stable, never volatile
 * (random(), clock_timestamp(), nextval(), setval(), the advisory locks
 * and the like are not here); aggregates over a subquery.  Sorted for
 * bsearch.
 */
static const char *const s_row_safe_funcs[] = {
    "abs", "array_length", "array_lower", "array_position", "array_to_string",
    "array_upper", "avg", "bool_and", "bool_or", "btrim", "cardinality",
    "ceil", "ceiling", "char_length", "character_length", "coalesce", "concat",
    "concat_ws", "count", "current_date", "current_setting",
    "current_timestamp", "date_part", "date_trunc", "div", "extract", "floor",
    "format", "greatest", "initcap", "json_extract_path_text",
    "jsonb_extract_path_text", "jsonb_typeof", "least", "left", "length",
    "localtimestamp", "lower", "lpad", "ltrim", "make_date", "make_interval",
    "max", "md5", "min", "mod", "now", "nullif", "octet_length", "position",
    "regexp_replace", "repeat", "replace", "reverse", "right", "round", "rpad",
    "rtrim", "sign", "similar_to_escape", "split_part", "starts_with",
    "statement_timestamp", "strpos", "substr", "substring", "sum", "timezone",
    "to_char", "to_date", "to_number", "to_timestamp", "transaction_timestamp",
    "translate", "trim", "trunc", "upper",
};

static int
s_cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Why a predicate cannot be evaluated again safely (new string), or NULL. */
typedef struct {
    char *why;
} s_rowsafe_t;

static int
s_rowsafe_visit(const ProtobufCMessage *msg, void *arg)
{
    s_rowsafe_t *a = arg;
    const char *name = NULL;

    if (msg->descriptor == &pg_query__func_call__descriptor) {
        const PgQuery__FuncCall *f = (const PgQuery__FuncCall *)msg;
        const char *schema = f->n_funcname > 1
                                 ? fl_lint_node_str(f->funcname[0])
                                 : NULL;
        name = f->n_funcname ? fl_lint_node_str(f->funcname[f->n_funcname - 1])
                             : NULL;
        if (name == NULL || (schema && strcmp(schema, "pg_catalog") != 0) ||
            bsearch(&name, s_row_safe_funcs,
                    sizeof(s_row_safe_funcs) / sizeof(s_row_safe_funcs[0]),
                    sizeof(s_row_safe_funcs[0]), s_cmp_str) == NULL) {
            a->why = fl_asprintf("its WHERE clause calls %s(), which may select "
                                 "other rows or act when evaluated twice",
                                 name ? name : "a function");
            return 1;
        }
    } else if (msg->descriptor == &pg_query__current_of_expr__descriptor) {
        a->why = fl_strdup("WHERE CURRENT OF names a cursor's row");
        return 1;
    } else if (msg->descriptor == &pg_query__a__expr__descriptor) {
        /* A user-defined operator may be a volatile function. */
        const PgQuery__AExpr *e = (const PgQuery__AExpr *)msg;
        for (size_t i = 0; i < e->n_name; i++) {
            const char *op = fl_lint_node_str(e->name[i]);
            static const char *const ops[] = {
                "=", "<>", "!=", "<", ">", "<=", ">=", "+", "-", "*", "/",
                "%", "||", "~~", "!~~", "~~*", "!~~*", "~", "!~", "~*",
                "!~*", "BETWEEN", "NOT BETWEEN", "BETWEEN SYMMETRIC",
                "NOT BETWEEN SYMMETRIC", "@>", "<@", "&&", "->", "->>", "#>",
                "#>>", "?", "pg_catalog", NULL};
            size_t k = 0;
            while (ops[k] && (op == NULL || strcmp(ops[k], op) != 0))
                k++;
            if (ops[k] == NULL) {
                a->why = fl_asprintf("its WHERE clause uses the operator %s, "
                                     "which may be a function with effects",
                                     op ? op : "?");
                return 1;
            }
        }
    }
    return 0;
}

/*
 * For a top-level UPDATE or DELETE: the predicate a backup of only the
 * rows it changes would select again (facts.h: row_where), or why not.
 */
static void
s_row_predicate(fl_stmt_t *st, const PgQuery__Node *n)
{
    const PgQuery__RangeVar *rv = NULL;
    const PgQuery__Node *where = NULL;
    const char *why = NULL;
    s_rowsafe_t a = {NULL};

    if (n->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT) {
        const PgQuery__UpdateStmt *u = n->update_stmt;
        rv = u->relation;
        where = u->where_clause;
        why = u->with_clause ? "it has a WITH clause"
              : u->n_from_clause ? "it joins other tables (FROM)" : NULL;
    } else if (n->node_case == PG_QUERY__NODE__NODE_DELETE_STMT) {
        const PgQuery__DeleteStmt *d = n->delete_stmt;
        rv = d->relation;
        where = d->where_clause;
        why = d->with_clause ? "it has a WITH clause"
              : d->n_using_clause ? "it joins other tables (USING)" : NULL;
    } else {
        return;
    }
    if (why == NULL && rv == NULL)
        why = "it names no table";
    if (why) {
        st->row_why = fl_strdup(why);
        return;
    }
    if (where == NULL) {
        /* Every row changes: a backup of rows is one of every row. */
        st->row_where = fl_strdup("true");
        st->row_every = 1;
    } else if (fl_lint_walk((const ProtobufCMessage *)where, s_rowsafe_visit,
                            &a)) {
        st->row_why = a.why;
        return;
    } else if ((st->row_where = fl_lint_deparse_expr(where)) == NULL) {
        st->row_why = fl_strdup("its WHERE clause could not be written back as "
                                "SQL");
        return;
    }
    if (rv->alias && rv->alias->aliasname)
        st->row_alias = fl_strdup(rv->alias->aliasname);
}

typedef struct {
    fl_stmt_t *st;
    s_ctx_t *ctx;
} s_writes_arg_t;

static int
s_collect_writes(const ProtobufCMessage *msg, void *arg)
{
    const s_writes_arg_t *a = arg;
    if (msg->descriptor == &pg_query__common_table_expr__descriptor)
        s_dml(a->st, a->ctx, ((const PgQuery__CommonTableExpr *)msg)->ctequery);
    return 0;
}

/*
 * What a query writes: its own target when it is DML, and the target of
 * every data-modifying WITH query at any depth, each as if it stood alone
 * (PostgreSQL runs them to completion whether or not anything reads them).
 */
static void
s_writes(fl_stmt_t *st, s_ctx_t *ctx, const PgQuery__Node *query)
{
    s_writes_arg_t a = {st, ctx};

    if (!query)
        return;
    s_dml(st, ctx, query);
    (void)fl_lint_walk(&query->base, s_collect_writes, &a);
}

static void
s_fill_keys(char ***cols, size_t *n, PgQuery__Node **keys, size_t nkeys)
{
    size_t i;
    for (i = 0; i < nkeys; i++) {
        const char *s = fl_lint_node_str(keys[i]);
        if (s)
            s_check_add_column(cols, n, s);
    }
}

static int
s_collect_column_refs(const ProtobufCMessage *msg, void *arg)
{
    fl_check_t *c = arg;
    const PgQuery__ColumnRef *r;
    const char *name;
    size_t i;

    if (msg->descriptor != &pg_query__column_ref__descriptor)
        return 0;
    r = (const PgQuery__ColumnRef *)msg;
    name = r->n_fields ? fl_lint_node_str(r->fields[r->n_fields - 1]) : NULL;
    if (!name)
        return 0; /* t.* */
    for (i = 0; i < c->ncolumns; i++)
        if (strcmp(c->columns[i], name) == 0)
            return 0;
    s_check_add_column(&c->columns, &c->ncolumns, name);
    return 0;
}

/*
 * A constraint added to rv (ADD CONSTRAINT, or a column constraint of ADD
 * COLUMN, in which case column names the column and if_added says that
 * the ADD COLUMN has IF NOT EXISTS).  Returns the lock.
 */
static fl_lock_level
s_constraint(fl_stmt_t *st, s_ctx_t *ctx, const PgQuery__RangeVar *rv,
             const PgQuery__Constraint *con, const char *column, int if_added)
{
    int created = s_is_created(ctx, rv->schemaname, rv->relname);
    fl_check_t *c = NULL;
    size_t first = st->nchecks, i;

    /*
     * A table created earlier in the input gets its checks too: they run
     * just before the statement, when the rows the migration put in it
     * are there.  Only the lint facts (scans) keep to tables that exist.
     */
    switch (con->contype) {
    case PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN:
        (void)s_add_rv(st, con->pktable, FL_LOCK_SHARE_ROW_EXCLUSIVE, 0);
        if (!con->skip_validation && !created)
            st->scans = 1;
        if (!con->skip_validation || *s_str(con->conname)) {
            /* NOT VALID: remembered for a later VALIDATE CONSTRAINT. */
            c = s_add_check(st, FL_CHECK_FOREIGN_KEY, rv->schemaname, rv->relname);
            if (column)
                s_check_add_column(&c->columns, &c->ncolumns, column);
            s_fill_keys(&c->columns, &c->ncolumns, con->fk_attrs, con->n_fk_attrs);
            if (con->pktable) {
                c->ref_schema = con->pktable->schemaname && *con->pktable->schemaname
                                    ? fl_strdup(con->pktable->schemaname) : NULL;
                c->ref_table = fl_strdup(con->pktable->relname);
            }
            s_fill_keys(&c->ref_columns, &c->nref_columns, con->pk_attrs,
                        con->n_pk_attrs);
            c->match_full = con->fk_matchtype != NULL &&
                            strcmp(con->fk_matchtype, "f") == 0;
        }
        break;
    case PG_QUERY__CONSTR_TYPE__CONSTR_CHECK:
        if (!con->skip_validation && !created)
            st->scans = 1;
        if (!con->skip_validation || *s_str(con->conname)) {
            c = s_add_check(st, FL_CHECK_CHECK, rv->schemaname, rv->relname);
            c->only = !rv->inh || con->is_no_inherit;
            c->expr = fl_lint_deparse_expr(con->raw_expr);
            if (con->raw_expr)
                (void)fl_lint_walk(&con->raw_expr->base,
                                   s_collect_column_refs, c);
        }
        break;
    case PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY:
    case PG_QUERY__CONSTR_TYPE__CONSTR_UNIQUE:
        if (con->indexname && *con->indexname) {
            /* USING INDEX: the index is unique already, but a primary
             * key makes its columns NOT NULL, which the catalog names. */
            if (con->contype == PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY)
                (void)s_column_check(st, FL_CHECK_PRIMARY_INDEX, rv,
                                     con->indexname);
            break;
        }
        if (!created)
            st->scans = 1;
        /* A primary key makes its columns NOT NULL: count those first. */
        if (con->contype == PG_QUERY__CONSTR_TYPE__CONSTR_PRIMARY) {
            if (column)
                (void)s_column_check(st, FL_CHECK_NOT_NULL, rv, column);
            for (i = 0; i < con->n_keys; i++)
                if (fl_lint_node_str(con->keys[i]))
                    (void)s_column_check(st, FL_CHECK_NOT_NULL, rv,
                                         fl_lint_node_str(con->keys[i]));
        }
        c = s_add_check(st, FL_CHECK_UNIQUE, rv->schemaname, rv->relname);
        if (column)
            s_check_add_column(&c->columns, &c->ncolumns, column);
        s_fill_keys(&c->columns, &c->ncolumns, con->keys, con->n_keys);
        c->nulls_not_distinct = con->nulls_not_distinct;
        break;
    case PG_QUERY__CONSTR_TYPE__CONSTR_EXCLUSION:
        if (!created)
            st->scans = 1;
        break;
    default:
        break;
    }
    if (c && con->skip_validation) {
        /* Not a check to run now: keep it for VALIDATE CONSTRAINT. */
        s_pending_t *p;
        ctx->pending = fl_reallocarray(ctx->pending, ctx->npending + 1,
                                       sizeof(*p));
        p = &ctx->pending[ctx->npending++];
        p->table_key = fl_lint_table_key(rv->schemaname, rv->relname);
        p->name = fl_strdup(con->conname);
        s_check_copy(&p->check, c);
        s_check_free(c);
        st->nchecks--;
    }
    /* ADD COLUMN IF NOT EXISTS skips the column's constraints with it. */
    for (i = first; if_added && column && i < st->nchecks; i++)
        if (!st->checks[i].if_added)
            st->checks[i].if_added = fl_strdup(column);
    if (con->contype == PG_QUERY__CONSTR_TYPE__CONSTR_FOREIGN)
        return FL_LOCK_SHARE_ROW_EXCLUSIVE;
    return FL_LOCK_ACCESS_EXCLUSIVE;
}

int
fl_lint_expr_is_volatile(const PgQuery__Node *n)
{
    /* Stable or immutable built-ins seen in defaults; anything else is
     * treated as volatile, because guessing "safe" hides a rewrite. */
    static const char *const safe[] = {
        "now", "current_date", "current_timestamp", "localtimestamp",
        "lower", "upper", "length", "coalesce", "to_timestamp", "to_char",
        "to_date", "make_date", "make_interval", "jsonb_build_object",
        "json_build_object", "jsonb_build_array", "array_length", "abs",
        "round", "concat", "format", "md5", "btrim", "trim", "substring",
        "replace", "date_trunc", "timezone", "statement_timestamp",
        "transaction_timestamp", "current_setting", NULL,
    };
    size_t i, k;

    if (!n)
        return 0;
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_A_CONST:
    case PG_QUERY__NODE__NODE_SQLVALUE_FUNCTION:
        return 0;
    case PG_QUERY__NODE__NODE_TYPE_CAST:
        return fl_lint_expr_is_volatile(n->type_cast->arg);
    case PG_QUERY__NODE__NODE_A_EXPR:
        return fl_lint_expr_is_volatile(n->a_expr->lexpr) ||
               fl_lint_expr_is_volatile(n->a_expr->rexpr);
    case PG_QUERY__NODE__NODE_BOOL_EXPR:
        for (i = 0; i < n->bool_expr->n_args; i++)
            if (fl_lint_expr_is_volatile(n->bool_expr->args[i]))
                return 1;
        return 0;
    case PG_QUERY__NODE__NODE_A_ARRAY_EXPR:
        for (i = 0; i < n->a_array_expr->n_elements; i++)
            if (fl_lint_expr_is_volatile(n->a_array_expr->elements[i]))
                return 1;
        return 0;
    case PG_QUERY__NODE__NODE_FUNC_CALL: {
        const PgQuery__FuncCall *f = n->func_call;
        const char *name = f->n_funcname
                               ? fl_lint_node_str(f->funcname[f->n_funcname - 1])
                               : NULL;
        const char *schema = f->n_funcname > 1
                                 ? fl_lint_node_str(f->funcname[0]) : NULL;
        if (!name)
            return 1;
        /* util.now() is not the built-in (before, it passed for it: found
         * by an audit); pg_catalog.now() is. */
        if (f->n_funcname > 1 &&
            (schema == NULL || strcmp(schema, "pg_catalog") != 0))
            return 1;
        for (k = 0; safe[k]; k++)
            if (strcmp(safe[k], name) == 0)
                break;
        if (!safe[k])
            return 1;
        for (i = 0; i < f->n_args; i++)
            if (fl_lint_expr_is_volatile(f->args[i]))
                return 1;
        return 0;
    }
    default:
        return 1;
    }
}

/* The last name of a type ("int4", "serial", "varchar"). */
static const char *
s_type_last(const PgQuery__TypeName *t)
{
    return t && t->n_names ? fl_lint_node_str(t->names[t->n_names - 1]) : NULL;
}

static int
s_is_serial(const PgQuery__TypeName *t)
{
    const char *n = s_type_last(t);
    return n && (strcmp(n, "serial") == 0 || strcmp(n, "serial2") == 0 ||
                 strcmp(n, "serial4") == 0 || strcmp(n, "serial8") == 0 ||
                 strcmp(n, "smallserial") == 0 || strcmp(n, "bigserial") == 0);
}

static fl_lock_level
s_add_column(fl_stmt_t *st, s_ctx_t *ctx, const PgQuery__RangeVar *rv,
             const PgQuery__ColumnDef *col, int if_not_exists)
{
    int created = s_is_created(ctx, rv->schemaname, rv->relname);
    fl_lock_level lock = FL_LOCK_ACCESS_EXCLUSIVE, l;
    fl_check_t *c;
    size_t i;

    if (!col)
        return lock;
    if (!created && s_is_serial(col->type_name))
        st->rewrites = 1;
    for (i = 0; i < col->n_constraints; i++) {
        const PgQuery__Node *cn = col->constraints[i];
        const PgQuery__Constraint *con;

        if (cn->node_case != PG_QUERY__NODE__NODE_CONSTRAINT)
            continue;
        con = cn->constraint;
        switch (con->contype) {
        case PG_QUERY__CONSTR_TYPE__CONSTR_DEFAULT:
            if (!created && (ctx->pg_version < 110000 ||
                             fl_lint_expr_is_volatile(con->raw_expr)))
                st->rewrites = 1;
            break;
        case PG_QUERY__CONSTR_TYPE__CONSTR_GENERATED:
        case PG_QUERY__CONSTR_TYPE__CONSTR_IDENTITY:
            if (!created)
                st->rewrites = 1;
            break;
        case PG_QUERY__CONSTR_TYPE__CONSTR_NOTNULL:
            /* Every row already there gets the column's default. */
            c = s_column_check(st, FL_CHECK_NOT_NULL, rv, col->colname);
            if (c && if_not_exists)
                c->if_added = fl_strdup(col->colname);
            break;
        default:
            l = s_constraint(st, ctx, rv, con, col->colname, if_not_exists);
            if (l > lock)
                lock = l;
            break;
        }
    }
    return lock;
}

static const char *
s_alter_kind(PgQuery__ObjectType t)
{
    switch (t) {
    case PG_QUERY__OBJECT_TYPE__OBJECT_INDEX: return "ALTER INDEX";
    case PG_QUERY__OBJECT_TYPE__OBJECT_VIEW: return "ALTER VIEW";
    case PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW: return "ALTER MATERIALIZED VIEW";
    case PG_QUERY__OBJECT_TYPE__OBJECT_SEQUENCE: return "ALTER SEQUENCE";
    case PG_QUERY__OBJECT_TYPE__OBJECT_TYPE: return "ALTER TYPE";
    case PG_QUERY__OBJECT_TYPE__OBJECT_FOREIGN_TABLE: return "ALTER FOREIGN TABLE";
    default: return "ALTER TABLE";
    }
}

/* ---- the columns one ALTER TABLE adds or retypes, for its checks ---- */

static int s_is_builtin_call(const PgQuery__FuncCall *f);

/*
 * Built-in functions a check may run once more than the statement does:
 * no side effect, and the same result for the same row within the
 * transaction (stable or immutable).  Any other call (nextval, random,
 * gen_random_uuid, a function of the database's own) leaves the value to
 * the statement: its checks are skipped rather than guessed.
 */
static const char *const s_rerunnable[] = {
    "abs", "array_length", "btrim", "cardinality", "ceil", "char_length",
    "character_length", "coalesce", "concat", "concat_ws", "current_date",
    "current_setting", "current_timestamp", "date_part", "date_trunc",
    "floor", "format", "greatest", "jsonb_build_array", "jsonb_build_object",
    "json_build_array", "json_build_object", "least", "left", "length",
    "localtimestamp", "lower", "ltrim", "make_date", "make_interval", "md5",
    "now", "nullif", "octet_length", "replace", "right", "round", "rtrim",
    "split_part", "statement_timestamp", "substr", "substring", "timezone",
    "to_char", "to_date", "to_json", "to_jsonb", "to_timestamp",
    "transaction_timestamp", "trim", "trunc", "upper",
};

static int
s_find_unrerunnable(const ProtobufCMessage *msg, void *arg)
{
    const PgQuery__FuncCall *f;
    const char *name;
    size_t i;

    (void)arg;
    if (msg->descriptor == &pg_query__sub_link__descriptor)
        return 1;
    if (msg->descriptor != &pg_query__func_call__descriptor)
        return 0;
    f = (const PgQuery__FuncCall *)msg;
    name = f->n_funcname ? fl_lint_node_str(f->funcname[f->n_funcname - 1])
                         : NULL;
    if (!name || !s_is_builtin_call(f))
        return 1;
    for (i = 0; i < sizeof(s_rerunnable) / sizeof(s_rerunnable[0]); i++)
        if (strcmp(s_rerunnable[i], name) == 0)
            return 0;
    return 1;
}

/* True when a check may evaluate expr once more (NULL: nothing to run). */
static int
s_rerunnable_expr(const PgQuery__Node *expr)
{
    return !expr || fl_lint_walk(&expr->base, s_find_unrerunnable, NULL) == 0;
}

/*
 * "CAST(arg AS type) COLLATE coll" as SQL (new string), arg NULL meaning
 * NULL and coll optional; the deparser writes the cast as "arg::type".
 */
static char *
s_cast_sql(const PgQuery__Node *arg, const PgQuery__TypeName *type,
           const PgQuery__CollateClause *coll)
{
    PgQuery__AConst null = PG_QUERY__A__CONST__INIT;
    PgQuery__Node nulln = PG_QUERY__NODE__INIT;
    PgQuery__TypeCast tc = PG_QUERY__TYPE_CAST__INIT;
    PgQuery__Node tcn = PG_QUERY__NODE__INIT;
    PgQuery__CollateClause cc = PG_QUERY__COLLATE_CLAUSE__INIT;
    PgQuery__Node ccn = PG_QUERY__NODE__INIT;

    if (!type)
        return NULL;
    if (!arg) {
        null.isnull = 1;
        null.location = -1;
        nulln.node_case = PG_QUERY__NODE__NODE_A_CONST;
        nulln.a_const = &null;
        arg = &nulln;
    }
    tc.arg = (PgQuery__Node *)arg;
    tc.type_name = (PgQuery__TypeName *)type;
    tc.location = -1;
    tcn.node_case = PG_QUERY__NODE__NODE_TYPE_CAST;
    tcn.type_cast = &tc;
    if (!coll || !coll->n_collname)
        return fl_lint_deparse_expr(&tcn);
    cc.arg = &tcn;
    cc.n_collname = coll->n_collname;
    cc.collname = coll->collname;
    cc.location = -1;
    ccn.node_case = PG_QUERY__NODE__NODE_COLLATE_CLAUSE;
    ccn.collate_clause = &cc;
    return fl_lint_deparse_expr(&ccn);
}

/* A column reference to name, as a node on the caller's stack. */
typedef struct {
    PgQuery__String str;
    PgQuery__Node strn;
    PgQuery__Node *fields[1];
    PgQuery__ColumnRef ref;
    PgQuery__Node node;
} s_colref_t;

static const PgQuery__Node *
s_colref(s_colref_t *r, const char *name)
{
    PgQuery__String str = PG_QUERY__STRING__INIT;
    PgQuery__Node n = PG_QUERY__NODE__INIT;
    PgQuery__ColumnRef ref = PG_QUERY__COLUMN_REF__INIT;

    r->str = str;
    r->str.sval = (char *)name;
    r->strn = n;
    r->strn.node_case = PG_QUERY__NODE__NODE_STRING;
    r->strn.string = &r->str;
    r->fields[0] = &r->strn;
    r->ref = ref;
    r->ref.n_fields = 1;
    r->ref.fields = r->fields;
    r->ref.location = -1;
    r->node = n;
    r->node.node_case = PG_QUERY__NODE__NODE_COLUMN_REF;
    r->node.column_ref = &r->ref;
    return &r->node;
}

/* Collects the names of the columns an expression reads. */
static int
s_collect_names(const ProtobufCMessage *msg, void *arg)
{
    fl_check_t *names = arg;
    const PgQuery__ColumnRef *r;
    const char *name;

    if (msg->descriptor != &pg_query__column_ref__descriptor)
        return 0;
    r = (const PgQuery__ColumnRef *)msg;
    name = r->n_fields ? fl_lint_node_str(r->fields[r->n_fields - 1]) : NULL;
    if (name)
        s_check_add_column(&names->columns, &names->ncolumns, name);
    return 0;
}

/*
 * True when expr reads a column that statement a adds or retypes (or
 * reads a whole row): a generated column's value over the row as it was
 * would then not be the one the statement computes.
 */
static int
s_reads_altered(const PgQuery__AlterTableStmt *a, const PgQuery__Node *expr)
{
    fl_check_t names;
    size_t i, k;
    int hit = 0;

    memset(&names, 0, sizeof(names));
    (void)fl_lint_walk(&expr->base, s_collect_names, &names);
    for (i = 0; i < a->n_cmds && !hit; i++) {
        const PgQuery__AlterTableCmd *cmd;
        const char *name = NULL;
        if (a->cmds[i]->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_CMD)
            continue;
        cmd = a->cmds[i]->alter_table_cmd;
        if (cmd->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn &&
            cmd->def && cmd->def->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF)
            name = cmd->def->column_def->colname;
        else if (cmd->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_AlterColumnType ||
                 cmd->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_DropColumn)
            name = cmd->name;
        for (k = 0; name && k < names.ncolumns && !hit; k++)
            hit = strcmp(names.columns[k], name) == 0;
    }
    s_check_free(&names);
    return hit;
}

/*
 * An ADD COLUMN of statement a as its existing rows will hold it: its
 * DEFAULT, NULL, or, generated, its expression over the row (PostgreSQL
 * requires that expression immutable, and refuses one reading another
 * generated column).
 */
static void
s_added_column(fl_check_col_t *p, const PgQuery__AlterTableStmt *a,
               const PgQuery__ColumnDef *col, int if_not_exists)
{
    const PgQuery__Node *def = NULL;
    int opaque = 0;
    size_t i;

    p->name = fl_strdup(col->colname);
    p->added = 1;
    p->if_not_exists = if_not_exists;
    p->sequence = s_is_serial(col->type_name);
    for (i = 0; i < col->n_constraints; i++) {
        const PgQuery__Constraint *con;
        if (col->constraints[i]->node_case != PG_QUERY__NODE__NODE_CONSTRAINT)
            continue;
        con = col->constraints[i]->constraint;
        if (con->contype == PG_QUERY__CONSTR_TYPE__CONSTR_IDENTITY)
            p->sequence = 1;
        else if (con->contype == PG_QUERY__CONSTR_TYPE__CONSTR_GENERATED) {
            def = con->raw_expr;
            opaque = !def || s_reads_altered(a, def);
        } else if (con->contype == PG_QUERY__CONSTR_TYPE__CONSTR_DEFAULT)
            def = con->raw_expr;
    }
    if (p->sequence || opaque || !s_rerunnable_expr(def))
        return;
    p->value = s_cast_sql(def, col->type_name, col->coll_clause);
    if (!def && p->value && strncmp(p->value, "NULL::", 6) == 0)
        p->type = fl_strdup(p->value + 6);
}

/* An ALTER COLUMN ... TYPE as its rows will hold it. */
static void
s_retyped_column(fl_check_col_t *p, const char *name,
                 const PgQuery__ColumnDef *def)
{
    s_colref_t ref;
    const PgQuery__Node *using = def->raw_default;

    p->name = fl_strdup(name);
    if (!s_rerunnable_expr(using))
        return;
    p->value = s_cast_sql(using ? using : s_colref(&ref, name), def->type_name,
                          def->coll_clause);
}

/* The columns statement a adds or retypes; *out is new (n may be 0). */
static void
s_alter_columns(const PgQuery__AlterTableStmt *a, fl_check_col_t **out,
                size_t *n)
{
    size_t i;

    *out = NULL;
    *n = 0;
    for (i = 0; i < a->n_cmds; i++) {
        const PgQuery__AlterTableCmd *cmd;
        const PgQuery__ColumnDef *def;

        if (a->cmds[i]->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_CMD)
            continue;
        cmd = a->cmds[i]->alter_table_cmd;
        if (!cmd->def || cmd->def->node_case != PG_QUERY__NODE__NODE_COLUMN_DEF)
            continue;
        def = cmd->def->column_def;
        if (cmd->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn &&
            def->colname && *def->colname) {
            *out = fl_reallocarray(*out, *n + 1, sizeof(**out));
            memset(&(*out)[*n], 0, sizeof(**out));
            s_added_column(&(*out)[(*n)++], a, def, cmd->missing_ok);
        } else if (cmd->subtype ==
                       PG_QUERY__ALTER_TABLE_TYPE__AT_AlterColumnType &&
                   cmd->name && *cmd->name) {
            *out = fl_reallocarray(*out, *n + 1, sizeof(**out));
            memset(&(*out)[*n], 0, sizeof(**out));
            s_retyped_column(&(*out)[(*n)++], cmd->name, def);
        }
    }
    /* DROP COLUMN runs before every ADD COLUMN of the statement. */
    for (i = 0; i < a->n_cmds; i++) {
        const PgQuery__AlterTableCmd *cmd;
        size_t k;

        if (a->cmds[i]->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_CMD)
            continue;
        cmd = a->cmds[i]->alter_table_cmd;
        if (cmd->subtype != PG_QUERY__ALTER_TABLE_TYPE__AT_DropColumn ||
            !cmd->name)
            continue;
        for (k = 0; k < *n; k++)
            if ((*out)[k].added && strcmp((*out)[k].name, cmd->name) == 0)
                (*out)[k].replaces = 1;
    }
}

static int
s_column_added(const fl_check_col_t *cols, size_t n, const char *name)
{
    size_t i;
    for (i = 0; name && i < n; i++)
        if (cols[i].added && strcmp(cols[i].name, name) == 0)
            return 1;
    return 0;
}

/*
 * The lock SET (...) or RESET (...) of storage options takes: SHARE
 * UPDATE EXCLUSIVE when every option is one of these (with or without
 * "toast."), ACCESS EXCLUSIVE otherwise (user_catalog_table, a view's
 * security_barrier, security_invoker and check_option, gin, brin and
 * gist index options; pg_locks, PostgreSQL 15).
 */
static fl_lock_level
s_reloptions_lock(const PgQuery__Node *def)
{
    static const char *const light[] = {
        "fillfactor", "toast_tuple_target", "parallel_workers",
        "vacuum_index_cleanup", "vacuum_truncate",
        "log_autovacuum_min_duration", "deduplicate_items",
    };
    size_t i, k;

    if (!def || def->node_case != PG_QUERY__NODE__NODE_LIST)
        return FL_LOCK_ACCESS_EXCLUSIVE;
    for (i = 0; i < def->list->n_items; i++) {
        const PgQuery__Node *o = def->list->items[i];
        const char *name;
        int ok = 0;
        if (o->node_case != PG_QUERY__NODE__NODE_DEF_ELEM)
            return FL_LOCK_ACCESS_EXCLUSIVE;
        name = s_str(o->def_elem->defname);
        ok = strncmp(name, "autovacuum_", 11) == 0;
        for (k = 0; !ok && k < sizeof(light) / sizeof(light[0]); k++)
            ok = strcmp(name, light[k]) == 0;
        if (!ok)
            return FL_LOCK_ACCESS_EXCLUSIVE;
    }
    return FL_LOCK_SHARE_UPDATE_EXCLUSIVE;
}

static void
s_alter_table(fl_stmt_t *st, s_ctx_t *ctx, const PgQuery__AlterTableStmt *a)
{
    const PgQuery__RangeVar *rv = a->relation;
    fl_lock_level lock = FL_LOCK_NONE;
    size_t i, k;
    int is_table = a->objtype == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE;
    int created;
    fl_check_col_t *cols = NULL;
    size_t ncols = 0;

    st->kind = s_alter_kind(a->objtype);
    if (!rv)
        return;
    created = s_is_created(ctx, rv->schemaname, rv->relname);
    if (is_table && !a->missing_ok)
        s_table_exists(st, ctx, rv->schemaname, rv->relname);
    s_alter_columns(a, &cols, &ncols);
    for (i = 0; i < a->n_cmds; i++) {
        const PgQuery__AlterTableCmd *cmd;
        fl_lock_level l = FL_LOCK_ACCESS_EXCLUSIVE;
        int cascade;

        if (a->cmds[i]->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_CMD)
            continue;
        cmd = a->cmds[i]->alter_table_cmd;
        cascade = cmd->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE;
        switch (cmd->subtype) {
        case PG_QUERY__ALTER_TABLE_TYPE__AT_AddColumn:
            if (cmd->def && cmd->def->node_case == PG_QUERY__NODE__NODE_COLUMN_DEF)
                l = s_add_column(st, ctx, rv, cmd->def->column_def,
                                 cmd->missing_ok);
            break;
        /*
         * SET DEFAULT and SET NOT NULL run after every ADD COLUMN of the
         * statement (in any order); DROP DEFAULT, DROP NOT NULL, TYPE and
         * DROP COLUMN run before, and fail on a column it adds.
         */
        case PG_QUERY__ALTER_TABLE_TYPE__AT_ColumnDefault:
            if (!cmd->def || !s_column_added(cols, ncols, cmd->name))
                (void)s_column_check(st, FL_CHECK_COLUMN_EXISTS, rv, cmd->name);
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_DropNotNull:
            (void)s_column_check(st, FL_CHECK_COLUMN_EXISTS, rv, cmd->name);
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_SetNotNull:
            if (!s_column_added(cols, ncols, cmd->name))
                (void)s_column_check(st, FL_CHECK_COLUMN_EXISTS, rv, cmd->name);
            if (!created)
                st->scans = 1;
            (void)s_column_check(st, FL_CHECK_NOT_NULL, rv, cmd->name);
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_AlterColumnType:
            (void)s_column_check(st, FL_CHECK_COLUMN_EXISTS, rv, cmd->name);
            (void)s_column_check(st, FL_CHECK_RETYPED, rv, cmd->name);
            if (!s_is_created(ctx, rv->schemaname, rv->relname)) {
                st->rewrites = 1;
                s_destroy(st, FL_DESTROY_ALTER_TYPE, rv->schemaname, rv->relname,
                          cmd->name);
            }
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_DropConstraint:
            st->cascades |= cascade;
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_DropColumn:
            st->cascades |= cascade;
            if (!cmd->missing_ok)
                (void)s_column_check(st, FL_CHECK_COLUMN_EXISTS, rv, cmd->name);
            if (!created)
                s_destroy(st, FL_DESTROY_DROP_COLUMN, rv->schemaname, rv->relname,
                          cmd->name);
            (void)s_column_check(st, FL_CHECK_DEPENDENTS, rv, cmd->name);
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_AddConstraint:
            if (cmd->def && cmd->def->node_case == PG_QUERY__NODE__NODE_CONSTRAINT)
                l = s_constraint(st, ctx, rv, cmd->def->constraint, NULL, 0);
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_ValidateConstraint: {
            char *key = fl_lint_table_key(rv->schemaname, rv->relname);
            int found = 0;
            l = FL_LOCK_SHARE_UPDATE_EXCLUSIVE;
            st->scans = 1;
            for (k = ctx->npending; k-- > 0 && !found;) {
                const s_pending_t *p = &ctx->pending[k];
                if (cmd->name && strcmp(p->name, cmd->name) == 0 &&
                    strcmp(p->table_key, key) == 0) {
                    st->checks = fl_reallocarray(st->checks, st->nchecks + 1,
                                                 sizeof(fl_check_t));
                    s_check_copy(&st->checks[st->nchecks], &p->check);
                    st->checks[st->nchecks++].validates = 1;
                    if (p->check.kind == FL_CHECK_FOREIGN_KEY && p->check.ref_table)
                        (void)s_add_table(st, p->check.ref_schema,
                                          p->check.ref_table, FL_LOCK_ROW_SHARE, 0);
                    found = 1;
                }
            }
            /* Added NOT VALID before this source: the catalog says what. */
            if (!found && cmd->name)
                (void)s_column_check(st, FL_CHECK_VALIDATE, rv, cmd->name);
            free(key);
            break;
        }
        case PG_QUERY__ALTER_TABLE_TYPE__AT_DetachPartition:
            if (cmd->def && cmd->def->node_case == PG_QUERY__NODE__NODE_PARTITION_CMD) {
                const PgQuery__PartitionCmd *pc = cmd->def->partition_cmd;
                if (pc->concurrent) {
                    l = FL_LOCK_SHARE_UPDATE_EXCLUSIVE;
                    st->no_transaction = 1;
                    s_reach_rv(st, rv);
                    s_reach_rv(st, pc->name);
                }
                (void)s_add_rv(st, pc->name, FL_LOCK_ACCESS_EXCLUSIVE, 1);
            }
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_AttachPartition:
            l = FL_LOCK_SHARE_UPDATE_EXCLUSIVE;
            if (cmd->def && cmd->def->node_case == PG_QUERY__NODE__NODE_PARTITION_CMD)
                (void)s_add_rv(st, cmd->def->partition_cmd->name,
                               FL_LOCK_ACCESS_EXCLUSIVE, 1);
            st->scans = 1;
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_SetTableSpace:
        case PG_QUERY__ALTER_TABLE_TYPE__AT_SetLogged:
        case PG_QUERY__ALTER_TABLE_TYPE__AT_SetUnLogged:
        case PG_QUERY__ALTER_TABLE_TYPE__AT_SetAccessMethod:
            if (!s_is_created(ctx, rv->schemaname, rv->relname))
                st->rewrites = 1;
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_SetRelOptions:
        case PG_QUERY__ALTER_TABLE_TYPE__AT_ResetRelOptions:
            l = s_reloptions_lock(cmd->def);
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_SetStatistics:
        case PG_QUERY__ALTER_TABLE_TYPE__AT_ClusterOn:
        case PG_QUERY__ALTER_TABLE_TYPE__AT_DropCluster:
            l = FL_LOCK_SHARE_UPDATE_EXCLUSIVE;
            break;
        case PG_QUERY__ALTER_TABLE_TYPE__AT_EnableTrig:
        case PG_QUERY__ALTER_TABLE_TYPE__AT_EnableAlwaysTrig:
        case PG_QUERY__ALTER_TABLE_TYPE__AT_EnableReplicaTrig:
        case PG_QUERY__ALTER_TABLE_TYPE__AT_EnableTrigAll:
        case PG_QUERY__ALTER_TABLE_TYPE__AT_EnableTrigUser:
        case PG_QUERY__ALTER_TABLE_TYPE__AT_DisableTrig:
        case PG_QUERY__ALTER_TABLE_TYPE__AT_DisableTrigAll:
        case PG_QUERY__ALTER_TABLE_TYPE__AT_DisableTrigUser:
            l = FL_LOCK_SHARE_ROW_EXCLUSIVE;
            break;
        default:
            break;
        }
        if (l > lock)
            lock = l;
    }
    {
        fl_table_ref_t *t = s_add_rv(st, rv, lock, 1);
        /* Keep the ALTERed table first: rules and plans read tables[0]. */
        if (t && t != st->tables) {
            fl_table_ref_t tmp = *t;
            memmove(st->tables + 1, st->tables,
                    (size_t)(t - st->tables) * sizeof(*t));
            st->tables[0] = tmp;
        }
    }
    /* IF EXISTS: nothing to check when there is no table. */
    for (i = 0; a->missing_ok && i < st->nchecks; i++)
        st->checks[i].if_table = 1;
    /* What a type change validates again, unless the statement drops it. */
    for (i = 0; i < st->nchecks; i++) {
        fl_check_t *c = &st->checks[i];
        if (c->kind != FL_CHECK_RETYPED)
            continue;
        for (k = 0; k < a->n_cmds; k++) {
            const PgQuery__AlterTableCmd *cmd;
            const char *name = NULL;
            if (a->cmds[k]->node_case != PG_QUERY__NODE__NODE_ALTER_TABLE_CMD)
                continue;
            cmd = a->cmds[k]->alter_table_cmd;
            if (cmd->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_DropConstraint)
                name = cmd->name;
            else if (cmd->subtype == PG_QUERY__ALTER_TABLE_TYPE__AT_DropNotNull &&
                     cmd->name && strcmp(cmd->name, c->columns[0]) == 0)
                name = "";
            if (!name)
                continue;
            c->dropped_with = fl_reallocarray(c->dropped_with,
                                              c->ndropped_with + 1,
                                              sizeof(*c->dropped_with));
            c->dropped_with[c->ndropped_with].schema = NULL;
            c->dropped_with[c->ndropped_with++].name = fl_strdup(name);
        }
    }
    /* Each data check sees the columns as the whole statement leaves them. */
    for (i = 0; ncols && i < st->nchecks; i++) {
        fl_check_t *c = &st->checks[i];
        if ((c->kind == FL_CHECK_NOT_NULL || c->kind == FL_CHECK_UNIQUE ||
             c->kind == FL_CHECK_FOREIGN_KEY || c->kind == FL_CHECK_CHECK ||
             c->kind == FL_CHECK_RETYPED) &&
            strcmp(c->table, rv->relname) == 0 &&
            s_same(c->schema, rv->schemaname && *rv->schemaname
                                  ? rv->schemaname : NULL))
            s_check_add_pending(c, cols, ncols);
    }
    s_cols_free(cols, ncols);
}

static const char *
s_drop_kind(PgQuery__ObjectType t)
{
    switch (t) {
    case PG_QUERY__OBJECT_TYPE__OBJECT_TABLE: return "DROP TABLE";
    case PG_QUERY__OBJECT_TYPE__OBJECT_INDEX: return "DROP INDEX";
    case PG_QUERY__OBJECT_TYPE__OBJECT_VIEW: return "DROP VIEW";
    case PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW: return "DROP MATERIALIZED VIEW";
    case PG_QUERY__OBJECT_TYPE__OBJECT_SEQUENCE: return "DROP SEQUENCE";
    case PG_QUERY__OBJECT_TYPE__OBJECT_TYPE: return "DROP TYPE";
    case PG_QUERY__OBJECT_TYPE__OBJECT_SCHEMA: return "DROP SCHEMA";
    case PG_QUERY__OBJECT_TYPE__OBJECT_FUNCTION: return "DROP FUNCTION";
    case PG_QUERY__OBJECT_TYPE__OBJECT_DOMAIN: return "DROP DOMAIN";
    case PG_QUERY__OBJECT_TYPE__OBJECT_EXTENSION: return "DROP EXTENSION";
    case PG_QUERY__OBJECT_TYPE__OBJECT_TRIGGER: return "DROP TRIGGER";
    case PG_QUERY__OBJECT_TYPE__OBJECT_POLICY: return "DROP POLICY";
    case PG_QUERY__OBJECT_TYPE__OBJECT_RULE: return "DROP RULE";
    case PG_QUERY__OBJECT_TYPE__OBJECT_FOREIGN_TABLE:
        return "DROP FOREIGN TABLE";
    case PG_QUERY__OBJECT_TYPE__OBJECT_PROCEDURE: return "DROP PROCEDURE";
    case PG_QUERY__OBJECT_TYPE__OBJECT_ROUTINE: return "DROP ROUTINE";
    case PG_QUERY__OBJECT_TYPE__OBJECT_AGGREGATE: return "DROP AGGREGATE";
    case PG_QUERY__OBJECT_TYPE__OBJECT_OPERATOR: return "DROP OPERATOR";
    case PG_QUERY__OBJECT_TYPE__OBJECT_COLLATION: return "DROP COLLATION";
    case PG_QUERY__OBJECT_TYPE__OBJECT_LANGUAGE: return "DROP LANGUAGE";
    case PG_QUERY__OBJECT_TYPE__OBJECT_FOREIGN_SERVER: return "DROP SERVER";
    case PG_QUERY__OBJECT_TYPE__OBJECT_FDW: return "DROP FOREIGN DATA WRAPPER";
    case PG_QUERY__OBJECT_TYPE__OBJECT_ACCESS_METHOD:
        return "DROP ACCESS METHOD";
    default: return "DROP";
    }
}

int
fl_lint_cascade_reaches_data(PgQuery__ObjectType kind)
{
    switch (kind) {
    case PG_QUERY__OBJECT_TYPE__OBJECT_INDEX:
    case PG_QUERY__OBJECT_TYPE__OBJECT_TRIGGER:
    case PG_QUERY__OBJECT_TYPE__OBJECT_RULE:
    case PG_QUERY__OBJECT_TYPE__OBJECT_POLICY:
    case PG_QUERY__OBJECT_TYPE__OBJECT_EVENT_TRIGGER:
    case PG_QUERY__OBJECT_TYPE__OBJECT_STATISTIC_EXT:
    case PG_QUERY__OBJECT_TYPE__OBJECT_PUBLICATION:
        return 0;
    default:
        return 1;
    }
}

/*
 * The DEPENDENTS check of table i of DROP TABLE d: what depends on it and
 * is dropped by the same statement (DROP TABLE b, a with b referencing a)
 * goes with it, as PostgreSQL drops the objects of one DROP together.
 */
static void
s_drop_dependents(fl_stmt_t *st, const PgQuery__DropStmt *d, size_t i,
                  const char *schema, const char *name)
{
    fl_check_t *c = s_add_check(st, FL_CHECK_DEPENDENTS, schema, name);
    size_t j;

    for (j = 0; j < d->n_objects; j++) {
        const PgQuery__Node *o = d->objects[j];
        fl_check_rel_t *r;
        if (j == i || o->node_case != PG_QUERY__NODE__NODE_LIST ||
            !o->list->n_items ||
            !fl_lint_node_str(o->list->items[o->list->n_items - 1]))
            continue;
        c->dropped_with = fl_reallocarray(c->dropped_with,
                                          c->ndropped_with + 1, sizeof(*r));
        r = &c->dropped_with[c->ndropped_with++];
        r->schema = o->list->n_items >= 2
            ? fl_strdup_or_null(fl_lint_node_str(o->list->items[o->list->n_items - 2]))
            : NULL;
        r->name = fl_strdup(fl_lint_node_str(o->list->items[o->list->n_items - 1]));
    }
}

static void
s_drop(fl_stmt_t *st, s_ctx_t *ctx, const PgQuery__DropStmt *d)
{
    size_t i;

    st->kind = s_drop_kind(d->remove_type);
    if (d->concurrent)
        st->no_transaction = 1;
    if (d->behavior == PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE) {
        /* The dependent columns and tables are found in the catalog. */
        st->cascades = 1;
        if (fl_lint_cascade_reaches_data(d->remove_type))
            st->destructive = 1;
    }
    for (i = 0; i < d->n_objects; i++) {
        const PgQuery__Node *o = d->objects[i];
        const char *schema = NULL, *name = NULL;
        char *key;

        if (d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_SCHEMA &&
            fl_lint_node_str(o)) {
            s_destroy(st, FL_DESTROY_DROP_SCHEMA, fl_lint_node_str(o), NULL,
                      NULL);
            continue;
        }
        if (o->node_case != PG_QUERY__NODE__NODE_LIST || !o->list->n_items)
            continue;
        if (o->list->n_items >= 2)
            schema = fl_lint_node_str(o->list->items[o->list->n_items - 2]);
        name = fl_lint_node_str(o->list->items[o->list->n_items - 1]);
        if (!name)
            continue;
        if (d->concurrent)
            s_reach(st, schema, name);
        if (d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_TRIGGER ||
            d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_POLICY ||
            d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_RULE) {
            /* [schema.]table.name: ACCESS EXCLUSIVE on the table (pg_locks,
             * PostgreSQL 15; tests/integration/test_lint_pg.c). */
            const char *tschema = o->list->n_items >= 3
                ? fl_lint_node_str(o->list->items[o->list->n_items - 3]) : NULL;
            if (o->list->n_items >= 2)
                (void)s_add_table(st, tschema, schema,
                                  FL_LOCK_ACCESS_EXCLUSIVE, 0);
            continue;
        }
        if (d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE ||
            d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW ||
            d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_VIEW) {
            key = fl_lint_table_key(schema, name);
            (void)s_add_table(st, schema, name, FL_LOCK_ACCESS_EXCLUSIVE, 1);
            if (d->remove_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE) {
                if (!fl_lint_set_has(&ctx->created, key)) {
                    if (!d->missing_ok)
                        s_table_exists(st, ctx, schema, name);
                    s_destroy(st, FL_DESTROY_DROP_TABLE, schema, name, NULL);
                }
                s_drop_dependents(st, d, i, schema, name);
            }
            fl_lint_set_remove(&ctx->created, key);
            free(key);
        }
    }
}

/* 1 when opts name option name at all, whatever its value. */
static int
s_option(PgQuery__Node **opts, size_t n, const char *name)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (opts[i]->node_case == PG_QUERY__NODE__NODE_DEF_ELEM &&
            strcmp(s_str(opts[i]->def_elem->defname), name) == 0)
            return 1;
    return 0;
}

static int
s_has_option(PgQuery__Node **opts, size_t n, const char *name)
{
    size_t i;
    for (i = 0; i < n; i++) {
        const PgQuery__DefElem *de;
        const char *v = NULL;
        if (opts[i]->node_case != PG_QUERY__NODE__NODE_DEF_ELEM)
            continue;
        de = opts[i]->def_elem;
        if (de->defname && strcmp(de->defname, name) == 0) {
            /* "(FULL false)" turns the option off. */
            if (de->arg && de->arg->node_case == PG_QUERY__NODE__NODE_BOOLEAN)
                return de->arg->boolean->boolval;
            if (de->arg && de->arg->node_case == PG_QUERY__NODE__NODE_STRING)
                v = de->arg->string->sval;
            /* An unquoted keyword, "(refresh = off)", is a type name to
             * the grammar. */
            if (de->arg &&
                de->arg->node_case == PG_QUERY__NODE__NODE_TYPE_NAME &&
                de->arg->type_name->n_names > 0)
                v = fl_lint_node_str(de->arg->type_name->names[
                    de->arg->type_name->n_names - 1]);
            if (v != NULL)
                /* In any case, as PostgreSQL's defGetBoolean (before,
                 * 'OFF' counted as on: found by an audit). */
                return strcasecmp(v, "false") != 0 &&
                       strcasecmp(v, "off") != 0 &&
                       strcasecmp(v, "no") != 0 && strcmp(v, "0") != 0;
            if (de->arg && de->arg->node_case == PG_QUERY__NODE__NODE_INTEGER)
                return de->arg->integer->ival != 0;
            return 1;
        }
    }
    return 0;
}

int
fl_lint_has_option(PgQuery__Node **opts, size_t n, const char *name)
{
    return s_has_option(opts, n, name);
}

static int
s_cmp_name(const void *key, const void *item)
{
    return strcmp(key, *(const char *const *)item);
}

int
fl_lint_is_builtin_function(const char *name)
{
    return name && bsearch(name, fl_lint_builtins, fl_lint_nbuiltins,
                           sizeof(fl_lint_builtins[0]), s_cmp_name) != NULL;
}

/* Unqualified or in pg_catalog, and named as a PostgreSQL 15 function. */
static int
s_is_builtin_call(const PgQuery__FuncCall *f)
{
    const char *schema;

    if (f->n_funcname == 1)
        return fl_lint_is_builtin_function(fl_lint_node_str(f->funcname[0]));
    schema = f->n_funcname == 2 ? fl_lint_node_str(f->funcname[0]) : NULL;
    return schema && strcmp(schema, "pg_catalog") == 0 &&
           fl_lint_is_builtin_function(fl_lint_node_str(f->funcname[1]));
}

/*
 * SELECT set_config(...)[, set_config(...)] and nothing else: a target
 * list of calls of pg_catalog's set_config, without FROM, WHERE, WITH,
 * grouping, set operations, VALUES, INTO or a limit.
 */
static int
s_sets_config(const PgQuery__SelectStmt *s)
{
    if (s->n_target_list == 0 || s->n_from_clause || s->where_clause ||
        s->with_clause || s->n_group_clause || s->having_clause ||
        s->n_window_clause || s->n_values_lists || s->into_clause ||
        s->n_distinct_clause || s->limit_count || s->limit_offset ||
        s->n_locking_clause || s->larg || s->rarg ||
        s->op != PG_QUERY__SET_OPERATION__SETOP_NONE)
        return 0;
    for (size_t i = 0; i < s->n_target_list; i++) {
        const PgQuery__Node *t = s->target_list[i];
        const PgQuery__FuncCall *f = NULL;
        const char *name;

        if (t->node_case != PG_QUERY__NODE__NODE_RES_TARGET ||
            t->res_target->val == NULL ||
            t->res_target->val->node_case != PG_QUERY__NODE__NODE_FUNC_CALL)
            return 0;
        f = t->res_target->val->func_call;
        name = f->n_funcname ? fl_lint_node_str(f->funcname[f->n_funcname - 1])
                             : NULL;
        if (name == NULL || strcmp(name, "set_config") != 0 ||
            !s_is_builtin_call(f) || f->over || f->agg_filter)
            return 0;
    }
    return 1;
}

static int
s_find_opaque_call(const ProtobufCMessage *msg, void *arg)
{
    const PgQuery__FuncCall **call = arg;

    if (msg->descriptor != &pg_query__func_call__descriptor ||
        s_is_builtin_call((const PgQuery__FuncCall *)msg))
        return 0;
    *call = (const PgQuery__FuncCall *)msg;
    return 1;
}

/*
 * The built-ins whose effects a rollback does not undo (facts.h,
 * fl_stmt_t.outside), as their text names them; sorted for bsearch by
 * the name before "()".  Sequences (nextval, setval) are not here: apply
 * records and a plan puts back what they move.
 */
static const char *const s_outside_funcs[] = {
    "lo_export()",
    "pg_backup_start()",
    "pg_backup_stop()",
    "pg_cancel_backend()",
    "pg_copy_logical_replication_slot()",
    "pg_copy_physical_replication_slot()",
    "pg_create_logical_replication_slot()",
    "pg_create_physical_replication_slot()",
    "pg_create_restore_point()",
    "pg_drop_replication_slot()",
    "pg_log_backend_memory_contexts()",
    "pg_logical_emit_message()",
    "pg_logical_slot_get_binary_changes()",
    "pg_logical_slot_get_changes()",
    "pg_promote()",
    "pg_reload_conf()",
    "pg_replication_origin_advance()",
    "pg_replication_origin_create()",
    "pg_replication_origin_drop()",
    "pg_replication_slot_advance()",
    "pg_rotate_logfile()",
    "pg_stat_reset()",
    "pg_stat_reset_replication_slot()",
    "pg_stat_reset_shared()",
    "pg_stat_reset_single_function_counters()",
    "pg_stat_reset_single_table_counters()",
    "pg_stat_reset_slru()",
    "pg_stat_reset_subscription_stats()",
    "pg_switch_wal()",
    "pg_terminate_backend()",
    "pg_wal_replay_pause()",
    "pg_wal_replay_resume()",
};

/* bsearch: a function's name against an entry "name()". */
static int
s_cmp_outside(const void *key, const void *item)
{
    const char *name = key, *entry = *(const char *const *)item;
    size_t n = strlen(entry) - 2;
    int c = strncmp(name, entry, n);

    return c != 0 ? c : (unsigned char)name[n];
}

static int
s_find_outside_call(const ProtobufCMessage *msg, void *arg)
{
    const char **out = arg;
    const PgQuery__FuncCall *f = (const PgQuery__FuncCall *)msg;
    const char *const *hit = NULL;

    if (msg->descriptor != &pg_query__func_call__descriptor ||
        f->n_funcname == 0 || !s_is_builtin_call(f))
        return 0;
    hit = bsearch(fl_lint_node_str(f->funcname[f->n_funcname - 1]),
                  s_outside_funcs,
                  sizeof(s_outside_funcs) / sizeof(s_outside_funcs[0]),
                  sizeof(s_outside_funcs[0]), s_cmp_outside);
    if (hit == NULL)
        return 0;
    *out = *hit;
    return 1;
}

/*
 * Statements that store expressions to run later instead of running them
 * (a function in a view runs when the view is read, in a new table's
 * default when a row is inserted): their calls do not make them opaque.
 */
static int
s_stores_expressions(const PgQuery__Node *n)
{
    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_CREATE_FUNCTION_STMT:
    case PG_QUERY__NODE__NODE_VIEW_STMT:
    case PG_QUERY__NODE__NODE_RULE_STMT:
    case PG_QUERY__NODE__NODE_CREATE_POLICY_STMT:
    case PG_QUERY__NODE__NODE_ALTER_POLICY_STMT:
    case PG_QUERY__NODE__NODE_CREATE_TRIG_STMT:
    case PG_QUERY__NODE__NODE_CREATE_STMT:
    case PG_QUERY__NODE__NODE_CREATE_DOMAIN_STMT:
    case PG_QUERY__NODE__NODE_PREPARE_STMT:
        return 1;
    case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT:
        return n->create_table_as_stmt->into &&
               n->create_table_as_stmt->into->skip_data; /* WITH NO DATA */
    default:
        return 0;
    }
}

int
fl_lint_is_opaque(const PgQuery__Node *stmt, const PgQuery__FuncCall **call)
{
    *call = NULL;
    if (!stmt)
        return 0;
    switch (stmt->node_case) {
    case PG_QUERY__NODE__NODE_DO_STMT:
    case PG_QUERY__NODE__NODE_CALL_STMT:
    case PG_QUERY__NODE__NODE_EXECUTE_STMT:
        return 1;
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
        /* Only EXPLAIN ANALYZE runs the statement. */
        return s_has_option(stmt->explain_stmt->options,
                            stmt->explain_stmt->n_options, "analyze") &&
               fl_lint_is_opaque(stmt->explain_stmt->query, call);
    default:
        break;
    }
    if (s_stores_expressions(stmt))
        return 0;
    return fl_lint_walk(&stmt->base, s_find_opaque_call, (void *)call) != 0;
}

/* fl_stmt_t.outside of stmt (facts.h). */
static const char *
s_outside(const PgQuery__Node *stmt)
{
    const char *out = NULL;

    if (!stmt)
        return NULL;
    switch (stmt->node_case) {
    case PG_QUERY__NODE__NODE_COPY_STMT: {
        const PgQuery__CopyStmt *c = stmt->copy_stmt;
        if (c->is_program)
            return c->is_from ? "COPY ... FROM PROGRAM (a program run on "
                                "the server)"
                              : "COPY ... TO PROGRAM (a program run on the "
                                "server)";
        if (!c->is_from && c->filename && *c->filename)
            return "COPY ... TO a file on the server";
        break;
    }
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
        return s_has_option(stmt->explain_stmt->options,
                            stmt->explain_stmt->n_options, "analyze")
                   ? s_outside(stmt->explain_stmt->query)
                   : NULL;
    default:
        break;
    }
    if (s_stores_expressions(stmt))
        return NULL;
    (void)fl_lint_walk(&stmt->base, s_find_outside_call, (void *)&out);
    return out;
}

/*
 * The table rv the statement creates.  With IF NOT EXISTS it may be a
 * live table already, which the statement leaves as it is (taking no
 * lock on it): then nothing after it counts it as new (not its rules'
 * exemptions, not a down's leave to drop it, not the backups' "nothing
 * to keep").
 * Before, CREATE TABLE IF NOT EXISTS of a live table let an index, a
 * rewrite and a scan after it through lint (found by an audit).
 */
static void
s_created(fl_stmt_t *st, s_ctx_t *ctx, const PgQuery__RangeVar *rv,
          int if_not_exists)
{
    fl_table_ref_t *t;
    char *key;

    if (!rv)
        return;
    t = s_add_rv(st, rv, FL_LOCK_ACCESS_EXCLUSIVE, 1);
    if (t) {
        t->created = 1;
        t->if_not_exists = if_not_exists;
    }
    if (if_not_exists)
        return;
    key = fl_lint_table_key(rv->schemaname, rv->relname);
    fl_lint_set_add(&ctx->created, key);
    free(key);
}

static void
s_create_table(fl_stmt_t *st, s_ctx_t *ctx, const PgQuery__CreateStmt *c)
{
    size_t i, k;

    st->kind = "CREATE TABLE";
    s_created(st, ctx, c->relation, c->if_not_exists);
    for (i = 0; i < c->n_inh_relations; i++)
        if (c->inh_relations[i]->node_case == PG_QUERY__NODE__NODE_RANGE_VAR)
            (void)s_add_rv(st, c->inh_relations[i]->range_var,
                           c->partbound ? FL_LOCK_ACCESS_EXCLUSIVE
                                        : FL_LOCK_SHARE_UPDATE_EXCLUSIVE,
                           c->partbound != NULL);
    /* A foreign key locks the referenced table too. */
    for (i = 0; i < c->n_constraints; i++)
        if (c->constraints[i]->node_case == PG_QUERY__NODE__NODE_CONSTRAINT &&
            c->constraints[i]->constraint->pktable)
            (void)s_add_rv(st, c->constraints[i]->constraint->pktable,
                           FL_LOCK_SHARE_ROW_EXCLUSIVE, 0);
    for (i = 0; i < c->n_table_elts; i++) {
        const PgQuery__Node *e = c->table_elts[i];
        if (e->node_case == PG_QUERY__NODE__NODE_CONSTRAINT && e->constraint->pktable)
            (void)s_add_rv(st, e->constraint->pktable,
                           FL_LOCK_SHARE_ROW_EXCLUSIVE, 0);
        if (e->node_case == PG_QUERY__NODE__NODE_TABLE_LIKE_CLAUSE)
            (void)s_add_rv(st, e->table_like_clause->relation,
                           FL_LOCK_ACCESS_SHARE, 0);
        if (e->node_case != PG_QUERY__NODE__NODE_COLUMN_DEF)
            continue;
        for (k = 0; k < e->column_def->n_constraints; k++) {
            const PgQuery__Node *cn = e->column_def->constraints[k];
            if (cn->node_case == PG_QUERY__NODE__NODE_CONSTRAINT &&
                cn->constraint->pktable)
                (void)s_add_rv(st, cn->constraint->pktable,
                               FL_LOCK_SHARE_ROW_EXCLUSIVE, 0);
        }
    }
}

static fl_lock_level
s_rangevar_list(fl_stmt_t *st, s_ctx_t *ctx, PgQuery__Node **rels, size_t n,
                fl_lock_level lock, int writes, int exists)
{
    size_t i;
    for (i = 0; i < n; i++) {
        const PgQuery__RangeVar *rv = s_node_rv(rels[i]);
        if (!rv)
            continue;
        (void)s_add_rv(st, rv, lock, writes);
        if (exists)
            s_table_exists(st, ctx, rv->schemaname, rv->relname);
    }
    return lock;
}

/*
 * The check of CREATE UNIQUE INDEX: its keys as columns, or as the SQL of
 * an expression or a column with a COLLATE; its WHERE; NULLS NOT
 * DISTINCT.
 */
static void
s_unique_index(fl_stmt_t *st, const PgQuery__IndexStmt *ix)
{
    const PgQuery__RangeVar *rv = ix->relation;
    fl_check_t *c = s_add_check(st, FL_CHECK_UNIQUE, rv->schemaname,
                                rv->relname);
    size_t i;

    c->only = !rv->inh;
    c->exprs = fl_calloc(ix->n_index_params ? ix->n_index_params : 1,
                         sizeof(char *));
    for (i = 0; i < ix->n_index_params; i++) {
        const PgQuery__IndexElem *e;
        PgQuery__CollateClause cc = PG_QUERY__COLLATE_CLAUSE__INIT;
        PgQuery__Node ccn = PG_QUERY__NODE__INIT;
        const PgQuery__Node *key;
        s_colref_t ref;
        char *sql;

        if (ix->index_params[i]->node_case != PG_QUERY__NODE__NODE_INDEX_ELEM)
            continue;
        e = ix->index_params[i]->index_elem;
        if (!e->expr && !e->n_collation) {
            c->exprs[c->ncolumns] = NULL;
            s_check_add_column(&c->columns, &c->ncolumns, e->name);
            continue;
        }
        key = e->expr ? e->expr : s_colref(&ref, e->name);
        if (e->n_collation) {
            cc.arg = (PgQuery__Node *)key;
            cc.n_collname = e->n_collation;
            cc.collname = e->collation;
            cc.location = -1;
            ccn.node_case = PG_QUERY__NODE__NODE_COLLATE_CLAUSE;
            ccn.collate_clause = &cc;
            key = &ccn;
        }
        if ((sql = fl_lint_deparse_expr(key)) == NULL)
            goto unknown;
        c->exprs[c->ncolumns] = sql;
        s_check_add_column(&c->columns, &c->ncolumns, sql);
    }
    if (ix->where_clause &&
        (c->predicate = fl_lint_deparse_expr(ix->where_clause)) == NULL)
        goto unknown;
    c->nulls_not_distinct = ix->nulls_not_distinct;
    return;
unknown:
    /* What the deparser cannot write is left to the statement: checking
     * another key, or without the predicate, could refuse a valid index. */
    s_check_free(c);
    st->nchecks--;
}

static const char *
s_transaction_kind(PgQuery__TransactionStmtKind k)
{
    switch (k) {
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_BEGIN: return "BEGIN";
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_START: return "START TRANSACTION";
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT: return "COMMIT";
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK: return "ROLLBACK";
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_SAVEPOINT: return "SAVEPOINT";
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_RELEASE: return "RELEASE";
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_TO: return "ROLLBACK TO";
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_PREPARE: return "PREPARE TRANSACTION";
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_COMMIT_PREPARED: return "COMMIT PREPARED";
    case PG_QUERY__TRANSACTION_STMT_KIND__TRANS_STMT_ROLLBACK_PREPARED: return "ROLLBACK PREPARED";
    default: return "TRANSACTION";
    }
}

/* Fills kind, tables, flags, destroys and checks of one parsed statement. */
/*
 * COMMENT ON a table, view, materialized view, foreign table or column
 * takes SHARE UPDATE EXCLUSIVE on it; ON a constraint, trigger, policy or
 * rule of a table, ACCESS SHARE on the table (pg_locks, PostgreSQL 15).
 */
static void
s_comment(fl_stmt_t *st, const PgQuery__CommentStmt *c)
{
    const PgQuery__Node *o = c->object;
    fl_lock_level lock = FL_LOCK_SHARE_UPDATE_EXCLUSIVE;
    size_t n, up;

    switch (c->objtype) {
    case PG_QUERY__OBJECT_TYPE__OBJECT_TABLE:
    case PG_QUERY__OBJECT_TYPE__OBJECT_VIEW:
    case PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW:
    case PG_QUERY__OBJECT_TYPE__OBJECT_FOREIGN_TABLE:
        up = 1;
        break;
    case PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN:
        up = 2;
        break;
    case PG_QUERY__OBJECT_TYPE__OBJECT_TABCONSTRAINT:
    case PG_QUERY__OBJECT_TYPE__OBJECT_TRIGGER:
    case PG_QUERY__OBJECT_TYPE__OBJECT_POLICY:
    case PG_QUERY__OBJECT_TYPE__OBJECT_RULE:
        up = 2;
        lock = FL_LOCK_ACCESS_SHARE;
        break;
    default:
        return;
    }
    if (!o || o->node_case != PG_QUERY__NODE__NODE_LIST)
        return;
    n = o->list->n_items;
    if (n < up)
        return;
    (void)s_add_table(st,
                      n > up ? fl_lint_node_str(o->list->items[n - up - 1])
                             : NULL,
                      fl_lint_node_str(o->list->items[n - up]), lock, 0);
}

/* CREATE or ALTER PUBLICATION ... TABLE: SHARE UPDATE EXCLUSIVE on each
 * table (pg_locks, PostgreSQL 15). */
static void
s_publication(fl_stmt_t *st, PgQuery__Node **objs, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (objs[i]->node_case == PG_QUERY__NODE__NODE_PUBLICATION_OBJ_SPEC &&
            objs[i]->publication_obj_spec->pubtable)
            (void)s_add_rv(st,
                           objs[i]->publication_obj_spec->pubtable->relation,
                           FL_LOCK_SHARE_UPDATE_EXCLUSIVE, 0);
}

static void
s_analyze(fl_stmt_t *st, s_ctx_t *ctx, const PgQuery__Node *n)
{
    const ProtobufCFieldDescriptor *f;

    switch (n->node_case) {
    case PG_QUERY__NODE__NODE_CREATE_STMT:
        s_create_table(st, ctx, n->create_stmt);
        break;
    case PG_QUERY__NODE__NODE_CREATE_TABLE_AS_STMT: {
        const PgQuery__CreateTableAsStmt *c = n->create_table_as_stmt;
        st->kind = c->objtype == PG_QUERY__OBJECT_TYPE__OBJECT_MATVIEW
                       ? "CREATE MATERIALIZED VIEW" : "CREATE TABLE AS";
        s_writes(st, ctx, c->query);
        s_reads(st, c->query);
        if (c->into)
            s_created(st, ctx, c->into->rel, c->if_not_exists);
        break;
    }
    case PG_QUERY__NODE__NODE_VIEW_STMT:
        st->kind = "CREATE VIEW";
        s_reads(st, n->view_stmt->query);
        (void)s_add_rv(st, n->view_stmt->view, FL_LOCK_ACCESS_EXCLUSIVE, 1);
        break;
    case PG_QUERY__NODE__NODE_ALTER_TABLE_STMT:
        s_alter_table(st, ctx, n->alter_table_stmt);
        break;
    case PG_QUERY__NODE__NODE_INDEX_STMT: {
        const PgQuery__IndexStmt *ix = n->index_stmt;
        const PgQuery__RangeVar *rv = ix->relation;
        st->kind = "CREATE INDEX";
        if (ix->concurrent) {
            st->no_transaction = 1;
            s_reach_rv(st, rv);
        }
        if (!rv)
            break;
        /* An index lives in its table's schema. */
        if (ix->idxname && *ix->idxname) {
            st->index_name = fl_strdup(ix->idxname);
            st->index_schema = rv->schemaname && *rv->schemaname
                                   ? fl_strdup(rv->schemaname) : NULL;
        }
        (void)s_add_rv(st, rv, ix->concurrent ? FL_LOCK_SHARE_UPDATE_EXCLUSIVE
                                              : FL_LOCK_SHARE, 0);
        if (!s_is_created(ctx, rv->schemaname, rv->relname)) {
            s_table_exists(st, ctx, rv->schemaname, rv->relname);
            if (!ix->concurrent)
                st->scans = 1;
        }
        if (ix->unique)
            s_unique_index(st, ix);
        /* IF NOT EXISTS: nothing to check when the name is taken. */
        if (ix->if_not_exists && ix->idxname && *ix->idxname) {
            size_t i;
            for (i = 0; i < st->nchecks; i++)
                if (st->checks[i].kind == FL_CHECK_UNIQUE)
                    st->checks[i].if_no_relation = fl_strdup(ix->idxname);
        }
        break;
    }
    case PG_QUERY__NODE__NODE_DROP_STMT:
        s_drop(st, ctx, n->drop_stmt);
        break;
    case PG_QUERY__NODE__NODE_TRUNCATE_STMT: {
        size_t i;
        st->kind = "TRUNCATE";
        st->cascades = n->truncate_stmt->behavior ==
                       PG_QUERY__DROP_BEHAVIOR__DROP_CASCADE;
        (void)s_rangevar_list(st, ctx, n->truncate_stmt->relations,
                              n->truncate_stmt->n_relations,
                              FL_LOCK_ACCESS_EXCLUSIVE, 1, 1);
        for (i = 0; i < st->ntables; i++)
            if (!s_is_created(ctx, st->tables[i].schema, st->tables[i].name))
                s_destroy(st, FL_DESTROY_TRUNCATE, st->tables[i].schema,
                          st->tables[i].name, NULL);
        break;
    }
    case PG_QUERY__NODE__NODE_DELETE_STMT:
    case PG_QUERY__NODE__NODE_UPDATE_STMT:
    case PG_QUERY__NODE__NODE_INSERT_STMT:
    case PG_QUERY__NODE__NODE_MERGE_STMT:
        st->kind = n->node_case == PG_QUERY__NODE__NODE_DELETE_STMT ? "DELETE"
                   : n->node_case == PG_QUERY__NODE__NODE_UPDATE_STMT ? "UPDATE"
                   : n->node_case == PG_QUERY__NODE__NODE_INSERT_STMT ? "INSERT"
                                                                      : "MERGE";
        s_writes(st, ctx, n);
        s_reads(st, n);
        s_row_predicate(st, n);
        break;
    case PG_QUERY__NODE__NODE_SELECT_STMT:
        st->kind = "SELECT";
        st->sets_config = s_sets_config(n->select_stmt);
        if (n->select_stmt->into_clause) {
            st->kind = "SELECT INTO";
            s_created(st, ctx, n->select_stmt->into_clause->rel, 0);
        }
        s_writes(st, ctx, n);
        s_reads(st, n);
        break;
    case PG_QUERY__NODE__NODE_COPY_STMT:
        st->kind = "COPY";
        (void)s_add_rv(st, n->copy_stmt->relation,
                       n->copy_stmt->is_from ? FL_LOCK_ROW_EXCLUSIVE
                                             : FL_LOCK_ACCESS_SHARE,
                       n->copy_stmt->is_from);
        if (!n->copy_stmt->is_program && (n->copy_stmt->filename == NULL ||
                                          *n->copy_stmt->filename == '\0'))
            st->copy_client = n->copy_stmt->is_from ? FL_COPY_FROM_CLIENT
                                                    : FL_COPY_TO_CLIENT;
        /* COPY (DELETE ... RETURNING *) TO runs the DELETE. */
        s_writes(st, ctx, n->copy_stmt->query);
        s_reads(st, n->copy_stmt->query);
        break;
    case PG_QUERY__NODE__NODE_EXPLAIN_STMT:
        /* EXPLAIN ANALYZE runs the statement; plain EXPLAIN only plans it. */
        if (s_has_option(n->explain_stmt->options, n->explain_stmt->n_options,
                         "analyze") && n->explain_stmt->query)
            s_analyze(st, ctx, n->explain_stmt->query);
        st->kind = "EXPLAIN";
        break;
    case PG_QUERY__NODE__NODE_VACUUM_STMT: {
        const PgQuery__VacuumStmt *v = n->vacuum_stmt;
        int full = s_has_option(v->options, v->n_options, "full");
        st->kind = v->is_vacuumcmd ? (full ? "VACUUM FULL" : "VACUUM") : "ANALYZE";
        if (v->is_vacuumcmd) {
            st->no_transaction = 1;
            st->reach_all = v->n_rels == 0;
            for (size_t i = 0; i < v->n_rels; i++)
                s_reach_rv(st, s_node_rv(v->rels[i]));
        }
        if (full)
            st->rewrites = 1;
        (void)s_rangevar_list(st, ctx, v->rels, v->n_rels,
                              full ? FL_LOCK_ACCESS_EXCLUSIVE
                                   : FL_LOCK_SHARE_UPDATE_EXCLUSIVE, full, 0);
        break;
    }
    case PG_QUERY__NODE__NODE_CLUSTER_STMT:
        st->kind = "CLUSTER";
        if (n->cluster_stmt->relation) {
            st->rewrites = 1;
            (void)s_add_rv(st, n->cluster_stmt->relation,
                           FL_LOCK_ACCESS_EXCLUSIVE, 1);
        } else {
            st->no_transaction = 1; /* re-clusters every table */
            st->reach_all = 1;
        }
        break;
    case PG_QUERY__NODE__NODE_REINDEX_STMT: {
        const PgQuery__ReindexStmt *r = n->reindex_stmt;
        int conc = s_has_option(r->params, r->n_params, "concurrently");
        st->kind = "REINDEX";
        if (conc || r->kind == PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_SCHEMA ||
            r->kind == PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_DATABASE ||
            r->kind == PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_SYSTEM) {
            st->no_transaction = 1;
            if (r->kind == PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_SCHEMA)
                s_reach(st, r->name, NULL);
            else if (r->kind == PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_TABLE ||
                     r->kind == PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_INDEX)
                s_reach_rv(st, r->relation);
            else
                st->reach_all = 1;
        }
        if (r->kind == PG_QUERY__REINDEX_OBJECT_TYPE__REINDEX_OBJECT_TABLE)
            (void)s_add_rv(st, r->relation, conc ? FL_LOCK_SHARE_UPDATE_EXCLUSIVE
                                                 : FL_LOCK_SHARE, 0);
        break;
    }
    case PG_QUERY__NODE__NODE_REFRESH_MAT_VIEW_STMT:
        st->kind = "REFRESH MATERIALIZED VIEW";
        (void)s_add_rv(st, n->refresh_mat_view_stmt->relation,
                       n->refresh_mat_view_stmt->concurrent
                           ? FL_LOCK_EXCLUSIVE : FL_LOCK_ACCESS_EXCLUSIVE, 1);
        if (!n->refresh_mat_view_stmt->concurrent)
            st->rewrites = 1;
        break;
    case PG_QUERY__NODE__NODE_RENAME_STMT: {
        const PgQuery__RenameStmt *r = n->rename_stmt;
        const PgQuery__RangeVar *rv = r->relation;
        st->kind = r->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN ||
                           r->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE ||
                           r->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABCONSTRAINT
                       ? s_alter_kind(r->relation_type == PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN
                                          ? PG_QUERY__OBJECT_TYPE__OBJECT_TABLE
                                          : r->relation_type)
                       : "ALTER";
        if (r->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE)
            st->kind = "ALTER TABLE";
        if (!rv)
            break;
        (void)s_add_rv(st, rv, FL_LOCK_ACCESS_EXCLUSIVE, 1);
        if (!r->missing_ok)
            s_table_exists(st, ctx, rv->schemaname, rv->relname);
        if (r->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_COLUMN)
            s_column_check(st, FL_CHECK_COLUMN_EXISTS, rv, r->subname);
        if (r->rename_type == PG_QUERY__OBJECT_TYPE__OBJECT_TABLE && r->newname) {
            char *oldk = fl_lint_table_key(rv->schemaname, rv->relname);
            if (fl_lint_set_has(&ctx->created, oldk)) {
                char *newk = fl_lint_table_key(rv->schemaname, r->newname);
                fl_lint_set_add(&ctx->created, newk);
                free(newk);
            }
            free(oldk);
        }
        break;
    }
    case PG_QUERY__NODE__NODE_LOCK_STMT: {
        int mode = n->lock_stmt->mode;
        st->kind = "LOCK TABLE";
        if (mode < FL_LOCK_ACCESS_SHARE || mode > FL_LOCK_ACCESS_EXCLUSIVE)
            mode = FL_LOCK_ACCESS_EXCLUSIVE;
        (void)s_rangevar_list(st, ctx, n->lock_stmt->relations,
                              n->lock_stmt->n_relations, (fl_lock_level)mode, 0, 0);
        break;
    }
    case PG_QUERY__NODE__NODE_CREATE_POLICY_STMT:
        /* Policies and rules take ACCESS EXCLUSIVE on their table. */
        st->kind = "CREATE POLICY";
        (void)s_add_rv(st, n->create_policy_stmt->table,
                       FL_LOCK_ACCESS_EXCLUSIVE, 0);
        break;
    case PG_QUERY__NODE__NODE_ALTER_POLICY_STMT:
        st->kind = "ALTER POLICY";
        (void)s_add_rv(st, n->alter_policy_stmt->table,
                       FL_LOCK_ACCESS_EXCLUSIVE, 0);
        break;
    case PG_QUERY__NODE__NODE_RULE_STMT:
        st->kind = "CREATE RULE";
        (void)s_add_rv(st, n->rule_stmt->relation, FL_LOCK_ACCESS_EXCLUSIVE, 0);
        break;
    case PG_QUERY__NODE__NODE_CREATE_TRIG_STMT:
        st->kind = "CREATE TRIGGER";
        (void)s_add_rv(st, n->create_trig_stmt->relation,
                       FL_LOCK_SHARE_ROW_EXCLUSIVE, 1);
        break;
    case PG_QUERY__NODE__NODE_CREATEDB_STMT:
        st->kind = "CREATE DATABASE";
        st->no_transaction = 1;
        break;
    case PG_QUERY__NODE__NODE_DROPDB_STMT:
        st->kind = "DROP DATABASE";
        st->no_transaction = 1;
        break;
    case PG_QUERY__NODE__NODE_ALTER_SYSTEM_STMT:
        st->kind = "ALTER SYSTEM";
        st->no_transaction = 1;
        break;
    case PG_QUERY__NODE__NODE_ALTER_DATABASE_STMT:
        st->kind = "ALTER DATABASE";
        if (s_option(n->alter_database_stmt->options,
                     n->alter_database_stmt->n_options, "tablespace"))
            st->no_transaction = 1;
        break;
    case PG_QUERY__NODE__NODE_CREATE_SUBSCRIPTION_STMT: {
        /* Making the replication slot cannot run in a transaction; it is
         * made unless create_slot or connect is false. */
        const PgQuery__CreateSubscriptionStmt *c =
            n->create_subscription_stmt;
        int connect = !s_option(c->options, c->n_options, "connect") ||
                      s_has_option(c->options, c->n_options, "connect");
        st->kind = "CREATE SUBSCRIPTION";
        if (s_option(c->options, c->n_options, "create_slot"))
            connect = s_has_option(c->options, c->n_options, "create_slot");
        st->no_transaction = connect;
        break;
    }
    case PG_QUERY__NODE__NODE_ALTER_SUBSCRIPTION_STMT: {
        /* REFRESH, and SET, ADD or DROP PUBLICATION unless refresh is
         * false, cannot run in a transaction (or are refused). */
        const PgQuery__AlterSubscriptionStmt *a = n->alter_subscription_stmt;
        st->kind = "ALTER SUBSCRIPTION";
        switch (a->kind) {
        case PG_QUERY__ALTER_SUBSCRIPTION_TYPE__ALTER_SUBSCRIPTION_REFRESH:
            st->no_transaction = 1;
            break;
        case PG_QUERY__ALTER_SUBSCRIPTION_TYPE__ALTER_SUBSCRIPTION_SET_PUBLICATION:
        case PG_QUERY__ALTER_SUBSCRIPTION_TYPE__ALTER_SUBSCRIPTION_ADD_PUBLICATION:
        case PG_QUERY__ALTER_SUBSCRIPTION_TYPE__ALTER_SUBSCRIPTION_DROP_PUBLICATION:
            st->no_transaction =
                !s_option(a->options, a->n_options, "refresh") ||
                s_has_option(a->options, a->n_options, "refresh");
            break;
        default:
            break;
        }
        break;
    }
    case PG_QUERY__NODE__NODE_CREATE_TABLE_SPACE_STMT:
        st->kind = "CREATE TABLESPACE";
        st->no_transaction = 1;
        break;
    case PG_QUERY__NODE__NODE_DROP_TABLE_SPACE_STMT:
        st->kind = "DROP TABLESPACE";
        st->no_transaction = 1;
        break;
    case PG_QUERY__NODE__NODE_ALTER_ENUM_STMT:
        st->kind = "ALTER TYPE";
        /* ADD VALUE may run in a transaction block only from PG 12. */
        if (*s_str(n->alter_enum_stmt->new_val) && !*s_str(n->alter_enum_stmt->old_val) &&
            ctx->pg_version < 120000)
            st->no_transaction = 1;
        break;
    case PG_QUERY__NODE__NODE_TRANSACTION_STMT:
        st->kind = s_transaction_kind(n->transaction_stmt->kind);
        break;
    case PG_QUERY__NODE__NODE_VARIABLE_SET_STMT:
        st->kind = n->variable_set_stmt->kind == PG_QUERY__VARIABLE_SET_KIND__VAR_RESET ||
                           n->variable_set_stmt->kind == PG_QUERY__VARIABLE_SET_KIND__VAR_RESET_ALL
                       ? "RESET" : "SET";
        /* An unqualified name may mean another table from here on
         * (before, a table of that name created under another
         * search_path was taken for it: found by an audit). */
        if (fl_lint_sets_search_path(n))
            fl_lint_set_forget_unqualified(&ctx->created);
        break;
    case PG_QUERY__NODE__NODE_CREATE_DOMAIN_STMT: st->kind = "CREATE DOMAIN"; break;
    case PG_QUERY__NODE__NODE_ALTER_DOMAIN_STMT: st->kind = "ALTER DOMAIN"; break;
    case PG_QUERY__NODE__NODE_CREATE_ENUM_STMT: st->kind = "CREATE TYPE"; break;
    case PG_QUERY__NODE__NODE_COMPOSITE_TYPE_STMT: st->kind = "CREATE TYPE"; break;
    case PG_QUERY__NODE__NODE_CREATE_SCHEMA_STMT: st->kind = "CREATE SCHEMA"; break;
    case PG_QUERY__NODE__NODE_CREATE_SEQ_STMT: st->kind = "CREATE SEQUENCE"; break;
    case PG_QUERY__NODE__NODE_CREATE_FUNCTION_STMT: st->kind = "CREATE FUNCTION"; break;
    case PG_QUERY__NODE__NODE_CREATE_EXTENSION_STMT: st->kind = "CREATE EXTENSION"; break;
    case PG_QUERY__NODE__NODE_DO_STMT: st->kind = "DO"; break;
    case PG_QUERY__NODE__NODE_CALL_STMT: st->kind = "CALL"; break;
    case PG_QUERY__NODE__NODE_DROP_OWNED_STMT:
        /* Drops every object of the roles, tables included, whatever
         * its RESTRICT or CASCADE. */
        st->kind = "DROP OWNED";
        st->destructive = 1;
        st->cascades = 1;
        break;
    case PG_QUERY__NODE__NODE_EXECUTE_STMT: st->kind = "EXECUTE"; break;
    case PG_QUERY__NODE__NODE_PREPARE_STMT: st->kind = "PREPARE"; break;
    case PG_QUERY__NODE__NODE_DECLARE_CURSOR_STMT: st->kind = "DECLARE CURSOR"; break;
    case PG_QUERY__NODE__NODE_FETCH_STMT:
        st->kind = n->fetch_stmt->ismove ? "MOVE" : "FETCH";
        break;
    case PG_QUERY__NODE__NODE_CLOSE_PORTAL_STMT: st->kind = "CLOSE"; break;
    case PG_QUERY__NODE__NODE_LISTEN_STMT: st->kind = "LISTEN"; break;
    case PG_QUERY__NODE__NODE_UNLISTEN_STMT: st->kind = "UNLISTEN"; break;
    case PG_QUERY__NODE__NODE_NOTIFY_STMT: st->kind = "NOTIFY"; break;
    case PG_QUERY__NODE__NODE_DEALLOCATE_STMT: st->kind = "DEALLOCATE"; break;
    case PG_QUERY__NODE__NODE_DISCARD_STMT:
        switch (n->discard_stmt->target) {
        case PG_QUERY__DISCARD_MODE__DISCARD_ALL: st->kind = "DISCARD ALL"; break;
        case PG_QUERY__DISCARD_MODE__DISCARD_TEMP: st->kind = "DISCARD TEMP"; break;
        case PG_QUERY__DISCARD_MODE__DISCARD_PLANS: st->kind = "DISCARD PLANS"; break;
        default: st->kind = "DISCARD SEQUENCES"; break;
        }
        break;
    case PG_QUERY__NODE__NODE_COMMENT_STMT:
        st->kind = "COMMENT";
        s_comment(st, n->comment_stmt);
        break;
    case PG_QUERY__NODE__NODE_CREATE_STATS_STMT: {
        const PgQuery__CreateStatsStmt *c = n->create_stats_stmt;
        st->kind = "CREATE STATISTICS";
        for (size_t i = 0; i < c->n_relations; i++)
            (void)s_add_rv(st, s_node_rv(c->relations[i]),
                           FL_LOCK_SHARE_UPDATE_EXCLUSIVE, 0);
        break;
    }
    case PG_QUERY__NODE__NODE_CREATE_PUBLICATION_STMT:
        st->kind = "CREATE PUBLICATION";
        s_publication(st, n->create_publication_stmt->pubobjects,
                      n->create_publication_stmt->n_pubobjects);
        break;
    case PG_QUERY__NODE__NODE_ALTER_PUBLICATION_STMT:
        st->kind = "ALTER PUBLICATION";
        s_publication(st, n->alter_publication_stmt->pubobjects,
                      n->alter_publication_stmt->n_pubobjects);
        break;
    case PG_QUERY__NODE__NODE_GRANT_STMT:
        st->kind = n->grant_stmt->is_grant ? "GRANT" : "REVOKE";
        break;
    default:
        /* The parse node's name ("CreateRoleStmt") is still informative. */
        f = protobuf_c_message_descriptor_get_field(&pg_query__node__descriptor,
                                                    (unsigned)n->node_case);
        st->kind = f ? f->name : "UNKNOWN";
        break;
    }
}

/* ---- splitting and parsing ---- */

static void
s_tree_push(fl_lint_tree_t *tree, const PgQuery__Node *node, size_t base)
{
    tree->nodes = fl_reallocarray(tree->nodes, tree->count + 1,
                                  sizeof(*tree->nodes));
    tree->base = fl_reallocarray(tree->base, tree->count + 1, sizeof(size_t));
    tree->nodes[tree->count] = node;
    tree->base[tree->count] = base;
    tree->count++;
}

static fl_stmt_t *
s_stmt_push(fl_stmt_list_t *out, const char *sql, size_t start, size_t end,
            const fl_lint_lines_t *lines, int base_line)
{
    fl_stmt_t *st;

    start = fl_lint_skip_space(sql, start, end);
    while (end > start && (sql[end - 1] == ' ' || sql[end - 1] == '\t' ||
                           sql[end - 1] == '\n' || sql[end - 1] == '\r' ||
                           sql[end - 1] == ';'))
        end--;
    out->items = fl_reallocarray(out->items, out->count + 1, sizeof(*st));
    st = &out->items[out->count++];
    memset(st, 0, sizeof(*st));
    st->offset = start;
    st->length = end - start;
    st->sql = fl_strndup(sql + start, end - start);
    fl_lint_lines_pos(lines, start, &st->line, &st->column);
    st->line += base_line;
    st->kind = "UNKNOWN";
    return st;
}

/* Records a PG error for the piece starting at piece_start. */
static void
s_parse_error(fl_stmt_t *st, const PgQueryError *e, size_t piece_start,
              size_t piece_len, const fl_lint_lines_t *lines, int base_line)
{
    size_t at = piece_start;
    int line, col;

    st->parse_error = 1;
    st->kind = "UNPARSED";
    if (e->cursorpos > 0 && (size_t)e->cursorpos - 1 <= piece_len)
        at = piece_start + (size_t)e->cursorpos - 1;
    fl_lint_lines_pos(lines, at, &line, &col);
    st->error_line = line + base_line;
    st->error_offset = at;
    st->error_column = col;
    st->error = fl_asprintf("%s at line %d, column %d", e->message,
                            line + base_line, col);
}

static int
s_is_blank(const char *s, size_t start, size_t end)
{
    return fl_lint_skip_space(s, start, end) >= end;
}

struct fl_lint_chunk {
    struct fl_lint_chunk *next;
    size_t size;
    max_align_t data[]; /* size bytes */
};

#define S_CHUNK ((size_t)64 * 1024)

static void *
s_arena_alloc(void *arg, size_t size)
{
    fl_lint_arena_t *a = arg;
    size_t align = sizeof(max_align_t), need = (size + align - 1) / align * align;
    fl_lint_chunk_t *c = a->chunks;
    void *p;

    if (!c || a->used + need > c->size) {
        size_t cap = need > S_CHUNK ? need : S_CHUNK;
        c = fl_malloc(sizeof(*c) + cap);
        c->size = cap;
        c->next = a->chunks;
        a->chunks = c;
        a->used = 0;
    }
    p = (char *)c->data + a->used;
    a->used += need;
    return p;
}

static void
s_arena_free(void *arg, void *p)
{
    (void)arg; /* freed with the whole arena */
    (void)p;
}

static void
s_arena_release(fl_lint_arena_t *a)
{
    while (a->chunks) {
        fl_lint_chunk_t *next = a->chunks->next;
        free(a->chunks);
        a->chunks = next;
    }
    a->used = 0;
}

static PgQuery__ParseResult *
s_unpack(fl_lint_tree_t *tree, const PgQueryProtobufParseResult *r)
{
    ProtobufCAllocator alloc = {s_arena_alloc, s_arena_free, &tree->arena};
    return pg_query__parse_result__unpack(&alloc, r->parse_tree.len,
                                          (const uint8_t *)r->parse_tree.data);
}

static void
s_keep_result(fl_lint_tree_t *tree, PgQuery__ParseResult *pr)
{
    tree->results = fl_reallocarray(tree->results, tree->nresults + 1,
                                    sizeof(*tree->results));
    tree->results[tree->nresults++] = pr;
}

/* Adds the statements of one parsed text (the input or a piece of it). */
static void
s_add_parsed(fl_stmt_list_t *out, fl_lint_tree_t *tree, s_ctx_t *ctx,
             const PgQuery__ParseResult *pr, const char *sql, size_t base,
             size_t end, const fl_lint_lines_t *lines, int base_line)
{
    size_t i;

    for (i = 0; i < pr->n_stmts; i++) {
        const PgQuery__RawStmt *rs = pr->stmts[i];
        size_t s = base + (size_t)(rs->stmt_location > 0 ? rs->stmt_location : 0);
        size_t e = rs->stmt_len > 0 ? s + (size_t)rs->stmt_len : end;
        fl_stmt_t *st;

        if (e > end)
            e = end;
        if (s > e)
            s = e;
        st = s_stmt_push(out, sql, s, e, lines, base_line);
        s_tree_push(tree, rs->stmt, base);
        if (rs->stmt) {
            const PgQuery__FuncCall *call = NULL;
            s_analyze(st, ctx, rs->stmt);
            st->opaque = fl_lint_is_opaque(rs->stmt, &call);
            st->outside = s_outside(rs->stmt);
            for (size_t t = 0; t < st->ntables; t++)
                st->tables[t].fresh =
                    !st->tables[t].created &&
                    s_is_created(ctx, st->tables[t].schema, st->tables[t].name);
        }
    }
}

/* fl_facts_depth_bound's groups: a parenthesis, a bracket, a CASE. */
typedef struct {
    size_t cur;   /* tokens of the item being read, groups as their depth */
    size_t max;   /* the deepest item so far */
    size_t chain; /* set operations and JOINs, which nest their left side
                     across the items (S_CHAIN each) */
    int is_case;  /* closed by END, not by ) or ] */
} s_group_t;

/* What a UNION, INTERSECT, EXCEPT or JOIN adds (a level of about as many
 * tokens: "SELECT 1 UNION ALL"). */
#define S_CHAIN 4

/* How deep group g is: its deepest item, under its chain. */
static size_t
s_group_depth(const s_group_t *g)
{
    return (g->max > g->cur ? g->max : g->cur) + g->chain;
}

/* Closes the innermost group into its parent's item. */
static void
s_group_close(s_group_t *g, size_t *n)
{
    size_t d = s_group_depth(&g[*n - 1]);

    (*n)--;
    g[*n - 1].cur += d + 1;
}

size_t
fl_facts_depth_bound(const char *sql, int *line)
{
    PgQueryScanResult r = pg_query_scan(sql);
    PgQuery__ScanResult *sr = NULL;
    s_group_t *g = NULL;
    size_t n = 1, cap = 64, best = 0, at = 0;

    if (line != NULL)
        *line = 1;
    if (r.error == NULL)
        sr = pg_query__scan_result__unpack(NULL, r.pbuf.len,
                                           (const uint8_t *)r.pbuf.data);
    if (sr == NULL) {
        pg_query_free_scan_result(r);
        return 0;
    }
    g = fl_calloc(cap, sizeof(*g));
    for (size_t i = 0; i <= sr->n_tokens; i++) {
        int tok = i < sr->n_tokens ? (int)sr->tokens[i]->token
                                   : PG_QUERY__TOKEN__ASCII_59;
        size_t d;

        switch (tok) {
        case PG_QUERY__TOKEN__ASCII_40: /* ( */
        case PG_QUERY__TOKEN__ASCII_91: /* [ */
        case PG_QUERY__TOKEN__CASE:
            if (n == cap) {
                cap *= 2;
                g = fl_reallocarray(g, cap, sizeof(*g));
            }
            memset(&g[n], 0, sizeof(g[n]));
            g[n++].is_case = tok == PG_QUERY__TOKEN__CASE;
            break;
        case PG_QUERY__TOKEN__ASCII_41: /* ) */
        case PG_QUERY__TOKEN__ASCII_93: /* ] */
            if (n > 1 && !g[n - 1].is_case)
                s_group_close(g, &n);
            else
                g[n - 1].cur++;
            break;
        case PG_QUERY__TOKEN__END_P:
            if (n > 1 && g[n - 1].is_case)
                s_group_close(g, &n);
            else
                g[n - 1].cur++;
            break;
        case PG_QUERY__TOKEN__ASCII_44: /* , */
        case PG_QUERY__TOKEN__AND:
        case PG_QUERY__TOKEN__OR:
        case PG_QUERY__TOKEN__WHEN:
        case PG_QUERY__TOKEN__THEN:
        case PG_QUERY__TOKEN__ELSE:
            if (g[n - 1].cur > g[n - 1].max)
                g[n - 1].max = g[n - 1].cur;
            g[n - 1].cur = 0;
            break;
        case PG_QUERY__TOKEN__UNION:
        case PG_QUERY__TOKEN__INTERSECT:
        case PG_QUERY__TOKEN__EXCEPT:
        case PG_QUERY__TOKEN__JOIN:
            /* A chain of them is as deep as it is long, whatever commas,
             * ANDs and ORs its SELECTs and ON conditions hold. */
            g[n - 1].chain += S_CHAIN;
            break;
        case PG_QUERY__TOKEN__ASCII_59: /* ; and the end: the statement */
            while (n > 1)
                s_group_close(g, &n);
            d = s_group_depth(&g[0]);
            if (d > best) {
                best = d;
                at = i < sr->n_tokens ? (size_t)sr->tokens[i]->start
                                      : strlen(sql);
            }
            memset(&g[0], 0, sizeof(g[0]));
            break;
        default:
            g[n - 1].cur++;
        }
    }
    if (line != NULL)
        for (size_t i = 0; i < at && sql[i] != '\0'; i++)
            *line += sql[i] == '\n';
    free(g);
    pg_query__scan_result__free_unpacked(sr, NULL);
    pg_query_free_scan_result(r);
    return best;
}

/*
 * Whether sql could be deeper than FL_FACTS_MAX_DEPTH: then out gets one
 * UNPARSED statement covering it, saying so, and 1.  A statement can be
 * no deeper than it has tokens, nor have more tokens than bytes: input
 * shorter than the limit is not scanned.
 */
static int
s_too_deep(fl_stmt_list_t *out, fl_lint_tree_t *tree, const char *sql,
           size_t len, const fl_lint_lines_t *lines, int base_line)
{
    size_t depth;
    int line = 1;
    fl_stmt_t *st = NULL;

    if (len <= FL_FACTS_MAX_DEPTH ||
        (depth = fl_facts_depth_bound(sql, &line)) <= FL_FACTS_MAX_DEPTH)
        return 0;
    st = s_stmt_push(out, sql, 0, len, lines, base_line);
    s_tree_push(tree, NULL, 0);
    st->parse_error = 1;
    st->too_deep = 1;
    st->kind = "UNPARSED";
    st->error_line = line + base_line;
    st->error_offset = 0;
    st->error_column = 1;
    st->error = fl_asprintf("the statement ending at line %d is nested too "
                            "deeply for flotilla to analyze (up to %zu "
                            "levels; at most %d): split its longest chain of "
                            "operators, UNIONs or JOINs, or nest less",
                            line + base_line, depth, FL_FACTS_MAX_DEPTH);
    return 1;
}

/* One piece of the fallback, [s, e) of sql, parsed alone. */
static void
s_piece(fl_stmt_list_t *out, fl_lint_tree_t *tree, s_ctx_t *ctx,
        const char *sql, size_t s, size_t e, const fl_lint_lines_t *lines,
        int base_line)
{
    char *piece = fl_strndup(sql + s, e - s);
    PgQueryProtobufParseResult r = pg_query_parse_protobuf(piece);

    if (r.error) {
        fl_stmt_t *st = s_stmt_push(out, sql, s, e, lines, base_line);
        s_tree_push(tree, NULL, s);
        s_parse_error(st, r.error, s, e - s, lines, base_line);
    } else {
        PgQuery__ParseResult *pr = s_unpack(tree, &r);
        if (pr) {
            s_keep_result(tree, pr);
            s_add_parsed(out, tree, ctx, pr, sql, s, e, lines, base_line);
        }
    }
    pg_query_free_protobuf_parse_result(r);
    free(piece);
}

/* The first place of [from, to) in sql that is no blank, comment or ";"
 * (to when there is none). */
static size_t
s_skip_separators(const char *sql, size_t from, size_t to)
{
    for (;;) {
        from = fl_lint_skip_space(sql, from, to);
        if (from < to && sql[from] == ';')
            from++;
        else
            return from;
    }
}

/*
 * The fallback: split with the scanner and parse each piece alone.  The
 * scanner's split leaves out what it cannot end ("SELEC 1;", and all
 * after a parenthesis left open): text between its pieces, or after the
 * last, that is more than blanks, comments and ";" is a piece too, so
 * that it is refused as the parser refuses it, never lost.  Before, that
 * text vanished: the rest of the migration was applied and recorded
 * applied without it.
 */
static void
s_split_pieces(fl_stmt_list_t *out, fl_lint_tree_t *tree, s_ctx_t *ctx,
               const char *sql, size_t len, const fl_lint_lines_t *lines,
               int base_line)
{
    PgQuerySplitResult sr = pg_query_split_with_scanner(sql);
    size_t pos = 0, from = 0;

    if (sr.error) {
        /* Not even the scanner can split it (an unterminated quote or
         * comment): one unparsed statement covers the input. */
        fl_stmt_t *st = s_stmt_push(out, sql, 0, len, lines, base_line);
        s_tree_push(tree, NULL, 0);
        s_parse_error(st, sr.error, 0, len, lines, base_line);
        pg_query_free_split_result(sr);
        return;
    }
    for (int i = 0; i <= sr.n_stmts; i++) {
        size_t s = i < sr.n_stmts ? (size_t)sr.stmts[i]->stmt_location : len;
        size_t e = i < sr.n_stmts && sr.stmts[i]->stmt_len > 0
                       ? s + (size_t)sr.stmts[i]->stmt_len : len;

        if (s > len)
            s = len;
        if (s < pos)
            s = pos;
        if (e > len || e < s)
            e = len;
        /* What the scanner left out before this piece. */
        if ((from = s_skip_separators(sql, pos, s)) < s) {
            size_t to = s;
            while (to > from && strchr(" \t\n\r\f\v", sql[to - 1]) != NULL)
                to--;
            s_piece(out, tree, ctx, sql, from, to, lines, base_line);
        }
        if (i == sr.n_stmts)
            break;
        if (!s_is_blank(sql, s, e))
            s_piece(out, tree, ctx, sql, s, e, lines, base_line);
        pos = e;
    }
    pg_query_free_split_result(sr);
}

int
fl_facts_analyze_tree(fl_stmt_list_t *out, fl_lint_tree_t *tree,
                      const char *sql, int base_line, int pg_version,
                      fl_error_t *err)
{
    s_ctx_t ctx;
    fl_lint_lines_t lines;
    PgQueryProtobufParseResult r;
    size_t len, i;
    int rc = 0;

    assert(out && tree && sql);
    memset(out, 0, sizeof(*out));
    memset(tree, 0, sizeof(*tree));
    memset(&ctx, 0, sizeof(ctx));
    ctx.pg_version = pg_version > 0 ? pg_version : 150000;
    len = strlen(sql);
    fl_lint_lines_init(&lines, sql, len);

    if (s_too_deep(out, tree, sql, len, &lines, base_line)) {
        fl_lint_lines_release(&lines);
        return 0;
    }
    r = pg_query_parse_protobuf(sql);
    if (!r.error) {
        PgQuery__ParseResult *pr = s_unpack(tree, &r);
        if (!pr) {
            rc = FL_ERR(err, FL_EFAIL,
                        "could not decode the parse tree of the SQL input");
            goto cleanup;
        }
        s_keep_result(tree, pr);
        s_add_parsed(out, tree, &ctx, pr, sql, 0, len, &lines, base_line);
    } else {
        s_split_pieces(out, tree, &ctx, sql, len, &lines, base_line);
    }

cleanup:
    pg_query_free_protobuf_parse_result(r);
    fl_lint_lines_release(&lines);
    fl_lint_set_release(&ctx.created);
    for (i = 0; i < ctx.npending; i++) {
        free(ctx.pending[i].table_key);
        free(ctx.pending[i].name);
        s_check_free(&ctx.pending[i].check);
    }
    free(ctx.pending);
    if (rc != 0) {
        fl_stmt_list_release(out);
        fl_lint_tree_release(tree);
    }
    return rc;
}

int
fl_facts_analyze(fl_stmt_list_t *out, const char *sql, int base_line,
                 int pg_version, fl_error_t *err)
{
    fl_lint_tree_t tree;
    int rc = fl_facts_analyze_tree(out, &tree, sql, base_line, pg_version, err);
    fl_lint_tree_release(&tree);
    return rc;
}

void
fl_lint_tree_release(fl_lint_tree_t *tree)
{
    if (!tree)
        return;
    s_arena_release(&tree->arena); /* the results live in it */
    free(tree->results);
    free(tree->nodes);
    free(tree->base);
    memset(tree, 0, sizeof(*tree));
}

void
fl_stmt_list_release(fl_stmt_list_t *list)
{
    size_t i, j;

    if (!list)
        return;
    for (i = 0; i < list->count; i++) {
        fl_stmt_t *st = &list->items[i];
        free(st->sql);
        free(st->error);
        free(st->index_name);
        free(st->index_schema);
        for (j = 0; j < st->ntables; j++) {
            free(st->tables[j].schema);
            free(st->tables[j].name);
        }
        free(st->tables);
        for (j = 0; j < st->ndestroys; j++) {
            free(st->destroys[j].schema);
            free(st->destroys[j].table);
            free(st->destroys[j].column);
        }
        free(st->destroys);
        free(st->row_where);
        free(st->row_alias);
        free(st->row_why);
        for (j = 0; j < st->nreach; j++) {
            free(st->reach[j].schema);
            free(st->reach[j].name);
        }
        free(st->reach);
        for (j = 0; j < st->nchecks; j++)
            s_check_free(&st->checks[j]);
        free(st->checks);
    }
    free(list->items);
    list->items = NULL;
    list->count = 0;
}

/* fl_facts_expr_runs_nothing's walk: nonzero at the first node that may
 * run code. */
static int
s_runs_something(const ProtobufCMessage *msg, void *arg)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    static const ProtobufCMessageDescriptor *const plain[] = {
        &pg_query__parse_result__descriptor, &pg_query__raw_stmt__descriptor,
        &pg_query__node__descriptor, &pg_query__select_stmt__descriptor,
        &pg_query__res_target__descriptor, &pg_query__a__const__descriptor,
        &pg_query__integer__descriptor, &pg_query__float__descriptor,
        &pg_query__string__descriptor, &pg_query__boolean__descriptor,
        &pg_query__bit_string__descriptor, &pg_query__column_ref__descriptor,
        &pg_query__null_test__descriptor, &pg_query__bool_expr__descriptor,
        &pg_query__type_cast__descriptor,
    };

    (void)arg;
    if (d == &pg_query__type_name__descriptor) {
        const PgQuery__TypeName *t = (const PgQuery__TypeName *)msg;
        const char *first = t->n_names == 2 ? fl_lint_node_str(t->names[0])
                                            : NULL;
        return !(first && strcmp(first, "pg_catalog") == 0 && !t->setof &&
                 !t->pct_type);
    }
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        if (d == plain[i])
            return 0;
    return 1;
}

int
fl_facts_expr_runs_nothing(const char *sql)
{
    char *select = NULL;
    PgQueryProtobufParseResult r;
    PgQuery__ParseResult *pr = NULL;
    int nothing = 0;

    if (sql == NULL)
        return 1;
    select = fl_asprintf("SELECT %s", sql);
    r = pg_query_parse_protobuf(select);
    if (!r.error)
        pr = pg_query__parse_result__unpack(NULL, r.parse_tree.len,
                                            (const uint8_t *)r.parse_tree.data);
    if (pr && pr->n_stmts == 1)
        nothing = fl_lint_walk(&pr->base, s_runs_something, NULL) == 0;
    if (pr)
        pg_query__parse_result__free_unpacked(pr, NULL);
    pg_query_free_protobuf_parse_result(r);
    free(select);
    return nothing;
}
