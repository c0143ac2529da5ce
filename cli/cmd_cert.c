/*
 * cmd_cert.c - `flotilla cert`: makes a CurveZMQ certificate pair for a
 * coordinator, an agent or an operator.
 */
#include <stdio.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "proto/transport.h"

static const char s_usage[] =
    "Usage: flotilla cert --out PREFIX [--name NAME] [--force]\n"
    "\n"
    "Makes a CurveZMQ key pair in CZMQ's certificate format:\n"
    "  PREFIX.cert         the public certificate: enrol it (copy it into\n"
    "                      the coordinator's agents or operators directory),\n"
    "                      or, for a coordinator, pin it in every agent and\n"
    "                      operator\n"
    "  PREFIX.cert_secret  both keys, mode 0600; it never leaves this host\n"
    "and prints the public key.  Revoking a peer is removing its .cert from\n"
    "the coordinator's directory and sending the coordinator SIGHUP.\n"
    "\n"
    "Options:\n"
    "  -o, --out PREFIX  where to write the two files\n"
    "  -n, --name NAME   a name kept in the certificate's metadata, shown by\n"
    "                    the coordinator (default: the file name)\n"
    "  -f, --force       replace existing files\n"
    "  -h, --help        show this help\n"
    "\n"
    "Exit codes: 0 written, 1 failed (a file exists without --force, or\n"
    "could not be written), 2 usage.\n";

int
fl_cmd_cert(int argc, char **argv)
{
    const char *prefix = NULL, *name = NULL;
    int force = 0, rc;
    char key[FL_KEY_Z85_LEN + 1];
    fl_error_t err = FL_ERROR_INIT;

    if ((rc = fl_cli_keypair_args("cert", s_usage, argc, argv, &prefix, &name,
                                  &force)) >= 0)
        return rc;
    if (fl_transport_init(&err) != 0 ||
        fl_cert_generate(prefix, name, force, key, &err) != 0) {
        rc = fl_cli_report("cert", &err, FL_EXIT_FAILED);
        fl_error_clear(&err);
        return rc;
    }
    fl_cli_out("wrote %s.cert and %s.cert_secret, public key %s\n", prefix,
               prefix, key);
    return FL_EXIT_OK;
}
