# What validation refuses when a migration is applied (issue 10):
# transaction control in a migration, a down that does not parse, lint
# errors let through and said so, lock_timeout 0, error positions.
fl_integration_test(validate fl_common)
add_dependencies(itest_validate flotilla)
