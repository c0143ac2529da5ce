/*
 * map.h - a hash map from byte-string keys to pointers.
 *
 * The coordinator keeps its agents, targets and commands in memory, keyed
 * by names and ids that peers choose (a target name comes from an agent's
 * configuration, a command id from the wire), so the hash is SipHash-2-4
 * (libsodium's crypto_shorthash) under a random key per map: a peer
 * cannot pick names that all land in one bucket.  Open addressing with
 * linear probing and backward-shift deletion (no tombstones), grown at
 * three quarters full: one 24-byte slot per entry and a little slack,
 * which matters at 100,000 targets.
 *
 * The map stores the key pointer, not a copy: the key must stay valid and
 * unchanged while its entry exists (it usually lives in the value, as a
 * target's name lives in the target).  Values are lent; the map never
 * frees them.
 *
 * Not thread safe; one map belongs to one thread at a time.
 */
#ifndef FL_COMMON_MAP_H
#define FL_COMMON_MAP_H

#include <stddef.h>

typedef struct fl_map fl_map_t;

/* A new empty map, owned by the caller (fl_map_destroy). */
fl_map_t *fl_map_new(void);

/* Frees the map (not the values) and sets *m to NULL; accepts NULL. */
void fl_map_destroy(fl_map_t **m);

/*
 * Inserts value under key (len bytes, lent: see above), or replaces the
 * value of an equal key (the stored key pointer becomes key).  Returns the
 * value replaced, or NULL.  value must not be NULL.
 */
void *fl_map_put(fl_map_t *m, const void *key, size_t len, void *value);

/* The value under key, or NULL. */
void *fl_map_get(const fl_map_t *m, const void *key, size_t len);

/* Removes key's entry and returns its value, or NULL when absent. */
void *fl_map_remove(fl_map_t *m, const void *key, size_t len);

/* The same three for NUL-terminated keys. */
void *fl_map_puts(fl_map_t *m, const char *key, void *value);
void *fl_map_gets(const fl_map_t *m, const char *key);
void *fl_map_removes(fl_map_t *m, const char *key);

size_t fl_map_count(const fl_map_t *m);

/*
 * Iterates: start with *pos = 0; returns the next value and advances *pos,
 * or NULL at the end.  The map must not change during an iteration
 * (collect what to remove first, then remove it).
 */
void *fl_map_next(const fl_map_t *m, size_t *pos);

#endif
