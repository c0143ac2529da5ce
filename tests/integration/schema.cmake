# agent/schema.[ch]: snapshots, changes, re-creation and proof on a real
# PostgreSQL (the library only; no binary needed).
fl_integration_test(schema fl_agent)
