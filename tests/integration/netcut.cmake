# The network cut at the worst moment: `flotilla apply` and `rollback`
# through a proxy that cuts every connection at each COMMIT in turn
# (tests/support/pgproxy.c); what flotilla says against the ledger.
fl_integration_test(netcut fl_common)
add_dependencies(itest_netcut flotilla)
