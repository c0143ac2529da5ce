/*
 * dsn.c - PostgreSQL connection strings (see dsn.h).
 *
 * libpq's own parser (PQconninfoParse) reads the string, so URIs,
 * percent-encoding and quoting are handled exactly as libpq will when it
 * connects; redaction works on the parsed options, never on the text.
 */
#include "common/dsn.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

#include "common/alloc.h"
#include "common/buf.h"

static int
s_is_secret(const char *keyword)
{
    return strcmp(keyword, "password") == 0 ||
           strcmp(keyword, "sslpassword") == 0;
}

/*
 * The option libpq's parse error names when it is an unknown option
 * ("invalid connection option \"x\"", "invalid URI query parameter:
 * \"x\""), copied into name; else 0.  Only a name of letters, digits and
 * underscores is taken: libpq's other messages quote a piece of the
 * string, which may be a password, and are never shown.
 */
static int
s_unknown_option(const char *msg, char *name, size_t size)
{
    static const char *const prefixes[] = {
        "invalid connection option \"", "invalid URI query parameter: \""};
    const char *p = NULL;
    size_t n = 0;

    for (size_t i = 0; msg && i < sizeof(prefixes) / sizeof(prefixes[0]); i++)
        if (strncmp(msg, prefixes[i], strlen(prefixes[i])) == 0)
            p = msg + strlen(prefixes[i]);
    if (p == NULL)
        return 0;
    while (n + 1 < size && ((p[n] >= 'a' && p[n] <= 'z') ||
                            (p[n] >= 'A' && p[n] <= 'Z') ||
                            (p[n] >= '0' && p[n] <= '9') || p[n] == '_'))
        n++;
    if (n == 0 || strcmp(p + n, "\"\n") != 0)
        return 0;
    memcpy(name, p, n);
    name[n] = '\0';
    return 1;
}

/*
 * Whether name stands in dsn right after a password's value, a blank
 * between them: then it may be the rest of a password with a space in
 * it, never to be shown.
 */
static int
s_after_password(const char *dsn, const char *name)
{
    size_t n = strlen(name);

    for (const char *at = strstr(dsn, name); at != NULL;
         at = strstr(at + 1, name)) {
        const char *p = at;
        if (at[n] != '=' && at[n] != ' ' && at[n] != '\0')
            continue;
        if (p == dsn || !isspace((unsigned char)p[-1]))
            continue;
        while (p > dsn && isspace((unsigned char)p[-1]))
            p--;
        while (p > dsn && !isspace((unsigned char)p[-1]))
            p--;
        if (strncmp(p, "password", 8) == 0 ||
            strncmp(p, "sslpassword", 11) == 0)
            return 1;
    }
    return 0;
}

/* 1 when dsn is a URI whose user and password part holds an '@' more
 * (one not written %40): libpq takes what follows it for the host. */
static int
s_uri_at_in_password(const char *dsn)
{
    const char *p = NULL;
    size_t len, at = 0;

    if (strncmp(dsn, "postgresql://", 13) == 0)
        p = dsn + 13;
    else if (strncmp(dsn, "postgres://", 11) == 0)
        p = dsn + 11;
    else
        return 0;
    len = strcspn(p, "/?");
    for (size_t i = 0; i < len; i++)
        at += p[i] == '@';
    return at > 1;
}

int
fl_dsn_check(const char *dsn, fl_error_t *err)
{
    char *errmsg = NULL;
    char name[65];
    PQconninfoOption *opts = NULL;

    if (s_uri_at_in_password(dsn)) {
        FL_ERR(err, FL_EINVAL, "invalid connection string: an '@' in the "
               "URI's user or password is not written %%40");
        fl_error_set_hint(err, "Percent-encode it: '@' is %%40 (libpq takes "
                               "what follows the last one for the host).");
        return FL_EINVAL;
    }
    opts = PQconninfoParse(dsn, &errmsg);
    if (opts == NULL) {
        /* libpq's message may quote part of the string; keep it out. */
        if (s_unknown_option(errmsg, name, sizeof(name)) &&
            s_after_password(dsn, name)) {
            FL_ERR(err, FL_EINVAL, "invalid connection string: an unknown "
                   "option right after the password");
            fl_error_set_hint(err, "A password with a blank in it is quoted: "
                                   "password='...' (a quote or a backslash "
                                   "in it written \\' or \\\\).");
            PQfreemem(errmsg);
            return FL_EINVAL;
        }
        if (s_unknown_option(errmsg, name, sizeof(name)))
            FL_ERR(err, FL_EINVAL, "invalid connection string: unknown "
                   "option \"%s\"", name);
        else
            FL_ERR(err, FL_EINVAL, "invalid connection string");
        fl_error_set_hint(err, "Use key=value pairs (host=db1 dbname=app) or "
                               "a URI (postgresql://user@db1/app), with "
                               "libpq's option names.");
        PQfreemem(errmsg);
        return FL_EINVAL;
    }
    PQconninfoFree(opts);
    return 0;
}

/*
 * Quotes a value as libpq expects inside key=value strings.  libpq ends
 * an unquoted value at any isspace() byte (space, tab, newline, carriage
 * return, vertical tab, form feed), so a value holding one is quoted: a
 * database name is its owner's choice, and "t<TAB>host=/evil" left plain
 * was a second keyword.  '=' is quoted too, for the reader's sake.
 */
static void
s_append_value(fl_buf_t *b, const char *v)
{
    int plain = *v != '\0';

    for (const char *p = v; *p && plain; p++)
        if (isspace((unsigned char)*p) || *p == '\'' || *p == '\\' ||
            *p == '=')
            plain = 0;
    if (plain) {
        fl_buf_addf(b, "%s", v);
        return;
    }
    fl_buf_addf(b, "'");
    for (const char *p = v; *p; p++)
        fl_buf_addf(b, "%s%c", (*p == '\'' || *p == '\\') ? "\\" : "", *p);
    fl_buf_addf(b, "'");
}

char *
fl_dsn_redact(const char *dsn)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &errmsg);
    fl_buf_t b = FL_BUF_INIT(0);

    if (opts == NULL) {
        PQfreemem(errmsg);
        return fl_strdup("(invalid connection string)");
    }
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val == NULL || s_is_secret(o->keyword))
            continue;
        fl_buf_addf(&b, "%s%s=", b.len ? " " : "", o->keyword);
        s_append_value(&b, o->val);
    }
    PQconninfoFree(opts);
    return fl_buf_detach(&b);
}

char *
fl_dsn_with_dbname(const char *dsn, const char *dbname)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &errmsg);
    fl_buf_t b = FL_BUF_INIT(0);

    if (opts == NULL) {
        PQfreemem(errmsg);
        return NULL;
    }
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val == NULL || strcmp(o->keyword, "dbname") == 0)
            continue;
        fl_buf_addf(&b, "%s=", o->keyword);
        s_append_value(&b, o->val);
        fl_buf_adds(&b, " ");
    }
    fl_buf_adds(&b, "dbname=");
    s_append_value(&b, dbname);
    PQconninfoFree(opts);
    return fl_buf_detach(&b);
}

char *
fl_dsn_describe(const char *dsn)
{
    char *errmsg = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &errmsg);
    const char *db = NULL, *host = NULL, *port = NULL, *user = NULL;
    char *out = NULL;

    if (opts == NULL) {
        PQfreemem(errmsg);
        return fl_strdup("(invalid connection string)");
    }
    for (PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val == NULL)
            continue;
        if (strcmp(o->keyword, "dbname") == 0)
            db = o->val;
        else if (strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
    }
    if (!db)
        db = getenv("PGDATABASE");
    if (!user)
        user = getenv("PGUSER");
    if (!db)
        db = user;
    if (!host)
        host = getenv("PGHOST");
    if (!port)
        port = getenv("PGPORT");
    out = fl_asprintf("%s@%s:%s", db ? db : "?", host ? host : "localhost",
                      port ? port : "5432");
    PQconninfoFree(opts);
    return out;
}
