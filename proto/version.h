/*
 * version.h - the one migration version type: the version's text as a
 * tool writes it in its ledger, with one total order.
 *
 * A version is one or more runs of ASCII digits separated by single dots
 * ("42", "20190226002946", pop's 20 digits "20210410175418123456", Flyway's
 * "1.2"), at most FL_VERSION_MAX bytes.  Leading zeros of each run are
 * dropped when a version is parsed (diesel's "00000000000000" is "0",
 * flotilla's "0003" is "3"), so that equal versions have equal text and the
 * text can be compared, stored and sent as it is.
 *
 * The order (docs/migrations.md, "Versions"): run by run from the left, a
 * run of more digits is greater, runs of as many digits compare as text
 * (so by value, without any overflow); when every run of one version
 * equals the first runs of the other, the one with fewer runs is smaller
 * ("1" < "1.0" < "1.0.1" < "1.1").  The empty version (no version: "all",
 * "none applied") sorts before every other.
 *
 * Limits, where a tool orders otherwise: diesel, pop and dbmate sort
 * versions as strings, which is this order when the versions have the same
 * number of digits (their generators write timestamps of one width);
 * Flyway holds "1" and "1.0" equal, which this order does not (Flyway
 * refuses both in one history anyway).
 *
 * In SQL the same order is FL_VERSION_SQL_ORDER(column): the runs as a
 * numeric[] (numeric has no overflow either, and arrays compare element by
 * element, a prefix first).  Thread safety: no state.
 */
#ifndef FL_PROTO_VERSION_H
#define FL_PROTO_VERSION_H

#include <stddef.h>
#include <stdint.h>

#include "common/error.h"

/* The longest version text accepted, in bytes. */
#define FL_VERSION_MAX 64

/* A version by value: copy it with '='; text is NUL-terminated, empty
 * when there is no version. */
typedef struct {
    char text[FL_VERSION_MAX + 1];
} fl_version_t;

#define FL_VERSION_INIT {{0}}

/* The SQL expression that orders a text column of versions as
 * fl_version_cmp() does (col must not be empty text). */
#define FL_VERSION_SQL_ORDER(col)                                          \
    "pg_catalog.string_to_array(" col ", '.')::pg_catalog.numeric[]"

/*
 * Parses len bytes of text (not NUL-terminated necessarily) into out,
 * dropping the leading zeros of each run.  FL_EINVAL, showing the value,
 * when it is empty, longer than FL_VERSION_MAX, or not digit runs
 * separated by single dots.
 */
int fl_version_parse(fl_version_t *out, const char *text, size_t len,
                     fl_error_t *err) FL_NODISCARD;

/* Parses a NUL-terminated text; as fl_version_parse(). */
int fl_version_parse_str(fl_version_t *out, const char *text,
                         fl_error_t *err) FL_NODISCARD;

/*
 * Parses a version as a tool writes it in its file and folder names into
 * the version as its ledger records it: a dash between two digits is
 * dropped, as diesel does ("2019-02-26-002946" is "20190226002946"), an
 * underscore between two digits is a dot, as for Flyway ("1_2" is "1.2");
 * any text fl_version_parse_str() takes reads the same.  For versions an
 * operator types (lint.enforce_from); as fl_version_parse_str()
 * otherwise, its errors quoting text as given.
 */
int fl_version_parse_tool(fl_version_t *out, const char *text,
                          fl_error_t *err) FL_NODISCARD;

/* Whether text is already a version as fl_version_parse() writes it. */
int fl_version_is_canonical(const char *text);

/* out = the decimal version of v. */
void fl_version_set_u64(fl_version_t *out, uint64_t v);

/* Whether v holds a version (the empty version is none). */
int fl_version_is_set(const fl_version_t *v);

/* The order above: <0, 0 (equal text), >0. */
int fl_version_cmp(const fl_version_t *a, const fl_version_t *b);

/* The same order on two canonical texts (NULL as empty). */
int fl_version_cmp_text(const char *a, const char *b);

/* Whether v is one digit run that fits in a uint64_t; sets *out then. */
int fl_version_to_u64(const fl_version_t *v, uint64_t *out);

#endif
