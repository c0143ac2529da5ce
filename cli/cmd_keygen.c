/*
 * cmd_keygen.c - `flotilla keygen`: makes a release key pair.
 */
#include <getopt.h>
#include <stdio.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "proto/key.h"

static const char s_usage[] =
    "Usage: flotilla keygen --out PREFIX [--force]\n"
    "\n"
    "Makes an Ed25519 key pair for signing migration bundles:\n"
    "  PREFIX.key  the secret key, mode 0600; keep it offline\n"
    "  PREFIX.pub  the public key; copy it to every trust store\n"
    "and prints the key id that names the key in bundles and logs.\n"
    "\n"
    "Options:\n"
    "  -o, --out PREFIX  where to write the two files\n"
    "  -f, --force       replace existing files\n"
    "  -h, --help        show this help\n"
    "\n"
    "Exit codes: 0 written, 1 failed (a file exists without --force, or\n"
    "could not be written), 2 usage.\n";

int
fl_cmd_keygen(int argc, char **argv)
{
    const char *prefix = NULL;
    int force = 0;
    char id[FL_KEY_ID_HEX];
    fl_error_t err = FL_ERROR_INIT;
    int rc;

    if ((rc = fl_cli_keypair_args("keygen", s_usage, argc, argv, &prefix,
                                  NULL, &force)) >= 0)
        return rc;
    if (fl_key_generate_files(prefix, force, id, &err) != 0) {
        rc = fl_cli_report("keygen", &err, FL_EXIT_FAILED);
        fl_error_clear(&err);
        return rc;
    }
    printf("wrote %s.key and %s.pub, key id %s\n", prefix, prefix, id);
    return FL_EXIT_OK;
}
