/*
 * config.c - table-driven YAML configuration (see config.h).
 *
 * libyaml's document API loads the whole file into a node tree that keeps
 * each node's line, so errors can point at the offending key.  Files are
 * bounded (1 MiB) and nesting follows the table, so a hostile file cannot
 * make the loader recurse or allocate beyond that.
 */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/parse.h"

#define S_MAX_FILE (1024 * 1024)

typedef struct {
    yaml_document_t *doc;
    const char *name; /* file name for messages */
} s_ctx;

static const char *
s_type_name(fl_conf_type t)
{
    switch (t) {
    case FL_CONF_STRING:   return "string";
    case FL_CONF_INT:      return "integer";
    case FL_CONF_BOOL:     return "boolean";
    case FL_CONF_DURATION: return "duration";
    case FL_CONF_SIZE:     return "size";
    case FL_CONF_STRLIST:  return "list of strings";
    case FL_CONF_SECTION:  return "mapping";
    case FL_CONF_LIST:     return "list of mappings";
    }
    return "?";
}

static void
s_release_item(const fl_conf_option *o, void *obj)
{
    char *base = obj;

    switch (o->type) {
    case FL_CONF_STRING:
        fl_free(base + o->offset);
        break;
    case FL_CONF_STRLIST: {
        fl_conf_strlist_t *l = (fl_conf_strlist_t *)(base + o->offset);
        for (size_t i = 0; i < l->count; i++)
            free(l->items[i]);
        fl_free(&l->items);
        l->count = 0;
        break;
    }
    case FL_CONF_SECTION:
        fl_conf_release(o->sub, base + o->offset);
        break;
    case FL_CONF_LIST: {
        fl_conf_list_t *l = (fl_conf_list_t *)(base + o->offset);
        for (size_t i = 0; i < l->count; i++)
            fl_conf_release(o->sub, (char *)l->items + i * o->item_size);
        fl_free(&l->items);
        l->count = 0;
        break;
    }
    default:
        break;
    }
}

void
fl_conf_release(const fl_conf_option *table, void *obj)
{
    if (table == NULL || obj == NULL)
        return;
    for (const fl_conf_option *o = table; o->name; o++)
        s_release_item(o, obj);
}

/* Parses a scalar into its field; where describes the place for errors. */
static int
s_set_scalar(const fl_conf_option *o, void *obj, const char *value,
             const char *where, fl_error_t *err)
{
    char *field = (char *)obj + o->offset;
    int64_t v = 0;
    int rc = 0;

    switch (o->type) {
    case FL_CONF_STRING:
        fl_free(field);
        *(char **)field = fl_strdup(value);
        return 0;
    case FL_CONF_BOOL:
        rc = fl_parse_bool((int *)field, value, err);
        break;
    case FL_CONF_INT:
        rc = fl_parse_int(&v, value, o->min, o->max, err);
        break;
    case FL_CONF_DURATION:
        rc = fl_parse_duration(&v, value, err);
        break;
    case FL_CONF_SIZE:
        rc = fl_parse_size(&v, value, err);
        break;
    default:
        return FL_ERR(err, FL_EINVAL, "%s: key \"%s\" needs a %s, not a "
                      "single value", where, o->name, s_type_name(o->type));
    }
    if (rc == 0 && (o->type == FL_CONF_DURATION || o->type == FL_CONF_SIZE) &&
        (o->min || o->max) && (v < o->min || v > o->max)) {
        rc = FL_ERR(err, FL_EINVAL, "value \"%s\" is out of range", value);
        fl_error_set_detail(err, "Allowed: %lld to %lld %s.", (long long)o->min,
                            (long long)o->max,
                            o->type == FL_CONF_SIZE ? "bytes" : "milliseconds");
    }
    if (rc != 0) {
        fl_error_prefix(err, "%s: key \"%s\": ", where, o->name);
        return rc;
    }
    if (o->type != FL_CONF_BOOL)
        *(int64_t *)field = v;
    return 0;
}

int
fl_conf_defaults(const fl_conf_option *table, void *obj, fl_error_t *err)
{
    for (const fl_conf_option *o = table; o->name; o++) {
        int rc = 0;
        if (o->type == FL_CONF_SECTION)
            rc = fl_conf_defaults(o->sub, (char *)obj + o->offset, err);
        else if (o->default_value != NULL)
            rc = s_set_scalar(o, obj, o->default_value, "default", err);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static unsigned long
s_line(const yaml_node_t *n)
{
    return (unsigned long)n->start_mark.line + 1;
}

static const fl_conf_option *
s_find(const fl_conf_option *table, const char *name, size_t len)
{
    for (const fl_conf_option *o = table; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
            return o;
    return NULL;
}

static int s_load_mapping(s_ctx *ctx, const fl_conf_option *table, void *obj,
                          yaml_node_t *map, const char *path, fl_error_t *err);

static int
s_load_value(s_ctx *ctx, const fl_conf_option *o, void *obj, yaml_node_t *val,
             const char *path, fl_error_t *err)
{
    char *where = NULL;
    int rc = 0;
    char *base = obj;

    where = fl_asprintf("%s:%lu", ctx->name, s_line(val));
    switch (o->type) {
    case FL_CONF_SECTION:
        if (val->type == YAML_SCALAR_NODE && val->data.scalar.length == 0) {
            fl_buf_t keys = FL_BUF_INIT(0);

            for (const fl_conf_option *k = o->sub; k->name; k++)
                fl_buf_addf(&keys, "%s%s", k == o->sub ? "" : ", ", k->name);
            rc = FL_ERR(err, FL_EINVAL, "%s: key \"%s\" is empty: give its "
                        "keys (%s)", where, path, fl_buf_str(&keys));
            fl_buf_release(&keys);
            break;
        }
        if (val->type != YAML_MAPPING_NODE) {
            rc = FL_ERR(err, FL_EINVAL, "%s: key \"%s\" must be a mapping",
                        where, path);
            break;
        }
        rc = s_load_mapping(ctx, o->sub, base + o->offset, val, path, err);
        break;
    case FL_CONF_STRLIST: {
        fl_conf_strlist_t *l = (fl_conf_strlist_t *)(base + o->offset);
        if (val->type != YAML_SEQUENCE_NODE) {
            rc = FL_ERR(err, FL_EINVAL, "%s: key \"%s\" must be a list",
                        where, path);
            break;
        }
        s_release_item(o, obj);
        for (yaml_node_item_t *it = val->data.sequence.items.start;
             it < val->data.sequence.items.top; it++) {
            yaml_node_t *item = yaml_document_get_node(ctx->doc, *it);
            if (item == NULL || item->type != YAML_SCALAR_NODE) {
                rc = FL_ERR(err, FL_EINVAL, "%s:%lu: key \"%s\": list items "
                            "must be plain values", ctx->name,
                            item ? s_line(item) : s_line(val), path);
                break;
            }
            l->items = fl_reallocarray(l->items, l->count + 1, sizeof(char *));
            l->items[l->count++] = fl_strdup((char *)item->data.scalar.value);
        }
        break;
    }
    case FL_CONF_LIST: {
        fl_conf_list_t *l = (fl_conf_list_t *)(base + o->offset);
        if (val->type != YAML_SEQUENCE_NODE) {
            rc = FL_ERR(err, FL_EINVAL, "%s: key \"%s\" must be a list",
                        where, path);
            break;
        }
        s_release_item(o, obj);
        for (yaml_node_item_t *it = val->data.sequence.items.start;
             it < val->data.sequence.items.top && rc == 0; it++) {
            yaml_node_t *item = yaml_document_get_node(ctx->doc, *it);
            char *ipath = fl_asprintf("%s[%zu]", path, l->count);
            void *slot = NULL;
            if (item == NULL || item->type != YAML_MAPPING_NODE) {
                rc = FL_ERR(err, FL_EINVAL, "%s:%lu: key \"%s\" must be a "
                            "mapping", ctx->name,
                            item ? s_line(item) : s_line(val), ipath);
                free(ipath);
                break;
            }
            l->items = fl_reallocarray(l->items, l->count + 1, o->item_size);
            slot = (char *)l->items + l->count * o->item_size;
            memset(slot, 0, o->item_size);
            l->count++;
            rc = fl_conf_defaults(o->sub, slot, err);
            if (rc == 0)
                rc = s_load_mapping(ctx, o->sub, slot, item, ipath, err);
            free(ipath);
        }
        break;
    }
    default:
        if (val->type != YAML_SCALAR_NODE) {
            rc = FL_ERR(err, FL_EINVAL, "%s: key \"%s\" must be a single %s",
                        where, path, s_type_name(o->type));
            break;
        }
        rc = s_set_scalar(o, obj, (char *)val->data.scalar.value, where, err);
        break;
    }
    free(where);
    return rc;
}

static int
s_load_mapping(s_ctx *ctx, const fl_conf_option *table, void *obj,
               yaml_node_t *map, const char *prefix, fl_error_t *err)
{
    int rc = 0;

    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top && rc == 0; p++) {
        yaml_node_t *k = yaml_document_get_node(ctx->doc, p->key);
        yaml_node_t *v = yaml_document_get_node(ctx->doc, p->value);
        const fl_conf_option *o = NULL;
        char *path = NULL;

        if (k == NULL || v == NULL || k->type != YAML_SCALAR_NODE) {
            return FL_ERR(err, FL_EINVAL, "%s:%lu: keys must be plain names",
                          ctx->name, k ? s_line(k) : s_line(map));
        }
        path = *prefix ? fl_asprintf("%s.%s", prefix, k->data.scalar.value)
                       : fl_strdup((char *)k->data.scalar.value);
        o = s_find(table, (char *)k->data.scalar.value, k->data.scalar.length);
        for (yaml_node_pair_t *q = map->data.mapping.pairs.start;
             q < p && rc == 0; q++) {
            yaml_node_t *qk = yaml_document_get_node(ctx->doc, q->key);
            /* The last would win in silence: say it instead. */
            if (qk != NULL && qk->type == YAML_SCALAR_NODE &&
                strcmp((char *)qk->data.scalar.value,
                       (char *)k->data.scalar.value) == 0)
                rc = FL_ERR(err, FL_EINVAL, "%s:%lu: key \"%s\" given twice "
                            "(first on line %lu)", ctx->name, s_line(k), path,
                            s_line(qk));
        }
        if (rc != 0) {
            /* said above */
        } else if (o == NULL) {
            rc = FL_ERR(err, FL_EINVAL, "%s:%lu: unknown key \"%s\"", ctx->name,
                        s_line(k), path);
            fl_error_set_hint(err, "Check the spelling; \"flotilla ... --help\" "
                                   "lists every key.");
        } else {
            rc = s_load_value(ctx, o, obj, v, path, err);
        }
        free(path);
    }
    for (const fl_conf_option *o = table; o->name && rc == 0; o++) {
        int present = 0;
        if (!o->required)
            continue;
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
             p < map->data.mapping.pairs.top; p++) {
            yaml_node_t *k = yaml_document_get_node(ctx->doc, p->key);
            if (k && strcmp((char *)k->data.scalar.value, o->name) == 0)
                present = 1;
        }
        if (!present) {
            rc = FL_ERR(err, FL_EINVAL, "%s:%lu: missing required key \"%s%s%s\"",
                        ctx->name, s_line(map), prefix, *prefix ? "." : "",
                        o->name);
        }
    }
    return rc;
}

/*
 * Refuses an alias (*name): the document loader makes it the node its
 * anchor names, wherever it is used, so a list of aliases of a node
 * holding a list of aliases, and so on, multiplies a small file into
 * more than memory holds ("billion laughs").  No flotilla configuration
 * needs one.  Syntax errors are left to the loader, which says them.
 */
static int
s_refuse_aliases(const char *yaml, size_t len, const char *name,
                 fl_error_t *err)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    int rc = 0, done = 0;

    if (!yaml_parser_initialize(&parser)) {
        fprintf(stderr, "flotilla: out of memory initialising YAML parser\n");
        abort();
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    while (!done && rc == 0 && yaml_parser_parse(&parser, &ev)) {
        if (ev.type == YAML_ALIAS_EVENT)
            rc = FL_ERR(err, FL_EINVAL, "%s:%lu:%lu: an alias (*%s): "
                        "flotilla's configuration takes none", name,
                        (unsigned long)ev.start_mark.line + 1,
                        (unsigned long)ev.start_mark.column + 1,
                        (const char *)ev.data.alias.anchor);
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    if (rc != 0)
        fl_error_set_hint(err, "Write the value out where the alias is.");
    yaml_parser_delete(&parser);
    return rc;
}

int
fl_conf_load_string(const fl_conf_option *table, void *obj, const char *yaml,
                    size_t len, const char *name, fl_error_t *err)
{
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_node_t *root = NULL;
    s_ctx ctx = {&doc, name};
    int rc = 0;

    if (len > S_MAX_FILE)
        return FL_ERR(err, FL_EINVAL, "%s: configuration larger than %d bytes",
                      name, S_MAX_FILE);
    if ((rc = s_refuse_aliases(yaml, len, name, err)) != 0)
        return rc;
    if (!yaml_parser_initialize(&parser)) {
        fprintf(stderr, "flotilla: out of memory initialising YAML parser\n");
        abort();
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    if (!yaml_parser_load(&parser, &doc)) {
        rc = FL_ERR(err, FL_EINVAL, "%s:%lu:%lu: invalid YAML: %s", name,
                    (unsigned long)parser.problem_mark.line + 1,
                    (unsigned long)parser.problem_mark.column + 1,
                    parser.problem ? parser.problem : "syntax error");
        if (parser.context)
            fl_error_set_detail(err, "%s (line %lu)", parser.context,
                                (unsigned long)parser.context_mark.line + 1);
        yaml_parser_delete(&parser);
        return rc;
    }
    root = yaml_document_get_root_node(&doc);
    if (root == NULL) {
        /* An empty file sets nothing; required keys still apply. */
        yaml_node_t empty;
        memset(&empty, 0, sizeof(empty));
        empty.type = YAML_MAPPING_NODE;
        rc = s_load_mapping(&ctx, table, obj, &empty, "", err);
    } else if (root->type != YAML_MAPPING_NODE) {
        rc = FL_ERR(err, FL_EINVAL, "%s:%lu: the configuration must be a "
                    "mapping of keys to values", name, s_line(root));
    } else {
        rc = s_load_mapping(&ctx, table, obj, root, "", err);
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return rc;
}

int
fl_conf_load_file(const fl_conf_option *table, void *obj, const char *path,
                  fl_error_t *err)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t len = 0;
    int rc = 0;

    if (f == NULL)
        return FL_ERR(err, errno == ENOENT ? FL_ENOTFOUND : FL_EIO,
                      "could not open configuration file \"%s\": %s", path,
                      strerror(errno));
    data = fl_malloc(S_MAX_FILE + 1);
    len = fread(data, 1, S_MAX_FILE + 1, f);
    if (ferror(f))
        rc = FL_ERR(err, FL_EIO, "could not read configuration file \"%s\"",
                    path);
    fclose(f);
    if (rc == 0)
        rc = fl_conf_load_string(table, obj, data, len, path, err);
    free(data);
    return rc;
}

int
fl_conf_set(const fl_conf_option *table, void *obj, const char *key,
            const char *value, const char *source, fl_error_t *err)
{
    const char *dot = strchr(key, '.');
    size_t len = dot ? (size_t)(dot - key) : strlen(key);
    const fl_conf_option *o = s_find(table, key, len);

    if (o == NULL)
        return FL_ERR(err, FL_EINVAL, "%s: unknown key \"%s\"", source, key);
    if (dot) {
        if (o->type != FL_CONF_SECTION)
            return FL_ERR(err, FL_EINVAL, "%s: key \"%.*s\" has no sub-keys",
                          source, (int)len, key);
        return fl_conf_set(o->sub, (char *)obj + o->offset, dot + 1, value,
                           source, err);
    }
    return s_set_scalar(o, obj, value, source, err);
}

static void
s_print_help(const fl_conf_option *table, const char *prefix, FILE *out)
{
    for (const fl_conf_option *o = table; o->name; o++) {
        char *name = fl_asprintf("%s%s", prefix, o->name);
        if (o->type == FL_CONF_SECTION || o->type == FL_CONF_LIST) {
            char *sub = fl_asprintf(o->type == FL_CONF_LIST ? "%s[]." : "%s.",
                                    name);
            if (o->type == FL_CONF_LIST)
                fprintf(out, "  %-28s %s (%s)\n", name, o->description,
                        s_type_name(o->type));
            s_print_help(o->sub, sub, out);
            free(sub);
        } else {
            fprintf(out, "  %-28s %s (%s%s%s%s)\n", name, o->description,
                    s_type_name(o->type), o->default_value ? ", default " : "",
                    o->default_value ? o->default_value : "",
                    o->required ? ", required" : "");
        }
        free(name);
    }
}

void
fl_conf_print_help(const fl_conf_option *table, FILE *out)
{
    s_print_help(table, "", out);
}

static void
s_print_sample(const fl_conf_option *table, int indent, FILE *out)
{
    for (const fl_conf_option *o = table; o->name; o++) {
        fprintf(out, "%*s# %s (%s%s)\n", indent, "", o->description,
                s_type_name(o->type), o->reloadable ? ", reloadable" : "");
        if (o->type == FL_CONF_SECTION) {
            fprintf(out, "%*s%s:\n", indent, "", o->name);
            s_print_sample(o->sub, indent + 2, out);
        } else if (o->type == FL_CONF_LIST) {
            /* An example item, commented out: each key with its comment. */
            fprintf(out, "%*s%s: []\n", indent, "", o->name);
            for (const fl_conf_option *i = o->sub; i->name; i++)
                fprintf(out, "%*s#%s%s: %s  # %s (%s%s)\n", indent, "",
                        i == o->sub ? " - " : "   ", i->name,
                        i->default_value ? i->default_value : "",
                        i->description, s_type_name(i->type),
                        i->required ? ", required" : "");
        } else if (o->type == FL_CONF_STRLIST) {
            fprintf(out, "%*s%s: []\n", indent, "", o->name);
        } else {
            /* A required key says so: the sample passes --check once
             * those are given. */
            fprintf(out, "%*s%s%s: %s%s\n", indent, "",
                    o->default_value ? "" : "# ", o->name,
                    o->default_value ? o->default_value : "",
                    o->required ? "  # required" : "");
        }
    }
}

void
fl_conf_print_sample(const fl_conf_option *table, FILE *out)
{
    s_print_sample(table, 0, out);
}

static int
s_apply_env(const fl_conf_option *table, void *obj, const char *prefix,
            fl_error_t *err)
{
    for (const fl_conf_option *o = table; o->name; o++) {
        char *var = fl_asprintf("%s%s", prefix, o->name);
        const char *value = NULL;
        int rc = 0;

        for (char *p = var; *p; p++)
            *p = *p == '.' ? '_' : (char)toupper((unsigned char)*p);
        if (o->type == FL_CONF_SECTION) {
            char *sub = fl_asprintf("%s_", var);
            rc = s_apply_env(o->sub, (char *)obj + o->offset, sub, err);
            free(sub);
        } else if ((value = getenv(var)) != NULL) {
            /* A list is refused (set in the file), not left unread. */
            rc = s_set_scalar(o, obj, value, var, err);
        }
        free(var);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int
fl_conf_apply_env(const fl_conf_option *table, void *obj, const char *prefix,
                  fl_error_t *err)
{
    return s_apply_env(table, obj, prefix, err);
}

int
fl_conf_daemon_args(const fl_conf_option *table, void *obj, size_t size,
                    const char *prog, const char *usage,
                    const char *env_prefix, fl_conf_check_fn check_fn,
                    int argc, char **argv)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"set", required_argument, NULL, 's'},
        {"check", no_argument, NULL, 'k'},
        {"sample-config", no_argument, NULL, 'S'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL;
    char **sets = fl_calloc((size_t)argc + 1, sizeof(char *));
    size_t nsets = 0;
    int check = 0, opt, rc = 0;
    fl_error_t err = FL_ERROR_INIT;

    /* The loader frees what a key held before: nothing, to begin with. */
    memset(obj, 0, size);
    optind = 1;
    opterr = 0;
    while ((opt = getopt_long(argc, argv, "c:s:h", opts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            file = optarg;
            break;
        case 's':
            sets[nsets++] = optarg;
            break;
        case 'k':
            check = 1;
            break;
        case 'S':
            fl_conf_print_sample(table, stdout);
            rc = 1;
            goto cleanup;
        case 'h':
            printf("%s\nOptions:\n"
                   "  -c, --config FILE    the configuration file (YAML; "
                   "required)\n"
                   "  -s, --set KEY=VALUE  override one key (repeatable)\n"
                   "  --check              validate the configuration's "
                   "keys and values and exit\n"
                   "                       (the files they name are "
                   "opened at start)\n"
                   "  --sample-config      print a commented sample "
                   "configuration\n"
                   "  -h, --help           show this help\n"
                   "\nConfiguration keys (also %sKEY in the environment):\n",
                   usage, env_prefix);
            fl_conf_print_help(table, stdout);
            rc = 1;
            goto cleanup;
        default:
            fprintf(stderr, "%s: invalid option \"%s\"\nTry \"%s "
                    "--help\".\n", prog, argv[optind - 1], prog);
            rc = 2;
            goto cleanup;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument \"%s\"\nTry \"%s "
                "--help\".\n", prog, argv[optind], prog);
        rc = 2;
        goto cleanup;
    }
    if (file == NULL) {
        fprintf(stderr, "%s: --config FILE is required\nTry \"%s --help\"; "
                "\"%s --sample-config\" prints a sample.\n", prog, prog, prog);
        rc = 2;
        goto cleanup;
    }
    if (fl_conf_defaults(table, obj, &err) != 0 ||
        fl_conf_load_file(table, obj, file, &err) != 0 ||
        fl_conf_apply_env(table, obj, env_prefix, &err) != 0)
        goto failed;
    for (size_t i = 0; i < nsets; i++) {
        char *eq = strchr(sets[i], '=');
        char *key = NULL;
        if (eq == NULL) {
            FL_ERR(&err, FL_EINVAL, "--set \"%s\": expected KEY=VALUE",
                   sets[i]);
            goto failed;
        }
        key = fl_strndup(sets[i], (size_t)(eq - sets[i]));
        rc = fl_conf_set(table, obj, key, eq + 1, "--set", &err);
        free(key);
        if (rc != 0)
            goto failed;
    }
    if (check_fn != NULL && check_fn(obj, &err) != 0)
        goto failed;
    if (check) {
        printf("%s: configuration is valid (the files it names are "
               "opened at start, not by --check)\n", prog);
        rc = 1;
    }
    goto cleanup;
failed:
    {
        char *text = fl_error_format(&err);
        fprintf(stderr, "%s: %s\n", prog, text);
        free(text);
    }
    rc = 2;
cleanup:
    fl_error_clear(&err);
    free(sets);
    return rc;
}
