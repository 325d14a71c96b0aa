"""Latest wins: per photo one preview computes and one waits; a newer request replaces the waiting
one (answered 409 at once, never computed); a request whose client has left is never started."""

from __future__ import annotations

import asyncio
import io
import threading

import httpx
import pytest
from PIL import Image

from cunet.colorizer import Colorizer
from cunet.studio.app import create_app
from cunet.studio.compute import ComputeThread
from cunet.studio.schedule import ClientGone, LatestWins, Superseded


async def still_here() -> bool:
    return False


async def left() -> bool:
    return True


def blocked(compute: ComputeThread) -> threading.Event:
    """Hold the compute thread until the returned event is set."""
    gate = threading.Event()
    compute.submit(gate.wait)
    return gate


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_a_newer_update_replaces_the_waiting_one_which_never_runs():
    async def scenario():
        compute = ComputeThread()
        previews = LatestWins(compute)
        ran = []
        gate = blocked(compute)
        first = asyncio.ensure_future(previews.run("photo", lambda: ran.append(1) or 1, still_here))
        await settle()
        second = asyncio.ensure_future(previews.run("photo", lambda: ran.append(2) or 2, still_here))
        await settle()
        third = asyncio.ensure_future(previews.run("photo", lambda: ran.append(3) or 3, still_here))
        await settle()
        assert second.done() and isinstance(second.exception(), Superseded)
        assert previews.state("photo") == (True, True)
        gate.set()
        assert await first == 1 and await third == 3
        assert ran == [1, 3] and previews.state("photo") == (False, False)
        compute.close()

    asyncio.run(scenario())


def test_each_photo_has_its_own_slot():
    async def scenario():
        compute = ComputeThread()
        previews = LatestWins(compute)
        gate = blocked(compute)
        one = asyncio.ensure_future(previews.run("a", lambda: "a", still_here))
        other = asyncio.ensure_future(previews.run("b", lambda: "b", still_here))
        await settle()
        assert previews.state("a") == (True, False) and previews.state("b") == (True, False)
        gate.set()
        assert (await one, await other) == ("a", "b")
        compute.close()

    asyncio.run(scenario())


def test_a_request_whose_client_left_is_not_started():
    async def scenario():
        compute = ComputeThread()
        previews = LatestWins(compute)
        ran = []
        gate = blocked(compute)
        first = asyncio.ensure_future(previews.run("photo", lambda: ran.append(1), still_here))
        await settle()
        gone = asyncio.ensure_future(previews.run("photo", lambda: ran.append(2), left))
        await settle()
        gate.set()
        await first
        with pytest.raises(ClientGone):
            await gone
        assert ran == [1] and previews.state("photo") == (False, False)
        compute.close()

    asyncio.run(scenario())


def test_a_cancelled_waiter_gives_its_place_back():
    async def scenario():
        compute = ComputeThread()
        previews = LatestWins(compute)
        gate = blocked(compute)
        first = asyncio.ensure_future(previews.run("photo", lambda: 1, still_here))
        await settle()
        waiter = asyncio.ensure_future(previews.run("photo", lambda: 2, still_here))
        await settle()
        waiter.cancel()
        await settle()
        assert previews.state("photo") == (True, False)
        gate.set()
        assert await first == 1 and previews.state("photo") == (False, False)
        compute.close()

    asyncio.run(scenario())


def test_the_api_answers_a_replaced_preview_409_and_computes_the_newest(tiny_model_file, astronaut):
    compute = ComputeThread()
    colorizer = compute(Colorizer.from_pretrained, tiny_model_file)
    app = create_app(colorizer, compute=compute)
    buffer = io.BytesIO()
    Image.fromarray(astronaut[:120, :160]).convert("L").save(buffer, format="PNG")

    async def scenario():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1",
                                     headers={"Origin": "http://127.0.0.1"}) as client:
            photo = (await client.post("/api/photos", files={"file": ("p.png", buffer.getvalue(), "image/png")})).json()
            url = f"/api/photos/{photo['id']}/colorize"
            gate = blocked(compute)
            sent = []
            for x, reached in ((10, (True, False)), (20, (True, True)), (30, (True, True))):
                body = {"points": [{"x": x, "y": 10, "color": "#c03020"}]}
                sent.append(asyncio.ensure_future(client.post(url, json=body)))
                while app.state.previews.state(photo["id"]) != reached or (x == 30 and not sent[1].done()):
                    await asyncio.sleep(0.01)  # each request reaches the scheduler before the next is sent
            gate.set()
            answers = await asyncio.gather(*sent)
            full = await client.post(url + "?full=1", json={})
        return [answer.status_code for answer in answers], answers[1].json(), full.status_code

    statuses, replaced, full = asyncio.run(scenario())
    compute.close()
    assert statuses == [200, 409, 200] and full == 200
    assert replaced == {"error": "superseded: a newer update of this photo replaced it"}


def test_an_older_request_arriving_after_a_newer_one_is_superseded_not_the_newer():
    async def scenario():
        compute = ComputeThread()
        previews = LatestWins(compute)
        ran = []
        gate = blocked(compute)
        first = asyncio.ensure_future(previews.run("photo", lambda: ran.append(1), still_here, order=1))
        await settle()
        newest = asyncio.ensure_future(previews.run("photo", lambda: ran.append(3), still_here, order=3))
        await settle()
        late = asyncio.ensure_future(previews.run("photo", lambda: ran.append(2), still_here, order=2))
        await settle()
        assert late.done() and isinstance(late.exception(), Superseded) and not newest.done()
        gate.set()
        await first
        await newest
        assert ran == [1, 3] and previews.state("photo") == (False, False)
        compute.close()

    asyncio.run(scenario())
