# lint rules checked against a real PostgreSQL 15 (pg_locks, scans,
# rewrites, what the server refuses): issue 13.
fl_integration_test(lint_pg fl_lint)
