"""cunet studio on a live server (uvicorn on 127.0.0.1): many clients at once, and the page itself in
a real headless Chromium (Debian's `chromium`, driven by Playwright)."""

import io
import json
import os
import shutil
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import uvicorn
from PIL import Image

from cunet.colorizer import Colorizer
from cunet.studio.app import create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    """The studio with the bundled model, served by uvicorn on a free loopback port."""
    colorizer = Colorizer.from_pretrained()
    port = free_port()
    live = uvicorn.Server(uvicorn.Config(create_app(colorizer), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=live.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not live.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    live.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def bw_photo(tmp_path_factory, astronaut) -> Path:
    path = tmp_path_factory.mktemp("studio") / "astronaut_bw.jpg"
    Image.fromarray(astronaut).convert("L").resize((640, 640)).save(path, quality=92)
    return path


def png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=float)


def test_eight_clients_times_fifty_updates_all_answered_without_cross_talk(server, astronaut):
    # A strong blue the photo's lightness can carry: sRGB #0000ff is a*b* (79, -108), which the
    # bundled model (trained on real colours) softens to grey-violet on the astronaut's bright suit.
    colours = ["#ff0000", "#2050d0"] * 4

    def client(index: int) -> list[str]:
        problems = []
        width = 200 + 24 * index  # each client's photo has its own size
        image = Image.fromarray(astronaut).convert("L").resize((width, 180))
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        with httpx.Client(base_url=server, timeout=60, headers={"Origin": server}) as http:
            photo = http.post("/api/photos", files={"file": ("p.png", buffer.getvalue(), "image/png")}).json()
            for update in range(50):
                x = 40 + (update * 7) % (width - 80)
                answer = http.post(f"/api/photos/{photo['id']}/colorize",
                                   json={"points": [{"x": x, "y": 90, "color": colours[index], "size": 9}]})
                if answer.status_code != 200:
                    problems.append(f"client {index} update {update}: {answer.status_code}")
                    continue
                pixels = png(answer.content)
                if pixels.shape[:2] != (photo["preview_height"], photo["preview_width"]):
                    problems.append(f"client {index} update {update}: another photo's size {pixels.shape[:2]}")
                scale = photo["preview_width"] / width
                around = pixels[round(90 * scale) - 2:round(90 * scale) + 3, round(x * scale) - 2:round(x * scale) + 3]
                red, blue = around[..., 0].mean(), around[..., 2].mean()
                if (red > blue) != (colours[index] == "#ff0000"):
                    problems.append(f"client {index} update {update}: not its own colour (R {red:.0f}, B {blue:.0f})")
            http.delete(f"/api/photos/{photo['id']}")
        return problems

    with ThreadPoolExecutor(8) as pool:
        problems = [p for result in pool.map(client, range(8)) for p in result]
    assert problems == []


browser_only = pytest.mark.skipif(CHROMIUM is None and not os.environ.get("CI"),
                                  reason="Debian's chromium is not installed (.ci/run installs it)")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert CHROMIUM is not None, "chromium is missing: .ci/run installs Debian's chromium package"
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield chromium
        chromium.close()


def open_studio_page(browser, server, width: int = 1280, height: int = 860, touch: bool = False):
    """The studio's page in a fresh browser context (a generator for fixtures): no page error may happen."""
    context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True, has_touch=touch)
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(server)
    yield page
    context.close()
    assert errors == []


@pytest.fixture
def page(browser, server):
    yield from open_studio_page(browser, server)


def preview_pixels(page) -> np.ndarray:
    """The preview image's pixels, read in the page through a canvas."""
    data = page.evaluate("""() => {
        const img = document.getElementById('preview');
        const canvas = document.createElement('canvas');
        canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(img, 0, 0);
        return [img.naturalWidth, img.naturalHeight, Array.from(context.getImageData(0, 0, canvas.width, canvas.height).data)];
    }""")
    width, height, values = data
    return np.array(values, dtype=float).reshape(height, width, 4)[..., :3]


def open_photo(page, path: Path) -> None:
    page.set_input_files("#file-input", str(path))
    page.wait_for_function("Number(document.getElementById('preview').dataset.ticket) >= 1", timeout=30000)


def wait_for_update(page, ticket: int) -> None:
    page.wait_for_function(f"Number(document.getElementById('preview').dataset.ticket) > {ticket}", timeout=30000)


def ticket(page) -> int:
    return int(page.get_attribute("#preview", "data-ticket"))


def click_at(page, fx: float, fy: float) -> None:
    box = page.locator("#points").bounding_box()
    page.mouse.click(box["x"] + box["width"] * fx, box["y"] + box["height"] * fy)


def click_and_wait(page, fx: float, fy: float) -> None:
    """Click the photo and wait for the preview that answers it (the point markers are drawn anew then)."""
    shown = ticket(page)
    click_at(page, fx, fy)
    wait_for_update(page, shown)


@browser_only
def test_a_red_point_turns_the_preview_red_around_it(page, bw_photo):
    open_photo(page, bw_photo)
    before = preview_pixels(page)
    page.evaluate("document.getElementById('color').value = '#ff0000'")
    click_and_wait(page, 0.45, 0.3)
    after = preview_pixels(page)
    row, column = int(after.shape[0] * 0.3), int(after.shape[1] * 0.45)
    near_before, near_after = before[row - 4:row + 5, column - 4:column + 5], after[row - 4:row + 5, column - 4:column + 5]
    redness = lambda pixels: float((pixels[..., 0] - (pixels[..., 1] + pixels[..., 2]) / 2).mean())
    assert redness(near_after) > 40 and redness(near_after) > redness(near_before) + 30
    assert page.locator("#points circle").count() == 1


@browser_only
def test_picking_a_variant_changes_the_preview(page, bw_photo):
    open_photo(page, bw_photo)
    before = preview_pixels(page)
    page.click("#show-variants")
    page.wait_for_selector(".variants img", timeout=60000)
    assert page.locator(".variants img").count() == 4
    shown = ticket(page)
    page.locator(".variants img").nth(1).click()
    wait_for_update(page, shown)
    assert np.abs(preview_pixels(page) - before).mean() > 1.0


@browser_only
def test_download_gives_the_full_resolution_png(page, bw_photo):
    open_photo(page, bw_photo)
    with page.expect_download() as download:
        page.click("#download")
    path = download.value.path()
    assert download.value.suggested_filename == "astronaut_bw_color.png"
    image = Image.open(path)
    assert image.format == "PNG" and image.size == Image.open(bw_photo).size


@browser_only
def test_dragging_a_point_moves_it_and_undo_brings_it_back(page, bw_photo, tmp_path):
    open_photo(page, bw_photo)
    click_and_wait(page, 0.5, 0.5)  # the markers are drawn anew when the preview comes: grab the settled one
    box = page.locator("#points").bounding_box()
    start = (box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)  # where the point was put
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + 60, start[1] + 30, steps=5)
    page.mouse.up()

    def saved_hints() -> dict:
        with page.expect_download() as download:
            page.click("#save-hints")
        return json.loads(Path(download.value.path()).read_text())

    moved = saved_hints()["points"][0]
    page.click("#undo")
    back = saved_hints()["points"][0]
    assert moved["x"] > back["x"] + 30 and moved["y"] > back["y"] + 15
    assert (back["x"], back["y"]) == (320, 320)
    page.click("#redo")
    assert saved_hints()["points"][0] == moved


@browser_only
def test_selecting_and_deleting_a_point(page, bw_photo):
    open_photo(page, bw_photo)
    click_at(page, 0.3, 0.3)
    click_at(page, 0.7, 0.7)
    assert page.locator("#points circle").count() == 2
    page.click("#delete-point")
    assert page.locator("#points circle").count() == 1


@browser_only
def test_a_screenshot_of_the_page_at_work(page, bw_photo, tmp_path):
    open_photo(page, bw_photo)
    page.evaluate("document.getElementById('color').value = '#2060d0'")
    click_and_wait(page, 0.5, 0.8)
    page.click("#show-variants")
    page.wait_for_selector(".variants img", timeout=60000)
    page.check("#tool-brush")
    page.evaluate("document.getElementById('color').value = '#c03030'")
    box = page.locator("#points").bounding_box()
    shown = ticket(page)
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.15)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.42, box["y"] + box["height"] * 0.12, steps=8)
    page.mouse.up()
    wait_for_update(page, shown)
    target = Path(os.environ.get("CUNET_SCREENSHOT", tmp_path / "studio.png"))
    page.screenshot(path=str(target))
    assert Image.open(target).size == (1280, 860)


@browser_only
def test_on_a_phone_the_photo_takes_the_width_and_the_controls_follow_below(browser, server, bw_photo, tmp_path):
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2, has_touch=True)
    page = context.new_page()
    page.goto(server)
    open_photo(page, bw_photo)
    frame, aside = page.locator("#frame").bounding_box(), page.locator("aside").bounding_box()
    assert frame["width"] >= 340 and aside["y"] >= frame["y"] + frame["height"] - 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    target = Path(os.environ.get("CUNET_SCREENSHOT_PHONE", tmp_path / "phone.png"))
    page.screenshot(path=str(target), full_page=True)
    context.close()


@pytest.fixture(params=[(390, 844), (1280, 860)], ids=["phone", "desktop"])
def sized_page(request, browser, server, bw_photo):
    """The studio at a phone's and at a desktop's size, the photo open (no page error may happen)."""
    for page in open_studio_page(browser, server, *request.param):
        open_photo(page, bw_photo)
        yield page


@browser_only
def test_suggestions_replacing_the_help_text_do_not_move_the_controls_below(sized_page):
    page = sized_page
    below = page.locator("#suggestions + h2")
    before = below.bounding_box()["y"]
    box = page.locator("#points").bounding_box()
    page.keyboard.down("Alt")
    page.mouse.click(box["x"] + box["width"] * 0.45, box["y"] + box["height"] * 0.3)
    page.keyboard.up("Alt")
    page.wait_for_function("document.querySelectorAll('#suggestions .swatch').length === 8", timeout=30000)
    assert below.bounding_box()["y"] == before


@browser_only
def test_the_busy_indicator_coming_and_going_does_not_move_the_photo(sized_page):
    page = sized_page
    page.wait_for_function("document.getElementById('busy').hidden", timeout=30000)
    # A status short enough to share the last header line with the buttons (a short file name's):
    page.evaluate("document.getElementById('status').textContent = 'bw: 640×640, 0 point(s), 0 stroke(s)'")
    idle = page.locator("#frame").bounding_box()["y"]
    page.evaluate("document.getElementById('busy').hidden = false")
    assert page.locator("#busy").is_visible()
    assert page.locator("#frame").bounding_box()["y"] == idle


@browser_only
@pytest.mark.parametrize("how", ["drop", "paste"])
def test_a_photo_can_be_dropped_or_pasted(page, bw_photo, how):
    data = list(bw_photo.read_bytes())
    page.evaluate("""([data, how]) => {
        const transfer = new DataTransfer();
        transfer.items.add(new File([new Uint8Array(data)], 'dropped.jpg', {type: 'image/jpeg'}));
        if (how === 'drop') {
            document.getElementById('stage').dispatchEvent(new DragEvent('drop', {dataTransfer: transfer, bubbles: true}));
        } else {
            document.dispatchEvent(new ClipboardEvent('paste', {clipboardData: transfer, bubbles: true}));
        }
    }""", [data, how])
    page.wait_for_function("Number(document.getElementById('preview').dataset.ticket) >= 1", timeout=30000)
    assert "640×640" in page.text_content("#status")


@browser_only
def test_a_reference_photo_and_the_saturation_change_the_preview(page, bw_photo, tmp_path, astronaut):
    open_photo(page, bw_photo)
    plain = preview_pixels(page)
    reference = tmp_path / "reference.png"
    Image.fromarray(astronaut[::-1, :, ::-1]).save(reference)  # vivid, other colours
    shown = ticket(page)
    page.set_input_files("#reference-input", str(reference))
    wait_for_update(page, shown)
    assert page.text_content("#global-label") == "colours of reference.png"
    guided = preview_pixels(page)
    assert np.abs(guided - plain).mean() > 1.0
    shown = ticket(page)
    page.check("#saturation-on")
    wait_for_update(page, shown)
    assert np.abs(preview_pixels(page) - guided).mean() > 0.2


@browser_only
def test_saved_hints_are_what_cunet_colorize_reads_and_load_back(page, bw_photo, tmp_path):
    from cunet.hints import load_hints_file

    open_photo(page, bw_photo)
    page.evaluate("document.getElementById('color').value = '#22aa44'")
    click_at(page, 0.25, 0.25)
    page.locator("#suggestions .swatch").first.wait_for(timeout=30000)
    with page.expect_download() as download:
        page.click("#save-hints")
    saved = tmp_path / "hints.json"
    download.value.save_as(saved)
    hints = load_hints_file(saved)
    assert len(hints.points) == 1 and (hints.points[0].x, hints.points[0].y) == (160, 160)
    page.click("#delete-point")
    assert page.locator("#points circle").count() == 0
    page.set_input_files("#hints-input", str(saved))
    page.wait_for_function("document.querySelectorAll('#points circle').length === 1", timeout=10000)
    assert page.get_attribute("#points circle", "fill") == "#22aa44"


@browser_only
def test_the_busy_indicator_shows_while_the_server_works_and_only_the_newest_preview_is_kept(page, bw_photo):
    open_photo(page, bw_photo)
    held = []
    page.route("**/colorize?*", lambda route: held.append(route))
    click_at(page, 0.3, 0.3)
    click_at(page, 0.6, 0.6)
    page.wait_for_function("!document.getElementById('busy').hidden", timeout=5000)
    assert len(held) >= 1
    page.unroute("**/colorize?*")
    for route in held:
        try:
            route.continue_()
        except Exception:  # the page aborted this older request itself
            pass
    page.wait_for_function("document.getElementById('busy').hidden", timeout=30000)
    # the busy indicator goes only once the newest preview is shown: the first, then the newer of two
    assert int(page.get_attribute("#preview", "data-ticket")) == 3


@browser_only
def test_the_compare_slider_uncovers_the_original(page, bw_photo):
    open_photo(page, bw_photo)
    page.fill("#compare", "40")
    page.dispatch_event("#compare", "input")
    assert page.evaluate("document.getElementById('original').style.clipPath") == "inset(0px 60% 0px 0px)"


@browser_only
def test_a_brush_stroke_colours_along_it_and_undo_removes_it(page, bw_photo):
    open_photo(page, bw_photo)
    before = preview_pixels(page)
    page.check("#tool-brush")
    page.evaluate("document.getElementById('color').value = '#2050e0'")
    box = page.locator("#points").bounding_box()
    start = (box["x"] + box["width"] * 0.2, box["y"] + box["height"] * 0.8)
    shown = ticket(page)
    page.mouse.move(*start)
    page.mouse.down()
    page.mouse.move(start[0] + box["width"] * 0.5, start[1], steps=12)
    page.mouse.up()
    wait_for_update(page, shown)
    after = preview_pixels(page)
    assert page.locator("#points polyline.stroke").count() == 1 and page.locator("#points circle").count() == 0
    row = int(after.shape[0] * 0.8)
    columns = slice(int(after.shape[1] * 0.3), int(after.shape[1] * 0.6))
    blueness = lambda pixels: float((pixels[..., 2] - (pixels[..., 0] + pixels[..., 1]) / 2).mean())
    assert blueness(after[row - 2:row + 3, columns]) > blueness(before[row - 2:row + 3, columns]) + 15
    shown = ticket(page)
    page.click("#undo")
    wait_for_update(page, shown)
    assert page.locator("#points polyline").count() == 0
    assert np.abs(preview_pixels(page) - before).mean() < 0.5


@browser_only
def test_a_point_marker_shows_the_colour_the_point_can_produce_there(page, tmp_path):
    light = tmp_path / "light.png"
    Image.fromarray(np.full((200, 300), 235, np.uint8)).save(light)  # L* about 93: no deep red exists there
    open_photo(page, light)
    page.evaluate("document.getElementById('color').value = '#c01010'")
    click_and_wait(page, 0.5, 0.5)
    fill = page.get_attribute("#points circle", "fill")
    assert fill != "#c01010"
    red, green, blue = (int(fill[i:i + 2], 16) for i in (1, 3, 5))
    assert red > green and red > blue and min(green, blue) > 150  # a pale pink, the hue kept
    assert page.is_visible("#shown-color") and fill in page.text_content("#shown-text")


def test_the_api_docs_render_with_the_network_blocked(browser, server):
    from urllib.parse import urlsplit

    context = browser.new_context()
    page = context.new_page()
    outside = []

    def only_loopback(route):
        url = route.request.url
        if url.startswith("data:") or urlsplit(url).hostname == "127.0.0.1":
            route.continue_()
        else:
            outside.append(url)
            route.abort()

    page.route("**/*", only_loopback)
    page.goto(server + "/docs")
    page.wait_for_selector(".swagger-ui .info .title", timeout=30_000)
    assert "cunet studio" in page.inner_text(".swagger-ui .info .title")
    assert page.locator(".opblock").count() >= 8
    context.close()
    assert outside == []
