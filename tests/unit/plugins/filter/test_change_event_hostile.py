"""change_event, attacked: an event as ansible-core 2.19+ holds one handed over as `-e @file` (every string a trusted
template), read through the filter in a real template; values of the wrong type or form; what the refusals show."""

import os

import pytest

from ansible.errors import AnsibleError, AnsibleFilterError
from ansible.template import is_trusted_as_template, trust_as_template
from ansible_collections.fleetguard.devices.plugins.filter.change_event import change_event
from ansible_collections.fleetguard.devices.plugins.module_utils.device_changes import change_event as source_event

GUID = "0f2c7d1e-5b1a-4c3e-9a7b-3d2e1f0a9b8c"
FILTER = "ansible_eda | default(none) | fleetguard.devices.change_event(%s, fields=['accountEnabled', 'device_status'])"


def trusted(value):
    """`value` as `-e @file` gives it to ansible-core: every string (keys too) trusted as a template."""
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return dict((trusted(key), trusted(item)) for key, item in value.items())
    if isinstance(value, (list, tuple)):
        return [trusted(item) for item in value]
    return value


def graph_eda(**change):
    event = source_event("msgraph", "updated", GUID, {"displayName": "PC-1", "accountEnabled": True},
                         changed=["accountEnabled"], previous={"accountEnabled": False},
                         observed_at="2026-12-07T09:05:31Z")
    event["fleetguard"].update(change)
    return {"ruleset": "r", "rule": "r", "event": event}


def feishu_eda(**change):
    event = source_event("feishu", "updated", "7400000000000000001", {"device_name": "PC-1", "device_status": "trusted"},
                         changed=["device_status"], previous={"device_status": "untrusted"},
                         observed_at="2026-12-07T09:05:31Z")
    event["fleetguard"].update(change)
    return {"event": event}


@pytest.fixture
def marker(tmp_path):
    """marker.template(value): a template that creates the marker file when rendered, then renders to `value`."""
    path = tmp_path / "rendered"

    class Marker:
        def template(self, value=""):
            return "{{ lookup('pipe', 'touch %s') }}%s" % (path, value)

        def rendered(self):
            return os.path.exists(str(path))

    return Marker()


def rendered_refusal(render, eda, directories="['msgraph', 'feishu']"):
    with pytest.raises(AnsibleError) as caught:
        render(FILTER % directories, ansible_eda=trusted(eda))
    return str(caught.value)


# --- 1. Nothing of the event is rendered: not the keys the filter reads either ---------------------------------


def test_a_trusted_event_of_the_sources_shape_comes_back_as_plain_untrusted_values(render):
    eda = graph_eda()
    eda["event"]["fleetguard"]["device"]["isCompliant"] = 1.5
    change = render(FILTER % "['msgraph']", ansible_eda=trusted(eda))
    assert change == {"directory": "msgraph", "change": "updated", "id": GUID, "changed": ["accountEnabled"],
                      "observed_at": "2026-12-07T09:05:31Z", "device": {"accountEnabled": True},
                      "previous": {"accountEnabled": False}}
    for value in [change["directory"], change["change"], change["id"], change["observed_at"]] + change["changed"]:
        assert type(value).__name__ == "str" and not is_trusted_as_template(value)


def test_strings_the_filter_never_reads_are_never_rendered(render, marker):
    eda = graph_eda()
    eda[marker.template("eda-key")] = marker.template()
    eda["event"]["meta"] = {"source": {"name": marker.template()}, marker.template("meta-key"): 1}
    eda["event"]["other"] = marker.template()
    change = eda["event"]["fleetguard"]
    change["extra"] = marker.template()
    for part in (change["device"], change["previous"]):
        part["displayName"] = marker.template()
        part[marker.template("key")] = marker.template()
    change = render(FILTER % "['msgraph']", ansible_eda=trusted(eda))
    assert not marker.rendered()
    assert change["device"] == {"accountEnabled": True}


@pytest.mark.parametrize("key, valid", [
    ("directory", "msgraph"), ("change", "updated"), ("id", GUID), ("observed_at", "2026-12-07T09:05:31Z"),
])
def test_a_template_in_a_key_the_filter_reads_is_refused_without_rendering_it(render, marker, key, valid):
    # The template renders to a value of the right form: rendered first, it would slip through.
    text = marker.template("{{ %r }}" % valid)
    message = rendered_refusal(render, graph_eda(**{key: text}))
    assert not marker.rendered(), "%s was rendered before it was refused" % key
    assert key in message and "nothing was read or written" in message
    assert "lookup" not in message and "touch" not in message


def test_a_template_in_changed_is_refused_without_rendering_it(render, marker):
    message = rendered_refusal(render, graph_eda(changed=[marker.template("accountEnabled")]))
    assert not marker.rendered() and "changed" in message and "lookup" not in message


def test_a_template_as_a_field_asked_for_is_refused_without_rendering_it(render, marker):
    eda = feishu_eda()
    eda["event"]["fleetguard"]["device"]["device_status"] = marker.template("trusted")
    message = rendered_refusal(render, eda)
    assert not marker.rendered() and "device.device_status" in message and "lookup" not in message


@pytest.mark.parametrize("where", ["event", "fleetguard", "device", "previous", "changed"])
def test_a_template_where_an_object_or_list_belongs_is_refused_without_rendering_it(render, marker, where):
    eda = graph_eda()
    if where == "event":
        eda["event"] = marker.template("{{ {} }}")
    elif where == "fleetguard":
        eda["event"]["fleetguard"] = marker.template("{{ {} }}")
    else:
        eda["event"]["fleetguard"][where] = marker.template("{{ [] }}" if where == "changed" else "{{ {} }}")
    message = rendered_refusal(render, eda)
    assert not marker.rendered(), "%s was rendered before it was refused" % where
    assert "nothing was read or written" in message and "lookup" not in message
    assert "_AnsibleTagged" not in message  # the type as a playbook's author knows it


# --- 2. Values of the wrong type or form --------------------------------------------------------------------------


@pytest.mark.parametrize("bad_id", [
    "\u0663" * 19, "\uff17" * 19, "{%s}" % GUID, GUID.replace("-", ""), GUID + " ", "x" * 5000, True, 1.5,
    float("nan"), [GUID], {"id": GUID}, "",
], ids=["arabic-digits", "fullwidth-digits", "braces", "no-dashes", "trailing-space", "long", "bool", "float",
        "nan", "list", "dict", "empty"])
def test_an_id_of_another_form_is_refused(bad_id):
    eda = feishu_eda(id=bad_id) if isinstance(bad_id, str) and bad_id[:1] in ("\u0663", "\uff17") else graph_eda(id=bad_id)
    with pytest.raises(AnsibleFilterError, match="id"):
        change_event(eda, ["msgraph", "feishu"])


def test_a_guid_in_upper_case_is_a_graph_id():
    assert change_event(graph_eda(id=GUID.upper()), ["msgraph"])["id"] == GUID.upper()


@pytest.mark.parametrize("observed_at", [
    "\u0662\u0660\u0662\u0666-12-07T09:05:31Z", "\uff12\uff10\uff12\uff16-12-07T09:05:31Z",
    "2026-12-07T09:05:31.5Z", "2026-12-07T09:05:31+00:00", "2026-12-07T23:59:60Z", "2026-12-07 09:05:31Z",
    "2026-12-07T09:05:31z", "x" * 20, 1765098331, True, None,
], ids=["arabic-digits", "fullwidth-digits", "fraction", "offset", "leap-second", "space", "lower-z", "20-chars",
        "epoch", "bool", "null"])
def test_an_observed_at_of_another_form_is_refused(observed_at):
    with pytest.raises(AnsibleFilterError, match="observed_at"):
        change_event(graph_eda(observed_at=observed_at), ["msgraph"])


@pytest.mark.parametrize("observed_at", ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z"])
def test_the_first_and_last_years_are_utc_times(observed_at):
    assert change_event(graph_eda(observed_at=observed_at), ["msgraph"])["observed_at"] == observed_at


@pytest.mark.parametrize("changed", [["accountEnabled", "accountEnabled"], [["accountEnabled"]], ["\u0663x"], [True]],
                         ids=["twice", "nested", "unicode", "bool"])
def test_changed_of_another_form_is_refused(changed):
    with pytest.raises(AnsibleFilterError, match="changed"):
        change_event(graph_eda(changed=changed), ["msgraph"])


def test_changed_as_a_tuple_comes_back_as_a_list():
    assert change_event(graph_eda(changed=("accountEnabled",)), ["msgraph"])["changed"] == ["accountEnabled"]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), [True], {"a": 1}, "x" * 65, "trusted\n",
                                   10 ** 5000, 2 ** 63],
                         ids=["nan", "inf", "-inf", "list", "dict", "long", "newline", "5001-digits", "2**63"])
def test_a_field_that_is_no_flag_number_or_status_is_refused(value):
    eda = feishu_eda()
    eda["event"]["fleetguard"]["device"]["device_status"] = value
    with pytest.raises(AnsibleFilterError, match="device.device_status"):
        change_event(eda, ["feishu"], fields=["device_status"])


def test_a_field_asked_for_twice_or_present_in_another_case_comes_back_once_as_asked():
    eda = feishu_eda()
    eda["event"]["fleetguard"]["device"]["Device_Status"] = "untrusted"
    change = change_event(eda, ["feishu"], fields=["device_status", "device_status"])
    assert change["device"] == {"device_status": "trusted"}


@pytest.mark.parametrize("changes", [[], ["resync"], ["bogus"]], ids=["none", "resync", "bogus"])
def test_changes_a_playbook_can_never_receive_are_refused_naming_the_option(changes):
    with pytest.raises(AnsibleFilterError, match="changes") as caught:
        change_event(graph_eda(), ["msgraph"], changes=changes)
    assert "nothing was read or written" in str(caught.value)


def test_no_directory_is_refused_naming_the_option():
    with pytest.raises(AnsibleFilterError, match="directories") as caught:
        change_event(graph_eda(), [])
    assert "nothing was read or written" in str(caught.value)


# --- 3. What a refusal shows ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("key, text", [
    ("id", "{{ lookup('pipe', 'id') }}"), ("observed_at", "{{ lookup('pipe', 'id') }}"),
    ("id", "#jinja2:variable_start_string:'[[',variable_end_string:']]'\n[[ lookup('pipe', 'id') ]]"),
], ids=["id", "observed_at", "jinja2-header"])
def test_a_refused_string_that_may_hold_a_template_is_shown_by_its_length_only(key, text):
    with pytest.raises(AnsibleFilterError) as caught:
        change_event(graph_eda(**{key: text}), ["msgraph"])
    message = str(caught.value)
    assert "lookup" not in message and "pipe" not in message
    assert "%s a string of %d characters" % (key, len(text)) in message


def test_a_refused_long_string_is_shown_by_its_length_only():
    with pytest.raises(AnsibleFilterError) as caught:
        change_event(graph_eda(id="a" * 5000), ["msgraph"])
    assert "a string of 5000 characters" in str(caught.value) and "a" * 300 not in str(caught.value)


def test_a_refused_id_of_5001_digits_is_shown_by_its_size():
    with pytest.raises(AnsibleFilterError) as caught:  # str() of it raises ValueError (over 4300 digits)
        change_event(graph_eda(id=10 ** 5000), ["msgraph"])
    assert "id an integer of 16610 bits is not a Graph object id" in str(caught.value)


def test_a_refused_short_id_is_named():
    with pytest.raises(AnsibleFilterError) as caught:
        change_event(graph_eda(id="../../users/" + GUID), ["msgraph"])
    assert '"../../users/%s"' % GUID in str(caught.value)


def test_unread_content_never_appears_in_a_refusal():
    secret = "do-not-show-" + "s" * 10
    eda = graph_eda(id=None, extra=secret)
    eda["event"]["fleetguard"]["device"]["displayName"] = secret
    with pytest.raises(AnsibleFilterError) as caught:
        change_event(eda, ["msgraph"], fields=["accountEnabled"])
    assert secret not in str(caught.value)


def test_a_lazy_container_that_cannot_be_read_unrendered_is_refused_not_read():
    # A later ansible-core whose lazy containers lost _non_lazy_copy(): reading one would render it.
    class LaterLazyDict(dict):
        __module__ = "ansible._internal._templating._lazy_containers"

        def get(self, *args):
            raise AssertionError("read through the rendering accessor")

    with pytest.raises(AnsibleFilterError) as caught:
        change_event(LaterLazyDict(graph_eda()), ["msgraph"])
    assert "LaterLazyDict, which this ansible-core renders when it is read" in str(caught.value)
    assert "nothing was read or written" in str(caught.value)
