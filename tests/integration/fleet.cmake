# The fleet (issue 11): the real coordinator and agents on loopback, three
# agents beside the three PostgreSQL shards tests/run.sh starts
# (FLOTILLA_TEST_SHARDS), their claims read from the targets' ledgers.
fl_integration_test(fleet fl_transport fl_proto PkgConfig::ZMQ)
add_dependencies(itest_fleet flotilla flotilla-coordinator flotilla-agent)
