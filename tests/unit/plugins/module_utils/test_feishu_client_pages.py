"""FeishuClient.list_page: a page that says there is more (`has_more: true`) must hand over the next page's token.
Without one the list cannot go on, and reading it as the last page would drop every later record (a change source
would call them removed, a module would not find them)."""

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import ApiError

LIST = r"/device_records$"


def test_has_more_without_a_page_token_is_an_error_not_the_last_page(feishu_sandbox, feishu_client):
    feishu_sandbox.faults.add(action="answer", match={"method": "GET", "path_regex": LIST}, times=1,
                              body={"code": 0, "msg": "success", "data": {"items": [], "has_more": True}})
    with pytest.raises(ApiError, match="has_more"):
        feishu_client.list_page({"page_size": 100})


def test_iter_records_stops_with_the_error_instead_of_a_short_list(feishu_sandbox, feishu_client):
    feishu_sandbox.faults.add(action="answer", match={"method": "GET", "path_regex": LIST}, times=1,
                              body={"code": 0, "msg": "success", "data": {"items": [], "has_more": True, "page_token": ""}})
    with pytest.raises(ApiError, match="has_more"):
        list(feishu_client.iter_records())


def test_the_last_page_has_no_more_and_no_token(feishu_sandbox, feishu_client):
    feishu_sandbox.faults.add(action="answer", match={"method": "GET", "path_regex": LIST}, times=1,
                              body={"code": 0, "msg": "success", "data": {"items": [], "has_more": False}})
    assert feishu_client.list_page({}) == ([], None)


def test_a_page_token_given_twice_ends_the_list_with_an_error_not_a_loop(feishu_sandbox, feishu_client):
    page = {"code": 0, "msg": "success", "data": {"items": [], "has_more": True, "page_token": "same"}}
    feishu_sandbox.faults.add(action="answer", match={"method": "GET", "path_regex": LIST}, times=5, body=page)
    with pytest.raises(ApiError, match="already given"):
        list(feishu_client.iter_records())
    assert len(feishu_sandbox.wire.entries(method="GET")) == 2
