/*
 * pipeline_internal.h - helpers shared by the pipeline's modules
 * (pipeline.c, backup.c, checks.c): not part of agent/'s API.
 */
#ifndef FL_AGENT_PIPELINE_INTERNAL_H
#define FL_AGENT_PIPELINE_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "agent/pg.h"
#include "agent/pipeline.h"
#include "lint/facts.h"

/* Milliseconds on a monotonic clock. */
int64_t fl__now_ms(void);

/* "schema.table" quoted for SQL, schema optional; new string. */
char *fl__qualify(fl_pg_t *pg, const char *schema, const char *table);

/*
 * Runs one live check (facts.h) on the connection.  Returns 0 when it
 * holds; FL_EINVAL with a message naming check, table, count and a sample
 * when it does not; another code when the query failed.  When report is
 * not NULL a JSON object describing the check and its result is appended.
 */
int fl__check_run(fl_pg_t *pg, const fl_check_t *check, json_t *report,
                  fl_error_t *err) FL_NODISCARD;

/* A label for a check: "NOT NULL on public.users(email)"; new string. */
char *fl__check_describe(const fl_check_t *check);

/*
 * Backs up table schema.table (schema may be NULL: search_path) before
 * statement stmt_index of migration version, locking it in lockmode
 * first.  A table larger than dump_above bytes (0: never) is written to a
 * file in dump_dir (COPY binary format, SHA-256 recorded) instead of a
 * table in flotilla_backup.  Records a flotilla.backups row and a new
 * description in *location.  Must run inside a transaction.
 */
int fl__backup_table(fl_pg_t *pg, int64_t version, const char *bundle_id,
                     int stmt_index, const char *schema, const char *table,
                     const char *lockmode, const char *dump_dir,
                     int64_t dump_above, char **location,
                     fl_error_t *err) FL_NODISCARD;

/*
 * Restores every backup of version not yet restored, newest first, and
 * proves each by checksum.  Must run inside the rollback's transaction.
 * *restored gets how many tables were restored.
 */
int fl__restore_backups(fl_pg_t *pg, int64_t version, int *restored,
                        fl_error_t *err) FL_NODISCARD;

/* Digest over the catalog of the managed schemas; new hex string. */
int fl__schema_fingerprint(fl_pg_t *pg, char **out, fl_error_t *err) FL_NODISCARD;

#endif
