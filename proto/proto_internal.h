/*
 * proto_internal.h - helpers shared by the modules of proto/ only.
 */
#ifndef FL_PROTO_INTERNAL_H
#define FL_PROTO_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

/* Initialises libsodium once; aborts when it cannot (no safe way on). */
void fl_proto_sodium_init(void);

/* Reads and writes n-byte big-endian unsigned numbers (n <= 8). */
uint64_t fl_proto_get_be(const unsigned char *p, size_t n);
void fl_proto_put_be(unsigned char *p, uint64_t v, size_t n);

#endif
