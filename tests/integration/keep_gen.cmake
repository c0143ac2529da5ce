# What a rollback keeps of what its down drops, generatively: seeded
# additive migrations whose downs drop them by name, by CASCADE, with a
# schema, a partitioned table or an inheritance parent (FLOTILLA_GEN_SEEDS,
# FLOTILLA_GEN_SEED).
fl_integration_test(keep_gen fl_common)
add_dependencies(itest_keep_gen flotilla)
