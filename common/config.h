/*
 * config.h - table-driven configuration: YAML files, environment, flags.
 *
 * Each executable declares its options once, in a table of fl_conf_option
 * (name, type, where in the struct, default, bounds, reloadable, one-line
 * description), as Redis does in config.c.  Loading, validation, --help
 * text and the sample file all come from that table.
 *
 * Precedence: fl_conf_defaults(), then fl_conf_load_file(), then
 * fl_conf_set() for environment variables and then command-line flags.
 * Every error names the file, line, key and the problem; unknown keys are
 * errors, because a misspelt key silently ignored is a production outage.
 *
 * The loaded struct is owned by the caller; fl_conf_release() frees what
 * the loader allocated in it (strings and lists).  Nothing here keeps
 * global state.
 */
#ifndef FL_COMMON_CONFIG_H
#define FL_COMMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/error.h"

typedef enum {
    FL_CONF_STRING,   /* char * (owned by the struct) */
    FL_CONF_INT,      /* int64_t, within [min, max] */
    FL_CONF_BOOL,     /* int */
    FL_CONF_DURATION, /* int64_t milliseconds, within [min, max] */
    FL_CONF_SIZE,     /* int64_t bytes, within [min, max] */
    FL_CONF_STRLIST,  /* fl_conf_strlist_t: a sequence of scalars */
    FL_CONF_SECTION,  /* a nested mapping described by sub */
    FL_CONF_LIST      /* fl_conf_list_t: a sequence of mappings (sub, item_size) */
} fl_conf_type;

typedef struct {
    char **items;
    size_t count;
} fl_conf_strlist_t;

typedef struct {
    void *items; /* count elements of item_size bytes */
    size_t count;
} fl_conf_list_t;

typedef struct fl_conf_option {
    const char *name;
    fl_conf_type type;
    size_t offset;             /* offsetof(struct, field) */
    const char *default_value; /* as it would be written; NULL for none */
    int64_t min, max;          /* bounds for INT, DURATION, SIZE */
    int reloadable;
    int required;
    const char *description;
    const struct fl_conf_option *sub; /* SECTION and LIST; NULL-name ended */
    size_t item_size;                 /* LIST */
} fl_conf_option;

/* Applies every default of table (and nested sections) to obj. */
int fl_conf_defaults(const fl_conf_option *table, void *obj,
                     fl_error_t *err) FL_NODISCARD;

/*
 * Loads the YAML file at path (at most 1 MiB) into obj.  The document must
 * be a mapping; keys must be in table.  Checks required options at the
 * end.  On error obj may hold part of the file: release it.
 */
int fl_conf_load_file(const fl_conf_option *table, void *obj, const char *path,
                      fl_error_t *err) FL_NODISCARD;

/* As fl_conf_load_file() but from a string; name is used in errors. */
int fl_conf_load_string(const fl_conf_option *table, void *obj,
                        const char *yaml, size_t len, const char *name,
                        fl_error_t *err) FL_NODISCARD;

/*
 * Sets one scalar option by dotted name ("listen.port") from text; source
 * names where it came from in errors ("--port", "FLOTILLA_PORT").
 */
int fl_conf_set(const fl_conf_option *table, void *obj, const char *key,
                const char *value, const char *source,
                fl_error_t *err) FL_NODISCARD;

/*
 * Applies environment variables over obj: for every scalar option NAME
 * (and SECTION.NAME), the variable prefix + NAME in upper case with dots
 * as underscores ("FLOTILLA_AGENT_" + "max_parallel" ->
 * FLOTILLA_AGENT_MAX_PARALLEL), when set.  Errors name the variable.
 */
int fl_conf_apply_env(const fl_conf_option *table, void *obj,
                      const char *prefix, fl_error_t *err) FL_NODISCARD;

/*
 * A daemon's checks of its loaded settings as a whole (keys that go
 * together, values that exclude each other): 0, or an error naming the
 * keys.
 */
typedef int (*fl_conf_check_fn)(const void *obj, fl_error_t *err);

/*
 * A daemon's command line: --config FILE (required: the file holds the
 * required keys), --set KEY=VALUE (repeatable), --check (load,
 * validate, exit), --sample-config (print a commented sample), --help.
 * Zeroes obj (size bytes), then loads, in order, the defaults, the file,
 * the environment (env_prefix, see fl_conf_apply_env) and the --set
 * values into it, then runs check (when not NULL) over the result, with
 * or without --check; the caller releases obj with fl_conf_release() in
 * every case.  Returns 0 when the daemon should run, 1 when it printed
 * what was asked and should exit with 0, 2 when it printed a usage or
 * configuration error and should exit with 2.  usage is the text --help
 * prints before the option list.
 */
int fl_conf_daemon_args(const fl_conf_option *table, void *obj, size_t size,
                        const char *prog, const char *usage,
                        const char *env_prefix, fl_conf_check_fn check,
                        int argc, char **argv);

/* Frees strings and lists the loader put into obj. */
void fl_conf_release(const fl_conf_option *table, void *obj);

/* Prints "  name  (type, default X)  description" lines for --help; the
 * keys of a list's items as LIST[].KEY. */
void fl_conf_print_help(const fl_conf_option *table, FILE *out);

/* Prints a commented sample YAML file with every default. */
void fl_conf_print_sample(const fl_conf_option *table, FILE *out);

#endif
