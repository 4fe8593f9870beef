"""Medians and their ratio for the two-contender benchmarks: reads `name rate` lines (MiB/s,
one per round and contender) and prints a Markdown table.

Usage: ratio.py RESULTS SIZE_MIB ROUNDS WHAT NAME_A LABEL_A NAME_B LABEL_B"""
import statistics
import sys

results, size, rounds, what, name_a, label_a, name_b, label_b = sys.argv[1:9]
rates = {}
for line in open(results):
    name, rate = line.split()
    rates.setdefault(name, []).append(float(rate))
a, b = statistics.median(rates[name_a]), statistics.median(rates[name_b])
print(f"\n{size} MiB, {rounds} rounds, medians (every round: {rates})")
print(f"| {what} | MiB/s |")
print("|---|---|")
print(f"| {label_a} | {a:.1f} |")
print(f"| {label_b} | {b:.1f} |")
print(f"| ratio {name_a} / {name_b} | {a / b:.2f}x |")
