/*
 * hash.c - SHA-256 through OpenSSL's EVP interface (see hash.h).
 *
 * EVP rather than the SHA256_* functions: those are deprecated in
 * OpenSSL 3.  Both paths pick the same SHA-NI code.
 */
#include "common/hash.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/evp.h>
#include <sodium.h>

#include "common/alloc.h"

struct fl_hash {
    EVP_MD_CTX *ctx;
};

/* libcrypto fails a SHA-256 call only when it runs out of memory. */
static void
s_fail(const char *what)
{
    fprintf(stderr, "flotilla: SHA-256 failed in %s (out of memory?)\n", what);
    fflush(stderr);
    abort();
}

static void
s_init(EVP_MD_CTX *ctx)
{
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
        s_fail("init");
}

void
fl_hash_sha256(unsigned char out[FL_HASH_SHA256_BYTES], const void *data,
               size_t len)
{
    unsigned int n = 0;

    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 ||
        n != FL_HASH_SHA256_BYTES)
        s_fail("digest");
}

fl_hash_t *
fl_hash_sha256_new(void)
{
    fl_hash_t *h = fl_calloc(1, sizeof(*h));

    if ((h->ctx = EVP_MD_CTX_new()) == NULL)
        s_fail("new");
    s_init(h->ctx);
    return h;
}

void
fl_hash_update(fl_hash_t *h, const void *data, size_t len)
{
    if (len > 0 && EVP_DigestUpdate(h->ctx, data, len) != 1)
        s_fail("update");
}

void
fl_hash_final(fl_hash_t *h, unsigned char out[FL_HASH_SHA256_BYTES])
{
    unsigned int n = 0;

    if (EVP_DigestFinal_ex(h->ctx, out, &n) != 1 || n != FL_HASH_SHA256_BYTES)
        s_fail("final");
    s_init(h->ctx);
}

void
fl_hash_destroy(fl_hash_t **h)
{
    if (h == NULL || *h == NULL)
        return;
    EVP_MD_CTX_free((*h)->ctx);
    free(*h);
    *h = NULL;
}

uint32_t
fl_random_uniform(uint32_t upper)
{
    if (upper == 0)
        return 0;
    if (sodium_init() < 0) {
        fprintf(stderr, "flotilla: could not initialise libsodium\n");
        abort();
    }
    return randombytes_uniform(upper);
}
