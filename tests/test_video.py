"""cunet video: films made in the test (a photo panned and zoomed with a moving object, two shots
joined by a cut, a sound track) go through the video module and the command line."""

from __future__ import annotations

import json
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from skimage import color as skcolor
from skimage import data as skdata

from cunet.colorizer import Colorizer
from cunet.errors import CunetError
from cunet.flicker import colour_distribution_consistency, colour_warping_error, input_motion, warping_error
from cunet.video import FilmColorizer, Steadiness, histogram_change, keyed_hints_from_json, lightness_histogram
from cunet.video_io import Frame, VideoSource, transcode
from tests.test_cli import assert_one_line_error, run

HEIGHT, WIDTH = 128, 176


def gray(rgb: np.ndarray) -> np.ndarray:
    return np.asarray(Image.fromarray(rgb).convert("L").convert("RGB"))


def panned(photo: np.ndarray, frames: int, step: int = 3, zoom: float = 0.0, moving_object: bool = True) -> list[np.ndarray]:
    """Gray frames of a window moving right over `photo` by `step` px a frame, zooming in by `zoom` a
    frame, with a light disc crossing it."""
    clip = []
    for t in range(frames):
        scale = 1 + zoom * t
        h, w = round(HEIGHT / scale), round(WIDTH / scale)
        x0 = 40 + step * t + (WIDTH - w) // 2
        y0 = 120 + (HEIGHT - h) // 2
        frame = cv2.resize(np.ascontiguousarray(photo[y0:y0 + h, x0:x0 + w]), (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)
        if moving_object:
            cv2.circle(frame, (20 + 7 * t, 100), 9, (235, 235, 235), -1)
        clip.append(gray(frame))
    return clip


def write_video(path, frames, rate=24, audio=True, sample_rate=48000, rotation=None, hflip=False, sample_aspect=None,
                still_first=False) -> None:
    """`rotation`: a display rotation (degrees counterclockwise, as a phone stores a portrait film),
    mirrored after it with `hflip`; `sample_aspect`: non-square pixels; `still_first`: a one-picture
    video stream before the film's."""
    with av.open(str(path), "w") as output:
        still = output.add_stream("mjpeg") if still_first else None
        video = output.add_stream("libx264", rate=rate)
        video.height, video.width = frames[0].shape[:2]
        video.pix_fmt = "yuv420p"
        if rotation is not None:
            video.set_display_rotation(rotation, hflip=hflip)
        if sample_aspect is not None:
            video.codec_context.sample_aspect_ratio = sample_aspect
        sound = output.add_stream("aac", rate=sample_rate) if audio else None
        if still is not None:
            still.width, still.height, still.pix_fmt = 32, 32, "yuvj420p"
            picture = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24")
            picture = picture.reformat(format="yuvj420p")
            picture.pts = 0
            output.mux(still.encode(picture) + still.encode(None))
        for index, rgb in enumerate(frames):
            picture = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            picture.pts = index
            output.mux(video.encode(picture))
        output.mux(video.encode(None))
        if sound is not None:
            samples = sample_rate * len(frames) // rate
            tone = (0.2 * np.sin(2 * np.pi * 440 * np.arange(samples) / sample_rate)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = av.AudioFrame.from_ndarray(tone[None, start:start + 1024], format="flt", layout="mono")
                chunk.sample_rate, chunk.pts = sample_rate, start
                output.mux(sound.encode(chunk))
            output.mux(sound.encode(None))


def streams(path) -> dict:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        rate, size = video.average_rate, (video.codec_context.width, video.codec_context.height)
        frames = sum(1 for _ in container.decode(video=0))
    with av.open(str(path)) as container:
        audio = container.streams.audio
        name = audio[0].codec_context.name if audio else None
        seconds = sum(f.samples / f.sample_rate for f in container.decode(audio=0)) if audio else 0.0
        return {"frames": frames, "rate": rate, "size": size, "audio": name, "audio_seconds": seconds}


@pytest.fixture(scope="module")
def colorizer() -> Colorizer:
    return Colorizer.from_pretrained()


@pytest.fixture(scope="module")
def astronaut_pan() -> list[np.ndarray]:
    return panned(skdata.astronaut(), 14, zoom=0.01)


def colour(colorizer, frames, steadiness=Steadiness(), **options) -> tuple[list[np.ndarray], FilmColorizer]:
    film = FilmColorizer(colorizer, steadiness, **options)
    return [frame.rgb for frame in film.frames(Frame(f) for f in frames)], film


def test_a_film_keeps_its_frame_count_rate_size_and_sound(monkeypatch, capsys, tmp_path, astronaut_pan):
    source, target = tmp_path / "old.mp4", tmp_path / "colour.mp4"
    write_video(source, astronaut_pan, rate=24)
    code, _, err = run(monkeypatch, capsys, "video", source, "-o", target)
    assert code == 0, err
    before, after = streams(source), streams(target)
    assert after["frames"] == before["frames"] == len(astronaut_pan)
    assert after["rate"] == Fraction(24) and after["size"] == (WIDTH, HEIGHT)
    assert after["audio"] == "aac" and after["audio_seconds"] == pytest.approx(before["audio_seconds"], abs=0.03)
    assert "14 frames, 1 shot" in err


@pytest.mark.parametrize("rotation, hflip, size, corner", [
    (-90, False, (HEIGHT, WIDTH), "top right"),  # a phone's portrait film: shown turned clockwise
    (90, False, (HEIGHT, WIDTH), "bottom left"),
    (180, False, (WIDTH, HEIGHT), "bottom right"),
    (0, True, (WIDTH, HEIGHT), "top right"),  # a front camera's mirror
    (90, True, (HEIGHT, WIDTH), "bottom right"),  # turned counterclockwise, then mirrored
])
def test_a_film_is_coloured_and_written_as_players_show_it(monkeypatch, capsys, tmp_path, astronaut_pan, rotation,
                                                          hflip, size, corner):
    frames = [frame.copy() for frame in astronaut_pan[:3]]
    for frame in frames:
        frame[:16, :16] = 255  # a white corner, top left as stored
    source, target = tmp_path / "phone.mp4", tmp_path / "colour.mp4"
    write_video(source, frames, audio=False, rotation=rotation, hflip=hflip)
    code, _, err = run(monkeypatch, capsys, "video", source, "-o", target)
    assert code == 0, err
    assert streams(target)["size"] == size
    with av.open(str(target)) as container:
        first = next(container.decode(video=0))
        picture = first.to_ndarray(format="rgb24")
    assert first.rotation == 0
    corners = {"top left": picture[:12, :12], "top right": picture[:12, -12:],
               "bottom left": picture[-12:, :12], "bottom right": picture[-12:, -12:]}
    assert [name for name, pixels in corners.items() if pixels.mean() > 200] == [corner]


def test_a_film_with_non_square_pixels_keeps_its_shape(monkeypatch, capsys, tmp_path, astronaut_pan):
    source, target = tmp_path / "dv.mkv", tmp_path / "colour.mp4"
    write_video(source, astronaut_pan[:3], audio=False, sample_aspect=Fraction(8, 9))
    code, _, err = run(monkeypatch, capsys, "video", source, "-o", target)
    assert code == 0, err
    with av.open(str(target)) as container:
        assert container.streams.video[0].sample_aspect_ratio == Fraction(8, 9)


def test_a_still_picture_stream_before_the_film_is_passed_over(monkeypatch, capsys, tmp_path, astronaut_pan):
    source, target = tmp_path / "with-still.mkv", tmp_path / "colour.mp4"
    write_video(source, astronaut_pan[:5], audio=False, still_first=True)
    with av.open(str(source)) as container:
        assert container.streams.video[0].codec_context.name == "mjpeg"
    code, _, err = run(monkeypatch, capsys, "video", source, "-o", target)
    assert code == 0, err
    after = streams(target)
    assert after["frames"] == 5 and after["size"] == (WIDTH, HEIGHT)


def test_a_film_of_one_frame_is_coloured(monkeypatch, capsys, tmp_path, astronaut_pan):
    source, target = tmp_path / "one.mp4", tmp_path / "colour.mp4"
    write_video(source, astronaut_pan[:1], audio=False)
    code, _, err = run(monkeypatch, capsys, "video", source, "-o", target)
    assert code == 0, err
    assert streams(target)["frames"] == 1


def test_sound_with_only_a_cover_picture_gets_one_error_line(monkeypatch, capsys, tmp_path):
    source = tmp_path / "song.m4a"
    with av.open(str(source), "w", format="mp4") as output:
        cover = output.add_stream("mjpeg")
        cover.width, cover.height, cover.pix_fmt = 32, 32, "yuvj420p"
        cover.disposition = av.stream.Disposition.attached_pic
        sound = output.add_stream("aac", rate=48000)
        picture = av.VideoFrame.from_ndarray(np.full((32, 32, 3), 200, np.uint8), format="rgb24").reformat(format="yuvj420p")
        picture.pts = 0
        output.mux(cover.encode(picture) + cover.encode(None))
        tone = np.zeros((1, 4096), np.float32)
        for start in range(0, 4096, 1024):
            chunk = av.AudioFrame.from_ndarray(tone[:, start:start + 1024], format="flt", layout="mono")
            chunk.sample_rate, chunk.pts = 48000, start
            output.mux(sound.encode(chunk))
        output.mux(sound.encode(None))
    with av.open(str(source)) as container:
        assert [s.disposition for s in container.streams.video] == [av.stream.Disposition.attached_pic]
    code, _, err = run(monkeypatch, capsys, "video", source, "-o", tmp_path / "colour.mp4")
    assert_one_line_error(code, err, "has no video stream, only a cover picture")
    assert not (tmp_path / "colour.mp4").exists()


def test_the_output_is_in_colour_with_the_input_lightness(colorizer, astronaut_pan):
    outputs, _ = colour(colorizer, astronaut_pan[:4])
    lab_in = skcolor.rgb2lab(astronaut_pan[3])
    lab_out = skcolor.rgb2lab(outputs[3])
    assert np.abs(lab_out[..., 0] - lab_in[..., 0]).mean() < 1.0
    assert np.hypot(lab_out[..., 1], lab_out[..., 2]).mean() > 5


def test_a_cut_between_two_shots_is_found(colorizer):
    first = panned(skdata.astronaut(), 8)
    second = panned(skdata.coffee(), 8)
    _, film = colour(colorizer, first + second)
    assert film.cuts == [8]


def test_flow_stabilised_colour_flickers_less_than_colouring_each_frame(colorizer, astronaut_pan):
    per_frame, _ = colour(colorizer, astronaut_pan, Steadiness(cuts=False, shot_palette=False, stabilise=False))
    steady, _ = colour(colorizer, astronaut_pan)
    assert colour_warping_error(steady, astronaut_pan) < 0.8 * colour_warping_error(per_frame, astronaut_pan)
    assert warping_error(steady, astronaut_pan) < warping_error(per_frame, astronaut_pan)
    assert colour_distribution_consistency(steady) < colour_distribution_consistency(per_frame)


def test_a_shot_palette_is_taken_from_the_colour_before_the_chroma_gain(monkeypatch, colorizer, astronaut_pan):
    from dataclasses import replace

    palettes = {}
    for gain in (1.0, 2.0):
        film = FilmColorizer(replace(colorizer, chroma_gain=gain), Steadiness(stabilise=False))
        original = film._frame_colour
        monkeypatch.setattr(film, "_frame_colour", lambda item, palette, original=original, gain=gain: (
            palettes.setdefault(gain, palette), original(item, palette))[1])
        list(film.frames(Frame(f) for f in astronaut_pan[:4]))
    assert palettes[1.0] is not None and torch.allclose(palettes[1.0], palettes[2.0], atol=1e-6)


def test_a_palette_from_the_histogram_head_is_the_mean_of_its_first_frames_predictions(monkeypatch, colorizer,
                                                                                     astronaut_pan):
    from cunet.video import PALETTE_FRAMES

    film = FilmColorizer(colorizer, Steadiness(stabilise=False, palette_from="predicted"))
    palettes = []
    original = film._frame_colour
    monkeypatch.setattr(film, "_frame_colour", lambda item, palette: (palettes.append(palette), original(item, palette))[1])
    list(film.frames(Frame(f) for f in astronaut_pan[:4]))
    expected = torch.stack([colorizer.predicted_histogram(f) for f in astronaut_pan[:PALETTE_FRAMES]]).mean(0)
    assert len(palettes) == 4 and all(p is palettes[0] for p in palettes)
    assert torch.allclose(palettes[0], expected / expected.sum(), atol=1e-6)


def test_a_palette_from_the_histogram_head_needs_a_model_with_one(tiny_model_file):
    with pytest.raises(CunetError, match="needs a model with a histogram head"):
        FilmColorizer(Colorizer.from_pretrained(tiny_model_file), Steadiness(palette_from="predicted"))
    with pytest.raises(CunetError, match="--palette-from must be one of frames, predicted"):
        Steadiness(palette_from="reference")


def test_a_keyed_point_is_carried_along_a_pan(colorizer):
    frames = panned(skdata.astronaut(), 12, step=4, moving_object=False)
    keyed = keyed_hints_from_json({"frame": 0, "points": [{"x": 150, "y": 25, "color": "#40c040", "size": 5}]})
    outputs, _ = colour(colorizer, frames, Steadiness(stabilise=False), keyed=keyed)  # the point itself moves
    first, last = skcolor.rgb2lab(outputs[0]), skcolor.rgb2lab(outputs[-1])
    green = first[25, 150, 1:]
    assert green[0] < -20  # the point took on the first frame
    moved_x = 150 - 4 * 11
    assert np.hypot(*(last[25, moved_x, 1:] - green)) < 10  # and went along with the picture
    automatic, _ = colour(colorizer, frames[-1:])
    assert np.hypot(*(skcolor.rgb2lab(automatic[0])[25, moved_x, 1:] - green)) > 20


def test_a_keyed_frame_replaces_the_earlier_hints(colorizer):
    frames = panned(skdata.astronaut(), 8, step=0, moving_object=False)
    keyed = keyed_hints_from_json([{"frame": 0, "points": [{"x": 150, "y": 25, "color": "#40c040", "size": 5}]},
                                   {"frame": 4, "points": []}])
    outputs, _ = colour(colorizer, frames, keyed=keyed)
    green = [skcolor.rgb2lab(o)[25, 150, 1] for o in outputs]
    assert max(green[:4]) < -20 and min(green[4:]) > -10


def test_a_point_keyed_mid_shot_shows_in_full_on_its_frame(colorizer):
    frames = panned(skdata.astronaut(), 6, step=0, moving_object=False)
    keyed = keyed_hints_from_json([{"frame": 3, "points": [{"x": 150, "y": 25, "color": "#40c040", "size": 5}]}])
    outputs, _ = colour(colorizer, frames, keyed=keyed)
    green = [skcolor.rgb2lab(o)[25, 150, 1] for o in outputs]
    assert min(green[:3]) > -10 and max(green[3:]) < -20


def test_frames_in_a_folder_become_a_folder_of_frames(monkeypatch, capsys, tmp_path, astronaut_pan):
    folder, target = tmp_path / "frames", tmp_path / "coloured"
    folder.mkdir()
    for index, frame in enumerate(astronaut_pan[:5]):
        Image.fromarray(frame).save(folder / f"shot_{index:03d}.png")
    code, _, err = run(monkeypatch, capsys, "video", folder, "-o", target)
    assert code == 0, err
    assert sorted(p.name for p in target.iterdir()) == [f"shot_{i:03d}.png" for i in range(5)]
    assert Image.open(target / "shot_004.png").size == (WIDTH, HEIGHT)


def test_a_folder_of_frames_becomes_a_video_at_the_given_rate(monkeypatch, capsys, tmp_path, astronaut_pan):
    folder, target = tmp_path / "frames", tmp_path / "film.mkv"
    folder.mkdir()
    for index, frame in enumerate(astronaut_pan[:6]):
        Image.fromarray(frame).save(folder / f"{index:05d}.jpg")
    code, _, err = run(monkeypatch, capsys, "video", folder, "-o", target, "--fps", "12")
    assert code == 0, err
    info = streams(target)
    assert info["frames"] == 6 and info["rate"] == Fraction(12) and info["audio"] is None


def test_a_failure_part_way_leaves_no_output(monkeypatch, tmp_path, colorizer, astronaut_pan):
    source, target = tmp_path / "old.mp4", tmp_path / "colour.mp4"
    write_video(source, astronaut_pan)
    film = FilmColorizer(colorizer)
    original = film._frame_colour

    def failing(item, palette):
        if item.index == 5:
            raise CunetError("disk full")
        return original(item, palette)

    monkeypatch.setattr(film, "_frame_colour", failing)
    with pytest.raises(CunetError, match="disk full"):
        transcode(VideoSource(source), target, film.run)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.mp4"]


def test_ctrl_c_says_how_far_it_got_and_leaves_no_output(monkeypatch, capsys, tmp_path, astronaut_pan):
    source, target = tmp_path / "old.mp4", tmp_path / "colour.mp4"
    write_video(source, astronaut_pan)
    original = FilmColorizer._frame_colour

    def interrupted(self, item, palette):
        if item.index == 6:
            raise KeyboardInterrupt
        return original(self, item, palette)

    monkeypatch.setattr(FilmColorizer, "_frame_colour", interrupted)
    code, _, err = run(monkeypatch, capsys, "video", source, "-o", target)
    assert code == 130 and "interrupted:" in err and "of 14 frames coloured; nothing written" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.mp4"]


@pytest.mark.parametrize("content, expected", [
    (b"just some text\n", "not a video FFmpeg can read"),
    (None, "not a video FFmpeg can read"),  # an MP4 cut short after its first 3,000 bytes
])
def test_a_file_that_is_not_a_video_is_one_error_line(monkeypatch, capsys, tmp_path, astronaut_pan, content, expected):
    path = tmp_path / "broken.mp4"
    if content is None:
        write_video(tmp_path / "whole.mp4", astronaut_pan)
        content = (tmp_path / "whole.mp4").read_bytes()[:3000]
    path.write_bytes(content)
    code, _, err = run(monkeypatch, capsys, "video", path, "-o", tmp_path / "out.mp4")
    assert_one_line_error(code, err, expected)
    assert not (tmp_path / "out.mp4").exists()


def test_a_chroma_gain_out_of_range_is_one_error_line_and_no_output(monkeypatch, capsys, tmp_path, astronaut_pan):
    write_video(tmp_path / "old.mp4", astronaut_pan[:2])
    code, _, err = run(monkeypatch, capsys, "video", tmp_path / "old.mp4", "-o", tmp_path / "out.mp4",
                       "--chroma-gain", "4")
    assert_one_line_error(code, err, "chroma gain must lie in (0, 3], got 4.0")
    assert not (tmp_path / "out.mp4").exists()


def test_an_output_type_it_cannot_write_is_refused_before_any_work(monkeypatch, capsys, tmp_path):
    code, _, err = run(monkeypatch, capsys, "video", tmp_path / "missing.mp4", "-o", tmp_path / "out.avi")
    assert_one_line_error(code, err, "cunet video writes .mp4, .m4v, .mov, .mkv or .webm")


def test_a_keyed_point_outside_the_picture_is_one_error_line(monkeypatch, capsys, tmp_path, astronaut_pan):
    source, hints = tmp_path / "old.mp4", tmp_path / "hints.json"
    write_video(source, astronaut_pan[:3], audio=False)
    hints.write_text(json.dumps([{"frame": 1, "points": [{"x": 500, "y": 10, "color": "#ff0000"}]}]))
    code, _, err = run(monkeypatch, capsys, "video", source, "-o", tmp_path / "out.mp4", "--hints", hints)
    assert_one_line_error(code, err, "frame 1: point (500, 10) lies outside the 176x128 picture")


@pytest.mark.parametrize("document, expected", [
    ([{"frame": -1, "points": []}], "keyed hints 0: frame must be a frame number"),
    ([{"frame": 2}, {"frame": 2}], "keyed hints 1: frame 2 is keyed twice"),
    ([{"points": []}], "keyed hints 0: says no frame"),
    ([{"frame": 0, "colour": "#ff0000"}], "keyed hints 0: unknown hint keys"),
    ([], "an empty list of keyed hints"),
    ("red", "must be a JSON object"),
])
def test_bad_keyed_hints_say_what_is_wrong(document, expected):
    with pytest.raises(CunetError, match=expected):
        keyed_hints_from_json(document, "hints.json")


def test_keyed_hints_come_in_frame_order():
    keyed = keyed_hints_from_json([{"frame": 9, "saturation": 0.5}, {"frame": 3, "points": []}])
    assert [k.frame for k in keyed] == [3, 9] and keyed[1].hints.saturation == 0.5


def test_histogram_change_is_zero_for_the_same_frame_and_one_for_disjoint_ones():
    dark, light = np.full((8, 8), 10.0), np.full((8, 8), 90.0)
    assert histogram_change(lightness_histogram(dark), lightness_histogram(dark)) == 0
    assert histogram_change(lightness_histogram(dark), lightness_histogram(light)) == 1


def test_warping_error_is_zero_for_a_still_film_and_grows_with_flicker():
    still = [skdata.astronaut()[:96, :128]] * 4
    assert warping_error(still, still) < 1e-6  # Farneback finds next to no motion in a still
    flickering = [np.clip(f.astype(int) + (20 if i % 2 else 0), 0, 255).astype(np.uint8) for i, f in enumerate(still)]
    assert warping_error(flickering, still) > 0.01


def test_warping_error_follows_the_motion():
    photo = skdata.astronaut()
    moving = [np.ascontiguousarray(photo[100:196, 100 + 2 * t:228 + 2 * t]) for t in range(4)]
    assert warping_error(moving, moving) < 0.002


def test_the_fine_flow_sees_a_rotating_zoom_more_exactly_than_farneback():
    photo = skdata.astronaut()
    turning = [cv2.warpAffine(photo, cv2.getRotationMatrix2D((256, 256), t, 1 + 0.02 * t), (512, 512))[150:310, 150:310]
               for t in range(4)]
    fine = warping_error(turning, turning, flow="fine-dis")
    assert fine < 0.0005 and fine < 0.8 * warping_error(turning, turning)


def test_one_clips_motion_grades_any_colouring_of_it_as_its_frames_would():
    photo = skdata.astronaut()
    moving = [np.ascontiguousarray(photo[100:196, 100 + 2 * t:228 + 2 * t]) for t in range(4)]
    tinted = [np.clip(f.astype(int) * [1.2, 1, 0.9] + 9 * (t % 2), 0, 255).astype(np.uint8) for t, f in enumerate(moving)]
    motion = input_motion(moving, "fine-dis")
    assert len(motion) == 3 and motion[0][0].shape == (96, 128, 2) and motion[0][1].dtype == bool
    assert warping_error(tinted, motion=motion) == warping_error(tinted, moving, flow="fine-dis")
    assert colour_warping_error(tinted, motion=motion) == colour_warping_error(tinted, moving, flow="fine-dis")


def test_a_warping_error_with_an_unknown_flow_or_no_flow_is_refused():
    frames = [skdata.astronaut()[:32, :32]] * 3
    with pytest.raises(ValueError, match="farneback, fine-dis"):
        warping_error(frames, frames, flow="raft")
    with pytest.raises(ValueError, match="their motion"):
        warping_error(frames)
    with pytest.raises(ValueError, match="one flow between each two"):
        warping_error(frames, motion=input_motion(frames[:2]))
    with pytest.raises(ValueError, match="not both"):
        warping_error(frames, frames, flow="fine-dis", motion=input_motion(frames))


def test_cdc_is_zero_for_identical_frames_and_positive_when_colour_changes():
    frame = skdata.astronaut()[:64, :64]
    assert colour_distribution_consistency([frame] * 6) == 0
    tinted = [frame if i % 2 else np.clip(frame.astype(int) * [1.3, 1, 0.8], 0, 255).astype(np.uint8) for i in range(6)]
    assert colour_distribution_consistency(tinted) > 0.01


def test_a_film_of_odd_width_and_height_keeps_its_size(monkeypatch, capsys, tmp_path, astronaut_pan):
    source, target = tmp_path / "odd.mkv", tmp_path / "colour.mp4"
    with av.open(str(source), "w") as output:  # FFV1 holds any size; H.264 4:2:0 needs even sides
        video = output.add_stream("ffv1", rate=24)
        video.width, video.height, video.pix_fmt = WIDTH - 1, HEIGHT - 1, "yuv420p"
        for index, rgb in enumerate(astronaut_pan[:3]):
            picture = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[:-1, :-1]), format="rgb24")
            picture.pts = index
            output.mux(video.encode(picture))
        output.mux(video.encode(None))
    code, _, err = run(monkeypatch, capsys, "video", source, "-o", target)
    assert code == 0, err
    assert streams(target)["size"] == (WIDTH - 1, HEIGHT - 1) and streams(target)["frames"] == 3


def test_short_shots_come_out_whole_and_in_order(colorizer):
    photos = [skdata.astronaut(), skdata.coffee(), skdata.chelsea(), skdata.rocket()]
    frames = panned(photos[0], 1) + panned(photos[1], 1) + panned(photos[2], 3) + panned(photos[3], 5)
    film = FilmColorizer(colorizer)
    outputs = list(film.frames(Frame(f, pts=i, time_base=Fraction(1, 24)) for i, f in enumerate(frames)))
    assert film.cuts == [1, 2, 5]
    assert [o.pts for o in outputs] == list(range(10))
    lightness_in = [skcolor.rgb2lab(f)[..., 0].mean() for f in frames]
    lightness_out = [skcolor.rgb2lab(o.rgb)[..., 0].mean() for o in outputs]
    assert np.allclose(lightness_in, lightness_out, atol=1.0)  # each output frame is its own input's


def test_a_writing_error_is_one_line_and_leaves_no_output(monkeypatch, capsys, tmp_path, astronaut_pan):
    from cunet import video_io

    source, target = tmp_path / "old.mp4", tmp_path / "colour.mp4"
    write_video(source, astronaut_pan)
    original = video_io._VideoWriter.write

    def failing(self, frame):
        if self.frames == 4:
            raise OSError(28, "No space left on device")
        original(self, frame)

    monkeypatch.setattr(video_io._VideoWriter, "write", failing)
    code, _, err = run(monkeypatch, capsys, "video", source, "-o", target)
    last = err.strip().splitlines()[-1]  # after the progress bar, which had started
    assert code == 2 and "Traceback" not in err
    assert last == "error: 'colour.mp4': writing failed after 4 frames (No space left on device); nothing written"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.mp4"]


def test_a_folder_at_a_fractional_rate_becomes_a_video_at_that_rate(monkeypatch, capsys, tmp_path, astronaut_pan):
    folder, target = tmp_path / "frames", tmp_path / "film.mp4"
    folder.mkdir()
    for index, frame in enumerate(astronaut_pan[:4]):
        Image.fromarray(frame).save(folder / f"f{index + 1}.png")  # f1 .. f4: in number order, not f1, f10
    code, _, err = run(monkeypatch, capsys, "video", folder, "-o", target, "--fps", "29.97")
    assert code == 0, err
    assert streams(target)["rate"] == Fraction(2997, 100) and streams(target)["frames"] == 4


def test_frames_are_read_in_number_order(tmp_path, astronaut_pan):
    for index in (1, 2, 10):
        Image.fromarray(astronaut_pan[0]).save(tmp_path / f"f{index}.png")
    assert [p.name for p in VideoSource(tmp_path)._files] == ["f1.png", "f2.png", "f10.png"]


def test_two_frames_of_one_name_are_refused(tmp_path, astronaut_pan):
    Image.fromarray(astronaut_pan[0]).save(tmp_path / "a.png")
    Image.fromarray(astronaut_pan[0]).save(tmp_path / "a.jpg")
    with pytest.raises(CunetError, match="share a name"):
        VideoSource(tmp_path)


def test_fps_with_a_video_is_noted_and_the_video_keeps_its_rate(monkeypatch, capsys, tmp_path, astronaut_pan):
    source, target = tmp_path / "old.mp4", tmp_path / "colour.mp4"
    write_video(source, astronaut_pan[:5], rate=25, audio=False)
    code, _, err = run(monkeypatch, capsys, "video", source, "-o", target, "--fps", "10")
    assert code == 0, err
    assert "a video keeps its own rate" in err and streams(target)["rate"] == Fraction(25)


@pytest.mark.parametrize("option,reason", [("--no-palette", "--no-palette makes no shot palette"),
                                           ("--reference", "the reference's colours guide every shot")])
def test_a_palette_source_that_nothing_uses_is_noted(monkeypatch, capsys, tmp_path, astronaut, astronaut_pan,
                                                     tiny_model_file, option, reason):
    """Even with a model that has no histogram head to predict a palette from."""
    source, target = tmp_path / "old.mp4", tmp_path / "colour.mp4"
    write_video(source, astronaut_pan[:3], rate=25, audio=False)
    Image.fromarray(astronaut).save(tmp_path / "reference.png")
    extra = [option] if option == "--no-palette" else [option, tmp_path / "reference.png"]
    code, _, err = run(monkeypatch, capsys, "video", source, "-o", target, "--palette-from", "predicted", *extra,
                       "--model", tiny_model_file)
    assert code == 0, err
    assert f"note: --palette-from predicted is ignored: {reason}" in err and streams(target)["frames"] == 3


def test_an_existing_file_without_a_suffix_is_refused_before_any_work(monkeypatch, capsys, tmp_path):
    (tmp_path / "out").write_text("not a folder")
    code, _, err = run(monkeypatch, capsys, "video", tmp_path / "missing.mp4", "-o", tmp_path / "out")
    assert_one_line_error(code, err, "is a file without a suffix")


def test_webm_output_re_encodes_44_khz_sound_to_opus(monkeypatch, capsys, tmp_path, astronaut_pan):
    source, target = tmp_path / "old.mp4", tmp_path / "colour.webm"
    write_video(source, astronaut_pan[:6], sample_rate=44100)
    code, _, err = run(monkeypatch, capsys, "video", source, "-o", target)
    assert code == 0, err
    info = streams(target)
    assert info["frames"] == 6 and info["audio"] == "opus" and info["audio_seconds"] > 0.2
