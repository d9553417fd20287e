"""FeishuClient against the Feishu sandbox: tokens, envelope, errors, and paging."""

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import (
    ApiError,
    AuthenticationError,
    InputError,
    NotFoundError,
    TransientError,
)
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_client import FeishuClient
from ansible_collections.fleetguard.devices.plugins.module_utils.feishu_records import FeishuDeviceRecords
from ansible_collections.fleetguard.devices.plugins.module_utils.transport import HttpTransport

LIST = r"/device_records$"
TOKEN = r"/tenant_access_token/internal$"


def test_credentials_are_required():
    with pytest.raises(InputError) as caught:
        FeishuClient(transport=None)
    assert "FEISHU_APP_ID" in str(caught.value) and "FEISHU_TENANT_ACCESS_TOKEN" in str(caught.value)


def test_one_token_serves_many_calls(feishu_sandbox, feishu_client):
    for record_id in sorted(feishu_sandbox.records)[:5]:
        assert feishu_client.get_record(record_id)["device_record_id"] == record_id
    assert len(feishu_sandbox.wire.entries(path_regex=TOKEN)) == 1
    get = feishu_sandbox.wire.entries(method="GET")[0]
    assert get["headers"]["Authorization"] == "Bearer " + feishu_sandbox.issued_tokens()[0]


def test_an_expired_token_is_refreshed_once_and_the_call_repeated(feishu_sandbox, feishu_client):
    record_id = sorted(feishu_sandbox.records)[0]
    feishu_client.get_record(record_id)
    feishu_sandbox.expire_tokens()
    assert feishu_client.get_record(record_id)["device_record_id"] == record_id
    assert len(feishu_sandbox.wire.entries(path_regex=TOKEN)) == 2
    codes = [e["api_code"] for e in feishu_sandbox.wire.entries(method="GET")]
    assert codes == [0, 99991663, 0]


def test_a_token_rejected_twice_is_an_authentication_error(feishu_sandbox, feishu_client):
    record_id = sorted(feishu_sandbox.records)[0]
    feishu_sandbox.faults.add(action="expire_tokens", match={"method": "GET"}, times=2)
    with pytest.raises(AuthenticationError):
        feishu_client.get_record(record_id)


def test_a_wrong_secret_names_feishus_reason_but_not_the_secret(feishu_sandbox):
    client = FeishuClient(HttpTransport(feishu_sandbox.url), app_id=feishu_sandbox.app_id, app_secret="wrong-123")
    with pytest.raises(AuthenticationError) as caught:
        client.get_record(sorted(feishu_sandbox.records)[0])
    assert "app secret invalid" in str(caught.value)
    assert caught.value.api_code == 10014
    assert "wrong-123" not in str(caught.value) and "wrong-123" not in repr(caught.value.to_dict())


def test_a_nonzero_code_under_http_200_is_an_error(scripted_server):
    scripted_server.script = [
        (200, {}, {"code": 0, "msg": "ok", "tenant_access_token": "t-abc", "expire": 7200}),
        (200, {"X-Tt-Logid": "LOG123"}, {"code": 1780102, "msg": "The API is in beta testing.", "data": {}}),
    ]
    client = FeishuClient(HttpTransport(scripted_server.url), app_id="cli_x", app_secret="s")
    with pytest.raises(ApiError) as caught:
        client.get_record("7400000000000000001")
    assert caught.value.api_code == 1780102 and caught.value.request_id == "LOG123"
    assert caught.value.status == 200


def test_missing_records_read_as_none_and_updates_with_a_stale_version_are_not_found(feishu_sandbox, feishu_client):
    assert feishu_client.get_record("7999999999999999999") is None
    record_id = sorted(feishu_sandbox.records)[0]
    feishu_client.update_record(record_id, "0", 2, 2)
    assert feishu_sandbox.records[record_id]["version"] == "1"
    with pytest.raises(NotFoundError) as caught:
        feishu_client.update_record(record_id, "0", 2, 1)
    assert caught.value.api_code == 1785008 and caught.value.request_id


def test_delete_reports_whether_it_deleted(feishu_sandbox, feishu_client):
    record_id = sorted(feishu_sandbox.records)[0]
    assert feishu_client.delete_record(record_id) is True
    assert feishu_client.delete_record(record_id) is False


def test_iter_records_follows_every_page(feishu_sandbox, feishu_client):
    records = list(feishu_client.iter_records(page_size=25))
    assert sorted(r["device_record_id"] for r in records) == sorted(feishu_sandbox.records)
    assert len(feishu_sandbox.wire.entries(path_regex=LIST)) == 3


def test_records_missing_zero_fields_are_normalised(feishu_sandbox, feishu_client):
    added = feishu_sandbox.add_record(device_name="BARE", device_system=1, serial_number="BARE-1")
    record = feishu_client.get_record(added["device_record_id"])
    assert record["device_status"] == 0 and record["device_ownership"] == 0 and record["version"] == "0"


@pytest.mark.parametrize("bad", ["", "12a", "1/2", "..", "1?x=1", " 1", "1\n"])
def test_malformed_record_ids_are_refused_before_any_request(feishu_sandbox, feishu_client, bad):
    with pytest.raises(InputError):
        feishu_client.get_record(bad)
    with pytest.raises(InputError):
        FeishuDeviceRecords(feishu_client).resolve("device_record_id", ["7400000000000000001", bad])
    assert feishu_sandbox.wire.entries() == []


HTML_PAGE = "<html><head><title>502 Bad Gateway</title></head><body><h1>502 Bad Gateway</h1></body></html>"
CANARY_TOKEN = "t-canarytoken0123456789"


@pytest.mark.parametrize("answer, named", [
    (dict(body=HTML_PAGE, content_type="text/html"), "a body that is not JSON"),
    (dict(body=["t-1"]), "a JSON list, not an object"),
    (dict(body={"ok": True}), "JSON without Feishu's envelope"),
    (dict(body={"code": 0, "msg": "ok"}), "it has no tenant_access_token"),
    (dict(body={"code": 0, "msg": "ok", "tenant_access_token": {"a": 1}, "expire": 7200}),
     "its tenant_access_token is dict, not a string"),
    (dict(body={"code": 0, "msg": "ok", "tenant_access_token": 5, "expire": 7200}),
     "its tenant_access_token is int, not a string"),
    (dict(body={"code": 0, "msg": "ok", "tenant_access_token": CANARY_TOKEN, "expire": "soon"}),
     "its expire 'soon' is not a number of seconds"),
    (dict(body={"code": 0, "msg": "ok", "tenant_access_token": CANARY_TOKEN, "expire": {"s": 1}}),
     "its expire {'s': 1} is not a number of seconds"),
], ids=["html-under-200", "a-list", "no-envelope", "no-token", "token-an-object", "token-a-number",
        "expire-a-word", "expire-an-object"])
def test_a_token_answer_of_the_wrong_shape_is_named_not_taken_for_a_refusal(
        feishu_sandbox, feishu_client, answer, named):
    feishu_sandbox.faults.add(action="answer", match={"method": "POST", "path_regex": TOKEN}, **answer)
    with pytest.raises(ApiError) as caught:
        feishu_client.get_record(sorted(feishu_sandbox.records)[0])
    assert not isinstance(caught.value, AuthenticationError)
    assert named in str(caught.value) and "refused" not in str(caught.value)
    assert caught.value.path.endswith("/tenant_access_token/internal") and caught.value.status == 200
    assert CANARY_TOKEN not in str(caught.value)
    assert [e["method"] for e in feishu_sandbox.wire.entries()] == ["POST"], "a request was sent without a token"


def test_a_long_msg_in_an_error_envelope_is_cut(feishu_sandbox, feishu_client):
    feishu_sandbox.faults.add(action="answer", match={"method": "GET", "path_regex": LIST},
                              body={"code": 1780101, "msg": "Request param error: " + "x" * 10000})
    with pytest.raises(ApiError) as caught:
        feishu_client.list_page({})
    assert "Request param error: xxx" in str(caught.value) and "10021 characters" in str(caught.value)
    assert len(str(caught.value)) < 1000


def test_a_token_request_still_rate_limited_after_its_retries_is_transient_not_a_refusal(feishu_sandbox):
    feishu_sandbox.faults.add(action="answer", match={"method": "POST", "path_regex": TOKEN},
                              body={"code": 99991400, "msg": "request trigger frequency limit"}, times=5)
    client = FeishuClient(HttpTransport(feishu_sandbox.url, max_retries=1, backoff_base=0.001),
                          app_id=feishu_sandbox.app_id, app_secret=feishu_sandbox.app_secret)
    with pytest.raises(TransientError) as caught:
        client.list_page({})
    assert "request trigger frequency limit" in str(caught.value) and "refused" not in str(caught.value)
    assert len(feishu_sandbox.wire.entries(method="POST")) == 2
