# Exactly once under kill -9 at random moments (issue 10): seeded
# histories applied and rolled back by `flotilla` processes killed with
# SIGKILL after random delays, every statement's effect counted.
fl_integration_test(kill9 fl_common)
add_dependencies(itest_kill9 flotilla)
