"""Weights, checkpoints and galleries are checked before they are trusted: crafted metadata, tensors
of the wrong name, shape, dtype or value, and galleries of inconsistent lengths each give one
`error:` line naming the file and the field (exit 2), never a traceback or an allocation the
file asks for. A Hypothesis fuzz of the metadata and the tensors holds the same property."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors import safe_open
from safetensors.torch import save

from cunet.checkpoint import load_model
from cunet.colorizer import Colorizer
from cunet.errors import CunetError
from cunet.gallery import Gallery
from tests.conftest import colour_gallery
from tests.test_cli import assert_one_line_error, gray_photo, run  # noqa: F401 (gray_photo: a fixture)
from tests.test_fuzz import json_values

FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def contents(path: Path) -> tuple[dict[str, torch.Tensor], dict]:
    with safe_open(str(path), framework="pt") as handle:
        return {key: handle.get_tensor(key) for key in handle.keys()}, json.loads(handle.metadata()["cunet"])


def write(path: Path, tensors: dict[str, torch.Tensor], metadata=None, raw: str | None = None) -> Path:
    """A cunet safetensors file with these tensors and this metadata (or this raw metadata text)."""
    text = raw if raw is not None else json.dumps(metadata)
    path.write_bytes(save({k: v.contiguous() for k, v in tensors.items()}, metadata={"format": "cunet", "cunet": text}))
    return path


@pytest.fixture(scope="module")
def tiny_gallery(tmp_path_factory) -> Path:
    return colour_gallery(tmp_path_factory.mktemp("gallery"), 5)[0]


def test_broken_metadata_json_names_the_file(tiny_model_file, tmp_path):
    tensors, _ = contents(tiny_model_file)
    bad = write(tmp_path / "bad.safetensors", tensors, raw="{oops")
    with pytest.raises(CunetError, match=r"bad\.safetensors: metadata is not valid JSON"):
        load_model(bad)


@pytest.mark.parametrize("command", [["colorize", "{photo}", "-o", "{out}", "--model", "{file}"],
                                     ["suggest", "{photo}", "--at", "3,3", "--model", "{file}"],
                                     ["colorize", "{photo}", "-o", "{out}", "--variants", "2", "--gallery", "{file}"],
                                     ["gallery", "info", "{file}"]])
def test_broken_metadata_is_one_error_line_for_every_command(monkeypatch, capsys, gray_photo, tiny_model_file,
                                                             tmp_path, command):
    tensors, _ = contents(tiny_model_file)
    bad = write(tmp_path / "bad.safetensors", tensors, raw="{oops")
    args = [part.format(photo=gray_photo, out=tmp_path / "out.png", file=bad) for part in command]
    code, _, err = run(monkeypatch, capsys, *args)
    assert_one_line_error(code, err, "bad.safetensors: metadata is not valid JSON")
    assert not (tmp_path / "out.png").exists()


def test_the_studio_refuses_broken_weights_before_serving(monkeypatch, capsys, tiny_model_file, tmp_path):
    tensors, _ = contents(tiny_model_file)
    bad = write(tmp_path / "bad.safetensors", tensors, raw="{oops")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    code, _, err = run(monkeypatch, capsys, "studio", "--port", port, "--model", bad)
    assert_one_line_error(code, err, "bad.safetensors: metadata is not valid JSON")


@pytest.mark.parametrize("metadata, message", [
    ([], "metadata must be a JSON object, got []"),
    ({"kind": "weights"}, "model_config is missing"),
    ({"kind": "weights", "model_config": {"width": 100000}}, "model_config: width must be from 1 to 256, got 100000"),
    ({"kind": "weights", "model_config": {"width": True}}, "model_config: width must be a whole number, got True"),
    ({"kind": "weights", "model_config": {"width": 4, "global_bins": 10**9}}, "global_bins must be from 0 to 4096"),
    ({"kind": "weights", "model_config": {"width": 4, "depth": 3}}, "unknown model config keys: ['depth']"),
    ({"kind": "weights", "model_config": []}, "model_config must be a JSON object"),
    ({"kind": "model", "model_config": {"width": 4}}, "kind must be one of 'weights', 'checkpoint', got 'model'"),
    ({"kind": "checkpoint", "model_config": {"width": 4}, "step": -1}, "step must be a whole number from 0"),
])
def test_bad_metadata_names_the_field(tiny_model_file, tmp_path, metadata, message):
    tensors, _ = contents(tiny_model_file)
    with pytest.raises(CunetError) as error:
        load_model(write(tmp_path / "bad.safetensors", tensors, metadata))
    assert message in str(error.value) and str(error.value).startswith(str(tmp_path / "bad.safetensors"))


def test_a_huge_width_is_refused_before_any_allocation(monkeypatch, tiny_model_file, tmp_path):
    import cunet.checkpoint

    tensors, metadata = contents(tiny_model_file)
    metadata["model_config"]["width"] = 100000
    monkeypatch.setattr(cunet.checkpoint, "CUNet", lambda config: pytest.fail("a model was built"))
    with pytest.raises(CunetError, match="width must be from 1 to 256"):
        load_model(write(tmp_path / "wide.safetensors", tensors, metadata))


@pytest.mark.parametrize("change, message", [
    (lambda t: t.pop("conv1.0.0.weight"), "tensor conv1.0.0.weight is missing"),
    (lambda t: t.update(extra=torch.zeros(2)), "tensor 'extra' does not belong to a model of this config"),
    (lambda t: t.update({"conv1.0.0.weight": torch.zeros(3, 3)}), "tensor 'conv1.0.0.weight' has shape (3, 3), expected"),
    (lambda t: t.update({"conv1.0.0.weight": t["conv1.0.0.weight"].to(torch.uint8)}), "has dtype U8, expected"),
    (lambda t: t["conv1.0.0.weight"].view(-1).__setitem__(0, float("nan")), "tensor 'conv1.0.0.weight' holds NaN"),
    (lambda t: t["out.weight"].view(-1).__setitem__(-1, float("inf")), "tensor 'out.weight' holds NaN or infinite"),
])
def test_tensors_are_checked_against_the_config(tiny_model_file, tmp_path, change, message):
    tensors, metadata = contents(tiny_model_file)
    tensors = {key: value.clone() for key, value in tensors.items()}
    change(tensors)
    with pytest.raises(CunetError) as error:
        load_model(write(tmp_path / "bad.safetensors", tensors, metadata))
    assert message in str(error.value)


@pytest.mark.parametrize("change, message", [
    (lambda t: t.update({"out.weight": torch.full_like(t["out.weight"], 1e300, dtype=torch.float64)}),
     "tensor 'out.weight' holds values beyond ±1e+06"),
    (lambda t: t.update({"conv1.0.1.running_var": -torch.ones_like(t["conv1.0.1.running_var"])}),
     "tensor 'conv1.0.1.running_var' holds negative variances"),
    (lambda t: t.update({"conv1.0.0.weight": torch.full_like(t["conv1.0.0.weight"], 3e38, dtype=torch.float32)}),
     "tensor 'conv1.0.0.weight' holds values beyond ±1e+06"),
])
def test_weights_that_are_finite_in_the_file_but_not_in_use_are_refused(tiny_model_file, tmp_path, change, message):
    tensors, metadata = contents(tiny_model_file)
    change(tensors)
    with pytest.raises(CunetError) as error:
        load_model(write(tmp_path / "bad.safetensors", tensors, metadata))
    assert message in str(error.value)


def test_weights_whose_network_overflows_give_an_error_not_a_picture(monkeypatch, capsys, gray_photo, tiny_model_file,
                                                                     tmp_path):
    tensors, metadata = contents(tiny_model_file)
    tensors = {key: value.float() * (9e5 / max(1e-6, float(value.float().abs().max())))
               if value.is_floating_point() and "running_var" not in key else value for key, value in tensors.items()}
    bad = write(tmp_path / "loud.safetensors", tensors, metadata)
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "out.png", "--model", bad)
    assert_one_line_error(code, err, "loud.safetensors: the network gave NaN or infinite colours; its weights are broken")
    assert not (tmp_path / "out.png").exists()


def test_a_config_too_wide_for_its_tensors_is_refused_without_building_it(monkeypatch, tiny_model_file, tmp_path):
    import cunet.checkpoint

    tensors, metadata = contents(tiny_model_file)
    metadata["model_config"]["width"] = 256
    built = []
    real = cunet.checkpoint.CUNet
    monkeypatch.setattr(cunet.checkpoint, "CUNet", lambda config: built.append(torch.empty(0).device) or real(config))
    with pytest.raises(CunetError, match=r"has shape \(4, 4, 3, 3\), expected \(256, 4, 3, 3\)"):
        load_model(write(tmp_path / "wide.safetensors", tensors, metadata))
    assert [device.type for device in built] == ["meta"]


def test_nan_weights_write_no_picture(monkeypatch, capsys, gray_photo, tiny_model_file, tmp_path):
    tensors, metadata = contents(tiny_model_file)
    tensors["out.bias"] = torch.full_like(tensors["out.bias"], float("nan"))
    bad = write(tmp_path / "nan.safetensors", tensors, metadata)
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "out.png", "--model", bad)
    assert_one_line_error(code, err, "tensor 'out.bias' holds NaN or infinite values")
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize("info, message", [
    ({"working_size": "big"}, "info.working_size must be a whole number from 16 to 1,024, got 'big'"),
    ({"decode": {"blend": "x"}}, "info.decode.blend must be a number from 0 to 1, got 'x'"),
    ({"decode": {"gain": 4}}, "info.decode.gain must be a number from 0 to 3, got 4"),
    ({"decode": {"gain": 0}}, "chroma gain must lie in (0, 3], got 0.0"),
    ({"decode": []}, "info.decode must be a JSON object"),
    ({"decode": {"method": "annealed"}}, "decode 'annealed' needs a model with a distribution head"),
    ({"automatic_global": 3}, "info.automatic_global must be a text"),
    ({"histogram_temperature": float("nan")}, "info.histogram_temperature must be a number from 0 to 1, got nan"),
])
def test_stored_settings_are_checked_and_name_the_file(tiny_model_file, tmp_path, info, message):
    tensors, metadata = contents(tiny_model_file)
    metadata["info"] = info
    path = write(tmp_path / "settings.safetensors", tensors, metadata)
    with pytest.raises(CunetError) as error:
        Colorizer.from_pretrained(path)
    assert message in str(error.value) and str(error.value).startswith(str(path))


def test_a_gallerys_histograms_are_distributions_whatever_was_stored(tiny_gallery, tmp_path):
    tensors, metadata = contents(tiny_gallery)
    tensors["histograms"] = tensors["histograms"].float() * 7
    gallery = Gallery.load(write(tmp_path / "scaled.gallery", tensors, metadata))
    assert torch.allclose(gallery.histograms.sum(1), torch.ones(5))


def test_photos_of_one_histogram_give_one_variant(tiny_model_file, tiny_gallery, gray_photo, tmp_path):
    tensors, metadata = contents(tiny_gallery)
    tensors["histograms"] = tensors["histograms"][:1].repeat(5, 1).contiguous()
    gallery = Gallery.load(write(tmp_path / "same.gallery", tensors, metadata))
    colorizer = _tiny_colorizer(tiny_model_file)
    assert len(colorizer.match_references(colorizer.prepare(gray_photo), 4, gallery)) == 1


def test_a_gallery_with_more_paths_than_photos_is_refused(monkeypatch, capsys, gray_photo, tiny_gallery, tmp_path):
    tensors, metadata = contents(tiny_gallery)
    metadata["paths"] = metadata["paths"] * 3
    bad = write(tmp_path / "bad.gallery", tensors, metadata)
    code, _, err = run(monkeypatch, capsys, "colorize", gray_photo, "-o", tmp_path / "out.png", "--variants", "4",
                       "--gallery", bad)
    assert_one_line_error(code, err, "bad.gallery: paths must be a list of 5 texts (one per photo), got '15 items'")


@pytest.mark.parametrize("change, message", [
    (lambda t: t.update(luminance=t["luminance"][:2]), "tensor 'luminance' has shape (2, 32), expected (5, 32)"),
    (lambda t: t.update(histograms=-t["histograms"]), "histograms must be non-negative"),
    (lambda t: t["histograms"].view(-1).__setitem__(0, float("nan")), "tensor 'histograms' holds NaN"),
    (lambda t: t.update(histograms=t["histograms"][:, :5]), "tensor 'histograms' has shape (5, 5), expected (N, 261)"),
    (lambda t: t.update(features=torch.zeros(5, 8)), "tensor 'feature_mean' is missing"),
    (lambda t: t.update(thumbnails=t["thumbnails"].float()), "tensor 'thumbnails' has dtype F32, expected U8"),
    (lambda t: t.update(histograms=t["histograms"].double() * 1e300), "tensor 'histograms' holds values beyond"),
    (lambda t: t.update(luminance=t["luminance"].double() + 1e300), "tensor 'luminance' holds values beyond"),
])
def test_gallery_tensors_are_checked(tiny_gallery, tmp_path, change, message):
    tensors, metadata = contents(tiny_gallery)
    tensors = {key: value.clone() for key, value in tensors.items()}
    change(tensors)
    with pytest.raises(CunetError) as error:
        Gallery.load(write(tmp_path / "bad.gallery", tensors, metadata))
    assert message in str(error.value)


model_configs = st.fixed_dictionaries({}, optional={
    "width": st.integers(-5, 10**6) | json_values, "activation": st.sampled_from(["relu", "sigmoid", "tanh"]) | json_values,
    "norm_position": st.sampled_from(["before", "none"]) | json_values, "global_bins": st.integers(-2, 10**5) | json_values,
    "distribution_head": st.booleans() | json_values, "propagated_hints": st.booleans() | json_values,
    "histogram_head": st.booleans() | json_values})
metadata_documents = st.one_of(
    json_values,
    st.fixed_dictionaries({"kind": st.sampled_from(["weights", "checkpoint"]) | json_values,
                           "model_config": model_configs | json_values},
                          optional={"info": st.fixed_dictionaries({}, optional={
                                        "working_size": st.integers(0, 5000) | json_values,
                                        "decode": st.fixed_dictionaries({}, optional={
                                            "method": st.sampled_from(["regression", "blend"]) | json_values,
                                            "temperature": json_values, "blend": json_values}) | json_values,
                                        "automatic_global": json_values, "histogram_temperature": json_values})
                                    | json_values,
                                    "step": json_values, "extra": json_values, "param_groups": json_values}),
)


@FUZZ
@given(metadata=metadata_documents)
def test_fuzzed_model_metadata_gives_a_colorizer_or_a_cunet_error(tiny_model_file, tmp_path, metadata):
    tensors, _ = contents(tiny_model_file)
    path = write(tmp_path / "fuzzed.safetensors", tensors, metadata)
    try:
        Colorizer.from_pretrained(path)
    except CunetError as error:
        assert "\n" not in str(error) and len(str(error)) < 400


tensor_changes = st.tuples(
    st.sampled_from(["drop", "reshape", "dtype", "value", "rename"]),
    st.integers(0, 10**6),
    st.lists(st.integers(0, 6), min_size=0, max_size=4),
    st.sampled_from([torch.float16, torch.float64, torch.int64, torch.uint8, torch.bool, torch.bfloat16]),
    st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e30, 1e300, -1.0, 0.0]),
)


def changed(tensors: dict[str, torch.Tensor], change) -> dict[str, torch.Tensor]:
    action, pick, shape, dtype, value = change
    tensors = {key: tensor.clone() for key, tensor in tensors.items()}
    name = sorted(tensors)[pick % len(tensors)]
    if action == "drop":
        del tensors[name]
    elif action == "reshape":
        tensors[name] = torch.zeros(shape, dtype=tensors[name].dtype)
    elif action == "dtype":
        tensors[name] = tensors[name].to(dtype)
    elif action == "value" and tensors[name].is_floating_point() and tensors[name].numel():
        tensors[name] = tensors[name].double()  # F64 holds 1e300: finite in the file, infinite as float32
        tensors[name].view(-1)[pick % tensors[name].numel()] = value
    elif action == "rename":
        tensors[name + "x"] = tensors.pop(name)
    return tensors


@FUZZ
@given(changes=st.lists(tensor_changes, min_size=1, max_size=3))
def test_fuzzed_weight_tensors_give_a_model_or_a_cunet_error(tiny_model_file, tmp_path, changes):
    tensors, metadata = contents(tiny_model_file)
    for change in changes:
        tensors = changed(tensors, change)
    path = write(tmp_path / "fuzzed.safetensors", tensors, metadata)
    try:
        colorizer = Colorizer.from_pretrained(path)
        ab = colorizer.predict_ab(torch.rand(48, 64).numpy())
    except CunetError as error:
        assert "\n" not in str(error)
        return
    assert bool(torch.isfinite(ab).all())


gallery_metadata = st.fixed_dictionaries({"kind": st.just("cunet-gallery/1") | json_values},
                                         optional={"paths": st.lists(st.text(max_size=5), max_size=7) | json_values,
                                                   "sources": st.lists(st.text(max_size=5), max_size=7) | json_values,
                                                   "model": json_values, "working_size": json_values})


@FUZZ
@given(metadata=gallery_metadata, changes=st.lists(tensor_changes, max_size=2))
def test_fuzzed_galleries_load_and_match_or_give_a_cunet_error(tiny_model_file, tiny_gallery, gray_photo, tmp_path,
                                                               metadata, changes):
    tensors, _ = contents(tiny_gallery)
    for change in changes:
        tensors = changed(tensors, change)
    try:
        gallery = Gallery.load(write(tmp_path / "fuzzed.gallery", tensors, metadata))
    except CunetError as error:
        assert "\n" not in str(error)
        return
    colorizer = _tiny_colorizer(tiny_model_file)
    assert len(colorizer.match_references(colorizer.prepare(gray_photo), 2, gallery)) >= 1
    assert all(bool(torch.isfinite(t).all()) for t in (gallery.histograms, gallery.luminance))
    assert torch.allclose(gallery.histograms.sum(1), torch.ones(len(gallery)))


_COLORIZERS: dict[Path, Colorizer] = {}


def _tiny_colorizer(path: Path) -> Colorizer:
    if path not in _COLORIZERS:
        _COLORIZERS[path] = Colorizer.from_pretrained(path)
    return _COLORIZERS[path]


@pytest.fixture(scope="module")
def checkpoint_file(tmp_path_factory) -> Path:
    from cunet.checkpoint import save_checkpoint
    from cunet.model import CUNet, CUNetConfig

    torch.manual_seed(0)
    model = CUNet(CUNetConfig(width=4, activation="relu", global_bins=0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model(torch.rand(1, 4, 16, 16))[0].square().mean().backward()
    optimizer.step()
    path = tmp_path_factory.mktemp("checkpoint") / "last.safetensors"
    save_checkpoint(path, model, optimizer, 1, {"train_seconds": 1.5})
    return path


def resumed(path: Path):
    from cunet.checkpoint import load_checkpoint
    from cunet.model import CUNet, CUNetConfig

    model = CUNet(CUNetConfig(width=4, activation="relu", global_bins=0))
    return load_checkpoint(path, model, torch.optim.AdamW(model.parameters(), lr=1e-3))


def test_a_checkpoint_resumes(checkpoint_file):
    assert resumed(checkpoint_file)["step"] == 1


@pytest.mark.parametrize("change, message", [
    (lambda t, m: t.update({"optim.0.exp_avg": torch.zeros(7)}), "tensor 'optim.0.exp_avg' has shape (7,), expected"),
    (lambda t, m: t.update({"optim.999.exp_avg": torch.zeros(7)}), "is not an optimizer state of this model"),
    (lambda t, m: m["param_groups"][0].update(lr="fast"), "param_groups[0].lr must be a finite number, got 'fast'"),
    (lambda t, m: m["param_groups"][0].update(betas=[0.9]), "param_groups[0].betas must be a list of 2 finite numbers"),
    (lambda t, m: m["param_groups"].append({}), "param_groups has 2 groups; this run's optimizer has 1"),
    (lambda t, m: m["extra"].update(train_seconds="long"), "extra.train_seconds must be a number from 0"),
])
def test_a_crafted_checkpoint_is_refused_before_training_resumes(checkpoint_file, tmp_path, change, message):
    tensors, metadata = contents(checkpoint_file)
    change(tensors, metadata)
    with pytest.raises(CunetError) as error:
        resumed(write(tmp_path / "last.safetensors", tensors, metadata))
    assert message in str(error.value)
