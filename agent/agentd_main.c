/*
 * agentd_main.c - the flotilla-agent executable: reads its configuration
 * and runs the agent daemon (daemon.h).
 */
#include <stdio.h>
#include <stdlib.h>

#include "agent/agentconf.h"
#include "agent/daemon.h"

static const char s_usage[] =
    "Usage: flotilla-agent --config agent.yaml [--set KEY=VALUE]\n"
    "\n"
    "The agent beside one PostgreSQL server: it owns the targets of its\n"
    "configuration (static databases and schemas, and those its discovery\n"
    "rules find), connects to the coordinator over CurveZMQ with the\n"
    "coordinator's key pinned, and runs the pipeline on its targets for the\n"
    "commands it receives, verifying every bundle against its own trusted\n"
    "keys.  SIGHUP opens the log file again, reloads the trust store, runs\n"
    "discovery and reads every target's ledger; SIGTERM stops it.\n"
    "docs/fleet.md has the details.\n";

static int
s_check(const void *cfg, fl_error_t *err)
{
    return fl_ag_settings_check(cfg, err);
}

int
main(int argc, char **argv)
{
    fl_ag_settings_t cfg;
    int rc;

    rc = fl_conf_daemon_args(fl_ag_settings_table, &cfg, sizeof(cfg),
                             "flotilla-agent",
                             s_usage, FL_AG_ENV_PREFIX, s_check, argc,
                             argv);
    if (rc == 0)
        rc = fl_agent_run(&cfg);
    else if (rc == 1)
        rc = 0;
    fl_conf_release(fl_ag_settings_table, &cfg);
    return rc;
}
