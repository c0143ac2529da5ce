/*
 * file.h - reading a whole file safely: a regular file, not reached
 * through a symbolic link at its last component, of at most a given
 * size, checked on the open descriptor.  Stateless and thread safe.
 */
#ifndef FL_COMMON_FILE_H
#define FL_COMMON_FILE_H

#include <stddef.h>

#include "common/error.h"

/*
 * Reads the file at path into *data (new; a NUL follows the len bytes, so
 * text can be used as a string).  what names the file in messages
 * ("certificate").  FL_ENOTFOUND when it does not exist; FL_EINVAL when
 * it is a link, not a regular file, or larger than max; FL_EIO otherwise.
 */
int fl_file_read(unsigned char **data, size_t *len, const char *path,
                 size_t max, const char *what, fl_error_t *err) FL_NODISCARD;

/*
 * Whether path, a file found in directory dir (or below it), may be read
 * as one of dir's files: a regular file, or a symbolic link to one whose
 * real path lies inside dir's.  0 when it may; FL_EINVAL naming path (as
 * what: "migration file") and why otherwise: a link that leads out of
 * dir, or to nothing, or not a regular file (a FIFO, a device: never
 * opened); FL_EIO when it cannot be looked at.
 */
int fl_file_within(const char *dir, const char *path, const char *what,
                   fl_error_t *err) FL_NODISCARD;

/*
 * The same for a directory: path, found in dir, is a directory, or a
 * symbolic link to one whose real path lies inside dir's (its files are
 * then read through it: the link is checked here, as fl_file_within()
 * checks only a file's last component).  Errors as fl_file_within()'s.
 */
int fl_dir_within(const char *dir, const char *path, const char *what,
                  fl_error_t *err) FL_NODISCARD;

#endif
