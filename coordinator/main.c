/*
 * main.c - the flotilla-coordinator executable: reads its configuration
 * and runs the coordinator (server.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "common/log.h"
#include "coordinator/server.h"
#include "coordinator/settings.h"

static const char s_usage[] =
    "Usage: flotilla-coordinator --config coordinator.yaml [--set KEY=VALUE]\n"
    "\n"
    "The fleet's coordinator: agents connect to its agent endpoint, operators\n"
    "(`flotilla agents|targets|dispatch`) to its control endpoint, both over\n"
    "CurveZMQ with enrolled certificates only; its state is in a PostgreSQL\n"
    "control database.  SIGHUP opens the log file again and reloads the\n"
    "agents and operators directories and the trust store; SIGTERM stops\n"
    "it.  docs/fleet.md has the details.\n";

static int
s_check(const void *cfg, fl_error_t *err)
{
    return fl_co_settings_check(cfg, err);
}

int
main(int argc, char **argv)
{
    fl_co_settings_t cfg;
    int rc;

    rc = fl_conf_daemon_args(fl_co_settings_table, &cfg, sizeof(cfg),
                             "flotilla-coordinator", s_usage,
                             FL_CO_ENV_PREFIX, s_check, argc,
                             argv);
    if (rc == 0)
        rc = fl_coordinator_run(&cfg);
    else if (rc == 1)
        rc = 0;
    fl_conf_release(fl_co_settings_table, &cfg);
    return rc;
}
