"""Before Qt tries to open a window: what is missing, said in words (studio/display.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from studio.display import XCB_LIBRARIES, platform_problem

ROOT = Path(__file__).resolve().parents[2]
X11 = {"DISPLAY": ":0"}


def everything(name: str) -> bool:
    return True


def without(*names: str):
    return lambda name: name not in names


def test_a_complete_x11_system_has_no_problem():
    assert platform_problem(X11, can_load=everything, platform="linux") is None


def test_missing_libraries_are_named_with_their_debian_packages():
    problem = platform_problem(X11, can_load=without("libxcb-icccm.so.4", "libxcb-keysyms.so.1"), platform="linux")
    assert problem is not None
    assert "libxcb-icccm.so.4, libxcb-keysyms.so.1" in problem
    assert "sudo apt-get install libxcb-icccm4 libxcb-keysyms1 " in problem
    assert "libxcb-cursor" not in problem  # only what is missing (Qt's own message names the cursor library)
    assert "QT_QPA_PLATFORM=offscreen" in problem and "DISPLAY" not in problem


def test_no_display_is_said_even_with_every_library():
    problem = platform_problem({}, can_load=everything, platform="linux")
    assert problem is not None and "DISPLAY is not set" in problem and "apt-get" not in problem
    assert "backprop train" in problem  # the way to work without a window


@pytest.mark.parametrize("env, argv, platform", [
    ({"QT_QPA_PLATFORM": "offscreen"}, (), "linux"),
    ({"QT_QPA_PLATFORM": "wayland"}, (), "linux"),
    ({"WAYLAND_DISPLAY": "wayland-0"}, (), "linux"),  # Qt takes Wayland first in a Wayland session
    ({}, ("backprop-studio", "-platform", "vnc"), "linux"),
    ({}, (), "darwin"),
    ({}, (), "win32"),
], ids=["offscreen", "wayland-chosen", "wayland-session", "platform-option", "macos", "windows"])
def test_other_platforms_are_left_to_qt(env, argv, platform):
    nothing = without(*XCB_LIBRARIES)
    assert platform_problem(env, argv, platform=platform, can_load=nothing) is None


def test_xcb_chosen_by_name_is_checked():
    assert platform_problem({"QT_QPA_PLATFORM": "xcb", **X11}, can_load=without("libGL.so.1"), platform="linux")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the X11 check is Linux's")
def test_the_studio_without_a_display_exits_with_the_message_not_a_qt_abort(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    env["HOME"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "studio", str(ROOT / "examples" / "xor.json")], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("backprop-studio cannot open a window.")
    assert "DISPLAY is not set" in done.stderr and "QT_QPA_PLATFORM=offscreen" in done.stderr
    assert "Traceback" not in done.stderr and "qt.qpa" not in done.stderr
    version = subprocess.run([sys.executable, "-m", "studio", "--version"], cwd=ROOT, env=env,
                             capture_output=True, text=True, timeout=120)
    assert version.returncode == 0 and version.stdout.startswith("backprop-studio ")
