"""The studio answers only its own page: forged Host headers (DNS rebinding), cross-site and
`text/plain` POSTs and requests without Origin or token are refused; bodies are bounded before they
are read; every error is {"error": "..."} and quotes at most a short prefix of what was sent."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient

import cunet.studio.context
import cunet.studio.requests
from cunet.colorizer import Colorizer
from cunet.hints import MAX_HINTS_BYTES
from cunet.studio.app import create_app
from tests.test_robustness import png_header
from tests.test_studio import gray_png, local_client, upload  # noqa: F401 (gray_png: a fixture)


@pytest.fixture(scope="module")
def colorizer(tiny_model_file) -> Colorizer:
    return Colorizer.from_pretrained(tiny_model_file)


@pytest.fixture
def app(colorizer):
    return create_app(colorizer, token="launch-token")


@pytest.fixture
def client(app):
    with local_client(app) as client:
        yield client


@pytest.fixture
def photo_id(client, gray_png) -> str:
    return upload(client, gray_png).json()["id"]


def bare_client(app, host: str = "127.0.0.1:8765", **headers) -> TestClient:
    """A client sending exactly this Host and these headers (no Origin unless given)."""
    return TestClient(app, base_url=f"http://{host}", headers=headers)


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8765", "127.0.0.1.evil.example", "0.0.0.0:8765"])
def test_a_forged_host_is_refused_with_421(app, host):
    answer = bare_client(app, host).get("/api/info")
    assert answer.status_code == 421
    assert answer.json()["error"].startswith("refused: Host ")


@pytest.mark.parametrize("host", ["127.0.0.1:8765", "localhost:8765", "LOCALHOST", "[::1]:8765"])
def test_loopback_names_are_served(app, host):
    assert bare_client(app, host).get("/api/info").status_code == 200


def test_the_host_the_studio_was_started_on_is_served_too(colorizer):
    app = create_app(colorizer, hosts=("192.168.1.20",))
    assert bare_client(app, "192.168.1.20:8765").get("/api/info").status_code == 200
    assert bare_client(app, "192.168.1.21:8765").get("/api/info").status_code == 421


def test_on_every_interface_any_ip_address_is_served_but_no_domain_name(colorizer):
    app = create_app(colorizer, hosts=("0.0.0.0",))
    for host in ("192.168.1.20:8765", "[fe80::1]:8765", "10.0.0.7"):
        assert bare_client(app, host).get("/api/info").status_code == 200
    assert bare_client(app, "evil.example:8765").get("/api/info").status_code == 421


def test_a_cross_site_text_plain_post_is_refused_before_any_work(app, photo_id, monkeypatch):
    monkeypatch.setattr(cunet.studio.context, "decode_json", lambda *args: pytest.fail("the body was read"))
    answer = bare_client(app, Origin="http://evil.example").post(
        f"/api/photos/{photo_id}/colorize", content=b'{"points": []}', headers={"Content-Type": "text/plain"})
    assert answer.status_code == 403
    assert answer.json() == {"error": "refused: a request from another site ('http://evil.example') cannot change "
                                      "the studio"}


@pytest.mark.parametrize("origin", ["null", "http://127.0.0.1:9999", "https://localhost:8765.evil.example", "file://"])
def test_an_origin_other_than_the_servers_own_is_refused(app, origin):
    answer = bare_client(app, Origin=origin).post("/api/histogram")
    assert answer.status_code == 403


@pytest.mark.parametrize("headers", [{"Origin": "http://[::1"}, {"X-Cunet-Token": "\u00e9t\u00e9"}])
def test_malformed_origin_or_token_headers_are_refused_not_500(app, headers):
    client = TestClient(app, base_url="http://127.0.0.1:8765")
    answer = client.post("/api/histogram", headers={key: value.encode("latin-1") for key, value in headers.items()})
    assert answer.status_code == 403 and set(answer.json()) == {"error"}


def test_a_post_without_origin_needs_the_pages_token(app, gray_png):
    files = {"file": ("old.png", gray_png, "image/png")}
    refused = bare_client(app).post("/api/photos", files=files)
    assert refused.status_code == 403 and "X-Cunet-Token" in refused.json()["error"]
    assert bare_client(app, **{"X-Cunet-Token": "wrong"}).post("/api/photos", files=files).status_code == 403
    assert bare_client(app, **{"X-Cunet-Token": "launch-token"}).post("/api/photos", files=files).status_code == 201


def test_the_page_carries_the_launch_token_and_a_get_needs_none(app):
    page = bare_client(app).get("/")
    assert page.status_code == 200 and '<meta name="cunet-token" content="launch-token">' in page.text


def test_every_answer_forbids_framing_and_sniffing(client):
    headers = client.get("/").headers
    assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"


def test_hints_must_be_sent_as_json(client, photo_id):
    answer = client.post(f"/api/photos/{photo_id}/colorize", content=b"{}", headers={"Content-Type": "text/plain"})
    assert answer.status_code == 415 and answer.json() == {"error": "send the hints as application/json"}


def test_an_upload_must_be_a_form(client):
    answer = client.post("/api/photos", content=b"\x89PNG", headers={"Content-Type": "image/png"})
    assert answer.status_code == 415 and "multipart/form-data" in answer.json()["error"]


def test_a_body_of_one_and_a_half_million_points_is_refused_unread(client, photo_id, monkeypatch):
    point = {"x": 1, "y": 1, "color": "#c03020"}
    body = json.dumps({"points": [point] * 1_500_000}, separators=(",", ":")).encode()
    assert 40 * 2**20 < len(body) < cunet.studio.requests.MAX_UPLOAD_BYTES  # the 48 MB body
    monkeypatch.setattr(cunet.studio.context, "decode_json", lambda *args: pytest.fail("the body was parsed"))
    answer = client.post(f"/api/photos/{photo_id}/colorize", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 413
    assert answer.json() == {"error": f"hints too large: the limit is {MAX_HINTS_BYTES // 2**10:,} KB"}


def test_a_streamed_body_without_length_is_stopped_at_the_hints_limit(client, photo_id):
    def chunks():
        yield b'{"points": ['
        for _ in range(MAX_HINTS_BYTES // 1000 + 10):
            yield b'{"x": 1, "y": 1, "color": "#c03020"}, ' * 27

    answer = client.post(f"/api/photos/{photo_id}/colorize", content=chunks(), headers={"Content-Type": "application/json"})
    assert answer.status_code == 413


def test_too_many_points_under_the_byte_limit_are_422_before_any_colouring(client, photo_id):
    body = json.dumps({"points": [{"x": 1, "y": 1, "a": 10, "b": 10}] * 2001}).encode()
    assert len(body) < MAX_HINTS_BYTES
    answer = client.post(f"/api/photos/{photo_id}/colorize", content=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 422 and answer.json() == {"error": "hints: 2,001 points; the limit is 2,000"}


@pytest.mark.parametrize("method, path", [("GET", "/nowhere"), ("PUT", "/api/info"), ("GET", "/static/missing.js")])
def test_unknown_routes_and_methods_have_the_one_error_shape(client, method, path):
    answer = client.request(method, path)
    assert answer.status_code in (404, 405) and set(answer.json()) == {"error"}


def test_a_long_photo_id_is_not_echoed_back(client):
    answer = client.get("/api/photos/" + "a" * 8_000)
    assert answer.status_code == 404 and len(answer.text) < 200


def test_a_truncated_upload_is_named_by_its_file_name(client, gray_png):
    answer = upload(client, gray_png[:2000], "grandma.png")
    assert answer.status_code == 422 and answer.json()["error"].startswith("grandma.png: ")


@pytest.mark.parametrize("width, height", [(100_000, 100_000), (12_000, 12_000)])
def test_every_oversized_upload_names_the_studios_limit(colorizer, width, height):
    with local_client(create_app(colorizer)) as client:
        answer = upload(client, png_header(width, height), "scan.png")
    assert answer.status_code == 413
    assert answer.json()["error"].endswith("the studio's limit is 50 MP)")
