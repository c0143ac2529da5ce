/*
 * bundle.h - signed migration bundles: build, sign, verify, decode; and the
 * trust store of release keys that verification accepts.
 *
 * A bundle file (docs/bundles.md) is a fixed 22-byte envelope, a msgpack
 * payload and an Ed25519 signature:
 *
 *   0   8  magic "FLOTBNDL"
 *   8   2  format version, big-endian (1)
 *   10  8  signer key id (see key.h)
 *   18  4  payload length P, big-endian
 *   22  P  payload: map {"body": map, "digest": bin 32, "id": str}
 *   22+P 64 Ed25519 signature over bytes 0 .. 22+P-1
 *
 * "digest" is SHA-256 over the exact bytes of the "body" value; "id"
 * is the hex of its first 16 bytes.  The body holds format, created,
 * expires, signer (key id hex), note and the ordered migrations with
 * every section, option, line number and SHA-256 checksum.
 *
 * Verification of untrusted bytes runs in this order and stops at the
 * first failure, so nothing is decoded before the signature holds: size
 * limit, magic, format version, length, trusted signer, signature, strict
 * decoding, digest and id, per-migration checksums and version order,
 * expiry.  Every failure is FL_EPROTO with its own message.
 *
 * The same migrations, key, times and note give the same bytes.
 * Bundles and trust stores are immutable once made; getters lend strings
 * for the object's life.  Distinct objects may be used from distinct
 * threads; a const object may be shared.
 */
#ifndef FL_PROTO_BUNDLE_H
#define FL_PROTO_BUNDLE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"
#include "proto/key.h"
#include "proto/migration.h"

#define FL_BUNDLE_MAGIC "FLOTBNDL"
#define FL_BUNDLE_FORMAT 1
#define FL_BUNDLE_HEADER_BYTES 22
#define FL_BUNDLE_MAX_SIZE ((size_t)64 * 1024 * 1024)
#define FL_BUNDLE_ID_HEX 33

/* Trust store: the public keys whose signatures are accepted. */
typedef struct fl_trust fl_trust_t;

/*
 * Loads a .pub file, or every *.pub file in a directory (other files are
 * ignored; a directory without one is an error).  *out is new.
 *
 * StrictModes (common/perm.h): the trust store, each .pub file and every
 * directory above them up to / must be owned by the current user or root
 * and writable by neither group nor others (a sticky directory above,
 * such as /tmp, is allowed); links are followed and checked where they
 * point.  Anything else is FL_EINVAL naming the path, its mode and owner
 * and the chmod or chown to run: whoever can write the trust store
 * decides what this host executes.
 */
int fl_trust_load(fl_trust_t **out, const char *path,
                  fl_error_t *err) FL_NODISCARD;
/* An empty trust store, for fl_trust_add(); never NULL. */
fl_trust_t *fl_trust_new(void);
/* Adds a public key (copied); a key already present is not added twice. */
void fl_trust_add(fl_trust_t *t, const unsigned char pk[FL_KEY_PUBLIC_BYTES]);
size_t fl_trust_count(const fl_trust_t *t);
void fl_trust_destroy(fl_trust_t **t);

typedef struct fl_bundle fl_bundle_t;

typedef struct {
    int64_t created; /* Unix seconds */
    int64_t expires; /* Unix seconds; 0 = never */
    const char *note; /* may be NULL */
} fl_bundle_opts_t;

#define FL_BUNDLE_OPTS_INIT {0, 0, NULL}

/*
 * Encodes migs (at least one, strictly increasing versions, checksums
 * computed), signs with key, and appends the bundle bytes to out.
 */
int fl_bundle_build(fl_buf_t *out, const fl_migration_list_t *migs,
                    const fl_key_t *key, const fl_bundle_opts_t *opts,
                    fl_error_t *err) FL_NODISCARD;

/*
 * Verifies data (lent for the call) against trust at time now_s and, if
 * every check passes, decodes it into *out (new).  See the order above.
 */
int fl_bundle_verify_bytes(fl_bundle_t **out, const unsigned char *data,
                           size_t len, const fl_trust_t *trust, int64_t now_s,
                           fl_error_t *err) FL_NODISCARD;

/* Reads the file at path (size-limited first) and runs fl_bundle_verify_bytes. */
int fl_bundle_load(fl_bundle_t **out, const char *path,
                   const fl_trust_t *trust, int64_t now_s,
                   fl_error_t *err) FL_NODISCARD;

/*
 * Decodes data with every check except the signature and expiry, for
 * showing a bundle whose signer is not trusted here (`bundle inspect`).
 * The result reports fl_bundle_is_verified() false; never execute it.
 */
int fl_bundle_decode_unverified(fl_bundle_t **out, const unsigned char *data,
                                size_t len, fl_error_t *err) FL_NODISCARD;

/*
 * Reads a whole file of at most FL_BUNDLE_MAX_SIZE bytes into a new
 * buffer (*data, freed by the caller).
 */
int fl_bundle_read_file(unsigned char **data, size_t *len, const char *path,
                        fl_error_t *err) FL_NODISCARD;

/* Formats Unix seconds as "YYYY-MM-DD HH:MM:SS UTC" ("never" for 0). */
void fl_bundle_format_time(char *out, size_t n, int64_t t);

/* 1 when the file at path starts with the bundle magic, else 0. */
int fl_bundle_is_bundle_file(const char *path);

const fl_migration_list_t *fl_bundle_migrations(const fl_bundle_t *b);
const char *fl_bundle_id(const fl_bundle_t *b);
const char *fl_bundle_signer(const fl_bundle_t *b); /* key id */
int64_t fl_bundle_created(const fl_bundle_t *b);
int64_t fl_bundle_expires(const fl_bundle_t *b); /* 0 = never */
const char *fl_bundle_note(const fl_bundle_t *b);  /* "" when none */
const char *fl_bundle_digest_hex(const fl_bundle_t *b);
int fl_bundle_format(const fl_bundle_t *b);
/* True when the bundle came from a successful verification. */
int fl_bundle_is_verified(const fl_bundle_t *b);
void fl_bundle_destroy(fl_bundle_t **b);

#endif
