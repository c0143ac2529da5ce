# What the ledger and the logs say (issue 10): when each step happened and
# how long it took, JSON outputs that agree, a damaged ledger or a source
# that lost an applied migration diagnosed by name.
fl_integration_test(ledger fl_common fl_proto)
add_dependencies(itest_ledger flotilla)
