# Repeatable migrations (issue 14): R__name.sql run after the versioned
# ones whenever they change; failures, kill -9, --to, bundles, the v4
# ledger's upgrade.
fl_integration_test(repeatable fl_common)
add_dependencies(itest_repeatable flotilla)
