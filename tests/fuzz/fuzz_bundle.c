/*
 * fuzz_bundle.c - libFuzzer harness for bundle verification and decoding.
 *
 * Each input goes through fl_bundle_verify_bytes() with the fixed test key
 * trusted (the path an agent takes), and through
 * fl_bundle_decode_unverified() so that the payload decoder is reached
 * even though a mutated input almost never carries a valid signature.
 * The verifier's clock is fixed just after the corpus bundles were made,
 * so they verify.  An input that verifies must also decode unverified to
 * the same bundle, and a verified bundle's scope check must not crash.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_key.h"
#include "proto/bundle.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static fl_trust_t *s_trust;

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fl_bundle_verify_opts_t opts = FL_BUNDLE_VERIFY_OPTS_INIT;
    fl_bundle_t *verified = NULL;
    fl_bundle_t *decoded = NULL;
    int vrc;
    int drc;

    if (s_trust == NULL) {
        fl_key_t *key = fl_key_new_from_seed(fl_fuzz_seed);

        s_trust = fl_trust_new();
        fl_trust_add(s_trust, fl_key_public(key));
        fl_key_destroy(&key);
    }
    opts.now_s = 1700000001;
    vrc = fl_bundle_verify_bytes(&verified, data, size, s_trust, &opts, NULL);
    drc = fl_bundle_decode_unverified(&decoded, data, size, NULL);
    if (vrc == 0 &&
        (drc != 0 || strcmp(fl_bundle_id(verified), fl_bundle_id(decoded)) ||
         fl_bundle_migrations(verified)->count !=
             fl_bundle_migrations(decoded)->count ||
         fl_bundle_sequence(verified) != fl_bundle_sequence(decoded) ||
         strcmp(fl_bundle_selector(verified), fl_bundle_selector(decoded))))
        abort();
    if (vrc == 0) {
        static const char *const labels[] = {"tier=canary", "region=eu"};

        /* Admitted or not, it must answer without crashing. */
        FL_IGNORE(fl_bundle_scope_admits(verified, "production", labels, 2,
                                         NULL));
    }
    fl_bundle_destroy(&verified);
    fl_bundle_destroy(&decoded);
    return 0;
}
