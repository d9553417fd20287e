"""Offline stand-in for ansible-test's downloaded ``get-pip-<version>.py`` bootstrap script.

ansible-test bootstraps pip into every virtual environment it creates by running
``~/.ansible/test/cache/get_pip_<version>.py``, and downloads that script from a host that this
project's machines cannot reach. The Makefile runs ansible-test with its own HOME under
``build/`` and ``tools/install-get-pip-shim`` copies this file to that HOME's cache path, so the
user's own ``~/.ansible`` is never read or written.

It accepts the same command line as the real script, e.g.::

    python get_pip.py --disable-pip-version-check pip==24.2 --no-setuptools --no-wheel

and runs ``pip install --upgrade --force-reinstall <args>`` with the pip wheel bundled in the
running interpreter's ``ensurepip`` (the real script does the same with a pip zip it embeds).
The requested pip release itself comes from the configured package index. If that install fails
the script fails, naming what it tried: it never installs some other pip in its place.
"""

from __future__ import annotations

import glob
import os
import subprocess
import sys

# The real script skips installing setuptools and wheel with these; this one never installs them.
SCRIPT_FLAGS = ('--no-setuptools', '--no-wheel')


def fail(message: str) -> None:
    sys.exit('get_pip_shim: ERROR: ' + message)


def bundled_pip_wheel() -> str:
    """Return the path of the pip wheel that ships with this interpreter's ensurepip."""
    try:
        import ensurepip
    except ImportError:
        fail(f'{sys.executable} has no ensurepip module; install it (e.g. python3-venv).')

    bundled = os.path.join(os.path.dirname(ensurepip.__file__), '_bundled')
    wheels = sorted(glob.glob(os.path.join(bundled, 'pip-*.whl')))
    if not wheels:
        fail(f'no pip wheel in {bundled}.')
    return wheels[-1]


def run_pip(wheel: str, args: list[str]) -> int:
    """Run pip from the given wheel in a child process (a clean pip import each time)."""
    code = 'import sys; sys.path.insert(0, sys.argv.pop(1)); from pip._internal.cli.main import main; sys.exit(main())'
    return subprocess.call([sys.executable, '-c', code, wheel] + args)


def main() -> int:
    """Install the pip requested on the command line into the running interpreter."""
    if '--no-pip' in sys.argv[1:]:
        fail('--no-pip is not supported by this stand-in (ansible-test does not use it).')
    args = [arg for arg in sys.argv[1:] if arg not in SCRIPT_FLAGS]
    requested = [arg for arg in args if not arg.startswith('-')]
    if not requested:
        fail(f'no package requested on the command line {sys.argv[1:]}; ansible-test always names the pip it wants.')

    wheel = bundled_pip_wheel()
    rc = run_pip(wheel, ['install', '--upgrade', '--force-reinstall'] + args)
    if rc != 0:
        fail(f'installing {" ".join(requested)} into {sys.prefix} with {os.path.basename(wheel)} failed (pip exit {rc}).'
             ' Is a package index reachable (see the pip configuration copied by tools/install-get-pip-shim)?')
    return 0


if __name__ == '__main__':
    sys.exit(main())
