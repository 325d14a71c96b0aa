from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cunet.checkpoint import load_model
from cunet.data import PhotoCache, list_photos
from cunet.errors import CunetError
from cunet.model import build_model
from cunet.train import LAST_CHECKPOINT, LOG_FILE, TrainConfig, export_weights, learning_rate, read_log, restore, train


def tiny_config(folder: Path, out: Path, **changes) -> TrainConfig:
    settings = dict(data=str(folder / "manifest.csv"), out_dir=str(out), width=4, crop=32, cache_short_side=40,
                    batch_size=4, steps=6, warmup_steps=2, checkpoint_every=2, log_every=1, val_limit=4,
                    precision="fp32", threads=1)
    settings.update(changes)
    return TrainConfig(**settings)


def _state(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_a_resumed_run_continues_from_the_same_step_with_the_same_state(photo_folder, tmp_path):
    straight = train(tiny_config(photo_folder, tmp_path / "straight"), progress=False)
    interrupted = tiny_config(photo_folder, tmp_path / "resumed", stop_after=3)
    train(interrupted, progress=False)
    from cunet.checkpoint import _read

    assert _read(tmp_path / "resumed" / LAST_CHECKPOINT)[1]["step"] == 3
    resumed = train(tiny_config(photo_folder, tmp_path / "resumed"), progress=False)
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    assert any(key.startswith("optim.") for key in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert _read(resumed)[1]["step"] == 6


def test_training_writes_a_log_with_validation_and_no_temp_files(photo_folder, tmp_path):
    train(tiny_config(photo_folder, tmp_path / "run"), progress=False)
    log = (tmp_path / "run" / LOG_FILE).read_text()
    assert '"event": "val"' in log and '"points10"' in log
    records = read_log(tmp_path / "run" / LOG_FILE)
    assert records[0]["event"] == "start" and records[-1]["event"] == "val" and len(records) == len(log.splitlines())
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [LAST_CHECKPOINT, LOG_FILE]


def test_bf16_training_step_is_finite(photo_folder, tmp_path):
    checkpoint = train(tiny_config(photo_folder, tmp_path / "bf16", precision="bf16", steps=2), progress=False)
    model, _ = load_model(checkpoint)
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_export_gives_a_weights_file_with_the_working_size(photo_folder, tmp_path):
    checkpoint = train(tiny_config(photo_folder, tmp_path / "run", steps=2), progress=False)
    export_weights(checkpoint, tmp_path / "w.safetensors")
    model, metadata = load_model(tmp_path / "w.safetensors")
    assert metadata["kind"] == "weights" and metadata["info"]["working_size"] == 32
    assert metadata["info"]["steps"] == 2
    assert model.config.width == 4


def test_learning_rate_warms_up_then_decays_to_the_floor():
    config = TrainConfig(lr=1e-3, warmup_steps=10, steps=110, min_lr_ratio=0.1)
    assert learning_rate(config, 0) == pytest.approx(1e-4)
    assert learning_rate(config, 9) == pytest.approx(1e-3)
    assert learning_rate(config, 60) == pytest.approx(0.55e-3)
    assert learning_rate(config, 110) == pytest.approx(1e-4)


def test_config_file_with_overrides_and_unknown_keys(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('data = "x.csv"\nsteps = 50\nlr = 0.002\n')
    config = TrainConfig.from_toml(path, steps=7, lr=None)
    assert (config.data, config.steps, config.lr) == ("x.csv", 7, 0.002)
    path.write_text("stepz = 5\n")
    with pytest.raises(CunetError, match="unknown training options"):
        TrainConfig.from_toml(path)


def test_gray_and_too_small_photos_are_dropped(tmp_path, photo_folder):
    gray = np.repeat(np.linspace(0, 255, 64 * 48).reshape(48, 64, 1), 3, axis=2).astype(np.uint8)
    Image.fromarray(gray).save(tmp_path / "gray.png")
    Image.new("RGB", (20, 20), (200, 20, 20)).save(tmp_path / "small.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    paths = [tmp_path / "gray.png", tmp_path / "small.png", tmp_path / "broken.jpg"] + list_photos(photo_folder, "train")
    cache = PhotoCache.build(paths, short_side=40, crop=32, progress=False)
    assert (cache.dropped_gray, cache.dropped_small, cache.dropped_unreadable) == (1, 1, 1)
    assert len(cache) == 20


def test_manifest_split_selection(photo_folder):
    assert len(list_photos(photo_folder, "train")) == 20
    assert len(list_photos(photo_folder / "manifest.csv", "val")) == 4
    assert len(list_photos(photo_folder)) == 24


def test_crops_are_reproducible_for_a_seed(photo_folder):
    cache = PhotoCache.build(list_photos(photo_folder, "train"), short_side=40, crop=32, progress=False)
    first = cache.random_crops(np.arange(4), 32, np.random.default_rng(5))
    assert first.shape == (4, 3, 32, 32) and first.dtype == torch.uint8
    assert torch.equal(first, cache.random_crops(np.arange(4), 32, np.random.default_rng(5)))


def test_asking_for_cuda_without_a_gpu_is_a_clear_error(photo_folder, tmp_path):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(CunetError, match="no CUDA GPU"):
        train(tiny_config(photo_folder, tmp_path / "run", device="cuda"), progress=False)


def test_a_fresh_run_can_start_from_exported_weights(photo_folder, tmp_path):
    first = train(tiny_config(photo_folder, tmp_path / "first", steps=2), progress=False)
    export_weights(first, tmp_path / "w.safetensors", half=False)
    config = tiny_config(photo_folder, tmp_path / "second", init_from=str(tmp_path / "w.safetensors"))
    model = build_model(config.model_config())
    optimizer = torch.optim.AdamW(model.parameters())
    assert restore(model, optimizer, config, tmp_path / "second" / LAST_CHECKPOINT) == (0, 0.0)
    exported, _ = load_model(tmp_path / "w.safetensors")
    for (name, a), b in zip(model.state_dict().items(), exported.state_dict().values()):
        assert torch.equal(a, b), name


def test_starting_from_weights_of_another_shape_is_a_clear_error(photo_folder, tmp_path):
    first = train(tiny_config(photo_folder, tmp_path / "first", steps=1), progress=False)
    export_weights(first, tmp_path / "w.safetensors")
    with pytest.raises(CunetError, match="differs from this run's"):
        train(tiny_config(photo_folder, tmp_path / "second", width=8, init_from=str(tmp_path / "w.safetensors")),
              progress=False)


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "configs").glob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_training_config_is_valid(path):
    config = TrainConfig.from_toml(path)
    build_model(config.model_config())
    assert config.out_dir.startswith("runs/") and config.data.endswith("manifest.csv")
