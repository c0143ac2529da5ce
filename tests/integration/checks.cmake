# Issue 10: the live checks refuse what PostgreSQL would fail, and only
# that (through the executable, and generated against the server).
fl_integration_test(checks fl_agent)
add_dependencies(itest_checks flotilla)
