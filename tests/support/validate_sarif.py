#!/usr/bin/python3
"""Validates the SARIF log on standard input against each JSON schema named
on the command line (tests/fixtures/sarif/), with format checking, so a
URI that is not a URI reference fails.  Exit 0 when valid under every
schema, 1 with the errors otherwise.  Needs Debian's python3-jsonschema and
python3-rfc3987 (deploy/install-deps.sh)."""
import json
import sys

from jsonschema import validators

doc = json.load(sys.stdin)
bad = 0
for path in sys.argv[1:]:
    with open(path, encoding="utf-8") as f:
        schema = json.load(f)
    cls = validators.validator_for(schema)
    cls.check_schema(schema)
    checker = cls(schema, format_checker=cls.FORMAT_CHECKER)
    for err in checker.iter_errors(doc):
        bad += 1
        print(f"{path}: {'/'.join(map(str, err.path))}: {err.message}")
print(f"{bad} schema error(s)")
sys.exit(1 if bad else 0)
