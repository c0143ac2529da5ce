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

#endif
