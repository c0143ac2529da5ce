/*
 * str.h - making untrusted text safe to show: escaping the characters a
 * terminal would act on, and quoting words for a shell command in a hint.
 *
 * Text from a bundle, a database or a peer may hold escape sequences
 * that recolour, move the cursor, rewrite the title, hide the rest of a
 * line (carriage return) or reorder what is shown (bidirectional
 * controls, "Trojan Source").  Anything printed for a person goes through
 * fl_str_escape_controls() first; JSON output needs no such step because
 * the encoder escapes control characters itself.
 *
 * Stateless and thread safe.
 */
#ifndef FL_COMMON_STR_H
#define FL_COMMON_STR_H

#include <stddef.h>
#include <stdint.h>

/* Keep newlines and tabs, for multi-line text such as SQL. */
#define FL_STR_MULTILINE 1u

/*
 * Returns a new string (never NULL; the caller frees it): s with every
 * character a terminal could act on written as an escape, everything
 * else unchanged:
 *   - C0 controls and DEL: \n, \r, \t, else \xHH (\n and \t are kept as
 *     they are with FL_STR_MULTILINE; \r never is);
 *   - C1 controls U+0080..U+009F, the bidirectional controls (U+061C,
 *     U+200E, U+200F, U+202A..U+202E, U+2066..U+2069) and the line and
 *     paragraph separators U+2028, U+2029: \uHHHH;
 *   - bytes that are not valid UTF-8 (overlong forms, surrogates, cut
 *     sequences): \xHH each.
 * The result is valid UTF-8 with none of those characters.  Backslashes
 * are not doubled: the result is for reading, not for decoding back.
 * s must not be NULL.
 */
char *fl_str_escape_controls(const char *s, unsigned flags);

/*
 * Decodes the UTF-8 sequence at p (n >= 1 bytes available), strictly
 * (RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF):
 * returns its length (1 to 4) and sets *cp (when not NULL) to its code
 * point, or returns 0 when p does not start a valid sequence.  NUL is a
 * valid one-byte sequence here; callers that refuse it check for it.
 */
size_t fl_str_utf8_decode(const unsigned char *p, size_t n, uint32_t *cp);

/* 1 when s is exactly len lower-case hexadecimal digits (an id). */
int fl_str_is_hex(const char *s, size_t len);

/*
 * The length of the longest prefix of s of at most max bytes that does
 * not end inside a UTF-8 sequence (it stops before a continuation byte):
 * where to cut a text to at most max bytes.  s must not be NULL.
 */
size_t fl_str_utf8_prefix(const char *s, size_t max);

/*
 * Returns s as one shell word (new string, never NULL): unchanged when it
 * holds only characters no shell treats specially ([A-Za-z0-9@%+=:,./_-],
 * not empty), else in single quotes with each ' written as '\''.  For the
 * commands that hints tell a person to run.
 */
char *fl_str_shell_quote(const char *s);

#endif
