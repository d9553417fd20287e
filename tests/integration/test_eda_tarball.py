"""The collection tarball carries the event sources and rulebooks (extensions/eda), and still no molecule scenario."""

import os
import subprocess
import sys
import tarfile

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_tarball_carries_extensions_eda_but_not_molecule(tmp_path):
    galaxy = os.path.join(os.path.dirname(sys.executable), "ansible-galaxy")
    env = dict(os.environ, ANSIBLE_HOME=str(tmp_path / "ansible-home"), ANSIBLE_LOCAL_TEMP=str(tmp_path / "tmp"))
    subprocess.run([galaxy, "collection", "build", "--force", "--output-path", str(tmp_path), REPO], check=True,
                   env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=300)
    (tarball,) = [path for path in tmp_path.iterdir() if path.name.endswith(".tar.gz")]
    with tarfile.open(str(tarball)) as archive:
        names = set(archive.getnames())
    for expected in ("extensions/eda/plugins/event_source/msgraph_device_changes.py",
                     "extensions/eda/plugins/event_source/feishu_device_record_changes.py",
                     "extensions/eda/rulebooks/keep_quarantined.yml",
                     "extensions/eda/rulebooks/quarantine_noncompliant.yml",
                     "playbooks/keep_quarantined.yml",
                     "playbooks/quarantine_noncompliant.yml",
                     "plugins/module_utils/msgraph_delta.py",
                     "plugins/plugin_utils/change_source.py"):
        assert expected in names
    assert not [name for name in names if name.startswith("extensions/molecule")]
    assert not [name for name in names if name.startswith(("tests/", "sandbox/", "tools/", ".venv"))]
    assert not [name for name in names if "__pycache__" in name]
