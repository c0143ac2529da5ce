/*
 * str.c - escaping untrusted text for display, quoting shell words (see
 * str.h).
 *
 * The escaper decodes UTF-8 itself, strictly (RFC 3629: no overlong
 * forms, no surrogates, nothing above U+10FFFF), because a terminal that
 * is not in UTF-8 mode reads a stray 0x9b byte as CSI: every byte that is
 * not part of a valid sequence is escaped.
 */
#include "common/str.h"

#include <stdio.h>
#include <string.h>

#include "common/alloc.h"
#include "common/error.h"

int
fl_str_is_hex(const char *s, size_t len)
{
    return s != NULL && strlen(s) == len &&
           strspn(s, "0123456789abcdef") == len;
}

size_t
fl_str_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    size_t len;
    uint32_t c;
    uint32_t min;

    if (p[0] < 0x80) {
        if (cp != NULL)
            *cp = p[0];
        return 1;
    }
    if (p[0] >= 0xc2 && p[0] <= 0xdf) {
        len = 2;
        c = p[0] & 0x1f;
        min = 0x80;
    } else if (p[0] >= 0xe0 && p[0] <= 0xef) {
        len = 3;
        c = p[0] & 0x0f;
        min = 0x800;
    } else if (p[0] >= 0xf0 && p[0] <= 0xf4) {
        len = 4;
        c = p[0] & 0x07;
        min = 0x10000;
    } else {
        return 0; /* continuation byte, 0xc0, 0xc1 or 0xf5 and above */
    }
    if (n < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (p[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    if (cp != NULL)
        *cp = c;
    return len;
}

/* True for the non-ASCII code points a terminal acts on (see str.h). */
static int
s_is_unicode_control(uint32_t c)
{
    return (c >= 0x80 && c <= 0x9f) || c == 0x061c || c == 0x200e ||
           c == 0x200f || (c >= 0x202a && c <= 0x202e) ||
           (c >= 0x2066 && c <= 0x2069) || c == 0x2028 || c == 0x2029;
}

char *
fl_str_escape_controls(const char *s, unsigned flags)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s);
    /* The worst case is four characters ("\xHH") for each input byte. */
    size_t cap = 0;
    char *out = NULL;
    size_t o = 0;

    FL_ASSERT(n <= (SIZE_MAX - 1) / 4);
    cap = 4 * n + 1;
    out = fl_malloc(cap);
    while (n > 0) {
        uint32_t c = 0;
        size_t len = fl_str_utf8_decode(p, n, &c);

        if (len == 0) {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", p[0]);
            len = 1;
        } else if (len == 1 && (c < 0x20 || c == 0x7f)) {
            if ((c == '\n' || c == '\t') && (flags & FL_STR_MULTILINE))
                out[o++] = (char)c;
            else if (c == '\n' || c == '\t' || c == '\r')
                o += (size_t)snprintf(out + o, cap - o, "\\%c",
                                      c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
            else
                o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        } else if (s_is_unicode_control(c)) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", (unsigned)c);
        } else {
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
        n -= len;
    }
    out[o] = '\0';
    return out;
}

static int
s_shell_safe(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || strchr("@%+=:,./_-", c) != NULL;
}

char *
fl_str_shell_quote(const char *s)
{
    size_t n = strlen(s);
    size_t quotes = 0;
    int safe = n > 0;
    char *out = NULL;
    size_t o = 0;

    for (size_t i = 0; i < n; i++) {
        safe = safe && s_shell_safe(s[i]);
        quotes += s[i] == '\'';
    }
    if (safe)
        return fl_strdup(s);
    /* Each ' becomes the four characters '\'' ; two quotes around all. */
    out = fl_malloc(n + 3 * quotes + 3);
    out[o++] = '\'';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\'') {
            memcpy(out + o, "'\\''", 4);
            o += 4;
        } else {
            out[o++] = s[i];
        }
    }
    out[o++] = '\'';
    out[o] = '\0';
    return out;
}

size_t
fl_str_utf8_prefix(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);

    if (n <= max)
        return n;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}
