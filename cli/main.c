/*
 * main.c - the `flotilla` executable: dispatches to the command table.
 */
#include "cli/cli.h"

int
main(int argc, char **argv)
{
    return fl_cli_main(argc, argv);
}
