# Interruption and partial states (issue 10): signals to the real
# `flotilla`, kill -9, lost connections, no-transaction progress and its
# resume, rollback of a half-applied migration.
fl_integration_test(interrupt fl_common)
add_dependencies(itest_interrupt flotilla)
