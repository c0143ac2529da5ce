# The fleet (issue 11): the real coordinator and agents on loopback, three
# agents beside the three PostgreSQL shards tests/run.sh starts
# (FLOTILLA_TEST_SHARDS), their claims read from the targets' ledgers.
# Two ctest entries, each every other test of the suite
# (FLOTILLA_TEST_PART), each its own fleets, so that ctest -j runs the
# halves side by side: as one entry under TSan it was the TSan run's
# longest test (256 s of its 265), and 570 s, near its 600 s timeout, on
# a machine busy with other work.
fl_integration_test(fleet fl_transport fl_proto PkgConfig::ZMQ)
add_dependencies(itest_fleet flotilla flotilla-coordinator flotilla-agent)
set_tests_properties(integration/fleet PROPERTIES ENVIRONMENT
    "FLOTILLA_BIN_DIR=${PROJECT_BINARY_DIR}/bin;FLOTILLA_SOURCE_DIR=${PROJECT_SOURCE_DIR};FLOTILLA_TEST_PART=1/2")
add_test(NAME integration/fleet-2 COMMAND itest_fleet)
set_tests_properties(integration/fleet-2 PROPERTIES
    LABELS integration TIMEOUT 600 ENVIRONMENT
    "FLOTILLA_BIN_DIR=${PROJECT_BINARY_DIR}/bin;FLOTILLA_SOURCE_DIR=${PROJECT_SOURCE_DIR};FLOTILLA_TEST_PART=2/2")
