"""Latency histograms: pure helpers for bucketing, percentiles and merging per-worker results.

A histogram is a plain list of counts indexed by bucket, so a worker can count into its own
without a lock. Resolution: a latency under 128 ns is its own bucket; above that a bucket spans
1/64 of its lower bound. A percentile is reported as the top of its bucket, capped by the exact
maximum: never below the true value and less than 1.6% above it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence

SLOWEST = 5  # slowest paths in the summary

SUB_BITS = 6
SUB = 1 << SUB_BITS  # buckets per power of two
EXACT = 2 * SUB  # latencies below this many ns get a bucket each
NBUCKETS = (64 - SUB_BITS) * SUB  # enough for any 63-bit nanosecond count


def bucket_of(ns: int) -> int:
    """The histogram bucket of a latency in nanoseconds (the worker loop inlines this)."""
    if ns < EXACT:
        return max(ns, 0)
    shift = ns.bit_length() - SUB_BITS - 1
    return (shift << SUB_BITS) + (ns >> shift)


def bucket_bounds(index: int) -> tuple[int, int]:
    """Lowest and highest nanosecond value that land in a bucket."""
    if index < EXACT:
        return index, index
    shift = (index >> SUB_BITS) - 1
    top = index - (shift << SUB_BITS)
    return top << shift, ((top + 1) << shift) - 1


def percentile(counts: Sequence[int], percent: float, maximum: int) -> int:
    """Nearest-rank percentile of a histogram: the top of the bucket holding that rank."""
    total = sum(counts)
    if total == 0:
        raise ValueError("no values")
    rank = max(1, math.ceil(round(total * percent / 100, 9)))
    seen = 0
    for index, count in enumerate(counts):
        seen += count
        if seen >= rank:
            return min(bucket_bounds(index)[1], maximum)
    return maximum


def merge_counts(histograms: Iterable[Sequence[int]]) -> list[int]:
    merged = [0] * NBUCKETS
    for counts in histograms:
        merged = [a + b for a, b in zip(merged, counts, strict=True)]
    return merged


def slowest(per_worker: Iterable[Mapping[str, int]], k: int = SLOWEST) -> tuple[tuple[str, int], ...]:
    """The k paths with the worst latency, worst first (a path once, with its worst)."""
    worst: dict[str, int] = {}
    for paths in per_worker:
        for path, ns in paths.items():
            if ns > worst.get(path, -1):
                worst[path] = ns
    ranked = sorted(worst.items(), key=lambda item: (-item[1], item[0]))
    return tuple(ranked[:k])
