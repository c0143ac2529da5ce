/*
 * daemon.c - logging, signals and start-up failures of the daemons (see
 * daemon.h).
 */
#include "common/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

static int s_pipe[2] = {-1, -1};

static void
s_on_signal(int sig)
{
    unsigned char b = (unsigned char)sig;
    int saved = errno;

    /* A full pipe already holds a wake-up: losing this byte is fine. */
    if (write(s_pipe[1], &b, 1) < 0)
        errno = saved;
    errno = saved;
}

int
fl_daemon_logging(const char *level, const char *log_file, fl_error_t *err)
{
    fl_log_level l = FL_LOG_INFO;
    int rc;

    if ((rc = fl_log_level_parse(&l, level, err)) != 0)
        return rc;
    fl_log_set_level(l);
    return log_file != NULL ? fl_log_open_file(log_file, err) : 0;
}

void
fl_daemon_reopen_log(const char *component, const char *log_file)
{
    fl_error_t err = FL_ERROR_INIT;

    if (log_file == NULL)
        return;
    if (fl_log_open_file(log_file, &err) != 0) {
        fl_log_error(component, "%s; logging goes on to the file open "
                     "before", err.message);
        fl_error_clear(&err);
    }
}

int
fl_daemon_signals(fl_error_t *err)
{
    struct sigaction sa;

    if (s_pipe[0] < 0 && pipe2(s_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
        return FL_ERR(err, FL_EIO, "could not make the signal pipe: %s",
                      strerror(errno));
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = s_on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART;
    sigaction(SIGHUP, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    return s_pipe[0];
}

int
fl_daemon_next_signal(void)
{
    unsigned char sig = 0;

    if (s_pipe[0] < 0 || read(s_pipe[0], &sig, 1) != 1)
        return 0;
    return sig;
}

int
fl_daemon_failed(const char *component, const fl_error_t *err)
{
    char *text = fl_error_format(err);

    fl_log_error(component, "could not start: %s", text);
    free(text);
    return 1;
}
