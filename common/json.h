/*
 * json.h - building JSON values that cannot be NULL.
 *
 * jansson's json_pack returns NULL when an argument cannot be encoded (a
 * string that is not UTF-8: a name from a SQL_ASCII database, a field of
 * a hostile bundle), and json_array_append_new or json_dumps given NULL
 * lose the value silently or crash the caller.  fl_json_pack never
 * returns NULL: a value it cannot encode becomes an object saying so,
 * {"error": "..."} with jansson's message and position, and a warning goes
 * to the log, so output stays valid JSON and the loss is visible.
 */
#ifndef FL_COMMON_JSON_H
#define FL_COMMON_JSON_H

#include <jansson.h>

json_t *fl_json_pack(const char *fmt, ...);

/*
 * A JSON string of any bytes: s itself when it is UTF-8, otherwise s as
 * fl_str_escape_controls shows it (each byte that is not UTF-8 as \xHH).
 * NULL gives JSON null.
 */
json_t *fl_json_text(const char *s);

#endif
