"""Check what `make setup` and `make run` need before they fail with a cryptic message.

Run by the Makefile with the system Python, before the venv exists, so it uses only the standard
library and syntax old Pythons can still parse (it must be able to say "too old"):

- Python >= 3.11;
- ``venv`` with ``ensurepip`` (Debian/Ubuntu ship it separately as ``python3.X-venv``; without it
  ``python3 -m venv`` fails with "ensurepip is not available");
- with ``--qt-platform``: the libraries of Qt's X11 platform plugin (``core.platform_plugin``).

Each problem is printed with the exact install command for Debian/Ubuntu (apt) and Fedora (dnf), and
the exit status is 1.
"""

# ruff: noqa: UP030, UP032  (str.format: this must still parse and run on a too-old Python)
import importlib.util
import os
import sys

MINIMUM = (3, 11)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python_problem():
    if sys.version_info[:2] >= MINIMUM:
        return None
    found = ".".join(str(part) for part in sys.version_info[:3])
    return ("Python {0}.{1} or newer is needed; {2} is {3}.\n"
            "  Debian/Ubuntu:  sudo apt install python3.11 python3.11-venv   (then: make PYTHON=python3.11 …)\n"
            "  Fedora:         sudo dnf install python3.11                   (then: make PYTHON=python3.11 …)\n"
            "  or use any Python >= {0}.{1} from python.org / pyenv with PYTHON=/path/to/python3"
            .format(MINIMUM[0], MINIMUM[1], sys.executable, found))


def venv_problem():
    if importlib.util.find_spec("venv") is not None and importlib.util.find_spec("ensurepip") is not None:
        return None
    minor = "{0}.{1}".format(*sys.version_info[:2])
    return ("{0} cannot create a virtual environment (ensurepip is not available).\n"
            "  Debian/Ubuntu:  sudo apt install python{1}-venv\n"
            "  Fedora:         sudo dnf install python3   (venv is part of it; reinstall if it was removed)"
            .format(sys.executable, minor))


def qt_platform_problem():
    sys.path.insert(0, ROOT)
    from core.platform_plugin import check_platform_plugin

    result = check_platform_plugin()
    return None if result.ok else result.message()


def main(argv):
    checks = [python_problem]
    if "--qt-platform" in argv:
        checks = [qt_platform_problem]
    else:
        checks.append(venv_problem)
    problems = [problem for problem in (check() for check in checks) if problem]
    for problem in problems:
        sys.stderr.write("error: " + problem + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
