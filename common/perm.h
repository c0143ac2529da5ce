/*
 * perm.h - refusing files that another user could change (sshd's
 * StrictModes).
 *
 * A file is only as trustworthy as everyone who can replace it.  A
 * trusted key in a directory that others can write may be swapped for an
 * attacker's key; so may the directory itself if its parent is writable
 * by others, and so on up to /.  fl_perm_check() resolves a path to its
 * real location (following every symbolic link, so a link cannot point
 * the check at one file and the later open at another) and refuses it
 * unless the file and every directory above it are owned by root or the
 * given user and writable by nobody else.  A directory above the file
 * (never the file or directory checked itself) may be writable by others
 * when it has the sticky bit, as /tmp has: there, others cannot rename or
 * remove what they do not own.
 *
 * Ownership by a user's own group does not count as safe: group-writable
 * is refused, as sshd does.  Stateless and thread safe.
 */
#ifndef FL_COMMON_PERM_H
#define FL_COMMON_PERM_H

#include <sys/stat.h>
#include <sys/types.h>

#include "common/error.h"

/*
 * Checks path as described above.  what names the object in messages
 * ("trust store", "trusted key file").  uid is the user trusted besides
 * root: geteuid() in the product, another id in tests.  On success, and
 * when real_out is not NULL, *real_out is the resolved path (new string):
 * open that one, not path.
 *
 * Errors: FL_ENOTFOUND or FL_EIO when the path cannot be resolved or a
 * part of it cannot be examined; FL_EINVAL when the file or a directory
 * above it is owned by another user or writable by group or others, with
 * the path, its mode and owner in the detail and the chmod or chown to
 * run in the hint.
 */
int fl_perm_check(char **real_out, const char *path, const char *what,
                  uid_t uid, fl_error_t *err) FL_NODISCARD;

/*
 * The owner part of fl_perm_check() for a file already examined: st is
 * its status (fstat of the descriptor that will be read, so nothing can
 * change between the check and the read), path its name for messages.
 * 0 when root or uid owns it; FL_EINVAL otherwise, worded and hinted (the
 * chown to run) as fl_perm_check() words it.
 */
int fl_perm_check_owner(const struct stat *st, const char *path,
                        const char *what, uid_t uid,
                        fl_error_t *err) FL_NODISCARD;

#endif
