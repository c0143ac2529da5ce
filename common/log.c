/*
 * log.c - the logging module (see log.h).
 *
 * State is process-wide on purpose: there is one stderr and one log file
 * per process, as in PostgreSQL's frontend logging.  A mutex serialises
 * sinks so lines from different threads never interleave.
 */
#include "common/log.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "common/alloc.h"
#include "common/buf.h"
#include "common/json.h"
#include "common/str.h"

static pthread_mutex_t s_lock = PTHREAD_MUTEX_INITIALIZER;
static fl_log_sink_fn s_sink;
static void *s_sink_arg;
static fl_log_level s_level = FL_LOG_INFO;
static fl_log_format s_format = FL_LOG_FORMAT_AUTO;
static FILE *s_file;

static const char *const s_level_names[] = {
    "error", "warning", "notice", "info", "debug",
};

const char *
fl_log_level_name(fl_log_level level)
{
    if ((unsigned)level > FL_LOG_DEBUG)
        return "unknown";
    return s_level_names[level];
}

int
fl_log_level_parse(fl_log_level *out, const char *name, fl_error_t *err)
{
    for (int i = 0; i <= FL_LOG_DEBUG; i++) {
        if (strcmp(name, s_level_names[i]) == 0) {
            *out = (fl_log_level)i;
            return 0;
        }
    }
    FL_ERR(err, FL_EINVAL, "invalid log level \"%s\"", name);
    fl_error_set_hint(err, "Use one of error, warning, notice, info, debug.");
    return FL_EINVAL;
}

void
fl_log_set_sink(fl_log_sink_fn fn, void *arg)
{
    pthread_mutex_lock(&s_lock);
    s_sink = fn;
    s_sink_arg = arg;
    pthread_mutex_unlock(&s_lock);
}

void
fl_log_set_level(fl_log_level level)
{
    __atomic_store_n(&s_level, level, __ATOMIC_RELAXED);
}

fl_log_level
fl_log_level_get(void)
{
    return __atomic_load_n(&s_level, __ATOMIC_RELAXED);
}

void
fl_log_set_format(fl_log_format format)
{
    pthread_mutex_lock(&s_lock);
    s_format = format;
    pthread_mutex_unlock(&s_lock);
}

int
fl_log_open_file(const char *path, fl_error_t *err)
{
    /* Never through a link, and only a file of this user's that not
     * everyone may write (or a device, /dev/null): its path may be in a
     * directory another user controls (the default is the working
     * directory's), and the log says what ran where. */
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
                            O_NOFOLLOW | O_NOCTTY, 0640);
    FILE *f = NULL;
    struct stat st;

    if (fd < 0 && errno == ELOOP)
        return FL_ERR(err, FL_EINVAL, "log file \"%s\" is a symbolic link: "
                      "give the file's own path", path);
    if (fd < 0)
        return FL_ERR(err, FL_EIO, "could not open log file \"%s\": %s",
                      path, strerror(errno));
    if (fstat(fd, &st) != 0 ||
        (S_ISREG(st.st_mode) &&
         (st.st_uid != geteuid() || (st.st_mode & 002) != 0)) ||
        (!S_ISREG(st.st_mode) && !S_ISCHR(st.st_mode))) {
        close(fd);
        return FL_ERR(err, FL_EINVAL, "log file \"%s\" is not a file of this "
                      "user's that others may not write", path);
    }
    f = fdopen(fd, "a");
    if (f == NULL) {
        close(fd);
        return FL_ERR(err, FL_EIO, "could not open log file \"%s\": %s",
                      path, strerror(errno));
    }
    pthread_mutex_lock(&s_lock);
    if (s_file)
        fclose(s_file);
    s_file = f;
    pthread_mutex_unlock(&s_lock);
    return 0;
}

void
fl_log_close_file(void)
{
    pthread_mutex_lock(&s_lock);
    if (s_file)
        fclose(s_file);
    s_file = NULL;
    pthread_mutex_unlock(&s_lock);
}

static void
s_format_time(char *out, size_t outlen, int64_t time_us, int with_date)
{
    time_t secs = (time_t)(time_us / 1000000);
    struct tm tm;
    char base[32];

    gmtime_r(&secs, &tm);
    strftime(base, sizeof(base), with_date ? "%Y-%m-%dT%H:%M:%S" : "%H:%M:%S",
             &tm);
    if (with_date)
        snprintf(out, outlen, "%s.%06dZ", base, (int)(time_us % 1000000));
    else
        snprintf(out, outlen, "%s", base);
}

/* A JSON string for s ("" for NULL); never lost for a stray byte. */
static json_t *
s_json_text(const char *s)
{
    return fl_json_text(s ? s : "");
}

char *
fl_log_record_json(const fl_log_record *rec)
{
    json_t *obj = json_object();
    json_t *fields = json_object();
    char when[48];
    char *out = NULL;
    char *copy = NULL;

    s_format_time(when, sizeof(when), rec->time_us, 1);
    json_object_set_new(obj, "time", json_string(when));
    json_object_set_new(obj, "level", json_string(fl_log_level_name(rec->level)));
    json_object_set_new(obj, "component", s_json_text(rec->component));
    json_object_set_new(obj, "message", s_json_text(rec->message));
    for (size_t i = 0; i < rec->nfields; i++)
        json_object_set_new(fields, rec->fields[i].key,
                            s_json_text(rec->fields[i].value));
    json_object_set_new(obj, "fields", fields);
    out = json_dumps(obj, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(obj);
    if (out == NULL)
        return fl_strdup("{}");
    copy = fl_strdup(out);
    free(out);
    return copy;
}

char *
fl_log_record_text(const fl_log_record *rec)
{
    fl_buf_t b = FL_BUF_INIT(0);
    char when[48];
    char upper[8] = {0};
    const char *name = fl_log_level_name(rec->level);

    for (size_t i = 0; i < sizeof(upper) - 1 && name[i]; i++)
        upper[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 32 : name[i]);
    s_format_time(when, sizeof(when), rec->time_us, 0);
    /*
     * For a terminal: text from a database or a bundle (an error quoting
     * a row, another session's query) could hold escape sequences.
     */
    {
        char *msg = fl_str_escape_controls(rec->message ? rec->message : "", 0);
        fl_buf_addf(&b, "%s %-7s %s: %s", when, upper,
                    rec->component ? rec->component : "-", msg);
        free(msg);
    }
    for (size_t i = 0; i < rec->nfields; i++) {
        char *v = fl_str_escape_controls(rec->fields[i].value
                                             ? rec->fields[i].value : "", 0);
        fl_buf_addf(&b, " %s=%s", rec->fields[i].key, v);
        free(v);
    }
    return fl_buf_detach(&b);
}

static void
s_default_sink(const fl_log_record *rec, fl_log_format format)
{
    char *line = NULL;

    if (format == FL_LOG_FORMAT_AUTO)
        format = isatty(STDERR_FILENO) ? FL_LOG_FORMAT_TEXT : FL_LOG_FORMAT_JSON;
    line = format == FL_LOG_FORMAT_TEXT ? fl_log_record_text(rec)
                                        : fl_log_record_json(rec);
    fprintf(stderr, "%s\n", line);
    free(line);
}

static void
s_emit(int64_t time_us, fl_log_level level, const char *component,
       const fl_log_field *fields, size_t nfields, const char *fmt,
       va_list ap) FL_PRINTF(6, 0);

static void
s_emit(int64_t time_us, fl_log_level level, const char *component,
       const fl_log_field *fields, size_t nfields, const char *fmt, va_list ap)
{
    fl_log_record rec;
    char *msg = fl_vasprintf(fmt, ap);

    rec.time_us = time_us;
    rec.level = level;
    rec.component = component;
    rec.message = msg;
    rec.fields = fields;
    rec.nfields = nfields;

    pthread_mutex_lock(&s_lock);
    if (s_sink)
        s_sink(&rec, s_sink_arg);
    else
        s_default_sink(&rec, s_format);
    if (s_file) {
        char *line = fl_log_record_json(&rec);
        fprintf(s_file, "%s\n", line);
        fflush(s_file);
        free(line);
    }
    pthread_mutex_unlock(&s_lock);
    free(msg);
}

void
fl_log_emit(fl_log_level level, const char *component,
            const fl_log_field *fields, size_t nfields, const char *fmt, ...)
{
    struct timeval tv;
    va_list ap;

    if (level > fl_log_level_get())
        return;
    gettimeofday(&tv, NULL);
    va_start(ap, fmt);
    s_emit((int64_t)tv.tv_sec * 1000000 + tv.tv_usec, level, component,
           fields, nfields, fmt, ap);
    va_end(ap);
}

void
fl_log_emit_at(int64_t time_us, fl_log_level level, const char *component,
               const fl_log_field *fields, size_t nfields, const char *fmt,
               ...)
{
    va_list ap;

    if (level > fl_log_level_get())
        return;
    va_start(ap, fmt);
    s_emit(time_us, level, component, fields, nfields, fmt, ap);
    va_end(ap);
}
