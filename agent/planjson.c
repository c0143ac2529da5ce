/*
 * planjson.c - the dry run's report (fl_plan_t) as JSON, in the shape
 * `flotilla plan --json` prints and an agent sends its coordinator as a
 * plan command's report.  Kept out of the pipeline library, which returns
 * a plain struct and never exposes JSON.
 */
#include "agent/planjson.h"

#include <string.h>

#include "common/alloc.h"
#include "common/json.h"

/* A text, or null when absent or empty. */
static json_t *
s_text_or_null(const char *v)
{
    return v == NULL || *v == '\0' ? json_null() : fl_json_text(v);
}

/* An array of strings, or null when not read. */
static json_t *
s_strings(char *const *items, size_t n, int read)
{
    json_t *a = read ? json_array() : json_null();

    for (size_t i = 0; read && i < n; i++)
        json_array_append_new(a, fl_json_text(items[i]));
    return a;
}

static json_t *
s_stmt_json(const fl_plan_migration_t *m, const fl_plan_stmt_t *st)
{
    json_t *locks = json_array();
    json_t *o = NULL;

    for (size_t k = 0; k < st->nlocks; k++)
        json_array_append_new(locks, fl_json_pack("{s:o, s:s, s:b}",
            "table", fl_json_text(st->locks[k].table),
            "lock", st->locks[k].lock, "writes", st->locks[k].writes));
    o = fl_json_pack("{s:i, s:o, s:i, s:i, s:o, s:o, s:o, s:b, s:b, s:b, s:b,"
                     " s:o, s:o, s:o, s:o}",
                     "index", st->index, "file", fl_json_text(m->file),
                     "line", st->line, "column", st->column,
                     "kind", s_text_or_null(st->kind), "sql",
                     fl_json_text(st->sql), "locks", locks,
                     "rewrites", st->rewrites, "scans", st->scans,
                     "destructive", st->destructive,
                     "no_transaction", st->no_transaction,
                     "backup", s_strings(st->backups, st->nbackups, 1),
                     "rehearsal", fl_json_text(st->rehearsal),
                     "observed_locks", s_strings(st->observed_locks,
                         st->nobserved_locks,
                         st->observed && st->observed_locks_read),
                     "observed_rewrites", s_strings(st->observed_rewrites,
                         st->nobserved_rewrites, st->observed));
    if (st->nchecks > 0 || st->rehearsal) {
        json_t *checks = json_array();
        for (size_t k = 0; k < st->nchecks; k++) {
            const fl_plan_check_t *c = &st->checks[k];
            json_array_append_new(checks, fl_json_pack(
                "{s:o, s:o, s:b, s:I, s:o, s:o, s:o, s:o}", "check",
                fl_json_text(c->check), "target", fl_json_text(c->target),
                "ok", c->ok, "count", (json_int_t)c->count,
                "sample", fl_json_text(c->sample),
                "problem", fl_json_text(c->problem),
                "skipped", fl_json_text(c->skipped),
                "holds", fl_json_text(c->holds)));
        }
        json_object_set_new(o, "checks", checks);
    }
    return o;
}

json_t *
fl_plan_json(const fl_plan_t *plan)
{
    json_t *migs = json_array(), *seqs = json_array(), *reps = json_array();

    for (size_t i = 0; i < plan->nmigrations; i++) {
        const fl_plan_migration_t *m = &plan->migrations[i];
        json_t *mo = fl_json_pack("{s:s, s:o, s:o, s:o, s:s, s:o}",
            "version", m->version.text, "name", fl_json_text(m->name),
            "file", fl_json_text(m->file), "checksum",
            fl_json_text(m->checksum), "transaction",
            m->no_transaction ? "none (statement by statement)"
                              : "one transaction",
            "state", fl_json_text(m->state));
        if (m->transaction_why)
            json_object_set_new(mo, "transaction_why",
                                fl_json_text(m->transaction_why));
        if (m->note)
            json_object_set_new(mo, "note", fl_json_text(m->note));
        if (m->pending) {
            json_t *sts = json_array(), *lint = json_array();
            json_t *validate = json_array();
            for (size_t j = 0; j < m->nstmts; j++)
                json_array_append_new(sts, s_stmt_json(m, &m->stmts[j]));
            for (size_t j = 0; j < m->nlint; j++)
                json_array_append_new(lint, fl_json_pack(
                    "{s:o, s:s, s:o, s:i, s:i, s:o, s:b}", "rule",
                    fl_json_text(m->lint[j].rule), "severity",
                    m->lint[j].severity, "message",
                    fl_json_text(m->lint[j].message), "line", m->lint[j].line,
                    "column", m->lint[j].column, "help",
                    fl_json_text(m->lint[j].help), "not_enforced",
                    m->lint[j].not_enforced));
            for (size_t j = 0; j < m->nvalidate; j++)
                json_array_append_new(validate, fl_json_pack(
                    "{s:o, s:o, s:b, s:o}", "statement",
                    fl_json_text(m->validate[j].statement), "at",
                    fl_json_text(m->validate[j].at), "ok", m->validate[j].ok,
                    "result", fl_json_text(m->validate[j].result)));
            json_object_set_new(mo, "statements", sts);
            json_object_set_new(mo, "lint", lint);
            json_object_set_new(mo, "validate", validate);
            json_object_set_new(mo, "verdict", json_string(m->verdict));
            json_object_set_new(mo, "problem", fl_json_text(m->problem));
        }
        json_array_append_new(migs, mo);
    }
    for (size_t i = 0; i < plan->nsequences; i++) {
        const fl_plan_sequence_t *q = &plan->sequences[i];
        json_array_append_new(seqs, fl_json_pack("{s:o, s:o, s:o, s:b}",
            "sequence", fl_json_text(q->sequence), "before",
            q->has_before ? json_integer(q->before) : json_null(),
            "after_rehearsal",
            q->has_after ? json_integer(q->after_rehearsal) : json_null(),
            "put_back", q->put_back));
    }
    for (size_t i = 0; i < plan->nrepeatables; i++) {
        const fl_plan_repeatable_t *x = &plan->repeatables[i];
        json_array_append_new(reps, fl_json_pack(
            "{s:o, s:o, s:o, s:s, s:b, s:b, s:s}", "name",
            fl_json_text(x->name), "file", fl_json_text(x->file), "checksum",
            fl_json_text(x->checksum), "state", x->state, "would_run",
            x->would_run, "held", x->held, "rehearsal", "not rehearsed"));
    }
    return fl_json_pack("{s:o, s:i, s:b, s:o, s:o, s:o, s:o, s:o, s:o, s:i,"
                        " s:i, s:i, s:b, s:b, s:o, s:o}",
        "target", fl_json_text(plan->target),
        "server_version", plan->server_version, "rehearse", plan->rehearse,
        "problem", fl_json_text(plan->problem),
        "detail", fl_json_text(plan->detail),
        "release_override", fl_json_text(plan->release_override),
        "migrations", migs, "repeatables", reps, "sequences", seqs,
        "pending", plan->pending,
        "rehearsed", plan->rehearsed,
        "not_rehearsed", plan->pending - plan->rehearsed, "ok", plan->ok,
        "proven", plan->proven, "not_rehearsed_because",
        fl_json_text(plan->not_rehearsed_because), "schema_state",
        fl_schema_state_json(&plan->schema_state));
}

json_t *
fl_schema_state_json(const fl_schema_state_t *st)
{
    if (!st->known)
        return json_null();
    return fl_json_pack("{s:o, s:o, s:b}", "recorded_after",
                        fl_json_text(st->after), "recorded_at",
                        fl_json_text(st->recorded_at), "changed",
                        st->changed);
}

/* ---- fitting a report into a message ---- */

/*
 * Shortens every string of j longer than FL_PLAN_CUT_TEXT bytes to that
 * many (cut at a character boundary) plus "..."; returns how many.
 */
static size_t
s_cut_texts(json_t *j)
{
    size_t n = 0, i;
    const char *key;
    json_t *v;
    void *tmp;

    if (json_is_object(j)) {
        json_object_foreach_safe(j, tmp, key, v) {
            if (json_is_string(v) &&
                json_string_length(v) > FL_PLAN_CUT_TEXT) {
                const char *t = json_string_value(v);
                size_t len = FL_PLAN_CUT_TEXT;
                char *cut;

                while (len > 0 && ((unsigned char)t[len] & 0xC0) == 0x80)
                    len--;
                cut = fl_asprintf("%.*s...", (int)len, t);
                json_object_set_new(j, key, fl_json_text(cut));
                free(cut);
                n++;
            } else {
                n += s_cut_texts(v);
            }
        }
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) {
            if (json_is_string(v) &&
                json_string_length(v) > FL_PLAN_CUT_TEXT) {
                json_array_set_new(j, i, json_string("..."));
                n++;
            } else {
                n += s_cut_texts(v);
            }
        }
    }
    return n;
}

/* Removes the details of every migration of report. */
static void
s_cut_details(json_t *report)
{
    static const char *const keys[] = {"statements", "lint", "validate"};
    size_t i;
    json_t *m;

    json_array_foreach(json_object_get(report, "migrations"), i, m)
        for (size_t k = 0; k < sizeof(keys) / sizeof(keys[0]); k++)
            json_object_del(m, keys[k]);
}

/*
 * Removes the migrations whose verdict is "ok" (all: every one but the
 * first that is refused or fails, kept bare: its version, verdict and
 * problem are the reason a reader of the report gives for its verdict,
 * coordinator/rollout.c's fl_rollout_plan_verdict).
 */
static void
s_cut_migrations(json_t *report, int all)
{
    static const char *const keep[] = {"version", "verdict", "problem"};
    json_t *migs = json_object_get(report, "migrations");
    size_t i = 0;
    int kept = 0;

    while (i < json_array_size(migs)) {
        json_t *m = json_array_get(migs, i);
        const char *v = json_string_value(json_object_get(m, "verdict"));
        int bad = v != NULL && strcmp(v, "ok") != 0 &&
                  strcmp(v, "not rehearsed") != 0;

        if (all && bad && !kept) {
            json_t *bare = json_object();
            for (size_t k = 0; k < sizeof(keep) / sizeof(keep[0]); k++)
                if (json_object_get(m, keep[k]) != NULL)
                    json_object_set(bare, keep[k],
                                    json_object_get(m, keep[k]));
            json_array_set_new(migs, i++, bare);
            kept = 1;
        } else if (all || (v != NULL && strcmp(v, "ok") == 0)) {
            json_array_remove(migs, i);
        } else {
            i++;
        }
    }
}

/* report as text when it fits in max bytes, else NULL. */
static char *
s_fits(const json_t *report, size_t max)
{
    char *text = json_dumps(report, JSON_COMPACT);

    if (text != NULL && strlen(text) > max)
        fl_free(&text);
    return text;
}

char *
fl_plan_json_fit(json_t *report, size_t max)
{
    static const char *const steps[] = {
        "texts longer than 256 bytes shortened",
        "each migration's statements, lint findings and validation",
        "the migrations whose verdict is ok",
        ("every migration but the first refused or failed one's verdict "
         "and problem"),
    };
    char *text = s_fits(report, max);
    size_t full = 0;

    if (text != NULL)
        return text;
    {
        char *all = json_dumps(report, JSON_COMPACT);
        full = all != NULL ? strlen(all) : 0;
        free(all);
    }
    for (size_t k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
        char *why = NULL;

        switch (k) {
        case 0: s_cut_texts(report); break;
        case 1: s_cut_details(report); break;
        case 2: s_cut_migrations(report, 0); break;
        default: s_cut_migrations(report, 1); break;
        }
        why = fl_asprintf("the report was %zu bytes, over the %zu a result "
                          "carries; left out: %s%s", full, max, steps[k],
                          k > 0 ? " (and longer texts shortened)" : "");
        json_object_set_new(report, "cut", fl_json_text(why));
        free(why);
        if ((text = s_fits(report, max)) != NULL)
            return text;
    }
    return NULL;
}
