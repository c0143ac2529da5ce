/*
 * journal.h - what the agent daemon keeps on disk, in its state
 * directory, so that a restart (or kill -9) loses nothing:
 *
 *   agent.lock            held (flock) while a daemon runs: one per
 *                         state directory
 *   journal/ID.cmd        a command accepted, before it is acted on
 *   journal/ID.res        its result, before it is sent; the files of
 *                         ID go when the coordinator acknowledges it
 *   journal/ID.cancel     the command was cancelled: carried out again
 *                         after a restart, it is answered cancelled
 *   journal/ID.stop       the daemon's own stop cancelled its run: carried
 *                         out again, the failure that run left in the
 *                         ledger is not the command's answer
 *   bundles/ID.bundle     bundles received, verified, by their verified id
 *
 * Files are written to a temporary name, fsynced (when asked), renamed,
 * and the directory fsynced, so each is there whole or not at all.  IDs
 * are [A-Za-z0-9_-]{1,64}: anything else is refused before it becomes a
 * file name.  Used by the daemon's loop thread only.
 */
#ifndef FL_AGENT_JOURNAL_H
#define FL_AGENT_JOURNAL_H

#include <stddef.h>

#include "common/error.h"

typedef struct fl_journal fl_journal_t;

/*
 * Creates dir (mode 0700) and its subdirectories when missing, locks it,
 * and removes what a kill left (unfinished writes, cancel marks whose
 * command is gone).  FL_EINVAL when dir, a subdirectory or a directory
 * above them is owned by another user or writable by others
 * (fl_perm_check: the daemon trusts what it finds there); FL_ECONFLICT
 * when another daemon holds the lock; FL_EIO otherwise.
 */
int fl_journal_open(fl_journal_t **out, const char *dir, int fsync,
                    fl_error_t *err) FL_NODISCARD;
void fl_journal_close(fl_journal_t **j);

/* 1 when id may name a journal file. */
int fl_journal_valid_id(const char *id);

/* Writes journal/ID.EXT (ext "cmd" or "res"), replacing it. */
int fl_journal_put(fl_journal_t *j, const char *id, const char *ext,
                   const void *data, size_t len, fl_error_t *err) FL_NODISCARD;

/* Reads journal/ID.EXT into *data (new; NULL and FL_ENOTFOUND if none). */
int fl_journal_get(fl_journal_t *j, const char *id, const char *ext,
                   unsigned char **data, size_t *len,
                   fl_error_t *err) FL_NODISCARD;

/* 1 when journal/ID.EXT exists. */
int fl_journal_has(fl_journal_t *j, const char *id, const char *ext);

/* Removes journal/ID.EXT alone. */
void fl_journal_drop(fl_journal_t *j, const char *id, const char *ext);

/*
 * Removes journal/ID.cmd, then journal/ID.cancel, then journal/ID.res,
 * stopping at one it cannot remove (what stays is only sent again).
 */
void fl_journal_remove(fl_journal_t *j, const char *id);

/*
 * Renames journal/ID.EXT, which could not be read back, to
 * journal/ID.EXT.damaged for an operator to look at.  Returns the new
 * path (new), or NULL with err set.
 */
char *fl_journal_set_aside(fl_journal_t *j, const char *id, const char *ext,
                           fl_error_t *err);

/*
 * The ids of every command in the journal (new array of new strings), in
 * the order their commands were written (fl_journal_put stamps each).
 */
int fl_journal_list(fl_journal_t *j, char ***ids, size_t *n,
                    fl_error_t *err) FL_NODISCARD;

/* The same for bundles/ID.bundle. */
int fl_journal_bundle_put(fl_journal_t *j, const char *id, const void *data,
                          size_t len, fl_error_t *err) FL_NODISCARD;
int fl_journal_bundle_get(fl_journal_t *j, const char *id,
                          unsigned char **data, size_t *len,
                          fl_error_t *err) FL_NODISCARD;

#endif
