"""What a person editing in cunet studio feels (issue 22): time from their last input to the final
preview on screen, in a real browser, on a live server — alone and beside a second CPU-bound job.

A `cunet studio` server (bundled model) is started as its own process; headless Chromium (Debian's
`chromium`, driven by Playwright) opens a photo and plays, each scenario `--repeats` times:
- single click: one new point; click -> its preview on screen (the single-update round trip);
- 20-step drag: a point dragged in 20 mouse moves 16 ms apart (60 Hz), then released;
- 5 quick clicks: five new points 100 ms apart;
- 25-step slider sweep: the saturation slider moved in 25 input events 16 ms apart.
"Final preview on screen" is the page's own record (`#preview[data-ticket]` reaches the ticket of the
last request, set once the image is decoded). Each scenario is reported as median seconds from its
last input, and as a ratio to the single-click round trip of the same condition (acceptance: a drag
or a sweep within 3x). The second job, when asked for, is a `cunet colorize` folder batch in a loop
(1 thread, as a user's other program would run), started before and stopped after the condition.

    python benchmarks/studio_interaction.py --out benchmarks/results/studio_interaction.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data as skdata

from cunet.io import write_atomic

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
LOAD = """
import subprocess, sys
while True:
    subprocess.run([sys.executable, "-c", "from cunet.cli import main; main()", "colorize", sys.argv[1],
                    "--out-dir", sys.argv[2]], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                   env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_final(page, started: float) -> float:
    """Seconds from `started` until the preview of the newest request is on screen."""
    newest = page.evaluate("() => latest")
    page.wait_for_function(f"Number(document.getElementById('preview').dataset.ticket) >= {newest}", timeout=120_000,
                           polling=5)
    return time.perf_counter() - started


def photo_point(page, fx: float, fy: float) -> tuple[float, float]:
    box = page.locator("#points").bounding_box()
    return box["x"] + box["width"] * fx, box["y"] + box["height"] * fy


def single_click(page, index: int) -> float:
    x, y = photo_point(page, 0.2 + 0.05 * (index % 10), 0.3)
    page.mouse.click(x, y)
    return wait_for_final(page, time.perf_counter())


def drag(page, index: int) -> float:
    x, y = photo_point(page, 0.5, 0.5 + 0.02 * (index % 5))
    page.mouse.click(x, y)
    wait_for_final(page, time.perf_counter())
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(x + 6 * step, y + 2 * step)
        page.wait_for_timeout(16)
    page.mouse.up()
    return wait_for_final(page, time.perf_counter())


def quick_clicks(page, index: int) -> float:
    for step in range(5):
        x, y = photo_point(page, 0.15 + 0.12 * step, 0.7 + 0.01 * (index % 5))
        page.mouse.click(x, y)
        if step < 4:
            page.wait_for_timeout(100)
    return wait_for_final(page, time.perf_counter())


def slider_sweep(page, index: int) -> float:
    if not page.is_checked("#saturation-on"):
        page.check("#saturation-on")
        wait_for_final(page, time.perf_counter())
    for step in range(25):
        value = (step * 4 + index * 7) % 100
        page.evaluate("v => { const s = document.getElementById('saturation'); s.value = v; "
                      "s.dispatchEvent(new Event('input', { bubbles: true })); }", value)
        page.wait_for_timeout(16)
    return wait_for_final(page, time.perf_counter())


SCENARIOS = {"single_click": single_click, "drag_20_steps": drag, "five_quick_clicks": quick_clicks,
             "slider_sweep_25_steps": slider_sweep}


def run_condition(browser, url: str, photo: Path, repeats: int) -> dict:
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    page.goto(url)
    page.set_input_files("#file-input", str(photo))
    page.wait_for_function("Number(document.getElementById('preview').dataset.ticket) > 0", timeout=60_000)
    results = {}
    for name, scenario in SCENARIOS.items():
        scenario(page, 0)  # warm-up
        seconds = [scenario(page, index + 1) for index in range(repeats)]
        results[name] = {"median_s": round(statistics.median(seconds), 3), "max_s": round(max(seconds), 3),
                         "runs": len(seconds)}
    base = results["single_click"]["median_s"]
    for row in results.values():
        row["vs_single_click"] = round(row["median_s"] / base, 2)
    page.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/studio_interaction.json"))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--conditions", default="alone,second_job")
    args = parser.parse_args()
    if CHROMIUM is None:
        raise SystemExit("needs Debian's chromium (apt install chromium)")
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="cunet-interaction-"))
    photo = work / "scan.jpg"
    Image.fromarray(skdata.astronaut()).convert("L").resize((880, 880)).save(photo, quality=92)
    batch = work / "batch"
    batch.mkdir()
    rng = np.random.default_rng(0)
    for index in range(24):
        Image.fromarray(rng.integers(0, 255, (600, 800), dtype=np.uint8)).save(batch / f"b{index}.png")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", "from cunet.cli import main; main()", "studio", "--port",
                               str(port)], stdout=subprocess.DEVNULL)
    report = {"command": "python benchmarks/studio_interaction.py", "photo": "880x880 JPEG",
              "browser": "headless chromium 1440x900", "repeats": args.repeats, "conditions": {}}
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise SystemExit("the studio did not start within 60 s") from None
                    time.sleep(0.2)
            for condition in args.conditions.split(","):
                load = None
                if condition == "second_job":
                    load = subprocess.Popen([sys.executable, "-c", LOAD, str(batch), str(work / "out")],
                                            start_new_session=True)  # its own group: killed with its batch
                    time.sleep(5)
                try:
                    report["conditions"][condition] = run_condition(browser, f"http://127.0.0.1:{port}/", photo,
                                                                    args.repeats)
                finally:
                    if load is not None:
                        os.killpg(load.pid, signal.SIGKILL)
                        load.wait()
            browser.close()
    finally:
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(work, ignore_errors=True)
    write_atomic(args.out, lambda handle: handle.write(json.dumps(report, indent=2).encode() + b"\n"))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
