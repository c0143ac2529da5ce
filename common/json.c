/*
 * json.c - JSON values that cannot be NULL (see json.h).
 */
#include "common/json.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/str.h"

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

json_t *
fl_json_text(const char *s)
{
    json_t *v = NULL;
    char *shown = NULL;

    if (s == NULL)
        return json_null();
    if ((v = json_string(s)) != NULL)
        return v;
    /* Not UTF-8: the bytes shown as \xHH, as text output shows them. */
    shown = fl_str_escape_controls(s, FL_STR_MULTILINE);
    v = json_string(shown);
    free(shown);
    return v ? v : json_string("");
}
