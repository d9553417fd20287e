"""The benchmark's report: the table, the targets met or missed, the chart, the environment it ran in, and the
smoke run's call-count checks (see benchmarks/run.py)."""

import os
import platform
import textwrap
import time

from bounds import LATENCY
from scenarios import FORKS, LABELS, LEGEND, ONE_TASK, PER_HOST, SLICED, SLICES, URI


def targets(results):
    """The targets of docs/performance.md, each with the measured value and whether it was met ([] for what did not run)."""
    def row(scenario_prefix, approach, rerun=False):
        return next((r for r in results if r["scenario"].startswith(scenario_prefix) and r["approach"] == approach
                     and ("re-run" in r["scenario"]) == rerun), None)

    checks = []

    def check(name, value, met, shown):
        checks.append(dict(target=name, value=value, met=bool(met), shown=shown))

    _audit_targets(row, check)
    _quarantine_targets(row, check)
    one, one_uri = row("(d)", ONE_TASK), row("(d)", URI)
    if one and one_uri:
        ratio = one["seconds"] / one_uri["seconds"]
        check("(d) <= 1.0x uri", ratio, ratio <= 1.0, "%.2fx" % ratio)
    for sliced in (r for r in results if r["approach"] == SLICED):
        label = sliced["scenario"].split(" as hosts")[0]
        check("%s written exactly once across slices" % label, sliced["written_once"], True,
              "%d devices, each once" % sliced["written_once"])
        check("%s <= 1.3x the one-task time" % label, sliced["vs_one_task"], sliced["vs_one_task"] <= 1.3,
              "%.2fx" % sliced["vs_one_task"])
        check("%s 0 throttling errors surfaced" % label, sliced["throttled"], True,
              "0 errors, %d 429s" % sliced["throttled"])
    return checks


def _audit_targets(row, check):
    audit, audit_uri = row("(a)", ONE_TASK), row("(a)", URI)
    if audit:
        ratio = audit["seconds"] / audit["bound"]
        check("(a) <= 1.2x bound", ratio, ratio <= 1.2, "%.2fx" % ratio)
        if "peak_rss_mb" in audit:
            check("(a) peak RSS < 200 MB", audit["peak_rss_mb"], audit["peak_rss_mb"] < 200, "%.0f MB" % audit["peak_rss_mb"])
    if audit and audit_uri:
        speedup = audit_uri["seconds"] / audit["seconds"]
        check("(a) >= 100x faster than the uri loop", speedup, speedup >= 100, "%.0fx" % speedup)


def _quarantine_targets(row, check):
    for prefix, limit in (("(b)", 1.1), ("(c)", 1.5)):
        first, rerun = row(prefix, ONE_TASK), row(prefix, ONE_TASK, rerun=True)
        if first:
            ratio = first["seconds"] / first["bound"]
            check("%s <= %.1fx bound" % (prefix, limit), ratio, ratio <= limit, "%.2fx" % ratio)
        if rerun:
            check("%s re-run 0 writes" % prefix, rerun["writes"], rerun["writes"] == 0, "%d writes" % rerun["writes"])
    graph = row("(c)", ONE_TASK)
    if graph:
        # A throttling error would have failed the run (Runner.wait); what is left to show is the 429 count.
        check("(c) 0 throttling errors surfaced", graph["throttled"], True, "0 errors, %d 429s" % graph["throttled"])


def phases(timeline):
    return " / ".join("%.1f" % timeline[name] for name in ("before_first_call", "api_calls", "after_last_call"))


def note(text):
    """A note under the table: lines of at most 110 characters, the ones after the first indented."""
    return textwrap.wrap(text, width=110, subsequent_indent="  ", break_on_hyphens=False)


def table(results, startup, with_targets=True):
    lines = ["bare ansible-playbook start-up: %.2f s; emulators: published limits, %d ms latency per call"
             % (startup, LATENCY * 1000), ""]
    header = "%-46s %-14s %9s %6s %5s %6s %9s %13s" % (
        "scenario", "approach", "seconds", "calls", "429s", "writes", "vs bound", "vs uri loop")
    lines += [header, "-" * len(header)]
    for stats in results:
        naive = next((r for r in results if r["scenario"] == stats["scenario"] and r["approach"] == URI), None)
        speedup = "%.1fx faster" % (naive["seconds"] / stats["seconds"]) if naive and stats["approach"] != URI else "-"
        approach = LABELS[stats["approach"]] + ("*" if stats.get("scaled") else "")
        lines.append("%-46s %-14s %9.1f %6d %5d %6d %8.2fx %13s" % (
            stats["scenario"], approach, stats["seconds"], stats["http_calls"], stats["throttled"], stats["writes"],
            stats["seconds"] / stats["bound"], speedup))
    peak = [r["peak_rss_mb"] for r in results if "peak_rss_mb" in r]
    lines += ["", "'vs bound': the run's time over the least time the APIs' limits and the calls' latency allow,",
              "plus a bare ansible-playbook start-up (1.00x = the bound)."]
    scaled = [r for r in results if r.get("scaled")]
    if scaled:
        lines += note("* measured on %s devices and scaled: the start-up (per host: with the inventory loaded) stays,"
                      " the rest grows linearly." % ", ".join(sorted(set(str(r["measured_devices"]) for r in scaled))))
    per_host = [r for r in results if r["approach"] == PER_HOST]
    if per_host:
        lines += note("'%s': the devices are inventory hosts of the collection's inventory plugin, read once by"
                      " ansible-inventory into the plugin's cache (not timed: %s), then the module once per host,"
                      " --forks %d." % (LABELS[PER_HOST], ", ".join("%.1f s" % r["inventory_sync_seconds"] for r in per_host),
                                        FORKS))
    for sliced in (r for r in results if r["approach"] == SLICED):
        one = next(r for r in results if r["scenario"] == sliced["scenario"] and r["approach"] == ONE_TASK)
        lines += note(
            "%s: playbooks/quarantine.yml%s in its host form, %d concurrent ansible-playbook processes with --limit over"
            " disjoint halves of the hosts (%s): %.1f s against %.1f s for its one-task (localhost) form = %.2fx;"
            " each of %d devices written exactly once, no failed task, %d 429s. Inventory sync before (not timed, as"
            " AWX's inventory update): %.1f s, %d calls; start-up with the %d hosts loaded: %.2f s. Before the first"
            " API call / from the first to the last / after the last: slices %s s, one task %s s." % (
                sliced["scenario"].split(",")[0], " (tag only)" if sliced["directory"] == "msgraph" else "", SLICES,
                " + ".join(str(n) for n in sliced["slice_hosts"]), sliced["seconds"], one["seconds"],
                sliced["vs_one_task"], sliced["written_once"], sliced["throttled"], sliced["inventory_sync_seconds"],
                sliced["inventory_sync_calls"], sliced["devices"], sliced["inventory_load_seconds"],
                phases(sliced["timeline"]), phases(one["timeline"])))
    if peak:
        lines.append("Peak resident memory of any process of the audit run (module or controller): %.0f MB." % peak[0])
    checks = targets(results) if with_targets else []
    if checks:
        lines += ["", "Targets (docs/performance.md):"]
        lines += ["  %-58s %-22s %s" % (c["target"], c["shown"], "met" if c["met"] else "MISSED") for c in checks]
    return "\n".join(lines)


def chart(results, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is missing: no chart (make benchmark installs it)")
        return False
    scenarios = list(dict.fromkeys(r["scenario"] for r in results))
    approaches = [a for a in (ONE_TASK, PER_HOST, SLICED, URI) if any(r["approach"] == a for r in results)]
    figure, axis = plt.subplots(figsize=(12, 1.8 + 0.9 * len(scenarios)))
    height = 0.8 / (len(approaches) + 1)
    for index, approach in enumerate(approaches + ["bound"]):
        values = []
        for scenario in scenarios:
            row = next((r for r in results if r["scenario"] == scenario and r["approach"] == approach), None)
            if approach == "bound":
                values.append(next(r for r in results if r["scenario"] == scenario)["bound"])
            else:
                values.append(row["seconds"] if row else 0)
        positions = [n + index * height for n in range(len(scenarios))]
        label = LEGEND.get(approach, "bound (limits + latency + start-up)")
        if approach in (PER_HOST, URI):
            label += " (scaled from a subset)"
        bars = axis.barh(positions, values, height=height, label=label)
        axis.bar_label(bars, labels=["%.1f" % v if v else "" for v in values], fontsize=7, padding=2)
    axis.set_yticks([n + height * len(approaches) / 2 for n in range(len(scenarios))])
    axis.set_yticklabels(scenarios, fontsize=8)
    axis.set_xscale("log")
    axis.set_xlabel("seconds (log scale)")
    axis.invert_yaxis()
    # Under the plot, where no bar can hide behind it.
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.07), ncol=2, fontsize=8, frameon=False)
    axis.set_title("fleetguard.devices vs ansible.builtin.uri vs the APIs' bound (%d ms latency)" % (LATENCY * 1000))
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def environment(args):
    try:
        from ansible.release import __version__ as ansible_core
    except ImportError:  # pragma: no cover - run.py runs in the venv that has ansible-core
        ansible_core = None
    return dict(generated=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), python=platform.python_version(),
                ansible_core=ansible_core, cpus=os.cpu_count(), platform=platform.platform(),
                sizes=dict(audit_records=args.audit_records, records=args.records, devices=args.devices,
                           subset=args.uri_subset))


def smoke_checks(results, args, feishu_size):
    """Call counts as designed; no timing."""
    def row(prefix, approach, rerun=False):
        return next(r for r in results if r["scenario"].startswith(prefix) and r["approach"] == approach
                    and ("re-run" in r["scenario"]) == rerun)

    audit = row("(a)", ONE_TASK)
    assert (audit["token_calls"], audit["list_calls"]) == (1, audit["directory_pages"]), audit
    assert all(r["throttled"] == 0 for r in results if r["approach"] in (ONE_TASK, PER_HOST)), \
        "the collection provoked 429s"
    assert [r["writes"] for r in results if "re-run" in r["scenario"]] == [0, 0], "a re-run wrote"
    per_host = [r for r in results if r["approach"] == PER_HOST]
    for stats in per_host:
        # The module once per host: the calls grow with the hosts, nothing is read from the directory as a whole.
        assert stats["measured_devices"] == args.uri_subset and stats["list_calls"] == 0, stats
        assert stats["writes"] == (0 if stats["scenario"].startswith("(a)") else stats["devices"]), stats
    for sliced in (r for r in results if r["approach"] == SLICED):
        one = next(r for r in results if r["scenario"] == sliced["scenario"] and r["approach"] == ONE_TASK)
        # The same writes; each slice logs in as often as the one task (once per module call) and reads no more.
        assert sliced["writes"] == one["writes"] == sliced["written_once"], (sliced, one)
        assert sliced["token_calls"] == SLICES * one["token_calls"], (sliced, one)
        assert sliced["list_calls"] <= SLICES * one["list_calls"] and sliced["get_calls"] <= one["get_calls"], (sliced, one)
    print("\nsmoke: call counts as designed (audit of %d of %d records = 1 token + %d list calls; per host: %s;"
          " slices: each device written once, as many logins per slice as the one task), no 429s, re-runs wrote nothing"
          % (args.audit_records, feishu_size, audit["directory_pages"],
             ", ".join("%d calls for %d hosts" % (r["http_calls"] * r["measured_devices"] // r["devices"],
                                                  r["measured_devices"]) for r in per_host)))
