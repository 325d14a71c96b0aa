from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from cunet.checkpoint import load_model
from cunet.data import PhotoCache, list_labelled_photos, list_photos, sampling_probabilities
from cunet.errors import CunetError
from cunet.model import build_model
from cunet.train import (
    LAST_CHECKPOINT,
    LOG_FILE,
    TrainConfig,
    export_weights,
    learning_rate,
    read_log,
    restore,
    train,
    widen_weights,
)


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
    from cunet.checkpoint import read_tensors

    assert read_tensors(tmp_path / "resumed" / LAST_CHECKPOINT)[1]["step"] == 3
    resumed = train(tiny_config(photo_folder, tmp_path / "resumed"), progress=False)
    a, b = _state(straight), _state(resumed)
    assert a.keys() == b.keys()
    assert any(key.startswith("optim.") for key in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert read_tensors(resumed)[1]["step"] == 6


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


def test_a_lost_checkpoints_stage_export_continues_the_schedule_at_its_step(photo_folder, tmp_path):
    first = train(tiny_config(photo_folder, tmp_path / "first", steps=3), progress=False)
    export_weights(first, tmp_path / "stage1.safetensors")
    config = tiny_config(photo_folder, tmp_path / "second", steps=5, init_from=str(tmp_path / "stage1.safetensors"),
                         init_continues=True)
    model = build_model(config.model_config())
    step, seconds = restore(model, torch.optim.AdamW(model.parameters()), config, tmp_path / "second" / LAST_CHECKPOINT)
    assert step == 3 and seconds > 0
    train(config, progress=False)
    trains = [r for r in read_log(tmp_path / "second" / LOG_FILE) if r["event"] == "train"]
    assert [r["step"] for r in trains] == [4, 5]


def test_a_widened_checkpoint_goes_on_at_its_step_in_a_wider_run(photo_folder, tmp_path):
    first = train(tiny_config(photo_folder, tmp_path / "first", steps=3), progress=False)
    widen_weights(first, tmp_path / "wide.safetensors", width=6)
    config = tiny_config(photo_folder, tmp_path / "wide", steps=5, width=6, init_from=str(tmp_path / "wide.safetensors"),
                         init_continues=True)
    model = build_model(config.model_config())
    step, seconds = restore(model, torch.optim.AdamW(model.parameters()), config, tmp_path / "wide" / LAST_CHECKPOINT)
    assert step == 3 and seconds > 0 and model.config.width == 6
    _, metadata = load_model(tmp_path / "wide.safetensors")
    assert metadata["info"]["widened_from"] == {"width": 4, "seed": 0}
    assert metadata["info"]["train_config"]["width"] == 4


def test_continuing_needs_weights_to_continue_from():
    with pytest.raises(CunetError, match="init_continues needs init_from"):
        TrainConfig(init_continues=True)


def test_starting_from_weights_of_another_shape_is_a_clear_error(photo_folder, tmp_path):
    first = train(tiny_config(photo_folder, tmp_path / "first", steps=1), progress=False)
    export_weights(first, tmp_path / "w.safetensors")
    with pytest.raises(CunetError, match="differs from this run's"):
        train(tiny_config(photo_folder, tmp_path / "second", width=8, init_from=str(tmp_path / "w.safetensors")),
              progress=False)


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "configs").rglob("*.toml")), ids=lambda p: p.name)
def test_every_shipped_training_config_is_valid(path):
    config = TrainConfig.from_toml(path)
    build_model(config.model_config())
    assert config.out_dir.startswith(("runs/", "../runs/"))  # run folders stay out of the committed tree
    assert all(source.endswith("manifest.csv") for source in config.data_sources)


def two_source_manifest(photo_folder: Path) -> Path:
    """The photo folder's manifest with a `source` column: odd photos from 'street', even from 'faces'."""
    lines = ["file,source,split"]
    for i in range(24):
        lines.append(f"p{i:02d}.png,{'street' if i % 2 else 'faces'},{'val' if i % 6 in (0, 1) else 'train'}")
    manifest = photo_folder / "sources.csv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def test_photos_carry_the_source_of_their_manifest_row_or_their_folder(photo_folder, tmp_path):
    labelled = list_labelled_photos(two_source_manifest(photo_folder), "val")
    assert [(p.name, s) for p, s in labelled] == [("p00.png", "faces"), ("p01.png", "street"), ("p06.png", "faces"),
                                                  ("p07.png", "street"), ("p12.png", "faces"), ("p13.png", "street"),
                                                  ("p18.png", "faces"), ("p19.png", "street")]
    (tmp_path / "tree" / "scans").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "tree" / "scans" / "a.png")
    Image.new("RGB", (8, 8)).save(tmp_path / "tree" / "b.png")
    assert [s for _, s in list_labelled_photos(tmp_path / "tree")] == ["tree", "scans"]


def test_source_weights_set_each_sources_share_of_the_draws():
    labels = ["a"] * 30 + ["b"] * 10
    assert np.allclose(sampling_probabilities(labels), 1 / 40)
    probabilities = sampling_probabilities(labels, {"a": 1.0, "b": 3.0})
    assert probabilities[:30].sum() == pytest.approx(0.25) and probabilities[30:].sum() == pytest.approx(0.75)
    assert np.allclose(probabilities[:30], probabilities[0])


@pytest.mark.parametrize("weights, message", [({"a": 1.0}, "missing \\['b'\\]"), ({"a": 1, "b": 1, "c": 1}, "not in the data"),
                                              ({"a": -1, "b": 1}, ">= 0"), ({"a": 0, "b": 0}, "positive")])
def test_bad_source_weights_are_clear_errors(weights, message):
    with pytest.raises(CunetError, match=message):
        sampling_probabilities(["a", "b"], weights)


def test_a_run_over_weighted_sources_with_the_distribution_head_and_spread_hints(photo_folder, tmp_path):
    config = tiny_config(photo_folder, tmp_path / "run", data=[str(two_source_manifest(photo_folder))],
                         source_weights={"street": 3.0, "faces": 1.0}, distribution_head=True, ce_weight=1.0,
                         propagated_hints=True, hints={"dense_probability": 0.5, "dense_min": 4, "dense_max": 8})
    checkpoint = train(config, progress=False)
    model, _ = load_model(checkpoint)
    assert model.config.distribution_head and model.config.propagated_hints and model.config.input_channels == 7
    records = read_log(tmp_path / "run" / LOG_FILE)
    assert records[0]["source_shares"] == {"faces": pytest.approx(0.25), "street": pytest.approx(0.75)}
    last = records[-1]
    assert last["event"] == "val" and set(last["by_source"]) == {"faces", "street"}
    for key in ("gray", "auto", "points10", "auto_annealed", "colorfulness_auto", "colorfulness_annealed"):
        assert last[key] == pytest.approx((last["by_source"]["faces"][key] + last["by_source"]["street"][key]) / 2)


def test_validation_headlines_the_macro_without_face_crops_and_keeps_every_source(photo_folder, tmp_path):
    config = tiny_config(photo_folder, tmp_path / "run", data=[str(two_source_manifest(photo_folder))],
                         exclude_from_headline=["faces"])
    train(config, progress=False)
    last = read_log(tmp_path / "run" / LOG_FILE)[-1]
    assert last["headline_sources"] == ["street"] and set(last["by_source"]) == {"faces", "street"}
    for key in ("gray", "auto", "points10"):
        assert last[key] == pytest.approx(last["by_source"]["street"][key])
        assert last["macro_all"][key] == pytest.approx(
            (last["by_source"]["faces"][key] + last["by_source"]["street"][key]) / 2)


def test_a_run_with_the_chroma_term_trains_and_logs(photo_folder, tmp_path):
    train(tiny_config(photo_folder, tmp_path / "run", chroma_weight=0.5), progress=False)
    records = read_log(tmp_path / "run" / LOG_FILE)
    assert records[0]["config"]["chroma_weight"] == 0.5 and records[-1]["event"] == "val"


def test_training_stops_on_its_time_budget_and_validates_there(photo_folder, tmp_path):
    train(tiny_config(photo_folder, tmp_path / "run", steps=1000, stop_after_seconds=0.0), progress=False)
    records = read_log(tmp_path / "run" / LOG_FILE)
    assert records[-1]["event"] == "val" and records[-1]["step"] == 1


@pytest.mark.parametrize("changes, message", [(dict(ce_weight=1.0), "needs distribution_head"),
                                              (dict(hints={"dense_chance": 0.5}), "unknown \\[hints\\] options"),
                                              (dict(data=3), "data must be")])
def test_inconsistent_training_options_are_refused_before_any_work(changes, message):
    with pytest.raises(CunetError, match=message):
        TrainConfig(**{"data": "x.csv", **changes})


def test_a_checkpoint_written_before_a_model_option_existed_still_resumes(photo_folder, tmp_path):
    from cunet.checkpoint import read_tensors, write_tensors

    checkpoint = train(tiny_config(photo_folder, tmp_path / "run", steps=2), progress=False)
    tensors, metadata = read_tensors(checkpoint)
    del metadata["model_config"]["histogram_head"]  # as checkpoints were written before the histogram head
    write_tensors(checkpoint, tensors, metadata)
    train(tiny_config(photo_folder, tmp_path / "run", steps=4), progress=False)
    assert [r["step"] for r in read_log(tmp_path / "run" / LOG_FILE) if r["event"] == "train"][-1] == 4


def test_stopping_after_no_steps_validates_the_weights_it_starts_from(photo_folder, tmp_path):
    first = train(tiny_config(photo_folder, tmp_path / "first", steps=2), progress=False)
    export_weights(first, tmp_path / "w.safetensors")
    train(tiny_config(photo_folder, tmp_path / "look", stop_after=0, init_from=str(tmp_path / "w.safetensors")),
          progress=False)
    records = read_log(tmp_path / "look" / LOG_FILE)
    assert [r["event"] for r in records] == ["start", "val"] and records[-1]["step"] == 0
    assert (tmp_path / "look" / LAST_CHECKPOINT).is_file()
