"""cunet studio as a photo editor uses it (issue 22), in headless Chromium on a live server: deselect
and pick the next point's colour, look at suggestions without adding a point, hints files checked
whole before anything changes, a fresh state per photo, hints kept across a reload, the keyboard,
plain-word errors, and an axe-core accessibility check at desktop and phone sizes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from tests.test_studio_live import (  # noqa: F401 (fixtures)
    browser, browser_only, bw_photo, click_and_wait, click_at, open_photo, open_studio_page, server, ticket, wait_for_update)

VIEWPORTS = {"desktop": (1280, 860), "phone": (390, 844)}


@pytest.fixture(params=list(VIEWPORTS))
def page(request, browser, server):
    """The studio's page at a desktop's and at a phone's size: every editing test runs at both."""
    yield from open_studio_page(browser, server, *VIEWPORTS[request.param], touch=request.param == "phone")


def saved_hints(page) -> dict:
    with page.expect_download() as download:
        page.click("#save-hints")
    return json.loads(Path(download.value.path()).read_text())


@browser_only
def test_escape_deselects_and_the_picker_then_sets_the_next_points_colour(page, bw_photo):
    open_photo(page, bw_photo)
    page.evaluate("document.getElementById('color').value = '#ff0000'")
    click_at(page, 0.3, 0.3)
    page.locator("#points").focus()
    page.keyboard.press("Escape")
    assert page.locator("#points circle.selected").count() == 0 and page.is_disabled("#deselect")
    page.evaluate("""() => { const c = document.getElementById('color'); c.value = '#0000ff';
                             c.dispatchEvent(new Event('change', { bubbles: true })); }""")
    click_at(page, 0.7, 0.7)
    colours = [point["color"] for point in saved_hints(page)["points"]]
    assert colours == ["#ff0000", "#0000ff"]


@browser_only
def test_alt_click_shows_suggestions_without_adding_a_point(page, bw_photo):
    open_photo(page, bw_photo)
    box = page.locator("#points").bounding_box()
    page.keyboard.down("Alt")
    page.mouse.click(box["x"] + box["width"] * 0.4, box["y"] + box["height"] * 0.4)
    page.keyboard.up("Alt")
    page.locator("#suggestions button.swatch").first.wait_for(timeout=30000)
    assert page.locator("#points circle").count() == 0


@browser_only
def test_a_hints_file_with_a_point_outside_the_photo_changes_nothing_and_says_why(page, bw_photo, tmp_path):
    open_photo(page, bw_photo)
    click_at(page, 0.5, 0.5)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"points": [{"x": 5000, "y": 10, "color": "#ff0000"}]}))
    page.set_input_files("#hints-input", str(bad))
    page.locator("#error-banner").wait_for(state="visible", timeout=10000)
    text = page.text_content("#error-text")
    assert "bad.json" in text and "lies outside the 640x640 image" in text and "nothing was changed" in text
    assert page.locator("#points circle").count() == 1
    click_and_wait(page, 0.2, 0.2)  # editing goes on as before
    assert page.locator("#points circle").count() == 2
    page.click("#error-close")
    assert page.is_hidden("#error-banner")


@browser_only
def test_opening_a_photo_again_resets_points_history_compare_and_suggestions(page, bw_photo):
    open_photo(page, bw_photo)
    click_at(page, 0.5, 0.5)
    page.locator("#suggestions button.swatch").first.wait_for(timeout=30000)
    page.fill("#compare", "60")
    page.wait_for_function("document.getElementById('busy').hidden", timeout=30000)  # the click's preview is in
    shown = ticket(page)
    page.set_input_files("#file-input", str(bw_photo))  # the same file again
    wait_for_update(page, shown)
    page.wait_for_function("document.querySelectorAll('#points circle').length === 0", timeout=30000)
    assert page.is_disabled("#undo")
    assert page.input_value("#compare") == "0" and page.locator("#suggestions button").count() == 0


@browser_only
def test_after_a_reload_the_photo_comes_back_and_its_hints_are_offered(page, bw_photo):
    open_photo(page, bw_photo)
    click_at(page, 0.3, 0.3)
    click_at(page, 0.6, 0.6)
    page.wait_for_function("document.querySelectorAll('#points circle').length === 2")
    page.reload()
    page.wait_for_function("Number(document.getElementById('preview').dataset.ticket) >= 1", timeout=30000)
    page.locator("#restore-banner").wait_for(state="visible", timeout=10000)
    assert "2 point(s)" in page.text_content("#restore-text")
    page.reload()  # offered, not taken: still kept
    page.locator("#restore-banner").wait_for(state="visible", timeout=30000)
    assert "2 point(s)" in page.text_content("#restore-text")
    page.click("#restore-yes")
    page.wait_for_function("document.querySelectorAll('#points circle').length === 2", timeout=10000)


@browser_only
def test_points_are_selected_moved_and_deleted_from_the_keyboard(page, bw_photo):
    open_photo(page, bw_photo)
    click_at(page, 0.25, 0.25)
    click_at(page, 0.75, 0.75)
    page.locator("#points").focus()
    page.keyboard.press("Escape")
    page.keyboard.press("]")
    assert page.get_attribute("#points circle.selected", "data-index") == "0"
    start = saved_hints(page)["points"][0]
    page.locator("#points").focus()
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Shift+ArrowDown")
    moved = saved_hints(page)["points"][0]
    assert (moved["x"], moved["y"]) == (start["x"] + 1, start["y"] + 10)
    page.locator("#points").focus()
    page.keyboard.press("Delete")
    assert page.locator("#points circle").count() == 1


@browser_only
def test_tab_reaches_every_control(page, bw_photo):
    open_photo(page, bw_photo)
    page.click("#show-variants")
    page.locator("#variants button").first.wait_for(timeout=60000)
    click_at(page, 0.5, 0.5)
    page.locator("#suggestions button.swatch").first.wait_for(timeout=30000)
    reached = set()
    page.locator("#open-photo").focus()
    for _ in range(80):
        reached.add(page.evaluate("""() => { const e = document.activeElement;
            return e.id || (e.closest('#variants') ? 'variant' : e.closest('#suggestions') ? 'suggestion' : e.tagName); }"""))
        page.keyboard.press("Tab")
    for wanted in ["open-photo", "load-hints", "reference", "points", "color", "size", "saturation-on", "download",
                   "show-variants", "variant", "suggestion", "compare"]:
        assert wanted in reached, wanted


@browser_only
def test_the_saturation_control_shows_its_value_and_what_it_does(page, bw_photo):
    open_photo(page, bw_photo)
    assert page.text_content("#saturation-value") == "off"
    page.check("#saturation-on")
    page.fill("#saturation", "70")
    assert page.text_content("#saturation-value") == "70 %"
    assert "How colourful the whole photo" in page.text_content("#saturation-help")


@browser_only
def test_an_unreadable_upload_is_a_plain_words_banner(page, tmp_path):
    broken = tmp_path / "scan.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    page.set_input_files("#file-input", str(broken))
    page.locator("#error-banner").wait_for(state="visible", timeout=10000)
    text = page.text_content("#error-text")
    assert text.startswith("scan.jpg: not a readable image") and "Error" not in text


@browser_only
@pytest.mark.parametrize("viewport", [(1440, 900), (390, 844)])
def test_axe_finds_no_serious_or_critical_violation(browser, server, bw_photo, viewport):
    from axe_playwright_python.sync_playwright import Axe

    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
    page = context.new_page()
    page.goto(server)
    open_photo(page, bw_photo)
    click_at(page, 0.5, 0.5)
    page.locator("#suggestions button.swatch").first.wait_for(timeout=30000)
    results = Axe().run(page)
    context.close()
    serious = [(v["id"], v["impact"], v["help"]) for v in results.response["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == []


@browser_only
def test_the_divider_on_the_photo_and_holding_o_compare_with_the_original(page, bw_photo):
    open_photo(page, bw_photo)
    frame = page.locator("#frame").bounding_box()
    handle = page.locator("#divider .handle").bounding_box()
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(frame["x"] + frame["width"] * 0.5, handle["y"] + handle["height"] / 2, steps=5)
    page.mouse.up()
    value = int(page.input_value("#compare"))
    assert 45 <= value <= 55
    assert page.evaluate("document.getElementById('original').style.clipPath") == f"inset(0px {100 - value}% 0px 0px)"
    assert page.locator("#points circle").count() == 0  # dragging the divider adds no point
    page.locator("#points").focus()
    page.keyboard.down("o")
    assert page.evaluate("document.getElementById('original').style.clipPath") in ("inset(0px)", "inset(0px 0px 0px 0px)")
    page.keyboard.up("o")
    assert page.evaluate("document.getElementById('original').style.clipPath") == f"inset(0px {100 - value}% 0px 0px)"


def view_box(page) -> list[float]:
    return [float(v) for v in page.get_attribute("#points", "viewBox").split()]


@pytest.fixture(scope="module")
def big_scan(tmp_path_factory, astronaut) -> Path:
    import numpy as np

    path = tmp_path_factory.mktemp("scan") / "scan_2048.png"
    gray = np.asarray(Image.fromarray(astronaut).convert("L"))
    Image.fromarray(np.kron(gray, np.ones((4, 4), dtype=np.uint8))).save(path)  # 2048 x 2048
    return path


@browser_only
@pytest.mark.parametrize("viewport, scale", [((1440, 900), 2), ((1024, 768), 1)])
def test_the_preview_is_rendered_at_the_frames_device_pixels_and_again_on_resize(browser, server, big_scan, viewport,
                                                                                 scale):
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, device_scale_factor=scale)
    page = context.new_page()
    page.goto(server)
    open_photo(page, big_scan)
    frame = page.locator("#frame").bounding_box()
    natural = page.evaluate("document.getElementById('preview').naturalWidth")
    assert abs(natural - round(frame["width"] * scale)) <= 1 and frame["y"] + frame["height"] <= viewport[1]
    shown = ticket(page)
    page.set_viewport_size({"width": viewport[0] - 300, "height": viewport[1] - 200})
    wait_for_update(page, shown)
    smaller = page.locator("#frame").bounding_box()
    assert smaller["width"] < frame["width"]
    assert abs(page.evaluate("document.getElementById('preview').naturalWidth") - round(smaller["width"] * scale)) <= 1
    context.close()


@browser_only
@pytest.mark.parametrize("viewport", [(390, 844), (844, 390)])
def test_on_a_phone_the_photo_is_wide_and_the_compare_control_is_not_covered(browser, server, bw_photo, viewport):
    context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]}, has_touch=True)
    page = context.new_page()
    page.goto(server)
    open_photo(page, bw_photo)
    frame, compare = page.locator("#frame").bounding_box(), page.locator("#compare").bounding_box()
    if viewport[0] < viewport[1]:
        assert frame["width"] >= 0.9 * viewport[0]
    assert frame["y"] + frame["height"] <= compare["y"] and frame["y"] + frame["height"] <= viewport[1]
    context.close()


@browser_only
def test_zooming_renders_the_region_and_clicks_land_where_they_are_shown(page, big_scan):
    open_photo(page, big_scan)
    assert view_box(page) == [0, 0, 2048, 2048]
    page.locator("#points").focus()
    shown = ticket(page)
    for _ in range(3):
        page.keyboard.press("+")
    wait_for_update(page, shown)
    x0, y0, width, height = view_box(page)
    assert width == pytest.approx(2048 / 1.5**3, rel=1e-3) and page.text_content("#zoom-value") == "338 %"
    click_at(page, 0.5, 0.5)
    point = saved_hints(page)["points"][0]
    assert abs(point["x"] - (x0 + width / 2)) <= 2 and abs(point["y"] - (y0 + height / 2)) <= 2
    page.click("#zoom-fit")
    assert view_box(page) == [0, 0, 2048, 2048]


@browser_only
def test_the_wheel_zooms_about_the_cursor_and_space_drag_pans(page, big_scan):
    open_photo(page, big_scan)
    box = page.locator("#points").bounding_box()
    x, y = box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.25
    page.mouse.move(x, y)
    page.mouse.wheel(0, -400)
    x0, y0, width, height = view_box(page)
    pixel = 2048 / box["width"]  # photo pixels in one screen pixel: how exactly the cursor can be placed
    assert width < 2048
    assert x0 + 0.25 * width == pytest.approx(512, abs=2 * pixel) and y0 + 0.25 * height == pytest.approx(512, abs=2 * pixel)
    page.locator("#points").focus()
    page.keyboard.down(" ")
    page.mouse.move(x + 100, y)
    page.mouse.down()
    page.mouse.move(x - 100, y, steps=4)
    page.mouse.up()
    page.keyboard.up(" ")
    moved = view_box(page)
    assert moved[0] > x0 and moved[1] == pytest.approx(y0, abs=1) and page.locator("#points circle").count() == 0


@browser_only
def test_a_20_step_drag_ends_on_the_preview_of_its_last_position(page, bw_photo):
    open_photo(page, bw_photo)
    click_and_wait(page, 0.5, 0.5)  # the markers are drawn anew when the preview comes: grab the settled one
    box = page.locator("#points").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2  # where the point was put
    answers = []
    page.on("response", lambda response: answers.append(response.status) if "/colorize" in response.url else None)
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 21):
        page.mouse.move(x + 4 * step, y + step)
    page.mouse.up()
    page.wait_for_function("Number(document.getElementById('preview').dataset.ticket) === latest", timeout=60000)
    page.wait_for_function("document.getElementById('busy').hidden", timeout=60000)
    assert set(answers) <= {200, 409} and answers.count(200) >= 1
    final = saved_hints(page)["points"][0]
    assert final["x"] > 320 + 40


@browser_only
def test_five_quick_clicks_end_on_the_preview_with_all_five_points(page, bw_photo):
    open_photo(page, bw_photo)
    for step in range(5):
        click_at(page, 0.15 + 0.15 * step, 0.6)
        page.wait_for_timeout(100)
    page.wait_for_function("Number(document.getElementById('preview').dataset.ticket) === latest", timeout=60000)
    assert page.locator("#points circle").count() == 5 and len(saved_hints(page)["points"]) == 5


@browser_only
def test_a_saturation_sweep_ends_on_the_preview_of_its_last_value(page, bw_photo):
    open_photo(page, bw_photo)
    page.check("#saturation-on")
    for value in range(0, 100, 4):
        page.evaluate("v => { const s = document.getElementById('saturation'); s.value = v; "
                      "s.dispatchEvent(new Event('input', { bubbles: true })); }", value)
    page.wait_for_function("Number(document.getElementById('preview').dataset.ticket) === latest", timeout=60000)
    assert saved_hints(page)["saturation"] == 0.96 and page.text_content("#saturation-value") == "96 %"


@browser_only
def test_variant_thumbnails_show_the_users_point_and_choosing_one_moves_nothing(page, bw_photo):
    open_photo(page, bw_photo)
    page.click("#show-variants")
    page.locator("#variants button img").first.wait_for(timeout=60000)
    plain = page.get_attribute("#variants button img", "src")
    page.evaluate("document.getElementById('color').value = '#0030ff'")
    # What the click brings above the panel (the point's preview and shown colour, the suggestions
    # that replace their help text) changes the page's height: let it land before the layout is read.
    click_and_wait(page, 0.5, 0.5)
    page.locator("#suggestions button.swatch").first.wait_for(timeout=30000)
    page.click("#show-variants")
    page.wait_for_function(f"document.querySelector('#variants button img').src !== {json.dumps(plain)}", timeout=60000)
    page.wait_for_function("document.getElementById('busy').hidden", timeout=60000)
    layout = """() => [...document.querySelectorAll('#variants button')].map(b => [b.offsetLeft, b.offsetTop,
                                                                              b.offsetWidth, b.offsetHeight])"""
    before = page.evaluate(layout)  # positions in the page's layout: scrolling the panel to the click moves none
    shown = ticket(page)
    page.locator("#variants button").nth(1).click()
    wait_for_update(page, shown)
    assert page.locator("#variants button").nth(1).get_attribute("aria-pressed") == "true"
    assert page.evaluate(layout) == before


@browser_only
def test_a_two_finger_pinch_zooms_and_takes_back_the_first_fingers_point(page, big_scan):
    open_photo(page, big_scan)
    box = page.locator("#points").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.evaluate("""([cx, cy]) => {
        const svg = document.getElementById('points');
        const send = (type, id, x, y) => svg.dispatchEvent(new PointerEvent(type, {
            pointerId: id, pointerType: 'touch', isPrimary: id === 1, button: 0, clientX: x, clientY: y, bubbles: true}));
        send('pointerdown', 1, cx - 20, cy);
        send('pointerdown', 2, cx + 20, cy);
        for (let step = 1; step <= 5; step++) {
            send('pointermove', 1, cx - 20 - 16 * step, cy);
            send('pointermove', 2, cx + 20 + 16 * step, cy);
        }
        send('pointerup', 1, cx - 100, cy);
        send('pointerup', 2, cx + 100, cy);
    }""", [cx, cy])
    x0, y0, width, height = view_box(page)
    assert width == pytest.approx(2048 / 5, rel=0.05)  # the fingers' distance grew 40 -> 200 px: 5x
    # about the fingers' midpoint; each finger's move arrives alone and a pan at the photo's edge is held
    # back, so the centre may wander by a few screen pixels
    assert x0 + width / 2 == pytest.approx(1024, abs=0.03 * 2048) and page.locator("#points circle").count() == 0


@browser_only
def test_selecting_a_point_from_the_keyboard_shows_its_suggestions(page, bw_photo):
    open_photo(page, bw_photo)
    click_at(page, 0.3, 0.3)
    page.locator("#suggestions button.swatch").first.wait_for(timeout=30000)
    page.evaluate("document.getElementById('suggestions').replaceChildren()")
    page.locator("#points").focus()
    page.keyboard.press("]")
    page.locator("#suggestions button.swatch").first.wait_for(timeout=30000)
