#!/bin/bash
# SPDX-License-Identifier: MIT
#
# tests/compare/policies.sh BUILD - `gmem compare --json` on small sizes:
# the JSON has COMPARE.md's shape, and the policies differ the way the
# design says they must (each check is a property of the policy, not a
# recorded number):
#   - 4k maps the guest at 4K only; the huge-page policies map most of it
#     at 1G/2M; coverage is the same for a, b-eager and b-lazy (it depends
#     on attributes, not folios);
#   - per-4K metadata (4k, b-eager) costs more than intact huge folios
#     (a, b-lazy), in gmem's descriptors and in the kernel's vmemmap;
#   - tdx-boot, snp-boot (no pins): every policy makes the same successful
#     conversions and none fails; b-lazy splits and merges back around
#     tdx-boot's firmware flips;
#   - vfio-snp: `a` refuses the VMM's long-term pins, so its IOMMU maps
#     nothing; the other policies map the same shared bytes, 4k at 4K only;
#     4k and b-eager never fail a conversion;
#   - io-churn: only `a` (whole-folio drain) fails conversions with EAGAIN
#     and waits for in-flight I/O; 4k and b-eager never do;
#   - vfio-longterm: `a` refuses every long-term pin (EOPNOTSUPP); b-lazy
#     fails conversions beside them with EBUSY (an intact pinned 2M folio
#     cannot split); 4k and b-eager never do;
#   - b-lazy splits and merges; a never does; b-eager never merges;
#   - balloon returns huge pages to the pool under the pool policies.

set -u
gmem=${1:-build}/gmem
if ! command -v python3 >/dev/null 2>&1; then
	echo "skipped: python3 is needed to read the JSON"
	exit 77
fi
out=$(mktemp "${TMPDIR:-/tmp}/gmem-cmp.XXXXXX") || exit 2
trap 'rm -f "$out" "$out.2" "$out.3" "$out.4"' EXIT

"$gmem" compare --json --seed 3 --ops 1500 --guest-size 2G \
	--workload io-churn,vfio-longterm >"$out" || exit 1
"$gmem" compare --json --seed 3 --ops 2 --guest-size 256M \
	--workload balloon >"$out.2" || exit 1
"$gmem" compare --json --seed 3 --ops 200 --guest-size 1G \
	--workload tdx-boot,vfio-snp >"$out.3" || exit 1
# RAM above 4 GiB (accepted lazily) needs a guest of 2.75 GiB or more
"$gmem" compare --json --seed 3 --ops 50 --guest-size 3G \
	--workload snp-boot >"$out.4" || exit 1

python3 - "$out" "$out.2" "$out.3" "$out.4" <<'PY'
import json, sys

fails = []
def check(cond, what):
    if not cond:
        fails.append(what)

docs = [json.load(open(p)) for p in sys.argv[1:]]
for d in docs:
    check(set(d) >= {"gmem_version", "seed", "workloads"}, "top-level keys")
want = {"policy", "guest_bytes_at", "iommu_bytes_at", "meta_bytes",
        "vmemmap_bytes", "conversions", "convert_ns", "failed",
        "pin_wait_ns", "shatters", "collapses", "pool_pages_returned",
        "wall_ns", "peak_rss_bytes"}
runs = {}
for d in docs:
    for w in d["workloads"]:
        check(set(w) >= {"name", "guest_bytes", "huge_page_bytes",
                         "policies"}, "workload keys")
        check([p["policy"] for p in w["policies"]] ==
              ["4k", "a", "b-eager", "b-lazy", "b-adaptive"], "policy order")
        for p in w["policies"]:
            check("error" not in p, "%s/%s failed: %s" %
                  (w["name"], p["policy"], p.get("error_what")))
            missing = want - set(p)
            check(not missing, "%s/%s lacks %s" % (w["name"], p["policy"],
                                                   sorted(missing)))
            if missing:
                continue
            for k in ("guest_bytes_at", "iommu_bytes_at"):
                check(set(p[k]) == {"1g", "2m", "4k"}, k)
            check(set(p["convert_ns"]) == {"p50", "p99", "max"}, "convert_ns")
            check(set(p["failed"]) == {"eagain", "ebusy", "eopnotsupp"},
                  "failed")
            ns = p["convert_ns"]
            check(ns["p50"] <= ns["p99"] <= ns["max"], "quantile order")
            check(p["peak_rss_bytes"] > 0 and p["wall_ns"] > 0, "rss/wall")
            runs[(w["name"], p["policy"])] = (w, p)

def cov(w, p, lvl):
    return p["guest_bytes_at"][lvl] / w["guest_bytes"]

for name in ("tdx-boot", "snp-boot", "vfio-snp", "io-churn", "vfio-longterm",
             "balloon"):
    w, k4 = runs[(name, "4k")]
    check(k4["guest_bytes_at"]["4k"] == w["guest_bytes"] and
          k4["guest_bytes_at"]["1g"] == k4["guest_bytes_at"]["2m"] == 0,
          name + ": 4k maps all at 4K")
    huge = [runs[(name, q)][1] for q in ("a", "b-eager", "b-lazy")]
    for p in huge:
        check(cov(w, p, "1g") + cov(w, p, "2m") > 0.5,
              name + ": %s maps most at 1G/2M" % p["policy"])
        check(p["guest_bytes_at"] == huge[0]["guest_bytes_at"],
              name + ": coverage depends on attributes only")
    a, be, bl = huge
    for small in (k4, be):
        for big in (a, bl):
            for key in ("meta_bytes", "vmemmap_bytes"):
                check(small[key] > big[key], name + ": %s %s > %s" %
                      (key, small["policy"], big["policy"]))
    check(a["shatters"] == a["collapses"] == 0, name + ": a never splits")
    check(be["collapses"] == 0, name + ": b-eager never merges")

def nfailed(p):
    return sum(p["failed"].values())

for name in ("tdx-boot", "snp-boot"):
    ps = [runs[(name, q)][1] for q in ("4k", "a", "b-eager", "b-lazy")]
    check(all(nfailed(p) == 0 and p["pin_wait_ns"] == 0 for p in ps),
          name + ": nothing fails, nothing waits")
    check(len({p["conversions"] for p in ps}) == 1 and ps[0]["conversions"],
          name + ": the same conversions under every policy")
bl = runs[("tdx-boot", "b-lazy")][1]
check(bl["shatters"] > 0 and bl["collapses"] > 0,
      "tdx-boot: b-lazy splits and merges")

def iommu_total(p):
    return sum(p["iommu_bytes_at"].values())

w, a = runs[("vfio-snp", "a")]
check(a["failed"]["eopnotsupp"] > 0 and iommu_total(a) == 0,
      "vfio-snp: a refuses the VMM's pins and maps nothing")
mapped = [runs[("vfio-snp", q)][1] for q in ("4k", "b-eager", "b-lazy")]
check(mapped[0]["iommu_bytes_at"]["4k"] == iommu_total(mapped[0]),
      "vfio-snp: 4k maps the IOMMU at 4K only")
check(len({iommu_total(p) for p in mapped}) == 1 and
      iommu_total(mapped[0]) > 0.06 * w["guest_bytes"],
      "vfio-snp: the same shared bytes IOMMU-mapped")
for q in ("4k", "b-eager"):
    p = runs[("vfio-snp", q)][1]
    check(nfailed(p) == 0, "vfio-snp: %s never fails" % q)

w, a = runs[("io-churn", "a")]
check(a["failed"]["eagain"] > 0 and a["pin_wait_ns"] > 0,
      "io-churn: a waits for in-flight I/O")
for q in ("4k", "b-eager"):
    p = runs[("io-churn", q)][1]
    check(p["failed"]["eagain"] == 0 and p["pin_wait_ns"] == 0,
          "io-churn: %s never waits" % q)
bl = runs[("io-churn", "b-lazy")][1]
check(bl["shatters"] > 0 and bl["collapses"] > 0,
      "io-churn: b-lazy splits and merges")

a = runs[("vfio-longterm", "a")][1]
check(a["failed"]["eopnotsupp"] > 0, "vfio: a refuses long-term pins")
bl = runs[("vfio-longterm", "b-lazy")][1]
check(bl["failed"]["ebusy"] > 0 and bl["failed"]["eopnotsupp"] == 0,
      "vfio: b-lazy EBUSY beside long-term pins")
for q in ("4k", "b-eager"):
    p = runs[("vfio-longterm", q)][1]
    check(p["failed"]["ebusy"] == 0 and p["failed"]["eopnotsupp"] == 0,
          "vfio: %s converts beside long-term pins" % q)

for q in ("a", "b-eager", "b-lazy"):
    p = runs[("balloon", q)][1]
    check(p["pool_pages_returned"] > 0, "balloon: %s returns pages" % q)

for f in fails:
    print("FAIL", f)
print("%d checks failed" % len(fails))
sys.exit(1 if fails else 0)
PY
