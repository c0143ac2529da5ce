add_test(NAME integration/quickstart
    COMMAND ${CMAKE_CURRENT_SOURCE_DIR}/run-quickstart.sh)
set_tests_properties(integration/quickstart PROPERTIES LABELS integration
    TIMEOUT 600
    ENVIRONMENT "FLOTILLA_BIN_DIR=${PROJECT_BINARY_DIR}/bin")
