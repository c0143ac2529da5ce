# Backups proportional to the change (issue 10): backups of the rows an
# UPDATE or DELETE selects, proven or replaced by the whole table, and
# rollback exact in both paths (generated: FLOTILLA_GEN_SEEDS,
# FLOTILLA_GEN_SEED); multibyte names; orphaned .partial dump files.
fl_integration_test(backup_rows fl_common)
add_dependencies(itest_backup_rows flotilla)
