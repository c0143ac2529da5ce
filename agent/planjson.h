/*
 * planjson.h - the dry run's report as JSON (see planjson.c).
 */
#ifndef FL_AGENT_PLANJSON_H
#define FL_AGENT_PLANJSON_H

#include <jansson.h>

#include "agent/pipeline.h"

/*
 * The report as a new JSON object: the target, the verdicts ("ok",
 * "proven", "pending", "rehearsed"), each migration with its statements,
 * locks, checks, lint findings and verdict, and the sequences put back.
 * Never NULL (fl_json_pack aborts on a broken format).
 */
json_t *fl_plan_json(const fl_plan_t *plan);

/*
 * The schema state as status and plan print it (a new reference):
 * {recorded_after, recorded_at, changed}, or null when nothing is known.
 */
json_t *fl_schema_state_json(const fl_schema_state_t *st);

/*
 * report (fl_plan_json's) as compact JSON text of at most max bytes, for a
 * message that has a size limit (an agent's result).  A report that fits
 * is returned whole.  One that does not is cut in steps until it fits,
 * and its "cut" member says what was left out: every text longer than
 * FL_PLAN_CUT_TEXT bytes shortened (statements' SQL first); then the
 * migrations' statements, lint and validation details; then the
 * migrations whose verdict is "ok"; then every migration but the first
 * refused or failed one, reduced to its version, verdict and problem (the
 * reason a reader gives for the verdict).  The verdicts
 * (ok, proven, pending, not rehearsed, problem, and each migration kept
 * with its verdict and problem) are never cut, so a verdict read from
 * the text is the whole report's.  report is changed.  A new string;
 * NULL only when not even the verdicts fit.
 */
#define FL_PLAN_CUT_TEXT 256
char *fl_plan_json_fit(json_t *report, size_t max);

#endif
