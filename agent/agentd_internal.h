/*
 * agentd_internal.h - the agent daemon's state, shared by its modules
 * (daemon.c, targets.c, command.c) only.  The pipeline library (pipeline.h
 * and the files behind it) never includes this: the dependency goes one
 * way, from the daemon to the library.
 *
 * The loop's thread owns fl_ag_daemon_t, the targets and the bundle
 * cache.  A job is owned by whoever holds it: the loop until it submits
 * it, a worker while it runs (reading only the job and the immutable
 * settings), the loop again once posted back.  A running job's pipeline
 * pointer and cancel flag are the one thing both sides touch, under the
 * job's lock.
 */
#ifndef FL_AGENT_AGENTD_INTERNAL_H
#define FL_AGENT_AGENTD_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/agentconf.h"
#include "agent/journal.h"
#include "agent/pg.h"
#include "agent/pipeline.h"
#include "agent/source.h"
#include "agent/workers.h"
#include "common/buf.h"
#include "common/map.h"
#include "proto/transport.h"
#include "proto/wire.h"

typedef struct fl_ag_job fl_ag_job_t;

/* A target this agent owns. */
typedef struct {
    char *name;
    char *dsn;
    char *schema;            /* NULL: the whole database */
    char *database;          /* for people */
    char *environment;
    char **labels;           /* "key=value": the agent's, then its own */
    size_t nlabels;
    fl_codec_kv_t *kv;       /* the same labels split, for the wire */
    int rule;                /* discovery rule, or -1: static */
    int present;             /* found by the last run of its rule */
    /* The ledger as last read (or told by a command's result). */
    int known;
    int unsent;              /* read since the last hello, not sent yet */
    fl_wire_applied_t *rows;
    size_t nrows;
    char *error;
    /* Work: one command at a time per target, the rest wait. */
    fl_ag_job_t *running;
    fl_ag_job_t *wait_head, *wait_tail;
    uint64_t runs;           /* commands submitted so far */
    int gathering;
} fl_ag_target_t;

typedef enum {
    FL_AG_BUNDLE_NONE = 0,
    FL_AG_BUNDLE_REQUESTED,  /* asked the coordinator */
    FL_AG_BUNDLE_VERIFYING,  /* a worker verifies bytes received or cached */
    FL_AG_BUNDLE_READY,      /* verified: src opened */
    FL_AG_BUNDLE_BAD         /* verification failed: commands refused */
} fl_ag_bundle_state;

typedef struct {
    char id[FL_BUNDLE_ID_HEX];
    fl_ag_bundle_state state;
    fl_source_t src;         /* READY; read by workers, never changed */
    char *error;             /* BAD: why */
    int64_t requested_ms;
    fl_ag_job_t *wait_head, *wait_tail;
} fl_ag_bundle_t;

typedef enum {
    FL_AG_JOB_RUN = 1,   /* a command on a target */
    FL_AG_JOB_GATHER,    /* read a target's ledger */
    FL_AG_JOB_DISCOVER,  /* run a discovery rule */
    FL_AG_JOB_VERIFY,    /* verify bundle bytes */
    FL_AG_JOB_EVENT      /* a step event to send (worker to loop) */
} fl_ag_job_kind;

/* A target found by discovery. */
typedef struct {
    char *name;
    char *dsn;
    char *schema;
    char *database;
} fl_ag_found_t;

struct fl_ag_job {
    fl_ag_job_kind kind;
    /* RUN and GATHER: the target, copied when the job is submitted. */
    char *target;
    char *dsn;
    char *schema;
    char *environment;
    char **labels;
    size_t nlabels;
    /* RUN */
    fl_wire_msg_t cmd;           /* the command as received */
    const fl_source_t *src;      /* lent from the bundle cache */
    pthread_mutex_t lock;        /* guards pipeline and cancelled */
    fl_pipeline_t *pipeline;
    int cancelled;
    int64_t cancel_ms;           /* loop only: when a cancel came, 0 */
    int aborted;                 /* loop only: its connection closed */
    /* GATHER, DISCOVER, and RUN's read of the ledger on a connection of
     * its own (when the run's cannot): the connection the read waits
     * on, from the time it opened (guarded by lock); in the loop's list
     * of reads, which read_timeout and a stop cut. */
    fl_pg_t *pg;
    int64_t pg_ms;
    int read_cut;                /* pg closed under the read (lock) */
    fl_ag_job_t *read_prev, *read_next;
    fl_wire_result_t result;     /* filled by the worker (owned strings) */
    int has_result;
    int order_ready;             /* RUN: see order_next */
    int replayed;                /* RUN: carried out again from the
                                    journal after a restart */
    int after_stop;              /* RUN: ... and its run was cut by the
                                    daemon's own stop (ID.stop) */
    /* RUN and GATHER: the target's state afterwards. */
    fl_wire_target_t state;
    /* GATHER: the target's runs when submitted. */
    uint64_t runs;
    /* DISCOVER */
    size_t rule;
    fl_ag_found_t *found;
    size_t nfound;
    /* VERIFY */
    char *bundle_id;             /* the claimed (transfer) or cached id */
    unsigned char *bytes;
    size_t len;
    int from_cache;
    fl_source_t verified;        /* on success, moved into the cache */
    /* EVENT */
    fl_buf_t encoded;
    /* Any: how it ended. */
    int rc;
    fl_error_t err;
    fl_ag_job_t *next;           /* in a target's or a bundle's wait list */
    /* RUN: in its target's order list (fl_ag_order_t) until it goes to
     * the target or is answered; ready: it may go once those before it
     * have. */
    fl_ag_job_t *order_next;
};

/* A target's commands in the order they came (daemon.c, s_order_add). */
typedef struct {
    char *target;
    fl_ag_job_t *head, *tail;    /* linked by order_next */
} fl_ag_order_t;

/* The session with the coordinator (daemon.c describes the machine). */
typedef enum {
    FL_AG_DOWN = 0,
    FL_AG_CONNECTING,
    FL_AG_HELLO_SENT,
    FL_AG_ONLINE
} fl_ag_session;

typedef struct {
    char id[65];
    unsigned char *bytes;        /* the encoded result */
    size_t len;
    int sent;                    /* sent in this session */
} fl_ag_outbox_t;

typedef struct {
    const fl_ag_settings_t *cfg;
    fl_cert_t *cert;
    char server_key[FL_KEY_Z85_LEN + 1];
    char *backup_dir;
    fl_link_t *link;
    fl_ag_session session;
    int64_t backoff_ms;
    int64_t next_connect_ms;
    int64_t hello_sent_ms;
    int64_t last_rx_ms;
    int64_t heartbeat_ms;
    int64_t timeout_ms;
    int64_t next_heartbeat_ms;
    int64_t next_discovery_ms;
    int64_t next_state_ms;       /* when every ledger is read again */
    int64_t last_refusal_log_ms;
    uint64_t seq;
    int connected;               /* a handshake succeeded on this link */
    fl_journal_t *journal;
    fl_workers_t *workers;
    fl_map_t *targets;           /* name -> fl_ag_target_t */
    fl_map_t *jobs;              /* command id -> fl_ag_job_t (held) */
    fl_map_t *outbox;            /* command id -> fl_ag_outbox_t */
    fl_map_t *bundles;           /* id -> fl_ag_bundle_t */
    fl_map_t *orders;            /* target name -> fl_ag_order_t */
    size_t discovering;          /* discovery jobs out */
    int started;                 /* first discovery done, journal read */
    unsigned char *rule_ran;     /* per discovery rule: it has run once
                                    without an error since the start */
    size_t rules_ran;            /* how many have */
    fl_ag_job_t *parked_head, *parked_tail; /* commands for a target not
                                    known while a rule has not run yet */
    int rehello;                 /* the hello out was sent online (the
                                    targets changed), not to connect */
    int gather_all;              /* SIGHUP: read every ledger after the
                                    discovery it started */
    fl_ag_job_t *reads;          /* GATHER and DISCOVER jobs out */
    int64_t next_abort_ms;       /* when overdue cancels and reads are
                                    looked for again */
    fl_trust_t *trust;           /* the trust store as last read, for the
                                    check of a verified bundle at each
                                    command; NULL when it did not load */
    char *trust_error;           /* why it did not load */
    int64_t trust_ms;            /* when it was read; 0: read it again */
    int stopping;
} fl_ag_daemon_t;

/* targets.c */

/* Adds the static targets of the settings. */
int fl_ag_targets_init(fl_ag_daemon_t *d, fl_error_t *err) FL_NODISCARD;
/* Worker side of discovery: fills job->found for job->rule. */
void fl_ag_discover(fl_ag_daemon_t *d, fl_ag_job_t *job);
/*
 * Loop side: merges a discovery job's findings (added, updated, gone);
 * returns 1 when the set of targets changed.
 */
int fl_ag_targets_merge(fl_ag_daemon_t *d, fl_ag_job_t *job);
/*
 * Reads a target's ledger into state (kind, environment, labels set by
 * the caller); on failure state->known is 0 and state->error says why.
 * Uses the caller's connection slot.  Worker side.
 */
void fl_ag_read_state(fl_ag_job_t *job, fl_wire_target_t *state);
/*
 * Worker side: the connection a background read waits on, set (pg) once
 * it is open and cleared (NULL) before it is closed, so that the loop
 * can close a read its server never answers (read_timeout).
 */
void fl_ag_job_set_pg(fl_ag_job_t *job, fl_pg_t *pg);
/*
 * Sets state from a ledger read elsewhere (l, lent for the call), or,
 * when l is NULL, to unknown with err's message.  state's old contents
 * are not freed (fl_ag_state_release first).
 */
void fl_ag_state_set(fl_wire_target_t *state, const fl_ledger_t *l,
                     const fl_error_t *err);
/* Frees what a fl_wire_target_t built by this module holds. */
void fl_ag_state_release(fl_wire_target_t *state);
/* Describes t as a wire target (every pointer lent from t). */
void fl_ag_target_wire(const fl_ag_target_t *t, fl_wire_target_t *out);
/* Takes the state a job read (moved) into t. */
void fl_ag_target_take_state(fl_ag_target_t *t, fl_wire_target_t *state);
void fl_ag_target_free(fl_ag_target_t *t);

/* command.c: a command on a worker. */
void fl_ag_run(fl_ag_daemon_t *d, fl_ag_job_t *job);

/* daemon.c */
void fl_ag_job_free(fl_ag_job_t *job);

#endif
