# Guarantee 6 (issue 9): nothing a tenant creates in its database runs in
# place of a built-in, in any command.
fl_integration_test(security fl_agent)
add_dependencies(itest_security flotilla)
