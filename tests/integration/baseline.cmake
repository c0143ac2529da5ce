# flotilla baseline (issue 14): databases other tools migrated, recorded
# from their ledgers; the shape check held to the catalog.
fl_integration_test(baseline fl_common fl_lint)
add_dependencies(itest_baseline flotilla)
