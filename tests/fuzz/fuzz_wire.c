/*
 * fuzz_wire.c - libFuzzer harness for wire message decoding.
 *
 * Whatever decodes must encode again, and that encoding must decode and
 * re-encode to the same bytes (unknown keys drop out on the first pass).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fl_wire_msg_t m1, m2;
    fl_buf_t b1 = FL_BUF_INIT(0), b2 = FL_BUF_INIT(0);

    if (fl_wire_decode(&m1, data, size, NULL) != 0)
        return 0;
    if (fl_wire_encode(&b1, &m1, NULL) != 0 ||
        fl_wire_decode(&m2, (unsigned char *)b1.data, b1.len, NULL) != 0 ||
        fl_wire_encode(&b2, &m2, NULL) != 0 || b1.len != b2.len ||
        memcmp(b1.data, b2.data, b1.len) != 0)
        abort();
    fl_wire_msg_release(&m1);
    fl_wire_msg_release(&m2);
    fl_buf_release(&b1);
    fl_buf_release(&b2);
    return 0;
}
