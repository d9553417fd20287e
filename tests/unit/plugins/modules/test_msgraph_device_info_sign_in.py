"""msgraph_device_info's last_sign_in_before / last_sign_in_after: the $filter they become, what Graph (the emulator
on 127.0.0.1) returns for it, and the values refused before any request.

The bounds are rebuilt from the parsed time as unquoted UTC DateTimeOffset literals (`le` / `ge`), joined to a
user's `filter` with `and`; devices without a sign-in time match neither bound.
"""

import datetime
import json

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError
from ansible_collections.fleetguard.devices.plugins.module_utils.msgraph_odata import sign_in_filter
from ansible_collections.fleetguard.devices.plugins.modules import msgraph_device_info

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 11, 28, 6, 30, 15, tzinfo=UTC)


def connection(sandbox, **args):
    return dict(dict(graph_endpoint=sandbox.url, authority_host=sandbox.url, tenant_id=sandbox.tenant_id,
                     client_id=sandbox.client_id, client_secret=sandbox.client_secret), **args)


def device_listings(sandbox):
    """The GETs of the device collection the emulator answered (token requests left out)."""
    return [entry for entry in sandbox.wire.entries(method="GET") if entry["path"].endswith("/devices")]


def signed_in(device):
    text = device["approximateLastSignInDateTime"]
    return None if text is None else datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def ids_where(sandbox, predicate):
    with sandbox.lock:
        return sorted(oid for oid, device in sandbox.devices.items() if predicate(device))


# the clause


@pytest.mark.parametrize("before, after, clause", [
    ("2025-07-01", None, "approximateLastSignInDateTime le 2025-07-01T00:00:00Z"),
    (None, "2025-07-01", "approximateLastSignInDateTime ge 2025-07-01T00:00:00Z"),
    ("2025-07-01T08:30:00Z", None, "approximateLastSignInDateTime le 2025-07-01T08:30:00Z"),
    ("2025-07-01T10:30:00+02:00", None, "approximateLastSignInDateTime le 2025-07-01T08:30:00Z"),
    ("2025-07-01T08:30", None, "approximateLastSignInDateTime le 2025-07-01T08:30:00Z"),
    ("2025-07-01T08:30:00.25Z", None, "approximateLastSignInDateTime le 2025-07-01T08:30:00.250000Z"),
    (" 90d ", None, "approximateLastSignInDateTime le 2026-08-30T06:30:15Z"),
    ("0d", None, "approximateLastSignInDateTime le 2026-11-28T06:30:15Z"),
    ("30d", "2026-01-01", "approximateLastSignInDateTime ge 2026-01-01T00:00:00Z"
                          " and approximateLastSignInDateTime le 2026-10-29T06:30:15Z"),
    (None, None, None),
], ids=["date", "after-date", "utc-time", "offset-converted-to-utc", "no-offset-is-utc", "fraction", "days-ago",
        "zero-days", "both", "neither"])
def test_bounds_become_unquoted_utc_literals_with_le_and_ge(before, after, clause):
    assert sign_in_filter(before, after, now=NOW) == clause


@pytest.mark.parametrize("value", [
    "90", "90 days", "-90d", "yesterday", "2025-02-30", "2025-7-1", "01/07/2025", "2025-07-01 08:30",
    "2025-07-01T08:30:00Z' or displayName eq 'x", "le 2025-07-01", "", "999999d",
])
def test_a_value_of_another_form_is_refused_naming_it(value):
    with pytest.raises(InputError) as caught:
        sign_in_filter(before=value, now=NOW)
    assert str(caught.value).startswith("last_sign_in_before %r is not a date (2025-07-01)" % value)


def test_an_after_bound_later_than_the_before_bound_is_refused():
    with pytest.raises(InputError) as caught:
        sign_in_filter(before="2025-01-01", after="2025-06-01", now=NOW)
    assert str(caught.value) == ("last_sign_in_after '2025-06-01' (2025-06-01T00:00:00Z) is later than "
                                 "last_sign_in_before '2025-01-01' (2025-01-01T00:00:00Z): no device can match")


# the module against the emulator


def test_last_sign_in_before_sends_le_and_returns_exactly_the_devices_signed_in_at_or_before_it(run_main, graph_sandbox):
    cutoff = datetime.datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - datetime.timedelta(days=90)
    run = run_main(msgraph_device_info, connection(graph_sandbox, last_sign_in_before=cutoff.strftime("%Y-%m-%d")))
    assert not run.failed, run.result
    expected = ids_where(graph_sandbox, lambda d: signed_in(d) is not None and signed_in(d) <= cutoff)
    assert expected, "the seeded fleet has stale devices"
    assert sorted(device["id"] for device in run.result["devices"]) == expected
    (listing,) = device_listings(graph_sandbox)
    assert listing["query"]["$filter"] == "approximateLastSignInDateTime le %s" % cutoff.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "ConsistencyLevel" not in listing["headers"]  # le on the timestamp is not an advanced query


def test_relative_days_count_back_from_now(run_main, graph_sandbox):
    before = datetime.datetime.now(UTC).replace(microsecond=0)
    run = run_main(msgraph_device_info, connection(graph_sandbox, last_sign_in_after="30d", select=["id"]))
    after = datetime.datetime.now(UTC)
    assert not run.failed, run.result
    (listing,) = device_listings(graph_sandbox)
    operator, literal = listing["query"]["$filter"].split()[1:]
    sent = datetime.datetime.fromisoformat(literal.replace("Z", "+00:00"))
    assert operator == "ge"
    assert before - datetime.timedelta(days=30) <= sent <= after - datetime.timedelta(days=30)
    expected = ids_where(graph_sandbox, lambda d: signed_in(d) is not None and signed_in(d) >= sent)
    assert sorted(device["id"] for device in run.result["devices"]) == expected


def test_bounds_are_joined_to_the_users_filter_with_and_so_an_or_cannot_widen_them(run_main, graph_sandbox):
    user_filter = "operatingSystem eq 'Windows' or operatingSystem eq 'iOS'"
    run = run_main(msgraph_device_info, connection(graph_sandbox, filter=user_filter, last_sign_in_before="2026-01-01",
                                                   last_sign_in_after="2025-01-01"))
    assert not run.failed, run.result
    (listing,) = device_listings(graph_sandbox)
    assert listing["query"]["$filter"] == ("(operatingSystem eq 'Windows' or operatingSystem eq 'iOS') and "
                                           "approximateLastSignInDateTime ge 2025-01-01T00:00:00Z and "
                                           "approximateLastSignInDateTime le 2026-01-01T00:00:00Z")
    low, high = (datetime.datetime(year, 1, 1, tzinfo=UTC) for year in (2025, 2026))
    expected = ids_where(graph_sandbox, lambda d: d["operatingSystem"] in ("Windows", "iOS")
                         and signed_in(d) is not None and low <= signed_in(d) <= high)
    assert sorted(device["id"] for device in run.result["devices"]) == expected


def test_devices_that_never_signed_in_match_neither_bound(run_main, graph_sandbox):
    never = ids_where(graph_sandbox, lambda d: d["approximateLastSignInDateTime"] is None)
    assert never, "the seeded fleet has devices that never signed in"
    for bound in ("last_sign_in_before", "last_sign_in_after"):
        run = run_main(msgraph_device_info, connection(graph_sandbox, select=["id"], **{bound: "2000-01-01"
                                                                                        if bound.endswith("after")
                                                                                        else "2100-01-01"}))
        assert not run.failed, run.result
        found = {device["id"] for device in run.result["devices"]}
        assert found and not found & set(never)


def test_an_advanced_user_filter_keeps_advanced_query(run_main, graph_sandbox):
    run = run_main(msgraph_device_info, connection(
        graph_sandbox, filter="startswith(extensionAttributes/extensionAttribute1, 'BYOD')", advanced_query=True,
        last_sign_in_before="2100-01-01"))
    assert not run.failed, run.result
    (listing,) = device_listings(graph_sandbox)
    assert listing["headers"].get("ConsistencyLevel") == "eventual" and listing["query"]["$count"] == "true"
    assert run.result["count"] == len(run.result["devices"])


@pytest.mark.parametrize("args, message", [
    (dict(last_sign_in_before="90 days"), "last_sign_in_before '90 days' is not a date (2025-07-01), a date and time"
                                          " (2025-07-01T08:30:00Z) or a number of days ago (90d)"),
    (dict(last_sign_in_after="2025-13-01"), "last_sign_in_after '2025-13-01' is not a date"),
    (dict(last_sign_in_before="2025-01-01", last_sign_in_after="2025-02-01"), "is later than last_sign_in_before"),
    (dict(last_sign_in_before="2025-01-01' or 1 eq 1"), "last_sign_in_before \"2025-01-01' or 1 eq 1\" is not a date"),
], ids=["words", "no-such-month", "empty-range", "injection"])
def test_bad_bounds_fail_before_any_request_naming_the_value(run_main, graph_sandbox, args, message):
    run = run_main(msgraph_device_info, connection(graph_sandbox, **args))
    assert run.failed
    assert message in run.result["msg"]
    assert run.result["changed"] is False
    assert graph_sandbox.wire.entries() == [], "a request was sent"


@pytest.mark.parametrize("identity", [dict(id=["00000000-0000-4000-8000-000000000000"]), dict(display_name=["FG-WS-0001"])])
def test_bounds_do_not_combine_with_identifiers(run_main, graph_sandbox, identity):
    run = run_main(msgraph_device_info, connection(graph_sandbox, last_sign_in_before="90d", **identity))
    assert run.failed
    assert "parameters are mutually exclusive: id|device_id|display_name|last_sign_in_before" in run.result["msg"]
    assert graph_sandbox.wire.entries() == []


def test_the_result_keeps_its_keys(run_main, graph_sandbox):
    run = run_main(msgraph_device_info, connection(graph_sandbox, last_sign_in_before="90d", limit=2))
    assert not run.failed, run.result
    assert set(run.result) == {"changed", "devices", "missing"}
    assert json.dumps(run.result)  # plain JSON, as Ansible needs it
