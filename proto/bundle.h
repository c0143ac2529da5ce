/*
 * bundle.h - signed migration bundles: build, sign, verify, decode; and the
 * trust store of release keys that verification accepts.
 *
 * A bundle file (docs/bundles.md) is a fixed 22-byte envelope, a msgpack
 * payload and an Ed25519 signature:
 *
 *   0   8  magic "FLOTBNDL"
 *   8   2  format version, big-endian (2; 3 with repeatable
 *           migrations)
 *   10  8  signer key id (see key.h)
 *   18  4  payload length P, big-endian
 *   22  P  payload: map {"body": map, "digest": bin 32, "id": str}
 *   22+P 64 Ed25519 signature over bytes 0 .. 22+P-1
 *
 * "digest" is SHA-256 over the exact bytes of the "body" value; "id"
 * is the hex of its first 16 bytes.  The body holds format, created,
 * expires, signer (key id hex), the release channel and sequence, the
 * scope (environment and optional target selector), note and the ordered
 * migrations with every section, option, line number and SHA-256
 * checksum.
 *
 * Replay and misdirection (issue 9): every field below is signed.
 *   - expires is required and after created; a verifier refuses a bundle
 *     created in its future (beyond a clock-skew allowance), expired, or
 *     valid for longer than its maximum lifetime, so a leaked bundle
 *     stops working by itself (TUF's freeze attack).
 *   - channel and sequence name a release: the sequence grows with each
 *     release of a channel.  Contract for executors (TUF's rollback
 *     attack): an executor records, in each target's ledger, the highest
 *     sequence it applied per channel with that bundle's id, and must
 *     refuse a bundle whose sequence is below the highest it applied on
 *     that channel, and the same sequence with another bundle id, unless
 *     an explicit, logged override says otherwise.  This module cannot
 *     enforce it: it keeps no state.
 *   - environment and selector say where the bundle may run; an executor
 *     calls fl_bundle_scope_admits() with each target's environment and
 *     labels and refuses a target it does not admit.
 *
 * Verification of untrusted bytes runs in this order and stops at the
 * first failure, so nothing is decoded before the signature holds: size
 * limit, magic, format version (format 1 has its own refusal), length,
 * trusted signer, signature, strict decoding, digest and id, header and
 * body agree, per-migration checksums and version order, channel,
 * sequence, environment and selector syntax, then the times: expires
 * after created, lifetime within the maximum, created not in the future,
 * not expired.  Every failure is FL_EPROTO with its own message.
 *
 * The same migrations, key, times, release, scope and note give the same
 * bytes.  Bundles and trust stores are immutable once made; getters lend
 * strings for the object's life.  Distinct objects may be used from
 * distinct threads; a const object may be shared.
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
#define FL_BUNDLE_FORMAT 2
/*
 * The format of a bundle that carries repeatable migrations (issue 14):
 * format 2 plus the body's "repeatables" array.  A bundle without them
 * is still written as format 2, which flotilla releases before it read;
 * one with them is format 3, which those releases refuse by its header
 * ("bundle format version 3 is not supported") instead of skipping the
 * array they do not know.  Both are read.
 */
#define FL_BUNDLE_FORMAT_REPEATABLE 3
#define FL_BUNDLE_HEADER_BYTES 22
#define FL_BUNDLE_MAX_SIZE ((size_t)64 * 1024 * 1024)
#define FL_BUNDLE_ID_HEX 33
/* Channel and environment names: 1 to 64 of [A-Za-z0-9._-]. */
#define FL_BUNDLE_NAME_MAX 64
#define FL_BUNDLE_DEFAULT_CHANNEL "default"
/* The lifetime `bundle build` gives without --expires. */
#define FL_BUNDLE_DEFAULT_LIFETIME_S ((int64_t)30 * 86400)
/* The longest lifetime accepted unless the verifier says otherwise. */
#define FL_BUNDLE_MAX_LIFETIME_S ((int64_t)90 * 86400)
/* How far in the future a bundle's creation time may lie (clock skew). */
#define FL_BUNDLE_MAX_SKEW_S ((int64_t)300)

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
/* Whether t holds the key whose id is key_id (hex, as a bundle's signer). */
int fl_trust_has_signer(const fl_trust_t *t, const char *key_id);
void fl_trust_destroy(fl_trust_t **t);

typedef struct fl_bundle fl_bundle_t;

/* What fl_bundle_build() signs besides the migrations. */
typedef struct {
    int64_t created;         /* Unix seconds */
    int64_t expires;         /* Unix seconds; must be after created */
    const char *note;        /* may be NULL */
    const char *channel;     /* release channel; NULL = "default" */
    int64_t sequence;        /* release number on the channel, >= 1;
                                0 = created */
    const char *environment; /* required: where it may be applied */
    const char *selector;    /* label selector the target's labels must
                                satisfy (common/parse.h); NULL or "" = any */
    const char *lint_enforce_from; /* the lint gate's first version
                                (lint.enforce_from), signed with the
                                migrations so that every executor holds
                                them to the same gate; NULL = none */
    /* Repeatable migrations (fl_migration_parse_repeatable), in the order
     * they run; NULL or empty = none (then the bundle is format 2). */
    const fl_migration_list_t *repeatables;
} fl_bundle_opts_t;

#define FL_BUNDLE_OPTS_INIT {0, 0, NULL, NULL, 0, NULL, NULL, NULL, NULL}

/*
 * Encodes migs (at least one, strictly increasing versions, checksums
 * computed), signs with key, and appends the bundle bytes to out.  The
 * selector is stored in canonical form ("k=v,k2!=v2,k3").  Fails with
 * FL_EINVAL, appending nothing, when expires is not after created, the
 * environment is missing, a name, the sequence or the selector is
 * invalid, or a migration breaks a rule a reader of the bundle holds it
 * to (fl_migration_check(): a name with a control character, '/' or
 * "..", among them).  The maximum lifetime is the caller's policy
 * (`bundle build --max-lifetime`), not checked here.
 */
int fl_bundle_build(fl_buf_t *out, const fl_migration_list_t *migs,
                    const fl_key_t *key, const fl_bundle_opts_t *opts,
                    fl_error_t *err) FL_NODISCARD;

/* The verifier's clock and limits. */
typedef struct {
    int64_t now_s;          /* Unix seconds; 0 = read the clock */
    int64_t max_lifetime_s; /* longest expires - created accepted, > 0 */
    int64_t max_skew_s;     /* how far created may be ahead of now, >= 0 */
    /*
     * 1: a bundle past its expiry passes, every other check still made.
     * For rolling back what it applied, which expiry never stops (an
     * emergency rollback comes when it comes); whoever applies it checks
     * fl_bundle_expires() itself.
     */
    int allow_expired;
} fl_bundle_verify_opts_t;

#define FL_BUNDLE_VERIFY_OPTS_INIT                                          \
    {0, FL_BUNDLE_MAX_LIFETIME_S, FL_BUNDLE_MAX_SKEW_S, 0}

/*
 * Verifies data (lent for the call) against trust with opts (NULL: the
 * defaults of FL_BUNDLE_VERIFY_OPTS_INIT) and, if every check passes,
 * decodes it into *out (new).  See the order above.  Refusals, each
 * FL_EPROTO with its own message: every envelope, signature and content
 * check; a format 1 bundle ("bundle format 1 is no longer accepted",
 * rebuild it); expires not after created; a lifetime above
 * opts->max_lifetime_s; created more than opts->max_skew_s after now;
 * expired (now >= expires) unless opts->allow_expired.
 */
int fl_bundle_verify_bytes(fl_bundle_t **out, const unsigned char *data,
                           size_t len, const fl_trust_t *trust,
                           const fl_bundle_verify_opts_t *opts,
                           fl_error_t *err) FL_NODISCARD;

/*
 * Reads the file at path (size-limited first) and runs
 * fl_bundle_verify_bytes() with opts (NULL: the defaults).
 */
int fl_bundle_load_opts(fl_bundle_t **out, const char *path,
                        const fl_trust_t *trust,
                        const fl_bundle_verify_opts_t *opts,
                        fl_error_t *err) FL_NODISCARD;

/*
 * fl_bundle_load_opts() with the default limits and now_s as the clock
 * (0 = read it).  Kept for callers that have no options yet.
 */
int fl_bundle_load(fl_bundle_t **out, const char *path,
                   const fl_trust_t *trust, int64_t now_s,
                   fl_error_t *err) FL_NODISCARD;

/*
 * Whether the bundle's signed scope admits a target: 0 when environment
 * equals the bundle's and the target's labels ("key=value" strings,
 * lent; nlabels of them, labels may be NULL when 0) satisfy every term of
 * its selector; FL_EPROTO naming the mismatch otherwise (the two
 * environments, or the selector term the labels do not satisfy, with the
 * labels).  A NULL environment admits nothing.  A label without "=" is
 * FL_EINVAL.  b must come from a successful verification.
 */
int fl_bundle_scope_admits(const fl_bundle_t *b, const char *environment,
                           const char *const *labels, size_t nlabels,
                           fl_error_t *err) FL_NODISCARD;

/*
 * Decodes data with every check except the signature and times, for
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

/*
 * Formats Unix seconds as "YYYY-MM-DD HH:MM:SS UTC" ("never" for 0, the
 * way format 1 wrote "no expiry").
 */
void fl_bundle_format_time(char *out, size_t n, int64_t t);

/* 1 when the file at path starts with the bundle magic, else 0. */
int fl_bundle_is_bundle_file(const char *path);

const fl_migration_list_t *fl_bundle_migrations(const fl_bundle_t *b);
/* The repeatable migrations, in the order they run; empty (never NULL)
 * for a format 2 bundle. */
const fl_migration_list_t *fl_bundle_repeatables(const fl_bundle_t *b);
const char *fl_bundle_id(const fl_bundle_t *b);
const char *fl_bundle_signer(const fl_bundle_t *b); /* key id */
int64_t fl_bundle_created(const fl_bundle_t *b);
int64_t fl_bundle_expires(const fl_bundle_t *b);
const char *fl_bundle_note(const fl_bundle_t *b);
/*
 * The lint gate signed into the bundle (lint.enforce_from): lint errors
 * of its migrations before that version are warnings; NULL when it
 * carries none (every migration held to lint).
 */
const char *fl_bundle_lint_enforce_from(const fl_bundle_t *b);
/*
 * Checks a lint.enforce_from value: 1 to FL_BUNDLE_NAME_MAX of
 * [A-Za-z0-9._-] (the characters of every layout's versions).  code (on
 * failure, with err filled) is FL_EINVAL for a user's, FL_EPROTO for a
 * bundle's.
 */
int fl_bundle_check_gate(const char *version, int code,
                         fl_error_t *err) FL_NODISCARD;  /* "" when none */
const char *fl_bundle_channel(const fl_bundle_t *b);
int64_t fl_bundle_sequence(const fl_bundle_t *b);
const char *fl_bundle_environment(const fl_bundle_t *b);
/* The canonical selector, "" when the bundle may run on any target. */
const char *fl_bundle_selector(const fl_bundle_t *b);
const char *fl_bundle_digest_hex(const fl_bundle_t *b);
int fl_bundle_format(const fl_bundle_t *b);
/* True when the bundle came from a successful verification. */
int fl_bundle_is_verified(const fl_bundle_t *b);
void fl_bundle_destroy(fl_bundle_t **b);

#endif
