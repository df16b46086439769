#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/compare/kernel-model.sh BUILD - the modelled kernel cost of
# `gmem compare --json` is exactly the event counts times the unit costs:
#   - with a calibration file of made-up unit costs (--calibration), the
#     JSON's kernel_model carries those units and says "calibrated";
#   - every policy's kernel_ns parts are its kernel_events times those
#     units (split, merge, zap_tlb, zero, inval), and total is their sum;
#   - the counts are the same on a second run (deterministic);
#   - without a calibration the model is the published one, and says so.

set -u
build=${1:-build}
gmem=$build/gmem
if ! command -v python3 >/dev/null 2>&1; then
	echo "skipped: python3 is needed to read the JSON"
	exit 77
fi
dir=$(mktemp -d "${TMPDIR:-/tmp}/gmem-km.XXXXXX") || exit 2
trap 'rm -rf "$dir"' EXIT

# Units a calibration could never give, so that a product is recognisable.
python3 - "$dir/cal.json" <<'PY'
import json, sys
units = {"split_1g": 1000003, "split_2m": 7001, "merge_2m": 5003,
         "merge_1g": 900007, "zero_4k": 101, "zap_pte": 31,
         "tlb_flush": 4001, "fault": 1301, "s2_inval": 2003,
         "iommu_inval": 3001, "iommu_map": 503, "s2_flush": 6007,
         "iommu_flush": 8009}
json.dump({"gmem_calibration": 1, "when": "2026-01-02T03:04:05Z",
           "host": "test", "raw": {},
           "units": {k: {"ns": v, "source": "measured", "how": "test"}
                     for k, v in units.items()}}, open(sys.argv[1], "w"))
PY

# --ops is each workload's own unit (I/Os, flip rounds, ...): kept small
args=(compare --json --quiet --seed 5 --ops 200 --guest-size 2G
      --workload pkvm-io,vfio-longterm,tdx-boot)
if ! "$gmem" "${args[@]}" --calibration "$dir/cal.json" >"$dir/a.json"; then
	echo "FAIL: gmem compare with a calibration"
	exit 1
fi
"$gmem" "${args[@]}" --calibration "$dir/cal.json" >"$dir/b.json" || exit 1
GMEM_CALIBRATION="$dir/none.json" "$gmem" "${args[@]}" >"$dir/p.json" || exit 1

python3 - "$dir" <<'PY'
import json, sys
d = sys.argv[1]
a = json.load(open(d + "/a.json"))
b = json.load(open(d + "/b.json"))
p = json.load(open(d + "/p.json"))
cal = {k: v["ns"] for k, v in json.load(open(d + "/cal.json"))["units"].items()}
bad = []
km = a["kernel_model"]
if km["source"] != "calibrated":
    bad.append("source %r, wanted calibrated" % km["source"])
for k, v in cal.items():
    if abs(km["units_ns"].get(k, -1) - v) > 1e-6:
        bad.append("unit %s: %r, file says %r" % (k, km["units_ns"].get(k), v))
if p["kernel_model"]["source"] != "published":
    bad.append("without a calibration: source %r" % p["kernel_model"]["source"])
u = km["units_ns"]
n = 0
for w, wb in zip(a["workloads"], b["workloads"]):
    for pol, polb in zip(w["policies"], wb["policies"]):
        e, k = pol["kernel_events"], pol["kernel_ns"]
        want = {
            "split": e["split_1g"] * u["split_1g"] + e["split_2m"] * u["split_2m"],
            "merge": e["merge_1g"] * u["merge_1g"] + e["merge_2m"] * u["merge_2m"],
            "zap_tlb": e["zaps"] * u["zap_pte"] + e["tlb_flushes"] * u["tlb_flush"]
                       + e["host_faults"] * u["fault"],
            "zero": (e["zeroed_bytes"] // 4096) * u["zero_4k"],
            "inval": (e["guest_unmap_4k"] + e["guest_unmap_2m"] + e["guest_unmap_1g"]) * u["s2_inval"]
                     + e["guest_flushes"] * u["s2_flush"]
                     + (e["iommu_unmap_4k"] + e["iommu_unmap_2m"] + e["iommu_unmap_1g"]) * u["iommu_inval"]
                     + e["iommu_flushes"] * u["iommu_flush"]
                     + (e["iommu_map_4k"] + e["iommu_map_2m"] + e["iommu_map_1g"]) * u["iommu_map"],
        }
        want["total"] = sum(want.values())
        for part, v in want.items():
            if abs(k[part] - v) > 1 + 1e-9 * v:
                bad.append("%s %s: kernel_ns.%s = %r, events x units = %r"
                           % (w["name"], pol["policy"], part, k[part], v))
        if e != polb["kernel_events"]:
            bad.append("%s %s: events differ between two runs" % (w["name"], pol["policy"]))
        c = pol["kernel_convert_ns"]
        if not (0 <= c["p50"] <= c["p99"] <= c["max"]):
            bad.append("%s %s: convert p50/p99/max %r" % (w["name"], pol["policy"], c))
        n += 1
for line in bad:
    print("FAIL: " + line)
print("%d policy runs checked" % n)
sys.exit(1 if bad or n == 0 else 0)
PY
