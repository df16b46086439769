#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/compare/schema.sh BUILD - `gmem compare --json` validates against
# the schema the project ships (docs/compare.schema.json), with Debian's
# python3-jsonschema; and the schema can fail: the same output with a
# required key removed, a size that is not an integer, or an unknown
# policy does not validate.  Small runs of every workload.

set -u
gmem=${1:-build}/gmem
schema=docs/compare.schema.json
if grep -qs fsanitize "${1:-build}/.flags"; then
	echo "skipped: the output's shape only: the sanitizer builds run the same workloads in tests/compare/policies.sh"
	exit 77
fi
if ! python3 -c 'import jsonschema' >/dev/null 2>&1; then
	echo "skipped: python3-jsonschema is not installed"
	exit 77
fi
out=$(mktemp "${TMPDIR:-/tmp}/gmem-schema.XXXXXX") || exit 2
trap 'rm -f "$out" "$out.2"' EXIT

"$gmem" compare --json --seed 5 --ops 40 --guest-size 1G \
	--workload tdx-boot,vfio-snp,io-churn,vfio-longterm >"$out" || exit 1
"$gmem" compare --json --seed 5 --ops 2 --guest-size 256M \
	--workload pkvm-io,balloon >"$out.2" || exit 1

python3 - "$schema" "$out" "$out.2" <<'PY'
import copy, json, sys
import jsonschema

schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
v = jsonschema.Draft7Validator(schema)
passed = failed = 0

def expect(doc, valid, what):
    global passed, failed
    errs = list(v.iter_errors(doc))
    if (not errs) == valid:
        passed += 1
        print("PASS", what)
    else:
        failed += 1
        print("FAIL", what, "; ".join(e.message for e in errs[:3]))

for path in sys.argv[2:]:
    doc = json.load(open(path))
    names = ",".join(w["name"] for w in doc["workloads"])
    expect(doc, True, "the output of %s validates" % names)
    run = doc["workloads"][0]["policies"][0]
    bad = copy.deepcopy(doc)
    del bad["workloads"][0]["policies"][0]["convert_ns"]
    expect(bad, False, "%s: without convert_ns it does not" % names)
    bad = copy.deepcopy(doc)
    bad["workloads"][0]["policies"][0]["meta_bytes"] = 1.5
    expect(bad, False, "%s: a size of 1.5 bytes does not" % names)
    bad = copy.deepcopy(doc)
    bad["workloads"][0]["policies"][0]["policy"] = "b-hasty"
    expect(bad, False, "%s: an unknown policy does not" % names)
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
PY
