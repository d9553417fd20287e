"""Fixtures of the change sources' tests: the connection from the environment only, as an EDA credential injects
it (a developer's shell cleared first: no_connection_env, tests/unit/conftest.py)."""

import pytest


@pytest.fixture(autouse=True)
def clean_environment(no_connection_env):
    pass


@pytest.fixture
def graph_args(graph_sandbox, monkeypatch):
    monkeypatch.setenv("MSGRAPH_ENDPOINT", graph_sandbox.url)
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", graph_sandbox.url)
    monkeypatch.setenv("AZURE_TENANT_ID", graph_sandbox.tenant_id)
    monkeypatch.setenv("AZURE_CLIENT_ID", graph_sandbox.client_id)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", graph_sandbox.client_secret)
    return dict(interval=5, max_retries=1, timeout=5)


@pytest.fixture
def feishu_args(feishu_sandbox, monkeypatch):
    monkeypatch.setenv("FEISHU_BASE_URL", feishu_sandbox.url)
    monkeypatch.setenv("FEISHU_APP_ID", feishu_sandbox.app_id)
    monkeypatch.setenv("FEISHU_APP_SECRET", feishu_sandbox.app_secret)
    return dict(interval=30, max_retries=1, timeout=5)
