"""The Graph sandbox's sign-in ages, the `$filter` forms on approximateLastSignInDateTime, and the clock that lets
time pass (GET/POST /_sandbox/clock), which the stale-device lifecycle's tests and demo rely on."""

import collections
import datetime

import pytest
import requests

from sandbox import GraphSandbox

UTC = datetime.timezone.utc
ADVANCED = {"ConsistencyLevel": "eventual"}
FIXED_NOW = datetime.datetime(2026, 3, 15, 17, 45, tzinfo=UTC).timestamp()


def parse(text):
    return None if text is None else datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def graph_time(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture
def sb():
    with GraphSandbox(devices=120, seed=11, throttling=False) as sandbox:
        yield sandbox


@pytest.fixture
def token(sb):
    return sb.issue_token()


def listing(sb, token, expression, advanced=False):
    params = {"$filter": expression, "$top": 999, "$select": "id,approximateLastSignInDateTime"}
    headers = {"Authorization": "Bearer " + token}
    if advanced:
        params["$count"] = "true"
        headers.update(ADVANCED)
    return requests.get(sb.url + "/v1.0/devices", params=params, headers=headers, timeout=5)


def ids(response):
    assert response.status_code == 200, response.text
    return sorted(item["id"] for item in response.json()["value"])


def ids_where(sb, predicate):
    with sb.lock:
        return sorted(oid for oid, device in sb.devices.items() if predicate(parse(device["approximateLastSignInDateTime"])))


# generated ages


def test_generated_sign_in_ages_spread_over_400_days_with_some_never_signed_in():
    sandbox = GraphSandbox(devices=600, seed=3)
    sandbox.clock = lambda: FIXED_NOW
    sandbox.regenerate()
    midnight = datetime.datetime(2026, 3, 15, tzinfo=UTC)
    ages = collections.Counter()
    for device in sandbox.devices.values():
        moment = parse(device["approximateLastSignInDateTime"])
        if moment is None:
            ages["null"] += 1
            continue
        assert moment >= parse(device["registrationDateTime"]) and moment <= midnight
        days = (midnight - moment).days
        assert 0 <= days <= 401
        ages["recent" if days <= 30 else "idle" if days < 90 else "stale"] += 1
    assert 10 <= ages["null"] <= 45           # about 4 %
    assert 280 <= ages["recent"] <= 400       # about 56 %, plus the stale ones capped by their registration
    assert 40 <= ages["idle"] <= 110          # about 12 %
    assert 120 <= ages["stale"] <= 220        # about 28 %
    assert {device["trustType"] for device in sandbox.devices.values()} == {"AzureAd", "ServerAd", "Workplace"}
    assert {device["operatingSystem"] for device in sandbox.devices.values()} == {
        "Windows", "MacMDM", "iOS", "Android", "Linux"}
    autopilot = [device for device in sandbox.devices.values()
                 if any(item.startswith("[ZTDID]:") for item in device["physicalIds"])]
    assert autopilot and all(device["operatingSystem"] == "Windows" for device in autopilot)


def test_ages_follow_the_clock_and_nothing_else_changes():
    one, other = GraphSandbox(devices=40, seed=5), GraphSandbox(devices=40, seed=5)
    one.clock = lambda: FIXED_NOW
    other.clock = lambda: FIXED_NOW + 10 * 86400
    one.regenerate()
    other.regenerate()
    for object_id, device in one.devices.items():
        moved = other.devices[object_id]
        before, after = parse(device["approximateLastSignInDateTime"]), parse(moved["approximateLastSignInDateTime"])
        if before is None:
            assert after is None
        elif before > parse(device["registrationDateTime"]):  # not capped by the registration
            assert after - before == datetime.timedelta(days=10)
        rest = dict((key, value) for key, value in device.items()
                    if key not in ("approximateLastSignInDateTime", "onPremisesLastSyncDateTime"))
        assert rest == dict((key, value) for key, value in moved.items() if key in rest)


# $filter on approximateLastSignInDateTime


def test_le_and_ge_with_an_unquoted_datetime_bound_the_sign_in_and_never_match_null(sb, token):
    now = datetime.datetime.now(UTC)
    cutoff, since = now - datetime.timedelta(days=90), now - datetime.timedelta(days=200)
    stale = ids(listing(sb, token, "approximateLastSignInDateTime le %s" % graph_time(cutoff)))
    assert stale and stale == ids_where(sb, lambda moment: moment is not None and moment <= cutoff.replace(microsecond=0))
    recent = ids(listing(sb, token, "approximateLastSignInDateTime ge %s" % graph_time(cutoff)))
    assert recent == ids_where(sb, lambda moment: moment is not None and moment >= cutoff.replace(microsecond=0))
    between = ids(listing(sb, token, "approximateLastSignInDateTime ge %s and approximateLastSignInDateTime le %s"
                          % (graph_time(since), graph_time(cutoff))))
    assert between and set(between) < set(stale)
    never = ids(listing(sb, token, "approximateLastSignInDateTime eq null", advanced=True))
    assert never and never == ids_where(sb, lambda moment: moment is None)
    assert not set(never) & (set(stale) | set(recent))
    assert len(stale) + len(recent) + len(never) >= len(sb.devices)  # a sign-in exactly at the cutoff is in both


def test_the_forms_the_role_sends_are_accepted(sb, token):
    expression = ("(trustType in ('AzureAd','Workplace')) and approximateLastSignInDateTime le 2026-08-30T00:00:00Z")
    assert listing(sb, token, expression).status_code == 200
    offset = "approximateLastSignInDateTime le 2026-08-30T02:00:00+02:00"
    assert ids(listing(sb, token, offset)) == ids(listing(sb, token, "approximateLastSignInDateTime le 2026-08-30T00:00Z"))
    fraction = listing(sb, token, "approximateLastSignInDateTime le 2026-08-30T00:00:00.250000Z")
    assert fraction.status_code == 200
    tagged = listing(sb, token, "startswith(extensionAttributes/extensionAttribute14, 'stale-disabled:')", advanced=True)
    assert tagged.status_code == 200


@pytest.mark.parametrize("literal, says", [
    ("'2026-08-30T00:00:00Z'", "incompatible types"),   # quoted: a string to Graph
    ("2026-08-30", "incompatible types"),               # a date alone: Edm.Date
    ("2026-02-30T00:00:00Z", "not a valid date"),
])
def test_a_quoted_datetime_a_bare_date_or_an_impossible_date_is_refused(sb, token, literal, says):
    answer = listing(sb, token, "approximateLastSignInDateTime le %s" % literal)
    assert answer.status_code == 400
    assert says in answer.json()["error"]["message"]


def test_eq_null_needs_an_advanced_query(sb, token):
    answer = listing(sb, token, "approximateLastSignInDateTime eq null")
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "Request_UnsupportedQuery")


# the clock


def test_the_clock_route_lets_time_pass_and_devices_sign_in(sb, token):
    start = requests.get(sb.url + "/_sandbox/clock", timeout=5).json()
    assert abs(start["offset_seconds"]) <= 1 and start["today"] == start["now"][:10]
    device_id = sorted(sb.devices)[0]

    moved = requests.post(sb.url + "/_sandbox/clock", json={"days": 31, "hours": 2, "signed_in": [device_id.upper()]},
                          timeout=5).json()
    assert 31 * 86400 + 7200 - 2 <= moved["offset_seconds"] <= 31 * 86400 + 7200 + 2
    assert sb.devices[device_id]["approximateLastSignInDateTime"] == moved["now"]
    assert requests.get(sb.url + "/_sandbox/clock", timeout=5).json()["today"] == moved["today"]
    # A device that signed in "now" is not stale by a cutoff in the sandbox's past.
    cutoff = graph_time(parse(moved["now"]) - datetime.timedelta(days=90))
    assert device_id not in ids(listing(sb, sb.issue_token(), "approximateLastSignInDateTime le %s" % cutoff))

    back = requests.post(sb.url + "/_sandbox/clock", json={"days": -31, "hours": -2}, timeout=5).json()
    assert abs(back["offset_seconds"]) <= 1


def test_tokens_issued_before_the_clock_moved_past_their_lifetime_expire(sb, token):
    assert listing(sb, token, "approximateLastSignInDateTime le 2026-08-30T00:00:00Z").status_code == 200
    sb.advance_clock(days=1)
    assert listing(sb, token, "approximateLastSignInDateTime le 2026-08-30T00:00:00Z").status_code == 401
    assert listing(sb, sb.issue_token(), "approximateLastSignInDateTime le 2026-08-30T00:00:00Z").status_code == 200


@pytest.mark.parametrize("body", [
    {"weeks": 1},
    {"days": "31"},
    {"days": True},
    {"signed_in": "not-a-list"},
    {"days": 5, "signed_in": ["00000000-0000-0000-0000-000000000000"]},
    [1, 2],
])
def test_a_bad_clock_request_is_refused_and_changes_nothing(sb, body):
    before = requests.get(sb.url + "/_sandbox/clock", timeout=5).json()
    with sb.lock:
        devices = dict((oid, dict(device)) for oid, device in sb.devices.items())
    answer = requests.post(sb.url + "/_sandbox/clock", json=body, timeout=5)
    assert answer.status_code == 400
    assert abs(requests.get(sb.url + "/_sandbox/clock", timeout=5).json()["offset_seconds"] - before["offset_seconds"]) <= 1
    assert sb.devices == devices


def test_reset_generates_ages_from_the_moved_clock(sb):
    sb.advance_clock(days=100)
    sb.reset()
    moved = GraphSandbox(devices=120, seed=11)
    moved.clock = sb.clock
    moved.regenerate()
    assert sb.devices == moved.devices
