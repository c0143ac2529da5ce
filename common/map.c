/*
 * map.c - open-addressing hash map with SipHash keys (see map.h).
 *
 * Slot i holds a key pointer, its length and the value; an empty slot has
 * a NULL value.  A key lives in the first empty-or-matching slot at or
 * after its home slot (hash mod capacity), wrapping; deletion shifts the
 * following entries back so that no lookup ever stops early at a hole
 * (Knuth 6.4, algorithm R), which keeps lookups short without tombstones.
 */
#include "common/map.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/alloc.h"
#include "common/error.h"

#define S_MIN_CAP 16

typedef struct {
    const void *key;
    size_t len;
    void *value;
} s_slot;

struct fl_map {
    s_slot *slots;
    size_t cap;   /* a power of two */
    size_t count;
    unsigned char seed[crypto_shorthash_KEYBYTES];
};

fl_map_t *
fl_map_new(void)
{
    fl_map_t *m = fl_calloc(1, sizeof(*m));

    /* Idempotent and thread safe; fails only without a random source. */
    FL_ASSERT(sodium_init() >= 0);
    randombytes_buf(m->seed, sizeof(m->seed));
    m->cap = S_MIN_CAP;
    m->slots = fl_calloc(m->cap, sizeof(*m->slots));
    return m;
}

void
fl_map_destroy(fl_map_t **m)
{
    if (m == NULL || *m == NULL)
        return;
    free((*m)->slots);
    fl_free(m);
}

static size_t
s_home(const fl_map_t *m, const void *key, size_t len)
{
    unsigned char h[crypto_shorthash_BYTES];
    uint64_t v = 0;

    crypto_shorthash(h, key, len, m->seed);
    memcpy(&v, h, sizeof(v));
    return (size_t)v & (m->cap - 1);
}

static int
s_equal(const s_slot *s, const void *key, size_t len)
{
    return s->len == len && (len == 0 || memcmp(s->key, key, len) == 0);
}

/* The slot holding key, or the empty slot where it would go. */
static size_t
s_find(const fl_map_t *m, const void *key, size_t len)
{
    size_t i = s_home(m, key, len);

    while (m->slots[i].value != NULL && !s_equal(&m->slots[i], key, len))
        i = (i + 1) & (m->cap - 1);
    return i;
}

static void
s_grow(fl_map_t *m)
{
    s_slot *old = m->slots;
    size_t oldcap = m->cap;

    m->cap *= 2;
    m->slots = fl_calloc(m->cap, sizeof(*m->slots));
    for (size_t i = 0; i < oldcap; i++)
        if (old[i].value != NULL)
            m->slots[s_find(m, old[i].key, old[i].len)] = old[i];
    free(old);
}

void *
fl_map_put(fl_map_t *m, const void *key, size_t len, void *value)
{
    size_t i;
    void *prev = NULL;

    FL_ASSERT(value != NULL);
    if ((m->count + 1) * 4 > m->cap * 3)
        s_grow(m);
    i = s_find(m, key, len);
    prev = m->slots[i].value;
    if (prev == NULL)
        m->count++;
    m->slots[i].key = key;
    m->slots[i].len = len;
    m->slots[i].value = value;
    return prev;
}

void *
fl_map_get(const fl_map_t *m, const void *key, size_t len)
{
    return m->slots[s_find(m, key, len)].value;
}

/* True when slot j's home lies cyclically in (i, j]: it may not move to i. */
static int
s_stays(size_t home, size_t i, size_t j)
{
    return i <= j ? (i < home && home <= j) : (i < home || home <= j);
}

void *
fl_map_remove(fl_map_t *m, const void *key, size_t len)
{
    size_t i = s_find(m, key, len);
    size_t j = i;
    void *value = m->slots[i].value;

    if (value == NULL)
        return NULL;
    m->slots[i].value = NULL;
    m->count--;
    for (;;) {
        j = (j + 1) & (m->cap - 1);
        if (m->slots[j].value == NULL)
            break;
        if (s_stays(s_home(m, m->slots[j].key, m->slots[j].len), i, j))
            continue;
        m->slots[i] = m->slots[j];
        m->slots[j].value = NULL;
        i = j;
    }
    return value;
}

void *
fl_map_puts(fl_map_t *m, const char *key, void *value)
{
    return fl_map_put(m, key, strlen(key), value);
}

void *
fl_map_gets(const fl_map_t *m, const char *key)
{
    return fl_map_get(m, key, strlen(key));
}

void *
fl_map_removes(fl_map_t *m, const char *key)
{
    return fl_map_remove(m, key, strlen(key));
}

size_t
fl_map_count(const fl_map_t *m)
{
    return m->count;
}

void *
fl_map_next(const fl_map_t *m, size_t *pos)
{
    while (*pos < m->cap) {
        void *v = m->slots[(*pos)++].value;
        if (v != NULL)
            return v;
    }
    return NULL;
}
