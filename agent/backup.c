/*
 * backup.c - backups of what a migration destroys, their reconciliation
 * before COMMIT, and the restore on rollback.
 *
 * Taking a backup (fl__backup_take).  Just before the statement that
 * destroys data in a table (or a table the catalog says it reaches), in
 * the migration's transaction, the table is locked and its pre-migration
 * columns are copied to flotilla_backup.b<id> (a table) or, above a size,
 * to a file (COPY of every column as text, with its SHA-256) plus the
 * key and a hash of every row in flotilla_backup.k<id>.  A column of a
 * built-in type is kept as it is; one of a user type (enum, domain,
 * composite, extension type, arrays of them) is kept as its text, so no
 * backup pins a type the user may want to drop or swap.  The table must
 * be pristine: no row inserted, updated or deleted by this run before,
 * no rewrite, no column dropped; a tainted table is refused to the caller,
 * which takes it again before the migration's first statement.
 *
 * Reconciling (fl__backup_reconcile), just before COMMIT, compares the
 * backup with what the migration left: rows it did not change are
 * dropped from the backup (the restore leaves them and any later change
 * the application made to them alone), and the keys of rows it added go
 * to flotilla_backup.a<id> (the restore removes them).  Tables without a
 * key are compared as multisets of row hashes.  When the table is gone,
 * or a backed-up column was dropped or changed type, nothing is pruned:
 * every backed-up row is put back.
 *
 * Restoring (fl__restore_backups), in the rollback's transaction after
 * `down`: with triggers and foreign-key actions off
 * (session_replication_role = replica, as pg_restore --disable-triggers),
 * rows the migration added and rows it changed are deleted by key and the
 * backed-up rows inserted (OVERRIDING SYSTEM VALUE, so identity ALWAYS
 * columns come back too), every value cast to the column's type as `down`
 * re-created it.  Then the proof: every backed-up row is in the table
 * with the same content (compared as text under the pinned session, so
 * no client setting matters), and no added row is left.  Sequence
 * positions a migration reset or dropped are set back (never lowered).
 * The backup's tables are dropped once restored; files are removed by the
 * caller after COMMIT.
 *
 * Every query here runs on the pinned session (session.c): names are
 * qualified and quoted, values passed as parameters, types and names
 * taken from the catalog at the time of use, never pasted from the
 * ledger.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "agent/backups.h"
#include "agent/keys.h"
#include "agent/pipeline_internal.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/hash.h"
#include "common/perm.h"

/* Type OIDs below this are built in (PostgreSQL's FirstNormalObjectId). */
#define S_FIRST_USER_OID 16384

/* One column of a backup: where it is now and how the backup keeps it. */
typedef struct {
    char *cur;   /* quoted name in the table now, NULL when gone */
    char *bak;   /* quoted name in the backup: the pre-migration name */
    int text;    /* kept as text */
} s_col;

typedef struct {
    s_col *cols;
    size_t n;
} s_cols;

static void
s_cols_release(s_cols *c)
{
    for (size_t i = 0; i < c->n; i++) {
        free(c->cols[i].cur);
        free(c->cols[i].bak);
    }
    fl_free(&c->cols);
    c->n = 0;
}

enum {
    S_CUR_TEXT,   /* t.cur::text */
    S_CUR,        /* t.cur */
    S_BAK_TEXT,   /* b.bak::text */
    S_BAK,        /* b.bak */
    S_STORE,      /* t.cur or t.cur::text as the backup keeps it */
    S_BAK_NAME    /* bak */
};

/* A comma-separated list over the columns selected by idx (NULL: all). */
static char *
s_list(const s_cols *c, const size_t *idx, size_t nidx, int form,
       const char *alias)
{
    fl_buf_t b = FL_BUF_INIT(0);
    size_t n = idx ? nidx : c->n;

    for (size_t k = 0; k < n; k++) {
        const s_col *col = &c->cols[idx ? idx[k] : k];
        const char *sep = k ? ", " : "";
        switch (form) {
        case S_CUR_TEXT:
            fl_buf_addf(&b, "%s%s.%s::pg_catalog.text", sep, alias,
                                col->cur);
            break;
        case S_CUR:
            fl_buf_addf(&b, "%s%s.%s", sep, alias, col->cur);
            break;
        case S_BAK_TEXT:
            fl_buf_addf(&b, "%s%s.%s::pg_catalog.text", sep, alias,
                                col->bak);
            break;
        case S_BAK:
            fl_buf_addf(&b, "%s%s.%s", sep, alias, col->bak);
            break;
        case S_STORE:
            fl_buf_addf(&b, "%s%s.%s%s", sep, alias, col->cur,
                                col->text ? "::pg_catalog.text" : "");
            break;
        default:
            fl_buf_addf(&b, "%s%s", sep, col->bak);
            break;
        }
    }
    return fl_buf_detach(&b);
}

/* The 64-bit hash of a row's columns as text (a list from s_list). */
static char *
s_row_hash(const char *text_list)
{
    return fl_asprintf("pg_catalog.hashtextextended(ROW(%s)::pg_catalog.text, "
                       "0)", text_list);
}

static int
s_exec(fl_pg_t *pg, const char *sql, fl_error_t *err)
{
    return fl_pg_commandf(pg, err, "%s", sql);
}

static long long
s_ll(const char *s)
{
    return s ? strtoll(s, NULL, 10) : 0;
}

/* ---- files ---------------------------------------------------------- */

typedef struct {
    int fd;
    const char *path;
    fl_hash_t *hash;
} s_file_io;

static int
s_write_chunk(const char *data, size_t len, void *arg, fl_error_t *err)
{
    s_file_io *io = arg;
    size_t done = 0;

    fl_hash_update(io->hash, data, len);
    while (done < len) {
        ssize_t n = write(io->fd, data + done, len - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return FL_ERR(err, FL_EIO, "could not write backup file \"%s\": %s",
                          io->path, strerror(errno));
        done += (size_t)n;
    }
    return 0;
}

static void
s_hex(char *out, const unsigned char *digest)
{
    for (size_t i = 0; i < FL_HASH_SHA256_BYTES; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

/* mkdir -p with mode 0700 for what it creates. */
int
fl__backup_mkdirs(const char *dir, fl_error_t *err)
{
    char *p = fl_strdup(dir);
    int rc = 0;

    for (char *s = p + 1; rc == 0; s++) {
        if (*s != '/' && *s != '\0')
            continue;
        {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0700) != 0 && errno != EEXIST)
                rc = FL_ERR(err, FL_EIO, "could not create backup directory "
                            "\"%s\": %s", p, strerror(errno));
            *s = c;
            if (c == '\0')
                break;
        }
    }
    free(p);
    return rc;
}

/* Writes COPY (sql) TO STDOUT binary to path; its SHA-256 into sha. */
static int
s_dump(fl_pg_t *pg, const char *copy_sql, const char *path, char *sha,
       fl_error_t *err)
{
    s_file_io io = {-1, path, NULL};
    unsigned char digest[FL_HASH_SHA256_BYTES];
    int rc = 0;

    io.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                 0600);
    if (io.fd < 0)
        return FL_ERR(err, FL_EIO, "could not create backup file \"%s\": %s",
                      path, strerror(errno));
    io.hash = fl_hash_sha256_new();
    rc = fl_pg_copy_out(pg, copy_sql, s_write_chunk, &io, err);
    if (rc == 0 && fsync(io.fd) != 0)
        rc = FL_ERR(err, FL_EIO, "could not fsync backup file \"%s\": %s", path,
                    strerror(errno));
    if (close(io.fd) != 0 && rc == 0)
        rc = FL_ERR(err, FL_EIO, "could not close backup file \"%s\": %s", path,
                    strerror(errno));
    fl_hash_final(io.hash, digest);
    s_hex(sha, digest);
    fl_hash_destroy(&io.hash);
    if (rc != 0)
        unlink(path);
    return rc;
}

/*
 * Checks that path has the shape of the file flotilla writes for backup
 * id (any id when id is NULL): absolute, ".../<database>-<target
 * tag>/b<id>.copy", with no symbolic link on the way (the real path of its
 * directory is its directory).  Whoever can write the ledger can name a
 * path; this keeps it to files flotilla could have written.
 */
static int
s_backup_path_ok(const char *path, const char *id, fl_error_t *err)
{
    const char *base = strrchr(path, '/');
    const char *d = NULL;
    char *dir = NULL, *real = NULL;
    size_t ld = 0, digits = 0;
    int ok = 0;

    if (path[0] != '/' || base == NULL || base == path)
        goto out;
    base++;
    digits = strlen(base) > 6 ? strspn(base + 1, "0123456789") : 0;
    if (base[0] != 'b' || digits == 0 || strcmp(base + 1 + digits, ".copy") != 0)
        goto out;
    if (id != NULL && (strlen(id) != digits || strncmp(base + 1, id, digits) != 0))
        goto out;
    dir = fl_strndup(path, (size_t)(base - 1 - path));
    d = strrchr(dir, '/');
    d = d ? d + 1 : dir;
    ld = strlen(d);
    /* "<name>-" and twelve characters of the target's uuid. */
    if (ld < 14 || d[ld - 13] != '-' ||
        strspn(d + ld - 12, "0123456789abcdef-") != 12 ||
        strspn(d, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                  "0123456789_-") != ld)
        goto out;
    real = realpath(dir, NULL);
    ok = real != NULL && strcmp(real, dir) == 0;
out:
    free(real);
    free(dir);
    if (!ok) {
        FL_ERR(err, FL_EFAIL, "\"%s\" is not where flotilla keeps the file of "
               "backup %s", path, id ? id : "(any)");
        fl_error_set_detail(err, "A backup file is <backup dir>/<database>-"
                                 "<target>/b<id>.copy, with no symbolic link "
                                 "on its path; the ledger names another.");
        fl_error_set_hint(err, "If the files were moved, give the directory "
                               "with --backup-dir; otherwise the ledger's "
                               "location was edited: check flotilla.backups.");
        return FL_EFAIL;
    }
    return 0;
}

int
fl__backup_file_open(const char *path, const char *id, int *fd,
                     fl_error_t *err)
{
    struct stat st;
    char *dir = NULL;
    int rc = s_backup_path_ok(path, id, err);

    *fd = -1;
    if (rc != 0)
        return rc;
    /* Its directory as apply's claim demands it (no one else's). */
    dir = fl_strndup(path, (size_t)(strrchr(path, '/') - path));
    rc = fl_perm_check(NULL, dir, "backup directory", geteuid(), err);
    free(dir);
    if (rc != 0)
        return rc;
    *fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
    if (*fd < 0)
        return FL_ERR(err, FL_EIO, "could not open backup file \"%s\": %s",
                      path, strerror(errno));
    if (fstat(*fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        st.st_uid != geteuid()) {
        close(*fd);
        *fd = -1;
        return FL_ERR(err, FL_EFAIL, "backup file \"%s\" is not a regular "
                      "file of this user's; left alone", path);
    }
    return 0;
}

int
fl__backup_file_remove(const char *path, fl_error_t *err)
{
    int fd = -1;
    int rc = fl__backup_file_open(path, NULL, &fd, err);

    if (rc != 0)
        return rc;
    close(fd);
    if (unlink(path) != 0)
        return FL_ERR(err, FL_EIO, "could not remove backup file \"%s\": %s",
                      path, strerror(errno));
    return 0;
}

/* The SHA-256 of what fd holds, read from its start. */
static int
s_file_sha256(int fd, const char *path, char *sha, fl_error_t *err)
{
    unsigned char digest[FL_HASH_SHA256_BYTES];
    char buf[65536];
    fl_hash_t *h = NULL;
    ssize_t n;

    h = fl_hash_sha256_new();
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        fl_hash_update(h, buf, (size_t)n);
    fl_hash_final(h, digest);
    fl_hash_destroy(&h);
    if (n < 0 || lseek(fd, 0, SEEK_SET) != 0)
        return FL_ERR(err, FL_EIO, "could not read backup file \"%s\": %s",
                      path, strerror(errno));
    s_hex(sha, digest);
    return 0;
}

static int
s_read_chunk(char *buf, size_t cap, size_t *len, void *arg, fl_error_t *err)
{
    s_file_io *io = arg;
    ssize_t n;

    do {
        n = read(io->fd, buf, cap);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return FL_ERR(err, FL_EIO, "could not read backup file \"%s\": %s",
                      io->path, strerror(errno));
    *len = (size_t)n;
    return 0;
}

char *
fl__backup_file_path(const char *dir, int64_t id)
{
    return fl_asprintf("%s/b%" PRId64 ".copy", dir, id);
}

/*
 * Which rows of a table this transaction wrote (inserted, or the new
 * versions of rows it updated), from their xmin: any visible row whose
 * xmin is in progress is this transaction's own, since the uncommitted
 * rows of others are invisible.  age(xmin) is relative to this
 * transaction's id, so a positive age (an older row; frozen ones are
 * very old) settles it cheaply; only the few others are looked up, with
 * the xmin widened to 64 bits next to this transaction's id T (every
 * live id is within 2^31 of it).  S_OURS_FROM takes the table (%s) and
 * names it t; S_OURS is the condition.  Both go into printf formats.
 */
#define S_OURS_FROM                                                        \
    "(SELECT t.*, t.xmin AS flotilla_xmin FROM ONLY %s t WHERE"            \
    " pg_catalog.age(t.xmin) <= 0) t, (SELECT"                             \
    " pg_catalog.pg_current_xact_id()::pg_catalog.text::pg_catalog.int8"   \
    " AS x) c, LATERAL (SELECT c.x - c.x %% 4294967296"                    \
    " + t.flotilla_xmin::pg_catalog.text::pg_catalog.int8 AS f) w"
#define S_OURS                                                             \
    "pg_catalog.pg_xact_status((CASE"                                      \
    "  WHEN w.f > c.x + 2147483648 THEN w.f - 4294967296"                  \
    "  WHEN w.f < c.x - 2147483648 THEN w.f + 4294967296"                  \
    "  ELSE w.f END)::pg_catalog.text::pg_catalog.xid8) = 'in progress'"

/* ---- taking a backup ------------------------------------------------ */

void
fl__backup_release(fl_backup_t *b)
{
    if (b == NULL)
        return;
    for (size_t i = 0; b->names && i < b->ncols; i++)
        free(b->names[i]);
    free(b->names);
    free(b->typids);
    free(b->typmods);
    free(b->attnums);
    free(b->key_attnums);
    free(b->path);
    memset(b, 0, sizeof(*b));
}

/*
 * The state of table oid now: relfilenode, this transaction's counters,
 * columns.  Fills a net relation (released by the caller; nothing to
 * release after a failure).
 */
static int
s_table_now(fl_pg_t *pg, uint32_t oid, fl_net_rel_t *out, fl_error_t *err)
{
    char o[16];
    const char *p[1] = {o};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    snprintf(o, sizeof(o), "%u", oid);
    memset(out, 0, sizeof(*out));
    rc = fl_pg_query(pg, &r,
        "SELECT c.relfilenode,"
        " pg_catalog.pg_stat_get_xact_tuples_inserted(c.oid),"
        " pg_catalog.pg_stat_get_xact_tuples_updated(c.oid),"
        " pg_catalog.pg_stat_get_xact_tuples_deleted(c.oid),"
        " n.nspname, c.relname, pg_catalog.pg_total_relation_size(c.oid)"
        " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n"
        " ON n.oid = c.relnamespace WHERE c.oid = $1::pg_catalog.oid",
        1, p, err);
    if (rc != 0)
        return rc;
    if (r.nrows == 0) {
        fl_pg_result_release(&r);
        return FL_ERR(err, FL_ENOTFOUND, "table with OID %u no longer exists",
                      oid);
    }
    out->oid = oid;
    out->relfilenode = (uint32_t)strtoul(fl_pg_value(&r, 0, 0), NULL, 10);
    out->n_ins = s_ll(fl_pg_value(&r, 0, 1));
    out->n_upd = s_ll(fl_pg_value(&r, 0, 2));
    out->n_del = s_ll(fl_pg_value(&r, 0, 3));
    out->schema = fl_strdup(fl_pg_value(&r, 0, 4));
    out->name = fl_strdup(fl_pg_value(&r, 0, 5));
    out->size = s_ll(fl_pg_value(&r, 0, 6));
    fl_pg_result_release(&r);
    /* Nothing of it is left to the caller on a failure (a cancel). */
    if ((rc = fl__net_columns(pg, out, err)) != 0)
        fl__net_rel_release(out);
    return rc;
}

/*
 * The key the restore matches rows by: the primary key, else a unique,
 * valid, non-partial index on plain NOT NULL columns, each with the
 * column's own collation (the restore compares keys with the column's
 * equality: under a case-blind column collation, a key unique only
 * under "C" took every case variant of a row for it, and the rollback
 * deleted them, found by an audit).  *n = 0 when the table has none
 * (rows are then matched as a multiset).
 */
static int
s_key(fl_pg_t *pg, uint32_t oid, int **attnums, size_t *n, fl_error_t *err)
{
    char o[16];
    const char *p[1] = {o};
    char *v = NULL;
    int rc;

    *attnums = NULL;
    *n = 0;
    snprintf(o, sizeof(o), "%u", oid);
    rc = fl_pg_query_value(pg, &v,
        "SELECT pg_catalog.array_to_string(i.indkey::pg_catalog.int2[], ',')"
        " FROM pg_catalog.pg_index i WHERE i.indrelid = $1::pg_catalog.oid"
        " AND i.indisunique AND i.indisvalid AND i.indpred IS NULL"
        " AND i.indexprs IS NULL AND i.indnkeyatts = i.indnatts"
        " AND NOT EXISTS (SELECT 1 FROM ROWS FROM (pg_catalog.unnest("
        "  i.indkey::pg_catalog.int2[]), pg_catalog.unnest("
        "  i.indcollation::pg_catalog.oid[])) AS k(att, coll)"
        "  JOIN pg_catalog.pg_attribute a"
        "  ON a.attrelid OPERATOR(pg_catalog.=) i.indrelid"
        "  AND a.attnum OPERATOR(pg_catalog.=) k.att"
        "  WHERE NOT a.attnotnull OR a.attgenerated <> ''"
        "  OR k.coll OPERATOR(pg_catalog.<>) a.attcollation)"
        " ORDER BY i.indisprimary DESC, i.indexrelid LIMIT 1", 1, p, err);
    if (rc == FL_ENOTFOUND) {
        fl_error_clear(err);
        return 0;
    }
    if (rc != 0)
        return rc;
    if (v) {
        char *s = v;
        *attnums = fl_calloc(strlen(v) / 2 + 2, sizeof(int));
        while (*s) {
            (*attnums)[(*n)++] = (int)strtol(s, &s, 10);
            if (*s == ',')
                s++;
        }
    }
    free(v);
    return 0;
}

/*
 * Whether a column the table had before the run (attnum <= pre->natts)
 * was dropped, retyped, renamed or otherwise altered since: its catalog
 * row was written.  now carries columns (fl__net_columns).
 */
static int
s_columns_touched(const fl_net_rel_t *pre, const fl_net_rel_t *now)
{
    if (now->dropped_min > 0 && now->dropped_min <= pre->natts)
        return 1;
    for (size_t i = 0; i < now->ncols; i++)
        if (now->cols[i].touched && now->cols[i].attnum <= pre->natts)
            return 1;
    return 0;
}

/*
 * The backup's columns: the non-generated columns the table had before
 * the run (attnum <= pre->natts), as now names them (the table is
 * pristine, or for tracked inserts only written, so those are its names
 * from before the migration).
 */
static void
s_backup_cols(fl_pg_t *pg, const fl_net_rel_t *pre, const fl_net_rel_t *now,
              s_cols *out, int **attnums)
{
    out->cols = fl_calloc(now->ncols + 1, sizeof(s_col));
    out->n = 0;
    *attnums = fl_calloc(now->ncols + 1, sizeof(int));
    for (size_t i = 0; i < now->ncols; i++) {
        const fl_net_col_t *c = &now->cols[i];
        s_col *col = NULL;
        if (c->generated || c->attnum > pre->natts)
            continue;
        (*attnums)[out->n] = c->attnum;
        col = &out->cols[out->n++];
        col->cur = fl_pg_quote_ident(pg, c->name);
        col->bak = fl_pg_quote_ident(pg, c->name);
        col->text = c->typid >= S_FIRST_USER_OID;
    }
}

/* Keeps the backed-up columns' names (as now names them) in b. */
static void
s_keep_names(fl_backup_t *b, const fl_net_rel_t *now)
{
    b->names = fl_calloc(b->ncols + 1, sizeof(char *));
    b->typids = fl_calloc(b->ncols + 1, sizeof(uint32_t));
    b->typmods = fl_calloc(b->ncols + 1, sizeof(int));
    for (size_t i = 0; i < b->ncols; i++) {
        const fl_net_col_t *c = fl__net_col(now, b->attnums[i]);
        b->names[i] = fl_strdup(c && c->name ? c->name : "?");
        b->typids[i] = c ? c->typid : 0;
        b->typmods[i] = c ? c->typmod : -1;
    }
}

/* Indexes (into cols) of the key's columns, or -1 if one is not there. */
static int
s_key_index(const fl_backup_t *b, size_t *idx)
{
    for (size_t k = 0; k < b->nkeys; k++) {
        int found = -1;
        for (size_t i = 0; i < b->ncols; i++)
            if (b->attnums[i] == b->key_attnums[k])
                found = (int)i;
        if (found < 0)
            return -1;
        idx[k] = (size_t)found;
    }
    return 0;
}

/* A JSON array of strings (names are passed to SQL as JSON, unquoted). */
static char *
s_json_names(const fl_net_rel_t *now, const fl_backup_t *b, int keys_only)
{
    json_t *a = json_array();
    char *out = NULL;

    for (size_t i = 0; i < b->ncols; i++) {
        const fl_net_col_t *c = fl__net_col(now, b->attnums[i]);
        int is_key = !keys_only;
        for (size_t k = 0; keys_only && k < b->nkeys; k++)
            is_key |= b->key_attnums[k] == b->attnums[i];
        if (is_key)
            json_array_append_new(a, json_string(c && c->name ? c->name : "?"));
    }
    out = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return out;
}

/* A new backup id: as text (*id, new) and as a number. */
static int
s_new_id(fl_pg_t *pg, char **id, int64_t *out, fl_error_t *err)
{
    int rc = fl_pg_query_value(pg, id, "SELECT pg_catalog.nextval("
                               "'flotilla.backups_id_seq'::pg_catalog.regclass)",
                               0, NULL, err);

    if (rc == 0)
        *out = strtoll(*id, NULL, 10);
    return rc;
}

/*
 * A backup's migration is in effect in its target: applied, being rolled
 * back, or running (a no-transaction migration commits its backups before
 * its statements, so a running one may own backups with nothing done
 * yet).  A backup neither released nor pruned whose migration is not in
 * effect is a leftover: nothing will ever restore it.
 */
#define S_IN_EFFECT(b)                                                      \
    "EXISTS (SELECT FROM flotilla.schema_migrations s WHERE s.target"      \
    " OPERATOR(pg_catalog.=) " b ".target AND s.version"                   \
    " OPERATOR(pg_catalog.=) " b ".version AND (s.status IN ('applied',"   \
    " 'rolling_back', 'running') OR (NOT s.transactional AND"              \
    " s.statements_done OPERATOR(pg_catalog.>) 0 AND s.status"             \
    " OPERATOR(pg_catalog.=) 'failed')))"

/* Records a backup row in flotilla.backups. */
static int
s_record(fl_pg_t *pg, const fl_backup_ctx_t *ctx, const fl_net_rel_t *pre,
         const fl_net_rel_t *now, const fl_backup_t *b, const char *id,
         const char *sha, fl_error_t *err)
{
    const char *p[15];
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char ver[FL_VERSION_MAX + 1], idx[16], o[16];
    char *loc = b->dump ? fl_strdup(b->path)
                        : fl_asprintf("flotilla_backup.b%s", id);
    char *cols = s_json_names(now, b, 0);
    char *keys = s_json_names(now, b, 1);
    json_t *ta = json_array();
    char *texts = NULL;
    int rc;

    for (size_t i = 0; i < b->ncols; i++)
        json_array_append_new(ta, json_boolean(b->typids[i] >= S_FIRST_USER_OID));
    texts = json_dumps(ta, JSON_COMPACT);
    json_decref(ta);
    snprintf(ver, sizeof(ver), "%s", ctx->version.text);
    snprintf(idx, sizeof(idx), "%d", b->stmt_index);
    snprintf(o, sizeof(o), "%u", pre->oid);
    p[0] = id;
    p[1] = ver;
    p[2] = ctx->bundle_id;
    p[3] = idx;
    p[4] = pre->schema;
    p[5] = pre->name;
    p[6] = b->dump ? "dump" : "table";
    p[7] = loc;
    p[8] = cols;
    p[9] = texts;
    p[10] = keys;
    p[11] = b->dump ? sha : NULL;
    p[12] = b->nkeys ? "key" : "multiset";
    p[13] = o;
    p[14] = ctx->target;
    /*
     * column_types is for people reading the ledger; restores never use it.
     *
     * A later application of the version: the backups left over from
     * the earlier ones (their migration not in effect, written by another
     * transaction than this one or its subtransactions, whose xids it
     * holds locks on) are superseded, never restored by this one's
     * rollback.
     * Before, a rollback restored every backup of the version not yet
     * restored: those of an application whose down --skip-down skipped
     * put back the rows from before it.
     */
    rc = fl_pg_query(pg, &r,
        "WITH superseded AS (UPDATE flotilla.backups k SET statement_index"
        " = -3 WHERE $4::pg_catalog.int4 OPERATOR(pg_catalog.>=) -1"
        " AND k.version OPERATOR(pg_catalog.=) $2 AND k.target"
        " OPERATOR(pg_catalog.=) $15 AND k.restored_at IS NULL AND"
        " k.pruned_at IS NULL AND k.released_at IS NULL AND"
        " k.statement_index OPERATOR(pg_catalog.>=) -1 AND k.xmin"
        " OPERATOR(pg_catalog.<>) ALL (ARRAY(SELECT l.transactionid FROM"
        " pg_catalog.pg_locks l WHERE l.locktype OPERATOR(pg_catalog.=)"
        " 'transactionid' AND l.pid OPERATOR(pg_catalog.=)"
        " pg_catalog.pg_backend_pid())) AND NOT " S_IN_EFFECT("k") ")"
        " INSERT INTO flotilla.backups (id, version, bundle_id,"
        " statement_index, source_schema, source_table, kind, location,"
        " columns, column_types, text_columns, key_columns, row_count,"
        " checksum, dump_sha256, match,"
        " target)"
        " SELECT $1::pg_catalog.int8, $2, $3,"
        "  $4::pg_catalog.int4, $5, $6, $7, $8,"
        "  ARRAY(SELECT pg_catalog.json_array_elements_text($9::pg_catalog.json)),"
        "  ARRAY(SELECT pg_catalog.format_type(a.atttypid, a.atttypmod)"
        "   FROM pg_catalog.json_array_elements_text($9::pg_catalog.json) j(n)"
        "   LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid"
        "   OPERATOR(pg_catalog.=) $14::pg_catalog.oid AND a.attname"
        "   OPERATOR(pg_catalog.=) j.n::pg_catalog.name),"
        "  ARRAY(SELECT pg_catalog.json_array_elements_text($10::pg_catalog.json)"
        "   ::pg_catalog.bool),"
        "  ARRAY(SELECT pg_catalog.json_array_elements_text($11::pg_catalog.json)),"
        "  0, '', $12, $13, $15", 15, p, err);
    fl_pg_result_release(&r);
    free(loc);
    free(cols);
    free(keys);
    free(texts);
    return rc;
}

/*
 * Whether the backup of rows asked for can be one (a key to match rows
 * by, no inheritance children the statement would reach too); sets
 * out->rows, or rows->why_whole.
 */
static int
s_rows_possible(fl_pg_t *pg, fl_backup_rows_t *rows, fl_backup_t *out,
                fl_error_t *err)
{
    char *kids = NULL;
    int rc;

    if (out->nkeys == 0) {
        rows->why_whole = "it has no key (a primary key, or a unique index "
                          "on NOT NULL columns) to match rows by";
        return 0;
    }
    rc = fl_pg_query_valuef(pg, &kids, err, "SELECT c.relhassubclass::"
                            "pg_catalog.text FROM pg_catalog.pg_class c WHERE"
                            " c.oid OPERATOR(pg_catalog.=) %u", out->oid);
    if (rc != 0)
        return rc;
    if (kids && strcmp(kids, "true") == 0)
        rows->why_whole = "it has inheritance children or partitions";
    else
        out->rows = 1;
    free(kids);
    return 0;
}

/*
 * The backup of only the rows rows->where selects, into
 * flotilla_backup.b<id>.  The predicate is the migration's own text, so
 * it is evaluated in the migration's settings, and only it: which rows
 * (their ctids, into a temporary table flotilla makes for the
 * transaction) first, then
 * their values copied on the pinned session, as flotilla owns the backup
 * and reads it back.  Before, the copy ran in the migration's settings
 * too: the text of a column of the tenant's own type (a domain over
 * float8, a composite of timestamptz) was cut by its extra_float_digits
 * (the rollback "proved" and left it cut) or written in its TimeZone or
 * DateStyle (the rollback could never put the rows back), and a
 * migration that SET ROLE could not write the backup (found by an
 * audit).  ONLY: the table has no children (s_rows_possible).
 */
static int
s_take_rows(fl_pg_t *pg, fl_backup_rows_t *rows, const char *qt,
            const char *name, const s_cols *cols, const char *names,
            const char *id, fl_backup_t *out, fl_error_t *err)
{
    char *al = fl_pg_quote_ident(pg, rows->alias ? rows->alias : name);
    char *store = s_list(cols, NULL, 0, S_STORE, al);
    char *sql[4] = {NULL, NULL, NULL, NULL};
    fl_pg_result_t count = FL_PG_RESULT_INIT;
    fl_pg_step_t steps[2];
    int rc = 0;

    /* Of every row, or of the rows whose ctids the predicate chose. */
    sql[2] = rows->every
                 ? fl_asprintf("CREATE TABLE flotilla_backup.b%s (%s) AS"
                               " SELECT %s FROM ONLY %s %s", id, names,
                               store, qt, al)
                 : fl_asprintf("CREATE TABLE flotilla_backup.b%s (%s) AS"
                               " SELECT %s FROM ONLY %s %s WHERE %s.ctid"
                               " OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT"
                               " r.c FROM pg_temp.flotilla_rows_%s r))", id,
                               names, store, qt, al, al, id);
    sql[3] = fl_asprintf("SELECT pg_catalog.count(*) FROM"
                         " flotilla_backup.b%s", id);
    if (!rows->every) {
        /* The table is flotilla's, made on the pinned session: the
         * migration's role needs neither TEMPORARY nor to be one whose
         * tables flotilla's role may read. */
        sql[0] = fl_asprintf("CREATE TEMPORARY TABLE flotilla_rows_%s"
                             " (c pg_catalog.tid) ON COMMIT DROP", id);
        sql[1] = fl_asprintf("GRANT INSERT ON pg_temp.flotilla_rows_%s TO"
                             " PUBLIC", id);
        steps[0] = (fl_pg_step_t){NULL, sql[0], 0, NULL, NULL};
        steps[1] = (fl_pg_step_t){NULL, sql[1], 0, NULL, NULL};
        rc = fl_pg_batch(pg, steps, 2, err);
        if (rc == 0 && (rc = fl__session_enter(pg, rows->session, err)) == 0) {
            rc = fl_pg_commandf(pg, err, "INSERT INTO"
                                " pg_temp.flotilla_rows_%s SELECT %s.ctid"
                                " FROM ONLY %s%s%s WHERE %s", id, al, qt,
                                rows->alias ? " AS " : "",
                                rows->alias ? al : "", rows->where);
            if (rc == 0)
                rc = fl__session_leave(pg, rows->session, err);
        }
    }
    /* The copy on the pinned session, and its count, in one round trip. */
    steps[0] = (fl_pg_step_t){NULL, sql[2], 0, NULL, NULL};
    steps[1] = (fl_pg_step_t){NULL, sql[3], 0, NULL, &count};
    if (rc == 0)
        rc = fl_pg_batch(pg, steps, 2, err);
    out->nrows = rc == 0 && count.nrows == 1
                     ? s_ll(fl_pg_value(&count, 0, 0))
                     : 0;
    fl_pg_result_release(&count);
    for (size_t i = 0; i < 4; i++)
        free(sql[i]);
    free(store);
    free(al);
    return rc;
}

int
fl__backup_take(fl_pg_t *pg, const fl_backup_ctx_t *ctx,
                const fl_net_rel_t *pre, const char *lockmode, int stmt_index,
                fl_backup_rows_t *rows, fl_backup_t *out, char **describe,
                fl_error_t *err)
{
    fl_net_rel_t now;
    s_cols cols = {NULL, 0};
    char *qt = NULL, *id = NULL, *store = NULL, *names = NULL, *sql = NULL,
         *where = NULL, *texts = NULL, *hash = NULL, *keys = NULL,
         *keynames = NULL;
    char sha[2 * FL_HASH_SHA256_BYTES + 1] = "";
    size_t *kidx = NULL;
    int64_t size = 0;
    int rc = 0;

    memset(out, 0, sizeof(*out));
    memset(&now, 0, sizeof(now));
    *describe = NULL;
    out->oid = pre->oid;
    out->stmt_index = stmt_index;
    /* Lock first: from here no one else changes what is copied. */
    if ((rc = s_table_now(pg, pre->oid, &now, err)) != 0)
        goto cleanup;
    qt = fl__qualify(pg, now.schema, now.name);
    if ((rc = fl_pg_commandf(pg, err, "LOCK TABLE %s IN %s MODE", qt, lockmode)) != 0)
        goto cleanup;
    fl__net_rel_release(&now);
    if ((rc = s_table_now(pg, pre->oid, &now, err)) != 0)
        goto cleanup;
    size = now.size;
    if (now.relfilenode != pre->relfilenode || now.n_ins != pre->n_ins ||
        now.n_upd != pre->n_upd || now.n_del != pre->n_del ||
        s_columns_touched(pre, &now)) {
        rc = FL_ERR(err, FL_ECONFLICT, "table %s was already changed by this "
                    "migration before the statement that destroys its data",
                    qt);
        goto cleanup;
    }
    if ((rc = s_key(pg, pre->oid, &out->key_attnums, &out->nkeys, err)) != 0)
        goto cleanup;
    s_backup_cols(pg, pre, &now, &cols, &out->attnums);
    out->ncols = cols.n;
    s_keep_names(out, &now);
    kidx = fl_calloc(out->nkeys + 1, sizeof(size_t));
    if (out->nkeys && s_key_index(out, kidx) != 0) {
        /* A key over a generated column: match rows as a multiset. */
        fl_free(&out->key_attnums);
        out->nkeys = 0;
    }
    if (rows && rows->where &&
        (rc = s_rows_possible(pg, rows, out, err)) != 0)
        goto cleanup;
    if (rows && out->rows && rows->every && ctx->dump_dir &&
        ctx->dump_above > 0 && size > ctx->dump_above) {
        /* Every row, above the size for files: to a file, copied once. */
        out->rows = 0;
        rows->why_whole = "it changes every row, and the table is larger "
                          "than the size above which backups go to files";
    }
    if ((rc = s_new_id(pg, &id, &out->id, err)) != 0)
        goto cleanup;
    store = s_list(&cols, NULL, 0, S_STORE, "t");
    names = s_list(&cols, NULL, 0, S_BAK_NAME, NULL);
    texts = s_list(&cols, NULL, 0, S_CUR_TEXT, "t");
    hash = s_row_hash(texts);
    /* A backup of rows is a table: the rows of one statement's WHERE. */
    out->dump = !out->rows && ctx->dump_dir && ctx->dump_above > 0 &&
                size > ctx->dump_above;
    if (rows && out->rows) {
        char *bytes = NULL;
        rc = s_take_rows(pg, rows, qt, now.name, &cols, names, id, out, err);
        /*
         * Rows above the size for files: the whole table goes to a file
         * instead, as the operator asked (the rows' size is known only
         * once they are selected).
         */
        if (rc == 0 && ctx->dump_dir && ctx->dump_above > 0 &&
            size > ctx->dump_above)
            rc = fl_pg_query_valuef(pg, &bytes, err, "SELECT pg_catalog."
                                    "pg_total_relation_size('flotilla_backup.b%s'"
                                    "::pg_catalog.regclass)", id);
        if (rc == 0 && bytes && s_ll(bytes) > ctx->dump_above) {
            rc = fl_pg_commandf(pg, err, "DROP TABLE flotilla_backup.b%s", id);
            out->rows = 0;
            out->nrows = 0;
            out->dump = 1;
            rows->why_whole = "the rows it selects are larger than the size "
                              "above which backups go to files";
        }
        free(bytes);
    }
    if (rc != 0 || out->rows)
        goto taken;
    if (out->dump) {
        /*
         * Too large to copy inside the database: every column as text to
         * a file, and in the database only the key and a hash of each row,
         * enough to tell before COMMIT which rows the migration changed.
         */
        char *part = NULL;
        if ((rc = fl__backup_mkdirs(ctx->dump_dir, err)) != 0)
            goto cleanup;
        out->path = fl__backup_file_path(ctx->dump_dir, out->id);
        part = fl_asprintf("%s.partial", out->path);
        sql = fl_asprintf("COPY (SELECT %s FROM ONLY %s t) TO STDOUT (FORMAT binary)",
                          texts, qt);
        rc = s_dump(pg, sql, part, sha, err);
        free(part);
        if (rc != 0)
            goto cleanup;
        if (out->nkeys) {
            keys = s_list(&cols, kidx, out->nkeys, S_CUR_TEXT, "t");
            keynames = s_list(&cols, kidx, out->nkeys, S_BAK_NAME, NULL);
            rc = fl_pg_commandf(pg, err, "CREATE TABLE flotilla_backup.k%s (%s, h) AS"
                         " SELECT %s, %s FROM ONLY %s t", id, keynames, keys, hash,
                         qt);
        } else {
            rc = fl_pg_commandf(pg, err, "CREATE TABLE flotilla_backup.k%s (h) AS"
                         " SELECT %s FROM ONLY %s t", id, hash, qt);
        }
    } else {
        rc = fl_pg_commandf(pg, err, "CREATE TABLE flotilla_backup.b%s (%s) AS"
                     " SELECT %s FROM ONLY %s t", id, names, store, qt);
    }
taken:
    if (rc != 0)
        goto cleanup;
    rc = s_record(pg, ctx, pre, &now, out, id, sha, err);
    if (rc == 0 && rows && out->rows && rows->every)
        *describe = fl_asprintf("flotilla_backup.b%s (every row, %lld: the "
                                "statement has no WHERE clause)", id,
                                (long long)out->nrows);
    else if (rc == 0 && out->rows)
        *describe = fl_asprintf("flotilla_backup.b%s (the %lld row%s its "
                                "WHERE clause selects, not the whole table)",
                                id, (long long)out->nrows,
                                out->nrows == 1 ? "" : "s");
    else if (rc == 0)
        *describe = out->dump
            ? fl_asprintf("%s (a file; the key and a hash of each row in "
                          "flotilla_backup.k%s)", out->path, id)
            : fl_asprintf("flotilla_backup.b%s", id);
cleanup:
    if (rc != 0 && rc != FL_ECONFLICT)
        fl_error_prefix(err, "could not back up table %s.%s: ", pre->schema,
                        pre->name);
    if (rc != 0) {
        if (out->dump && out->path) {
            char *part = fl_asprintf("%s.partial", out->path);
            unlink(part);
            free(part);
        }
        fl__backup_release(out);
    }
    fl__net_rel_release(&now);
    s_cols_release(&cols);
    free(kidx);
    free(qt);
    free(id);
    free(store);
    free(names);
    free(sql);
    free(where);
    free(texts);
    free(hash);
    free(keys);
    free(keynames);
    return rc;
}

/* ---- reconciling before COMMIT -------------------------------------- */

/*
 * Columns of b as they are named in the table now (now carries names,
 * fl__net_columns; NULL when the table is gone), and in the backup.
 */
static void
s_cols_now(fl_pg_t *pg, const fl_backup_t *b, const fl_net_rel_t *pre,
           const fl_net_rel_t *now, s_cols *out)
{
    out->cols = fl_calloc(b->ncols + 1, sizeof(s_col));
    out->n = b->ncols;
    (void)pre;
    for (size_t i = 0; i < b->ncols; i++) {
        const fl_net_col_t *cn = now ? fl__net_col(now, b->attnums[i]) : NULL;
        int same = cn && cn->typid == b->typids[i] &&
                   cn->typmod == b->typmods[i];
        out->cols[i].cur = same && cn->name ? fl_pg_quote_ident(pg, cn->name)
                                            : NULL;
        out->cols[i].bak = fl_pg_quote_ident(pg, b->names[i]);
        out->cols[i].text = b->typids[i] >= S_FIRST_USER_OID;
    }
}

_Static_assert(FL_BACKUP_KEPT == -2 && FL_BACKUP_SUPERSEDED == -3,
               "the queries spell them -2 and -3");

/*
 * Copies the rows of table oid that where selects (SQL over the table as
 * t), every column it has now,
 * to flotilla_backup.b<id>, recorded as kept (FL_BACKUP_KEPT), after
 * locking the table in lockmode; keeps nothing when none is selected.
 * *kept: how many; *describe: where (NULL when nothing was kept).
 */
static int
s_keep_where(fl_pg_t *pg, const fl_backup_ctx_t *ctx, uint32_t oid,
             const char *lockmode, const char *where, long long *kept,
             char **describe, fl_error_t *err)
{
    fl_net_rel_t now;
    fl_backup_t b;
    s_cols cols = {NULL, 0};
    char *qt = NULL, *n = NULL, *id = NULL, *names = NULL, *store = NULL;
    int rc;

    *kept = 0;
    *describe = NULL;
    memset(&b, 0, sizeof(b));
    if ((rc = s_table_now(pg, oid, &now, err)) != 0)
        return rc;
    qt = fl__qualify(pg, now.schema, now.name);
    if ((rc = fl_pg_commandf(pg, err, "LOCK TABLE %s IN %s MODE", qt,
                             lockmode)) != 0)
        goto cleanup;
    /*
     * Every column it has now, whatever this transaction did to it before
     * (the rows are copied as they are, not proven against anything).
     */
    for (size_t i = 0; i < now.ncols; i++)
        if (now.cols[i].attnum > now.natts)
            now.natts = now.cols[i].attnum;
    b.oid = oid;
    b.stmt_index = FL_BACKUP_KEPT;
    /* Counted first: most often there is nothing to keep. */
    rc = fl_pg_query_valuef(pg, &n, err, "SELECT pg_catalog.count(*) FROM ONLY"
                            " %s t WHERE %s", qt, where);
    *kept = rc == 0 ? s_ll(n) : 0;
    if (rc != 0 || *kept == 0)
        goto cleanup;
    if ((rc = s_key(pg, oid, &b.key_attnums, &b.nkeys, err)) != 0)
        goto cleanup;
    s_backup_cols(pg, &now, &now, &cols, &b.attnums);
    b.ncols = cols.n;
    s_keep_names(&b, &now);
    if ((rc = s_new_id(pg, &id, &b.id, err)) != 0)
        goto cleanup;
    names = s_list(&cols, NULL, 0, S_BAK_NAME, NULL);
    store = s_list(&cols, NULL, 0, S_STORE, "t");
    rc = fl_pg_commandf(pg, err, "CREATE TABLE flotilla_backup.b%s (%s) AS"
                        " SELECT %s FROM ONLY %s t WHERE %s", id, names, store,
                        qt, where);
    if (rc == 0)
        rc = s_record(pg, ctx, &now, &now, &b, id, NULL, err);
    if (rc == 0)
        rc = fl_pg_commandf(pg, err, "UPDATE flotilla.backups SET row_count ="
                            " %lld WHERE id OPERATOR(pg_catalog.=) %s", *kept,
                            id);
    if (rc == 0)
        *describe = fl_asprintf("flotilla_backup.b%s", id);
cleanup:
    if (rc != 0)
        fl_error_prefix(err, "could not keep a copy of rows of %s: ", qt);
    fl__backup_release(&b);
    fl__net_rel_release(&now);
    s_cols_release(&cols);
    free(qt);
    free(n);
    free(id);
    free(names);
    free(store);
    return rc;
}

/*
 * The constant DEFAULT of each of the columns ($2, a JSON array of
 * names) of table $1, as SQL (a literal PostgreSQL writes from the Const
 * it stored: no call, nothing to run); a column without one, or whose
 * DEFAULT is an expression (now()), has no row, and so has one of a type
 * of the database's own: reading its literal back runs the type's input,
 * and a domain's CHECK, which may call the tenant's function, with
 * flotilla's rights (before, it did: found by an audit).
 */
static const char s_const_defaults_sql[] =
    "SELECT a.attname, pg_catalog.pg_get_expr(d.adbin, d.adrelid)"
    " FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_attrdef d"
    " ON d.adrelid OPERATOR(pg_catalog.=) a.attrelid"
    " AND d.adnum OPERATOR(pg_catalog.=) a.attnum"
    " WHERE a.attrelid OPERATOR(pg_catalog.=) $1::pg_catalog.oid"
    " AND a.attname OPERATOR(pg_catalog.=) ANY (ARRAY(SELECT x::pg_catalog.name"
    " FROM pg_catalog.json_array_elements_text($2::pg_catalog.json) x))"
    " AND pg_catalog.starts_with(d.adbin::pg_catalog.text, '{CONST ')"
    " AND a.atttypid OPERATOR(pg_catalog.<) 16384";

/* Whether text is a xid[] as PostgreSQL writes it ("{1,2}"). */
static int
s_xid_array(const char *text)
{
    return text[0] == '{' && text[strspn(text, "{},0123456789")] == '\0';
}

char *
fl__since_sql(const char *a, const char *snap, const char *xids)
{
    return fl_asprintf(
        " NOT %s.xmin OPERATOR(pg_catalog.=) ANY (%s::pg_catalog.xid[]) AND"
        " (pg_catalog.age(%s.xmin) OPERATOR(pg_catalog.<=) pg_catalog.age("
        "pg_catalog.pg_snapshot_xmax(%s::pg_catalog.pg_snapshot)::"
        "pg_catalog.xid) OR %s.xmin OPERATOR(pg_catalog.=) ANY (ARRAY("
        "SELECT x::pg_catalog.xid FROM pg_catalog.pg_snapshot_xip(%s::"
        "pg_catalog.pg_snapshot) x)))", a, xids, a, snap, a, snap);
}

char *
fl__since_sql_of(const char *a, const char *snapshot, const char *xids)
{
    char *snap = NULL, *ids = NULL, *sql = NULL;

    /* "xmin:xmax:xip,xip", "{1,2}": nothing else reaches the SQL. */
    if (snapshot == NULL || xids == NULL || !s_xid_array(xids) ||
        snapshot[0] == '\0' || snapshot[strspn(snapshot, ":,0123456789")])
        return NULL;
    snap = fl_asprintf("'%s'", snapshot);
    ids = fl_asprintf("'%s'", xids);
    sql = fl__since_sql(a, snap, ids);
    free(snap);
    free(ids);
    return sql;
}

int
fl__backup_keep(fl_pg_t *pg, const fl_backup_ctx_t *ctx, uint32_t oid,
                const char *const *columns, size_t ncolumns,
                const char *own_xids, long long *kept, char **describe,
                fl_error_t *err)
{
    fl_buf_t where = FL_BUF_INIT(0), names = FL_BUF_INIT(0);
    fl_pg_result_t defs = FL_PG_RESULT_INIT;
    char oidtext[16];
    const char *params[2] = {oidtext, NULL};
    int rc = 0;

    /*
     * A column's values are the application's where they differ from a
     * constant DEFAULT it has (a column added with one holds it in every
     * row), else where they are not NULL.
     */
    if (ncolumns > 0) {
        json_t *a = json_array();
        char *text = NULL;
        for (size_t i = 0; i < ncolumns; i++)
            json_array_append_new(a, json_string(columns[i]));
        text = json_dumps(a, JSON_COMPACT);
        json_decref(a);
        fl_buf_adds(&names, text);
        free(text);
        snprintf(oidtext, sizeof(oidtext), "%u", oid);
        params[1] = fl_buf_str(&names);
        rc = fl_pg_query(pg, &defs, s_const_defaults_sql, 2, params, err);
    }
    for (size_t i = 0; rc == 0 && i < ncolumns; i++) {
        char *qc = fl_pg_quote_ident(pg, columns[i]);
        const char *def = NULL;

        for (size_t k = 0; k < defs.nrows && def == NULL; k++)
            if (strcmp(fl_pg_value(&defs, k, 0), columns[i]) == 0)
                def = fl_pg_value(&defs, k, 1);
        if (def != NULL)
            fl_buf_addf(&where, "%st.%s IS DISTINCT FROM (%s)",
                        i ? " OR " : "", qc, def);
        else
            fl_buf_addf(&where, "%st.%s IS NOT NULL", i ? " OR " : "", qc);
        free(qc);
    }
    if (ncolumns == 0)
        fl_buf_adds(&where, "true");
    /* The migration's own rows (written by its transaction) are not the
     * application's. */
    if (rc == 0 && own_xids != NULL) {
        char *w = NULL;

        if (!s_xid_array(own_xids))
            rc = FL_ERR(err, FL_EFAIL, "unexpected transaction ids \"%.40s\" "
                        "in the ledger", own_xids);
        w = fl_asprintf("(%s) AND NOT t.xmin OPERATOR(pg_catalog.=) ANY ('%s'"
                        "::pg_catalog.xid[])", fl_buf_str(&where), own_xids);
        fl_buf_reset(&where);
        fl_buf_adds(&where, w);
        free(w);
    }
    if (rc == 0)
        rc = s_keep_where(pg, ctx, oid, "ACCESS EXCLUSIVE", fl_buf_str(&where),
                          kept, describe, err);
    fl_pg_result_release(&defs);
    fl_buf_release(&names);
    fl_buf_release(&where);
    return rc;
}

int
fl__backup_keep_tids(fl_pg_t *pg, const fl_backup_ctx_t *ctx, uint32_t oid,
                     const char *tids, long long *kept, char **describe,
                     fl_error_t *err)
{
    char *where = NULL;
    int rc;

    /* PostgreSQL's own text of a tid[]: nothing else reaches the SQL. */
    if (tids[0] != '{' || tids[strspn(tids, "{}()\",0123456789")] != '\0')
        return FL_ERR(err, FL_EFAIL, "unexpected row addresses \"%.40s\" "
                      "from the server", tids);
    where = fl_asprintf("t.ctid OPERATOR(pg_catalog.=) ANY ('%s'::"
                        "pg_catalog.tid[])", tids);
    rc = s_keep_where(pg, ctx, oid, "ROW EXCLUSIVE", where, kept, describe,
                      err);
    free(where);
    return rc;
}

/* "(a.x, a.y) = (b.x, b.y)" over two lists. */
static char *
s_eq(const char *l, const char *r)
{
    return fl_asprintf("ROW(%s) OPERATOR(pg_catalog.=) ROW(%s)", l, r);
}

/*
 * The multiset difference "rows of left beyond those of right", as
 * (h, n) pairs of row hash and count, into table dst.
 */
static int
s_hash_excess(fl_pg_t *pg, const char *dst, const char *lh, const char *lfrom,
              const char *rh, const char *rfrom, fl_error_t *err)
{
    return fl_pg_commandf(pg, err,
        "CREATE TABLE %s (h, n) AS SELECT l.h, l.n OPERATOR(pg_catalog.-)"
        " COALESCE(r.n, 0) FROM (SELECT %s AS h, pg_catalog.count(*)"
        " AS n FROM %s GROUP BY 1) l LEFT JOIN (SELECT %s AS h,"
        " pg_catalog.count(*) AS n FROM %s GROUP BY 1) r ON r.h"
        " OPERATOR(pg_catalog.=) l.h WHERE l.n OPERATOR(pg_catalog.>)"
        " COALESCE(r.n, 0)", dst, lh, lfrom, rh, rfrom);
}

/*
 * The keys this transaction wrote (pg_temp.flotilla_ours_<id>) that are
 * not among known (a query of the nkeys backed-up key columns, or NULL:
 * none were there), into table added: the rows the migration added.  An
 * anti-join (NOT EXISTS), which the planner can hash at any size: NOT IN
 * over more keys than work_mem holds is a subplan run once per row.
 */
static int
s_added_keys(fl_pg_t *pg, const char *added, const char *keynames,
             const char *tkeys, const char *tkeys_n, size_t nkeys,
             const char *id, const char *known, fl_error_t *err)
{
    fl_buf_t cols = FL_BUF_INIT(0), refs = FL_BUF_INIT(0);
    int rc;

    if (known == NULL)
        return fl_pg_commandf(pg, err, "CREATE TABLE %s (%s) AS SELECT %s FROM"
                              " pg_temp.flotilla_ours_%s t", added, keynames,
                              tkeys, id);
    for (size_t k = 0; k < nkeys; k++) {
        fl_buf_addf(&cols, "%sk%zu", k ? ", " : "", k);
        fl_buf_addf(&refs, "%sk.k%zu", k ? ", " : "", k);
    }
    rc = fl_pg_commandf(pg, err, "CREATE TABLE %s (%s) AS SELECT %s FROM"
                        " pg_temp.flotilla_ours_%s t WHERE NOT EXISTS (SELECT"
                        " FROM (%s) k(%s) WHERE ROW(%s) OPERATOR(pg_catalog.=)"
                        " ROW(%s))", added, keynames, tkeys, id, known,
                        fl_buf_str(&cols), fl_buf_str(&refs), tkeys_n);
    fl_buf_release(&cols);
    fl_buf_release(&refs);
    return rc;
}

static int s_countf(fl_pg_t *pg, long long *n, fl_error_t *err,
                    const char *fmt, ...) FL_PRINTF(4, 5);

int
fl__backup_rows_prove(fl_pg_t *pg, fl_backup_t *b, const fl_net_rel_t *pre,
                      const fl_net_rel_t *now, const fl_net_touched_t *touched,
                      char **why, fl_error_t *err)
{
    fl_buf_t sk = FL_BUF_INIT(0), tk = FL_BUF_INIT(0);
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char *qt = NULL, *sql = NULL;
    int64_t changed = 0;
    int rc = 0;

    *why = NULL;
    b->proven = 0;
    if (now == NULL) {
        *why = fl_strdup("the table was dropped");
        return 0;
    }
    if (now->relfilenode != pre->relfilenode) {
        *why = fl_strdup("the table was truncated or rewritten");
        return 0;
    }
    for (size_t i = 0; i < touched->n; i++)
        if (touched->items[i].oid == pre->oid &&
            touched->items[i].attnum <= pre->natts) {
            *why = fl_strdup("a column it had was altered");
            return 0;
        }
    changed = (now->n_upd - pre->n_upd) + (now->n_del - pre->n_del);
    if (changed != b->nrows) {
        *why = fl_asprintf("the migration updated or deleted %lld row%s of "
                           "it and its WHERE clause had selected %lld",
                           (long long)changed, changed == 1 ? "" : "s",
                           (long long)b->nrows);
        return 0;
    }
    /* The key: in its own type where kept so (the index can be used). */
    for (size_t k = 0; k < b->nkeys; k++) {
        size_t i = 0;
        while (i < b->ncols && b->attnums[i] != b->key_attnums[k])
            i++;
        if (i == b->ncols) {
            *why = fl_strdup("its key is not among the backed-up columns");
            goto cleanup;
        }
        {
            char *q = fl_pg_quote_ident(pg, b->names[i]);
            fl_buf_addf(&sk, "%ss.%s", k ? ", " : "", q);
            fl_buf_addf(&tk, "%st.%s%s", k ? ", " : "", q,
                        b->typids[i] >= S_FIRST_USER_OID ? "::pg_catalog.text"
                                                         : "");
            free(q);
        }
    }
    qt = fl__qualify(pg, now->schema, now->name);
    /*
     * Each backed-up key either gone (deleted, or its row given another
     * key) or holding a row this transaction wrote (S_OURS): then every
     * backed-up row was changed, and as many rows were changed as were
     * backed up, so they are the same rows.
     */
    sql = fl_asprintf(
        "SELECT (SELECT pg_catalog.count(*) FROM flotilla_backup.b%" PRId64
        " s WHERE NOT EXISTS (SELECT 1 FROM ONLY %s t WHERE ROW(%s)"
        " OPERATOR(pg_catalog.=) ROW(%s))),"
        " (SELECT pg_catalog.count(*) FROM flotilla_backup.b%" PRId64 " s, "
        S_OURS_FROM " WHERE ROW(%s) OPERATOR(pg_catalog.=) ROW(%s) AND "
        S_OURS ")", b->id, qt, fl_buf_str(&tk), fl_buf_str(&sk), b->id, qt,
        fl_buf_str(&tk), fl_buf_str(&sk));
    rc = fl_pg_query(pg, &r, sql, 0, NULL, err);
    if (rc != 0)
        goto cleanup;
    b->absent = s_ll(fl_pg_value(&r, 0, 0));
    b->ours = s_ll(fl_pg_value(&r, 0, 1));
    if (b->absent + b->ours != b->nrows)
        *why = fl_asprintf("%lld of the %lld rows its WHERE clause selected "
                           "before the statement were left unchanged: the "
                           "statement changed other rows",
                           (long long)(b->nrows - b->absent - b->ours),
                           (long long)b->nrows);
    else
        b->proven = 1;
cleanup:
    if (rc != 0)
        fl_error_prefix(err, "could not check the backup of rows %" PRId64
                        " of table %s.%s: ", b->id, pre->schema, pre->name);
    fl_pg_result_release(&r);
    fl_buf_release(&sk);
    fl_buf_release(&tk);
    free(qt);
    free(sql);
    return rc;
}

/*
 * A proven backup of rows whose table gained no row and lost or changed
 * only those rows (an UPDATE that kept every key, or a DELETE): its rows
 * are already exactly what the restore puts back and nothing was added,
 * so it needs no pass over the table.
 */
static int
s_reconcile_rows(fl_pg_t *pg, const fl_backup_t *b, const fl_net_rel_t *pre,
                 const fl_net_rel_t *now, int *done, fl_error_t *err)
{
    fl_pg_result_t u = FL_PG_RESULT_INIT;
    char id[24], n[24];
    const char *p[2] = {n, id};
    int rc;

    *done = 0;
    if (!b->rows || !b->proven || now == NULL || now->n_ins != pre->n_ins ||
        !((now->n_del == pre->n_del && b->ours == b->nrows) ||
          (now->n_upd == pre->n_upd && b->absent == b->nrows)))
        return 0;
    snprintf(id, sizeof(id), "%" PRId64, b->id);
    snprintf(n, sizeof(n), "%" PRId64, b->nrows);
    rc = fl_pg_query(pg, &u, "UPDATE flotilla.backups SET match = 'key',"
                     " row_count = $1::pg_catalog.int8, added_rows = 0"
                     " WHERE id OPERATOR(pg_catalog.=) $2::pg_catalog.int8",
                     2, p, err);
    fl_pg_result_release(&u);
    *done = rc == 0;
    return rc;
}

/*
 * Whether every row of the backup sfrom ("<table> s") has its key among
 * the keys this transaction wrote (pg_temp.flotilla_ours_<id>, columns
 * compared as skeys_n and tkeys_n), and how many of those keys the
 * backup lacks (*nadded): one query.
 */
static int
s_all_written(fl_pg_t *pg, const char *sfrom, const char *skeys_n,
              const char *tkeys_n, const char *id, int *all, long long *nadded,
              fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    /* Anti-joins (NOT EXISTS), which the planner can hash at any size. */
    char *sql = fl_asprintf(
        "SELECT (SELECT pg_catalog.count(*) FROM %s WHERE NOT EXISTS (SELECT"
        " FROM pg_temp.flotilla_ours_%s t WHERE ROW(%s) OPERATOR(pg_catalog.=)"
        " ROW(%s))), (SELECT pg_catalog.count(*) FROM pg_temp.flotilla_ours_%s"
        " t WHERE NOT EXISTS (SELECT FROM %s WHERE ROW(%s)"
        " OPERATOR(pg_catalog.=) ROW(%s)))", sfrom, id, tkeys_n, skeys_n, id,
        sfrom, tkeys_n, skeys_n);
    int rc = fl_pg_query(pg, &r, sql, 0, NULL, err);

    *all = rc == 0 && s_ll(fl_pg_value(&r, 0, 0)) == 0;
    *nadded = rc == 0 ? s_ll(fl_pg_value(&r, 0, 1)) : 0;
    fl_pg_result_release(&r);
    free(sql);
    return rc;
}

int
fl__backup_reconcile(fl_pg_t *pg, const fl_backup_t *b,
                     const fl_net_rel_t *pre, const fl_net_rel_t *now,
                     fl_error_t *err)
{
    s_cols cols = {NULL, 0};
    size_t *kidx = fl_calloc(b->nkeys + 1, sizeof(size_t));
    char *qt = NULL, *tkeys = NULL, *skeys = NULL, *ttext = NULL,
         *stext = NULL, *th = NULL, *sh = NULL, *keynames = NULL, *eq = NULL,
         *src = NULL, *sfrom = NULL, *added = NULL, *skeys_n = NULL,
         *tkeys_n = NULL;
    char id[24];
    const char *match = NULL;
    fl_net_rel_t named;
    int intact = 0, keys_ok = 0, inserted = 0, updated = 0, deleted = 0;
    int fast = 0, all_ours = 0, made_added = -1, rc = 0;

    if (b->replace)
        now = NULL; /* as for a table dropped: every row, match below */
    if ((rc = s_reconcile_rows(pg, b, pre, now, &fast, err)) != 0 || fast) {
        free(kidx);
        return rc;
    }
    snprintf(id, sizeof(id), "%" PRId64, b->id);
    memset(&named, 0, sizeof(named));
    if (now) {
        /* The snapshot has no column names; the table's are needed. */
        named.oid = now->oid;
        if ((rc = fl__net_columns(pg, &named, err)) != 0) {
            free(kidx);
            return rc;
        }
    }
    s_cols_now(pg, b, pre, now ? &named : NULL, &cols);
    if (now) {
        intact = 1;
        for (size_t i = 0; i < cols.n; i++)
            intact &= cols.cols[i].cur != NULL;
        keys_ok = b->nkeys > 0 && s_key_index(b, kidx) == 0;
        for (size_t k = 0; keys_ok && k < b->nkeys; k++)
            keys_ok = cols.cols[kidx[k]].cur != NULL;
        inserted = now->n_ins != pre->n_ins;
        updated = now->n_upd != pre->n_upd;
        /* A TRUNCATE or a rewrite may have taken rows away too. */
        deleted = now->n_del != pre->n_del ||
                  now->relfilenode != pre->relfilenode;
        qt = fl__qualify(pg, now->schema, now->name);
    }
    match = b->replace ? "replace" : keys_ok ? "key" : intact ? "multiset"
                                    : b->nkeys ? "key" : "replace";
    /* The backed-up rows: the table b<id>, or for a file k<id>'s hashes. */
    src = fl_asprintf("flotilla_backup.%c%s", b->dump ? 'k' : 'b', id);
    sfrom = fl_asprintf("%s s", src);
    added = fl_asprintf("flotilla_backup.a%s", id);
    if (keys_ok) {
        tkeys = s_list(&cols, kidx, b->nkeys, S_CUR_TEXT, "t");
        skeys = s_list(&cols, kidx, b->nkeys, S_BAK_TEXT, "s");
        keynames = s_list(&cols, kidx, b->nkeys, S_BAK_NAME, NULL);
        eq = s_eq(skeys, tkeys);
    }
    if (intact) {
        ttext = s_list(&cols, NULL, 0, S_CUR_TEXT, "t");
        th = s_row_hash(ttext);
        stext = s_list(&cols, NULL, 0, S_BAK_TEXT, "s");
        sh = b->dump ? fl_strdup("s.h") : s_row_hash(stext);
    }
    if (keys_ok) {
        /*
         * Keys compared in their own type where the backup keeps it (so
         * the planner hashes ints, not text), as text where it keeps text.
         */
        fl_buf_t sk = FL_BUF_INIT(0), tk = FL_BUF_INIT(0);
        for (size_t k = 0; k < b->nkeys; k++) {
            const s_col *c = &cols.cols[kidx[k]];
            int text = b->dump || c->text;
            fl_buf_addf(&sk, "%ss.%s", k ? ", " : "", c->bak);
            fl_buf_addf(&tk, "%st.%s%s", k ? ", " : "", c->cur,
                                text ? "::pg_catalog.text" : "");
        }
        skeys_n = fl_buf_detach(&sk);
        tkeys_n = fl_buf_detach(&tk);
    }
    if (keys_ok && (inserted || updated)) {
        /*
         * The keys of the rows this transaction wrote, once (one scan of
         * the table, cheap per row); what follows joins small sets.
         */
        rc = fl_pg_commandf(pg, err, "CREATE TEMP TABLE flotilla_ours_%s ON"
                            " COMMIT DROP AS SELECT %s FROM " S_OURS_FROM
                            " WHERE " S_OURS, id, tkeys_n, qt);
    } else if (!keys_ok && intact && inserted && !updated && !deleted) {
        rc = fl_pg_commandf(pg, err, "CREATE TABLE %s (h, n) AS SELECT %s,"
                            " pg_catalog.count(*) FROM " S_OURS_FROM " WHERE "
                            S_OURS " GROUP BY 1", added, th, qt);
    } else if (!keys_ok && intact && (inserted || updated)) {
        char *tfrom = fl_asprintf("ONLY %s t", qt);
        rc = s_hash_excess(pg, added, th, tfrom, sh, sfrom, err);
        free(tfrom);
    }
    if (rc == 0 && intact && !updated && !deleted) {
        /* Nothing backed up was changed: nothing to put back. */
        if (b->dump)
            rc = fl_pg_commandf(pg, err, "CREATE TABLE flotilla_backup.c%s AS"
                                " SELECT * FROM %s WHERE false", id, src);
        else
            rc = fl_pg_commandf(pg, err, "TRUNCATE %s", src);
        if (rc == 0 && keys_ok && inserted)
            rc = s_added_keys(pg, added, keynames, tkeys, tkeys_n, b->nkeys,
                              id, NULL, err);
    } else if (rc == 0 && intact && keys_ok) {
        /*
         * Keep the rows the migration changed: those whose key it wrote
         * (an UPDATE's new version carries this transaction's xmin) and,
         * when keys may have gone (a DELETE, a TRUNCATE or a rewrite, or
         * an UPDATE that wrote keys the backup lacks), those whose key is
         * no longer there.  The backup becomes those rows (b<id>), or for
         * a file the list of their keys (c<id>).
         */
        const char *what = b->dump ? skeys : "s.*";
        char *dst = fl_asprintf("flotilla_backup.%c%s", b->dump ? 'c' : 'n',
                                id);
        long long nadded = 0;

        /*
         * When the migration wrote a row under every backed-up key (an
         * UPDATE of every row, or one after an ADD COLUMN), the backup is
         * already those rows and no key can have gone: counted first, so
         * that neither the rows kept nor, when no key was added, the added
         * keys are copied into a table of their own.
         */
        if (!b->dump && (updated || inserted))
            rc = s_all_written(pg, sfrom, skeys_n, tkeys_n, id, &all_ours,
                               &nadded, err);
        if (rc == 0 && all_ours) {
            if (nadded > 0) {
                char *known = fl_asprintf("SELECT %s FROM %s", skeys_n, sfrom);
                rc = s_added_keys(pg, added, keynames, tkeys, tkeys_n,
                                  b->nkeys, id, known, err);
                free(known);
            }
            made_added = nadded > 0;
        } else if (rc == 0 && (updated || inserted))
            rc = fl_pg_commandf(pg, err, "CREATE TABLE %s AS SELECT %s FROM %s"
                                " WHERE ROW(%s) IN (SELECT * FROM"
                                " pg_temp.flotilla_ours_%s)", dst, what, sfrom,
                                skeys_n, id);
        else if (rc == 0)
            rc = fl_pg_commandf(pg, err, "CREATE TABLE %s AS SELECT %s FROM %s"
                                " WHERE false", dst, what, sfrom);
        if (rc == 0 && !all_ours && (inserted || updated)) {
            char *known = fl_asprintf("SELECT %s FROM %s s", skeys_n, dst);
            rc = s_added_keys(pg, added, keynames, tkeys, tkeys_n, b->nkeys,
                              id, known, err);
            free(known);
            if (rc == 0)
                rc = s_countf(pg, &nadded, err, "SELECT pg_catalog.count(*)"
                              " FROM %s", added);
        }
        if (rc == 0 && !all_ours && (deleted || (updated && nadded > 0)))
            rc = fl_pg_commandf(pg, err, "INSERT INTO %s SELECT %s FROM %s"
                                " WHERE NOT EXISTS (SELECT 1 FROM ONLY %s t"
                                " WHERE ROW(%s) OPERATOR(pg_catalog.=) ROW(%s))", dst,
                                what, sfrom, qt, skeys_n, tkeys_n);
        if (rc == 0 && !all_ours && !b->dump)
            rc = fl_pg_commandf(pg, err, "DROP TABLE %s", src);
        if (rc == 0 && !all_ours && !b->dump)
            rc = fl_pg_commandf(pg, err, "ALTER TABLE %s RENAME TO b%s", dst,
                                id);
        free(dst);
    } else if (rc == 0 && intact) {
        char *tfrom = fl_asprintf("ONLY %s t", qt);
        if (b->dump) {
            char *dst = fl_asprintf("flotilla_backup.c%s", id);
            rc = s_hash_excess(pg, dst, sh, sfrom, th, tfrom, err);
            free(dst);
        } else {
            rc = fl_pg_commandf(pg, err, "DELETE FROM %s WHERE ctid OPERATOR("
                "pg_catalog.=) ANY (ARRAY(SELECT x.ctid FROM (SELECT s.ctid,"
                " %s AS h, pg_catalog.row_number() OVER (PARTITION BY %s) AS rn"
                " FROM %s) x JOIN (SELECT %s AS h, pg_catalog.count(*) AS n FROM"
                " %s GROUP BY 1) c ON c.h OPERATOR(pg_catalog.=) x.h WHERE x.rn"
                " OPERATOR(pg_catalog.<=) c.n))", src, sh, sh, sfrom, th,
                tfrom);
        }
        free(tfrom);
    } else if (rc == 0 && keys_ok && (inserted || updated)) {
        /* Not intact: every row is put back, and the added ones removed. */
        char *known = fl_asprintf("SELECT %s FROM %s WHERE ROW(%s) IN (SELECT *"
                                  " FROM pg_temp.flotilla_ours_%s)", skeys_n,
                                  sfrom, skeys_n, id);
        rc = s_added_keys(pg, added, keynames, tkeys, tkeys_n, b->nkeys, id,
                          known, err);
        free(known);
    }
    if (made_added < 0)
        made_added = (inserted || updated) && (keys_ok || intact);
    if (rc == 0) {
        /*
         * What the restore will put back: the rows left in b<id>, or the
         * keys (hashes) in c<id>, or every row of the file.
         */
        char *nrows = NULL, *nadded = NULL;
        fl_pg_result_t u = FL_PG_RESULT_INIT;

        if (b->dump && intact)
            rc = fl_pg_query_valuef(pg, &nrows, err, "SELECT pg_catalog.count(*) FROM"
                          " flotilla_backup.c%s", id);
        else
            rc = fl_pg_query_valuef(pg, &nrows, err, "SELECT pg_catalog.count(*) FROM %s",
                          src);
        if (rc == 0 && made_added)
            rc = fl_pg_query_valuef(pg, &nadded, err, "SELECT pg_catalog.count(*) FROM %s",
                          added);
        /* No row added: no table to keep. */
        if (rc == 0 && nadded && strcmp(nadded, "0") == 0)
            rc = fl_pg_commandf(pg, err, "DROP TABLE %s", added);
        if (rc == 0) {
            const char *p[4] = {match, nrows, nadded ? nadded : "0", id};
            rc = fl_pg_query(pg, &u,
                "UPDATE flotilla.backups SET match = $1, row_count ="
                " $2::pg_catalog.int8, added_rows = $3::pg_catalog.int8"
                " WHERE id = $4::pg_catalog.int8", 4, p, err);
        }
        fl_pg_result_release(&u);
        free(nrows);
        free(nadded);
    }
    if (rc == 0 && b->dump)
        rc = fl_pg_commandf(pg, err, "DROP TABLE %s", src);
    if (rc != 0)
        fl_error_prefix(err, "could not reconcile backup %s of table %s.%s: ",
                        id, pre->schema, pre->name);
    s_cols_release(&cols);
    free(kidx);
    free(qt);
    free(tkeys);
    free(skeys);
    free(ttext);
    free(stext);
    free(th);
    free(sh);
    free(keynames);
    free(eq);
    free(src);
    free(sfrom);
    free(added);
    free(skeys_n);
    free(tkeys_n);
    fl__net_rel_release(&named);
    return rc;
}

/* ---- sequences ------------------------------------------------------ */

int
fl__backup_sequence(fl_pg_t *pg, const fl_backup_ctx_t *ctx,
                    const fl_net_rel_t *seq, const char *after,
                    const char *reason, fl_error_t *err)
{
    char ver[FL_VERSION_MAX + 1], oid[16];
    const char *p[8];
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    int rc;

    snprintf(ver, sizeof(ver), "%s", ctx->version.text);
    snprintf(oid, sizeof(oid), "%u", seq->oid);
    p[0] = ver;
    p[1] = seq->schema;
    p[2] = seq->name;
    p[3] = seq->seq_last;
    p[4] = after;
    p[5] = reason;
    p[6] = oid;
    p[7] = ctx->target;
    /*
     * The column that owns it (serial, identity), while it still exists:
     * a rollback finds the sequence down re-creates through it.  A
     * dropped sequence is found again by its name.
     */
    rc = fl_pg_query(pg, &r,
        "INSERT INTO flotilla.sequence_backups (version, seq_schema, seq_name,"
        " owner_schema, owner_table, owner_column, last_value, after_value,"
        " reason, target) SELECT $1, $2, $3, ow.nspname,"
        " oc.relname, oa.attname, $4::pg_catalog.int8, $5::pg_catalog.int8, $6,"
        " $8"
        " FROM (SELECT 1) x LEFT JOIN pg_catalog.pg_depend d"
        "  ON d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass"
        "  AND d.objid = $7::pg_catalog.oid AND d.refobjsubid > 0"
        "  AND d.deptype IN ('a', 'i')"
        " LEFT JOIN pg_catalog.pg_class oc ON oc.oid = d.refobjid"
        " LEFT JOIN pg_catalog.pg_namespace ow ON ow.oid = oc.relnamespace"
        " LEFT JOIN pg_catalog.pg_attribute oa ON oa.attrelid = d.refobjid"
        "  AND oa.attnum = d.refobjsubid LIMIT 1", 8, p, err);
    fl_pg_result_release(&r);
    return rc;
}

/*
 * Tracks the rows this transaction inserted into table now (which no
 * backup covers: a trigger or a DO block wrote them, out of the
 * migration's sight): an empty backup whose added rows are the rows this
 * transaction wrote (S_OURS).  The restore then removes exactly those.
 */
int
fl__backup_track_inserts(fl_pg_t *pg, const fl_backup_ctx_t *ctx,
                         const fl_net_rel_t *pre, const fl_net_rel_t *now,
                         char **describe, fl_error_t *err)
{
    fl_backup_t b;
    s_cols cols = {NULL, 0};
    size_t *kidx = NULL;
    char *qt = fl__qualify(pg, now->schema, now->name);
    char *id = NULL, *names = NULL, *store = NULL, *keys = NULL,
         *keynames = NULL, *texts = NULL, *hash = NULL, *n = NULL;
    fl_net_rel_t named;
    int rc;

    memset(&b, 0, sizeof(b));
    memset(&named, 0, sizeof(named));
    *describe = NULL;
    b.oid = pre->oid;
    b.stmt_index = -1;
    named.oid = now->oid;
    if ((rc = fl__net_columns(pg, &named, err)) != 0)
        goto cleanup;
    now = &named;
    if ((rc = s_key(pg, pre->oid, &b.key_attnums, &b.nkeys, err)) != 0)
        goto cleanup;
    s_backup_cols(pg, pre, now, &cols, &b.attnums);
    b.ncols = cols.n;
    s_keep_names(&b, now);
    kidx = fl_calloc(b.nkeys + 1, sizeof(size_t));
    if (b.nkeys && s_key_index(&b, kidx) != 0) {
        fl_free(&b.key_attnums);
        b.nkeys = 0;
    }
    for (size_t i = 0; i < cols.n; i++)
        if (cols.cols[i].cur == NULL) {
            rc = FL_ERR(err, FL_EFAIL, "a column of table %s changed", qt);
            goto cleanup;
        }
    if ((rc = s_new_id(pg, &id, &b.id, err)) != 0)
        goto cleanup;
    names = s_list(&cols, NULL, 0, S_BAK_NAME, NULL);
    store = s_list(&cols, NULL, 0, S_STORE, "t");
    rc = fl_pg_commandf(pg, err, "CREATE TABLE flotilla_backup.b%s (%s) AS"
                        " SELECT %s FROM ONLY %s t WHERE false", id, names,
                        store, qt);
    if (rc == 0 && b.nkeys) {
        keys = s_list(&cols, kidx, b.nkeys, S_CUR_TEXT, "t");
        keynames = s_list(&cols, kidx, b.nkeys, S_BAK_NAME, NULL);
        rc = fl_pg_commandf(pg, err, "CREATE TABLE flotilla_backup.a%s (%s) AS"
                            " SELECT %s FROM " S_OURS_FROM " WHERE " S_OURS,
                            id, keynames, keys, qt);
    } else if (rc == 0) {
        texts = s_list(&cols, NULL, 0, S_CUR_TEXT, "t");
        hash = s_row_hash(texts);
        rc = fl_pg_commandf(pg, err, "CREATE TABLE flotilla_backup.a%s (h, n) AS"
                            " SELECT %s, pg_catalog.count(*) FROM " S_OURS_FROM
                            " WHERE " S_OURS " GROUP BY 1", id, hash, qt);
    }
    if (rc == 0)
        rc = s_record(pg, ctx, pre, now, &b, id, NULL, err);
    if (rc == 0)
        rc = fl_pg_query_valuef(pg, &n, err, "SELECT %s FROM flotilla_backup.a%s",
                      b.nkeys ? "pg_catalog.count(*)"
                              : "COALESCE(pg_catalog.sum(n), 0)", id);
    if (rc == 0)
        rc = fl_pg_commandf(pg, err, "UPDATE flotilla.backups SET added_rows ="
                            " %lld WHERE id = %s", s_ll(n), id);
    if (rc == 0)
        *describe = fl_asprintf("%s rows inserted out of sight (by a trigger "
                                "or a DO block) recorded in "
                                "flotilla_backup.a%s", n, id);
cleanup:
    if (rc != 0)
        fl_error_prefix(err, "could not record the rows inserted into %s: ",
                        qt);
    fl__net_rel_release(&named);
    fl__backup_release(&b);
    s_cols_release(&cols);
    free(kidx);
    free(qt);
    free(id);
    free(names);
    free(store);
    free(keys);
    free(keynames);
    free(texts);
    free(hash);
    free(n);
    return rc;
}

/* ---- restoring ------------------------------------------------------ */

/* One backup row of the ledger, as the restore reads it. */
typedef struct {
    char *id, *schema, *table, *kind, *location, *sha, *match, *pruned_at;
    json_t *columns;   /* pre-migration names */
    json_t *text;      /* kept as text? */
    json_t *keys;      /* key column names */
    const char *version; /* lent: the migration's, and its target's */
    const char *target;
} s_bk;

static void
s_bk_release(s_bk *b)
{
    free(b->id);
    free(b->schema);
    free(b->table);
    free(b->kind);
    free(b->location);
    free(b->sha);
    free(b->match);
    free(b->pruned_at);
    json_decref(b->columns);
    json_decref(b->text);
    json_decref(b->keys);
    memset(b, 0, sizeof(*b));
}

/*
 * Where the file of a dump backup is: the recorded absolute path, or the
 * same file name under relocate_dir (rollback --backup-dir) when that is
 * given: first as <relocate_dir>/<target directory>/b<id>.copy, then
 * directly in relocate_dir.  A new string.
 */
char *
fl__backup_locate(const char *recorded, const char *relocate_dir)
{
    const char *base = NULL, *slash = NULL;
    char *sub = NULL, *path = NULL;
    struct stat st;

    if (relocate_dir == NULL || *relocate_dir == '\0')
        return fl_strdup(recorded);
    base = strrchr(recorded, '/');
    base = base ? base + 1 : recorded;
    /* The directory named after the target, one level up from the file. */
    slash = base > recorded + 1 ? base - 1 : NULL;
    if (slash) {
        const char *d = slash;
        while (d > recorded && d[-1] != '/')
            d--;
        sub = fl_strndup(d, (size_t)(slash - d));
        path = fl_asprintf("%s/%s/%s", relocate_dir, sub, base);
        free(sub);
        if (lstat(path, &st) == 0)
            return path;
        free(path);
    }
    return fl_asprintf("%s/%s", relocate_dir, base);
}

/* Loads a dump file into a temporary table of text columns; new name. */
static int
s_load_dump(fl_pg_t *pg, const s_bk *b, const char *path, char **table,
            fl_error_t *err)
{
    char now[2 * FL_HASH_SHA256_BYTES + 1];
    fl_buf_t def = FL_BUF_INIT(0);
    s_file_io io = {-1, path, NULL};
    char *sql = NULL;
    size_t i;
    json_t *v = NULL;
    int rc;

    *table = NULL;
    /* One descriptor: the bytes hashed are the bytes loaded. */
    if ((rc = fl__backup_file_open(path, b->id, &io.fd, err)) != 0)
        return rc;
    if ((rc = s_file_sha256(io.fd, path, now, err)) != 0)
        goto cleanup;
    if (b->sha == NULL || strcmp(now, b->sha) != 0) {
        rc = FL_ERR(err, FL_EFAIL, "backup file \"%s\" has changed since it "
                    "was written", path);
        fl_error_set_detail(err, "Its SHA-256 is %s; the ledger recorded %s.",
                            now, b->sha ? b->sha : "none");
        goto cleanup;
    }
    json_array_foreach(b->columns, i, v) {
        char *q = fl_pg_quote_ident(pg, json_string_value(v));
        fl_buf_addf(&def, "%s%s pg_catalog.text", i ? ", " : "", q);
        free(q);
    }
    *table = fl_asprintf("pg_temp.flotilla_restore_%s", b->id);
    rc = fl_pg_commandf(pg, err, "CREATE TEMP TABLE flotilla_restore_%s (%s) ON COMMIT"
                 " DROP", b->id, fl_buf_str(&def));
    if (rc == 0) {
        sql = fl_asprintf("COPY %s FROM STDIN (FORMAT binary)", *table);
        rc = fl_pg_copy_in(pg, sql, s_read_chunk, &io, err);
    }
cleanup:
    if (io.fd >= 0)
        close(io.fd);
    if (rc != 0)
        fl_free(table);
    free(sql);
    fl_buf_release(&def);
    return rc;
}

/* The target's columns now: name -> quoted type (format_type). */
typedef struct {
    fl_pg_result_t r;  /* attname, type, identity, generated */
} s_target;

static const char *
s_target_type(const s_target *t, const char *name, int *generated)
{
    for (size_t i = 0; i < t->r.nrows; i++)
        if (strcmp(fl_pg_value(&t->r, i, 0), name) == 0) {
            *generated = *fl_pg_value(&t->r, i, 2) != '\0';
            return fl_pg_value(&t->r, i, 1);
        }
    return NULL;
}

/* Counts into *n with a printf-built query. */
static int
s_countf(fl_pg_t *pg, long long *n, fl_error_t *err, const char *fmt, ...)
{
    va_list ap;
    char *sql = NULL, *v = NULL;
    int rc;

    va_start(ap, fmt);
    sql = fl_vasprintf(fmt, ap);
    va_end(ap);
    rc = fl_pg_query_valuef(pg, &v, err, "%s", sql);
    *n = rc == 0 ? s_ll(v) : 0;
    free(v);
    free(sql);
    return rc;
}

static int
s_note(fl_restore_t *res, const char *fmt, ...) FL_PRINTF(2, 3);

static int
s_note(fl_restore_t *res, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    va_start(ap, fmt);
    msg = fl_vasprintf(fmt, ap);
    va_end(ap);
    res->notes = fl_reallocarray(res->notes, res->nnotes + 1, sizeof(char *));
    res->notes[res->nnotes++] = msg;
    return 0;
}

/*
 * The rows of flotilla.backups (alias a) that a rollback of version $1 of
 * target $2 restores: not restored yet, not a copy a rollback kept
 * (statement_index -2, FL_BACKUP_KEPT).
 */
#define S_TO_RESTORE(a)                                                     \
    " " a ".version OPERATOR(pg_catalog.=) $1 AND " a ".target"             \
    " OPERATOR(pg_catalog.=) $2 AND " a ".restored_at IS NULL"              \
    " AND " a ".statement_index OPERATOR(pg_catalog.>=) -1 "

/*
 * The types of the key columns ($2: a JSON array of their names, in
 * order) of table $1, as text, in order; fewer than the names when one
 * is missing.  Rows marked by key before a down (fl__restore_mark_since)
 * are found by it after the down only while these are the same.
 */
#define S_KEY_TYPES                                                         \
    " ARRAY(SELECT pg_catalog.format_type(a.atttypid, a.atttypmod)"         \
    " FROM pg_catalog.json_array_elements_text($2::pg_catalog.json)"        \
    " WITH ORDINALITY u(n, i) JOIN pg_catalog.pg_attribute a"               \
    " ON a.attrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)"      \
    " AND a.attname OPERATOR(pg_catalog.=) u.n::pg_catalog.name"            \
    " AND a.attnum > 0 AND NOT a.attisdropped ORDER BY u.i) "

/* "a.k1::text, a.k2::text" of the JSON array of key names keys. */
static char *
s_key_texts(fl_pg_t *pg, const json_t *keys, const char *a)
{
    fl_buf_t b = FL_BUF_INIT(0);
    size_t i;
    json_t *kv = NULL;

    json_array_foreach(keys, i, kv) {
        char *q = fl_pg_quote_ident(pg, json_string_value(kv));
        fl_buf_addf(&b, "%s%s.%s::pg_catalog.text", i ? ", " : "", a, q);
        free(q);
    }
    return fl_buf_detach(&b);
}

/*
 * Whether a statement of down takes an ACCESS EXCLUSIVE lock on table
 * schema.table (by the names it gives: unqualified, any schema), or may
 * (a DO block, a function call).
 */
static int
s_down_locks_all(const fl_stmt_list_t *down, const char *schema,
                 const char *table)
{
    for (size_t i = 0; down != NULL && i < down->count; i++) {
        const fl_stmt_t *st = &down->items[i];
        if (st->opaque)
            return 1;
        for (size_t k = 0; k < st->ntables; k++) {
            const fl_table_ref_t *t = &st->tables[k];
            if (t->lock == FL_LOCK_ACCESS_EXCLUSIVE && t->name != NULL &&
                strcmp(t->name, table) == 0 &&
                (t->schema == NULL || strcmp(t->schema, schema) == 0))
                return 1;
        }
    }
    return 0;
}

/*
 * Locks table qt ACCESS EXCLUSIVE when a statement of down takes that on
 * it or on a table it inherits from (a partition's parent: the lock
 * reaches it), or may (s_down_locks_all); EXCLUSIVE otherwise.
 */
static int
s_lock_for_down(fl_pg_t *pg, const char *qt, const fl_stmt_list_t *down,
                fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *p[1] = {qt};
    int all = 0, rc;

    rc = fl_pg_query(pg, &r,
        "WITH RECURSIVE up(oid, depth) AS (SELECT pg_catalog.to_regclass($1)"
        "::pg_catalog.oid, 0 UNION SELECT h.inhparent, up.depth + 1"
        " FROM pg_catalog.pg_inherits h JOIN up ON h.inhrelid"
        " OPERATOR(pg_catalog.=) up.oid WHERE up.depth < 64)"
        " SELECT n.nspname, c.relname FROM up JOIN pg_catalog.pg_class c"
        " ON c.oid OPERATOR(pg_catalog.=) up.oid JOIN pg_catalog.pg_namespace n"
        " ON n.oid OPERATOR(pg_catalog.=) c.relnamespace", 1, p, err);
    for (size_t i = 0; rc == 0 && !all && i < r.nrows; i++)
        all = s_down_locks_all(down, fl_pg_value(&r, i, 0),
                               fl_pg_value(&r, i, 1));
    fl_pg_result_release(&r);
    if (rc == 0)
        rc = fl_pg_commandf(pg, err, "LOCK TABLE ONLY %s IN %s MODE", qt,
                            all ? "ACCESS EXCLUSIVE" : "EXCLUSIVE");
    return rc;
}

/*
 * Whether a restore for target may write schema: any for a whole
 * database; a schema target's own, or public (what its net watches).
 * flotilla.backups and flotilla.sequence_backups are written in the
 * migration's transaction, so code flotilla runs (a tenant's trigger)
 * can change their rows; before, a row changed to name another tenant's
 * schema had the rollback restore rows the tenant chose into that
 * tenant's table, "proved" (found by an audit).
 */
static int
s_in_scope(const char *target, const char *schema, const char *what,
           const char *id, fl_error_t *err)
{
    if (target == NULL || target[0] == '\0' ||
        (schema != NULL && (strcmp(schema, target) == 0 ||
                            strcmp(schema, "public") == 0)))
        return 0;
    FL_ERR(err, FL_EINVAL, "%s %s names schema \"%s\", outside target "
           "\"%s\": nothing is restored there", what, id,
           schema ? schema : "", target);
    fl_error_set_hint(err, "Its row in the ledger was changed by code that "
                           "ran as flotilla's role (a trigger of the target, "
                           "say): check the rows of flotilla.backups and "
                           "flotilla.sequence_backups; nothing was rolled "
                           "back.");
    return FL_EINVAL;
}

int
fl__backups_in_scope(fl_pg_t *pg, const char *target,
                     const fl_version_t *version, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char ver[FL_VERSION_MAX + 1];
    const char *p[2] = {ver, target};
    int rc;

    if (target == NULL || target[0] == '\0')
        return 0;
    snprintf(ver, sizeof(ver), "%s", version->text);
    rc = fl_pg_query(pg, &r,
        "SELECT 'backup', b.id::pg_catalog.text, b.source_schema"
        " FROM flotilla.backups b WHERE" S_TO_RESTORE("b")
        " AND b.source_schema OPERATOR(pg_catalog.<>) ALL (ARRAY[$2,"
        " 'public'])"
        " UNION ALL SELECT 'sequence backup', s.id::pg_catalog.text,"
        " CASE WHEN s.seq_schema OPERATOR(pg_catalog.<>) ALL (ARRAY[$2,"
        " 'public']) THEN s.seq_schema ELSE s.owner_schema END"
        " FROM flotilla.sequence_backups s WHERE s.version"
        " OPERATOR(pg_catalog.=) $1 AND s.target OPERATOR(pg_catalog.=) $2"
        " AND s.restored_at IS NULL AND (s.seq_schema OPERATOR(pg_catalog.<>)"
        " ALL (ARRAY[$2, 'public']) OR s.owner_schema OPERATOR(pg_catalog.<>)"
        " ALL (ARRAY[$2, 'public'])) LIMIT 1", 2, p, err);
    if (rc == 0 && r.nrows == 1)
        rc = s_in_scope(target, fl_pg_value(&r, 0, 2), fl_pg_value(&r, 0, 0),
                        fl_pg_value(&r, 0, 1), err);
    fl_pg_result_release(&r);
    return rc;
}

int
fl__restore_mark_since(fl_pg_t *pg, const fl_restore_opts_t *o,
                       const fl_version_t *version,
                       const fl_stmt_list_t *down, int *marked,
                       fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char ver[FL_VERSION_MAX + 1];
    const char *p[2] = {ver, o->target ? o->target : ""};
    char *since = fl__since_sql_of("t", o->snapshot, o->xids);
    int rc = 0;

    *marked = 0;
    if (since == NULL)  /* a ledger row older than version 9 */
        return 0;
    snprintf(ver, sizeof(ver), "%s", version->text);
    /*
     * The backups with a key (matched by it, or replacing every row)
     * whose table and key columns are there now.
     */
    rc = fl_pg_query(pg, &r,
        "SELECT k.id, k.source_schema, k.source_table,"
        " pg_catalog.array_to_json(k.key_columns)::pg_catalog.text"
        " FROM flotilla.backups k WHERE" S_TO_RESTORE("k")
        "AND k.pruned_at IS NULL"
        " AND k.match OPERATOR(pg_catalog.=) ANY ('{key,replace}')"
        " AND pg_catalog.cardinality(k.key_columns) > 0 ORDER BY k.id",
        2, p, err);
    for (size_t i = 0; rc == 0 && i < r.nrows; i++) {
        json_t *keys = json_loads(fl_pg_value(&r, i, 3), 0, NULL);
        char *qt = fl__qualify(pg, fl_pg_value(&r, i, 1),
                               fl_pg_value(&r, i, 2));
        const char *q[3] = {qt, fl_pg_value(&r, i, 3), fl_pg_value(&r, i, 0)};
        char *have = NULL, *texts = NULL, *sql = NULL;

        if (!json_is_array(keys))
            goto next;
        sql = fl_asprintf("SELECT pg_catalog.cardinality(" S_KEY_TYPES ")"
                          " OPERATOR(pg_catalog.=) pg_catalog.json_array_length("
                          "$2::pg_catalog.json)");
        rc = fl_pg_query_value(pg, &have, sql, 2, q, err);
        fl_free(&sql);
        if (rc != 0 || have == NULL || strcmp(have, "t") != 0)
            goto next;  /* not there before the down: nothing to read */
        if (!*marked)
            rc = fl_pg_exec(pg, "CREATE TEMPORARY TABLE flotilla_since_keys"
                            " (backup pg_catalog.int8, marker pg_catalog.bool,"
                            " k pg_catalog.text[]) ON COMMIT DROP", err);
        /*
         * The lock the down will take, when it takes ACCESS EXCLUSIVE on
         * the table or a parent of it: a lower one now, raised by the
         * down, would deadlock with an application transaction that read
         * the table and then writes it (PostgreSQL aborts the
         * application's), where waiting for the stronger one lets that
         * transaction finish first.
         */
        if (rc == 0)
            rc = s_lock_for_down(pg, qt, down, err);
        if (rc != 0)
            goto next;
        texts = s_key_texts(pg, keys, "t");
        sql = fl_asprintf(
            "INSERT INTO pg_temp.flotilla_since_keys SELECT $3::pg_catalog.int8,"
            " true," S_KEY_TYPES "UNION ALL SELECT $3::pg_catalog.int8, false,"
            " ARRAY[%s] FROM ONLY %s t WHERE %s", texts, qt, since);
        {
            fl_pg_result_t w = FL_PG_RESULT_INIT;
            rc = fl_pg_query(pg, &w, sql, 3, q, err);
            fl_pg_result_release(&w);
        }
        if (rc == 0)
            *marked = 1;
        else
            fl_error_prefix(err, "could not read which rows of %s were written "
                            "since the migration: ", qt);
next:
        free(sql);
        free(texts);
        free(have);
        free(qt);
        json_decref(keys);
    }
    fl_pg_result_release(&r);
    free(since);
    return rc;
}

int
fl__restore_marked_sql(fl_pg_t *pg, const char *qt, const char *a,
                       char **out, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *p[1] = {qt};
    int rc;

    *out = NULL;
    rc = fl_pg_query(pg, &r,
        "SELECT m.backup, pg_catalog.array_to_json(k.key_columns)"
        "::pg_catalog.text FROM pg_temp.flotilla_since_keys m"
        " JOIN flotilla.backups k ON k.id OPERATOR(pg_catalog.=) m.backup"
        " WHERE m.marker AND pg_catalog.to_regclass(pg_catalog.format("
        "'%I.%I', k.source_schema, k.source_table)) OPERATOR(pg_catalog.=)"
        " pg_catalog.to_regclass($1) AND m.k OPERATOR(pg_catalog.=) ARRAY("
        "SELECT pg_catalog.format_type(x.atttypid, x.atttypmod)"
        " FROM pg_catalog.unnest(k.key_columns) WITH ORDINALITY u(n, i)"
        " JOIN pg_catalog.pg_attribute x ON x.attrelid OPERATOR(pg_catalog.=)"
        " pg_catalog.to_regclass($1) AND x.attname OPERATOR(pg_catalog.=)"
        " u.n::pg_catalog.name AND x.attnum > 0 AND NOT x.attisdropped"
        " ORDER BY u.i) ORDER BY m.backup LIMIT 1", 1, p, err);
    if (rc == 0 && r.nrows == 1) {
        json_t *keys = json_loads(fl_pg_value(&r, 0, 1), 0, NULL);
        char *texts = s_key_texts(pg, keys, a);

        if (texts[0] != '\0')
            *out = fl_asprintf("ARRAY[%s] OPERATOR(pg_catalog.=) ANY (SELECT"
                               " m.k FROM pg_temp.flotilla_since_keys m WHERE"
                               " m.backup OPERATOR(pg_catalog.=) %s AND NOT"
                               " m.marker)", texts, fl_pg_value(&r, 0, 0));
        free(texts);
        json_decref(keys);
    }
    fl_pg_result_release(&r);
    return rc;
}

/*
 * Before the restore replaces the rows of qt that sel selects (SQL over
 * the table as t): those written since the migration, by the application,
 * are kept (s_keep_where) and said in res->kept.  "Since": fl__since_sql,
 * which takes a row the rollback wrote itself for the application's (a
 * down that rewrites the table gives every row its xmin); unless the
 * rows written since were marked by key before the down ran
 * (fl__restore_mark_since, o->marked; tkeys: the key as text, NULL when
 * the restore matches no key) and the key's types are still the same.
 * A ledger row older than version 9 has neither: "since" is then an
 * xmin newer than that of the backup's own row in flotilla.backups, which
 * the migration's transaction wrote (a no-transaction migration's backups
 * commit before its statements, whose rows then count as newer too, and
 * are kept with the others): its age() is smaller, a cheap test of each
 * row (every live id is within 2^31 of the current one).
 */
static int
s_keep_since(fl_pg_t *pg, const fl_restore_opts_t *o, const s_bk *b,
             const char *qt, const char *sel, const char *tkeys,
             fl_restore_t *res, fl_error_t *err)
{
    fl_backup_ctx_t ctx;
    const char *p[1] = {qt};
    char *oid = NULL, *where = NULL, *describe = NULL, *since = NULL;
    char *marked = NULL;
    long long kept = 0;
    int rc;

    memset(&ctx, 0, sizeof(ctx));
    snprintf(ctx.version.text, sizeof(ctx.version.text), "%s", b->version);
    ctx.target = b->target;
    rc = fl_pg_query_value(pg, &oid, "SELECT pg_catalog.to_regclass($1)"
                           "::pg_catalog.oid", 1, p, err);
    if (rc != 0 || oid == NULL)
        goto cleanup;
    if (o->marked && tkeys) {
        char *keys = json_dumps(b->keys, JSON_COMPACT);
        const char *q[3] = {qt, keys, b->id};
        rc = fl_pg_query_value(pg, &marked, "SELECT EXISTS (SELECT FROM"
            " pg_temp.flotilla_since_keys m WHERE m.backup"
            " OPERATOR(pg_catalog.=) $3::pg_catalog.int8 AND m.marker"
            " AND m.k OPERATOR(pg_catalog.=)" S_KEY_TYPES ")", 3, q, err);
        free(keys);
        if (rc != 0)
            goto cleanup;
    }
    since = fl__since_sql_of("t", o->snapshot, o->xids);
    if (marked && strcmp(marked, "t") == 0)
        where = fl_asprintf("ARRAY[%s] OPERATOR(pg_catalog.=) ANY (SELECT m.k"
                            " FROM pg_temp.flotilla_since_keys m WHERE m.backup"
                            " OPERATOR(pg_catalog.=) %s AND NOT m.marker)"
                            " AND %s", tkeys, b->id, sel);
    else if (since != NULL)
        where = fl_asprintf("%s AND %s", since, sel);
    else /* a ledger row older than version 9 */
        where = fl_asprintf("pg_catalog.age(t.xmin) < (SELECT pg_catalog.age("
                            "k.xmin) FROM flotilla.backups k WHERE k.id"
                            " OPERATOR(pg_catalog.=) %s) AND %s", b->id, sel);
    rc = s_keep_where(pg, &ctx, (uint32_t)strtoul(oid, NULL, 10), "EXCLUSIVE",
                      where, &kept, &describe, err);
    if (rc == 0 && describe) {
        res->kept = fl_reallocarray(res->kept, res->nkept + 1, sizeof(char *));
        res->kept[res->nkept++] = fl_asprintf(
            "the restore of %s.%s replaces %lld row%s written since the "
            "migration: kept in %s, never restored (flotilla backups list; "
            "prune --leftovers removes it)", b->schema, b->table, kept,
            kept == 1 ? "" : "s", describe);
    }
cleanup:
    free(oid);
    free(marked);
    free(since);
    free(where);
    free(describe);
    return rc;
}

/* Turns off triggers and foreign-key actions for the rest of the transaction. */
static int
s_replica(fl_pg_t *pg, fl_restore_t *res, fl_error_t *err)
{
    int rc;

    if (res->replica)
        return 0;
    rc = s_exec(pg, "SELECT pg_catalog.set_config('session_replication_role',"
                " 'replica', true)", err);
    if (rc != 0) {
        fl_error_prefix(err, "could not turn off triggers for the restore: ");
        fl_error_set_hint(err, "Restores run with user triggers and "
                          "foreign-key actions off (like pg_restore "
                          "--disable-triggers), which needs a superuser or, "
                          "on PostgreSQL 15, GRANT SET ON PARAMETER "
                          "session_replication_role TO the role flotilla "
                          "connects as.");
        return rc;
    }
    res->replica = 1;
    return 0;
}

/*
 * The triggers and rules of table $1 and of the tables its rows go to or
 * come from (partitions, inheritance children; parents first) that fire
 * under session_replication_role = replica: those marked ENABLE ALWAYS,
 * which fire whatever it is, and ENABLE REPLICA, which fire only under
 * it.  For each, the statement that turns it off and the one that gives
 * its mark back, built from the catalog's names by format() (regclass is
 * schema-qualified under the pinned search_path).
 */
static const char s_loud_sql[] =
    "WITH RECURSIVE rels(oid, depth) AS ("
    " SELECT pg_catalog.to_regclass($1)::pg_catalog.oid, 0"
    " UNION SELECT h.inhrelid, rels.depth + 1 FROM pg_catalog.pg_inherits h"
    " JOIN rels ON h.inhparent OPERATOR(pg_catalog.=) rels.oid"
    " WHERE rels.depth < 64),"
    "loud AS ("
    " SELECT rels.depth, t.tgrelid AS rel, 'TRIGGER' AS what, t.tgname AS name,"
    " t.tgenabled AS mark FROM pg_catalog.pg_trigger t JOIN rels"
    " ON t.tgrelid OPERATOR(pg_catalog.=) rels.oid WHERE NOT t.tgisinternal"
    " AND t.tgenabled OPERATOR(pg_catalog.=) ANY ('{A,R}')"
    " UNION ALL SELECT rels.depth, r.ev_class, 'RULE', r.rulename,"
    " r.ev_enabled FROM pg_catalog.pg_rewrite r JOIN rels"
    " ON r.ev_class OPERATOR(pg_catalog.=) rels.oid"
    " WHERE r.rulename OPERATOR(pg_catalog.<>) '_RETURN'"
    " AND r.ev_enabled OPERATOR(pg_catalog.=) ANY ('{A,R}'))"
    " SELECT pg_catalog.format('ALTER TABLE ONLY %s DISABLE %s %I',"
    " loud.rel::pg_catalog.regclass, loud.what, loud.name),"
    " pg_catalog.format('ALTER TABLE ONLY %s ENABLE %s %s %I',"
    " loud.rel::pg_catalog.regclass, CASE loud.mark WHEN 'A' THEN 'ALWAYS'"
    " ELSE 'REPLICA' END, loud.what, loud.name)"
    " FROM loud ORDER BY loud.depth, loud.rel, loud.what, loud.name";

/*
 * Turns off, for the rest of the restore, the triggers and rules of table
 * qt that session_replication_role = replica does not (see s_loud_sql), as
 * pg_restore --disable-triggers turns off every trigger: in a restore they
 * would run the tenant's code as the role flotilla connects as, and a
 * trigger that changes what it inserts would make the restored rows
 * differ from the backup for ever.  Their marks are given back by
 * s_unquiet before the restore ends; if it fails, the rollback's
 * transaction puts them back.
 */
static int
s_quiet(fl_pg_t *pg, const char *qt, fl_restore_t *res, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *p[1] = {qt};
    int rc = fl_pg_query(pg, &r, s_loud_sql, 1, p, err);

    for (size_t i = 0; rc == 0 && i < r.nrows; i++) {
        rc = s_exec(pg, fl_pg_value(&r, i, 0), err);
        if (rc != 0) {
            fl_error_prefix(err, "could not turn off a trigger or rule of "
                            "table %s marked ENABLE ALWAYS or ENABLE REPLICA "
                            "for the restore: ", qt);
            fl_error_set_hint(err, "Those fire even with triggers off, so "
                              "the restore turns them off for its own "
                              "transaction, which needs the table's owner or "
                              "a superuser; or mark them ENABLE (ALTER TABLE "
                              "... ENABLE TRIGGER) before rolling back.");
            break;
        }
        res->marks = fl_reallocarray(res->marks, res->nmarks + 1,
                                     sizeof(char *));
        res->marks[res->nmarks++] = fl_strdup(fl_pg_value(&r, i, 1));
    }
    fl_pg_result_release(&r);
    return rc;
}

/* Gives back the marks s_quiet took, in the order it took them. */
static int
s_unquiet(fl_pg_t *pg, fl_restore_t *res, fl_error_t *err)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < res->nmarks; i++)
        rc = s_exec(pg, res->marks[i], err);
    for (size_t i = 0; i < res->nmarks; i++)
        free(res->marks[i]);
    fl_free(&res->marks);
    res->nmarks = 0;
    return rc;
}

/*
 * *added: whether column name of backup b's table is one b's migration
 * added (its recorded changes have the column with nothing before).  A
 * migration without a transaction that adds a column and then fills it
 * backs the column up with the table, since it was committed when the
 * backup was taken; once down drops it again, its values are nothing the
 * database had before the migration.
 */
static int
s_added_column(fl_pg_t *pg, const s_bk *b, const char *name, int *added,
               fl_error_t *err)
{
    const char *p[5] = {b->target, b->version, b->schema, b->table, name};
    char *v = NULL;
    int rc = fl_pg_query_value(pg, &v,
        "SELECT EXISTS (SELECT FROM flotilla.schema_changes c"
        " WHERE c.target OPERATOR(pg_catalog.=) $1"
        " AND c.version OPERATOR(pg_catalog.=) $2"
        " AND c.kind OPERATOR(pg_catalog.=) 'column'"
        " AND c.ident OPERATOR(pg_catalog.=) pg_catalog.format('%I.%I.%I',"
        " $3::pg_catalog.text, $4::pg_catalog.text, $5::pg_catalog.text)"
        " AND c.before_def IS NULL AND c.after_def IS NOT NULL)", 5, p, err);

    *added = rc == 0 && v && strcmp(v, "t") == 0;
    free(v);
    return rc;
}

/*
 * Whether the restore matches the rows of backup src and of the table
 * (tgt) by their key natively, so that the key's index finds them
 * (as text, every comparison reads the whole table: 0.65 s to put back
 * one row of a table of a million): when each key column (kidx into
 * cols and columns, the backup's names) is kept as it was, not as text,
 * and is of the same type in the backup and the table, an integer or a
 * uuid, whose equality is their text's.
 */
static int
s_native_keys(fl_pg_t *pg, const char *src, const json_t *columns,
              const size_t *kidx, size_t nkeys, const s_target *tgt,
              const s_cols *cols, int *native, fl_error_t *err)
{
    static const char *const ok[] = {"smallint", "integer", "bigint", "uuid"};
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *p[1] = {src};
    int rc;

    *native = 0;
    rc = fl_pg_query(pg, &r, "SELECT a.attname, pg_catalog.format_type("
                     "a.atttypid, a.atttypmod) FROM pg_catalog.pg_attribute a"
                     " WHERE a.attrelid OPERATOR(pg_catalog.=)"
                     " pg_catalog.to_regclass($1) AND a.attnum > 0"
                     " AND NOT a.attisdropped", 1, p, err);
    *native = rc == 0 && nkeys > 0;
    for (size_t k = 0; *native && k < nkeys; k++) {
        const char *name = json_string_value(json_array_get(columns,
                                                            kidx[k]));
        const char *bt = NULL, *tt = NULL;
        int gen = 0, listed = 0;

        for (size_t i = 0; name && i < r.nrows; i++)
            if (strcmp(fl_pg_value(&r, i, 0), name) == 0)
                bt = fl_pg_value(&r, i, 1);
        /* The table's column has the backup's name (cur is set so). */
        if (bt != NULL && cols->cols[kidx[k]].cur != NULL &&
            !cols->cols[kidx[k]].text)
            tt = s_target_type(tgt, name, &gen);
        for (size_t i = 0; tt && i < sizeof(ok) / sizeof(ok[0]); i++)
            listed |= strcmp(tt, ok[i]) == 0;
        *native = bt != NULL && tt != NULL && !gen && listed &&
                  strcmp(bt, tt) == 0;
    }
    fl_pg_result_release(&r);
    return rc;
}

/*
 * Where the key is matched as text (not s_native_keys), the rows of the
 * table whose key its unique index takes as equal to a backup row's
 * though the text differs (numeric 1.0 and 1.00, a float's 0 and -0, an
 * interval's 1 day and 24 hours): a condition on s (the backup) and t
 * (the table) comparing such columns by their type's own equality and
 * the others as text, or NULL when no key column is of such a type.
 * Before, the restore left such a row and its insert of the old one
 * failed on the index (found by an audit).
 */
static char *
s_equal_keys(const s_cols *cols, const json_t *columns, const size_t *kidx,
             size_t nkeys, const s_target *tgt)
{
    static const char *const types[] = {"numeric", "real", "double precision",
                                        "interval"};
    fl_buf_t bak = FL_BUF_INIT(0), cur = FL_BUF_INIT(0);
    int any = 0;

    for (size_t k = 0; k < nkeys; k++) {
        const s_col *c = &cols->cols[kidx[k]];
        const char *name = json_string_value(json_array_get(columns,
                                                            kidx[k]));
        const char *tt = NULL, *sep = k ? ", " : "";
        int gen = 0, listed = 0;

        if (name != NULL && c->cur != NULL)
            tt = s_target_type(tgt, name, &gen);
        for (size_t i = 0; tt && i < sizeof(types) / sizeof(types[0]); i++)
            listed |= strncmp(tt, types[i], strlen(types[i])) == 0 &&
                      (tt[strlen(types[i])] == '\0' ||
                       tt[strlen(types[i])] == '(' ||
                       tt[strlen(types[i])] == ' ');
        if (listed) {
            fl_buf_addf(&bak, "%s(s.%s::pg_catalog.text)::%s", sep, c->bak,
                        tt);
            fl_buf_addf(&cur, "%st.%s", sep, c->cur);
            any = 1;
        } else {
            fl_buf_addf(&bak, "%ss.%s::pg_catalog.text", sep, c->bak);
            fl_buf_addf(&cur, "%st.%s::pg_catalog.text", sep, c->cur);
        }
    }
    char *out = any ? fl_asprintf("ROW(%s) OPERATOR(pg_catalog.=) ROW(%s)",
                                  fl_buf_str(&bak), fl_buf_str(&cur))
                    : NULL;
    fl_buf_release(&bak);
    fl_buf_release(&cur);
    return out;
}

/* Restores backup b; see fl__restore_backups. */
static int
s_restore_one(fl_pg_t *pg, const fl_restore_opts_t *o, s_bk *b,
              fl_restore_t *res, fl_error_t *err)
{
    s_target tgt = {FL_PG_RESULT_INIT};
    s_cols cols = {NULL, 0};
    size_t *restored = NULL, nrestored = 0, *kidx = NULL, nkeys = 0;
    char *qt = NULL, *src = NULL, *added = NULL, *path = NULL, *ins = NULL,
         *vals = NULL, *tkeys = NULL, *skeys = NULL, *ttext = NULL,
         *stext = NULL, *th = NULL, *sh = NULL, *v = NULL, *akeys = NULL,
         *tnat = NULL, *snat = NULL;
    long long nsrc = 0, nadded = 0, bad = 0;
    size_t i;
    json_t *jv = NULL;
    int has_added = 0, keyed = strcmp(b->match, "key") == 0, insert_only = 0;
    int rc = 0;

    if (b->pruned_at) {
        rc = FL_ERR(err, FL_EFAIL, "backup %s of table %s.%s was pruned on %s",
                    b->id, b->schema, b->table, b->pruned_at);
        fl_error_set_detail(err, "Rolling back would run down without the data "
                                 "it needs.");
        fl_error_set_hint(err, "Restore the data by hand, or write a new "
                               "migration instead of rolling back.");
        goto cleanup;
    }
    added = fl_asprintf("flotilla_backup.a%s", b->id);
    {
        const char *p[1] = {added};
        rc = fl_pg_query_value(pg, &v, "SELECT pg_catalog.to_regclass($1)"
                               " IS NOT NULL", 1, p, err);
        if (rc != 0)
            goto cleanup;
        has_added = v && strcmp(v, "t") == 0;
        fl_free(&v);
    }
    if (strcmp(b->kind, "dump") == 0) {
        path = fl__backup_locate(b->location, o->relocate_dir);
        if ((rc = s_load_dump(pg, b, path, &src, err)) != 0)
            goto cleanup;
        /* Keep only the rows the migration changed (c<id>), if known. */
        {
            char *c = fl_asprintf("flotilla_backup.c%s", b->id);
            const char *p[1] = {c};
            rc = fl_pg_query_value(pg, &v, "SELECT pg_catalog.to_regclass($1)"
                                   " IS NOT NULL", 1, p, err);
            if (rc == 0 && v && strcmp(v, "t") == 0) {
                s_cols all = {NULL, 0};
                all.cols = fl_calloc(json_array_size(b->columns) + 1,
                                     sizeof(s_col));
                json_array_foreach(b->columns, i, jv) {
                    all.cols[all.n].bak = fl_pg_quote_ident(pg,
                                                        json_string_value(jv));
                    all.cols[all.n++].text = 1;
                }
                if (keyed) {
                    fl_buf_t k = FL_BUF_INIT(0), ck = FL_BUF_INIT(0);
                    size_t j;
                    json_t *kv = NULL;
                    json_array_foreach(b->keys, j, kv) {
                        char *q = fl_pg_quote_ident(pg, json_string_value(kv));
                        fl_buf_addf(&k, "%ss.%s", j ? ", " : "", q);
                        fl_buf_addf(&ck, "%sc.%s", j ? ", " : "", q);
                        free(q);
                    }
                    rc = fl_pg_commandf(pg, err, "DELETE FROM %s s WHERE NOT EXISTS"
                                 " (SELECT 1 FROM %s c WHERE ROW(%s) OPERATOR("
                                 "pg_catalog.=) ROW(%s))", src, c,
                                 fl_buf_str(&ck), fl_buf_str(&k));
                    fl_buf_release(&k);
                    fl_buf_release(&ck);
                } else {
                    char *l = s_list(&all, NULL, 0, S_BAK_TEXT, "s");
                    char *h = s_row_hash(l);
                    rc = fl_pg_commandf(pg, err, "DELETE FROM %s WHERE ctid OPERATOR("
                        "pg_catalog.<>) ALL (ARRAY(SELECT x.ctid FROM (SELECT"
                        " s.ctid, %s AS h, pg_catalog.row_number() OVER"
                        " (PARTITION BY %s) AS rn FROM %s s) x JOIN %s c ON c.h"
                        " OPERATOR(pg_catalog.=) x.h WHERE x.rn"
                        " OPERATOR(pg_catalog.<=) c.n))", src, h, h, src, c);
                    free(l);
                    free(h);
                }
                s_cols_release(&all);
            }
            fl_free(&v);
            free(c);
            if (rc != 0)
                goto cleanup;
        }
    } else {
        src = fl_strdup(b->location);
        /* Only "flotilla_backup.b<id>" is ever recorded for a table backup. */
        if (strncmp(src, "flotilla_backup.b", 17) != 0 ||
            strspn(src + 17, "0123456789") != strlen(src + 17)) {
            rc = FL_ERR(err, FL_EFAIL, "backup %s of table %s.%s has an "
                        "unexpected location \"%s\"", b->id, b->schema,
                        b->table, b->location);
            goto cleanup;
        }
    }
    if ((rc = s_countf(pg, &nsrc, err, "SELECT pg_catalog.count(*) FROM %s",
                       src)) != 0)
        goto cleanup;
    if (has_added && (rc = s_countf(pg, &nadded, err, "SELECT %s FROM %s",
                                    keyed ? "pg_catalog.count(*)"
                                          : "COALESCE(pg_catalog."
                                            "sum(n), 0)", added)) != 0)
        goto cleanup;
    if (nsrc == 0 && nadded == 0) {
        res->tables++;
        goto release;
    }
    qt = fl__qualify(pg, b->schema, b->table);
    {
        const char *p[1] = {qt};
        rc = fl_pg_query(pg, &tgt.r,
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),"
            " a.attgenerated FROM pg_catalog.pg_attribute a WHERE a.attrelid"
            " OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1) AND a.attnum > 0"
            " AND NOT a.attisdropped", 1, p, err);
        if (rc != 0)
            goto cleanup;
    }
    if (tgt.r.nrows == 0) {
        if (!o->accept_loss) {
            rc = FL_ERR(err, FL_ENOTFOUND, "table %s does not exist after down "
                        "ran, so its %lld backed-up row%s cannot be put back",
                        qt, nsrc, nsrc == 1 ? "" : "s");
            fl_error_set_hint(err, "Make down re-create the table, or accept "
                                   "the loss with --accept-loss --reason TEXT.");
            goto cleanup;
        }
        s_note(res, "accepted loss: table %s is gone; %lld backed-up row%s not "
               "restored", qt, nsrc, nsrc == 1 ? "" : "s");
        goto release;
    }
    /* The backed-up columns the table has again, and those it lacks. */
    cols.cols = fl_calloc(json_array_size(b->columns) + 1, sizeof(s_col));
    restored = fl_calloc(json_array_size(b->columns) + 1, sizeof(size_t));
    {
        fl_buf_t missing = FL_BUF_INIT(0), cast = FL_BUF_INIT(0);
        json_array_foreach(b->columns, i, jv) {
            const char *name = json_string_value(jv);
            int gen = 0, ours = 0;
            const char *type = s_target_type(&tgt, name, &gen);
            s_col *c = &cols.cols[cols.n++];
            c->bak = fl_pg_quote_ident(pg, name);
            c->cur = type && !gen ? fl_strdup(c->bak) : NULL;
            c->text = json_is_true(json_array_get(b->text, i));
            if (!type && (rc = s_added_column(pg, b, name, &ours, err)) != 0) {
                fl_buf_release(&missing);
                fl_buf_release(&cast);
                goto cleanup;
            }
            if (c->cur) {
                restored[nrestored++] = cols.n - 1;
                fl_buf_addf(&cast, "%ss.%s::%s", cast.len ? ", " : "",
                                    c->bak, type);
            } else if (ours) {
                /* Nothing of the database's before the migration. */
            } else {
                fl_buf_addf(&missing, "%s%s", missing.len ? ", " : "",
                                    c->bak);
            }
        }
        vals = fl_buf_detach(&cast);
        if (missing.len && !o->accept_loss) {
            rc = FL_ERR(err, FL_ENOTFOUND, "column%s %s of table %s do%s not "
                        "exist after down ran, so %lld backed-up row%s cannot "
                        "be put back whole", strchr(fl_buf_str(&missing), ',')
                                                 ? "s" : "",
                        fl_buf_str(&missing), qt,
                        strchr(fl_buf_str(&missing), ',') ? "" : "es", nsrc,
                        nsrc == 1 ? "" : "s");
            fl_error_set_hint(err, "Make down re-create the columns it "
                                   "dropped, or accept the loss with "
                                   "--accept-loss --reason TEXT.");
            fl_buf_release(&missing);
            goto cleanup;
        }
        if (missing.len)
            s_note(res, "accepted loss: column%s %s of table %s not restored "
                   "(%lld row%s)", strchr(fl_buf_str(&missing), ',') ? "s" : "",
                   fl_buf_str(&missing), qt, nsrc, nsrc == 1 ? "" : "s");
        fl_buf_release(&missing);
    }
    kidx = fl_calloc(json_array_size(b->keys) + 1, sizeof(size_t));
    if (keyed) {
        json_t *kv = NULL;
        size_t j;
        json_array_foreach(b->keys, j, kv) {
            int found = -1;
            for (size_t c = 0; c < cols.n; c++)
                if (cols.cols[c].cur &&
                    strcmp(json_string_value(json_array_get(b->columns, c)),
                           json_string_value(kv)) == 0)
                    found = (int)c;
            if (found < 0) {
                keyed = 0;
                break;
            }
            kidx[nkeys++] = (size_t)found;
        }
        if (!keyed && !o->accept_loss) {
            rc = FL_ERR(err, FL_ENOTFOUND, "the key of table %s is not there "
                        "after down ran", qt);
            fl_error_set_hint(err, "Make down re-create the key columns, or "
                                   "accept the loss with --accept-loss.");
            goto cleanup;
        }
        if (!keyed) {
            s_note(res, "accepted loss: the key of table %s is gone; its "
                   "backed-up rows are inserted, changed rows not removed", qt);
            insert_only = 1;
        }
    }
    if (nrestored == 0) {
        s_note(res, "accepted loss: no backed-up column of table %s exists",
               qt);
        goto release;
    }
    if ((rc = s_replica(pg, res, err)) != 0 ||
        (rc = s_quiet(pg, qt, res, err)) != 0)
        goto cleanup;
    ins = s_list(&cols, restored, nrestored, S_BAK_NAME, NULL);
    ttext = s_list(&cols, restored, nrestored, S_CUR_TEXT, "t");
    stext = s_list(&cols, restored, nrestored, S_BAK_TEXT, "s");
    th = s_row_hash(ttext);
    sh = s_row_hash(stext);
    if (keyed) {
        int native = 0;

        tkeys = s_list(&cols, kidx, nkeys, S_CUR_TEXT, "t");
        skeys = s_list(&cols, kidx, nkeys, S_BAK_TEXT, "s");
        akeys = s_list(&cols, kidx, nkeys, S_BAK_TEXT, "a");
        if ((rc = s_native_keys(pg, src, b->columns, kidx, nkeys, &tgt,
                                &cols, &native, err)) != 0)
            goto cleanup;
        tnat = native ? s_list(&cols, kidx, nkeys, S_CUR, "t")
                      : fl_strdup(tkeys);
        snat = native ? s_list(&cols, kidx, nkeys, S_BAK, "s")
                      : fl_strdup(skeys);
        char *or_added = has_added
            ? fl_asprintf(" OR EXISTS (SELECT 1 FROM %s a WHERE ROW(%s)"
                          " OPERATOR(pg_catalog.=) ROW(%s))", added, akeys,
                          tkeys)
            : fl_strdup("");
        char *eq = native ? NULL
                          : s_equal_keys(&cols, b->columns, kidx, nkeys, &tgt);
        char *or_equal = eq ? fl_asprintf(" OR EXISTS (SELECT 1 FROM %s s"
                                          " WHERE %s)", src, eq)
                            : fl_strdup("");
        char *sel = fl_asprintf("(EXISTS (SELECT 1 FROM %s s WHERE ROW(%s)"
                                " OPERATOR(pg_catalog.=) ROW(%s))%s%s)", src,
                                snat, tnat, or_added, or_equal);

        free(or_equal);
        free(eq);
        /*
         * A row written since that already holds, in every column the
         * table has, what the restore writes back loses nothing: not
         * kept.  (Rolling back two migrations, the newer one's restore
         * rewrites rows that the older one's then finds "written since";
         * every one was kept as the application's.)  Compared as text,
         * NULL apart from '' (a row's text form).
         */
        char *keep = tgt.r.nrows == nrestored
            ? fl_asprintf("%s AND NOT EXISTS (SELECT 1 FROM %s s WHERE"
                          " ROW(%s) OPERATOR(pg_catalog.=) ROW(%s) AND"
                          " ROW(%s)::pg_catalog.text OPERATOR(pg_catalog.=)"
                          " ROW(%s)::pg_catalog.text)", sel, src, snat, tnat,
                          stext, ttext)
            : fl_strdup(sel);
        rc = s_keep_since(pg, o, b, qt, keep, tkeys, res, err);
        free(keep);
        if (rc == 0)
            rc = fl_pg_commandf(pg, err, "DELETE FROM ONLY %s t WHERE %s", qt,
                                sel);
        free(sel);
        free(or_added);
    } else if (insert_only) {
        rc = 0;
    } else if (strcmp(b->match, "replace") == 0) {
        /* Every row goes: those written since are found by key too. */
        char *rkeys = json_array_size(b->keys)
                          ? s_key_texts(pg, b->keys, "t") : NULL;
        rc = s_keep_since(pg, o, b, qt, "true", rkeys, res, err);
        free(rkeys);
        if (rc == 0)
            rc = fl_pg_commandf(pg, err, "DELETE FROM ONLY %s", qt);
    } else if (has_added) {
        rc = fl_pg_commandf(pg, err, "DELETE FROM ONLY %s WHERE ctid OPERATOR("
            "pg_catalog.=) ANY (ARRAY(SELECT x.ctid FROM (SELECT t.ctid, %s AS h,"
            " pg_catalog.row_number() OVER (PARTITION BY %s) AS rn FROM ONLY %s t) x"
            " JOIN %s a ON a.h OPERATOR(pg_catalog.=) x.h WHERE x.rn"
            " OPERATOR(pg_catalog.<=) a.n))", qt, th, th, qt, added);
    }
    if (rc != 0)
        goto cleanup;
    if (nsrc > 0 &&
        (rc = fl_pg_commandf(pg, err, "INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE"
                      " SELECT %s FROM %s s", qt, ins, vals, src)) != 0) {
        /*
         * Unique constraints hold in the restore: a row written since the
         * migration that took a value a backed-up row holds.
         */
        if (strcmp(err->sqlstate, "23505") == 0)
            fl_error_set_hint(err, "A row written since the migration holds "
                              "a value of a row the restore puts back; "
                              "nothing was rolled back.  Change or remove "
                              "that row, then roll back again.");
        fl_error_prefix(err, "could not put back the rows of %s.%s: ",
                        b->schema, b->table);
        goto cleanup;
    }
    /* The proof: every backed-up row is there, and no added one is left. */
    if (insert_only) {
        bad = 0;
    } else if (keyed) {
        rc = s_countf(pg, &bad, err, "SELECT pg_catalog.count(*) FROM %s s"
                      " WHERE NOT EXISTS (SELECT 1 FROM ONLY %s t WHERE ROW(%s)"
                      " OPERATOR(pg_catalog.=) ROW(%s) AND %s"
                      " OPERATOR(pg_catalog.=) %s)", src, qt, snat, tnat, th,
                      sh);
        if (rc == 0 && bad == 0 && has_added)
            rc = s_countf(pg, &bad, err, "SELECT pg_catalog.count(*) FROM ONLY %s t"
                          " JOIN %s a ON ROW(%s) OPERATOR(pg_catalog.=) ROW(%s)"
                          " WHERE NOT EXISTS (SELECT 1 FROM %s s WHERE ROW(%s)"
                          " OPERATOR(pg_catalog.=) ROW(%s))", qt, added, akeys,
                          tkeys, src, snat, tnat);
    } else {
        rc = s_countf(pg, &bad, err, "SELECT pg_catalog.count(*) FROM (SELECT"
                      " %s AS h, pg_catalog.count(*) AS n FROM %s s GROUP BY 1)"
                      " s LEFT JOIN (SELECT %s AS h, pg_catalog.count(*) AS n"
                      " FROM ONLY %s t GROUP BY 1) t ON t.h OPERATOR(pg_catalog.=)"
                      " s.h WHERE COALESCE(t.n, 0)"
                      " OPERATOR(pg_catalog.<) s.n", sh, src, th, qt);
    }
    if (rc != 0)
        goto cleanup;
    if (bad != 0) {
        rc = FL_ERR(err, FL_EFAIL, "restored rows of table %s do not match "
                    "the backup", qt);
        fl_error_set_detail(err, "%lld backed-up row%s or added row%s did not "
                            "come out as recorded.", bad, bad == 1 ? "" : "s",
                            bad == 1 ? "" : "s");
        fl_error_set_hint(err, "Check that down re-creates the columns with "
                               "their types; nothing was rolled back and the "
                               "backup is kept.");
        goto cleanup;
    }
    res->rows += nsrc;
    res->removed += nadded;
    res->tables++;
    res->rels = fl_reallocarray(res->rels, res->nrels + 1, sizeof(char *));
    res->rels[res->nrels++] = fl_strdup(qt);
release:
    /* Restored: the backup's tables are released; files after COMMIT. */
    if (strcmp(b->kind, "table") == 0)
        rc = fl_pg_commandf(pg, err, "DROP TABLE IF EXISTS %s", b->location);
    if (rc == 0)
        rc = fl_pg_commandf(pg, err, "DROP TABLE IF EXISTS %s, flotilla_backup.c%s",
                     added, b->id);
    if (rc == 0) {
        const char *p[1] = {b->id};
        fl_pg_result_t u = FL_PG_RESULT_INIT;
        rc = fl_pg_query(pg, &u, "UPDATE flotilla.backups SET restored_at ="
                         " pg_catalog.clock_timestamp(), released_at ="
                         " pg_catalog.clock_timestamp() WHERE id ="
                         " $1::pg_catalog.int8", 1, p, err);
        fl_pg_result_release(&u);
    }
    if (rc == 0 && path) {
        res->files = fl_reallocarray(res->files, res->nfiles + 1,
                                     sizeof(char *));
        res->files[res->nfiles++] = path;
        path = NULL;
    }
cleanup:
    fl_pg_result_release(&tgt.r);
    s_cols_release(&cols);
    free(restored);
    free(kidx);
    free(qt);
    free(src);
    free(added);
    free(path);
    free(ins);
    free(vals);
    free(tkeys);
    free(skeys);
    free(akeys);
    free(tnat);
    free(snat);
    free(ttext);
    free(stext);
    free(th);
    free(sh);
    free(v);
    return rc;
}

/*
 * Sets back the sequences the migration moved.  One it reset, restarted
 * or dropped goes back to its old position unless it is already past it
 * (an application may have used it since).  One it only advanced goes
 * back only when it still stands where the migration left it: nothing
 * has used it since, so no value handed out can come again.
 */
static int
s_restore_sequences(fl_pg_t *pg, const fl_restore_opts_t *o, const char *ver,
                    fl_restore_t *res, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *p[2] = {ver, o->target ? o->target : ""};
    int rc;

    /*
     * Found by the column that owned it (down re-creates a serial or an
     * identity column with a new sequence), else by name.
     */
    rc = fl_pg_query(pg, &r,
        "SELECT b.id, COALESCE(CASE WHEN b.owner_table IS NOT NULL"
        "  THEN pg_catalog.pg_get_serial_sequence(pg_catalog.quote_ident("
        "  b.owner_schema) OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||)"
        "  pg_catalog.quote_ident(b.owner_table), b.owner_column) END,"
        "  (SELECT pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.'"
        "   OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname)"
        "   FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid"
        "   OPERATOR(pg_catalog.=) c.relnamespace WHERE c.relkind = 'S'"
        "   AND n.nspname OPERATOR(pg_catalog.=) b.seq_schema"
        "   AND c.relname OPERATOR(pg_catalog.=) b.seq_name)),"
        " b.last_value, b.seq_schema OPERATOR(pg_catalog.||) '.'"
        "  OPERATOR(pg_catalog.||) b.seq_name, b.after_value, b.seq_schema,"
        " b.owner_schema"
        " FROM flotilla.sequence_backups b WHERE b.version"
        " OPERATOR(pg_catalog.=) $1 AND b.target"
        " OPERATOR(pg_catalog.=) $2 AND b.restored_at IS NULL"
        " ORDER BY b.id DESC", 2, p, err);
    for (size_t i = 0; rc == 0 && i < r.nrows; i++) {
        const char *seq = fl_pg_value(&r, i, 1);
        const char *q[4] = {seq, fl_pg_value(&r, i, 2), fl_pg_value(&r, i, 4),
                            fl_pg_value(&r, i, 0)};
        fl_pg_result_t u = FL_PG_RESULT_INIT;
        char *moved = NULL;

        if ((rc = s_in_scope(p[1], fl_pg_value(&r, i, 5), "sequence backup",
                             q[3], err)) != 0 ||
            (fl_pg_value(&r, i, 6) != NULL &&
             (rc = s_in_scope(p[1], fl_pg_value(&r, i, 6),
                              "sequence backup", q[3], err)) != 0))
            break;
        if (seq == NULL && q[2] == NULL && q[1] != NULL && !o->accept_loss) {
            rc = FL_ERR(err, FL_ENOTFOUND, "sequence %s does not exist "
                        "after down ran, so its position %s cannot be "
                        "restored", fl_pg_value(&r, i, 3), q[1]);
            fl_error_set_hint(err, "Make down re-create it, or accept the "
                                   "loss with --accept-loss.");
            break;
        }
        if (seq == NULL) {
            if (q[1] != NULL && q[2] == NULL)
                s_note(res, "accepted loss: sequence %s is gone (was at %s)",
                       fl_pg_value(&r, i, 3), q[1]);
        } else {
            /*
             * Below the old position (or not called since a restart):
             * moved forward to it, which no value used since can collide
             * with.  Still where the migration left it ($3): nobody used
             * it since, put back wherever that is.  Else left alone.
             */
            rc = fl_pg_query_value(pg, &moved,
                "SELECT CASE"
                " WHEN $2::pg_catalog.int8 IS NOT NULL AND COALESCE("
                "  pg_catalog.pg_sequence_last_value($1::pg_catalog.regclass)"
                "  OPERATOR(pg_catalog.<) $2::pg_catalog.int8, true)"
                " THEN pg_catalog.setval($1::pg_catalog.regclass,"
                "  $2::pg_catalog.int8, true)::pg_catalog.text"
                " WHEN $3::pg_catalog.int8 IS NOT NULL AND"
                "  pg_catalog.pg_sequence_last_value($1::pg_catalog.regclass)"
                "  IS NOT DISTINCT FROM $3::pg_catalog.int8 THEN"
                "  CASE WHEN $2::pg_catalog.int8 IS NULL THEN"
                "   pg_catalog.setval($1::pg_catalog.regclass, (SELECT"
                "   s.seqstart FROM pg_catalog.pg_sequence s WHERE s.seqrelid"
                "   OPERATOR(pg_catalog.=) $1::pg_catalog.regclass), false)"
                "   ::pg_catalog.text"
                "  ELSE pg_catalog.setval($1::pg_catalog.regclass,"
                "   $2::pg_catalog.int8, true)::pg_catalog.text END"
                " END", 3, q, err);
            if (rc == 0 && moved)
                res->sequences++;
            else if (rc == 0 && q[2] != NULL)
                s_note(res, "sequence %s was used since the migration (it is "
                       "not at %s any more): left where it is",
                       fl_pg_value(&r, i, 3), q[2]);
            free(moved);
        }
        if (rc == 0)
            rc = fl_pg_query(pg, &u, "UPDATE flotilla.sequence_backups SET"
                             " restored_at = pg_catalog.clock_timestamp()"
                             " WHERE id = $1::pg_catalog.int8", 1, q + 3,
                             err);
        fl_pg_result_release(&u);
    }
    fl_pg_result_release(&r);
    return rc;
}

/*
 * After the restore (with foreign keys off): every validated foreign key
 * with a restored table on either side must hold (keys.h).
 */
static int
s_check_keys(fl_pg_t *pg, const fl_restore_t *res, fl_error_t *err)
{
    json_t *a = NULL;
    char *names = NULL;
    int rc;

    if (res->nrels == 0)
        return 0;
    a = json_array();
    for (size_t i = 0; i < res->nrels; i++)
        json_array_append_new(a, json_string(res->rels[i]));
    names = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    rc = fl_keys_check_restored(pg, names, err);
    free(names);
    return rc;
}

int
fl__restore_backups(fl_pg_t *pg, const fl_restore_opts_t *o,
                    const fl_version_t *version,
                    fl_restore_t *res, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char ver[FL_VERSION_MAX + 1];
    const char *p[2] = {ver, o->target ? o->target : ""};
    int rc = 0;

    snprintf(ver, sizeof(ver), "%s", version->text);
    /*
     * Newest first.  Each table is backed up once per migration, so the
     * order matters only for readability; foreign keys are not checked
     * while session_replication_role is replica.
     */
    rc = fl_pg_query(pg, &r,
        "SELECT id, source_schema, source_table, kind, location, dump_sha256,"
        " match, pruned_at::pg_catalog.text,"
        " pg_catalog.array_to_json(columns)::pg_catalog.text,"
        " pg_catalog.array_to_json(text_columns)::pg_catalog.text,"
        " pg_catalog.array_to_json(key_columns)::pg_catalog.text"
        " FROM flotilla.backups b WHERE" S_TO_RESTORE("b")
        "ORDER BY id DESC", 2, p, err);
    for (size_t i = 0; rc == 0 && i < r.nrows; i++) {
        s_bk b;
        memset(&b, 0, sizeof(b));
        b.version = ver;
        b.target = p[1];
        b.id = fl_strdup_or_null(fl_pg_value(&r, i, 0));
        b.schema = fl_strdup_or_null(fl_pg_value(&r, i, 1));
        b.table = fl_strdup_or_null(fl_pg_value(&r, i, 2));
        b.kind = fl_strdup_or_null(fl_pg_value(&r, i, 3));
        b.location = fl_strdup_or_null(fl_pg_value(&r, i, 4));
        b.sha = fl_strdup_or_null(fl_pg_value(&r, i, 5));
        b.match = fl_strdup_or_null(fl_pg_value(&r, i, 6));
        b.pruned_at = fl_strdup_or_null(fl_pg_value(&r, i, 7));
        b.columns = json_loads(fl_pg_value(&r, i, 8), 0, NULL);
        b.text = json_loads(fl_pg_value(&r, i, 9), 0, NULL);
        b.keys = json_loads(fl_pg_value(&r, i, 10), 0, NULL);
        if (!json_is_array(b.columns) || !json_is_array(b.keys)) {
            rc = FL_ERR(err, FL_EFAIL, "backup %s of table %s.%s has no "
                        "column list in the ledger", b.id, b.schema, b.table);
        } else if ((rc = s_in_scope(b.target, b.schema, "backup", b.id,
                                    err)) == 0) {
            if (!json_is_array(b.text)) {
                json_decref(b.text);
                b.text = json_array();
            }
            rc = s_restore_one(pg, o, &b, res, err);
        }
        s_bk_release(&b);
    }
    fl_pg_result_release(&r);
    if (rc == 0)
        rc = s_check_keys(pg, res, err);
    if (rc == 0)
        rc = s_restore_sequences(pg, o, ver, res, err);
    if (rc == 0)
        rc = s_unquiet(pg, res, err);
    if (rc == 0 && res->replica) {
        rc = s_exec(pg, "SELECT pg_catalog.set_config("
                    "'session_replication_role', 'origin', true)", err);
        res->replica = 0;
    }
    return rc;
}

void
fl__restore_release(fl_restore_t *res)
{
    for (size_t i = 0; i < res->nnotes; i++)
        free(res->notes[i]);
    for (size_t i = 0; i < res->nfiles; i++)
        free(res->files[i]);
    for (size_t i = 0; i < res->nkept; i++)
        free(res->kept[i]);
    fl_free(&res->kept);
    for (size_t i = 0; i < res->nrels; i++)
        free(res->rels[i]);
    fl_free(&res->rels);
    for (size_t i = 0; i < res->nmarks; i++)
        free(res->marks[i]);
    fl_free(&res->marks);
    res->nmarks = 0;
    fl_free(&res->notes);
    fl_free(&res->files);
    memset(res, 0, sizeof(*res));
}

/* ---- pruning -------------------------------------------------------- */

void
fl_prune_result_release(fl_prune_result_t *r)
{
    for (size_t i = 0; i < r->nproblems; i++)
        free(r->problems[i]);
    fl_free(&r->problems);
    memset(r, 0, sizeof(*r));
}

static void
s_problem(fl_prune_result_t *r, const char *path, const char *why)
{
    r->problems = fl_reallocarray(r->problems, r->nproblems + 1,
                                  sizeof(char *));
    r->problems[r->nproblems++] = fl_asprintf("%s: %s", path, why);
}

/* Removes the file of backup id at path, only if it is what we wrote. */
static void
s_remove_file(const char *path, const char *id, fl_prune_result_t *r)
{
    fl_error_t e = FL_ERROR_INIT;
    struct stat st;
    int fd = -1;

    if (lstat(path, &st) != 0 && errno == ENOENT)
        s_problem(r, path, "no such file (moved? see --backup-dir)");
    else if (fl__backup_file_open(path, id, &fd, &e) != 0)
        s_problem(r, path, e.message);
    else {
        close(fd);
        if (unlink(path) != 0)
            s_problem(r, path, strerror(errno));
    }
    fl_error_clear(&e);
}

const char fl_backups_leftover_sql[] =
    "(b.pruned_at IS NULL AND b.released_at IS NULL AND"
    " (b.statement_index OPERATOR(pg_catalog.=) -3 OR NOT "
    S_IN_EFFECT("b") "))";

/*
 * Releases backup id: drops its tables, then marks it pruned (forget 0:
 * its migration is in effect, and the mark makes a rollback of it refuse
 * rather than lose the data) or deletes its row (forget 1: nothing will
 * restore it), in one transaction; its file is removed after COMMIT.
 */
static int
s_prune_one(fl_pg_t *pg, const char *id, int dump, const char *location,
            int forget, const char *relocate_dir, int dry_run,
            fl_prune_result_t *out, fl_error_t *err)
{
    const char *q[1] = {id};
    fl_pg_result_t u = FL_PG_RESULT_INIT;
    int rc;

    /* Only ever interpolated as a table name's suffix: digits only. */
    if (*id == '\0' || strspn(id, "0123456789") != strlen(id))
        return FL_ERR(err, FL_EFAIL, "backup id \"%s\" in the ledger is not "
                      "a number", id);
    out->pruned++;
    out->forgotten += forget != 0;
    if (dry_run) {
        /* What could not be removed is said now, not after. */
        if (dump) {
            char *path = fl__backup_locate(location, relocate_dir);
            fl_error_t e = FL_ERROR_INIT;
            int fd = -1;
            if (fl__backup_file_open(path, id, &fd, &e) != 0)
                s_problem(out, path, e.message);
            else
                close(fd);
            fl_error_clear(&e);
            free(path);
        }
        return 0;
    }
    /* One transaction per backup: the drops and the mark go together. */
    rc = fl_pg_commandf(pg, err, "BEGIN");
    if (rc == 0)
        rc = fl_pg_commandf(pg, err, "DROP TABLE IF EXISTS"
                            " flotilla_backup.b%s, flotilla_backup.a%s,"
                            " flotilla_backup.c%s, flotilla_backup.k%s",
                            id, id, id, id);
    if (rc == 0)
        rc = fl_pg_query(pg, &u, forget
                         ? "DELETE FROM flotilla.backups WHERE id"
                           " OPERATOR(pg_catalog.=) $1::pg_catalog.int8"
                         : "UPDATE flotilla.backups SET pruned_at ="
                           " pg_catalog.now() WHERE id OPERATOR(pg_catalog.=)"
                           " $1::pg_catalog.int8", 1, q, err);
    fl_pg_result_release(&u);
    if (rc == 0)
        rc = fl_pg_commandf(pg, err, "COMMIT");
    if (rc != 0) {
        fl_error_t ignore = FL_ERROR_INIT;
        /* The first error is the one to report; the rollback's is noise. */
        FL_IGNORE(fl_pg_commandf(pg, &ignore, "ROLLBACK"));
        fl_error_clear(&ignore);
        return rc;
    }
    /* The mark is committed first: a file left behind is only litter. */
    if (dump) {
        char *path = fl__backup_locate(location, relocate_dir);
        s_remove_file(path, id, out);
        free(path);
    }
    return 0;
}

/* Prunes every row of r: id, kind, location, forget ("t" or "f"). */
static int
s_prune_rows(fl_pg_t *pg, const fl_pg_result_t *r, const char *relocate_dir,
             int dry_run, fl_prune_result_t *out, fl_error_t *err)
{
    int rc = 0;

    for (size_t i = 0; rc == 0 && i < r->nrows; i++)
        rc = s_prune_one(pg, fl_pg_value(r, i, 0),
                         strcmp(fl_pg_value(r, i, 1), "dump") == 0,
                         fl_pg_value(r, i, 2),
                         strcmp(fl_pg_value(r, i, 3), "t") == 0, relocate_dir,
                         dry_run, out, err);
    return rc;
}

int
fl_backups_prune(fl_pg_t *pg, const char *target, int64_t older_ms,
                 const char *relocate_dir, int dry_run, fl_prune_result_t *out,
                 fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char ms[24];
    const char *p[2] = {ms, target};
    int rc;

    memset(out, 0, sizeof(*out));
    snprintf(ms, sizeof(ms), "%lld", (long long)older_ms);
    rc = fl_pg_query(pg, &r,
        "SELECT id, kind, location, 'f' FROM flotilla.backups"
        " WHERE pruned_at IS NULL AND released_at IS NULL"
        " AND created_at OPERATOR(pg_catalog.<) (pg_catalog.now()"
        " OPERATOR(pg_catalog.-) pg_catalog.make_interval(secs =>"
        " $1::pg_catalog.int8 OPERATOR(pg_catalog./) 1000.0))"
        " AND ($2::pg_catalog.text IS NULL OR target OPERATOR(pg_catalog.=) $2)"
        " ORDER BY id", 2, p, err);
    if (rc == 0)
        rc = s_prune_rows(pg, &r, relocate_dir, dry_run, out, err);
    fl_pg_result_release(&r);
    return rc;
}

int
fl_backups_prune_leftovers(fl_pg_t *pg, const char *target,
                           const char *relocate_dir, int dry_run,
                           fl_prune_result_t *out, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    const char *p[1] = {target};
    fl_buf_t sql = FL_BUF_INIT(0);
    int rc;

    memset(out, 0, sizeof(*out));
    fl_buf_addf(&sql, "SELECT b.id, b.kind, b.location, 't' FROM"
                " flotilla.backups b WHERE %s AND ($1::pg_catalog.text IS NULL"
                " OR b.target OPERATOR(pg_catalog.=) $1) ORDER BY b.id",
                fl_backups_leftover_sql);
    rc = fl_pg_query(pg, &r, fl_buf_str(&sql), 1, p, err);
    if (rc == 0)
        rc = s_prune_rows(pg, &r, relocate_dir, dry_run, out, err);
    fl_pg_result_release(&r);
    fl_buf_release(&sql);
    return rc;
}

int
fl_backups_prune_id(fl_pg_t *pg, const char *target, int64_t id,
                    const char *relocate_dir, int dry_run,
                    fl_prune_result_t *out, fl_error_t *err)
{
    fl_pg_result_t r = FL_PG_RESULT_INIT;
    char idtext[24];
    const char *p[2] = {idtext, target};
    int rc;

    memset(out, 0, sizeof(*out));
    snprintf(idtext, sizeof(idtext), "%lld", (long long)id);
    rc = fl_pg_query(pg, &r,
        "SELECT b.id, b.kind, b.location, CASE WHEN " S_IN_EFFECT("b")
        " THEN 'f' ELSE 't' END, b.target, b.version::pg_catalog.text,"
        " COALESCE(pg_catalog.to_char(b.pruned_at, 'YYYY-MM-DD HH24:MI:SS'),"
        " ''), COALESCE(pg_catalog.to_char(b.released_at,"
        " 'YYYY-MM-DD HH24:MI:SS'), '')"
        " FROM flotilla.backups b WHERE b.id OPERATOR(pg_catalog.=)"
        " $1::pg_catalog.int8 AND ($2::pg_catalog.text IS NULL"
        " OR b.target OPERATOR(pg_catalog.=) $2)", 2, p, err);
    if (rc != 0)
        goto cleanup;
    if (r.nrows == 0) {
        rc = FL_ERR(err, FL_ENOTFOUND, "backup %lld does not exist in the "
                    "ledger of database \"%s\"%s%s%s", (long long)id,
                    fl_pg_describe(pg), target && *target ? " (schema \"" : "",
                    target && *target ? target : "",
                    target && *target ? "\")" : "");
        fl_error_set_hint(err, "flotilla backups list shows the ids of the "
                               "backups there are.");
        goto cleanup;
    }
    if (*fl_pg_value(&r, 0, 6) || *fl_pg_value(&r, 0, 7)) {
        /*
         * Its tables and file are gone already; a pruned backup of a
         * migration still in effect keeps its row, so that a rollback of
         * it refuses rather than lose the data.
         */
        if (strcmp(fl_pg_value(&r, 0, 3), "f") == 0) {
            rc = FL_ERR(err, FL_ECONFLICT, "backup %lld was already %s on %s",
                        (long long)id, *fl_pg_value(&r, 0, 6) ? "pruned"
                                                               : "released",
                        *fl_pg_value(&r, 0, 6) ? fl_pg_value(&r, 0, 6)
                                               : fl_pg_value(&r, 0, 7));
            fl_error_set_detail(err, "Its row stays while migration %s is "
                                     "applied, so that a rollback of it "
                                     "refuses rather than lose the data.",
                                fl_pg_value(&r, 0, 5));
            goto cleanup;
        }
    }
    rc = s_prune_rows(pg, &r, relocate_dir, dry_run, out, err);
cleanup:
    fl_pg_result_release(&r);
    return rc;
}
