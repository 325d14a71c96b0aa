"""cunet studio's JSON API: every endpoint, every error, the safety rules, and 0 server errors."""

import io
import re

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from cunet.colorizer import Colorizer
from cunet.gamut import num_bins
from cunet.studio.app import create_app


@pytest.fixture(scope="module")
def colorizer(tiny_model_file) -> Colorizer:
    return Colorizer.from_pretrained(tiny_model_file)


def local_client(app, **options) -> TestClient:
    """A client as the studio's own page is one: at 127.0.0.1, sending the server's Origin (`guard`)."""
    return TestClient(app, base_url="http://127.0.0.1", headers={"Origin": "http://127.0.0.1"}, **options)


@pytest.fixture
def client(colorizer):
    # As a context manager the app's lifespan runs: its compute thread ends with the test.
    with local_client(create_app(colorizer, max_upload_bytes=2_000_000, max_photo_pixels=1_000_000)) as client:
        yield client


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def gray_png(astronaut) -> bytes:
    return png_bytes(Image.fromarray(astronaut[:300, :400]).convert("L"))


def upload(client, data: bytes, name: str = "old.png"):
    return client.post("/api/photos", files={"file": (name, data, "image/png")})


def test_upload_returns_a_random_id_and_the_size(client, gray_png):
    first, second = upload(client, gray_png).json(), upload(client, gray_png).json()
    assert (first["width"], first["height"], first["name"]) == (400, 300, "old.png")
    assert first["id"] != second["id"] and len(first["id"]) >= 22  # 128 random bits, URL-safe


def test_colorize_gives_a_preview_png_and_the_full_resolution_png(client, gray_png):
    photo = upload(client, gray_png).json()
    preview = client.post(f"/api/photos/{photo['id']}/colorize", json={})
    full = client.post(f"/api/photos/{photo['id']}/colorize?full=1", json={"saturation": 0.5})
    assert preview.status_code == full.status_code == 200 and preview.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(preview.content)).size == (photo["preview_width"], photo["preview_height"])
    assert Image.open(io.BytesIO(full.content)).size == (400, 300)
    assert "attachment" in full.headers["content-disposition"]


def test_a_point_changes_the_colours_around_it(client, gray_png):
    photo = upload(client, gray_png).json()
    plain = np.asarray(Image.open(io.BytesIO(client.post(f"/api/photos/{photo['id']}/colorize?full=1").content)))
    hinted = client.post(f"/api/photos/{photo['id']}/colorize?full=1",
                         json={"points": [{"x": 200, "y": 150, "color": "#ff0000", "size": 9}]})
    hinted = np.asarray(Image.open(io.BytesIO(hinted.content)))
    assert not np.array_equal(plain[140:160, 190:210], hinted[140:160, 190:210])


def test_every_tensor_computation_runs_on_the_one_compute_thread(colorizer, gray_png, monkeypatch):
    import threading

    from cunet.studio.compute import ComputeThread

    compute = ComputeThread()
    loaded_on = compute(lambda: threading.current_thread().name)
    seen = []
    for name in ("prepare", "predict_ab", "suggest", "match_references", "histogram_of"):
        original = getattr(Colorizer, name)

        def recording(self, *args, _original=original, **kwargs):
            seen.append(threading.current_thread().name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Colorizer, name, recording)
    with local_client(create_app(colorizer, compute=compute)) as client:
        photo = upload(client, gray_png).json()
        client.post(f"/api/photos/{photo['id']}/colorize", json={"points": [{"x": 20, "y": 20, "color": "#ff0000"}]})
        client.get(f"/api/photos/{photo['id']}/suggest", params={"x": 10, "y": 10})
        client.get(f"/api/photos/{photo['id']}/variants", params={"k": 2})
        client.post("/api/histogram", files={"file": ("ref.png", gray_png, "image/png")})
    assert len(seen) >= 5 and set(seen) == {loaded_on}


def test_the_gray_photo_and_its_description_can_be_fetched(client, gray_png):
    photo = upload(client, gray_png).json()
    assert client.get(f"/api/photos/{photo['id']}").json() == photo
    gray = Image.open(io.BytesIO(client.get(f"/api/photos/{photo['id']}/gray").content))
    assert gray.size == (photo["preview_width"], photo["preview_height"])


def test_suggest_returns_colours_with_probabilities(client, gray_png):
    photo = upload(client, gray_png).json()
    answer = client.get(f"/api/photos/{photo['id']}/suggest", params={"x": 10, "y": 20, "top": 5}).json()
    assert answer["source"] == "gallery" and len(answer["suggestions"]) == 5
    assert set(answer["suggestions"][0]) == {"color", "a", "b", "p"}
    assert [s["p"] for s in answer["suggestions"]] == sorted((s["p"] for s in answer["suggestions"]), reverse=True)


def test_variants_give_histograms_that_colorize_takes_back(client, gray_png):
    photo = upload(client, gray_png).json()
    variants = client.get(f"/api/photos/{photo['id']}/variants", params={"k": 3}).json()["variants"]
    assert len(variants) == 3 and len({v["id"] for v in variants}) == 3
    assert all(len(v["histogram"]) == num_bins() and v["thumbnail"].startswith("data:image/png;base64,") for v in variants)
    answer = client.post(f"/api/photos/{photo['id']}/colorize", json={"histogram": variants[0]["histogram"]})
    assert answer.status_code == 200


def test_a_reference_photo_gives_its_histogram(client, astronaut):
    answer = client.post("/api/histogram", files={"file": ("ref.png", png_bytes(Image.fromarray(astronaut)), "image/png")})
    histogram = answer.json()["histogram"]
    assert len(histogram) == num_bins() and abs(sum(histogram) - 1) < 1e-3


def test_delete_closes_a_photo(client, gray_png):
    photo = upload(client, gray_png).json()
    assert client.delete(f"/api/photos/{photo['id']}").status_code == 204
    gone = client.post(f"/api/photos/{photo['id']}/colorize", json={})
    assert gone.status_code == 404 and "no open photo" in gone.json()["error"]


@pytest.mark.parametrize("body, message", [
    (b"{bad", "hints: not valid JSON (Expecting property name enclosed in double quotes at line 1)"),
    (b'{"points": [{"x": 1, "y": 2}]}', "hints: points[0]: needs a color '#rrggbb'"),
    (b'{"points": [{"x": 5000, "y": 2, "color": "#ff0000"}]}', "point (5000, 2) lies outside the 400x300 image"),
    (b'{"saturation": 3}', "hints: saturation must be a number in [0, 1], got 3"),
    (b'{"reference": "/etc/passwd"}', "hints: the server opens no file paths; upload the reference photo to "
                                      "/api/histogram and send its histogram"),
    (b'[1, 2]', "hints: hints must be a JSON object with any of points, strokes, saturation, reference, histogram"),
])
def test_bad_hints_are_422_with_the_clis_messages(client, gray_png, body, message):
    photo = upload(client, gray_png).json()
    answer = client.post(f"/api/photos/{photo['id']}/colorize", content=body,
                         headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and answer.json() == {"error": message}


def test_an_upload_over_the_byte_limit_is_413_before_it_is_read(client):
    answer = upload(client, b"\x89PNG" + bytes(3_000_000))
    assert answer.status_code == 413 and answer.json() == {"error": "upload too large: the limit is 1 MB"}


def test_a_streamed_upload_over_the_byte_limit_is_413(client, gray_png):
    def chunks():
        for _ in range(40):
            yield bytes(100_000)

    answer = client.post("/api/photos", content=chunks(), headers={"content-type": "multipart/form-data; boundary=x"})
    assert answer.status_code == 413


def test_a_photo_over_the_pixel_limit_is_413_from_its_header(client):
    big = png_bytes(Image.new("L", (1200, 1000)))  # 1.2 MP, a few kB
    answer = upload(client, big, "big.png")
    assert answer.status_code == 413
    assert answer.json() == {"error": "big.png: image too large (1 MP, 1200x1000; the studio's limit is 1 MP)"}


def test_a_decompression_bomb_is_refused_without_decoding(client):
    from tests.test_robustness import png_header

    answer = upload(client, png_header(60000, 60000), "bomb.png")
    assert answer.status_code == 413 and "image too large" in answer.json()["error"]


@pytest.mark.parametrize("data, message", [
    (b"", "old.png: the upload is empty"),
    (b"not an image at all", "old.png: not a readable image (not a format cunet reads, or not an image at all)"),
])
def test_not_an_image_is_422(client, data, message):
    answer = upload(client, data)
    assert answer.status_code == 422 and answer.json() == {"error": message}


def test_unknown_ids_are_404_and_paths_are_never_opened(client):
    for path in ("/api/photos/..%2F..%2Fetc%2Fpasswd/colorize", "/api/photos/%2Fetc%2Fpasswd/colorize"):
        answer = client.post(path, json={})
        assert answer.status_code == 404 and "root:" not in answer.text


def test_bad_query_values_are_one_line_422s(client, gray_png):
    photo = upload(client, gray_png).json()
    answer = client.get(f"/api/photos/{photo['id']}/suggest", params={"x": "left", "y": 3})
    assert answer.status_code == 422 and answer.json()["error"].startswith("x: Input should be a valid number")
    answer = client.get(f"/api/photos/{photo['id']}/variants", params={"k": 99})
    assert answer.status_code == 422 and answer.json()["error"].startswith("k: Input should be less than or equal to 12")


def test_photos_beyond_the_memory_budget_are_closed_least_recently_used_first(colorizer, gray_png):
    with local_client(create_app(colorizer, max_held_pixels=250_000)) as client:  # two 400 x 300 photos
        first, second = upload(client, gray_png).json()["id"], upload(client, gray_png).json()["id"]
        client.get(f"/api/photos/{first}")  # used: the second is now the least recent
        upload(client, gray_png)
        assert client.get(f"/api/photos/{first}").status_code == 200
        assert client.get(f"/api/photos/{second}").status_code == 404


def test_an_unexpected_failure_is_a_500_without_a_traceback(colorizer, gray_png, monkeypatch):
    with local_client(create_app(colorizer), raise_server_exceptions=False) as client:
        photo = upload(client, gray_png).json()
        monkeypatch.setattr(colorizer, "predict_ab", lambda *a, **k: 1 / 0)
        answer = client.post(f"/api/photos/{photo['id']}/colorize", json={})
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal error (details are in the server's log)"}
    assert "Traceback" not in answer.text and "ZeroDivision" not in answer.text


def test_the_page_and_its_files_are_served_from_the_package(client):
    page = client.get("/")
    assert page.status_code == 200 and "cunet studio" in page.text and "/static/studio.js" in page.text
    script, style = client.get("/static/studio.js"), client.get("/static/studio.css")
    assert script.status_code == style.status_code == 200
    for text in (page.text, script.text, style.text):  # nothing is fetched from the internet
        assert not re.search(r"""(src|href|url|fetch|import)\s*[=(]\s*["']?(https?:)?//""", text)
    assert client.get("/openapi.json").json()["paths"]["/api/photos/{photo_id}/colorize"]


def test_schemathesis_finds_no_server_error(colorizer):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    # schemathesis calls the app as http://testserver: the studio's page would be served there.
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(colorizer, hosts=("testserver",)))
    server_errors = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    for operation in operations:
        @settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call(headers={"Origin": "http://testserver"})
            if response.status_code >= 500:
                server_errors.append(f"{case.method} {case.formatted_path}: {response.status_code} {response.text[:80]}")

        check()
    assert server_errors == []


@pytest.fixture
def served(monkeypatch, tiny_model_file):
    """`cunet studio` up to the point where uvicorn would serve: what it was asked to serve."""
    import uvicorn

    calls = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: calls.append((app, options)))
    return calls


def test_studio_binds_loopback_by_default_and_prints_its_address(monkeypatch, capsys, served, tiny_model_file, tmp_path):
    from tests.test_cli import run

    photo = tmp_path / "old.png"
    Image.new("L", (64, 48), 120).save(photo)
    code, out, err = run(monkeypatch, capsys, "studio", str(photo), "--model", str(tiny_model_file), "--port", "8799")
    assert code == 0 and err == ""
    app, options = served[0]
    assert (options["host"], options["port"]) == ("127.0.0.1", 8799)
    assert out.startswith("cunet studio: http://127.0.0.1:8799/?photo=")
    photo_id = out.split("?photo=")[1].split()[0]
    assert local_client(app).get(f"/api/photos/{photo_id}").json()["width"] == 64


def test_studio_warns_when_it_serves_beyond_loopback(monkeypatch, capsys, served, tiny_model_file):
    from tests.test_cli import run

    code, out, err = run(monkeypatch, capsys, "studio", "--host", "0.0.0.0", "--port", "8798", "--model",
                         str(tiny_model_file))
    assert code == 0 and served[0][1]["host"] == "0.0.0.0"
    assert err.strip() == ("warning: serving on 0.0.0.0: anyone who can reach this address can use the studio "
                           "and upload photos to this computer")


def test_studio_on_a_busy_port_is_a_one_line_error(monkeypatch, capsys, served):
    import socket

    from tests.test_cli import run

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, out, err = run(monkeypatch, capsys, "studio", "--port", str(port))
    assert code == 2 and served == []
    assert err.strip() == f"error: cannot serve on 127.0.0.1:{port} (Address already in use); choose another --port or --host"


def test_an_upload_carries_the_files_digest(client, gray_png):
    import hashlib

    assert upload(client, gray_png).json()["digest"] == hashlib.sha256(gray_png).hexdigest()[:16]


def test_check_hints_counts_good_hints_and_names_the_bad_without_colouring(client, gray_png):
    photo = upload(client, gray_png).json()
    url = f"/api/photos/{photo['id']}/check-hints"
    good = client.post(url, json={"points": [{"x": 10, "y": 10, "color": "#ff0000"}],
                                  "strokes": [{"points": [[1, 1], [30, 30]], "color": "#00ff00"}]})
    assert good.status_code == 200 and good.json() == {"points": 1, "strokes": 1}
    bad = client.post(url, json={"points": [{"x": 5000, "y": 10, "color": "#ff0000"}]})
    assert bad.status_code == 422 and bad.json() == {"error": "point (5000, 10) lies outside the 400x300 image"}


def test_variants_posted_with_hints_carry_the_users_points(client, gray_png):
    photo = upload(client, gray_png).json()
    url = f"/api/photos/{photo['id']}/variants?k=2"
    plain = client.get(url).json()["variants"]
    red = {"points": [{"x": 200, "y": 150, "color": "#ff0000", "size": 9}], "saturation": 0.8}
    pointed = client.post(url, json=red).json()["variants"]
    assert [v["id"] for v in plain] == [v["id"] for v in pointed]
    assert all(a["thumbnail"] != b["thumbnail"] for a, b in zip(plain, pointed))
    assert [v["histogram"] for v in plain] == [v["histogram"] for v in pointed]


def png_array(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)


def test_a_view_at_full_scale_is_that_part_of_the_download(client, gray_png):
    photo = upload(client, gray_png).json()
    url = f"/api/photos/{photo['id']}/colorize"
    hints = {"points": [{"x": 120, "y": 100, "color": "#c03020", "size": 5}]}
    full = png_array(client.post(url + "?full=1", json=hints).content)
    view = client.post(url + "?x0=100&y0=60&x1=260&y1=180&width=160&height=120", json=hints)
    assert view.status_code == 200
    part = png_array(view.content)
    assert part.shape == (120, 160, 3) and np.abs(part - full[60:180, 100:260]).max() <= 1


def test_a_view_of_the_whole_photo_at_preview_size_matches_the_preview(client, gray_png):
    photo = upload(client, gray_png).json()
    url = f"/api/photos/{photo['id']}/colorize"
    preview = png_array(client.post(url, json={}).content)
    height, width = preview.shape[:2]
    view = png_array(client.post(url + f"?x0=0&y0=0&x1=400&y1=300&width={width}&height={height}", json={}).content)
    assert view.shape == preview.shape and np.abs(view - preview).mean() < 1.5


def test_a_zoomed_view_is_rendered_from_the_full_resolution_photo(client, astronaut):
    big = png_bytes(Image.fromarray(astronaut).convert("L"))  # 512 x 512, preview side 768: kept whole
    photo = upload(client, big).json()
    gray = png_array(client.get(f"/api/photos/{photo['id']}/gray?x0=200&y0=100&x1=264&y1=164&width=256&height=256").content)
    assert gray.shape == (256, 256, 3)
    crop = np.asarray(Image.fromarray(astronaut).convert("L").crop((200, 100, 264, 164)).resize((256, 256), Image.BILINEAR))
    assert np.abs(gray[..., 0] - crop.astype(int)).mean() < 3


@pytest.mark.parametrize("query, message", [
    ("x0=0&y0=0&x1=10", "view: give all of x0, y0, x1, y1, width and height, or none"),
    ("x0=0&y0=0&x1=500&y1=100&width=10&height=10", "must lie inside the 400x300 photo"),
    ("x0=50&y0=0&x1=20&y1=100&width=10&height=10", "with x0 < x1 and y0 < y1"),
    ("x0=0&y0=0&x1=400&y1=300&width=4000&height=4000", "view: 4000x4000 is too large"),
])
def test_a_bad_view_is_422_naming_the_problem(client, gray_png, query, message):
    photo = upload(client, gray_png).json()
    answer = client.post(f"/api/photos/{photo['id']}/colorize?{query}", json={})
    assert answer.status_code == 422 and message in answer.json()["error"]


def test_info_says_how_the_model_decodes_its_colour(tiny_model_file):
    with local_client(create_app(Colorizer.from_pretrained(tiny_model_file, chroma_gain=1.3))) as client:
        info = client.get("/api/info").json()
    assert (info["decode"], info["chroma_gain"], info["working_size"]) == ("regression", 1.3, 64)
