"""Reading and writing films: any video FFmpeg reads (PyAV, whose wheels carry FFmpeg) or a folder of
frames in; MP4/MOV/MKV (H.264) or WebM (VP9) or a folder of PNG frames out.

Streaming: one decoded frame at a time comes in and goes out, so memory does not grow with the
film's length. The audio stream is copied packet by packet (re-encoded only where the output
container cannot hold its codec), and each video frame keeps its own timestamp, so sound and picture
stay in step and the output has the input's frame rate and length. Writes are atomic: the film goes
to a temporary file (or folder) beside the target, renamed into place only when complete.
"""

from __future__ import annotations

import os
import re
import shutil
import struct
import tempfile
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from cunet.errors import CunetError
from cunet.fields import shorten
from cunet.io import IMAGE_SUFFIXES, load_rgb8, save_image_atomic

#: Output container per suffix (FFmpeg's format name) and the video encoder it gets.
VIDEO_FORMATS = {".mp4": ("mp4", "libx264"), ".m4v": ("mp4", "libx264"), ".mov": ("mov", "libx264"),
                 ".mkv": ("matroska", "libx264"), ".webm": ("webm", "libvpx-vp9")}
VIDEO_TYPES = ".mp4, .m4v, .mov, .mkv or .webm"
#: Audio codecs each container holds as they are; any other is re-encoded to the second item.
AUDIO_COPYABLE = {"mp4": ({"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"}, "aac"),
                  "mov": ({"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le"}, "aac"),
                  "webm": ({"opus", "vorbis"}, "libopus")}
#: Frames per second of a folder of frames, unless said otherwise.
FOLDER_RATE = Fraction(25)
#: H.264 quality: visually lossless for colour that is smooth by construction; one encoder thread,
#: as the network and the join already keep two cores busy (benchmarks/video.py: faster than x264's own
#: threads on this 2-core machine).
X264_OPTIONS = {"crf": "17", "preset": "veryfast", "threads": "1"}


@dataclass(frozen=True)
class Frame:
    """One decoded frame: RGB (H, W, 3) uint8 and its timestamp (in `time_base` units; None in a folder)."""

    rgb: np.ndarray | None
    pts: int | None = None
    time_base: Fraction | None = None


def is_frame_folder_target(path: Path) -> bool:
    """Whether `-o` names a folder of frames rather than a video file: a folder, or a name without a suffix."""
    return path.is_dir() or not path.suffix


def check_video_target(path: Path) -> None:
    """A one-line error for an output the writer cannot make, before any frame is coloured."""
    if path.exists() and not path.is_dir() and not path.suffix:
        raise CunetError(f"{shorten(str(path))} is a file without a suffix; name a video (.mp4, ...) or a new "
                         f"folder for the frames")
    if is_frame_folder_target(path):
        if path.is_dir() and any(path.iterdir()):
            raise CunetError(f"{shorten(str(path))} is a folder that is not empty; name a new or empty folder "
                             f"for the frames")
        return
    if path.suffix.lower() not in VIDEO_FORMATS:
        raise CunetError(f"{shorten(path.name)}: cunet video writes {VIDEO_TYPES} (or a folder of frames)")


class VideoSource:
    """A film to read: a video file or a folder of frames. `frames()` yields `Frame`s in order."""

    def __init__(self, path: str | os.PathLike, rate: Fraction | None = None):
        self.path = Path(path)
        self.name = shorten(self.path.name or str(self.path))
        self._container = None
        if self.path.is_dir():
            self._files = sorted((p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                                 key=_natural_order)
            if not self._files:
                raise CunetError(f"{self.name}: a folder without frames ({', '.join(sorted(IMAGE_SUFFIXES))})")
            stems: dict[str, str] = {}
            for file in self._files:
                if file.stem in stems:
                    raise CunetError(f"{self.name}: frames {stems[file.stem]!r} and {file.name!r} share a name; "
                                     f"a film's frames need one name each")
                stems[file.stem] = file.name
            self.rate = _rate(rate) if rate else FOLDER_RATE
            self.frame_count = len(self._files)
            self.size = _image_size(self._files[0])
            self.audio = None
            self.orientation, self.sample_aspect = Orientation(), None
            return
        if not self.path.is_file():
            raise CunetError(f"{self.name}: no such file or folder")
        import av

        try:
            self._container = av.open(str(self.path))
        except (av.FFmpegError, UnicodeDecodeError, ValueError) as error:
            raise CunetError(f"{self.name}: not a video FFmpeg can read ({_ffmpeg_reason(error)})") from None
        if not self._container.streams.video:
            self.close()
            raise CunetError(f"{self.name}: has no video stream")
        # A cover picture (an attached still, as music files and some films carry) is not the film;
        # among the others, FFmpeg's own choice (it prefers a stream of many frames).
        films = [stream for stream in self._container.streams.video
                 if not stream.disposition & av.stream.Disposition.attached_pic]
        if not films:
            self.close()
            raise CunetError(f"{self.name}: has no video stream, only a cover picture")
        best = self._container.streams.best("video")
        self.video = best if best is not None and best.index in {film.index for film in films} else films[0]
        self.video.thread_type = "AUTO"
        self.audio = self._container.streams.audio[0] if self._container.streams.audio else None
        context = self.video.codec_context
        if not context.width or not context.height:
            self.close()
            raise CunetError(f"{self.name}: its video stream has no picture size")
        self.orientation = _orientation(self.path, self.video.index)
        upright = not self.orientation.transpose
        self.size = (context.width, context.height) if upright else (context.height, context.width)
        aspect = self.video.sample_aspect_ratio
        self.sample_aspect = None if not aspect or aspect == 1 else (aspect if upright else 1 / aspect)
        self.rate = self.video.average_rate or self.video.guessed_rate or FOLDER_RATE  # a video keeps its own
        self.frame_count = self.video.frames or _frames_from_duration(self.video, self.rate)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def frames(self, on_audio: Callable | None = None) -> Iterator[Frame]:
        """The frames in order; each audio packet met on the way goes to `on_audio` (to be muxed)."""
        if self._container is None:
            yield from self._folder_frames()
            return
        import av

        streams = [self.video] + ([self.audio] if self.audio is not None and on_audio is not None else [])
        index = 0
        packets = self._container.demux(*streams)
        while True:
            try:
                packet = next(packets, None)
                if packet is None:
                    break
                if packet.stream.type == "audio":
                    decoded_frames = ()
                else:
                    decoded_frames = [(self.orientation.apply(f.to_ndarray(format="rgb24")), f.pts, f.time_base)
                                      for f in packet.decode()]
            except (av.FFmpegError, ValueError) as error:
                raise CunetError(f"{self.name}: frame {index + 1} cannot be decoded ({_ffmpeg_reason(error)})") from None
            if packet.stream.type == "audio":
                if packet.dts is not None:
                    on_audio(packet)  # outside the try: a writing error is not a decoding one
                continue
            for rgb, pts, time_base in decoded_frames:
                index += 1
                yield Frame(rgb, pts, time_base)
        if index == 0:
            raise CunetError(f"{self.name}: holds no video frames")

    def _folder_frames(self) -> Iterator[Frame]:
        for path in self._files:
            rgb = load_rgb8(path)
            if (rgb.shape[1], rgb.shape[0]) != self.size:
                raise CunetError(f"{shorten(path.name)}: {rgb.shape[1]}x{rgb.shape[0]}, but the first frame is "
                                 f"{self.size[0]}x{self.size[1]}; a film's frames share one size")
            yield Frame(rgb)


def _natural_order(path: Path) -> list:
    """f2.png before f10.png: runs of digits compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", path.name)]


def _rate(value) -> Fraction:
    """A frame rate as a fraction with a small denominator: 29.97 -> 2997/100, 30000/1001 stays."""
    rate = Fraction(value).limit_denominator(1001)
    if rate <= 0:
        raise CunetError(f"a frame rate must be above 0, got {value!r}")
    return rate


@dataclass(frozen=True)
class Orientation:
    """How players show a stored picture (its display matrix: a phone's portrait film is stored on its
    side, a front camera's mirrored): transposed first, then its rows and/or columns reversed. Films
    are coloured as shown, so the network sees people upright and hints use what a user sees."""

    transpose: bool = False
    flip_rows: bool = False
    flip_columns: bool = False

    @classmethod
    def of_display_matrix(cls, matrix: tuple[int, ...]) -> Orientation:
        """From FFmpeg's 3x3 display matrix (row-major int32; a shown point is x' = a x + c y,
        y' = b x + d y plus a shift, with a, b, c, d = matrix[0], [1], [3], [4]). Quarter turns and
        mirrors only: a matrix that is neither (a tilt of some degrees) is shown as stored."""
        a, b, c, d = matrix[0], matrix[1], matrix[3], matrix[4]
        straight, crossed = max(abs(a), abs(d)), max(abs(b), abs(c))
        if straight and crossed <= 0.01 * straight and a and d:
            return cls(False, d < 0, a < 0)  # shown row = d y, column = a x
        if crossed and straight <= 0.01 * crossed and b and c:
            return cls(True, b < 0, c < 0)  # shown row = b x, column = c y
        return cls()

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        if self == Orientation():
            return rgb
        shown = rgb.transpose(1, 0, 2) if self.transpose else rgb
        shown = shown[::-1] if self.flip_rows else shown
        shown = shown[:, ::-1] if self.flip_columns else shown
        return np.ascontiguousarray(shown)


def _orientation(path: Path, index: int) -> Orientation:
    """The display orientation of stream `index`, from its first decoded frame (FFmpeg gives each
    frame the stream's display matrix), read in a second opening of the file so that the film itself
    is read once, from its start. As stored where there is none or the first frame cannot be read
    (the film's own decoding then says why)."""
    import av
    from av.sidedata.sidedata import Type

    try:
        with av.open(str(path)) as probe:
            for frame in probe.decode(probe.streams[index]):
                for data in frame.side_data:
                    if data.type == Type.DISPLAYMATRIX and len(bytes(data)) == 36:
                        return Orientation.of_display_matrix(struct.unpack("=9i", bytes(data)))
                return Orientation()
    except (av.FFmpegError, ValueError):
        pass
    return Orientation()


def _image_size(path: Path) -> tuple[int, int]:
    rgb = load_rgb8(path)
    return rgb.shape[1], rgb.shape[0]


def _frames_from_duration(stream, rate: Fraction) -> int:
    """The frame count a container does not state, from its duration (0 when unknown too)."""
    if stream.duration is None or stream.time_base is None:
        return 0
    return max(int(round(float(stream.duration * stream.time_base * rate))), 0)


def _ffmpeg_reason(error: Exception) -> str:
    """FFmpeg's own words for an error, without the file name it repeats."""
    text = getattr(error, "strerror", None) or str(error)
    return " ".join(str(text).split())[:120] or type(error).__name__


class _VideoWriter:
    """A video file being written to a temporary path; `commit` renames it into place."""

    def __init__(self, target: Path, size: tuple[int, int], rate: Fraction, audio=None, time_base: Fraction | None = None,
                 sample_aspect: Fraction | None = None):
        handle, temporary = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
        os.close(handle)
        self.temporary, self.target = Path(temporary), target
        self._output = None
        try:
            self._open(size, rate, audio, time_base, sample_aspect)
        except BaseException:
            self.abandon()
            raise

    def _open(self, size: tuple[int, int], rate: Fraction, audio, time_base: Fraction | None,
              sample_aspect: Fraction | None) -> None:
        import av

        format_name, codec = VIDEO_FORMATS[self.target.suffix.lower()]
        self._output = av.open(str(self.temporary), mode="w", format=format_name)
        self.video = self._output.add_stream(codec, rate=rate)
        if time_base is not None:  # each frame's own timestamp, exactly (variable frame rates too)
            self.video.codec_context.time_base = time_base
            self.video.time_base = time_base
        self.video.width, self.video.height = size
        if sample_aspect is not None:  # non-square pixels (DV, anamorphic DVD): shown at the source's shape
            self.video.codec_context.sample_aspect_ratio = sample_aspect
        odd = size[0] % 2 or size[1] % 2
        self.video.pix_fmt = "yuv444p" if odd else "yuv420p"  # 4:2:0 needs even sides
        self.video.options = dict(X264_OPTIONS) if codec == "libx264" else {"crf": "24", "b": "0", "deadline": "realtime",
                                                                            "cpu-used": "8", "row-mt": "1"}
        self._audio_in, self._audio_out, self._resample = audio, None, False
        if audio is not None:
            copyable, fallback = AUDIO_COPYABLE.get(format_name, (None, None))
            if copyable is None or audio.codec_context.name in copyable:
                self._audio_out = self._output.add_stream_from_template(audio)
            else:
                rate = 48000 if fallback == "libopus" else (audio.codec_context.sample_rate or 48000)  # Opus: 48 kHz
                self._audio_out = self._output.add_stream(fallback, rate=rate)
                self._resample = True
        self.frames = 0

    def audio_packet(self, packet) -> None:
        if self._audio_out is None:
            return
        if not self._resample:
            packet.stream = self._audio_out
            self._output.mux(packet)
            return
        for decoded in packet.decode():
            self._output.mux(self._audio_out.encode(decoded))

    def write(self, frame: Frame) -> None:
        import av

        picture = av.VideoFrame.from_ndarray(frame.rgb, format="rgb24")
        if frame.pts is not None:
            picture.pts, picture.time_base = frame.pts, frame.time_base
        else:
            picture.pts, picture.time_base = self.frames, 1 / self.video.codec_context.framerate
        self._output.mux(self.video.encode(picture))
        self.frames += 1

    def commit(self) -> None:
        self._output.mux(self.video.encode(None))
        if self._resample:
            for decoded in self._audio_in.codec_context.decode(None):  # the decoder's last frames
                self._output.mux(self._audio_out.encode(decoded))
            self._output.mux(self._audio_out.encode(None))
        self._output.close()
        os.replace(self.temporary, self.target)

    def abandon(self) -> None:
        try:
            if self._output is not None:
                self._output.close()
        except Exception:  # the file is being thrown away: a half-written container may not close cleanly
            pass
        self.temporary.unlink(missing_ok=True)


class _FolderWriter:
    """Frames written as numbered PNGs into a temporary folder; `commit` renames it into place."""

    def __init__(self, target: Path, names: list[str] | None = None, count: int = 0):
        target.parent.mkdir(parents=True, exist_ok=True)
        self.target = target
        self._digits = max(5, len(str(max(count - 1, 0))))  # names sort in frame order
        self.temporary = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
        self._names = names
        self.frames = 0

    def audio_packet(self, packet) -> None:
        """A folder of frames has no sound."""

    def write(self, frame: Frame) -> None:
        from PIL import Image

        name = f"{Path(self._names[self.frames]).stem}.png" if self._names else f"{self.frames:0{self._digits}d}.png"
        save_image_atomic(Image.fromarray(frame.rgb), self.temporary / name)
        self.frames += 1

    def commit(self) -> None:
        if self.target.is_dir():
            self.target.rmdir()  # checked empty before any work (check_video_target)
        os.replace(self.temporary, self.target)

    def abandon(self) -> None:
        shutil.rmtree(self.temporary, ignore_errors=True)


#: Frames (and their deferred work) queued for the writer thread at most: enough to ride out the
#: network's frames (every 4th takes ~4x as long) without the writer waiting; memory stays ~12 frames.
WRITE_AHEAD = 12


def transcode(source: VideoSource, target: Path, process: Callable[[Iterable[Frame]], Iterator],
              on_frame: Callable[[], None] | None = None) -> int:
    """Read `source`, run its frames through `process`, write `target` atomically with the source's
    audio; -> frames written. `process` is a 1:1, order-keeping generator of `Frame`s or of zero-argument
    callables that make one (the join): those run on the writer thread, with the encoding and muxing,
    while `process` works on the next frames. On any error or Ctrl+C the temporary output is removed
    and the error raised (a CunetError says how many frames were done)."""
    import av

    check_video_target(target)
    try:
        if is_frame_folder_target(target):
            names = [p.name for p in source._files] if source._container is None else None
            writer = _FolderWriter(target, names, source.frame_count)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            time_base = source.video.time_base if source._container is not None else None
            writer = _VideoWriter(target, source.size, source.rate, source.audio, time_base, source.sample_aspect)
    except (av.FFmpegError, OSError, ValueError, OverflowError) as error:
        source.close()
        raise CunetError(f"{shorten(target.name)}: cannot write it ({_ffmpeg_reason(error)})") from None

    def write(frame) -> None:
        writer.write(frame() if callable(frame) else frame)
        if on_frame is not None:
            on_frame()

    pending: deque = deque()
    thread = ThreadPoolExecutor(1, thread_name_prefix="cunet-write")

    def submit(task, *args) -> None:
        pending.append(thread.submit(task, *args))
        while len(pending) > WRITE_AHEAD or (pending and pending[0].done()):
            pending[0].result()  # the writer's errors surface here, in order
            pending.popleft()  # only once done: an interrupted wait leaves it for the shutdown below

    try:
        for frame in process(source.frames(on_audio=lambda packet: submit(writer.audio_packet, packet))):
            submit(write, frame)
        while pending:
            pending[0].result()
            pending.popleft()
        writer.commit()
    except CunetError as error:
        _stop(thread, pending)
        writer.abandon()
        raise CunetError(f"{error} (after {writer.frames} frames; nothing written)") from None
    except (av.FFmpegError, OSError) as error:
        _stop(thread, pending)
        writer.abandon()
        raise CunetError(f"{shorten(target.name)}: writing failed after {writer.frames} frames "
                         f"({_ffmpeg_reason(error)}); nothing written") from None
    except BaseException:
        _stop(thread, pending)
        writer.abandon()
        raise
    finally:
        thread.shutdown(wait=True)
        source.close()
    return writer.frames


def _stop(thread: ThreadPoolExecutor, pending: deque) -> None:
    """Cancel queued writes and wait for the running one, before the temporary output is removed."""
    thread.shutdown(wait=True, cancel_futures=True)
    pending.clear()
