# The dry run (issue 10): the target lock, apply's timeouts, sequences put
# back, --no-rehearse, and plan agreeing with apply.
fl_integration_test(plan fl_common)
add_dependencies(itest_plan flotilla)
