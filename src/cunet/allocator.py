"""Keep freed memory for reuse instead of returning it to the system after every tensor.

glibc's malloc serves blocks above its mmap threshold (128 KiB at start, raised as such blocks are
freed) by fresh mmaps, and gives the top of its heap back to the system whenever more than its trim
threshold is free there. A colouring step makes and frees hundreds of tensors of 0.1-10 MB, so by
default most of them come back as fresh pages and are faulted in and zeroed again, every step:
thousands of page faults per point change at working size 256, and a process-to-process lottery in
how many (`python benchmarks/allocator.py` counts them and times the update with and without this).

Raising both thresholds keeps those blocks in the heap for the next step. Only both together help:
setting either one alone turns off glibc's dynamic raising of the other. What is kept raises a
process's peak memory (each thread's arena keeps up to the trim threshold), and a one-off colouring
gains nothing from it, so only `cunet studio`, whose updates follow one another, calls
`keep_freed_memory`; an interactive application embedding `Colorizer` may call it once too.
`CUNET_KEEP_FREED_MEMORY=0` in the environment turns it off; on a C library other than glibc it
does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

#: Blocks up to this size come from the heap (a 256 x 256 x 32 float tensor is 8 MiB).
MMAP_THRESHOLD = 16 << 20
#: Free memory kept at the top of the heap before any is returned to the system.
TRIM_THRESHOLD = 64 << 20


def keep_freed_memory(mmap_threshold: int = MMAP_THRESHOLD, trim_threshold: int = TRIM_THRESHOLD) -> bool:
    """Raise glibc malloc's mmap and trim thresholds for this process; True when both were set."""
    if not sys.platform.startswith("linux") or os.environ.get("CUNET_KEEP_FREED_MEMORY", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))
