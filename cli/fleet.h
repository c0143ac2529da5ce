/*
 * fleet.h - what the fleet commands (agents, targets, dispatch) share:
 * the coordinator's control endpoint and the operator's certificates from
 * flags or the environment, and one request/reply exchange over CURVE.
 */
#ifndef FL_CLI_FLEET_H
#define FL_CLI_FLEET_H

#include <getopt.h>
#include <jansson.h>
#include <stdint.h>

#include "common/error.h"
#include "proto/codec.h"

/* Long options of every fleet command (ids 2000+). */
enum {
    FL_FLEET_OPT_COORDINATOR = 2000,
    FL_FLEET_OPT_CERT,
    FL_FLEET_OPT_SERVER_CERT,
    FL_FLEET_OPT_JSON,
    FL_FLEET_OPT_TIMEOUT,
    FL_FLEET_OPT_HELP
};

#define FL_FLEET_LONGOPTS                                                   \
    {"coordinator", required_argument, NULL, FL_FLEET_OPT_COORDINATOR},     \
    {"cert", required_argument, NULL, FL_FLEET_OPT_CERT},                   \
    {"server-cert", required_argument, NULL, FL_FLEET_OPT_SERVER_CERT},     \
    {"json", no_argument, NULL, FL_FLEET_OPT_JSON},                         \
    {"timeout", required_argument, NULL, FL_FLEET_OPT_TIMEOUT},             \
    {"help", no_argument, NULL, FL_FLEET_OPT_HELP}

typedef struct {
    const char *cmd;
    const char *endpoint;     /* --coordinator or FLOTILLA_COORDINATOR */
    const char *cert;         /* --cert or FLOTILLA_CERT (secret cert) */
    const char *server_cert;  /* --server-cert or FLOTILLA_SERVER_CERT */
    int json;
    int64_t timeout_ms;       /* --timeout: how long to wait in all */
} fl_fleet_opts_t;

/* Defaults, then the environment. */
void fl_fleet_init(fl_fleet_opts_t *o, const char *cmd, int64_t timeout_ms);

/* Prints usage, then the shared options with o's --timeout default. */
void fl_fleet_print_help(const fl_fleet_opts_t *o, const char *usage);

/*
 * Handles one of the shared options: 1 when it was one, 0 when not, -1
 * after reporting a bad value (exit 2).
 */
int fl_fleet_option(fl_fleet_opts_t *o, int opt, const char *arg);

/* Handles a command's own option: 1 taken, 0 not its, -1 bad (reported). */
typedef int (*fl_fleet_opt_fn)(int opt, const char *arg, void *ctx);

/*
 * Parses argv (getopt_long with opts): the shared options into o, the
 * others through extra (may be NULL).  Returns -1 when the command goes
 * on (optind is at the first operand), else the exit code to return: 0
 * after --help (usage, then the shared options' help), 2 on a bad option.
 */
int fl_fleet_parse(fl_fleet_opts_t *o, int argc, char **argv,
                   const struct option *opts, const char *usage,
                   fl_fleet_opt_fn extra, void *ctx);

typedef struct fl_fleet fl_fleet_t;

/*
 * Loads the operator's certificate and the coordinator's public key and
 * connects.  FL_EINVAL when one is missing or invalid (exit 2).
 */
int fl_fleet_open(fl_fleet_t **out, const fl_fleet_opts_t *o,
                  fl_error_t *err) FL_NODISCARD;
void fl_fleet_close(fl_fleet_t **f);

/* Whether the last fl_fleet_call sent its request (the handshake done). */
int fl_fleet_sent(const fl_fleet_t *f);

/*
 * Sends one request (command, string arguments, optional bytes) and
 * waits up to wait_ms for its reply: *status (a cli.h exit code) and
 * *payload (new JSON, or NULL).  FL_ETIMEOUT: no reply in time (the
 * error says whether the request went out at all: fl_fleet_sent);
 * FL_EFAIL: the coordinator refused this operator's certificate or the
 * handshake failed (a pinned key that is not the coordinator's); both
 * mean exit 4.
 */
int fl_fleet_call(fl_fleet_t *f, const char *command,
                  const fl_codec_kv_t *args, size_t nargs, const void *data,
                  size_t len, int64_t wait_ms, int *status, json_t **payload,
                  fl_error_t *err) FL_NODISCARD;

/* The hint of "no reply from the coordinator": what to check. */
void fl_fleet_hint_no_reply(fl_error_t *err);

/*
 * Reports a failed call (exit 4) or a reply's error payload (its status),
 * on stderr and, with --json, as {"ok": false, "error": {...}} on stdout;
 * returns the exit code.
 */
int fl_fleet_report(const fl_fleet_opts_t *o, int rc, const fl_error_t *err,
                    int status, const json_t *payload);

#endif
