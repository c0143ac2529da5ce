/*
 * wire.h - the messages between coordinator, agents and operators.
 *
 * Every message is one msgpack map with two envelope keys, "v" (protocol
 * version, FL_WIRE_VERSION) and "type" (the names in fl_wire_type_name()),
 * and the fields of its type.  Decoding is strict and bounded (see
 * codec.h): counts are checked against the bytes left before anything is
 * allocated, strings are limited to FL_WIRE_MAX_STR bytes and whole
 * messages to FL_WIRE_MAX_SIZE, trailing bytes, truncation, wrong types,
 * duplicate keys and missing required fields are FL_EPROTO errors, and
 * unknown keys are ignored so that a newer peer may add fields.  A
 * message with another protocol version is refused.
 *
 * The structs are plain C: decoding fills new allocations that
 * fl_wire_msg_release() frees; encoding only reads them.  Optional
 * strings are NULL when absent.  Not thread safe per message.
 *
 * Version 2 (issue 9): a bundle transfer carries the SHA-256 of its bytes
 * under "sha256" (version 1 had a BLAKE2b "digest"), the hash bundles
 * themselves use.  Decoding checks that hash only; what the bytes are is
 * known after fl_wire_bundle_verify(), which an agent calls before it
 * caches anything, and the id it caches under is the one that function
 * returns, computed from the verified bytes, never the claimed bundle_id.
 * Key ids (key.h) stay BLAKE2b: they name keys, they check nothing.
 *
 * Version 3 (issue 11, the fleet): a hello carries the agent's labels,
 * each target's kind, environment, labels and ledger rows (with status
 * and rollout) or why they are unknown, and the ids of the commands the
 * agent holds (queued, running, or answered but not yet acknowledged);
 * a welcome carries the heartbeat timeout; a result names its action and
 * may carry a plan report; a control request may carry bytes (a bundle).
 * New: bundle_request (an agent asks for a bundle it does not hold) and
 * result_ack (the coordinator has recorded these results).  A ledger
 * reply without an id is unsolicited: the agent learnt a target's state.
 *
 * Version 4 (issue 14): migration versions are text (version.h), sent as
 * strings: a ledger row's version, a command's to_version (empty: all)
 * and a result's version (empty: none applied).
 *
 * Still version 4 (issue 12): a command may carry "attempt" (an integer,
 * 0 when absent): a retry of an apply that halt --abort cancelled, which
 * the agent runs again rather than answering from the failed ledger row
 * the cancel left.  An added key needs no new version: a peer that does
 * not know it ignores it (and answers a retry from the ledger, as
 * before: nothing runs twice).  A rollout's rollback command carries
 * "undoes" (the rollout it rolls back): the agent rolls back only the
 * migrations of the bundle whose ledger rows that rollout wrote, not
 * those an earlier rollout of the same bundle applied (a peer that does
 * not know the key rolls back the whole bundle, as before).
 *
 * Version 5: a hello may come in parts (part, parts), each under the
 * hello's part budget (FL_WIRE_HELLO_PART): an agent's ledgers, a row
 * per migration per target, grow past the coordinator's message limit
 * (16 MiB by default) with enough tenants, and such an agent could not
 * say hello again once it held them.  A version 4 coordinator would
 * take each part for a whole hello, so the version changes.
 *
 * The session (docs/fleet.md): an agent's DEALER connects and says hello;
 * the coordinator answers welcome; both send heartbeats; the coordinator
 * sends commands, the agent asks for bundles, streams step events and one
 * result per command, and forgets a result only when result_ack names it.
 */
#ifndef FL_PROTO_WIRE_H
#define FL_PROTO_WIRE_H

#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/error.h"
#include "proto/bundle.h"
#include "proto/codec.h"
#include "proto/version.h"

#define FL_WIRE_VERSION 5
/* A bundle transfer carries a whole bundle; nothing else comes close. */
/* The most bytes of targets an agent puts in one part of its hello. */
#define FL_WIRE_HELLO_PART ((size_t)256 * 1024)
/* The most parts a hello may have (the coordinator also keeps at most
 * 32 MiB of them, registry.c). */
#define FL_WIRE_HELLO_PARTS 1024
#define FL_WIRE_MAX_SIZE ((size_t)65 * 1024 * 1024)
#define FL_WIRE_MAX_STR ((size_t)1024 * 1024)

typedef enum {
    FL_WIRE_HELLO = 1,     /* agent -> coordinator, first message */
    FL_WIRE_WELCOME,       /* coordinator -> agent, answers hello */
    FL_WIRE_HEARTBEAT,     /* both ways */
    FL_WIRE_BUNDLE,        /* coordinator -> agent: bundle bytes */
    FL_WIRE_APPLY,         /* coordinator -> agent: fl_wire_command_t */
    FL_WIRE_ROLLBACK,
    FL_WIRE_PLAN,
    FL_WIRE_CANCEL,
    FL_WIRE_STEP_EVENT,    /* agent -> coordinator, per pipeline step */
    FL_WIRE_RESULT,        /* agent -> coordinator, end of a command */
    FL_WIRE_LEDGER_QUERY,  /* coordinator -> agent */
    FL_WIRE_LEDGER_REPLY,  /* agent -> coordinator */
    FL_WIRE_ERROR,         /* either way: a request could not be served */
    FL_WIRE_CONTROL_REQUEST, /* operator -> coordinator */
    FL_WIRE_CONTROL_REPLY,   /* coordinator -> operator */
    FL_WIRE_BUNDLE_REQUEST,  /* agent -> coordinator: send this bundle */
    FL_WIRE_RESULT_ACK,      /* coordinator -> agent: results recorded */
    FL_WIRE_BASELINE         /* coordinator -> agent: fl_wire_command_t,
                                record what already ran (with from) */
} fl_wire_type;

#define FL_WIRE_TYPE_COUNT 18

/* One migration as a target's ledger records it. */
typedef struct {
    fl_version_t version;
    unsigned char checksum[32];
    char *status;          /* applied, running, failed, rolling_back,
                              rolled_back */
    char *rollout;         /* optional: the rollout that last wrote it */
} fl_wire_applied_t;

/* A target and its ledger state (hello and ledger reply). */
typedef struct {
    char *target;          /* unique in the fleet: "shard-a/tenant_042" */
    char *kind;            /* optional: "database" or "schema" */
    char *environment;     /* optional: where bundles may run on it */
    fl_codec_kv_t *labels; /* optional */
    size_t nlabels;
    int known;             /* 1: applied is the ledger as read */
    fl_wire_applied_t *applied; /* in version order; optional */
    size_t napplied;
    char *error;           /* optional: why the ledger is not known */
} fl_wire_target_t;

typedef struct {
    char *agent;          /* agent name */
    char *agent_version;  /* flotilla version of the agent; optional */
    int part, parts;      /* optional (0: one part): this is part `part`
                             (from 0) of `parts`; the agent's name, labels
                             and holding come in part 0, its targets are
                             spread over the parts in order */
    fl_codec_kv_t *labels; /* the agent's labels; optional */
    size_t nlabels;
    fl_wire_target_t *targets;
    size_t ntargets;
    char **holding;       /* command ids held: optional */
    size_t nholding;
} fl_wire_hello_t;

typedef struct {
    char *coordinator;     /* coordinator name */
    char *session;         /* session id the agent echoes */
    int64_t heartbeat_ms;  /* interval the agent must keep */
    int64_t timeout_ms;    /* silence after which a side gives up */
} fl_wire_welcome_t;

typedef struct {
    int64_t seq;
    int64_t time_ms;       /* sender's clock, Unix milliseconds */
} fl_wire_heartbeat_t;

typedef struct {
    char *bundle_id;          /* claimed; see fl_wire_bundle_verify() */
    unsigned char sha256[32]; /* SHA-256 of data, checked on receipt */
    unsigned char *data;      /* the bundle file's bytes */
    size_t len;
} fl_wire_bundle_t;

/* apply, rollback, plan, cancel and baseline: one command, one target. */
typedef struct {
    char *id;              /* command id, unique; results echo it */
    char *rollout;
    char *target;
    char *bundle_id;
    fl_version_t to_version; /* apply up to / roll back down to; empty:
                                all */
    char *from;            /* optional; baseline: the tool whose ledger
                              says what ran (NULL: up to to_version) */
    int attempt;           /* "attempt", 0 when absent: n > 0 makes an
                              apply the n-th retry of a run that halt
                              --abort cancelled (its ledger's failed row
                              is run again, not answered from); never
                              negative */
    char *undoes;          /* optional; a rollout's rollback: that
                              rollout's id (roll back what it applied) */
} fl_wire_command_t;

typedef struct {
    char *rollout;
    char *target;
    char *step;            /* verify, validate, backup, execute, log, ... */
    char *status;          /* started, ok, failed, skipped */
    int64_t duration_ms;
    char *message;         /* optional */
    char *error;           /* optional: fl_error_t message */
    char *detail;          /* optional */
    char *hint;            /* optional */
    char *sqlstate;        /* optional */
} fl_wire_step_event_t;

typedef struct {
    char *id;              /* the command id answered */
    char *rollout;
    char *target;
    char *action;          /* apply, rollback, plan, cancel */
    char *status;          /* ok, failed, cancelled, refused */
    fl_version_t version;  /* the target's version afterwards; empty:
                              none applied */
    int64_t duration_ms;
    char *message;         /* optional */
    char *error;           /* optional */
    char *detail;          /* optional */
    char *hint;            /* optional */
    char *sqlstate;        /* optional */
    char *report;          /* optional: a plan's JSON report */
    int kept;              /* optional, 0: copies of the application's
                              data a rollback kept (never restored;
                              `flotilla backups list` on the target) */
} fl_wire_result_t;

typedef struct {
    char *id;
    char *target;
} fl_wire_ledger_query_t;

typedef struct {
    char *id;              /* the query answered; optional (unsolicited) */
    fl_wire_target_t state;
} fl_wire_ledger_reply_t;

typedef struct {
    char *id;              /* the request answered; optional */
    char *code;            /* fl_error_code_name() of the failure */
    char *message;
    char *detail;          /* optional */
    char *hint;            /* optional */
} fl_wire_error_t;

typedef struct {
    char *id;
    char *command;         /* e.g. "rollout.start", "halt" */
    fl_codec_kv_t *args;   /* string arguments */
    size_t nargs;
    unsigned char *data;   /* optional bytes: a bundle to dispatch */
    size_t len;
} fl_wire_control_request_t;

typedef struct {
    char *id;
    int64_t status;        /* a cli.h exit code: 0 ok */
    char *payload;         /* command output (JSON text); optional */
} fl_wire_control_reply_t;

typedef struct {
    char *bundle_id;
} fl_wire_bundle_request_t;

typedef struct {
    char **ids;            /* command ids whose results are recorded */
    size_t nids;
} fl_wire_result_ack_t;

typedef struct {
    fl_wire_type type;
    int version;           /* set by decode; encode always writes FL_WIRE_VERSION */
    union {
        fl_wire_hello_t hello;
        fl_wire_welcome_t welcome;
        fl_wire_heartbeat_t heartbeat;
        fl_wire_bundle_t bundle;
        fl_wire_command_t command; /* APPLY, ROLLBACK, PLAN, CANCEL */
        fl_wire_step_event_t step_event;
        fl_wire_result_t result;
        fl_wire_ledger_query_t ledger_query;
        fl_wire_ledger_reply_t ledger_reply;
        fl_wire_error_t error;
        fl_wire_control_request_t control_request;
        fl_wire_control_reply_t control_reply;
        fl_wire_bundle_request_t bundle_request;
        fl_wire_result_ack_t result_ack;
    } u;
} fl_wire_msg_t;

/* "hello", "welcome", ..., or "unknown". */
const char *fl_wire_type_name(fl_wire_type type);

/*
 * Appends the encoding of msg to out.  Fails with FL_EINVAL when a
 * required string is NULL or the message exceeds FL_WIRE_MAX_SIZE.
 */
int fl_wire_encode(fl_buf_t *out, const fl_wire_msg_t *msg,
                   fl_error_t *err) FL_NODISCARD;

/*
 * Decodes one message of exactly len bytes (lent for the call) into out,
 * which the caller releases with fl_wire_msg_release() on success; on
 * failure out is left empty.  Errors are FL_EPROTO.
 */
int fl_wire_decode(fl_wire_msg_t *out, const unsigned char *data, size_t len,
                   fl_error_t *err) FL_NODISCARD;

/* Frees what a decoded message holds and zeroes it; accepts NULL. */
void fl_wire_msg_release(fl_wire_msg_t *msg);

/*
 * Verifies a bundle transfer (lent for the call) before anything is
 * cached: the SHA-256 of its bytes, the bundle itself against trust with
 * opts (fl_bundle_verify_bytes(); opts NULL = the defaults), and that
 * the claimed bundle_id is the id of the verified bytes.  On success
 * id_out holds that id, the only one to cache the bytes under, and, when
 * out is not NULL, *out the verified bundle (new).  Errors: FL_EPROTO,
 * each check with its own message ("bundle transfer claims id ..." when
 * the ids differ).
 */
int fl_wire_bundle_verify(char id_out[FL_BUNDLE_ID_HEX], fl_bundle_t **out,
                          const fl_wire_bundle_t *msg, const fl_trust_t *trust,
                          const fl_bundle_verify_opts_t *opts,
                          fl_error_t *err) FL_NODISCARD;

#endif
