"""The list-endpoint filters shared by feishu_device_record_info and the feishu_device_records inventory."""

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import InputError, shown
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_filters import list_filters


@pytest.mark.parametrize("filters, expected", [
    ({"device_status": "untrusted"}, {"device_status": 2}),
    ({"device_status": 1}, {"device_status": 1}),
    ({"device_status": "1"}, {"device_status": 1}),
    ({"os": "macOS"}, {"os": 2}),
    ({"device_terminal_type": "desktop", "is_managed": False}, {"device_terminal_type": 2, "is_managed": "false"}),
    ({"device_name": "A", "serial_number": None}, {"device_name": "A"}),
    ({"source": "2"}, {"source": 2}),
])
def test_filters_are_translated(filters, expected):
    assert list_filters(filters) == expected


@pytest.mark.parametrize("filters", [
    {"device_status": "suspicious"},
    {"device_status": 7},
    {"device_status": True},
    {"is_managed": "yes"},
    {"source": "often"},
    {"colour": "red"},
])
def test_bad_filters_are_refused(filters):
    with pytest.raises(InputError):
        list_filters(filters)


def test_an_unknown_filter_names_the_known_ones():
    with pytest.raises(InputError) as caught:
        list_filters({"colour": "red"})
    assert "'colour'" in str(caught.value) and "device_status" in str(caught.value)


@pytest.mark.parametrize("filters, named", [
    ({"device_status": "\u0661"}, "device_status"),      # ARABIC-INDIC DIGIT ONE
    ({"device_status": "\uff12"}, "device_status"),      # FULLWIDTH DIGIT TWO
    ({"os": "\u0968"}, "os"),                            # DEVANAGARI DIGIT TWO
    ({"source": "\u0662"}, "source"),
    ({"source": True}, "source"),
    ({"lsa_client_status": False}, "lsa_client_status"),
    ({"source": 2.7}, "source"),
    ({"source": " 2"}, "source"),
])
def test_digits_of_other_scripts_booleans_and_fractions_are_refused_naming_the_filter_and_value(filters, named):
    with pytest.raises(InputError) as caught:
        list_filters(filters)
    message = str(caught.value)
    assert named in message and message.endswith("not %s" % shown(filters[named])), message
