# Guarantee 6 against a hostile tenant, generatively: seeded random
# shadows, marked triggers and rules, policies, checks, expression
# indexes, domains and defaults, each a trap; flotilla's plan, apply and
# rollback call them only as psql running the same migration does
# (FLOTILLA_GEN_SEEDS, FLOTILLA_GEN_SEED).
fl_integration_test(tenant_gen fl_common)
add_dependencies(itest_tenant_gen flotilla)
