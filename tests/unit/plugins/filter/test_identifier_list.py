"""identifier_list: one identifier input of a role (a list, or AWX survey text) as the list the modules take."""

import pytest

from ansible.errors import AnsibleFilterError
from ansible_collections.fleetguard.devices.plugins.filter.devices import identifier_list


class TestSurveyText:
    def test_single_line_survey_text_is_split_at_commas(self):
        assert identifier_list("C02FG0001, C02FG0007,FG-LAPTOP-0018") == ["C02FG0001", "C02FG0007", "FG-LAPTOP-0018"]

    def test_multi_line_survey_text_is_one_identifier_per_line_commas_inside_kept(self):
        # An AWX textarea: a device name may hold a comma.
        assert identifier_list("Smith, John's iPad\nC02FG0007,\n") == ["Smith, John's iPad", "C02FG0007"]

    def test_windows_line_ends_and_blanks_around_values_are_trimmed(self):
        assert identifier_list("  a ,\r\n b\t\r\n") == ["a", "b"]

    def test_empty_pieces_between_separators_are_dropped(self):
        assert identifier_list("a,,\n\n, ,b,") == ["a", "b"]

    def test_a_single_value_with_a_trailing_new_line_is_one_identifier(self):
        assert identifier_list("FG-LAPTOP-0018\n") == ["FG-LAPTOP-0018"]

    def test_a_comma_inside_a_list_item_is_kept(self):
        # Only survey text is split: a list item is one identifier, whatever it contains.
        assert identifier_list(["Dana, laptop"]) == ["Dana, laptop"]


class TestLists:
    def test_items_are_trimmed_and_empty_ones_dropped_in_the_given_order(self):
        assert identifier_list([" b ", "", "  ", "a"]) == ["b", "a"]

    def test_exact_duplicates_are_dropped_and_case_variants_kept(self):
        # The modules match exactly: two names that differ in case are two devices.
        assert identifier_list(["FG-WS-0008", "fg-ws-0008", " FG-WS-0008 ", "FG-WS-0011"]) == [
            "FG-WS-0008", "fg-ws-0008", "FG-WS-0011"]

    def test_numbers_become_strings(self):
        assert identifier_list([7400000000000000001, 2.5, "7400000000000000001"]) == ["7400000000000000001", "2.5"]

    def test_a_tuple_is_read_like_a_list(self):
        assert identifier_list(("a", "b")) == ["a", "b"]


class TestNothingGiven:
    @pytest.mark.parametrize("value", [None, "", [], (), "  ", " ,\n, "], ids=repr)
    def test_nothing_gives_an_empty_list(self, value):
        assert identifier_list(value) == []

    def test_a_scalar_number_is_one_identifier(self):
        assert identifier_list(12345) == ["12345"]


class TestBadInput:
    def test_a_mapping_fails_naming_it(self):
        with pytest.raises(AnsibleFilterError, match=r'not a dict: \{"serial_number": "C02FG0001"\}'):
            identifier_list({"serial_number": "C02FG0001"})

    @pytest.mark.parametrize("value", [True, False], ids=repr)
    def test_a_boolean_fails_naming_it(self, value):
        with pytest.raises(AnsibleFilterError, match="not a bool: %s" % str(value).lower()):
            identifier_list(value)

    @pytest.mark.parametrize("item, shown", [(None, "null"), ({"a": 1}, '{"a": 1}'), (["a"], '["a"]'), (True, "true")],
                             ids=repr)
    def test_an_item_that_is_no_identifier_fails_naming_its_position_and_value(self, item, shown):
        with pytest.raises(AnsibleFilterError) as caught:
            identifier_list(["ok", item])
        assert str(caught.value) == "identifier_list: item 2 is not an identifier (a string or a number): " + shown

    def test_a_long_bad_value_is_cut_in_the_message(self):
        with pytest.raises(AnsibleFilterError) as caught:
            identifier_list({"k": "x" * 1000})
        assert len(str(caught.value)) < 400 and str(caught.value).endswith("...")


class TestInTemplates:
    def test_the_role_vars_expression_gives_the_list_through_jinja(self, render):
        assert render("survey | fleetguard.devices.identifier_list", survey="FG-WS-0008, FG-WS-0011") == ["FG-WS-0008", "FG-WS-0011"]

    def test_a_list_variable_gives_the_list_through_jinja(self, render):
        assert render("ids | fleetguard.devices.identifier_list", ids=[" a", "A", "a", 5]) == ["a", "A", "5"]

    def test_bad_input_fails_the_template_with_the_filters_message(self, render):
        with pytest.raises(Exception, match="identifier_list: expected a list of identifiers"):
            render("ids | fleetguard.devices.identifier_list", ids={"a": 1})


@pytest.mark.parametrize("text", [
    "\ufeffFG-WS-0139\r\nFG-WS-0105\u200b\r\n\r\nfg-ws-0133 \r\n",
    "\ufeffFG-WS-0139, FG-WS-0105\u200b,fg-ws-0133\u00a0",
])
def test_invisible_characters_pasted_around_survey_entries_are_dropped(text):
    # A byte-order mark or a zero-width space kept would make an exclusion that protects no device.
    assert identifier_list(text) == ["FG-WS-0139", "FG-WS-0105", "fg-ws-0133"]


def test_an_invisible_character_inside_a_name_is_kept():
    assert identifier_list(["FG\u200b-WS"]) == ["FG\u200b-WS"]
