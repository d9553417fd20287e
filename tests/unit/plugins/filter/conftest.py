"""Fixtures for the filter tests: Jinja rendering with the collection's filters, as a role's vars are rendered."""

import pytest


@pytest.fixture
def render():
    """render(expression, **variables) -> the value of `{{ expression }}`, templated by ansible-core."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    def run(expression, **variables):
        return Templar(loader=DataLoader(), variables=variables).template(trust_as_template("{{ %s }}" % expression))

    return run
