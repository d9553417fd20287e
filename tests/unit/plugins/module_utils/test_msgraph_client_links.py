"""GraphClient follows the absolute links Graph answers (@odata.nextLink, @odata.deltaLink) only on graph_endpoint's
own scheme and host: a link anywhere else would carry `Authorization: Bearer <token>` there."""

import pytest

from ansible_collections.fleetguard.devices.plugins.module_utils.errors import ApiError

DEVICES = "/devices$"


def answer_devices_with_next_link(graph_sandbox, link):
    graph_sandbox.faults.add("answer", match={"method": "GET", "path_regex": DEVICES}, times=1,
                             body={"value": [{"id": "1"}], "@odata.nextLink": link})


def authorized(server):
    return [path for dummy, path, headers, dummy in server.requests if any(name.lower() == "authorization" for name in headers)]


def test_a_next_link_to_another_host_fails_the_read_and_never_gets_the_token(graph_sandbox, graph_client,
                                                                             scripted_server):
    """The scripted server listens on 127.0.0.1 too, on another port: another origin, as a proxy's would be."""
    answer_devices_with_next_link(graph_sandbox, scripted_server.url + "/v1.0/devices?$skiptoken=secret-state")
    with pytest.raises(ApiError) as caught:
        list(graph_client.iter_pages("/devices"))
    assert scripted_server.requests == [] and authorized(scripted_server) == []
    assert "127.0.0.1" in str(caught.value) and "secret-state" not in str(caught.value)


@pytest.mark.parametrize("link", ["https://{host}/v1.0/devices?$skiptoken=x",  # another scheme
                                  "http://{host}@graph.example/v1.0/devices?$skiptoken=x",  # user info: another host
                                  "http://graph.example/v1.0/devices?$skiptoken=x"])
def test_links_off_graph_endpoint_are_refused_before_any_request(graph_client, graph_sandbox, link):
    link = link.format(host=graph_sandbox.url.split("://", 1)[1])
    with pytest.raises(ApiError, match="not followed"):
        graph_client.url(link)


def test_a_link_on_graph_endpoint_is_followed_whatever_the_case_of_its_host(graph_sandbox, graph_client):
    link = graph_sandbox.url.upper().replace("HTTP://", "http://") + "/v1.0/devices?$top=1"
    assert graph_client.url(link) == link
    assert graph_client.url("/devices") == graph_sandbox.url + "/v1.0/devices"


def test_a_next_link_given_twice_ends_the_read_with_an_error_not_a_loop(graph_sandbox, graph_client):
    link = graph_sandbox.url + "/v1.0/devices?$skiptoken=again"
    graph_sandbox.faults.add("answer", match={"method": "GET", "path_regex": DEVICES}, times=5,
                             body={"value": [], "@odata.nextLink": link})
    with pytest.raises(ApiError, match="already given") as caught:
        list(graph_client.iter_pages("/devices"))
    assert "again" not in str(caught.value)
    assert len([e for e in graph_sandbox.wire.entries(method="GET") if "/devices" in e["path"]]) == 2
