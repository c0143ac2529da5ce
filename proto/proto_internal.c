/*
 * proto_internal.c - helpers shared by the modules of proto/ (see
 * proto_internal.h).
 */
#include "proto/proto_internal.h"

#include <stdio.h>
#include <stdlib.h>

#include <sodium.h>

void
fl_proto_sodium_init(void)
{
    /* sodium_init() is idempotent and thread safe. */
    if (sodium_init() < 0) {
        fprintf(stderr, "flotilla: could not initialise libsodium\n");
        abort();
    }
}

uint64_t
fl_proto_get_be(const unsigned char *p, size_t n)
{
    uint64_t v = 0;

    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

void
fl_proto_put_be(unsigned char *p, uint64_t v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * (n - 1 - i)));
}
