#!/usr/bin/env python3
"""Per-kernel totals of an Nsight Compute CSV (`ncu --metrics gpu__time_duration.sum --csv ...`): calls,
total and mean duration per kernel name, largest first, so one device run's log shows where a step's
time goes without fetching the CSV. Standard library only (runs on the device and locally)."""
import argparse
import collections
import csv
import sys


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("csv", help="ncu --csv output")
    ap.add_argument("--top", type=int, default=14, help="kernels to list")
    ap.add_argument("--width", type=int, default=90, help="characters of each kernel name to print")
    args = ap.parse_args()
    header = None
    totals = collections.OrderedDict()
    unit = "?"
    with open(args.csv, newline="") as f:
        for row in csv.reader(f):
            if "Kernel Name" in row and "Metric Value" in row:
                header = row
                continue
            if header is None or len(row) != len(header):
                continue  # ncu's own messages before the table
            rec = dict(zip(header, row))
            if rec.get("Metric Name") != "gpu__time_duration.sum":
                continue
            unit = rec.get("Metric Unit", unit)
            value = float(rec["Metric Value"].replace(",", ""))
            entry = totals.setdefault(rec["Kernel Name"], [0, 0.0])
            entry[0] += 1
            entry[1] += value
    if not totals:
        print(f"{args.csv}: no gpu__time_duration.sum rows", file=sys.stderr)
        return 1
    scale = {"ns": 1e-3, "nsecond": 1e-3, "us": 1.0, "usecond": 1.0, "ms": 1e3, "msecond": 1e3}.get(unit, 1.0)
    grand = sum(v[1] for v in totals.values()) * scale
    print(f"{sum(v[0] for v in totals.values())} kernels, {grand:.1f} us in all (durations in us)")
    print(f"{'calls':>5} {'total':>9} {'mean':>7}  kernel")
    for name, (calls, total) in sorted(totals.items(), key=lambda kv: -kv[1][1])[: args.top]:
        print(f"{calls:5d} {total * scale:9.1f} {total * scale / calls:7.2f}  {name[: args.width]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
