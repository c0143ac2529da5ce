/*
 * cmd_version.c - `flotilla version`: this build and the libraries it runs on.
 */
#include <getopt.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/json.h"

int
fl_cmd_version(int argc, char **argv)
{
    int json = 0;
    static const struct option opts[] = {
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;

    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, "jh", opts, NULL)) != -1) {
        switch (c) {
        case 'j':
            json = 1;
            break;
        case 'h':
            printf("Usage: flotilla version [--json]\n\n"
                   "Prints the Flotilla version and the versions of libpq,\n"
                   "libsodium and jansson it was built with.\n\n"
                   "Exit codes: 0 printed, 2 usage.\n");
            return FL_EXIT_OK;
        default:
            return fl_cli_option_error("version", opts, argv);
        }
    }
    if (optind < argc)
        return fl_cli_usage_error("version", "unexpected argument \"%s\"",
                                  argv[optind]);
    if (json) {
        json_t *o = fl_json_pack("{s:s, s:i, s:s, s:s}", "flotilla", FLOTILLA_VERSION,
                              "libpq", PQlibVersion(), "libsodium",
                              sodium_version_string(), "jansson", JANSSON_VERSION);
        char *s = json_dumps(o, JSON_COMPACT);
        printf("%s\n", s);
        free(s);
        json_decref(o);
    } else {
        printf("flotilla %s (libpq %d, libsodium %s, jansson %s)\n",
               FLOTILLA_VERSION, PQlibVersion(), sodium_version_string(),
               JANSSON_VERSION);
    }
    return FL_EXIT_OK;
}
