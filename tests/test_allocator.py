import socket
import subprocess
import sys

import pytest

import cunet.cli
from cunet.allocator import keep_freed_memory
from cunet.cli import main
from cunet.errors import CunetError

POINT_UPDATES = """
import resource, sys
from PIL import Image
from skimage import data
from cunet.allocator import keep_freed_memory
from cunet.colorizer import Colorizer
from cunet.hints import Hints, PointHint
kept = keep_freed_memory() if sys.argv[1] == "keep" else None
colorizer = Colorizer.from_pretrained()
prepared = colorizer.prepare(Image.fromarray(data.astronaut()))
move = lambda i: colorizer.predict_ab(prepared, Hints((PointHint(100 + 30 * (i % 10), 256, 40, 30, 3),)), size=256)
for i in range(5):
    move(i)
faults = []
for i in range(15):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    move(i)
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(kept, sorted(faults)[len(faults) // 2])
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc")
def test_point_updates_reuse_freed_memory_instead_of_faulting_pages_in():
    # Without it, most processes fault in thousands of pages an update (benchmarks/allocator.py); with it
    # the heap still grows now and then as it settles, so the typical (median) update is the measure.
    kept, median_faults = subprocess.run([sys.executable, "-c", POINT_UPDATES, "keep"], check=True,
                                         capture_output=True, text=True).stdout.split()
    assert kept == "True" and int(median_faults) < 50


def test_the_studio_keeps_freed_memory_before_it_loads_the_model(monkeypatch, capsys):
    calls = []

    def record() -> None:
        calls.append(True)
        raise CunetError("stopped before the server starts")

    monkeypatch.setattr(cunet.cli, "keep_freed_memory", record)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setattr(sys, "argv", ["cunet", "studio", "--port", str(port)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2 and calls == [True]
    assert "stopped before the server starts" in capsys.readouterr().err


def test_the_environment_can_turn_it_off(monkeypatch):
    monkeypatch.setenv("CUNET_KEEP_FREED_MEMORY", "0")
    assert keep_freed_memory() is False
