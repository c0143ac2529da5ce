/*
 * codec.h - bounded msgpack reading and writing, and a table-driven codec
 * for plain C structs.
 *
 * Every byte this module reads may come from a hostile peer, so it does
 * not use msgpack-c's unpacker, which allocates from declared container
 * counts before reading a single element (control-plane research §3.8).
 * The reader is a cursor over the input: every length and count is
 * checked against the bytes that remain before anything is allocated,
 * strings are limited to max_str bytes, skipped values are limited in
 * depth, and truncated input, wrong types and trailing bytes are errors
 * (FL_EPROTO) that say what was expected and at which byte.  The writer
 * uses msgpack-c's packer, which always picks the shortest encoding, so
 * equal structs encode to equal bytes.
 *
 * A schema (fl_codec_schema_t) lists a struct's fields: msgpack map key,
 * type, offset.  Encoding writes the fields in schema order (optional
 * strings that are NULL are left out); decoding accepts any key order,
 * ignores unknown keys, rejects duplicate and missing required keys.
 * wire.c and bundle.c describe all of their messages this way.
 *
 * msgpack-c headers appear only in codec.c.  Not thread safe per reader
 * or writer; distinct objects are independent.
 */
#ifndef FL_PROTO_CODEC_H
#define FL_PROTO_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"

/* Deepest nesting a skipped (unknown) value may have. */
#define FL_CODEC_MAX_DEPTH 16

typedef struct {
    const unsigned char *data; /* lent by the caller for the reader's life */
    size_t len;
    size_t pos;
    size_t max_str;            /* longest str or bin accepted */
    const char *what;          /* "message", "bundle payload": for errors */
    fl_error_t *err;           /* receives the first error; may be NULL */
} fl_codec_reader_t;

/* Points r at data (lent, must outlive r); nothing is copied. */
void fl_codec_reader_init(fl_codec_reader_t *r, const void *data, size_t len,
                          size_t max_str, const char *what, fl_error_t *err);

/*
 * Each read consumes one value of the named type or fails with FL_EPROTO
 * (wrong type, truncated, too long, count larger than the bytes left).
 * Map and array counts are at most the bytes remaining (each entry needs
 * one byte at least).  Strings and bins are returned as pointers into the
 * input, lent for the reader's life, not NUL-terminated.
 */
int fl_codec_read_map(fl_codec_reader_t *r, size_t *n) FL_NODISCARD;
int fl_codec_read_array(fl_codec_reader_t *r, size_t *n) FL_NODISCARD;
int fl_codec_read_str(fl_codec_reader_t *r, const char **p,
                      size_t *n) FL_NODISCARD;
int fl_codec_read_bin(fl_codec_reader_t *r, const unsigned char **p,
                      size_t *n) FL_NODISCARD;
int fl_codec_read_int(fl_codec_reader_t *r, int64_t *v) FL_NODISCARD;
int fl_codec_read_bool(fl_codec_reader_t *r, int *v) FL_NODISCARD;
/* Reads a str into a new NUL-terminated string; a NUL inside is refused. */
int fl_codec_read_strdup(fl_codec_reader_t *r, char **out) FL_NODISCARD;
/* True when the next value is nil; consumes it if so. */
int fl_codec_take_nil(fl_codec_reader_t *r);
/*
 * The keys read so far in one map: those listed (one bit per position in
 * seen) and those not (at most FL_CODEC_MAX_UNKNOWN_KEYS, lent from the
 * reader's data), so that a key repeated, known or not, is refused.
 */
#define FL_CODEC_MAX_UNKNOWN_KEYS 32
typedef struct {
    uint64_t seen;
    size_t nunknown;
    const char *unknown[FL_CODEC_MAX_UNKNOWN_KEYS];
    size_t unknown_len[FL_CODEC_MAX_UNKNOWN_KEYS];
} fl_codec_keys_t;
#define FL_CODEC_KEYS_INIT {0, 0, {NULL}, {0}}

/*
 * Reads a map key (a str) and sets *index to its position in keys, or -1
 * for a key not listed.  state tracks the keys read so far in this map: a
 * repeated key is refused, and so are more than FL_CODEC_MAX_UNKNOWN_KEYS
 * keys not listed.
 */
int fl_codec_read_key(fl_codec_reader_t *r, const char *const *keys,
                      size_t nkeys, fl_codec_keys_t *state,
                      int *index) FL_NODISCARD;
/* Skips one value of any type, at most FL_CODEC_MAX_DEPTH deep. */
int fl_codec_skip(fl_codec_reader_t *r) FL_NODISCARD;
/* Fails unless every byte was consumed. */
int fl_codec_reader_finish(fl_codec_reader_t *r) FL_NODISCARD;
/* Sets r's error: "malformed WHAT: MESSAGE at byte POS"; returns FL_EPROTO. */
int fl_codec_fail(fl_codec_reader_t *r, const char *fmt, ...) FL_PRINTF(2, 3);

typedef struct {
    fl_buf_t *buf; /* lent; appended to */
    int failed;    /* set when the buffer refused to grow */
} fl_codec_writer_t;

void fl_codec_writer_init(fl_codec_writer_t *w, fl_buf_t *buf);
void fl_codec_write_map(fl_codec_writer_t *w, size_t n);
void fl_codec_write_array(fl_codec_writer_t *w, size_t n);
void fl_codec_write_str(fl_codec_writer_t *w, const char *s);
void fl_codec_write_bin(fl_codec_writer_t *w, const void *p, size_t n);
void fl_codec_write_int(fl_codec_writer_t *w, int64_t v);
void fl_codec_write_bool(fl_codec_writer_t *w, int v);
/* Appends bytes that already are one encoded value. */
void fl_codec_write_raw(fl_codec_writer_t *w, const void *p, size_t n);
/* Fails with FL_EINVAL when some write did not fit the buffer's maximum. */
int fl_codec_writer_finish(fl_codec_writer_t *w, const char *what,
                           fl_error_t *err) FL_NODISCARD;

/* Field types of a schema; the C type each one describes is in brackets. */
typedef enum {
    FL_CODEC_STR,    /* char * (NULL = absent when optional) */
    FL_CODEC_I64,    /* int64_t */
    FL_CODEC_INT,    /* int, range-checked */
    FL_CODEC_BOOL,   /* int, 0 or 1 */
    FL_CODEC_BIN,    /* unsigned char * with a size_t count */
    FL_CODEC_BIN32,  /* unsigned char[32], exactly 32 bytes */
    FL_CODEC_ARRAY,  /* element * with a size_t count, elements per elem */
    FL_CODEC_STRMAP, /* fl_codec_kv_t * with a size_t count: a str->str map */
    FL_CODEC_STRLIST, /* char ** with a size_t count: an array of str */
    /* fl_version_t: written as a str (empty for no version); read from a
     * str that must be a version as fl_version_parse() writes it, or from
     * a non-negative integer (bundles built before versions were text;
     * 0 is no version) */
    FL_CODEC_VERSION
} fl_codec_type;

#define FL_CODEC_REQUIRED 1u

typedef struct {
    char *key;
    char *value;
} fl_codec_kv_t;

struct fl_codec_schema;

typedef struct {
    const char *key;
    fl_codec_type type;
    unsigned flags;       /* FL_CODEC_REQUIRED */
    size_t off;           /* offset of the value in the struct */
    size_t count_off;     /* BIN, ARRAY, STRMAP, STRLIST: offset of the
                             size_t count */
    size_t max_count;     /* ARRAY, STRMAP, STRLIST: most elements accepted */
    const struct fl_codec_schema *elem; /* ARRAY: the element schema */
} fl_codec_field_t;

typedef struct fl_codec_schema {
    const char *name;     /* for errors: "step event" */
    const fl_codec_field_t *fields;
    size_t nfields;       /* at most 64 */
    size_t size;          /* sizeof the struct (for ARRAY elements) */
} fl_codec_schema_t;

/*
 * Writes obj as a map of the schema's fields.  A required string that is
 * NULL fails with FL_EINVAL naming the field.  An optional string is left
 * out when NULL; an optional BOOL when false; an optional BIN, ARRAY,
 * STRMAP or STRLIST when its count is 0 (it decodes as absent: NULL and
 * 0).
 */
int fl_codec_encode(fl_codec_writer_t *w, const fl_codec_schema_t *s,
                    const void *obj, fl_error_t *err) FL_NODISCARD;

/*
 * The two halves of fl_codec_encode(), for a map that holds more than the
 * schema's fields: the number of entries obj will write (or FL_EINVAL when
 * a required string is NULL), and the entries without the map header.
 */
int fl_codec_count(size_t *n, const fl_codec_schema_t *s, const void *obj,
                   fl_error_t *err) FL_NODISCARD;
int fl_codec_encode_fields(fl_codec_writer_t *w, const fl_codec_schema_t *s,
                           const void *obj, fl_error_t *err) FL_NODISCARD;

/*
 * Reads one map into obj, which must be zeroed by the caller.  On failure
 * obj may hold some decoded fields: release it with fl_codec_release()
 * either way.  Strings, bins and arrays in obj are new allocations.
 */
int fl_codec_decode(fl_codec_reader_t *r, const fl_codec_schema_t *s,
                    void *obj) FL_NODISCARD;

/* Frees every allocation the schema's fields hold in obj and zeroes them. */
void fl_codec_release(const fl_codec_schema_t *s, void *obj);

#endif
