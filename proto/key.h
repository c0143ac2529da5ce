/*
 * key.h - Ed25519 release keys: generation, key files, key ids, signing.
 *
 * A key pair lives in two text files (docs/bundles.md):
 *
 *   PREFIX.key  "flotilla-ed25519-secret " + base64 of the 32-byte seed + "\n"
 *               mode 0600, read only through common/secret (0600 check,
 *               libsodium secure memory)
 *   PREFIX.pub  "flotilla-ed25519-public " + base64 of the 32-byte key + "\n"
 *
 * Parsing is strict: exactly that prefix, canonical base64, one optional
 * final newline, nothing else.  The key id, which names a key in bundles,
 * messages and output, is the first 8 bytes of BLAKE2b(public key) in
 * lower-case hex (16 characters).
 *
 * Secret key bytes exist only in sodium_malloc'd memory and are wiped when
 * the key is destroyed.  Functions are thread safe; a fl_key_t may be used
 * from several threads once loaded.
 */
#ifndef FL_PROTO_KEY_H
#define FL_PROTO_KEY_H

#include <stddef.h>

#include "common/error.h"

#define FL_KEY_PUBLIC_BYTES 32
#define FL_KEY_SIGNATURE_BYTES 64
#define FL_KEY_ID_BYTES 8
#define FL_KEY_ID_HEX (2 * FL_KEY_ID_BYTES + 1)

typedef struct fl_key fl_key_t;

/*
 * Generates a key pair and writes PREFIX.key (0600) and PREFIX.pub.  An
 * existing file is never replaced unless force is set (FL_ECONFLICT).
 * Writes the key id to id_out.
 */
int fl_key_generate_files(const char *prefix, int force,
                          char id_out[FL_KEY_ID_HEX],
                          fl_error_t *err) FL_NODISCARD;

/* Loads a secret key file; *out is a new key for fl_key_destroy(). */
int fl_key_load(fl_key_t **out, const char *path, fl_error_t *err) FL_NODISCARD;

/*
 * Derives a key from a 32-byte seed (lent; the caller wipes it).  For
 * tests, fuzzing and benchmarks that need a fixed key; returns a new key.
 */
fl_key_t *fl_key_new_from_seed(const unsigned char seed[32]);

/* Wipes and frees the key and sets *k to NULL; accepts NULL. */
void fl_key_destroy(fl_key_t **k);

/* The key id (16 hex characters), lent for the key's life. */
const char *fl_key_id(const fl_key_t *k);

/* The raw key id bytes, lent for the key's life. */
const unsigned char *fl_key_id_bytes(const fl_key_t *k);

/* The public key bytes, lent for the key's life. */
const unsigned char *fl_key_public(const fl_key_t *k);

/* Signs msg (detached, one-shot Ed25519).  Cannot fail. */
void fl_key_sign(const fl_key_t *k, unsigned char sig[FL_KEY_SIGNATURE_BYTES],
                 const unsigned char *msg, size_t len);

/* Loads a public key file into pk. */
int fl_key_load_public(unsigned char pk[FL_KEY_PUBLIC_BYTES], const char *path,
                       fl_error_t *err) FL_NODISCARD;

/* Computes the key id bytes of a public key. */
void fl_key_id_of(unsigned char id[FL_KEY_ID_BYTES],
                  const unsigned char pk[FL_KEY_PUBLIC_BYTES]);

/* Formats key id bytes as 16 lower-case hex characters. */
void fl_key_id_format(char out[FL_KEY_ID_HEX],
                      const unsigned char id[FL_KEY_ID_BYTES]);

#endif
