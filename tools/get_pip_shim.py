"""Offline stand-in for ansible-test's downloaded ``get-pip-<version>.py`` bootstrap script.

ansible-test bootstraps pip into every virtual environment it creates by running
``~/.ansible/test/cache/get_pip_<version>.py`` and downloads that script from a host that this
project's machines cannot reach. ``make sanity`` copies this file to that cache path when the
file is missing. It accepts the same command line as the real script, e.g.::

    python get_pip.py --disable-pip-version-check pip==24.2 --no-setuptools --no-wheel

and runs ``pip install --upgrade --force-reinstall <args>`` with the pip wheel bundled in the
running interpreter's ``ensurepip`` (the real script does the same with a pip zip it embeds).
The requested pip release itself comes from the configured package index. If that install
fails (no index reachable), the bundled pip wheel is installed instead, with a warning.
"""

from __future__ import annotations

import glob
import os
import sys

SCRIPT_FLAGS = ('--no-setuptools', '--no-wheel', '--no-pip')


def bundled_pip_wheel() -> str:
    """Return the path of the pip wheel that ships with this interpreter's ensurepip."""
    try:
        import ensurepip
    except ImportError:
        sys.exit('get_pip_shim: this Python has no ensurepip module; install it (e.g. python3-venv).')

    bundled = os.path.join(os.path.dirname(ensurepip.__file__), '_bundled')
    wheels = sorted(glob.glob(os.path.join(bundled, 'pip-*.whl')))
    if not wheels:
        sys.exit(f'get_pip_shim: no pip wheel in {bundled}.')
    return wheels[-1]


def run_pip(wheel: str, args: list[str]) -> int:
    """Run pip from the given wheel in a child process (a clean pip import each time)."""
    import subprocess

    code = 'import sys; sys.path.insert(0, sys.argv.pop(1)); from pip._internal.cli.main import main; sys.exit(main())'
    return subprocess.call([sys.executable, '-c', code, wheel] + args)


def main() -> int:
    """Install the pip requested on the command line into the running interpreter."""
    args = [arg for arg in sys.argv[1:] if arg not in SCRIPT_FLAGS]
    wheel = bundled_pip_wheel()
    install = ['install', '--upgrade', '--force-reinstall']

    rc = run_pip(wheel, install + args)
    if rc == 0:
        return 0

    options = [arg for arg in args if arg.startswith('-')]
    print(f'get_pip_shim: WARNING: installing {args} failed (exit {rc}); installing the bundled {os.path.basename(wheel)} instead.',
          file=sys.stderr)
    return run_pip(wheel, install + options + ['--no-index', wheel])


if __name__ == '__main__':
    sys.exit(main())
