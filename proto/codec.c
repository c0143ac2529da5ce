/*
 * codec.c - bounded msgpack reading and writing, table-driven struct codec
 * (see codec.h).
 *
 * The reader follows the msgpack specification's type bytes directly; it
 * never builds msgpack-c objects.  Each read first checks that the bytes
 * it needs are present, so no read goes past the end and no allocation is
 * sized by a number the input merely claims.
 */
#include "proto/codec.h"

#include <assert.h>
#include <limits.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "proto/proto_internal.h"
#include "proto/version.h"

void
fl_codec_reader_init(fl_codec_reader_t *r, const void *data, size_t len,
                     size_t max_str, const char *what, fl_error_t *err)
{
    r->data = data;
    r->len = len;
    r->pos = 0;
    r->max_str = max_str;
    r->what = what;
    r->err = err;
}

int
fl_codec_fail(fl_codec_reader_t *r, const char *fmt, ...)
{
    va_list ap;
    char *msg = NULL;

    if (r->err == NULL)
        return FL_EPROTO;
    va_start(ap, fmt);
    msg = fl_vasprintf(fmt, ap);
    va_end(ap);
    FL_ERR(r->err, FL_EPROTO, "malformed %s: %s at byte %zu", r->what, msg,
           r->pos);
    free(msg);
    return FL_EPROTO;
}

static size_t
s_left(const fl_codec_reader_t *r)
{
    return r->len - r->pos;
}

static int
s_need(fl_codec_reader_t *r, size_t n)
{
    if (n > s_left(r)) {
        fl_codec_fail(r, "input ends early");
        fl_error_set_detail(r->err, "%zu more bytes were expected; %zu remain.",
                            n, s_left(r));
        return FL_EPROTO;
    }
    return 0;
}

/* Reads an n-byte big-endian unsigned number following the type byte. */
static int
s_read_be(fl_codec_reader_t *r, size_t n, uint64_t *v)
{
    if (s_need(r, n) != 0)
        return FL_EPROTO;
    *v = fl_proto_get_be(r->data + r->pos, n);
    r->pos += n;
    return 0;
}

static const char *
s_type_name(unsigned char b)
{
    if (b <= 0x7f || b >= 0xe0 || (b >= 0xcc && b <= 0xd3))
        return "integer";
    if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf)
        return "map";
    if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd)
        return "array";
    if ((b & 0xe0) == 0xa0 || (b >= 0xd9 && b <= 0xdb))
        return "string";
    if (b == 0xc0)
        return "nil";
    if (b == 0xc2 || b == 0xc3)
        return "boolean";
    if (b >= 0xc4 && b <= 0xc6)
        return "binary";
    if (b == 0xca || b == 0xcb)
        return "float";
    if (b == 0xc1)
        return "reserved byte 0xc1";
    return "extension";
}

static int
s_wrong_type(fl_codec_reader_t *r, const char *expected)
{
    return fl_codec_fail(r, "expected %s, found %s", expected,
                         s_type_name(r->data[r->pos]));
}

/*
 * Reads a container header.  fix_base/fix_mask give the fix form, b16 and
 * b32 the type bytes of the longer forms; per_entry is the fewest bytes
 * one counted entry takes (2 for a map: a key and a value).
 */
static int
s_read_container(fl_codec_reader_t *r, size_t *n, unsigned char fix_base,
                 unsigned char b16, unsigned char b32, size_t per_entry,
                 const char *name)
{
    unsigned char b;
    uint64_t count = 0;

    if (s_need(r, 1) != 0)
        return FL_EPROTO;
    b = r->data[r->pos];
    if ((b & 0xf0) == fix_base) {
        count = b & 0x0f;
        r->pos++;
    } else if (b == b16 || b == b32) {
        r->pos++;
        if (s_read_be(r, b == b16 ? 2 : 4, &count) != 0)
            return FL_EPROTO;
    } else {
        return s_wrong_type(r, name);
    }
    if (count > s_left(r) / per_entry)
        return fl_codec_fail(r, "%s of %llu entries is longer than the "
                                "%zu bytes that remain", name,
                             (unsigned long long)count, s_left(r));
    *n = (size_t)count;
    return 0;
}

int
fl_codec_read_map(fl_codec_reader_t *r, size_t *n)
{
    return s_read_container(r, n, 0x80, 0xde, 0xdf, 2, "map");
}

int
fl_codec_read_array(fl_codec_reader_t *r, size_t *n)
{
    return s_read_container(r, n, 0x90, 0xdc, 0xdd, 1, "array");
}

/* Reads the length of a str or bin and returns a pointer to its bytes. */
static int
s_read_bytes(fl_codec_reader_t *r, int want_str, const unsigned char **p,
             size_t *n)
{
    unsigned char b;
    uint64_t len = 0;

    if (s_need(r, 1) != 0)
        return FL_EPROTO;
    b = r->data[r->pos];
    if (want_str && (b & 0xe0) == 0xa0) {
        len = b & 0x1f;
        r->pos++;
    } else if (want_str && b >= 0xd9 && b <= 0xdb) {
        r->pos++;
        if (s_read_be(r, (size_t)1 << (b - 0xd9), &len) != 0)
            return FL_EPROTO;
    } else if (!want_str && b >= 0xc4 && b <= 0xc6) {
        r->pos++;
        if (s_read_be(r, (size_t)1 << (b - 0xc4), &len) != 0)
            return FL_EPROTO;
    } else {
        return s_wrong_type(r, want_str ? "string" : "binary");
    }
    if (len > r->max_str)
        return fl_codec_fail(r, "%s of %llu bytes exceeds the limit of %zu",
                             want_str ? "string" : "binary",
                             (unsigned long long)len, r->max_str);
    if (s_need(r, (size_t)len) != 0)
        return FL_EPROTO;
    *p = r->data + r->pos;
    *n = (size_t)len;
    r->pos += (size_t)len;
    return 0;
}

int
fl_codec_read_str(fl_codec_reader_t *r, const char **p, size_t *n)
{
    const unsigned char *u = NULL;
    int rc = s_read_bytes(r, 1, &u, n);

    *p = (const char *)u;
    return rc;
}

int
fl_codec_read_bin(fl_codec_reader_t *r, const unsigned char **p, size_t *n)
{
    return s_read_bytes(r, 0, p, n);
}

int
fl_codec_read_strdup(fl_codec_reader_t *r, char **out)
{
    const char *p = NULL;
    size_t n = 0;
    size_t start = r->pos;

    if (fl_codec_read_str(r, &p, &n) != 0)
        return FL_EPROTO;
    if (n > 0 && memchr(p, '\0', n) != NULL) {
        r->pos = start;
        return fl_codec_fail(r, "string contains a NUL byte");
    }
    /* No NUL inside, so copy without fl_strndup's extra strnlen pass. */
    *out = fl_malloc(n + 1);
    if (n > 0)
        memcpy(*out, p, n);
    (*out)[n] = '\0';
    return 0;
}

/*
 * Key key (klen bytes, read at start) not known to the map's reader:
 * refused when read before in the same map, or past the bound.  Before,
 * a key unknown to the reader could be repeated (found by an audit).
 */
static int
s_unknown_key(fl_codec_reader_t *r, fl_codec_keys_t *state, const char *key,
              size_t klen, size_t start, const char *what)
{
    for (size_t k = 0; k < state->nunknown; k++)
        if (state->unknown_len[k] == klen &&
            (klen == 0 || memcmp(state->unknown[k], key, klen) == 0)) {
            r->pos = start;
            return fl_codec_fail(r, "duplicate key \"%.*s\" in %s",
                                 (int)(klen > 64 ? 64 : klen), key, what);
        }
    if (state->nunknown == FL_CODEC_MAX_UNKNOWN_KEYS) {
        r->pos = start;
        return fl_codec_fail(r, "more than %d keys this reader does not "
                             "know in %s", FL_CODEC_MAX_UNKNOWN_KEYS, what);
    }
    state->unknown[state->nunknown] = key;
    state->unknown_len[state->nunknown++] = klen;
    return 0;
}

int
fl_codec_read_key(fl_codec_reader_t *r, const char *const *keys,
                  size_t nkeys, fl_codec_keys_t *state, int *index)
{
    const char *key = NULL;
    size_t klen = 0;
    size_t start = r->pos;

    assert(nkeys <= 64);
    if (fl_codec_read_str(r, &key, &klen) != 0)
        return FL_EPROTO;
    *index = -1;
    for (size_t k = 0; k < nkeys; k++)
        if (strlen(keys[k]) == klen && memcmp(keys[k], key, klen) == 0) {
            if (state->seen & ((uint64_t)1 << k)) {
                r->pos = start;
                return fl_codec_fail(r, "duplicate key \"%s\"", keys[k]);
            }
            state->seen |= (uint64_t)1 << k;
            *index = (int)k;
            return 0;
        }
    return s_unknown_key(r, state, key, klen, start, "a map");
}

int
fl_codec_read_int(fl_codec_reader_t *r, int64_t *v)
{
    unsigned char b;
    uint64_t u = 0;
    size_t start = r->pos;

    if (s_need(r, 1) != 0)
        return FL_EPROTO;
    b = r->data[r->pos];
    if (b <= 0x7f || b >= 0xe0) {
        *v = (int8_t)b;
        r->pos++;
        return 0;
    }
    if (b >= 0xcc && b <= 0xcf) {
        r->pos++;
        if (s_read_be(r, (size_t)1 << (b - 0xcc), &u) != 0)
            return FL_EPROTO;
        if (u > INT64_MAX) {
            r->pos = start;
            return fl_codec_fail(r, "integer %llu is out of range",
                                 (unsigned long long)u);
        }
        *v = (int64_t)u;
        return 0;
    }
    if (b >= 0xd0 && b <= 0xd3) {
        size_t n = (size_t)1 << (b - 0xd0);

        r->pos++;
        if (s_read_be(r, n, &u) != 0)
            return FL_EPROTO;
        /* Sign-extend the n-byte two's complement value. */
        if (n < 8 && (u >> (n * 8 - 1)) & 1)
            u |= ~(uint64_t)0 << (n * 8);
        memcpy(v, &u, sizeof(*v));
        return 0;
    }
    return s_wrong_type(r, "integer");
}

int
fl_codec_read_bool(fl_codec_reader_t *r, int *v)
{
    if (s_need(r, 1) != 0)
        return FL_EPROTO;
    if (r->data[r->pos] != 0xc2 && r->data[r->pos] != 0xc3)
        return s_wrong_type(r, "boolean");
    *v = r->data[r->pos] == 0xc3;
    r->pos++;
    return 0;
}

int
fl_codec_take_nil(fl_codec_reader_t *r)
{
    if (r->pos < r->len && r->data[r->pos] == 0xc0) {
        r->pos++;
        return 1;
    }
    return 0;
}

/*
 * Size of the payload that follows type byte b and its length field, for
 * the scalar types; -1 for containers, str/bin/ext (variable) and 0xc1.
 */
static int
s_fixed_size(unsigned char b)
{
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return 0;
    switch (b) {
    case 0xcc: case 0xd0: return 1;
    case 0xcd: case 0xd1: return 2;
    case 0xce: case 0xd2: case 0xca: return 4;
    case 0xcf: case 0xd3: case 0xcb: return 8;
    case 0xd4: return 2;
    case 0xd5: return 3;
    case 0xd6: return 5;
    case 0xd7: return 9;
    case 0xd8: return 17;
    default: return -1;
    }
}

/* Skips a str, bin or ext value at r->pos; b is its type byte. */
static int
s_skip_variable(fl_codec_reader_t *r, unsigned char b)
{
    const unsigned char *p = NULL;
    size_t n = 0;
    uint64_t len = 0;

    if ((b & 0xe0) == 0xa0 || (b >= 0xd9 && b <= 0xdb))
        return fl_codec_read_str(r, (const char **)&p, &n);
    if (b >= 0xc4 && b <= 0xc6)
        return fl_codec_read_bin(r, &p, &n);
    if (b >= 0xc7 && b <= 0xc9) {
        r->pos++;
        if (s_read_be(r, (size_t)1 << (b - 0xc7), &len) != 0)
            return FL_EPROTO;
        if (len > r->max_str)
            return fl_codec_fail(r, "extension of %llu bytes exceeds the "
                                    "limit of %zu", (unsigned long long)len,
                                 r->max_str);
        if (s_need(r, (size_t)len + 1) != 0)
            return FL_EPROTO;
        r->pos += (size_t)len + 1;
        return 0;
    }
    return fl_codec_fail(r, "reserved type byte 0x%02x", b);
}

int
fl_codec_skip(fl_codec_reader_t *r)
{
    /* pending[d]: values still to skip at depth d; iterative, no recursion. */
    size_t pending[FL_CODEC_MAX_DEPTH + 1];
    int depth = 0;

    pending[0] = 1;
    while (depth >= 0) {
        unsigned char b;
        int fixed;
        size_t n = 0;

        if (pending[depth] == 0) {
            depth--;
            continue;
        }
        pending[depth]--;
        if (s_need(r, 1) != 0)
            return FL_EPROTO;
        b = r->data[r->pos];
        fixed = s_fixed_size(b);
        if (fixed >= 0) {
            if (s_need(r, (size_t)fixed + 1) != 0)
                return FL_EPROTO;
            r->pos += (size_t)fixed + 1;
            continue;
        }
        if ((b & 0xf0) == 0x80 || b == 0xde || b == 0xdf) {
            if (fl_codec_read_map(r, &n) != 0)
                return FL_EPROTO;
            n *= 2;
        } else if ((b & 0xf0) == 0x90 || b == 0xdc || b == 0xdd) {
            if (fl_codec_read_array(r, &n) != 0)
                return FL_EPROTO;
        } else {
            if (s_skip_variable(r, b) != 0)
                return FL_EPROTO;
            continue;
        }
        if (depth == FL_CODEC_MAX_DEPTH)
            return fl_codec_fail(r, "nesting deeper than %d levels",
                                 FL_CODEC_MAX_DEPTH);
        pending[++depth] = n;
    }
    return 0;
}

int
fl_codec_reader_finish(fl_codec_reader_t *r)
{
    if (r->pos != r->len)
        return fl_codec_fail(r, "%zu unexpected bytes after the end",
                             s_left(r));
    return 0;
}

/* Writer: msgpack-c's packer appending to an fl_buf_t. */

static int
s_buf_write(void *data, const char *p, size_t n)
{
    fl_codec_writer_t *w = data;

    if (fl_buf_append(w->buf, p, n) != 0) {
        w->failed = 1;
        return -1;
    }
    return 0;
}

#define S_PACKER(pk, w)                                                     \
    msgpack_packer pk;                                                      \
    msgpack_packer_init(&pk, (w), s_buf_write)

void
fl_codec_writer_init(fl_codec_writer_t *w, fl_buf_t *buf)
{
    w->buf = buf;
    w->failed = 0;
}

void
fl_codec_write_map(fl_codec_writer_t *w, size_t n)
{
    S_PACKER(pk, w);
    (void)msgpack_pack_map(&pk, n); /* failure is recorded in w->failed */
}

void
fl_codec_write_array(fl_codec_writer_t *w, size_t n)
{
    S_PACKER(pk, w);
    (void)msgpack_pack_array(&pk, n); /* recorded in w->failed */
}

void
fl_codec_write_str(fl_codec_writer_t *w, const char *s)
{
    size_t n = strlen(s);
    S_PACKER(pk, w);

    if (msgpack_pack_str(&pk, n) == 0)
        (void)msgpack_pack_str_body(&pk, s, n); /* recorded in w->failed */
}

void
fl_codec_write_bin(fl_codec_writer_t *w, const void *p, size_t n)
{
    S_PACKER(pk, w);

    if (msgpack_pack_bin(&pk, n) == 0)
        (void)msgpack_pack_bin_body(&pk, p, n); /* recorded in w->failed */
}

void
fl_codec_write_int(fl_codec_writer_t *w, int64_t v)
{
    S_PACKER(pk, w);
    (void)msgpack_pack_int64(&pk, v); /* recorded in w->failed */
}

void
fl_codec_write_bool(fl_codec_writer_t *w, int v)
{
    S_PACKER(pk, w);
    (void)(v ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
}

void
fl_codec_write_raw(fl_codec_writer_t *w, const void *p, size_t n)
{
    (void)s_buf_write(w, p, n); /* recorded in w->failed */
}

int
fl_codec_writer_finish(fl_codec_writer_t *w, const char *what, fl_error_t *err)
{
    if (w->failed) {
        FL_ERR(err, FL_EINVAL, "%s is too large to encode", what);
        fl_error_set_detail(err, "The limit is %zu bytes.",
                            w->buf->max ? w->buf->max : FL_BUF_DEFAULT_MAX);
        return FL_EINVAL;
    }
    return 0;
}

/* Table-driven struct codec. */

#define S_AT(obj, off, type) ((type *)((char *)(obj) + (off)))
#define S_CAT(obj, off, type) ((const type *)((const char *)(obj) + (off)))

static int
s_field_present(const fl_codec_field_t *f, const void *obj)
{
    if (f->type == FL_CODEC_STR)
        return *S_CAT(obj, f->off, char *) != NULL;
    if (!(f->flags & FL_CODEC_REQUIRED) && f->type == FL_CODEC_BOOL)
        return *S_CAT(obj, f->off, int) != 0;
    if (!(f->flags & FL_CODEC_REQUIRED) &&
        (f->type == FL_CODEC_BIN || f->type == FL_CODEC_ARRAY ||
         f->type == FL_CODEC_STRMAP || f->type == FL_CODEC_STRLIST))
        return *S_CAT(obj, f->count_off, size_t) > 0;
    return 1;
}

static int
s_encode_field(fl_codec_writer_t *w, const fl_codec_field_t *f,
               const void *obj, fl_error_t *err)
{
    size_t count = 0;

    if (f->type == FL_CODEC_BIN || f->type == FL_CODEC_ARRAY ||
        f->type == FL_CODEC_STRMAP || f->type == FL_CODEC_STRLIST)
        count = *S_CAT(obj, f->count_off, size_t);
    fl_codec_write_str(w, f->key);
    switch (f->type) {
    case FL_CODEC_STR:
        fl_codec_write_str(w, *S_CAT(obj, f->off, char *));
        break;
    case FL_CODEC_I64:
        fl_codec_write_int(w, *S_CAT(obj, f->off, int64_t));
        break;
    case FL_CODEC_VERSION:
        fl_codec_write_str(w, S_CAT(obj, f->off, fl_version_t)->text);
        break;
    case FL_CODEC_INT:
        fl_codec_write_int(w, *S_CAT(obj, f->off, int));
        break;
    case FL_CODEC_BOOL:
        fl_codec_write_bool(w, *S_CAT(obj, f->off, int));
        break;
    case FL_CODEC_BIN:
        fl_codec_write_bin(w, *S_CAT(obj, f->off, unsigned char *), count);
        break;
    case FL_CODEC_BIN32:
        fl_codec_write_bin(w, S_CAT(obj, f->off, unsigned char), 32);
        break;
    case FL_CODEC_ARRAY: {
        const char *items = *S_CAT(obj, f->off, char *);

        fl_codec_write_array(w, count);
        for (size_t i = 0; i < count; i++)
            if (fl_codec_encode(w, f->elem, items + i * f->elem->size, err))
                return FL_EINVAL;
        break;
    }
    case FL_CODEC_STRMAP: {
        const fl_codec_kv_t *kv = *S_CAT(obj, f->off, fl_codec_kv_t *);

        fl_codec_write_map(w, count);
        for (size_t i = 0; i < count; i++) {
            if (kv[i].key == NULL || kv[i].value == NULL)
                return FL_ERR(err, FL_EINVAL, "entry %zu of field \"%s\" "
                                              "has no key or no value", i,
                              f->key);
            fl_codec_write_str(w, kv[i].key);
            fl_codec_write_str(w, kv[i].value);
        }
        break;
    }
    case FL_CODEC_STRLIST: {
        char *const *items =
            *(char **const *)((const char *)obj + f->off);

        fl_codec_write_array(w, count);
        for (size_t i = 0; i < count; i++) {
            if (items[i] == NULL)
                return FL_ERR(err, FL_EINVAL, "entry %zu of field \"%s\" "
                                              "is not set", i, f->key);
            fl_codec_write_str(w, items[i]);
        }
        break;
    }
    }
    return 0;
}

int
fl_codec_count(size_t *n, const fl_codec_schema_t *s, const void *obj,
               fl_error_t *err)
{
    *n = 0;
    for (size_t i = 0; i < s->nfields; i++) {
        const fl_codec_field_t *f = &s->fields[i];

        if (s_field_present(f, obj))
            (*n)++;
        else if (f->flags & FL_CODEC_REQUIRED)
            return FL_ERR(err, FL_EINVAL, "cannot encode %s: required field "
                                          "\"%s\" is not set", s->name,
                          f->key);
    }
    return 0;
}

int
fl_codec_encode_fields(fl_codec_writer_t *w, const fl_codec_schema_t *s,
                       const void *obj, fl_error_t *err)
{
    for (size_t i = 0; i < s->nfields; i++)
        if (s_field_present(&s->fields[i], obj) &&
            s_encode_field(w, &s->fields[i], obj, err) != 0)
            return FL_EINVAL;
    return 0;
}

int
fl_codec_encode(fl_codec_writer_t *w, const fl_codec_schema_t *s,
                const void *obj, fl_error_t *err)
{
    size_t n = 0;

    if (fl_codec_count(&n, s, obj, err) != 0)
        return FL_EINVAL;
    fl_codec_write_map(w, n);
    return fl_codec_encode_fields(w, s, obj, err);
}

/*
 * The fewest bytes an encoding of schema s can take: a map header plus,
 * for each required field, its key and a one-byte value.  Array counts
 * are checked against it so that a short input cannot make us allocate
 * many large elements.
 */
static size_t
s_min_size(const fl_codec_schema_t *s)
{
    size_t n = 1;

    for (size_t i = 0; i < s->nfields; i++)
        if (s->fields[i].flags & FL_CODEC_REQUIRED)
            n += 1 + strlen(s->fields[i].key) +
                 (s->fields[i].type == FL_CODEC_BIN32 ? 34 : 1);
    return n;
}

static int
s_decode_array(fl_codec_reader_t *r, const fl_codec_field_t *f, void *obj)
{
    size_t n = 0;
    char *items = NULL;

    if (fl_codec_read_array(r, &n) != 0)
        return FL_EPROTO;
    if (n > f->max_count || n > s_left(r) / s_min_size(f->elem))
        return fl_codec_fail(r, "field \"%s\" has %zu entries, more than "
                                "allowed here", f->key, n);
    if (n == 0)
        return 0;
    items = fl_calloc(n, f->elem->size);
    *S_AT(obj, f->off, char *) = items;
    *S_AT(obj, f->count_off, size_t) = n;
    for (size_t i = 0; i < n; i++)
        if (fl_codec_decode(r, f->elem, items + i * f->elem->size) != 0)
            return FL_EPROTO;
    return 0;
}

/*
 * Checks a STRMAP's or STRLIST's count n (already bounded by the bytes
 * left) against the field's maximum and allocates its n entries of size
 * bytes into obj (*out = NULL when n is 0).
 */
static int
s_entries(fl_codec_reader_t *r, const fl_codec_field_t *f, void *obj,
          size_t n, size_t size, void **out)
{
    *out = NULL;
    if (n > f->max_count) {
        /* fl_codec_fail always gives FL_EPROTO; said here so that the
         * static analyzer sees that no caller goes on with *out NULL. */
        FL_IGNORE(fl_codec_fail(r, "field \"%s\" has %zu entries, more "
                                   "than the %zu allowed", f->key, n,
                                f->max_count));
        return FL_EPROTO;
    }
    if (n == 0)
        return 0;
    *out = fl_calloc(n, size);
    *S_AT(obj, f->off, void *) = *out;
    *S_AT(obj, f->count_off, size_t) = n;
    return 0;
}

static int
s_decode_strmap(fl_codec_reader_t *r, const fl_codec_field_t *f, void *obj)
{
    size_t n = 0;
    fl_codec_kv_t *kv = NULL;

    if (fl_codec_read_map(r, &n) != 0 ||
        s_entries(r, f, obj, n, sizeof(*kv), (void **)&kv) != 0)
        return FL_EPROTO;
    for (size_t i = 0; i < n; i++) {
        size_t start = r->pos;

        if (fl_codec_read_strdup(r, &kv[i].key) != 0 ||
            fl_codec_read_strdup(r, &kv[i].value) != 0)
            return FL_EPROTO;
        for (size_t j = 0; j < i; j++)
            if (strcmp(kv[j].key, kv[i].key) == 0) {
                r->pos = start;
                return fl_codec_fail(r, "duplicate key \"%s\" in field \"%s\"",
                                     kv[i].key, f->key);
            }
    }
    return 0;
}

static int
s_decode_strlist(fl_codec_reader_t *r, const fl_codec_field_t *f, void *obj)
{
    size_t n = 0;
    char **items = NULL;

    if (fl_codec_read_array(r, &n) != 0 ||
        s_entries(r, f, obj, n, sizeof(*items), (void **)&items) != 0)
        return FL_EPROTO;
    for (size_t i = 0; i < n; i++)
        if (fl_codec_read_strdup(r, &items[i]) != 0)
            return FL_EPROTO;
    return 0;
}

static int
s_decode_version(fl_codec_reader_t *r, const fl_codec_field_t *f,
                 fl_version_t *out)
{
    const char *p = NULL;
    size_t n = 0;
    int64_t v = 0;
    size_t start = r->pos;
    unsigned char b;

    if (s_need(r, 1) != 0)
        return FL_EPROTO;
    b = r->data[r->pos];
    if ((b >= 0xa0 && b <= 0xbf) || (b >= 0xd9 && b <= 0xdb)) {
        if (fl_codec_read_str(r, &p, &n) != 0)
            return FL_EPROTO;
        if (n > FL_VERSION_MAX || (n > 0 && memchr(p, '\0', n) != NULL)) {
            r->pos = start;
            return fl_codec_fail(r, "field \"%s\" is not a version",
                                 f->key);
        }
        memcpy(out->text, p, n);
        out->text[n] = '\0';
        if (n > 0 && !fl_version_is_canonical(out->text)) {
            r->pos = start;
            return fl_codec_fail(r, "field \"%s\" is not a version: \"%s\"",
                                 f->key, out->text);
        }
        return 0;
    }
    if (fl_codec_read_int(r, &v) != 0)
        return FL_EPROTO;
    if (v < 0) {
        r->pos = start;
        return fl_codec_fail(r, "field \"%s\" is a negative version",
                             f->key);
    }
    if (v == 0)
        out->text[0] = '\0';
    else
        fl_version_set_u64(out, (uint64_t)v);
    return 0;
}

static int
s_decode_field(fl_codec_reader_t *r, const fl_codec_field_t *f, void *obj)
{
    const unsigned char *p = NULL;
    size_t n = 0;
    int64_t v = 0;
    size_t start = r->pos;

    switch (f->type) {
    case FL_CODEC_STR:
        if (!(f->flags & FL_CODEC_REQUIRED) && fl_codec_take_nil(r))
            return 0;
        return fl_codec_read_strdup(r, S_AT(obj, f->off, char *));
    case FL_CODEC_I64:
        return fl_codec_read_int(r, S_AT(obj, f->off, int64_t));
    case FL_CODEC_VERSION:
        return s_decode_version(r, f, S_AT(obj, f->off, fl_version_t));
    case FL_CODEC_INT:
        if (fl_codec_read_int(r, &v) != 0)
            return FL_EPROTO;
        if (v < INT_MIN || v > INT_MAX) {
            r->pos = start;
            return fl_codec_fail(r, "field \"%s\" is out of range", f->key);
        }
        *S_AT(obj, f->off, int) = (int)v;
        return 0;
    case FL_CODEC_BOOL:
        return fl_codec_read_bool(r, S_AT(obj, f->off, int));
    case FL_CODEC_BIN:
        if (fl_codec_read_bin(r, &p, &n) != 0)
            return FL_EPROTO;
        *S_AT(obj, f->off, unsigned char *) = fl_malloc(n);
        if (n > 0)
            memcpy(*S_AT(obj, f->off, unsigned char *), p, n);
        *S_AT(obj, f->count_off, size_t) = n;
        return 0;
    case FL_CODEC_BIN32:
        if (fl_codec_read_bin(r, &p, &n) != 0)
            return FL_EPROTO;
        if (n != 32) {
            r->pos = start;
            return fl_codec_fail(r, "field \"%s\" has %zu bytes instead of 32",
                                 f->key, n);
        }
        memcpy(S_AT(obj, f->off, unsigned char), p, 32);
        return 0;
    case FL_CODEC_ARRAY:
        return s_decode_array(r, f, obj);
    case FL_CODEC_STRMAP:
        return s_decode_strmap(r, f, obj);
    case FL_CODEC_STRLIST:
        return s_decode_strlist(r, f, obj);
    }
    return fl_codec_fail(r, "unsupported field type");
}

int
fl_codec_decode(fl_codec_reader_t *r, const fl_codec_schema_t *s, void *obj)
{
    size_t n = 0;
    uint64_t seen = 0;
    fl_codec_keys_t unknown = FL_CODEC_KEYS_INIT;

    assert(s->nfields <= 64);
    if (fl_codec_read_map(r, &n) != 0)
        return FL_EPROTO;
    for (size_t i = 0; i < n; i++) {
        const char *key = NULL;
        size_t klen = 0;
        size_t start = r->pos;
        size_t j;

        if (fl_codec_read_str(r, &key, &klen) != 0)
            return FL_EPROTO;
        for (j = 0; j < s->nfields; j++)
            if (strlen(s->fields[j].key) == klen &&
                memcmp(s->fields[j].key, key, klen) == 0)
                break;
        if (j == s->nfields) {
            /* Unknown keys are ignored so that peers can add fields,
             * each once. */
            if (s_unknown_key(r, &unknown, key, klen, start, s->name) != 0 ||
                fl_codec_skip(r) != 0)
                return FL_EPROTO;
            continue;
        }
        if (seen & ((uint64_t)1 << j)) {
            r->pos = start;
            return fl_codec_fail(r, "duplicate key \"%s\" in %s",
                                 s->fields[j].key, s->name);
        }
        seen |= (uint64_t)1 << j;
        if (s_decode_field(r, &s->fields[j], obj) != 0)
            return FL_EPROTO;
    }
    for (size_t j = 0; j < s->nfields; j++)
        if ((s->fields[j].flags & FL_CODEC_REQUIRED) &&
            !(seen & ((uint64_t)1 << j)))
            return fl_codec_fail(r, "%s lacks the required field \"%s\"",
                                 s->name, s->fields[j].key);
    return 0;
}

void
fl_codec_release(const fl_codec_schema_t *s, void *obj)
{
    for (size_t i = 0; i < s->nfields; i++) {
        const fl_codec_field_t *f = &s->fields[i];

        switch (f->type) {
        case FL_CODEC_STR:
            fl_free(S_AT(obj, f->off, char *));
            break;
        case FL_CODEC_BIN:
            fl_free(S_AT(obj, f->off, unsigned char *));
            *S_AT(obj, f->count_off, size_t) = 0;
            break;
        case FL_CODEC_ARRAY: {
            char *items = *S_AT(obj, f->off, char *);
            size_t count = *S_AT(obj, f->count_off, size_t);

            for (size_t k = 0; items && k < count; k++)
                fl_codec_release(f->elem, items + k * f->elem->size);
            fl_free(S_AT(obj, f->off, char *));
            *S_AT(obj, f->count_off, size_t) = 0;
            break;
        }
        case FL_CODEC_STRMAP: {
            fl_codec_kv_t *kv = *S_AT(obj, f->off, fl_codec_kv_t *);
            size_t count = *S_AT(obj, f->count_off, size_t);

            for (size_t k = 0; kv && k < count; k++) {
                free(kv[k].key);
                free(kv[k].value);
            }
            fl_free(S_AT(obj, f->off, fl_codec_kv_t *));
            *S_AT(obj, f->count_off, size_t) = 0;
            break;
        }
        case FL_CODEC_STRLIST: {
            char **items = *S_AT(obj, f->off, char **);
            size_t count = *S_AT(obj, f->count_off, size_t);

            for (size_t k = 0; items && k < count; k++)
                free(items[k]);
            fl_free(S_AT(obj, f->off, char **));
            *S_AT(obj, f->count_off, size_t) = 0;
            break;
        }
        default:
            break;
        }
    }
}
