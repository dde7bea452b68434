#!/usr/bin/env python3
"""Prints the Markdown table of a benchmark run (tools/bench_pg.sh, tools/bench_mysql.sh).

results: lines "round|case|target|tps|latency_ms|errors"; the first target is
the baseline the ratios are taken against. one_client: the case whose latency
difference (second target minus the first) is reported on its own line.

  bench_table.py RESULTS ROUNDS SECONDS "direct,shardgate,..." ONE_CLIENT_CASE UNIT
"""
import statistics
import sys

path, rounds, secs, targets, one, unit = sys.argv[1:7]
targets = targets.split(",")
rows = [line.strip().split("|") for line in open(path) if line.strip()]
cases = list(dict.fromkeys(r[1] for r in rows))


def med(case, target, col):
    values = [r[col] for r in rows if r[1] == case and r[2] == target]
    if not values or "FAIL" in values:
        return None
    return statistics.median(float(x) for x in values)


print(f"{rounds} interleaved rounds of {secs} s each; median {unit}/s (ratio to {targets[0]}); "
      "latency average in ms\n")
print("| case | " + " | ".join(targets) + " |")
print("|---|" + "---|" * len(targets))
for case in cases:
    base = med(case, targets[0], 3)
    cells = []
    for t in targets:
        value, latency = med(case, t, 3), med(case, t, 4)
        if value is None:
            cells.append("failed")
            continue
        ratio = f" ({value / base:.2f}x)" if base and t != targets[0] else ""
        cells.append(f"{value:.0f}{ratio}, {latency:.3f} ms")
    print(f"| {case} | " + " | ".join(cells) + " |")
base, proxied = med(one, targets[0], 4), med(one, targets[1], 4)
if base is not None and proxied is not None:
    print(f"\nOne client: {targets[1]} adds {proxied - base:.3f} ms per {unit[:-1]} over {targets[0]}.")
