# Other tools' migration trees as sources (issue 14): each fixture history
# of tests/fixtures/layouts/ planned, applied, rolled back and re-applied,
# the schema compared each time.
fl_integration_test(layouts fl_common fl_proto)
add_dependencies(itest_layouts flotilla)
