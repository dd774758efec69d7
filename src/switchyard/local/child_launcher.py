"""`python -m switchyard.local.child_launcher PARENT_PID -- COMMAND...`

Runs in the fresh child before the llama.cpp server: asks Linux to SIGTERM this process when the
gateway (PARENT_PID) dies, then execs COMMAND. Doing this here rather than in a `preexec_fn`
keeps the multi-threaded gateway from running Python code between fork and exec.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    if len(argv) < 3 or argv[1] != "--":
        print("usage: child_launcher PARENT_PID -- COMMAND...", file=sys.stderr)
        return 2
    parent_pid, command = int(argv[0]), argv[2:]
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        if os.getppid() != parent_pid:  # the gateway died before prctl took effect
            return 1
    os.execv(command[0], command)
    return 127  # not reached: execv replaces this process or raises


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
