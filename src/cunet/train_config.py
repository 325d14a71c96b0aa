"""What a training run is: its options and how users simulate hints, checked completely on creation.

Kept apart from `train.py` (and free of torch at import) so that the CLI can show every default in
`cunet train --help` without loading PyTorch, and so that a bad option is refused before a run
folder exists or any photo is read.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

from cunet.errors import CunetError
from cunet.sources import FACE_CROP_SOURCES

_TYPES = {"int": int, "float": float, "bool": bool, "str": str, "None": type(None)}


def _check_types(instance, where: str) -> None:
    """Each simple field (int, float, bool, str, optional) holds a value of its annotated type:
    a TOML `steps = "1000"` or `distribution_head = 1` is an error, not a surprise later."""
    for item in fields(instance):
        names = [name.strip() for name in str(item.type).split("|")]
        if not all(name in _TYPES for name in names):
            continue
        value = getattr(instance, item.name)
        allowed = {_TYPES[name] for name in names}
        if float in allowed:
            allowed.add(int)
        ok = any(isinstance(value, kind) and not (isinstance(value, bool) and kind is not bool) for kind in allowed)
        if isinstance(value, float) and not math.isfinite(value):
            ok = False
        if not ok:
            raise CunetError(f"{where}{item.name} must be {' or '.join(names)}, got {value!r}")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise CunetError(message)


@dataclass(frozen=True)
class HintSimulation:
    """How training simulates users from the ground truth (SPEC.md section 3)."""

    point_probability: float = 1 / 8  # geometric: P(n points) = (1 - p)^n p, so 1/8 of images get none
    max_points: int = 64
    # A share of images instead gets a dense count, uniform in [dense_min, dense_max]: the geometric
    # law almost never shows 50 points, where classical propagation is at its best.
    dense_probability: float = 0.0
    dense_min: int = 20
    dense_max: int = 100
    max_patch: int = 9
    histogram_probability: float = 0.5
    saturation_probability: float = 0.25

    def __post_init__(self) -> None:
        _check_types(self, "[hints] ")
        _require(0 < self.point_probability <= 1, "[hints] point_probability must lie in (0, 1]")
        for name in ("dense_probability", "histogram_probability", "saturation_probability"):
            _require(0 <= getattr(self, name) <= 1, f"[hints] {name} must lie in [0, 1]")
        _require(self.max_points >= 0, "[hints] max_points must be >= 0")
        _require(0 <= self.dense_min <= self.dense_max, "[hints] need 0 <= dense_min <= dense_max")
        _require(1 <= self.max_patch <= 9, "[hints] max_patch must lie in 1..9")


_POSITIVE = ("crop", "cache_short_side", "batch_size", "steps", "checkpoint_every", "log_every", "lr", "huber_delta")
_AT_LEAST_ZERO = ("warmup_steps", "weight_decay", "ce_weight", "chroma_weight", "prior_sigma", "threads", "val_limit", "val_points")


@dataclass
class TrainConfig:
    """One training run. Every field can come from a TOML file and be overridden by a CLI flag."""

    data: str | list[str] = ""  # one or several manifest.csv files or photo folders
    source_weights: dict[str, float] = field(default_factory=dict)  # empty: every photo equally likely
    out_dir: str = "runs/cunet"
    preset: str = "small"
    width: int | None = None
    activation: str | None = None
    norm_position: str | None = None
    distribution_head: bool = False
    propagated_hints: bool = False
    crop: int = 128
    cache_short_side: int = 144
    batch_size: int = 16
    steps: int = 18000
    stop_after: int | None = None
    stop_after_seconds: float | None = None  # stop (validate, checkpoint) once training took this long in all
    lr: float = 1e-3
    min_lr_ratio: float = 0.05
    warmup_steps: int = 300
    weight_decay: float = 1e-4
    loss: str = "huber"
    huber_delta: float = 6.0
    ce_weight: float = 0.0
    chroma_weight: float = 0.0  # x the chroma deficit (`losses.chroma_deficit`): photos no less colourful than true
    rebalance_mix: float = 0.5  # lambda of Zhang et al. 2016: prior mixed with uniform; 1 = no rebalancing
    prior_sigma: float = 5.0  # Gaussian smoothing of the empirical a*b* prior, in a*b* units
    annealed_temperature: float = 0.38  # validation decodes the distribution head this way too
    precision: str = "auto"
    device: str = "auto"
    channels_last: bool = True
    seed: int = 0
    threads: int = 0
    checkpoint_every: int = 250
    log_every: int = 25
    val_limit: int = 128  # validation photos per source, spread over its val split
    val_every: int | None = None  # steps between validations; None = once an epoch
    val_points: int = 10
    # Sources left out of validation's headline macro (face crops gain far more than anything else);
    # they keep their own rows in the log.
    exclude_from_headline: list[str] = field(default_factory=lambda: list(FACE_CROP_SOURCES))
    init_from: str | None = None  # weights to start a fresh run from (fine-tuning); ignored when resuming
    # init_from is an earlier stage of this very run (its export, when the checkpoint is lost): go on
    # at its step and training time, so the schedule and --stop-after-minutes continue; AdamW restarts.
    init_continues: bool = False
    hints: HintSimulation = field(default_factory=HintSimulation)

    def __post_init__(self) -> None:
        if isinstance(self.hints, dict):
            unknown = set(self.hints) - {f.name for f in fields(HintSimulation)}
            if unknown:
                raise CunetError(f"unknown [hints] options {sorted(unknown)}")
            self.hints = HintSimulation(**self.hints)
        _require(isinstance(self.hints, HintSimulation), "hints must be a [hints] table")
        if not isinstance(self.data, (str, list)) or (isinstance(self.data, list) and
                                                       not all(isinstance(d, str) for d in self.data)):
            raise CunetError("data must be a path or a list of paths")
        _require(isinstance(self.exclude_from_headline, list) and all(isinstance(s, str) for s in self.exclude_from_headline),
                 "exclude_from_headline must be a list of source names")
        if not isinstance(self.source_weights, dict) or not all(
                isinstance(w, numbers.Real) and not isinstance(w, bool) for w in self.source_weights.values()):
            raise CunetError("source_weights must be a table of source = weight")
        _check_types(self, "")
        for name in _POSITIVE:
            _require(getattr(self, name) > 0, f"{name} must be > 0, got {getattr(self, name)}")
        for name in _AT_LEAST_ZERO:
            _require(getattr(self, name) >= 0, f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("val_every", "width"):
            value = getattr(self, name)
            _require(value is None or value > 0, f"{name} must be > 0, got {value}")
        for name in ("stop_after", "stop_after_seconds"):  # 0: validate and checkpoint, train no further
            value = getattr(self, name)
            _require(value is None or value >= 0, f"{name} must be >= 0, got {value}")
        _require(0 <= self.min_lr_ratio <= 1, "min_lr_ratio must lie in [0, 1]")
        _require(0 <= self.rebalance_mix <= 1, "rebalance_mix must lie in [0, 1]")
        _require(0 < self.annealed_temperature <= 1, "annealed_temperature must lie in (0, 1]")
        _require(self.ce_weight == 0 or self.distribution_head, "ce_weight > 0 needs distribution_head = true")
        _require(not self.init_continues or self.init_from, "init_continues needs init_from")
        _require(self.loss in ("huber", "l2"), f"loss must be 'huber' or 'l2', got {self.loss!r}")
        _require(self.precision in ("auto", "bf16", "fp32"), f"precision must be auto, bf16 or fp32, got {self.precision!r}")
        _require(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
                 f"device must be auto, cpu or cuda, got {self.device!r}")
        _require(self.crop % 8 == 0 and self.crop >= 16, f"crop must be a multiple of 8 and at least 16, got {self.crop}")
        _require(self.cache_short_side >= self.crop, "cache_short_side must be at least crop")
        self.model_config()

    @classmethod
    def from_toml(cls, path: str | Path, **overrides) -> TrainConfig:
        try:
            values = tomllib.loads(Path(path).read_text())
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
            raise CunetError(f"{path}: cannot read training config ({error})") from None
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise CunetError(f"{path}: unknown training options {sorted(unknown)}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except CunetError as error:
            raise CunetError(f"{path}: {error}") from None

    def model_config(self):
        """The CUNetConfig this run trains (checked: a bad activation or width is a CunetError)."""
        from cunet.gamut import num_bins  # lazily: torch
        from cunet.model import PRESETS

        if self.preset not in PRESETS:
            raise CunetError(f"unknown preset {self.preset!r}; choose from {sorted(PRESETS)}")
        changes = {
            key: getattr(self, key) for key in ("width", "activation", "norm_position") if getattr(self, key) is not None
        }
        try:
            return replace(PRESETS[self.preset], global_bins=num_bins(), distribution_head=self.distribution_head,
                           propagated_hints=self.propagated_hints, **changes)
        except ValueError as error:
            raise CunetError(str(error)) from None

    @property
    def data_sources(self) -> list[str]:
        return [self.data] if isinstance(self.data, str) else list(self.data)

    def check_paths(self) -> None:
        """The files a run reads exist: checked before the run folder is made."""
        _require(bool(self.data_sources) and all(self.data_sources), "give data: a manifest.csv or a folder of photos")
        for source in self.data_sources:
            _require(Path(source).exists(), f"{source}: no such data (a manifest.csv or a folder of photos)")
