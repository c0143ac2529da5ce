/*
 * cmd_new.c - `flotilla new DIR NAME`: scaffolds the next migration file
 * (the old framework's migration:generate).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/commands.h"
#include "common/alloc.h"

static const char s_template[] =
    "-- Migration %04lld: %s\n"
    "--\n"
    "-- Statements are split by the PostgreSQL parser, so semicolons inside\n"
    "-- strings and function bodies are safe.  Options: no-transaction (for\n"
    "-- CREATE INDEX CONCURRENTLY and friends), lock_timeout=2s,\n"
    "-- statement_timeout=5min, allow=<lint rule> <reason>.\n"
    "-- flotilla:options lock_timeout=2s statement_timeout=5min\n"
    "--\n"
    "-- Optional sections, each on a marker line of its own:\n"
    "--   \"-- flotilla:validate\" (before up): statements that must each\n"
    "--     return one row whose first column is true, or nothing changes;\n"
    "--     e.g. SELECT count(*) = 0 FROM users WHERE email IS NULL;\n"
    "--   \"-- flotilla:verify\" (after down): statements that must succeed\n"
    "--     after up, in its transaction.\n"
    "\n"
    "-- flotilla:up\n"
    "-- The change.  Destructive statements (DROP, ALTER COLUMN TYPE, UPDATE,\n"
    "-- DELETE, TRUNCATE) back up the tables they touch first.\n"
    "\n"
    "-- flotilla:down\n"
    "-- The inverse of up, run by \"flotilla rollback\"; backed-up rows are\n"
    "-- restored after it.  Re-create what up drops.\n";

int
fl_cmd_new(int argc, char **argv)
{
    const char *dir = NULL, *name = NULL;
    DIR *d = NULL;
    struct dirent *e = NULL;
    long long next = 1;
    char *path = NULL, *text = NULL;
    int fd = -1, code = FL_EXIT_OK;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
                      strcmp(argv[1], "-h") == 0)) {
        printf("Usage: flotilla new DIR NAME\n\n"
               "Creates DIR/NNNN_NAME.sql, NNNN one above the highest version\n"
               "in DIR, with every section and a comment on each.  NAME is\n"
               "lower-case letters, digits and underscores.\n");
        return FL_EXIT_OK;
    }
    /* No option but --help: a word starting with "-" is a mistake, not a
     * directory to create. */
    for (int i = 1; i < argc; i++)
        if (argv[i][0] == '-' && argv[i][1] != '\0')
            return fl_cli_usage_error("new", "invalid option \"%s\"",
                                      argv[i]);
    if (argc != 3)
        return fl_cli_usage_error("new", "expected DIR and NAME");
    dir = argv[1];
    name = argv[2];
    if (*name == '\0' || strlen(name) > 100)
        return fl_cli_usage_error("new", "NAME must have 1 to 100 characters");
    for (const char *p = name; *p; p++)
        if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_'))
            return fl_cli_usage_error("new", "invalid NAME \"%s\": use lower-case "
                                      "letters, digits and underscores", name);
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "flotilla new: error: could not create directory "
                        "\"%s\": %s\n", dir, strerror(errno));
        return FL_EXIT_FAILED;
    }
    d = opendir(dir);
    if (d == NULL) {
        fprintf(stderr, "flotilla new: error: could not open directory \"%s\": "
                        "%s\n", dir, strerror(errno));
        return FL_EXIT_FAILED;
    }
    while ((e = readdir(d)) != NULL) {
        char *end = NULL;
        long long v;
        if (!isdigit((unsigned char)e->d_name[0]))
            continue;
        v = strtoll(e->d_name, &end, 10);
        if (end && *end == '_' && v >= next)
            next = v + 1;
    }
    closedir(d);
    path = fl_asprintf("%s/%04lld_%s.sql", dir, next, name);
    text = fl_asprintf(s_template, next, name);
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text)) {
        fprintf(stderr, "flotilla new: error: could not create \"%s\": %s\n",
                path, strerror(errno));
        code = FL_EXIT_FAILED;
    } else {
        printf("%s\n", path);
    }
    if (fd >= 0)
        close(fd);
    free(path);
    free(text);
    return code;
}
