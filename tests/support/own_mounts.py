"""Small real filesystems for the tests that fill a disk, as root or as a normal user.

As root, a tmpfs is mounted where the test asks. A normal user may not mount, but Linux lets any
user own a user namespace (where their own uid stays theirs) with a mount namespace of its own,
in which they may mount a tmpfs: the test session enters one at its start, while it is still a
single thread (the kernel refuses the call to a process with threads). Mounts made there are
seen by the session and everything it starts, and by nothing else on the machine.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
MNT_DETACH = 2

LIBC = ctypes.CDLL(None, use_errno=True)
# Why this session could not get a mount namespace of its own, when it could not.
NO_NAMESPACE: list[OSError] = []


def failed(call: str) -> OSError:
    """The OSError of a libc call that returned -1."""
    number = ctypes.get_errno()
    return OSError(number, f"{call}: {os.strerror(number)}")


def enter_own_mount_namespace() -> None:
    """Move this single-threaded, non-root process into a user and mount namespace of its own,
    keeping its uid and gid, so that it may mount a tmpfs."""
    uid, gid = os.geteuid(), os.getegid()
    if LIBC.unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0:
        raise failed("unshare(CLONE_NEWUSER | CLONE_NEWNS)")
    Path("/proc/self/setgroups").write_text("deny")
    Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
    Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")


def prepare_session() -> None:
    """As a normal user, enter a mount namespace of our own (see the module's text); as root,
    nothing is needed. A failure is kept, and said by the first test that mounts."""
    if os.geteuid() != 0:
        try:
            enter_own_mount_namespace()
        except OSError as error:
            NO_NAMESPACE.append(error)


def mount_tmpfs(folder: Path, size: int) -> None:
    """Mount a tmpfs of `size` bytes on `folder`."""
    if LIBC.mount(b"tmpfs", os.fsencode(folder), b"tmpfs", 0, f"size={size}".encode()) != 0:
        error = failed(f"mount tmpfs on {folder}")
        for reason in NO_NAMESPACE:
            error.add_note(
                f"Not root, and no user namespace of our own ({reason}): run as root, or allow "
                "unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1, "
                "user.max_user_namespaces > 0)."
            )
        raise error


def unmount(folder: Path) -> None:
    """Detach the filesystem mounted on `folder` (lazily, like `umount -l`)."""
    if LIBC.umount2(os.fsencode(folder), MNT_DETACH) != 0:
        raise failed(f"umount {folder}")
