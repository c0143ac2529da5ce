/*
 * json.c - JSON values that cannot be NULL (see json.h).
 */
#include "common/json.h"

#include <stdarg.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/log.h"

json_t *
fl_json_pack(const char *fmt, ...)
{
    json_error_t e;
    json_t *v = NULL;
    va_list ap;

    va_start(ap, fmt);
    v = json_vpack_ex(&e, 0, fmt, ap);
    va_end(ap);
    if (v != NULL)
        return v;
    fl_log_warning("json", "a value could not be encoded as JSON: %s "
                   "(format \"%s\", position %d)", e.text, fmt, e.position);
    v = json_object();
    json_object_set_new(v, "error", json_string("could not be encoded as "
                                                "JSON"));
    json_object_set_new(v, "reason", json_string(e.text));
    return v;
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), or 0. */
static size_t
s_utf8_len(const unsigned char *s, size_t n)
{
    size_t len = 0;
    unsigned int c = s[0], min = 0;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, c &= 0x1f, min = 0x80;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, c &= 0x0f, min = 0x800;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, c &= 0x07, min = 0x10000;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        c = (c << 6) | (s[i] & 0x3f);
    }
    if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    return len;
}

json_t *
fl_json_text(const char *s)
{
    fl_buf_t b = FL_BUF_INIT(0);
    const unsigned char *p = (const unsigned char *)s;
    size_t n = 0;
    json_t *v = NULL;

    if (s == NULL)
        return json_null();
    n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t l = s_utf8_len(p + i, n - i);
        if (l == 0) {
            fl_buf_adds(&b, "\xef\xbf\xbd");
            i++;
        } else {
            fl_buf_addf(&b, "%.*s", (int)l, s + i);
            i += l;
        }
    }
    v = json_stringn(fl_buf_str(&b), b.len);
    fl_buf_release(&b);
    return v ? v : json_string("");
}
