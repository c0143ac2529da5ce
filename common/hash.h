/*
 * hash.h - SHA-256, one-shot and incremental.
 *
 * The only module that includes OpenSSL: libcrypto's SHA-256 uses the
 * CPU's SHA extensions (SHA-NI, ARMv8 SHA2) where present, about five
 * times faster than libsodium's portable C, and SHA-256 is on the hot
 * path of bundle verification (migration checksums and the body digest).
 *
 * Hashing cannot fail for a valid call: a failure inside libcrypto (it
 * can only be out of memory) prints a message and aborts, like the
 * allocation wrappers in alloc.h.  Distinct fl_hash_t objects may be
 * used from distinct threads; one object is not thread safe.
 */
#ifndef FL_COMMON_HASH_H
#define FL_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

#define FL_HASH_SHA256_BYTES 32

/* An incremental SHA-256 computation. */
typedef struct fl_hash fl_hash_t;

/* Writes SHA-256(data[0..len)) to out.  data may be NULL when len is 0. */
void fl_hash_sha256(unsigned char out[FL_HASH_SHA256_BYTES], const void *data,
                    size_t len);

/* Returns a new SHA-256 computation, owned by the caller (fl_hash_destroy). */
fl_hash_t *fl_hash_sha256_new(void);

/* Feeds data[0..len) to h.  data may be NULL when len is 0. */
void fl_hash_update(fl_hash_t *h, const void *data, size_t len);

/*
 * Writes the digest of everything fed to h to out and starts h again
 * from empty, so one object can hash several messages in turn.
 */
void fl_hash_final(fl_hash_t *h, unsigned char out[FL_HASH_SHA256_BYTES]);

/* Frees *h and sets it to NULL.  Accepts NULL and *h == NULL. */
void fl_hash_destroy(fl_hash_t **h);

/*
 * A uniformly distributed number in [0, upper) from the system's random
 * source (libsodium's randombytes_uniform): no seed to share, no modulo
 * bias.  upper 0 gives 0.
 */
uint32_t fl_random_uniform(uint32_t upper);

#endif
