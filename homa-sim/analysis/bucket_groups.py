#!/usr/bin/env python3
"""Group a homa-sim samples file by message size and set it beside the paper.

Usage: bucket_groups.py SAMPLES.csv LOAD REFERENCE.csv [WORKLOAD [SEED]]

SAMPLES.csv is what `homa-sim paper --samples-file` writes (each message's
size and slowdown, each run's in completion order); REFERENCE.csv is
homa-sim/data/sigcomm18-slowdown.csv. It reads one run: the rows of
WORKLOAD (default W5) at LOAD and, if the file holds several seeds, SEED.
For the paper's buckets it prints, per group of buckets and weighted by our
message counts: our exact (nearest-rank) P99, our P99 read as the paper's
analysis read its own (a patched OMNeT++ 4.6 histogram; a second implementation of
`homa_sim::paper::histogram_p99`, in Python, written from the same sources,
and where that function's test values come from), the paper's P99, our mean
and the paper's mean slowdown, and each group's share of the difference in
the count-weighted mean of bucket P99s.
"""
import csv
import itertools
import math
import sys
from collections import defaultdict


def histogram_p99(vals):
    # cDensityEstBase and cHistogram (OMNeT++ 4.6) as the HomaSimulation
    # README patches them: RANGE_AUTOUPPER from 0 with an extension factor of
    # 1 over the first 10,000 values, and 100 cells.
    first = vals[:10000]
    hi = max(first)
    rmin = 0.0
    rmax = rmin + 1.0 if rmin >= hi else rmin + (hi - rmin) * 1.0
    cell = (rmax - rmin) / 100
    under = over = 0
    cells = [0] * 100
    for v in vals:
        k = int(math.floor((v - rmin) / cell))
        if k < 0 or v < rmin:
            under += 1
        elif k >= 100 or v >= rmax:
            over += 1
        else:
            cells[k] += 1
    # The .sca bins: -inf (underflow), each cell's lower edge, rmax (overflow).
    bins = [(-math.inf, under)] + [(rmin + k * cell, cells[k]) for k in range(100)] + [(rmax, over)]
    # MetricsDashBoard.py: the first bin whose cumulative share reaches 0.99.
    cum = list(itertools.accumulate(n / len(vals) for _, n in bins))
    idx = next(i for i, c in enumerate(cum) if c >= 0.99)
    edge = bins[1][0] if idx == 0 else bins[idx][0]
    return max(edge, min(vals)), over > 0.01 * len(vals)


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    samples, load, reference = sys.argv[1], sys.argv[2], sys.argv[3]
    workload = sys.argv[4] if len(sys.argv) > 4 else "W5"
    seed = sys.argv[5] if len(sys.argv) > 5 else None
    ref = [r for r in csv.DictReader(open(reference))
           if r["protocol"] == "Homa" and float(r["load"]) == float(load) and r["workload"] == workload]
    bounds = [int(r["size_upper_bytes"]) for r in ref]
    if not bounds:
        sys.exit(f"no paper rows for {workload} at load {load}")
    rows = [r for r in csv.DictReader(open(samples))
            if r["workload"] == workload and float(r["load"]) == float(load)]
    seeds = sorted({r["seed"] for r in rows}, key=int)
    if seed is None and len(seeds) > 1:
        # A histogram reads one run: its first 100 values set the range.
        sys.exit(f"{samples} holds seeds {', '.join(seeds)}: name one")
    if seed is not None:
        rows = [r for r in rows if r["seed"] == seed]
    if not rows:
        sys.exit(f"no samples for {workload} at load {load}")
    per = defaultdict(list)
    for r in rows:
        size = int(r["size_bytes"])
        i = next((j for j, b in enumerate(bounds) if size <= b), len(bounds) - 1)
        per[i].append(float(r["slowdown"]))
    total = sum(len(v) for v in per.values())
    groups = [(10_094, "up to 10,094"), (100_000, "10 KB-100 KB"), (1_000_000, "100 KB-1 MB"),
              (5_000_000, "1-5 MB"), (math.inf, "above 5 MB")]
    acc = defaultdict(float)
    for i, bound in enumerate(bounds):
        v = per[i]
        if not v:
            continue
        exact = sorted(v)[math.ceil(0.99 * len(v)) - 1]
        hist, capped = histogram_p99(v)
        w = len(v) / total
        group = next(name for b, name in groups if bound <= b)
        for g in (group, "all"):
            acc[g, "share"] += w
            acc[g, "exact"] += w * exact
            acc[g, "hist"] += w * hist
            acc[g, "paper"] += w * float(ref[i]["p99_slowdown"])
            acc[g, "mean"] += w * sum(v) / len(v)
            acc[g, "paper_mean"] += w * float(ref[i]["mean_slowdown"])
            acc[g, "capped"] += capped
    print("| sizes | share | P99 exact | P99 read as the paper did | paper P99 | mean | paper mean "
          "| share of the mean-of-P99s gap, exact / as read | buckets capped |")
    print("|---|---|---|---|---|---|---|---|---|")
    for _, g in groups + [(0, "all")]:
        n = acc[g, "share"]
        if n == 0:
            continue
        f = lambda k: acc[g, k] / n
        print(f"| {g} | {n:.3f} | {f('exact'):.2f} | {f('hist'):.2f} | {f('paper'):.2f} "
              f"| {f('mean'):.2f} | {f('paper_mean'):.2f} "
              f"| {acc[g, 'exact'] - acc[g, 'paper']:+.3f} / {acc[g, 'hist'] - acc[g, 'paper']:+.3f} "
              f"| {int(acc[g, 'capped'])} |")


if __name__ == "__main__":
    main()
