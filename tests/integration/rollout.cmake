# Staged rollouts (issue 12): the real coordinator and three agents beside
# the three PostgreSQL shards tests/run.sh starts (FLOTILLA_TEST_SHARDS),
# 31 tenant databases, every claim read from the targets' ledgers.  The
# tests run in four groups, each its own fleet and a ctest entry of its
# own, so that ctest -j runs them side by side: staged, stops (under TSan
# alone, CMakeLists.txt), cuts and kills (kill -9 of the daemons at
# seeded points, under ASan alone: the processes, not the threads).
fl_integration_test(rollout fl_transport PkgConfig::ZMQ)
add_dependencies(itest_rollout flotilla flotilla-coordinator flotilla-agent)
set_tests_properties(integration/rollout PROPERTIES ENVIRONMENT
    "FLOTILLA_BIN_DIR=${PROJECT_BINARY_DIR}/bin;FLOTILLA_SOURCE_DIR=${PROJECT_SOURCE_DIR};FLOTILLA_TEST_FILTER=test_rollout_staged_*")
foreach(group stops cuts kills)
    add_test(NAME integration/rollout-${group} COMMAND itest_rollout)
    set_tests_properties(integration/rollout-${group} PROPERTIES
        LABELS integration TIMEOUT 600 ENVIRONMENT
        "FLOTILLA_BIN_DIR=${PROJECT_BINARY_DIR}/bin;FLOTILLA_SOURCE_DIR=${PROJECT_SOURCE_DIR};FLOTILLA_TEST_FILTER=test_rollout_${group}_*")
endforeach()
