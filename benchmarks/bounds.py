"""The benchmark's settings and bounds: the emulators' published limits and latency, and the least time those
limits and the calls' latency allow for each scenario (see benchmarks/run.py)."""

import math

LATENCY = 0.03
FEISHU_LIST, FEISHU_UPDATE, FEISHU_GET = (10, 1.0), (10, 1.0), (50, 1.0)
FEISHU_PAGE = 100
FEISHU_UNTRUSTED = 2
GRAPH_WRITES = (3000, 150.0)
GRAPH_BATCH, GRAPH_BATCHES_IN_FLIGHT = 20, 4
TAG = "bench:2026"
QUARANTINE_REASON = "BENCH-1"
QUARANTINE_TAG = ("extensionAttribute15", "quarantine:" + QUARANTINE_REASON)


def window_seconds(calls, quota):
    """Least time before the last of `calls` may start under a quota of (count, window seconds)."""
    count, window = quota
    return max(0, math.ceil(calls / float(count)) - 1) * window


def feishu_bound(startup, directory_size, lookups, writes, by_id=False):
    """Least time to find `lookups` records (a scan of every page, or one call per record: by name through the
    list endpoint, by id through get) and then write `writes` of them (a PUT, answered)."""
    pages = math.ceil(directory_size / float(FEISHU_PAGE))
    scan = window_seconds(pages, FEISHU_LIST) + pages * LATENCY
    one_by_one = window_seconds(lookups, FEISHU_GET if by_id else FEISHU_LIST) + LATENCY
    return startup + min(scan, one_by_one) + window_seconds(writes, FEISHU_UPDATE) + (2 * LATENCY if writes else 0)


def graph_bound(startup, devices, writes):
    """Least time to read `devices` and write `writes` of them: a token, then $batch rounds of reads and writes."""
    rounds = math.ceil(math.ceil(devices / float(GRAPH_BATCH)) / GRAPH_BATCHES_IN_FLIGHT)
    phases = 2 if writes else 1  # read, then write
    return startup + LATENCY + window_seconds(writes, GRAPH_WRITES) + phases * rounds * LATENCY
