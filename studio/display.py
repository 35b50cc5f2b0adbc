"""Why the studio cannot open a window, said before Qt tries.

On Linux, Qt's default platform plugin (xcb, X11) needs a display and a dozen X11 libraries
that a fresh or minimal system may lack. Without them ``QApplication`` aborts the whole
process with a message of its own, which also names the wrong library: with libxcb-cursor0
installed but libxcb-icccm4 and libxcb-keysyms1 missing, Qt 6.8 still asks for
"xcb-cursor0 or libxcb-cursor0". :func:`platform_problem` looks first and says what is
missing, the Debian packages that provide it, and how to run without a window.
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable, Mapping, Sequence

XCB_LIBRARIES: dict[str, str] = {
    "libxcb-cursor.so.0": "libxcb-cursor0",
    "libxkbcommon.so.0": "libxkbcommon0",
    "libxkbcommon-x11.so.0": "libxkbcommon-x11-0",
    "libxcb-icccm.so.4": "libxcb-icccm4",
    "libxcb-keysyms.so.1": "libxcb-keysyms1",
    "libxcb-image.so.0": "libxcb-image0",
    "libxcb-util.so.1": "libxcb-util1",
    "libxcb-randr.so.0": "libxcb-randr0",
    "libxcb-render-util.so.0": "libxcb-render-util0",
    "libxcb-shape.so.0": "libxcb-shape0",
    "libxcb-shm.so.0": "libxcb-shm0",
    "libxcb-sync.so.1": "libxcb-sync1",
    "libxcb-xfixes.so.0": "libxcb-xfixes0",
    "libxcb-xkb.so.1": "libxcb-xkb1",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libfontconfig.so.1": "libfontconfig1",
    "libdbus-1.so.3": "libdbus-1-3",
}
"""The shared libraries Qt's xcb plugin and Qt GUI load (``ldd`` on PySide6 6.8's
libqxcb.so and libQt6XcbQpa.so), with the Debian/Ubuntu package of each."""

HEADLESS = ("To run without a window, set QT_QPA_PLATFORM=offscreen (screenshots, tests), or train "
            "from the command line: backprop train GRAPH.json.")


def loadable(name: str) -> bool:
    """Whether the dynamic loader finds the shared library ``name``."""
    try:
        ctypes.CDLL(name)
    except OSError:
        return False
    return True


def platform_problem(env: Mapping[str, str], argv: Sequence[str] = (), platform: str = sys.platform,
                     can_load: Callable[[str], bool] = loadable) -> str | None:
    """What stops Qt from opening a window here, or None (nothing known to be wrong).

    Only Linux's X11 plugin is checked: another platform (offscreen, wayland, a ``-platform``
    option) is the user's choice, and Wayland sessions (WAYLAND_DISPLAY) get Qt's Wayland
    plugin first when QT_QPA_PLATFORM is not set."""
    if not platform.startswith("linux") or "-platform" in argv:
        return None
    chosen = env.get("QT_QPA_PLATFORM", "")
    if chosen and not chosen.startswith("xcb"):
        return None
    if not chosen and env.get("WAYLAND_DISPLAY"):
        return None
    problems = []
    missing = [name for name in XCB_LIBRARIES if not can_load(name)]
    if missing:
        packages = " ".join(XCB_LIBRARIES[name] for name in missing)
        problems.append(f"Qt's X11 plugin needs {', '.join(missing)}, not installed here. On Debian/Ubuntu: "
                        f"sudo apt-get install {packages} (README.md, 'Start', has the command for all of them).")
    if not env.get("DISPLAY"):
        problems.append("There is no display: DISPLAY is not set (start it from a desktop session, or over "
                        "ssh with -X).")
    if not problems:
        return None
    return "backprop-studio cannot open a window. " + " ".join(problems) + " " + HEADLESS
