/*
 * backup.c - backups before destructive statements, restore on rollback,
 * and the schema fingerprint.
 *
 * A backup is a copy of the table in schema flotilla_backup (named
 * "b<id>_<table>"), taken inside the migration's transaction after the
 * table is locked, so it holds exactly the rows the statement is about to
 * destroy and disappears if the migration rolls back.  Its checksum is
 * order-independent: the sum of a 64-bit hash of each row's text, over
 * the columns as they were listed at backup time, so a column that `down`
 * re-creates at another position still compares equal.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/pipeline_internal.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/hash.h"

/* Builds "sum of row hashes" over cols of relation alias t. */
static char *
s_checksum_sql(const char *from, const char *cols_t, const char *where)
{
    return fl_asprintf("SELECT count(*), coalesce(sum(hashtextextended("
                       "ROW(%s)::text, 0)::numeric), 0)::text FROM %s t%s%s",
                       cols_t, from, where ? " WHERE " : "", where ? where : "");
}

/* "t.a, t.b" (alias NULL: "a, b"): column col of each row, quoted. */
static char *
s_cols(fl_pg_t *pg, const fl_pg_result_t *cols, size_t col, const char *alias)
{
    fl_buf_t b = FL_BUF_INIT(0);

    for (size_t i = 0; i < cols->nrows; i++) {
        char *q = fl_pg_quote_ident(pg, fl_pg_value(cols, i, col));
        fl_buf_printf(&b, "%s%s%s%s", i ? ", " : "", alias ? alias : "",
                      alias ? "." : "", q);
        free(q);
    }
    return fl_buf_detach(&b);
}

/* A table name usable in a file name: [A-Za-z0-9_], at most 50. */
static char *
s_file_safe(const char *name)
{
    char *s = fl_strndup(name, 50);

    for (char *c = s; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '_')
            *c = '_';
    return s;
}

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

/* Writes the rows of qt (columns cols) to path; its SHA-256 into sha. */
static int
s_dump(fl_pg_t *pg, const char *qt, const char *cols, const char *dir,
       const char *path, char *sha, fl_error_t *err)
{
    s_file_io io = {-1, path, NULL};
    unsigned char digest[FL_HASH_SHA256_BYTES];
    char *sql = NULL;
    int rc = 0;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return FL_ERR(err, FL_EIO, "could not create backup directory \"%s\": "
                      "%s", dir, strerror(errno));
    io.fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (io.fd < 0)
        return FL_ERR(err, FL_EIO, "could not create backup file \"%s\": %s",
                      path, strerror(errno));
    io.hash = fl_hash_sha256_new();
    sql = fl_asprintf("COPY (SELECT %s FROM %s) TO STDOUT (FORMAT binary)",
                      cols, qt);
    rc = fl_pg_copy_out(pg, sql, s_write_chunk, &io, err);
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
    free(sql);
    return rc;
}

/* SHA-256 of the file at path into sha (hex). */
static int
s_file_sha256(const char *path, char *sha, fl_error_t *err)
{
    unsigned char digest[FL_HASH_SHA256_BYTES];
    char buf[65536];
    fl_hash_t *h = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t n;

    if (fd < 0)
        return FL_ERR(err, FL_EIO, "could not open backup file \"%s\": %s",
                      path, strerror(errno));
    h = fl_hash_sha256_new();
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        fl_hash_update(h, buf, (size_t)n);
    fl_hash_final(h, digest);
    fl_hash_destroy(&h);
    close(fd);
    if (n < 0)
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

/*
 * Loads a dump-file backup into a temporary table (dropped at commit) and
 * returns its name, so the restore can treat it as a backup table.
 */
static int
s_load_dump(fl_pg_t *pg, const char *id, const char *path, const char *sha,
            char **table, fl_error_t *err)
{
    fl_pg_result_t cols = FL_PG_RESULT_INIT;
    fl_buf_t def = FL_BUF_INIT(0);
    char now[2 * FL_HASH_SHA256_BYTES + 1];
    const char *p[1] = {id};
    s_file_io io = {-1, path, NULL};
    char *sql = NULL;
    int rc;

    *table = NULL;
    if ((rc = s_file_sha256(path, now, err)) != 0)
        return rc;
    if (sha == NULL || strcmp(now, sha) != 0) {
        FL_ERR(err, FL_EFAIL, "backup file \"%s\" has changed since it was "
               "written", path);
        fl_error_set_detail(err, "Its SHA-256 is %s; the ledger recorded %s.",
                            now, sha ? sha : "none");
        return FL_EFAIL;
    }
    rc = fl_pg_query(pg, &cols,
        "SELECT quote_ident(c), t FROM flotilla.backups b,"
        " unnest(b.columns, b.column_types) WITH ORDINALITY AS u(c, t, n)"
        " WHERE b.id = $1 ORDER BY n", 1, p, err);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < cols.nrows; i++)
        (void)fl_buf_printf(&def, "%s%s %s", i ? ", " : "",
                            fl_pg_value(&cols, i, 0), fl_pg_value(&cols, i, 1));
    *table = fl_asprintf("pg_temp.flotilla_restore_%s", id);
    rc = fl_pg_execf(pg, err, "CREATE TEMP TABLE flotilla_restore_%s (%s) ON "
                     "COMMIT DROP", id, fl_buf_str(&def));
    if (rc == 0) {
        io.fd = open(path, O_RDONLY | O_CLOEXEC);
        if (io.fd < 0) {
            rc = FL_ERR(err, FL_EIO, "could not open backup file \"%s\": %s",
                        path, strerror(errno));
        } else {
            sql = fl_asprintf("COPY %s FROM STDIN (FORMAT binary)", *table);
            rc = fl_pg_copy_in(pg, sql, s_read_chunk, &io, err);
            close(io.fd);
        }
    }
    if (rc != 0)
        fl_free(table);
    free(sql);
    fl_buf_release(&def);
    fl_pg_result_release(&cols);
    return rc;
}

int
fl__backup_table(fl_pg_t *pg, int64_t version, const char *bundle_id,
                 int stmt_index, const char *schema, const char *table,
                 const char *lockmode, const char *dump_dir,
                 int64_t dump_above, char **location, fl_error_t *err)
{
    char *qt = fl__qualify(pg, schema, table);
    fl_pg_result_t rel = FL_PG_RESULT_INIT, cols = FL_PG_RESULT_INIT,
                   sum = FL_PG_RESULT_INIT;
    char *id = NULL, *name = NULL, *qname = NULL, *collist = NULL,
         *collist_t = NULL, *sql = NULL, *size = NULL;
    char sha[2 * FL_HASH_SHA256_BYTES + 1] = "";
    const char *params[1] = {qt};
    int dump = 0;
    int rc = 0;

    *location = NULL;
    rc = fl_pg_query(pg, &rel,
        "SELECT n.nspname, c.relname, c.oid FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid = to_regclass($1)", 1, params, err);
    if (rc != 0)
        goto cleanup;
    if (rel.nrows == 0) {
        rc = FL_ERR(err, FL_ENOTFOUND, "could not back up table %s: it does "
                    "not exist", qt);
        goto cleanup;
    }
    params[0] = fl_pg_value(&rel, 0, 2);
    rc = fl_pg_query(pg, &cols,
        "SELECT attname FROM pg_attribute WHERE attrelid = $1"
        " AND attnum > 0 AND NOT attisdropped AND attgenerated = ''"
        " ORDER BY attnum", 1, params, err);
    if (rc != 0)
        goto cleanup;
    if ((rc = fl_pg_execf(pg, err, "LOCK TABLE %s IN %s MODE", qt, lockmode)) != 0)
        goto cleanup;
    rc = fl_pg_query_value(pg, &id,
        "SELECT nextval(pg_get_serial_sequence('flotilla.backups', 'id'))",
        0, NULL, err);
    if (rc != 0)
        goto cleanup;
    collist = s_cols(pg, &cols, 0, NULL);
    collist_t = s_cols(pg, &cols, 0, "t");
    if (dump_dir && dump_above > 0) {
        rc = fl_pg_query_value(pg, &size, "SELECT pg_total_relation_size($1)",
                               1, params, err);
        if (rc != 0)
            goto cleanup;
        dump = strtoll(size, NULL, 10) > dump_above;
    }
    if (dump) {
        /*
         * Too large to copy inside the database: the rows go to a file,
         * in COPY's binary format, with its SHA-256.  The table is locked
         * against writers, so the checksum and the copy see the same rows.
         */
        char *safe = s_file_safe(fl_pg_value(&rel, 0, 1));
        name = fl_asprintf("%s/b%s_%s.copy", dump_dir, id, safe);
        free(safe);
        qname = fl_strdup(name);
        sql = s_checksum_sql(qt, collist_t, NULL);
        if ((rc = fl_pg_query(pg, &sum, sql, 0, NULL, err)) != 0 ||
            (rc = s_dump(pg, qt, collist, dump_dir, name, sha, err)) != 0)
            goto cleanup;
    } else {
        name = fl_asprintf("b%s_%.50s", id, fl_pg_value(&rel, 0, 1));
        qname = fl__qualify(pg, "flotilla_backup", name);
        rc = fl_pg_execf(pg, err, "CREATE TABLE %s AS SELECT %s FROM %s", qname,
                         collist, qt);
        if (rc != 0)
            goto cleanup;
        sql = s_checksum_sql(qname, collist_t, NULL);
        if ((rc = fl_pg_query(pg, &sum, sql, 0, NULL, err)) != 0)
            goto cleanup;
    }
    {
        char ver[24], idx[16];
        const char *p[12];
        fl_pg_result_t ins = FL_PG_RESULT_INIT;

        snprintf(ver, sizeof(ver), "%lld", (long long)version);
        snprintf(idx, sizeof(idx), "%d", stmt_index);
        p[0] = id; p[1] = ver; p[2] = bundle_id; p[3] = idx;
        p[4] = fl_pg_value(&rel, 0, 0); p[5] = fl_pg_value(&rel, 0, 1);
        p[6] = qname; p[7] = fl_pg_value(&rel, 0, 2);
        p[8] = fl_pg_value(&sum, 0, 0); p[9] = fl_pg_value(&sum, 0, 1);
        p[10] = dump ? "dump" : "table";
        p[11] = dump ? sha : NULL;
        /* Column names, types and keys come from the catalog, unquoted. */
        rc = fl_pg_query(pg, &ins,
            "INSERT INTO flotilla.backups (id, version, bundle_id,"
            " statement_index, source_schema, source_table, kind, location,"
            " columns, column_types, key_columns, row_count, checksum,"
            " dump_sha256) VALUES"
            " ($1, $2, $3, $4, $5, $6, $11, $7,"
            "  ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = $8"
            "   AND attnum > 0 AND NOT attisdropped AND attgenerated = ''"
            "   ORDER BY attnum),"
            "  ARRAY(SELECT format_type(atttypid, atttypmod) FROM pg_attribute"
            "   WHERE attrelid = $8 AND attnum > 0 AND NOT attisdropped"
            "   AND attgenerated = '' ORDER BY attnum),"
            "  ARRAY(SELECT a.attname::text FROM pg_index i JOIN pg_attribute a"
            "   ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
            "   WHERE i.indrelid = $8 AND i.indisprimary"
            "   ORDER BY array_position(i.indkey::int2[], a.attnum)),"
            "  $9, $10, $12)", 12, p, err);
        fl_pg_result_release(&ins);
    }
    if (rc == 0)
        *location = fl_asprintf("%s (%s rows)", qname, fl_pg_value(&sum, 0, 0));
cleanup:
    if (rc != 0)
        fl_error_prefix(err, "could not back up table %s: ", qt);
    fl_pg_result_release(&rel);
    fl_pg_result_release(&cols);
    fl_pg_result_release(&sum);
    free(id);
    free(name);
    free(qname);
    free(collist);
    free(collist_t);
    free(sql);
    free(size);
    free(qt);
    return rc;
}

/* Restores one backup row; see fl__restore_backups. */
static int
s_restore_one(fl_pg_t *pg, const char *backup_id, fl_error_t *err)
{
    fl_pg_result_t b = FL_PG_RESULT_INIT, cols = FL_PG_RESULT_INIT,
                   keys = FL_PG_RESULT_INIT, sum = FL_PG_RESULT_INIT;
    const char *p[1] = {backup_id};
    char *qt = NULL, *all = NULL, *all_t = NULL, *all_b = NULL, *sql = NULL,
         *where = NULL, *from = NULL;
    fl_buf_t set = FL_BUF_INIT(0), on = FL_BUF_INIT(0);
    int rc = 0;

    rc = fl_pg_query(pg, &b,
        "SELECT source_schema, source_table, location, row_count::text, checksum,"
        " pruned_at::text, kind, dump_sha256 FROM flotilla.backups"
        " WHERE id = $1", 1, p, err);
    if (rc != 0)
        goto cleanup;
    if (fl_pg_value(&b, 0, 5) != NULL) {
        rc = FL_ERR(err, FL_EFAIL, "backup %s of table %s.%s was pruned on %s",
                    fl_pg_value(&b, 0, 2), fl_pg_value(&b, 0, 0),
                    fl_pg_value(&b, 0, 1), fl_pg_value(&b, 0, 5));
        fl_error_set_detail(err, "Rolling back would run down without the "
                                 "data it needs; nothing was rolled back.");
        fl_error_set_hint(err, "Restore the data by hand, or write a new "
                               "migration instead of rolling back.");
        goto cleanup;
    }
    if (strcmp(fl_pg_value(&b, 0, 6), "dump") == 0) {
        if ((rc = s_load_dump(pg, backup_id, fl_pg_value(&b, 0, 2),
                              fl_pg_value(&b, 0, 7), &from, err)) != 0)
            goto cleanup;
    } else {
        from = fl_strdup(fl_pg_value(&b, 0, 2));
    }
    qt = fl__qualify(pg, fl_pg_value(&b, 0, 0), fl_pg_value(&b, 0, 1));
    /* Backed-up columns, with whether each exists in the table now. */
    rc = fl_pg_query(pg, &cols,
        "SELECT c, EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid ="
        "   to_regclass(quote_ident(b.source_schema) || '.' ||"
        "   quote_ident(b.source_table)) AND attname = c AND attnum > 0"
        "   AND NOT attisdropped)"
        " FROM flotilla.backups b, unnest(b.columns) WITH ORDINALITY AS u(c, n)"
        " WHERE b.id = $1 ORDER BY n", 1, p, err);
    if (rc == 0)
        rc = fl_pg_query(pg, &keys,
            "SELECT k FROM flotilla.backups b, unnest(b.key_columns)"
            " WITH ORDINALITY AS u(k, n) WHERE b.id = $1 ORDER BY n", 1, p, err);
    if (rc != 0)
        goto cleanup;
    {
        char *v = NULL;
        const char *q[1] = {qt};
        rc = fl_pg_query_value(pg, &v, "SELECT to_regclass($1) IS NOT NULL", 1,
                               q, err);
        if (rc == 0 && (v == NULL || strcmp(v, "t") != 0))
            rc = FL_ERR(err, FL_ENOTFOUND, "table %s does not exist after "
                        "down ran", qt);
        free(v);
        if (rc != 0) {
            fl_error_set_hint(err, "The migration's down section must "
                                   "re-create the table it dropped.");
            goto cleanup;
        }
    }
    for (size_t i = 0; i < cols.nrows; i++) {
        if (strcmp(fl_pg_value(&cols, i, 1), "t") != 0) {
            rc = FL_ERR(err, FL_ENOTFOUND, "column \"%s\" of table %s does not "
                        "exist after down ran", fl_pg_value(&cols, i, 0), qt);
            fl_error_set_hint(err, "The migration's down section must "
                                   "re-create the columns it dropped.");
            goto cleanup;
        }
    }
    all = s_cols(pg, &cols, 0, NULL);
    all_t = s_cols(pg, &cols, 0, "t");
    all_b = s_cols(pg, &cols, 0, "b");
    if (keys.nrows > 0) {
        /* By primary key: put back old values, re-insert missing rows. */
        for (size_t i = 0; i < keys.nrows; i++) {
            char *k = fl_pg_quote_ident(pg, fl_pg_value(&keys, i, 0));
            fl_buf_printf(&on, "%st.%s = b.%s", i ? " AND " : "", k, k);
            free(k);
        }
        for (size_t i = 0; i < cols.nrows; i++) {
            int is_key = 0;
            for (size_t j = 0; j < keys.nrows; j++)
                is_key |= strcmp(fl_pg_value(&cols, i, 0),
                                 fl_pg_value(&keys, j, 0)) == 0;
            if (!is_key) {
                char *c = fl_pg_quote_ident(pg, fl_pg_value(&cols, i, 0));
                fl_buf_printf(&set, "%s%s = b.%s", set.len ? ", " : "", c, c);
                free(c);
            }
        }
        if (set.len) {
            rc = fl_pg_execf(pg, err, "UPDATE %s t SET %s FROM %s b WHERE %s",
                             qt, fl_buf_str(&set), from,
                             fl_buf_str(&on));
            if (rc != 0)
                goto cleanup;
        }
        rc = fl_pg_execf(pg, err, "INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE"
                         " SELECT %s FROM %s b WHERE NOT EXISTS (SELECT 1 FROM"
                         " %s t WHERE %s)", qt, all, all_b,
                         from, qt, fl_buf_str(&on));
        if (rc != 0)
            goto cleanup;
        where = fl_asprintf("EXISTS (SELECT 1 FROM %s b WHERE %s)",
                            from, fl_buf_str(&on));
    } else {
        /* No key: the table's rows become the backed-up rows. */
        rc = fl_pg_execf(pg, err, "DELETE FROM %s; INSERT INTO %s (%s)"
                         " OVERRIDING SYSTEM VALUE SELECT %s FROM %s",
                         qt, qt, all, all, from);
        if (rc != 0)
            goto cleanup;
    }
    sql = s_checksum_sql(qt, all_t, where);
    if ((rc = fl_pg_query(pg, &sum, sql, 0, NULL, err)) != 0)
        goto cleanup;
    if (strcmp(fl_pg_value(&sum, 0, 0), fl_pg_value(&b, 0, 3)) != 0 ||
        strcmp(fl_pg_value(&sum, 0, 1), fl_pg_value(&b, 0, 4)) != 0) {
        rc = FL_ERR(err, FL_EFAIL, "restored rows of table %s do not match "
                    "the backup", qt);
        fl_error_set_detail(err, "Backup %s holds %s rows with checksum %s; "
                            "the table now has %s rows with checksum %s.",
                            from, fl_pg_value(&b, 0, 3),
                            fl_pg_value(&b, 0, 4), fl_pg_value(&sum, 0, 0),
                            fl_pg_value(&sum, 0, 1));
        fl_error_set_hint(err, "Nothing was rolled back.  Check that down "
                               "re-creates the columns with their types; the "
                               "backup table is kept.");
        goto cleanup;
    }
    rc = fl_pg_execf(pg, err, "UPDATE flotilla.backups SET restored_at ="
                     " clock_timestamp() WHERE id = %s", backup_id);
cleanup:
    fl_buf_release(&set);
    fl_buf_release(&on);
    fl_pg_result_release(&b);
    fl_pg_result_release(&cols);
    fl_pg_result_release(&keys);
    fl_pg_result_release(&sum);
    free(qt);
    free(all);
    free(all_t);
    free(all_b);
    free(sql);
    free(where);
    free(from);
    return rc;
}

int
fl__restore_backups(fl_pg_t *pg, int64_t version, int *restored,
                    fl_error_t *err)
{
    fl_pg_result_t ids = FL_PG_RESULT_INIT;
    char ver[24];
    const char *p[1] = {ver};
    int rc = 0;

    *restored = 0;
    snprintf(ver, sizeof(ver), "%lld", (long long)version);
    /*
     * Newest first: when two statements backed up the same table, the
     * oldest copy is the pre-migration state and must be applied last.
     */
    rc = fl_pg_query(pg, &ids,
        "SELECT id FROM flotilla.backups WHERE version = $1"
        " AND restored_at IS NULL ORDER BY id DESC", 1, p, err);
    for (size_t i = 0; rc == 0 && i < ids.nrows; i++) {
        rc = s_restore_one(pg, fl_pg_value(&ids, i, 0), err);
        if (rc == 0)
            (*restored)++;
    }
    fl_pg_result_release(&ids);
    return rc;
}

/*
 * The catalog description of every user schema (not flotilla's own):
 * columns by name with type, default and nullability; constraints;
 * indexes; views.  Columns are listed by name, not position, so a column
 * re-created by `down` at another position changes nothing.
 */
static const char s_fingerprint_sql[] =
    "WITH s AS (SELECT oid, nspname FROM pg_namespace WHERE nspname NOT IN"
    "  ('pg_catalog', 'information_schema', 'flotilla', 'flotilla_backup')"
    "  AND nspname NOT LIKE 'pg\\_toast%' AND nspname NOT LIKE 'pg\\_temp%')"
    " SELECT encode(sha256(convert_to(coalesce(string_agg(x, E'\\n' ORDER BY x),"
    " ''), 'UTF8')), 'hex') FROM ("
    "  SELECT format('column %I.%I.%I %s notnull=%s default=%s', s.nspname,"
    "   c.relname, a.attname, format_type(a.atttypid, a.atttypmod),"
    "   a.attnotnull, pg_get_expr(d.adbin, d.adrelid)) AS x"
    "  FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
    "  JOIN s ON s.oid = c.relnamespace"
    "  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
    "  WHERE a.attnum > 0 AND NOT a.attisdropped"
    "   AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
    "  UNION ALL"
    "  SELECT format('constraint %I.%I %I %s', s.nspname, c.relname, k.conname,"
    "   pg_get_constraintdef(k.oid))"
    "  FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
    "  JOIN s ON s.oid = c.relnamespace"
    "  UNION ALL"
    "  SELECT format('index %s', pg_get_indexdef(i.indexrelid))"
    "  FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
    "  JOIN s ON s.oid = c.relnamespace"
    "  UNION ALL"
    "  SELECT format('view %I.%I %s', s.nspname, c.relname, pg_get_viewdef(c.oid))"
    "  FROM pg_class c JOIN s ON s.oid = c.relnamespace"
    "  WHERE c.relkind IN ('v', 'm')) f";

int
fl__schema_fingerprint(fl_pg_t *pg, char **out, fl_error_t *err)
{
    return fl_pg_query_value(pg, out, s_fingerprint_sql, 0, NULL, err);
}
