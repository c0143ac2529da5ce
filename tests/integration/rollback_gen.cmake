# Guarantee 3 (issue 8), generatively: seeded random schemas and
# destructive migrations, applied and rolled back (FLOTILLA_GEN_SEEDS,
# FLOTILLA_GEN_SEED).
fl_integration_test(rollback_gen fl_common)
add_dependencies(itest_rollback_gen flotilla)
