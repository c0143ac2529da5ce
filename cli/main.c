/*
 * main.c - the `flotilla` executable: dispatches to the command table,
 * on a thread with the stack SQL's parse trees need (common/thread.h).
 *
 * The main thread only waits for it.  It blocks every signal first, so
 * that a signal sent to the process goes to the command's thread (which
 * unblocks them again: SIGINT and SIGTERM act on it as they would on a
 * main thread, or reach the signal thread of cli/dbcmd.c, which blocks
 * them there and waits for them), never to a thread that would take
 * the default action behind the command's back.
 */
#include <signal.h>
#include <stdlib.h>

#include "cli/cli.h"
#include "common/thread.h"

typedef struct {
    int argc;
    char **argv;
    sigset_t mask; /* the process's mask at start */
    int code;
} s_run_t;

static void *
s_command(void *arg)
{
    s_run_t *r = arg;

    pthread_sigmask(SIG_SETMASK, &r->mask, NULL);
    r->code = fl_cli_main(r->argc, r->argv);
    return NULL;
}

int
main(int argc, char **argv)
{
    s_run_t r = {argc, argv, {{0}}, 0};
    sigset_t all;
    pthread_t t;

    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, &r.mask);
    if (fl_thread_create_deep(&t, s_command, &r) != 0) {
        /* No thread at all: the command runs here, as before. */
        pthread_sigmask(SIG_SETMASK, &r.mask, NULL);
        return fl_cli_main(argc, argv);
    }
    pthread_join(t, NULL);
    return r.code;
}
