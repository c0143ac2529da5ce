# Guarantee 3 (issue 8): every rollback returns to the exact prior picture
# or is refused with nothing changed; one test per case of the issue.
fl_integration_test(rollback fl_common)
add_dependencies(itest_rollback flotilla)
