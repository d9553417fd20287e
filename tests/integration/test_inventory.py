"""The inventory plugins, run by real ansible-inventory and ansible-playbook against the sandboxes."""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from tests.ansible_output import plain

FEISHU_SOURCE = """
plugin: fleetguard.devices.feishu_device_records
base_url: {url}
keyed_groups:
  - key: feishu_device_status
    prefix: feishu_status
  - key: feishu_device_system
    prefix: feishu_os
groups:
  company_untrusted: feishu_device_ownership == 'company' and feishu_device_status == 'untrusted'
compose:
  ansible_connection: "'local'"
  record_label: feishu_device_name ~ ' (' ~ feishu_device_record_id ~ ')'
"""

GRAPH_SOURCE = """
plugin: fleetguard.devices.msgraph_devices
keyed_groups:
  - key: msgraph_operating_system | lower
    prefix: msgraph_os
groups:
  disabled: not msgraph_account_enabled
compose:
  ansible_connection: "'local'"
"""

CACHE = """
cache: true
cache_plugin: ansible.builtin.jsonfile
cache_connection: {path}
"""

# Connection settings the fixture puts in the environment; tests that want them in the source file drop them.
SECRET_ENV = ("FEISHU_APP_SECRET", "AZURE_CLIENT_SECRET")


class Ansible:
    """Runs ansible-inventory and ansible-playbook with the sandboxes' environment, in tmp_path."""

    def __init__(self, env, tmp_path):
        self.env = env
        self.tmp_path = tmp_path

    def source(self, file_name, text, **values):
        path = self.tmp_path / file_name
        path.write_text(textwrap.dedent(text).format(**values))
        return str(path)

    def run(self, tool, *args, **extra_env):
        env = dict(self.env, **extra_env)
        command = [os.path.join(os.path.dirname(sys.executable), tool)] + list(args)
        return subprocess.run(command, env=env, cwd=str(self.tmp_path), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=600, check=False)

    def inventory(self, *sources, flags=()):
        """ansible-inventory --list as a dict; fails the test on a warning or a non-zero exit."""
        args = []
        for source in sources:
            args += ["-i", source]
        proc = self.run("ansible-inventory", *(args + ["--list"] + list(flags)))
        assert proc.returncode == 0 and "WARNING" not in proc.stderr, proc.stderr
        return plain(json.loads(proc.stdout))


@pytest.fixture
def ansible(playbook, tmp_path):
    env = dict(playbook.env)
    env["ANSIBLE_INVENTORY_UNPARSED_FAILED"] = "1"  # a source that fails must fail the run
    return Ansible(env, tmp_path)


def group_hosts(listing, group):
    return sorted(listing.get(group, {}).get("hosts", []))


def feishu_names_where(feishu, **fields):
    with feishu.lock:
        return sorted(r["device_name"] for r in feishu.records.values()
                      if all(r.get(name, 0) == value for name, value in fields.items()))


def test_feishu_records_are_listed_with_groups_and_composed_vars(feishu, ansible):
    listing = ansible.inventory(ansible.source("office.feishu_device_records.yml", FEISHU_SOURCE, url=feishu.url))
    assert group_hosts(listing, "feishu_devices") == feishu_names_where(feishu)
    assert group_hosts(listing, "feishu_status_untrusted") == feishu_names_where(feishu, device_status=2)
    assert group_hosts(listing, "feishu_os_macos") == feishu_names_where(feishu, device_system=2)
    company_untrusted = feishu_names_where(feishu, device_status=2, device_ownership=2)
    assert group_hosts(listing, "company_untrusted") == company_untrusted
    record = feishu.records["7400000000000000001"]
    host_vars = listing["_meta"]["hostvars"][record["device_name"]]
    assert host_vars["feishu_device_record_id"] == "7400000000000000001"
    assert host_vars["feishu_device_status"] in ("unknown", "trusted", "untrusted")
    assert host_vars["record_label"] == "%s (7400000000000000001)" % record["device_name"]
    assert host_vars["ansible_connection"] == "local"


def test_graph_devices_are_listed_with_keyed_groups(graph, ansible):
    listing = ansible.inventory(ansible.source("tenant.msgraph_devices.yml", GRAPH_SOURCE))
    host_vars = listing["_meta"]["hostvars"]
    assert sorted(v["msgraph_id"] for v in host_vars.values()) == sorted(graph.devices)
    ios = sorted(oid for oid, d in graph.devices.items() if d["operatingSystem"] == "iOS")
    assert sorted(host_vars[host]["msgraph_id"] for host in group_hosts(listing, "msgraph_os_ios")) == ios
    disabled = sorted(oid for oid, d in graph.devices.items() if not d["accountEnabled"])
    assert sorted(host_vars[host]["msgraph_id"] for host in group_hosts(listing, "disabled")) == disabled
    # Realistic names (Dana's iPhone) become host names that --limit takes as they are.
    assert all(not set(host) & set(" ',:!&*[]~@") for host in host_vars)


def test_a_second_cached_run_sends_no_request_and_the_cache_holds_no_secret(feishu, graph, ansible, tmp_path):
    cache = CACHE.format(path=tmp_path / "inventory-cache")
    sources = [ansible.source("office.feishu_device_records.yml", FEISHU_SOURCE + cache, url=feishu.url),
               ansible.source("tenant.msgraph_devices.yml", GRAPH_SOURCE + cache)]
    first = ansible.inventory(*sources)
    feishu_seen, graph_seen = len(feishu.wire), len(graph.wire)
    assert feishu_seen and graph_seen
    second = ansible.inventory(*sources)
    assert len(feishu.wire) == feishu_seen and len(graph.wire) == graph_seen
    assert second == first
    cached = "".join(path.read_text() for path in (tmp_path / "inventory-cache").iterdir())
    for secret in [feishu.app_secret, graph.client_secret] + feishu.issued_tokens() + graph.issued_tokens():
        assert secret not in cached

    ansible.inventory(*sources, flags=["--flush-cache"])
    assert len(feishu.wire) > feishu_seen and len(graph.wire) > graph_seen


def test_no_secret_in_very_verbose_output_even_when_the_source_file_holds_them(feishu, graph, ansible):
    feishu_source = ansible.source("office.feishu_device_records.yml",
                                   FEISHU_SOURCE + "app_id: {app_id}\napp_secret: {app_secret}\n",
                                   url=feishu.url, app_id=feishu.app_id, app_secret=feishu.app_secret)
    graph_source = ansible.source("tenant.msgraph_devices.yml", GRAPH_SOURCE + "client_secret: {secret}\n",
                                  secret=graph.client_secret)
    without_env = dict((name, "") for name in SECRET_ENV)
    proc = ansible.run("ansible-inventory", "-i", feishu_source, "-i", graph_source, "--list", "-vvvv",
                       **without_env)
    assert proc.returncode == 0, proc.stderr
    assert "FG-WS-0001" in proc.stdout and "feishu_device_record_id" in proc.stdout
    output = proc.stdout + proc.stderr
    for secret in [feishu.app_secret, graph.client_secret] + feishu.issued_tokens() + graph.issued_tokens():
        assert secret not in output


def test_a_refused_secret_is_not_echoed_in_the_error(feishu, graph, ansible):
    feishu_source = ansible.source("office.feishu_device_records.yml", FEISHU_SOURCE + "app_secret: wrong-feishu-4711\n",
                                   url=feishu.url)
    graph_source = ansible.source("tenant.msgraph_devices.yml", GRAPH_SOURCE + "client_secret: wrong-graph-4711\n")
    for source in (feishu_source, graph_source):
        proc = ansible.run("ansible-inventory", "-i", source, "--list", "-vvvv")
        assert proc.returncode != 0
        assert "refused" in proc.stderr
        assert "4711" not in proc.stdout + proc.stderr


def run_play(ansible, source, limit, play):
    (ansible.tmp_path / "play.yml").write_text(textwrap.dedent(play))
    results = ansible.tmp_path / "results.jsonl"
    proc = ansible.run("ansible-playbook", "-i", source, "--limit", limit, "play.yml", RECORD_RESULTS_FILE=str(results))
    entries = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    return proc, entries


def test_a_playbook_limited_to_a_keyed_group_changes_only_its_feishu_records(feishu, ansible):
    # API data is never rendered as a template, whatever it looks like.
    feishu.add_record(device_name="FG-TEMPLATE-0001", model="{{ 6 * 7 }}", device_system=2, device_status=2,
                      device_ownership=2, serial_number="C02TEMPLATE")
    with feishu.lock:
        untrusted = sorted(rid for rid, r in feishu.records.items() if r.get("device_status") == 2)
    assert len(untrusted) >= 2, "the seed has too few untrusted records"
    untrusted_names = feishu_names_where(feishu, device_status=2)
    source = ansible.source("office.feishu_device_records.yml", FEISHU_SOURCE, url=feishu.url)
    proc, results = run_play(ansible, source, "feishu_status_untrusted", """
        - name: Trust the records again
          hosts: feishu_devices
          gather_facts: false
          tasks:
            - name: Mark the record trusted
              fleetguard.devices.feishu_device_record:
                base_url: "{{ lookup('env', 'SANDBOX_FEISHU_URL') }}"
                device_record_id: "{{ feishu_device_record_id }}"
                device_status: trusted
            - name: Show the model
              ansible.builtin.debug:
                msg: "{{ feishu_model | default('') }}"
    """)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    writes = [entry for entry in results if entry["task"] == "Mark the record trusted"]
    assert sorted(entry["host"] for entry in writes) == untrusted_names
    assert all(entry["status"] == "ok" and entry["result"]["changed"] for entry in writes)
    (shown,) = [entry for entry in results if entry["task"] == "Show the model" and entry["host"] == "FG-TEMPLATE-0001"]
    assert shown["result"]["msg"] == "{{ 6 * 7 }}"
    written = sorted(entry["path"].rsplit("/", 1)[-1] for entry in feishu.wire.entries(method="PUT"))
    assert written == untrusted
    with feishu.lock:
        assert all(feishu.records[rid]["device_status"] == 1 for rid in untrusted)


def test_a_playbook_limited_to_a_keyed_group_changes_only_its_graph_devices(graph, ansible):
    with graph.lock:
        ios = sorted(oid for oid, d in graph.devices.items() if d["operatingSystem"] == "iOS")
    source = ansible.source("tenant.msgraph_devices.yml", GRAPH_SOURCE)
    proc, results = run_play(ansible, source, "msgraph_os_ios", """
        - name: Tag the iOS devices
          hosts: msgraph_devices
          gather_facts: false
          tasks:
            - name: Tag the device
              fleetguard.devices.msgraph_device:
                id: "{{ msgraph_id }}"
                extension_attributes:
                  extensionAttribute15: "inventory:{{ inventory_hostname }}"
    """)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(results) == len(ios) and all(entry["result"]["changed"] for entry in results)
    patched = sorted(entry["path"].rsplit("/", 1)[-1] for entry in graph.wire.entries(method="PATCH"))
    assert patched == ios
    with graph.lock:
        tagged = sorted(oid for oid, d in graph.devices.items()
                        if (d["extensionAttributes"]["extensionAttribute15"] or "").startswith("inventory:"))
    assert tagged == ios


# Names an end user can give a device that are, or were, group names or names ansible-core reserves: `all`,
# `ungrouped` and `localhost` (ansible-core's), `msgraph_devices` / `feishu_devices` (the plugins' own groups),
# `msgraph_os_windows` and `disabled` (a keyed and a composed group of GRAPH_SOURCE).
GROUP_LIKE_GRAPH_NAMES = ("all", "msgraph_devices", "feishu_devices", "ungrouped", "localhost", "msgraph_os_windows",
                          "disabled")
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def group_like_devices(feishu, graph):
    """A Feishu record FG-LAPTOP-0001 (the quarantine target), one named like the Graph source's keyed group (the
    Feishu source is read first, so its host must yield to the group the Graph source makes later), and a Windows
    Graph device for each of GROUP_LIKE_GRAPH_NAMES: ({name: Graph object id}, target record id, keyed record id)."""
    target = feishu.add_record(device_name="FG-LAPTOP-0001", device_system=2, device_status=1, serial_number="C02TARGET")
    keyed = feishu.add_record(device_name="msgraph_os_windows", device_system=1, serial_number="C02KEYED")
    devices = dict((name, graph.add_device(displayName=name, operatingSystem="Windows", accountEnabled=True)["id"])
                   for name in GROUP_LIKE_GRAPH_NAMES)
    return devices, target["device_record_id"], keyed["device_record_id"]


def test_a_device_named_like_a_group_is_a_host_of_its_own_that_no_other_host_inherits_from(feishu, graph, ansible):
    devices, target, keyed = group_like_devices(feishu, graph)
    sources = [ansible.source("office.feishu_device_records.yml", FEISHU_SOURCE, url=feishu.url),
               ansible.source("tenant.msgraph_devices.yml", GRAPH_SOURCE)]
    proc = ansible.run("ansible-inventory", "-i", sources[0], "-i", sources[1], "--list")
    assert proc.returncode == 0, proc.stderr
    listing = plain(json.loads(proc.stdout))
    host_vars = listing["_meta"]["hostvars"]

    # Each device is the host name_id, named in a warning; no group got a device's variables.
    for name, object_id in devices.items():
        assert name not in host_vars
        assert host_vars["%s_%s" % (name, object_id)]["msgraph_id"] == object_id
        assert "device %s is named %s" % (object_id, name) in " ".join(proc.stderr.split())
    assert "msgraph_os_windows" not in host_vars
    assert host_vars["msgraph_os_windows_%s" % keyed]["feishu_device_record_id"] == keyed
    assert not [group for group, entry in listing.items() if group != "_meta" and entry.get("vars")]
    # (a) Every Graph device is one host, and no other host has its msgraph_id (--list shows inherited vars too).
    graph_ids = [v["msgraph_id"] for v in host_vars.values() if "msgraph_id" in v]
    assert sorted(graph_ids) == sorted(graph.devices)
    assert sorted(v["feishu_device_record_id"] for v in host_vars.values() if "feishu_device_record_id" in v) \
        == sorted(feishu.records)
    assert "msgraph_id" not in host_vars["FG-LAPTOP-0001"]
    # The groups are the groups: all Graph devices, all Windows ones, the one disabled ones.
    assert sorted(host_vars[h]["msgraph_id"] for h in group_hosts(listing, "msgraph_devices")) == sorted(graph.devices)
    windows = sorted(oid for oid, d in graph.devices.items() if d["operatingSystem"] == "Windows")
    assert sorted(host_vars[h]["msgraph_id"] for h in group_hosts(listing, "msgraph_os_windows")) == windows


def play_hosts(ansible, sources, hosts, limit=None):
    """{host: msgraph_id or None} of the hosts a play on `hosts` runs on, narrowed by --limit."""
    (ansible.tmp_path / "hosts.yml").write_text(textwrap.dedent("""
        - hosts: "{{ play_pattern }}"
          connection: local
          gather_facts: false
          tasks:
            - name: Who
              ansible.builtin.debug:
                msg: "{{ msgraph_id | default('') }}"
    """))
    results = ansible.tmp_path / "hosts.jsonl"
    if results.exists():
        results.unlink()
    args = []
    for source in sources:
        args += ["-i", source]
    args += ["hosts.yml", "-e", json.dumps({"play_pattern": hosts})]
    if limit:
        args += ["--limit", limit]
    proc = ansible.run("ansible-playbook", *args, RECORD_RESULTS_FILE=str(results), ANSIBLE_LOCALHOST_WARNING="0")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    entries = [json.loads(line) for line in results.read_text().splitlines()] if results.exists() else []
    # An empty message is a host without msgraph_id (ansible-core 2.21 may leave an empty msg out of the result).
    return dict((entry["host"], entry["result"].get("msg") or None) for entry in entries)


def test_limits_and_group_patterns_select_what_they_name_whatever_the_devices_are_called(feishu, graph, ansible):
    devices, target, keyed = group_like_devices(feishu, graph)
    sources = [ansible.source("office.feishu_device_records.yml", FEISHU_SOURCE, url=feishu.url),
               ansible.source("tenant.msgraph_devices.yml", GRAPH_SOURCE)]
    # (b) --limit narrows `all` to the named host (a host named `all` made every --limit select nothing).
    assert play_hosts(ansible, sources, "all", limit="FG-LAPTOP-0001") == {"FG-LAPTOP-0001": None}
    # The plugins' group is every Graph device (a host named msgraph_devices made it one host).
    selected = play_hosts(ansible, sources, "msgraph_devices")
    assert sorted(selected.values()) == sorted(graph.devices)
    assert play_hosts(ansible, sources, "msgraph_devices", limit="all_%s" % devices["all"]) == {
        "all_%s" % devices["all"]: devices["all"]}
    windows = sorted(oid for oid, d in graph.devices.items() if d["operatingSystem"] == "Windows")
    assert sorted(play_hosts(ansible, sources, "msgraph_os_windows").values()) == windows
    # `localhost` is the implicit localhost, not a device.
    assert play_hosts(ansible, sources, "localhost") == {"localhost": None}


def test_quarantining_one_feishu_host_writes_only_its_record_next_to_a_graph_device_named_all(feishu, graph, ansible):
    devices, target, keyed = group_like_devices(feishu, graph)
    sources = [ansible.source("office.feishu_device_records.yml", FEISHU_SOURCE, url=feishu.url),
               ansible.source("tenant.msgraph_devices.yml", GRAPH_SOURCE)]
    feishu.wire.clear()
    graph.wire.clear()
    results = ansible.tmp_path / "quarantine.jsonl"
    proc = ansible.run("ansible-playbook", "-i", sources[0], "-i", sources[1],
                       os.path.join(REPO, "playbooks", "quarantine.yml"),
                       "-e", json.dumps({"quarantine_targets": "FG-LAPTOP-0001", "quarantine_reason": "INC-4711"}),
                       RECORD_RESULTS_FILE=str(results), FEISHU_BASE_URL=feishu.url, ANSIBLE_LOCALHOST_WARNING="0")
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # (c) One PUT, on the target's record; not one write on Graph (the device named `all` above all).
    assert [entry["path"].rsplit("/", 1)[-1] for entry in feishu.wire.entries(method="PUT")] == [target]
    assert [entry for entry in graph.wire.entries() if entry["method"] in ("PATCH", "DELETE")] == []
    assert not [entry for entry in graph.wire.entries() if devices["all"] in entry["path"] and entry["method"] != "GET"]
    with feishu.lock, graph.lock:
        assert feishu.records[target]["device_status"] == 2
        assert graph.devices[devices["all"]]["accountEnabled"] is True
        assert not graph.devices[devices["all"]]["extensionAttributes"]["extensionAttribute15"]
