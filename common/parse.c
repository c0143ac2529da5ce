/*
 * parse.c - parsers for durations, sizes, counts and selectors (see parse.h).
 *
 * Hand-written on purpose: each grammar is a handful of tokens, and the
 * errors must quote the user's value, which no general library does.
 */
#include "common/parse.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/alloc.h"

/* Reads digits at *p into *out; fails on overflow or when none. */
static int
s_digits(const char **p, int64_t *out)
{
    int64_t v = 0;
    const char *s = *p;

    if (!isdigit((unsigned char)*s))
        return -1;
    while (isdigit((unsigned char)*s)) {
        int d = *s - '0';
        if (v > (INT64_MAX - d) / 10)
            return -2;
        v = v * 10 + d;
        s++;
    }
    *p = s;
    *out = v;
    return 0;
}

int
fl_parse_int(int64_t *out, const char *s, int64_t min, int64_t max,
             fl_error_t *err)
{
    const char *p = s;
    int neg = 0;
    int64_t v = 0;
    int rc;

    if (*p == '-' || *p == '+')
        neg = *p++ == '-';
    rc = s_digits(&p, &v);
    if (rc != 0 || *p != '\0') {
        FL_ERR(err, FL_EINVAL, "invalid integer \"%s\"", s);
        if (rc == -2)
            fl_error_set_detail(err, "The value is out of range.");
        return FL_EINVAL;
    }
    if (neg)
        v = -v;
    if (v < min || v > max) {
        FL_ERR(err, FL_EINVAL, "value %lld is out of range", (long long)v);
        fl_error_set_detail(err, "Allowed values are %lld to %lld.",
                            (long long)min, (long long)max);
        return FL_EINVAL;
    }
    *out = v;
    return 0;
}

int
fl_parse_bool(int *out, const char *s, fl_error_t *err)
{
    static const char *const yes[] = {"true", "yes", "on", "1"};
    static const char *const no[] = {"false", "no", "off", "0"};

    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    FL_ERR(err, FL_EINVAL, "invalid boolean \"%s\"", s);
    fl_error_set_hint(err, "Use true or false.");
    return FL_EINVAL;
}

typedef struct {
    const char *name;
    int64_t factor;
} s_unit;

/* Units in microseconds; longest names first where one prefixes another. */
static const s_unit s_duration_units[] = {
    {"min", 60LL * 1000000}, {"ms", 1000}, {"us", 1}, {"s", 1000000},
    {"h", 3600LL * 1000000}, {"d", 86400LL * 1000000},
};

static int
s_bad_duration(fl_error_t *err, const char *s, const char *why)
{
    FL_ERR(err, FL_EINVAL, "invalid duration \"%s\": %s", s, why);
    fl_error_set_hint(err, "Write a number and a unit, such as 500ms, 2s, "
                           "5min, 1h or 1h30min (units: us, ms, s, min, h, d).");
    return FL_EINVAL;
}

int
fl_parse_duration(int64_t *out_ms, const char *s, fl_error_t *err)
{
    const char *p = s;
    int64_t total_us = 0;

    if (*p == '\0')
        return s_bad_duration(err, s, "empty value");
    while (*p) {
        int64_t n = 0;
        const s_unit *unit = NULL;
        int rc = s_digits(&p, &n);

        if (rc == -2)
            return s_bad_duration(err, s, "value out of range");
        if (rc != 0)
            return s_bad_duration(err, s, *s == '-' ? "negative value"
                                                    : "expected a number");
        for (size_t i = 0; i < sizeof(s_duration_units) / sizeof(s_duration_units[0]); i++) {
            size_t len = strlen(s_duration_units[i].name);
            if (strncmp(p, s_duration_units[i].name, len) == 0 &&
                !isalpha((unsigned char)p[len])) {
                unit = &s_duration_units[i];
                p += len;
                break;
            }
        }
        if (unit == NULL)
            return s_bad_duration(err, s, *p ? "unknown unit" : "missing unit");
        if (n > (INT64_MAX - total_us) / unit->factor)
            return s_bad_duration(err, s, "value out of range");
        total_us += n * unit->factor;
    }
    *out_ms = total_us / 1000 + (total_us % 1000 ? 1 : 0);
    return 0;
}

void
fl_format_duration(char *out, size_t outlen, int64_t ms)
{
    if (ms != 0 && ms % 86400000 == 0)
        snprintf(out, outlen, "%lldd", (long long)(ms / 86400000));
    else if (ms != 0 && ms % 3600000 == 0)
        snprintf(out, outlen, "%lldh", (long long)(ms / 3600000));
    else if (ms != 0 && ms % 60000 == 0)
        snprintf(out, outlen, "%lldmin", (long long)(ms / 60000));
    else if (ms != 0 && ms % 1000 == 0)
        snprintf(out, outlen, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, outlen, "%lldms", (long long)ms);
}

static const s_unit s_size_units[] = {
    {"B", 1},
    {"kB", 1000}, {"KiB", 1024},
    {"MB", 1000000}, {"MiB", 1024LL * 1024},
    {"GB", 1000000000}, {"GiB", 1024LL * 1024 * 1024},
    {"TB", 1000000000000LL}, {"TiB", 1024LL * 1024 * 1024 * 1024},
};

int
fl_parse_size(int64_t *out_bytes, const char *s, fl_error_t *err)
{
    const char *p = s;
    int64_t n = 0;
    int rc = s_digits(&p, &n);

    if (rc != 0) {
        FL_ERR(err, FL_EINVAL, "invalid size \"%s\": %s", s,
               rc == -2 ? "value out of range" : "expected a number");
        goto hint;
    }
    if (*p == '\0') {
        *out_bytes = n;
        return 0;
    }
    for (size_t i = 0; i < sizeof(s_size_units) / sizeof(s_size_units[0]); i++) {
        if (strcmp(p, s_size_units[i].name) == 0) {
            if (n > INT64_MAX / s_size_units[i].factor) {
                FL_ERR(err, FL_EINVAL, "invalid size \"%s\": value out of range", s);
                goto hint;
            }
            *out_bytes = n * s_size_units[i].factor;
            return 0;
        }
    }
    FL_ERR(err, FL_EINVAL, "invalid size \"%s\": unknown unit \"%s\"", s, p);
hint:
    fl_error_set_hint(err, "Write a number and an optional unit, such as "
                           "4096, 64KiB, 10MB or 1GiB.");
    return FL_EINVAL;
}

int
fl_parse_count_pct(fl_count_pct_t *out, const char *s, fl_error_t *err)
{
    size_t len = strlen(s);
    char *end = NULL;

    if (len > 0 && s[len - 1] == '%') {
        double v;
        /* Plain decimals only: strtod would also take "1e2" and "0x10". */
        if (!isdigit((unsigned char)s[0]) ||
            strspn(s, "0123456789.") != len - 1)
            goto bad;
        errno = 0;
        v = strtod(s, &end);
        if (errno != 0 || end != s + len - 1 || !(v > 0.0) || v > 100.0 ||
            isnan(v))
            goto bad;
        out->is_percent = 1;
        out->percent = v;
        out->count = 0;
        return 0;
    } else {
        const char *p = s;
        int64_t n = 0;
        if (s_digits(&p, &n) != 0 || *p != '\0')
            goto bad;
        out->is_percent = 0;
        out->count = n;
        out->percent = 0.0;
        return 0;
    }
bad:
    FL_ERR(err, FL_EINVAL, "invalid count or percentage \"%s\"", s);
    fl_error_set_hint(err, "Write a whole number (3) or a percentage "
                           "above 0 and at most 100 (10%%).");
    return FL_EINVAL;
}

int64_t
fl_count_pct_resolve(const fl_count_pct_t *cp, int64_t total)
{
    int64_t n;

    if (cp->is_percent)
        n = (int64_t)ceil((double)total * cp->percent / 100.0 - 1e-9);
    else
        n = cp->count;
    return n > total ? total : n;
}

static int
s_key_char(int c)
{
    return isalnum(c) || c == '.' || c == '_' || c == '-' || c == '/';
}

static int
s_value_char(int c)
{
    return isalnum(c) || c == '.' || c == '_' || c == '-';
}

void
fl_selector_release(fl_selector_t *sel)
{
    if (sel == NULL)
        return;
    for (size_t i = 0; i < sel->nterms; i++) {
        free(sel->terms[i].key);
        free(sel->terms[i].value);
    }
    free(sel->terms);
    sel->terms = NULL;
    sel->nterms = 0;
}

int
fl_selector_parse(fl_selector_t *out, const char *s, fl_error_t *err)
{
    const char *p = s;
    fl_selector_t sel = {NULL, 0};

    out->terms = NULL;
    out->nterms = 0;
    if (*s == '\0')
        return 0;
    for (;;) {
        const char *k = p;
        const char *v = NULL;
        size_t klen;
        size_t vlen = 0;
        fl_selector_op op = FL_SELECTOR_EXISTS;
        fl_selector_term_t *t;

        while (s_key_char((unsigned char)*p))
            p++;
        klen = (size_t)(p - k);
        if (klen == 0 || klen > 63) {
            FL_ERR(err, FL_EINVAL, "invalid label selector \"%s\": %s at "
                   "position %zu", s, klen ? "key longer than 63 characters"
                   : "expected a label key", (size_t)(k - s) + 1);
            goto bad;
        }
        if (p[0] == '!' && p[1] == '=') {
            op = FL_SELECTOR_NE;
            p += 2;
        } else if (p[0] == '=') {
            op = FL_SELECTOR_EQ;
            p += p[1] == '=' ? 2 : 1;
        }
        if (op != FL_SELECTOR_EXISTS) {
            v = p;
            while (s_value_char((unsigned char)*p))
                p++;
            vlen = (size_t)(p - v);
            if (vlen > 63) {
                FL_ERR(err, FL_EINVAL, "invalid label selector \"%s\": value "
                       "longer than 63 characters at position %zu", s,
                       (size_t)(v - s) + 1);
                goto bad;
            }
        }
        if (*p != '\0' && *p != ',') {
            FL_ERR(err, FL_EINVAL, "invalid label selector \"%s\": unexpected "
                   "character '%c' at position %zu", s, *p, (size_t)(p - s) + 1);
            goto bad;
        }
        sel.terms = fl_reallocarray(sel.terms, sel.nterms + 1, sizeof(*sel.terms));
        t = &sel.terms[sel.nterms++];
        t->key = fl_strndup(k, klen);
        t->value = v ? fl_strndup(v, vlen) : NULL;
        t->op = op;
        if (*p == '\0')
            break;
        p++;
    }
    *out = sel;
    return 0;
bad:
    fl_error_set_hint(err, "Write terms separated by commas: key=value, "
                           "key!=value or key.");
    fl_selector_release(&sel);
    return FL_EINVAL;
}

int
fl_selector_matches(const fl_selector_t *sel, const char *const *keys,
                    const char *const *values, size_t nlabels)
{
    for (size_t i = 0; i < sel->nterms; i++) {
        const fl_selector_term_t *t = &sel->terms[i];
        const char *found = NULL;

        for (size_t j = 0; j < nlabels; j++) {
            if (strcmp(keys[j], t->key) == 0) {
                found = values[j] ? values[j] : "";
                break;
            }
        }
        switch (t->op) {
        case FL_SELECTOR_EXISTS:
            if (found == NULL)
                return 0;
            break;
        case FL_SELECTOR_EQ:
            if (found == NULL || strcmp(found, t->value) != 0)
                return 0;
            break;
        case FL_SELECTOR_NE:
            if (found != NULL && strcmp(found, t->value) == 0)
                return 0;
            break;
        }
    }
    return 1;
}
