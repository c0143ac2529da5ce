# The escape hatches (issue 14): rollback --skip-down, backups prune --id,
# leftovers listed and pruned (seeded histories), up and down checksums.
fl_integration_test(hatches fl_common)
add_dependencies(itest_hatches flotilla)
