"""outcomes: what happened to each device (changes_from) and the module result that names every outcome (report)."""

from ansible_collections.fleetguard.devices.plugins.module_utils.bulk import ItemResult
from ansible_collections.fleetguard.devices.plugins.module_utils.errors import (
    ApiError,
    AuthenticationError,
    FleetguardError,
    TransientError,
    UncertainWrite,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.outcomes import (
    Change,
    changes_from,
    failure_message,
    outcome_summary,
    report,
)

NOT_ATTEMPTED_REASON = "not attempted: a fatal error on another device stopped the run"


class Directory:
    """The two names report() reads from a directory."""

    ID_KEY = "id"
    NOUN = "device"


def device(object_id, status="trusted"):
    return {"id": object_id, "name": "FG-%s" % object_id.upper(), "status": status}


def run_report(values, matches, changes, diff_of=None):
    return report(values, matches, changes, Directory, "devices", "changed_devices", diff_of=diff_of)


def zero_summary(**counts):
    summary = dict(changed=0, unchanged=0, failed=0, not_attempted=0, uncertain=0)
    summary.update(counts)
    return summary


# --- changes_from ----------------------------------------------------------------------------------------


def test_changes_from_keys_each_result_by_its_objects_id():
    a, b, c = device("a"), device("b"), device("c")
    done = Change(a, dict(a, status="untrusted"), changed=True)
    error = ApiError("rejected", status=400)
    results = [ItemResult(a, value=done), ItemResult(b, error=error), ItemResult(c, attempted=False)]

    changes = changes_from(results, "id")

    assert sorted(changes) == ["a", "b", "c"]
    assert changes["a"] is done
    failed = changes["b"]
    assert (failed.before, failed.after, failed.changed, failed.error, failed.attempted) == (b, None, False, error, True)
    skipped = changes["c"]
    assert (skipped.before, skipped.after, skipped.changed, skipped.error) == (c, None, False, None)
    assert skipped.attempted is False


def test_changes_from_reads_the_id_under_the_key_it_is_given():
    record = {"device_record_id": "7100000000000000001", "id": "not this one"}
    change = Change(record, record)

    assert list(changes_from([ItemResult(record, value=change)], "device_record_id")) == ["7100000000000000001"]


def test_changes_from_no_results_is_empty():
    assert changes_from([], "id") == {}


# --- report: order and matching -------------------------------------------------------------------------


def test_report_lists_outcomes_and_objects_in_input_order():
    a, b, c = device("a"), device("b"), device("c")
    after_b = dict(b, status="untrusted")
    after_c = dict(c, status="untrusted")
    matches = {"FG-C": [c], "FG-A": [a], "FG-B": [b]}
    changes = {"a": Change(a, a), "b": Change(b, after_b, changed=True), "c": Change(c, after_c, changed=True)}

    result = run_report(["FG-C", "FG-A", "FG-B"], matches, changes)

    assert [o["identifier"] for o in result["outcomes"]] == ["FG-C", "FG-A", "FG-B"]
    assert result["outcomes"] == [
        {"identifier": "FG-C", "id": "c", "outcome": "changed"},
        {"identifier": "FG-A", "id": "a", "outcome": "unchanged"},
        {"identifier": "FG-B", "id": "b", "outcome": "changed"},
    ]
    assert result["devices"] == [after_c, a, after_b]
    assert result["changed_devices"] == ["c", "b"]
    assert result["changed"] is True
    assert result["failed"] is False
    assert "msg" not in result
    assert "diff" not in result
    assert result["summary"] == zero_summary(changed=2, unchanged=1)


def test_report_uses_the_keys_it_is_given_for_objects_and_changed_ids():
    a = device("a")
    result = report(["a"], {"a": [a]}, {"a": Change(a, a)}, Directory, "device_records", "changed_records")

    assert result["device_records"] == [a]
    assert result["changed_records"] == []
    assert "devices" not in result and "changed_devices" not in result


def test_a_value_that_matched_nothing_is_unchanged_with_no_id_and_an_empty_object():
    a = device("a")
    after = dict(a, status="untrusted")

    result = run_report(["gone", "FG-A"], {"gone": [], "FG-A": [a]}, {"a": Change(a, after, changed=True)})

    assert result["outcomes"][0] == {"identifier": "gone", "id": None, "outcome": "unchanged"}
    assert result["devices"] == [{}, after]
    assert result["failed"] is False
    assert result["summary"] == zero_summary(changed=1, unchanged=1)


def test_nothing_changed_is_reported_as_not_changed():
    a = device("a")
    result = run_report(["FG-A"], {"FG-A": [a]}, {"a": Change(a, a)}, diff_of=lambda change: "called")

    assert result["changed"] is False
    assert result["changed_devices"] == []
    assert result["diff"] == []


def test_one_device_named_by_two_values_is_counted_once_in_changed_ids_and_diff():
    a = device("a")
    after = dict(a, status="untrusted")
    diffed = []

    def diff_of(change):
        diffed.append(change)
        return {"before": change.before["status"], "after": change.after["status"]}

    result = run_report(["FG-A", "a"], {"FG-A": [a], "a": [a]}, {"a": Change(a, after, changed=True)}, diff_of=diff_of)

    assert [o["outcome"] for o in result["outcomes"]] == ["changed", "changed"]
    assert [o["id"] for o in result["outcomes"]] == ["a", "a"]
    assert result["devices"] == [after, after]
    assert result["changed_devices"] == ["a"]
    assert result["diff"] == [{"before": "trusted", "after": "untrusted"}]
    assert len(diffed) == 1
    # The summary counts identifiers, as the outcomes list does.
    assert result["summary"] == zero_summary(changed=2)


def test_diff_holds_one_entry_per_changed_device_in_input_order():
    a, b, c = device("a"), device("b"), device("c")
    changes = {"a": Change(a, dict(a, status="x"), changed=True), "b": Change(b, b),
               "c": Change(c, dict(c, status="y"), changed=True)}

    result = run_report(["FG-C", "FG-B", "FG-A"], {"FG-A": [a], "FG-B": [b], "FG-C": [c]}, changes,
                        diff_of=lambda change: change.before["id"])

    assert result["diff"] == ["c", "a"]


# --- report: devices that did not finish ----------------------------------------------------------------


def test_an_uncertain_write_is_uncertain_and_any_other_error_failed():
    a, b, c = device("a"), device("b"), device("c")
    uncertain = UncertainWrite("PATCH answer lost; not visible after 30s", method="PATCH", path="/devices/a")
    rejected = ApiError("rejected", method="PATCH", path="/devices/b", status=400)
    # A lost answer that was not (yet) settled as uncertain is an ordinary failure.
    lost = TransientError("timed out", maybe_applied=True)
    changes = {"a": Change(a, error=uncertain), "b": Change(b, error=rejected), "c": Change(c, error=lost)}

    result = run_report(["FG-A", "FG-B", "FG-C"], {"FG-A": [a], "FG-B": [b], "FG-C": [c]}, changes)

    assert result["outcomes"] == [
        {"identifier": "FG-A", "id": "a", "outcome": "uncertain", "reason": str(uncertain)},
        {"identifier": "FG-B", "id": "b", "outcome": "failed", "reason": str(rejected)},
        {"identifier": "FG-C", "id": "c", "outcome": "failed", "reason": "timed out"},
    ]
    assert "PATCH /devices/b" in result["outcomes"][1]["reason"]
    # A device that did not finish is shown as it was before.
    assert result["devices"] == [a, b, c]
    assert result["failed"] is True
    assert result["changed"] is False
    assert result["summary"] == zero_summary(failed=2, uncertain=1)


def test_a_device_never_attempted_is_reported_so_with_its_reason():
    a, b = device("a"), device("b")
    changes = {"a": Change(a, error=AuthenticationError("credentials gone")), "b": Change(b, attempted=False)}

    result = run_report(["FG-A", "FG-B"], {"FG-A": [a], "FG-B": [b]}, changes)

    assert result["outcomes"][1] == {"identifier": "FG-B", "id": "b", "outcome": "not_attempted",
                                     "reason": NOT_ATTEMPTED_REASON}
    assert result["devices"] == [a, b]
    assert result["failed"] is True
    assert result["summary"] == zero_summary(failed=1, not_attempted=1)


def test_a_partly_failed_run_still_reports_what_changed():
    a, b = device("a"), device("b")
    after = dict(a, status="untrusted")
    changes = {"a": Change(a, after, changed=True), "b": Change(b, error=ApiError("rejected"))}

    result = run_report(["FG-A", "FG-B"], {"FG-A": [a], "FG-B": [b]}, changes, diff_of=lambda change: "diff-a")

    assert result["failed"] is True
    assert result["changed"] is True
    assert result["changed_devices"] == ["a"]
    assert result["devices"] == [after, b]
    assert result["diff"] == ["diff-a"]


def test_the_message_names_every_unfinished_identifier_and_no_finished_one():
    devices = dict((name, device(name)) for name in ("ok", "same", "bad", "lost", "skipped"))
    changes = {
        "ok": Change(devices["ok"], dict(devices["ok"], status="untrusted"), changed=True),
        "same": Change(devices["same"], devices["same"]),
        "bad": Change(devices["bad"], error=ApiError("rejected", status=400)),
        "lost": Change(devices["lost"], error=UncertainWrite("answer lost")),
        "skipped": Change(devices["skipped"], attempted=False),
    }
    values = ["FG-OK", "FG-SAME", "FG-BAD", "FG-LOST", "FG-SKIPPED"]
    matches = dict((value, [devices[value[3:].lower()]]) for value in values)

    result = run_report(values, matches, changes)

    assert result["msg"] == (
        "3 of 5 devices did not reach the desired state (1 changed, 1 unchanged, 1 failed, 1 not attempted,"
        " 1 uncertain): FG-BAD: rejected (HTTP 400); FG-LOST: answer lost; FG-SKIPPED: " + NOT_ATTEMPTED_REASON)
    assert "FG-OK" not in result["msg"] and "FG-SAME" not in result["msg"]


def test_the_message_uses_the_directorys_noun():
    record = {"device_record_id": "71", "device_name": "FG-1"}

    class Records:
        ID_KEY = "device_record_id"
        NOUN = "device record"

    result = report(["FG-1"], {"FG-1": [record]}, {"71": Change(record, error=ApiError("rejected"))}, Records,
                    "device_records", "changed_records")

    assert result["msg"].startswith("1 of 1 device records did not reach the desired state")
    assert result["outcomes"][0]["device_record_id"] == "71"


# --- failure_message and outcome_summary ---------------------------------------------------------------


def test_failure_message_counts_every_outcome_and_details_the_unfinished_in_order():
    outcomes = [
        {"identifier": "b", "outcome": "uncertain", "reason": "answer lost"},
        {"identifier": "a", "outcome": "changed"},
        {"identifier": "c", "outcome": "failed", "reason": "rejected"},
        {"identifier": "d", "outcome": "unchanged"},
        {"identifier": "e", "outcome": "unchanged"},
    ]

    assert failure_message(outcomes, "things") == (
        "2 of 5 things did not reach the desired state (1 changed, 2 unchanged, 1 failed, 0 not attempted,"
        " 1 uncertain): b: answer lost; c: rejected")


def test_failure_message_falls_back_to_the_outcome_when_there_is_no_reason():
    outcomes = [{"identifier": "x", "outcome": "failed", "reason": ""}, {"identifier": "y", "outcome": "not_attempted"}]

    message = failure_message(outcomes, "devices")

    assert message.endswith("): x: failed; y: not_attempted")
    assert message.startswith("2 of 2 devices did not reach the desired state (0 changed, 0 unchanged, 1 failed,"
                              " 1 not attempted, 0 uncertain)")


def test_an_error_with_an_empty_message_is_still_named_in_the_report():
    a = device("a")
    result = run_report(["FG-A"], {"FG-A": [a]}, {"a": Change(a, error=FleetguardError(""))})

    assert result["outcomes"][0]["reason"] == ""
    assert result["msg"].endswith("): FG-A: failed")


def test_outcome_summary_lists_every_outcome_even_at_zero():
    assert outcome_summary([]) == zero_summary()
    assert outcome_summary([{"outcome": "changed"}, {"outcome": "changed"}, {"outcome": "uncertain"}]) == zero_summary(
        changed=2, uncertain=1)
