/*
 * version.c - migration versions: parsing, canonical text and the total
 * order (see version.h).
 */
#include "proto/version.h"

#include <string.h>

int
fl_version_parse(fl_version_t *out, const char *text, size_t len,
                 fl_error_t *err)
{
    fl_version_t v = FL_VERSION_INIT;
    size_t k = 0;
    size_t i = 0;
    const char *why = NULL;

    if (len == 0) {
        why = "it is empty";
        goto bad;
    }
    if (len > FL_VERSION_MAX) {
        why = "it is longer than 64 characters";
        goto bad;
    }
    while (i < len) {
        size_t start = i;

        while (i < len && text[i] >= '0' && text[i] <= '9')
            i++;
        if (i == start) {
            why = text[i] == '.' ? "a dot is not between two numbers"
                                 : "it holds a character other than digits "
                                   "and dots";
            goto bad;
        }
        while (start + 1 < i && text[start] == '0')
            start++;
        memcpy(v.text + k, text + start, i - start);
        k += i - start;
        if (i < len) {
            if (text[i] != '.') {
                why = "it holds a character other than digits and dots";
                goto bad;
            }
            if (i + 1 == len) {
                why = "a dot is not between two numbers";
                goto bad;
            }
            v.text[k++] = '.';
            i++;
        }
    }
    v.text[k] = '\0';
    *out = v;
    return 0;
bad:
    FL_ERR(err, FL_EINVAL, "invalid migration version \"%.*s\"",
           (int)(len > FL_VERSION_MAX ? FL_VERSION_MAX : len), text);
    fl_error_set_detail(err, "The version is refused because %s.", why);
    fl_error_set_hint(err, "A version is numbers separated by dots, for "
                           "example 42, 20190226002946 or 1.2, at most %d "
                           "characters.", FL_VERSION_MAX);
    return FL_EINVAL;
}

int
fl_version_parse_str(fl_version_t *out, const char *text, fl_error_t *err)
{
    return fl_version_parse(out, text, text ? strlen(text) : 0, err);
}

static int
s_digit(char c)
{
    return c >= '0' && c <= '9';
}

int
fl_version_parse_tool(fl_version_t *out, const char *text, fl_error_t *err)
{
    char buf[FL_VERSION_MAX] = {0};
    size_t n = text ? strlen(text) : 0;
    size_t k = 0;
    int fits = 1;

    for (size_t i = 0; i < n && fits; i++) {
        int between = i > 0 && i + 1 < n && s_digit(text[i - 1]) &&
                      s_digit(text[i + 1]);

        if (text[i] == '-' && between) /* diesel drops its dashes */
            continue;
        fits = k < sizeof(buf);
        if (fits)
            buf[k++] = text[i] == '_' && between ? '.' : text[i];
    }
    if (fits && fl_version_parse(out, buf, k, NULL) == 0)
        return 0;
    /* Refused as the text was given, not as it was read. */
    return fl_version_parse_str(out, text, err);
}

int
fl_version_is_canonical(const char *text)
{
    fl_version_t v;
    size_t n = strlen(text);

    if (fl_version_parse(&v, text, n, NULL) != 0)
        return 0;
    return strcmp(v.text, text) == 0;
}

void
fl_version_set_u64(fl_version_t *out, uint64_t v)
{
    char digits[24];
    size_t n = 0;

    do {
        digits[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    for (size_t i = 0; i < n; i++)
        out->text[i] = digits[n - 1 - i];
    out->text[n] = '\0';
}

int
fl_version_is_set(const fl_version_t *v)
{
    return v->text[0] != '\0';
}

int
fl_version_cmp_text(const char *a, const char *b)
{
    if (a == NULL)
        a = "";
    if (b == NULL)
        b = "";
    for (;;) {
        size_t al = strcspn(a, "."), bl = strcspn(b, ".");
        int c;

        if (al == 0 || bl == 0) /* one has no run left */
            return (al != 0) - (bl != 0);
        if (al != bl)
            return al < bl ? -1 : 1;
        c = memcmp(a, b, al);
        if (c != 0)
            return c < 0 ? -1 : 1;
        a += al + (a[al] == '.');
        b += bl + (b[bl] == '.');
    }
}

int
fl_version_cmp(const fl_version_t *a, const fl_version_t *b)
{
    return fl_version_cmp_text(a->text, b->text);
}

int
fl_version_to_u64(const fl_version_t *v, uint64_t *out)
{
    uint64_t x = 0;

    if (v->text[0] == '\0')
        return 0;
    for (const char *p = v->text; *p; p++) {
        uint64_t d = (uint64_t)(*p - '0');

        if (*p < '0' || *p > '9' || x > (UINT64_MAX - d) / 10)
            return 0;
        x = x * 10 + d;
    }
    *out = x;
    return 1;
}
