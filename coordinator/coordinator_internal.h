/*
 * coordinator_internal.h - the coordinator's in-memory state, shared by
 * the modules of coordinator/ only.
 *
 * Everything here belongs to the event loop's thread (server.c); the
 * store's thread never touches it (it sees only the jobs handed to it).
 * Agents, targets and bundles live until the coordinator stops, so that
 * commands and targets may point at them; dispatches are dropped from
 * memory some time after they finish (their rows stay in the state
 * database).  Memory per target is kept small (docs/BENCHMARKS.md): a
 * target, its ledger rows, one command per dispatch and two map slots.
 */
#ifndef FL_COORDINATOR_INTERNAL_H
#define FL_COORDINATOR_INTERNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/map.h"
#include "common/parse.h"
#include "coordinator/settings.h"
#include "proto/bundle.h"
#include "proto/transport.h"
#include "proto/wire.h"

/*
 * Statuses of control replies: the exit codes `flotilla` returns for them
 * (cli/cli.h), so that an operator's command passes them on unchanged.
 */
enum {
    FL_CO_EXIT_OK = 0,
    FL_CO_EXIT_FAILED = 1,
    FL_CO_EXIT_USAGE = 2,
    FL_CO_EXIT_REFUSED = 3
};

typedef struct fl_store fl_store_t;
struct fl_store_job;

/* Labels: parallel arrays, the shape fl_selector_matches() takes. */
typedef struct {
    char **keys;
    char **values;
    size_t n;
} fl_co_labels_t;

/* One row of a target's ledger as its agent reported it. */
typedef struct {
    fl_version_t version;
    unsigned char checksum[32];
    uint8_t status; /* FL_CO_ROW_* */
    char *rollout;  /* NULL when the row names none */
} fl_co_row_t;

enum {
    FL_CO_ROW_APPLIED = 1,
    FL_CO_ROW_RUNNING,
    FL_CO_ROW_FAILED,
    FL_CO_ROW_ROLLING_BACK,
    FL_CO_ROW_ROLLED_BACK,
    FL_CO_ROW_OTHER
};

typedef struct fl_co_agent fl_co_agent_t;
typedef struct fl_co_target fl_co_target_t;
typedef struct fl_co_command fl_co_command_t;
typedef struct fl_co_dispatch fl_co_dispatch_t;
typedef struct fl_co_rollout fl_co_rollout_t;

/* Session states of an agent (registry.c describes the machine). */
typedef enum {
    FL_CO_AGENT_UNKNOWN = 0, /* loaded from the state database, not seen */
    FL_CO_AGENT_ONLINE,      /* said hello; heartbeats arrive */
    FL_CO_AGENT_OFFLINE,     /* missed its heartbeats, or its session ended */
    FL_CO_AGENT_REVOKED      /* its certificate left the agents directory */
} fl_co_agent_state;

struct fl_co_agent {
    char key[FL_KEY_Z85_LEN + 1]; /* CURVE public key: the identity */
    char *name;                   /* the enrolled certificate's name */
    char *claimed;                /* the name its hello gave */
    char *version;
    fl_co_labels_t labels;
    fl_co_agent_state state;
    unsigned char rid[FL_LINK_PEER_MAX]; /* routing id of the session */
    size_t rid_len;
    char session[33];
    int64_t last_seen_ms;         /* monotonic */
    int64_t last_seen_wall;       /* Unix seconds */
    fl_co_target_t **targets;     /* owned by the registry */
    size_t ntargets, targets_cap;
    /* Commands to send, oldest first, and how many are out. */
    fl_co_command_t *outq_head, *outq_tail;
    size_t inflight;
    /* Commands without an outcome, in any state (intrusive list). */
    fl_co_command_t *open;
    fl_map_t *holding;            /* ids its last hello said it holds */
    char **holding_ids;
    size_t nholding;
    /* Acknowledgements to send after the next store commit. */
    char **acks;
    size_t nacks, acks_cap;
    uint64_t malformed;           /* malformed messages received */
    /* The parts of a hello received so far (fl_registry_hello_part). */
    fl_wire_msg_t *hello_parts;
    size_t nhello_parts;
    size_t hello_bytes;
};

struct fl_co_target {
    char *name;                   /* unique in the fleet */
    fl_co_agent_t *agent;         /* the owner (first agent to report it) */
    char *kind;
    char *environment;
    fl_co_labels_t labels;
    int known;                    /* rows are the ledger as read */
    fl_co_row_t *rows;
    size_t nrows;
    char *error;                  /* why the ledger is not known */
    int reported;                 /* in its agent's latest hello */
    uint32_t state_seq;           /* states taken so far: one newer than a
                                     command's (its state_seq) was read
                                     after that command ran */
};

/* What a finished command reported, kept only when it did not succeed. */
typedef struct {
    char *message;
    char *error;
    char *detail;
    char *hint;
    char *sqlstate;
    /* A timed-out command's own result, come while the decision was
     * being written: recorded once it is (dispatch.c, s_record_late). */
    int late;                     /* 1: one waits */
    int late_status;
    fl_version_t late_version;
    char *late_why;
} fl_co_detail_t;

typedef enum {
    FL_CO_CMD_HELD = 0,    /* a rollout's target whose turn has not come
                              (or was taken back by a halt): never sent */
    FL_CO_CMD_WRITING,     /* the decision is being written */
    FL_CO_CMD_QUEUED,      /* written; waits in its agent's send queue */
    FL_CO_CMD_SENT,        /* sent (or maybe sent, before a restart) */
    FL_CO_CMD_RECORDING,   /* its outcome is being written */
    FL_CO_CMD_DONE         /* outcome recorded */
} fl_co_cmd_state;

typedef enum {
    FL_CO_PENDING = 0,
    FL_CO_OK,
    FL_CO_FAILED,
    FL_CO_REFUSED,
    FL_CO_CANCELLED,
    FL_CO_UNREACHABLE     /* a rollout found its agent offline: not sent */
} fl_co_status;

/* A command's id: 32 hex digits, and "-r" and its attempt for a retry. */
#define FL_CO_CMD_ID_MAX 48

/*
 * The message of a command the coordinator failed because it ran longer
 * than its rollout's target_timeout (fl_rollout_tick); what its agent
 * reports afterwards is kept in its detail (fl_dispatch_result).
 */
#define FL_CO_TIMED_OUT "timed out"

struct fl_co_command {
    char id[FL_CO_CMD_ID_MAX];    /* its dispatch's 96-bit prefix, index;
                                     a retry's adds "-rN" (attempt N) */
    fl_co_dispatch_t *dispatch;
    fl_co_target_t *target;
    fl_co_agent_t *agent;         /* the target's owner at dispatch */
    uint8_t state;                /* fl_co_cmd_state */
    uint8_t status;               /* fl_co_status */
    uint8_t reconciled;           /* outcome read from the ledger */
    uint8_t released;             /* its decision to send is written */
    uint8_t decided;              /* outcome decided by the coordinator
                                     (unreachable, timed out): no ack */
    uint8_t sent_once;            /* went on the wire (or may have) */
    uint8_t await_state;          /* sent, not held by its agent at its
                                     hello, its target's ledger unknown:
                                     reconciled when the ledger comes */
    uint8_t cancel_written;       /* failed for target_timeout while
                                     sent: its run is cancelled once the
                                     failure is written */
    int32_t wave;                 /* its rollout wave; -1 outside one */
    int32_t position;             /* its place in the rollout's order */
    int32_t attempt;              /* 0; n: the n-th retry (after a run
                                     that halt --abort cancelled) */
    uint32_t state_seq;           /* its target's when its outcome came
                                     (here: no padding to grow) */
    int64_t sent_ms;              /* monotonic, when last sent */
    const char *failed_step;      /* a static step name, or NULL */
    fl_version_t version;         /* the target's afterwards; empty: none */
    int64_t duration_ms;
    int64_t kept;                 /* copies of the application's data its
                                     rollback kept (the agent's count) */
    int64_t seq;                  /* order of outcomes in the dispatch */
    fl_co_detail_t *detail;       /* NULL when ok */
    fl_co_command_t *out_next;    /* agent's send queue */
    fl_co_command_t *open_prev, *open_next; /* agent's open commands */
};

typedef struct {
    char id[FL_BUNDLE_ID_HEX];
    unsigned char *bytes;
    size_t len;
    fl_bundle_t *bundle;          /* decoded (verified when received) */
    unsigned char *wire;          /* the bundle transfer message, encoded
                                     once for every agent that asks */
    size_t wire_len;
} fl_co_bundle_t;

/* An operator's long-poll for a dispatch's results (dispatch.wait). */
typedef struct fl_co_waiter {
    unsigned char rid[FL_LINK_PEER_MAX];
    size_t rid_len;
    char *request_id;
    int64_t after;                /* results with seq > after */
    int64_t deadline_ms;          /* monotonic */
    struct fl_co_waiter *next;
} fl_co_waiter_t;

struct fl_co_dispatch {
    char id[33];
    fl_co_bundle_t *bundle;
    char *action;                 /* apply, rollback, plan, baseline */
    fl_version_t to_version;      /* empty: all */
    char *from;                   /* baseline: the tool whose ledger says
                                     what ran; NULL otherwise */
    char *selector;
    char *operator_name;
    int64_t created_wall;         /* Unix seconds */
    int64_t finished_ms;          /* monotonic; 0 while running */
    fl_co_command_t *commands;    /* ncommands, one per target */
    size_t ncommands;
    fl_co_command_t **done_order; /* norder outcomes, in the order they
                                     were written; append-only, so a
                                     waiter's cursor (a position in it)
                                     never skips one.  A retried command
                                     keeps its old entry (skipped while it
                                     is not done, its latest outcome
                                     after) and gets a new one */
    size_t norder, order_cap;
    size_t ndone, nok, nfailed, nrefused, ncancelled, nunreachable;
    int64_t next_seq;
    int finished;                 /* its "done" is written or writing */
    fl_co_waiter_t *waiters;
    fl_co_rollout_t *rollout;     /* the rollout it belongs to, or NULL */
};

/* Counters for `flotilla coordinator status` and the benchmark. */
typedef struct {
    uint64_t transactions;        /* committed by the store */
    uint64_t rows;                /* written by those transactions */
    uint64_t retries;             /* batches retried after a failure */
    uint64_t messages_in, messages_out;
    uint64_t malformed;
} fl_co_stats_t;

typedef struct {
    const fl_co_settings_t *cfg;
    fl_cert_t *cert;
    fl_certset_t *agent_keys;
    fl_certset_t *operator_keys;
    fl_trust_t *trust;
    fl_zap_t *zap;
    fl_link_t *agents_link;
    fl_link_t *control_link;
    fl_store_t *store;
    fl_map_t *agents;             /* key -> fl_co_agent_t */
    fl_map_t *targets;            /* name -> fl_co_target_t */
    fl_map_t *commands;           /* open command id -> fl_co_command_t */
    fl_map_t *dispatches;         /* id -> fl_co_dispatch_t */
    fl_map_t *bundles;            /* id -> fl_co_bundle_t */
    fl_map_t *rollouts;           /* id -> fl_co_rollout_t (rollout.c) */
    fl_co_dispatch_t *latest;     /* the newest dispatch: drift is against
                                     its bundle */
    fl_co_stats_t stats;
    int pump_pending;             /* some agent's queue hit a full pipe */
    int64_t started_ms;           /* monotonic: when the loop started */
    char life[33];                /* made at start: a dispatch.wait
                                     cursor is a position in this life's
                                     order of outcomes only */
    int stopping;
    /* What this loop round produced, written at its end (dispatch.c). */
    struct fl_store_job *results_job;
    fl_co_command_t **results_cmds;
    size_t nresults, results_cap;
    struct fl_store_job *events_job;
    fl_co_agent_t **ackers;       /* agents with acknowledgements to send */
    size_t nackers, ackers_cap;
} fl_co_server_t;

/* Monotonic and wall clocks in milliseconds and seconds. */
int64_t fl_co_now_ms(void);
int64_t fl_co_wall_s(void);

/* A random 128-bit id in hex (33 bytes with the NUL). */
void fl_co_new_id(char out[33]);

/* Labels: copy from a wire map, release, match a selector, to JSON. */
void fl_co_labels_from_kv(fl_co_labels_t *out, const fl_codec_kv_t *kv,
                          size_t n);
void fl_co_labels_release(fl_co_labels_t *l);
int fl_co_labels_match(const fl_co_labels_t *l, const fl_selector_t *sel);

/* The value of a control request's argument key, or NULL. */
const char *fl_co_arg(const fl_wire_control_request_t *req, const char *key);

/*
 * Text from a peer made safe to keep and show: invalid UTF-8 and control
 * characters escaped (common/str.h), newlines kept.  New string; NULL
 * gives NULL.
 */
char *fl_co_clean(const char *s);

/*
 * The same, of at most max bytes of s (cut before a character, the cut
 * said): what an agent writes, which the control database keeps, is
 * bounded so that one agent cannot grow a round's job without bound.
 */
char *fl_co_clean_cut(const char *s, size_t max);

/* What an agent's step, status and message text may hold, in bytes. */
#define FL_CO_NAME_MAX 64
#define FL_CO_TEXT_MAX ((size_t)16 * 1024)

/*
 * Encodes msg and sends it to agent a's session without blocking: 0,
 * FL_ETIMEOUT (its pipe is full: try later), FL_ENOTFOUND (its connection
 * is gone: the agent is taken offline), or another code (logged).
 */
int fl_co_send_agent(fl_co_server_t *s, fl_co_agent_t *a,
                     const fl_wire_msg_t *msg);
/* The same with bytes already encoded. */
int fl_co_send_agent_raw(fl_co_server_t *s, fl_co_agent_t *a,
                         const void *data, size_t len);

/*
 * Replies to an operator's request: status is a cli.h exit code, payload
 * (stolen; may be NULL) the JSON body.
 */
void fl_co_reply(fl_co_server_t *s, const unsigned char *rid, size_t rid_len,
                 const char *request_id, int status, json_t *payload);

/*
 * An operator's long-poll (dispatch.wait, rollout.status): parses its
 * "after" (at least min_after) and "timeout_ms" arguments and returns a
 * new waiter for the caller to list, or replies with the usage error and
 * returns NULL.
 */
fl_co_waiter_t *fl_co_waiter_new(fl_co_server_t *s, const unsigned char *rid,
                                 size_t rid_len,
                                 const fl_wire_control_request_t *req,
                                 int64_t min_after);
/* Frees a list of waiters, unanswered. */
void fl_co_waiters_free(fl_co_waiter_t **list);

/* Replies with an error (status, message; detail and hint may be NULL). */
void fl_co_reply_error(fl_co_server_t *s, const unsigned char *rid,
                       size_t rid_len, const char *request_id, int status,
                       const fl_error_t *err);

#endif
