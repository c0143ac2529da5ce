/*
 * commands.h - declarations of every `flotilla` subcommand, generated
 * from commands.def.
 */
#ifndef FL_CLI_COMMANDS_H
#define FL_CLI_COMMANDS_H

#define FL_CLI_COMMAND(name, summary) int fl_cmd_##name(int argc, char **argv);
#include "cli/commands.def"
#undef FL_CLI_COMMAND

#endif
