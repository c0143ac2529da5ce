/*
 * key.c - Ed25519 release keys (see key.h).
 *
 * The secret file holds the 32-byte seed rather than libsodium's 64-byte
 * secret key: the seed is the key (the rest is derived), and a shorter
 * file leaves less to mistype.  Every buffer that holds seed or secret key
 * bytes, including the base64 text of the file, is secure memory.
 */
#include "proto/key.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/alloc.h"
#include "common/secret.h"
#include "proto/proto_internal.h"

#define S_SECRET_PREFIX "flotilla-ed25519-secret "
#define S_PUBLIC_PREFIX "flotilla-ed25519-public "
/* base64 of 32 bytes with padding, plus its NUL */
#define S_B64_LEN sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_ORIGINAL)

struct fl_key {
    fl_secret_t sk; /* crypto_sign_SECRETKEYBYTES of secure memory */
    unsigned char pk[FL_KEY_PUBLIC_BYTES];
    unsigned char id[FL_KEY_ID_BYTES];
    char id_hex[FL_KEY_ID_HEX];
};

void
fl_key_id_of(unsigned char id[FL_KEY_ID_BYTES],
             const unsigned char pk[FL_KEY_PUBLIC_BYTES])
{
    unsigned char h[crypto_generichash_BYTES_MIN];

    fl_proto_sodium_init();
    crypto_generichash(h, sizeof(h), pk, FL_KEY_PUBLIC_BYTES, NULL, 0);
    memcpy(id, h, FL_KEY_ID_BYTES);
}

void
fl_key_id_format(char out[FL_KEY_ID_HEX],
                 const unsigned char id[FL_KEY_ID_BYTES])
{
    sodium_bin2hex(out, FL_KEY_ID_HEX, id, FL_KEY_ID_BYTES);
}

/*
 * Decodes "PREFIX" + base64(32 bytes) + optional "\n" from text into out.
 * Returns 0, or -1 when the text is not exactly that.
 */
static int
s_decode_key_text(unsigned char out[32], const char *text, size_t len,
                  const char *prefix)
{
    size_t plen = strlen(prefix);
    size_t bin_len = 0;
    const char *end = NULL;

    if (len > 0 && text[len - 1] == '\n')
        len--;
    if (len != plen + S_B64_LEN - 1 || memcmp(text, prefix, plen) != 0)
        return -1;
    if (sodium_base642bin(out, 32, text + plen, len - plen, NULL, &bin_len,
                          &end, sodium_base64_VARIANT_ORIGINAL) != 0 ||
        bin_len != 32 || end != text + len)
        return -1;
    return 0;
}

static void
s_bad_key_file(fl_error_t *err, const char *path, const char *kind,
               const char *prefix)
{
    FL_ERR(err, FL_EINVAL, "invalid %s key file \"%s\"", kind, path);
    fl_error_set_detail(err, "A %s key file holds one line: \"%s\" and 44 "
                             "characters of base64.", kind, prefix);
    fl_error_set_hint(err, "Make a key pair with \"flotilla keygen\".");
}

static void
s_key_finish(fl_key_t *k)
{
    fl_key_id_of(k->id, k->pk);
    fl_key_id_format(k->id_hex, k->id);
}

fl_key_t *
fl_key_new_from_seed(const unsigned char seed[32])
{
    fl_key_t *k = fl_calloc(1, sizeof(*k));

    fl_proto_sodium_init();
    fl_secret_alloc(&k->sk, crypto_sign_SECRETKEYBYTES);
    crypto_sign_seed_keypair(k->pk, k->sk.data, seed);
    s_key_finish(k);
    return k;
}

int
fl_key_load(fl_key_t **out, const char *path, fl_error_t *err)
{
    fl_secret_t text = FL_SECRET_INIT;
    fl_secret_t seed = FL_SECRET_INIT;
    int rc = 0;

    fl_proto_sodium_init();
    if ((rc = fl_secret_load(&text, path, 256, err)) != 0)
        goto cleanup;
    fl_secret_alloc(&seed, 32);
    if (s_decode_key_text(seed.data, (const char *)text.data, text.len,
                          S_SECRET_PREFIX) != 0) {
        s_bad_key_file(err, path, "secret", S_SECRET_PREFIX);
        rc = FL_EINVAL;
        goto cleanup;
    }
    *out = fl_key_new_from_seed(seed.data);
cleanup:
    fl_secret_release(&seed);
    fl_secret_release(&text);
    return rc;
}

void
fl_key_destroy(fl_key_t **k)
{
    if (k == NULL || *k == NULL)
        return;
    fl_secret_release(&(*k)->sk);
    free(*k);
    *k = NULL;
}

const char *
fl_key_id(const fl_key_t *k)
{
    return k->id_hex;
}

const unsigned char *
fl_key_id_bytes(const fl_key_t *k)
{
    return k->id;
}

const unsigned char *
fl_key_public(const fl_key_t *k)
{
    return k->pk;
}

void
fl_key_sign(const fl_key_t *k, unsigned char sig[FL_KEY_SIGNATURE_BYTES],
            const unsigned char *msg, size_t len)
{
    crypto_sign_detached(sig, NULL, msg, len, k->sk.data);
}

int
fl_key_load_public(unsigned char pk[FL_KEY_PUBLIC_BYTES], const char *path,
                   fl_error_t *err)
{
    char text[128];
    struct stat st;
    ssize_t n;
    /* O_NONBLOCK: a FIFO opens at once (before, it hung until a writer
     * came, found by an audit), and is refused as not a regular file. */
    int fd;

    fl_proto_sodium_init();
    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return FL_ERR(err, errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
                      "could not open public key file \"%s\": %s", path,
                      strerror(errno));
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return FL_ERR(err, FL_EINVAL, "public key file \"%s\" is not a "
                      "regular file", path);
    }
    do
        n = read(fd, text, sizeof(text));
    while (n < 0 && errno == EINTR);
    close(fd);
    if (n < 0)
        return FL_ERR(err, FL_EIO, "could not read public key file \"%s\": "
                      "%s", path, strerror(errno));
    if ((size_t)n == sizeof(text) ||
        s_decode_key_text(pk, text, (size_t)n, S_PUBLIC_PREFIX) != 0) {
        s_bad_key_file(err, path, "public", S_PUBLIC_PREFIX);
        return FL_EINVAL;
    }
    return 0;
}

/* Formats "PREFIX" + base64(key) + "\n" into out (at least 128 bytes). */
static size_t
s_key_text(char *out, const char *prefix, const unsigned char key[32])
{
    size_t plen = strlen(prefix);

    memcpy(out, prefix, plen);
    sodium_bin2base64(out + plen, S_B64_LEN, key, 32,
                      sodium_base64_VARIANT_ORIGINAL);
    out[plen + S_B64_LEN - 1] = '\n';
    return plen + S_B64_LEN;
}

int
fl_key_generate_files(const char *prefix, int force, char id_out[FL_KEY_ID_HEX],
                      fl_error_t *err)
{
    char *key_path = fl_asprintf("%s.key", prefix);
    char *pub_path = fl_asprintf("%s.pub", prefix);
    fl_secret_t seed = FL_SECRET_INIT;
    fl_secret_t sk = FL_SECRET_INIT;
    fl_secret_t text = FL_SECRET_INIT;
    unsigned char pk[FL_KEY_PUBLIC_BYTES];
    unsigned char id[FL_KEY_ID_BYTES];
    char pub_text[128];
    size_t len;
    int rc = 0;
    struct stat st;

    fl_proto_sodium_init();
    /*
     * Check both before writing either, so a refusal leaves nothing behind:
     * lstat, so a link to nothing counts (before, stat followed it, and
     * the .key was written before the .pub was refused: found by an
     * audit).
     */
    if (!force) {
        const char *paths[2] = {key_path, pub_path};

        for (int i = 0; i < 2; i++)
            if (lstat(paths[i], &st) == 0) {
                rc = FL_ERR(err, FL_ECONFLICT, "file \"%s\" already exists",
                            paths[i]);
                fl_error_set_hint(err, "Use --force to replace the key pair, "
                                       "or choose another --out.");
                goto cleanup;
            }
    }
    fl_secret_alloc(&seed, 32);
    fl_secret_alloc(&sk, crypto_sign_SECRETKEYBYTES);
    fl_secret_alloc(&text, 128);
    randombytes_buf(seed.data, seed.len);
    crypto_sign_seed_keypair(pk, sk.data, seed.data);
    len = s_key_text((char *)text.data, S_SECRET_PREFIX, seed.data);
    if ((rc = fl_secret_save(key_path, text.data, len, force, err)) != 0)
        goto cleanup;
    len = s_key_text(pub_text, S_PUBLIC_PREFIX, pk);
    if ((rc = fl_file_save_public(pub_path, pub_text, len, force, err)) != 0)
        goto cleanup;
    fl_key_id_of(id, pk);
    fl_key_id_format(id_out, id);
cleanup:
    fl_secret_release(&text);
    fl_secret_release(&sk);
    fl_secret_release(&seed);
    free(key_path);
    free(pub_path);
    return rc;
}
