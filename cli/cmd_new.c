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
#include "proto/version.h"

static const char s_template[] =
    "-- Migration %s: %s\n"
    "--\n"
    "-- Statements are split by the PostgreSQL parser, so semicolons inside\n"
    "-- strings and function bodies are safe.  Options: no-transaction (for\n"
    "-- CREATE INDEX CONCURRENTLY and friends), lock_timeout=2s,\n"
    "-- statement_timeout=5min, allow=<lint rule> <reason>.\n"
    "-- flotilla:options lock_timeout=2s statement_timeout=5min\n"
    "--\n"
    "-- Optional sections, each on a marker line of its own:\n"
    "--   \"-- flotilla:validate\" (written before up): statements that\n"
    "--     must each return one row whose first column is true, or\n"
    "--     nothing changes; e.g.\n"
    "--     SELECT count(*) = 0 FROM users WHERE email IS NULL;\n"
    "--   \"-- flotilla:verify\" (written after down): statements that must\n"
    "--     succeed after up has run, in its transaction.\n"
    "\n"
    "-- flotilla:up\n"
    "-- The change.  Destructive statements (DROP, ALTER COLUMN TYPE, UPDATE,\n"
    "-- DELETE, TRUNCATE) back up the tables they touch first.\n"
    "\n"
    "-- flotilla:down\n"
    "-- The inverse of up, run by \"flotilla rollback\"; backed-up rows are\n"
    "-- restored after it.  Re-create what up drops.\n";

/*
 * The version after the highest in dir as its file writes it: the last
 * run of digits counted up as text, its width kept ("0099" gives
 * "0100", "1.9" "1.10", 20 digits 20 digits), or "0001" when dir has
 * none.  Files that are no VERSION_NAME migration are left out.
 * Returns 0, or -1 when the next would be too long.
 */
static int
s_next_version(DIR *d, char out[FL_VERSION_MAX + 2])
{
    fl_version_t best = FL_VERSION_INIT;
    struct dirent *e = NULL;
    size_t n = 0;

    out[0] = '\0';
    while ((e = readdir(d)) != NULL) {
        fl_version_t v;
        size_t len = strspn(e->d_name, "0123456789.");

        if (len == 0 || len > FL_VERSION_MAX || e->d_name[len] != '_' ||
            fl_version_parse(&v, e->d_name, len, NULL) != 0 ||
            fl_version_cmp(&v, &best) <= 0)
            continue;
        best = v;
        memcpy(out, e->d_name, len);
        out[len] = '\0';
    }
    if (out[0] == '\0') {
        memcpy(out, "0001", sizeof("0001"));
        return 0;
    }
    n = strlen(out);
    for (size_t i = n; i-- > 0;) {
        if (out[i] == '9') {
            out[i] = '0';
            continue;
        }
        if (out[i] != '.') {
            out[i]++;
            return 0;
        }
        /* a run of nines after a dot: one digit more, "1.99" "1.100" */
        memmove(out + i + 2, out + i + 1, n - i);
        out[i + 1] = '1';
        return n + 1 > FL_VERSION_MAX ? -1 : 0;
    }
    memmove(out + 1, out, n + 1); /* nines only: "9999" gives "10000" */
    out[0] = '1';
    return n + 1 > FL_VERSION_MAX ? -1 : 0;
}

int
fl_cmd_new(int argc, char **argv)
{
    const char *dir = NULL, *name = NULL;
    DIR *d = NULL;
    char next[FL_VERSION_MAX + 2];
    char *path = NULL, *text = NULL;
    int fd = -1, code = FL_EXIT_OK;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 ||
                      strcmp(argv[1], "-h") == 0)) {
        printf("Usage: flotilla new DIR NAME\n\n"
               "Creates DIR/VERSION_NAME.sql, VERSION one above the highest\n"
               "version in DIR (its last run of digits counted up, its width\n"
               "kept; 0001 in an empty DIR), with every section and a comment\n"
               "on each.  NAME is lower-case letters, digits and\n"
               "underscores.  DIR is created when missing.\n\n"
               "Exit codes: 0 written, 1 failed (DIR unreadable, or the\n"
               "file could not be written), 2 usage.\n");
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
    if (s_next_version(d, next) != 0) {
        closedir(d);
        fprintf(stderr, "flotilla new: error: the version after the highest "
                        "in \"%s\" would be longer than %d characters\n",
                dir, FL_VERSION_MAX);
        return FL_EXIT_FAILED;
    }
    closedir(d);
    path = fl_asprintf("%s/%s_%s.sql", dir, next, name);
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
