# Each migration's settings as under psql, generatively: seeded random
# SETs, SET LOCALs, set_config(), roles and RESET ALL in migrations with
# and without a transaction, one resumed after a failure, against a twin
# database that ran the same statements as psql would
# (FLOTILLA_GEN_SEEDS, FLOTILLA_GEN_SEED).
fl_integration_test(settings_gen fl_common)
add_dependencies(itest_settings_gen flotilla)
