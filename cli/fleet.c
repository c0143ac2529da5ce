/*
 * fleet.c - the fleet commands' connection to the coordinator (see
 * fleet.h).
 */
#include "cli/fleet.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/dbcmd.h"
#include "common/alloc.h"
#include "common/buf.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/parse.h"
#include "proto/transport.h"
#include "proto/wire.h"

/* The shared options' help; %s: --timeout's default. */
static const char s_help[] =
    "Coordinator:\n"
    "  --coordinator ENDPOINT  the control endpoint, tcp://HOST:PORT\n"
    "                         (default: FLOTILLA_COORDINATOR)\n"
    "  --cert FILE            this operator's secret certificate,\n"
    "                         PREFIX.cert_secret (default: FLOTILLA_CERT)\n"
    "  --server-cert FILE     the coordinator's public certificate, pinned\n"
    "                         (default: FLOTILLA_SERVER_CERT)\n"
    "  --timeout DURATION     how long to wait for the coordinator in all\n"
    "                         (default %s)\n"
    "  --json                 print JSON on stdout\n"
    "  --help                 show this help\n"
    "Exit codes: 0 ok, 1 failed, 2 usage, 3 refused, 4 could not reach the\n"
    "coordinator (or it refused this operator's certificate).\n";

void
fl_fleet_print_help(const fl_fleet_opts_t *o, const char *usage)
{
    char d[32];

    fl_format_duration(d, sizeof(d), o->timeout_ms);
    printf("%s", usage);
    printf(s_help, d);
}

struct fl_fleet {
    fl_cert_t *cert;
    fl_link_t *link;
    const fl_fleet_opts_t *opts;
    int sent;                /* the last call's request went out */
};

int
fl_fleet_sent(const fl_fleet_t *f)
{
    return f->sent;
}

void
fl_fleet_init(fl_fleet_opts_t *o, const char *cmd, int64_t timeout_ms)
{
    memset(o, 0, sizeof(*o));
    o->cmd = cmd;
    o->endpoint = getenv("FLOTILLA_COORDINATOR");
    o->cert = getenv("FLOTILLA_CERT");
    o->server_cert = getenv("FLOTILLA_SERVER_CERT");
    o->timeout_ms = timeout_ms;
}

int
fl_fleet_option(fl_fleet_opts_t *o, int opt, const char *arg)
{
    fl_error_t err = FL_ERROR_INIT;

    switch (opt) {
    case FL_FLEET_OPT_COORDINATOR:
        o->endpoint = arg;
        return 1;
    case FL_FLEET_OPT_CERT:
        o->cert = arg;
        return 1;
    case FL_FLEET_OPT_SERVER_CERT:
        o->server_cert = arg;
        return 1;
    case FL_FLEET_OPT_JSON:
        o->json = 1;
        return 1;
    case FL_FLEET_OPT_TIMEOUT:
        if (fl_parse_duration(&o->timeout_ms, arg, &err) != 0) {
            fl_cli_bad_option(o->cmd, "--timeout", &err);
            return -1;
        }
        return 1;
    default:
        return 0;
    }
}

int
fl_fleet_parse(fl_fleet_opts_t *o, int argc, char **argv,
               const struct option *opts, const char *usage,
               fl_fleet_opt_fn extra, void *ctx)
{
    int opt, rc;

    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        if (opt == FL_FLEET_OPT_HELP) {
            fl_fleet_print_help(o, usage);
            return FL_EXIT_OK;
        }
        rc = fl_fleet_option(o, opt, optarg);
        if (rc == 0 && extra != NULL)
            rc = extra(opt, optarg, ctx);
        if (rc < 0)
            return FL_EXIT_USAGE;
        if (rc == 0)
            return fl_cli_option_error(o->cmd, opts, argv);
    }
    return -1;
}

int
fl_fleet_open(fl_fleet_t **out, const fl_fleet_opts_t *o, fl_error_t *err)
{
    fl_fleet_t *f = NULL;
    fl_link_opts_t lo = FL_LINK_OPTS_INIT;
    char server[FL_KEY_Z85_LEN + 1];
    int rc = 0;

    *out = NULL;
    if (o->endpoint == NULL || o->cert == NULL || o->server_cert == NULL) {
        FL_ERR(err, FL_EINVAL, "the coordinator's endpoint and both "
               "certificates are needed: %s is missing",
               o->endpoint == NULL ? "--coordinator"
               : o->cert == NULL   ? "--cert"
                                   : "--server-cert");
        fl_error_set_hint(err, "Give --coordinator, --cert and --server-cert, "
                               "or set FLOTILLA_COORDINATOR, FLOTILLA_CERT "
                               "and FLOTILLA_SERVER_CERT.");
        return FL_EINVAL;
    }
    f = fl_calloc(1, sizeof(*f));
    f->opts = o;
    lo.linger_ms = 0;
    lo.max_message = (int64_t)FL_WIRE_MAX_SIZE;
    lo.heartbeat_ms = 0;
    if ((rc = fl_transport_init(err)) != 0 ||
        (rc = fl_cert_load_secret(&f->cert, o->cert, err)) != 0 ||
        (rc = fl_cert_load_pinned(server, o->server_cert, err)) != 0 ||
        (rc = fl_link_client(&f->link, o->endpoint, f->cert, server, &lo, 1,
                             err)) != 0) {
        if (err != NULL)
            err->code = FL_EINVAL;
        fl_fleet_close(&f);
        return FL_EINVAL;
    }
    *out = f;
    return 0;
}

void
fl_fleet_close(fl_fleet_t **f)
{
    if (f == NULL || *f == NULL)
        return;
    fl_link_close(&(*f)->link);
    fl_cert_destroy(&(*f)->cert);
    fl_free(f);
}

/* Checks the monitor: FL_EFAIL when the handshake cannot succeed. */
static int
s_events(fl_fleet_t *f, fl_error_t *err)
{
    fl_link_event_kind kind;
    int value;

    while (fl_link_event(f->link, &kind, &value) == 1) {
        if (kind == FL_LINK_EV_REFUSED) {
            FL_ERR(err, FL_EFAIL, "the coordinator at \"%s\" refused this "
                   "operator's certificate (ZAP status %d)",
                   f->opts->endpoint, value);
            fl_error_set_hint(err, "An operator's public certificate must be "
                                   "in the coordinator's operators directory "
                                   "(then send the coordinator SIGHUP); and "
                                   "--coordinator must be its "
                                   "control_endpoint, not the agent_endpoint "
                                   "agents use.");
            return FL_EFAIL;
        }
        if (kind == FL_LINK_EV_FAILED) {
            FL_ERR(err, FL_EFAIL, "the CURVE handshake with \"%s\" failed",
                   f->opts->endpoint);
            fl_error_set_hint(err, "Is --server-cert the certificate of the "
                                   "coordinator listening there?");
            return FL_EFAIL;
        }
    }
    return 0;
}

int
fl_fleet_call(fl_fleet_t *f, const char *command, const fl_codec_kv_t *args,
              size_t nargs, const void *data, size_t len, int64_t wait_ms,
              int *status, json_t **payload, fl_error_t *err)
{
    fl_wire_msg_t req;
    fl_buf_t out = FL_BUF_INIT(0);
    unsigned char r[8];
    char id[17];
    int64_t deadline = fl_clock_ms() + wait_ms;
    int sent = 0, rc = FL_ETIMEOUT;

    *status = 0;
    *payload = NULL;
    fl_random_bytes(r, sizeof(r));
    for (int i = 0; i < 8; i++)
        snprintf(id + 2 * i, 3, "%02x", r[i]);
    memset(&req, 0, sizeof(req));
    req.type = FL_WIRE_CONTROL_REQUEST;
    req.u.control_request.id = id;
    req.u.control_request.command = (char *)command;
    req.u.control_request.args = (fl_codec_kv_t *)args;
    req.u.control_request.nargs = nargs;
    req.u.control_request.data = (unsigned char *)data;
    req.u.control_request.len = len;
    if ((rc = fl_wire_encode(&out, &req, err)) != 0)
        goto cleanup;
    rc = FL_ETIMEOUT;
    while (rc == FL_ETIMEOUT && fl_clock_ms() < deadline) {
        fl_poll_item_t it = {f->link, -1, 0, 0};
        fl_link_msg_t m;
        int got;

        if (!sent) {
            /* Until the handshake is done, the link takes nothing. */
            int s = fl_link_send(f->link, NULL, 0, out.data, out.len, err);
            if (s == 0)
                sent = 1;
            else if (s != FL_ETIMEOUT) {
                rc = s;
                break;
            }
        }
        if (fl_link_poll(&it, 1, sent ? deadline - fl_clock_ms() : 20, err) < 0) {
            rc = FL_EIO;
            break;
        }
        if ((rc = s_events(f, err)) != 0)
            break;
        rc = FL_ETIMEOUT;
        while ((got = fl_link_recv(f->link, &m, NULL)) == 1) {
            fl_wire_msg_t rep;

            if (fl_wire_decode(&rep, m.data, m.len, NULL) == 0 &&
                rep.type == FL_WIRE_CONTROL_REPLY &&
                strcmp(rep.u.control_reply.id, id) == 0) {
                *status = (int)rep.u.control_reply.status;
                if (rep.u.control_reply.payload != NULL)
                    *payload = json_loads(rep.u.control_reply.payload, 0,
                                          NULL);
                rc = 0;
            }
            fl_wire_msg_release(&rep);
            fl_link_msg_release(&m);
            if (rc == 0)
                break;
        }
    }
    if (rc == FL_ETIMEOUT && sent)
        FL_ERR(err, FL_ETIMEOUT, "no reply from the coordinator at \"%s\" "
               "within %lld ms", f->opts->endpoint, (long long)wait_ms);
    else if (rc == FL_ETIMEOUT)
        FL_ERR(err, FL_ETIMEOUT, "no reply from the coordinator at \"%s\" "
               "within %lld ms: no connection was made, the request was "
               "not sent", f->opts->endpoint, (long long)wait_ms);
    if (rc == FL_ETIMEOUT)
        fl_fleet_hint_no_reply(err);
cleanup:
    f->sent = sent;
    fl_buf_release(&out);
    return rc;
}

void
fl_fleet_hint_no_reply(fl_error_t *err)
{
    fl_error_set_hint(err, "Is flotilla-coordinator running, with this as "
                           "its control_endpoint (not its agent_endpoint), "
                           "and is --server-cert its certificate?  A busy "
                           "coordinator may need a longer --timeout.");
}

int
fl_fleet_report(const fl_fleet_opts_t *o, int rc, const fl_error_t *err,
                int status, const json_t *payload)
{
    fl_error_t e = FL_ERROR_INIT;
    json_t *je = NULL;
    int code;

    if (rc != 0)
        return fl_dbcmd_report(o->cmd, err, rc == FL_EINVAL ? FL_EXIT_USAGE
                                                            : FL_EXIT_CONNECT,
                               o->json);
    je = json_object_get(payload, "error");
    FL_ERR(&e, FL_EFAIL, "%s", json_string_value(json_object_get(je,
                                                                 "message"))
                                   ? json_string_value(
                                         json_object_get(je, "message"))
                                   : "the coordinator refused the request");
    if (json_string_value(json_object_get(je, "detail")))
        fl_error_set_detail(&e, "%s",
                            json_string_value(json_object_get(je, "detail")));
    if (json_string_value(json_object_get(je, "hint")))
        fl_error_set_hint(&e, "%s",
                          json_string_value(json_object_get(je, "hint")));
    code = fl_dbcmd_report(o->cmd, &e, status ? status : FL_EXIT_FAILED,
                           o->json);
    fl_error_clear(&e);
    return code;
}
