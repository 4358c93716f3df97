"""Finding libbnorm and checking its version. Each search runs in a fresh
interpreter, as the library is loaded once per process."""

import os
import subprocess
import sys

import pytest

import bnorm
from bnorm import _lib


def python_with(env_changes, code):
    env = dict(os.environ)
    for key, value in env_changes.items():
        if value is None:
            env.pop(key, None)
        else:
            env[key] = value
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, timeout=60)


def test_loaded_library_is_version_1():
    assert bnorm.version()[0] == 1
    assert bnorm.version_string().startswith("1.")
    assert bnorm.active_target() in bnorm.targets()
    assert bnorm.targets()[-1] == "SCALAR"


def test_bnorm_library_that_does_not_exist_is_reported_not_skipped():
    result = python_with({"BNORM_LIBRARY": "/nonexistent/libbnorm.so.1"},
                         "import bnorm; bnorm.version()")
    assert result.returncode != 0
    assert "LibraryNotFoundError" in result.stderr
    assert "$BNORM_LIBRARY: /nonexistent/libbnorm.so.1" in result.stderr


def test_dynamic_loader_finds_an_installed_library():
    # Without BNORM_LIBRARY, libbnorm.so.1 is found the way the system finds
    # shared libraries; here LD_LIBRARY_PATH points at the one under test.
    installed_dir = os.path.dirname(os.path.realpath(bnorm.library_path()))
    result = python_with({"BNORM_LIBRARY": None, "LD_LIBRARY_PATH": installed_dir},
                         "import bnorm; print(bnorm.library_path(), bnorm.version_string())")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["libbnorm.so.1", bnorm.version_string()]


def test_build_tree_is_the_last_place_searched():
    package_dir = os.path.dirname(os.path.abspath(bnorm.__file__))
    repo = os.path.dirname(os.path.dirname(os.path.dirname(package_dir)))
    assert _lib.build_tree_candidate() == os.path.join(repo, "build", "release",
                                                        "libbnorm.so.1")


def test_another_major_version_is_refused_with_what_was_found():
    with pytest.raises(bnorm.LibraryVersionError) as caught:
        _lib.check_version(20103, "2.1.3", "/opt/bnorm/lib/libbnorm.so.2")
    message = str(caught.value)
    assert "written for libbnorm 1.x" in message
    assert "/opt/bnorm/lib/libbnorm.so.2 reports version 2.1.3" in message
    # Newer minor versions of major 1 only add, so they are welcome.
    _lib.check_version(10203, "1.2.3", "libbnorm.so.1")
