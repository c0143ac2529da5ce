# Schema-per-tenant targets (issue 11): each schema of a database its own
# ledger rows, backups and lock.
fl_integration_test(targets fl_common)
add_dependencies(itest_targets flotilla)
