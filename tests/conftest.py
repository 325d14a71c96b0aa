"""Shared fixtures: real photos from scikit-image, synthetic colour photos, a tiny model file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage import data as skdata

from cunet.checkpoint import save_weights
from cunet.gamut import num_bins
from cunet.model import CUNet, CUNetConfig


def colour_field(seed: int, height: int = 48, width: int = 64) -> np.ndarray:
    """A smooth, clearly coloured uint8 (H, W, 3) image: random colour gradients plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    channels = [
        np.clip(0.5 + 0.4 * np.sin(2 * np.pi * (rng.random() * xx + rng.random() * yy) + rng.random() * 6), 0, 1)
        for _ in range(3)
    ]
    image = np.stack(channels, axis=-1) + rng.normal(0, 0.02, (height, width, 3))
    return (np.clip(image, 0, 1) * 255).astype(np.uint8)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    """A real colour photo of a person (NASA, public domain), 512x512, uint8 RGB."""
    return skdata.astronaut()


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """A folder of 24 synthetic colour photos plus a manifest with a train/val split."""
    folder = tmp_path / "photos"
    folder.mkdir()
    lines = ["file,split"]
    for i in range(24):
        Image.fromarray(colour_field(i)).save(folder / f"p{i:02d}.png")
        lines.append(f"p{i:02d}.png,{'val' if i % 6 == 0 else 'train'}")
    (folder / "manifest.csv").write_text("\n".join(lines) + "\n")
    return folder


@pytest.fixture(scope="session")
def tiny_model_file(tmp_path_factory) -> Path:
    """A randomly initialised width-4 CU-net saved as a weights file (fast, for pipeline tests)."""
    torch.manual_seed(0)
    model = CUNet(CUNetConfig(width=4, activation="relu", global_bins=num_bins()))
    path = tmp_path_factory.mktemp("model") / "tiny.safetensors"
    save_weights(path, model.eval(), {"working_size": 64})
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (from CUNET_DATA); tests that need it skip without it."""
    root = os.environ.get("CUNET_DATA")
    if not root or not (Path(root) / "people" / "manifest.csv").is_file():
        pytest.skip("CUNET_DATA not set: real-photo tests skipped")
    return Path(root)


@pytest.fixture(scope="session")
def head_model_file(tmp_path_factory) -> Path:
    """A tiny random model with a distribution head and spread-hint inputs."""
    torch.manual_seed(1)
    model = CUNet(CUNetConfig(width=4, activation="relu", global_bins=num_bins(), distribution_head=True,
                              propagated_hints=True))
    path = tmp_path_factory.mktemp("head") / "head.safetensors"
    save_weights(path, model.eval(), {"working_size": 32, "decode": {"method": "blend", "temperature": 0.5,
                                                                     "blend": 0.25}})
    return path


def colour_gallery(folder: Path, count: int) -> tuple[Path, list[Path]]:
    """A luminance-only gallery of `count` synthetic colour photos (`colour_field`), saved in `folder`:
    (the .gallery file, the photos)."""
    from cunet.gallery import build_gallery

    paths = []
    for seed in range(count):
        paths.append(folder / f"g{seed}.png")
        Image.fromarray(colour_field(seed)).save(paths[-1])
    gallery, _ = build_gallery(None, paths, working_size=32, progress=False)
    gallery.save(folder / f"{count}.gallery")
    return folder / f"{count}.gallery", paths
