"""How the network runs: every exact backend gives fp32 eager PyTorch's colours; hint changes re-run
only what they must."""

import pytest
import torch
from PIL import Image
from skimage import data as skdata

from cunet.colorizer import Colorizer
from cunet.errors import CunetError
from cunet.hints import Hints, PointHint
from cunet.model import CUNet, CUNetConfig
from cunet.runtime import (
    DEFAULT_BACKEND,
    EXACT_BACKENDS,
    OnnxRuntime,
    TorchRuntime,
    fold_batch_norms,
    make_runtime,
    onnx_available,
)

needs_onnx = pytest.mark.skipif(not onnx_available(), reason="onnxruntime/onnx not installed")


@pytest.fixture(scope="module")
def photos(astronaut):
    return [Image.fromarray(astronaut).convert("L"), Image.fromarray(skdata.camera()), Image.fromarray(skdata.coffee())]


def points_on(image: Image.Image) -> Hints:
    width, height = image.size
    return Hints((PointHint(width * 0.3, height * 0.4, 60, 40, 3), PointHint(width * 0.7, height * 0.6, -30, -50, 3)))


@pytest.mark.parametrize("backend", [b for b in EXACT_BACKENDS if b != "eager"])
def test_every_exact_backend_gives_the_bundled_models_fp32_colours_on_real_photos(backend, photos):
    if backend == "onnx" and not onnx_available():
        pytest.skip("onnxruntime/onnx not installed")
    reference = Colorizer.from_pretrained(backend="eager")
    other = Colorizer.from_pretrained(backend=backend)
    for image in photos:
        for hints in (Hints(), points_on(image)):
            difference = (other.predict_ab(image, hints) - reference.predict_ab(image, hints)).abs().max()
            assert difference < 1.0


def test_folding_the_batch_norms_keeps_the_function_and_leaves_the_model_as_it_was():
    torch.manual_seed(0)
    model = CUNet(CUNetConfig(width=4, activation="sigmoid", global_bins=0)).eval()
    for norm in (m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # statistics a trained model has
        norm.running_mean.uniform_(-1, 1)
        norm.running_var.uniform_(0.5, 2)
        norm.weight.data.uniform_(0.5, 1.5)
    folded = fold_batch_norms(model)
    count = lambda m: sum(isinstance(x, torch.nn.BatchNorm2d) for x in m.modules())
    assert count(folded) == 0 and count(model) == 24  # conv1-7: 15 units, conv8-10: 9 (3 transposed)
    inputs = torch.randn(2, 4, 32, 24)
    with torch.no_grad():
        assert torch.allclose(folded(inputs)[0], model(inputs)[0], atol=1e-5)


def test_bf16_is_offered_but_is_not_exact():
    assert "bf16" not in EXACT_BACKENDS
    assert isinstance(make_runtime(CUNet(CUNetConfig(width=4)), "bf16"), TorchRuntime)


@needs_onnx
def test_onnx_runs_a_model_with_a_distribution_head_and_spread_hints_like_pytorch(head_model_file, astronaut):
    eager = Colorizer.from_pretrained(head_model_file, backend="eager")
    onnx = Colorizer.from_pretrained(head_model_file, backend="onnx")
    assert isinstance(onnx.runtime, OnnxRuntime)
    image = Image.fromarray(astronaut[:96, :160]).convert("L")
    hints = points_on(image)
    assert (onnx.predict_ab(image, hints) - eager.predict_ab(image, hints)).abs().max() < 1e-2
    assert (onnx.distribution(image, hints) - eager.distribution(image, hints)).abs().max() < 1e-4


@needs_onnx
def test_onnx_takes_any_working_shape_and_batch(tiny_model_file):
    model = Colorizer.from_pretrained(tiny_model_file, backend="eager").model
    runtime = OnnxRuntime(model)
    inputs = torch.randn(3, 4, 40, 72)
    hint = torch.rand(3, model.global_hint_size)
    ab, _ = runtime.decode(runtime.encode(inputs), hint)
    with torch.no_grad():
        expected, _ = model(inputs, hint)
    assert ab.shape == (3, 2, 40, 72) and (ab - expected).abs().max() < 1e-4


def test_auto_runs_the_default_backend_without_onnx_runtime(tiny_model_file):
    runtime = Colorizer.from_pretrained(tiny_model_file).runtime
    assert DEFAULT_BACKEND in EXACT_BACKENDS
    assert isinstance(runtime, TorchRuntime) and runtime.mode == DEFAULT_BACKEND


def test_an_unknown_backend_is_a_clear_error(tiny_model_file):
    with pytest.raises(CunetError, match="backend must be one of auto, eager, channels-last, bf16, compile, onnx"):
        Colorizer.from_pretrained(tiny_model_file, backend="tpu")


class CountingRuntime:
    def __init__(self, inner) -> None:
        self.inner, self.encodes, self.decodes = inner, 0, 0

    def encode(self, inputs):
        self.encodes += 1
        return self.inner.encode(inputs)

    def decode(self, features, global_hint):
        self.decodes += 1
        return self.inner.decode(features, global_hint)


@pytest.fixture
def counted(tiny_model_file):
    colorizer = Colorizer.from_pretrained(tiny_model_file, backend="eager")
    colorizer._runtime = CountingRuntime(colorizer.runtime)
    return colorizer


def test_a_new_global_hint_on_the_same_points_reuses_the_encoding(counted, astronaut):
    prepared = counted.prepare(Image.fromarray(astronaut).convert("L"))
    first = counted.predict_ab(prepared, Hints(saturation=0.2))
    second = counted.predict_ab(prepared, Hints(saturation=0.9))
    assert (counted.runtime.encodes, counted.runtime.decodes) == (1, 2)
    assert not torch.equal(first, second)


def test_a_point_change_re_encodes(counted, astronaut):
    prepared = counted.prepare(Image.fromarray(astronaut).convert("L"))
    counted.predict_ab(prepared, Hints((PointHint(10, 10, 50, 0),)))
    counted.predict_ab(prepared, Hints((PointHint(12, 10, 50, 0),)))
    counted.predict_ab(prepared, Hints((PointHint(12, 10, 50, 0),), saturation=0.5))
    assert (counted.runtime.encodes, counted.runtime.decodes) == (2, 3)


def test_the_reused_encoding_gives_the_same_colours_as_a_fresh_run(tiny_model_file, astronaut):
    colorizer = Colorizer.from_pretrained(tiny_model_file, backend="eager")
    image = Image.fromarray(astronaut).convert("L")
    prepared = colorizer.prepare(image)
    colorizer.predict_ab(prepared, Hints(saturation=0.1))
    reused = colorizer.predict_ab(prepared, Hints(saturation=0.7))
    assert torch.equal(reused, colorizer.predict_ab(image, Hints(saturation=0.7)))


def test_encode_then_decode_is_the_forward_pass():
    torch.manual_seed(0)
    model = CUNet(CUNetConfig(width=4, distribution_head=True)).eval()
    inputs, hint = torch.randn(2, 4, 32, 40), torch.rand(2, model.global_hint_size)
    with torch.no_grad():
        whole = model(inputs, hint)
        split = model.decode(*model.encode(inputs), hint)
    assert torch.equal(whole[0], split[0]) and torch.equal(whole[1], split[1])


@needs_onnx
def test_making_the_onnx_runtime_leaves_the_model_in_eval_mode_with_its_weights(tiny_model_file):
    model = Colorizer.from_pretrained(tiny_model_file, backend="eager").model
    before = {name: value.clone() for name, value in model.state_dict().items()}
    OnnxRuntime(model)
    assert not any(module.training for module in model.modules())
    assert all(torch.equal(value, before[name]) for name, value in model.state_dict().items())


@needs_onnx
def test_export_onnx_writes_a_graph_that_onnx_runtime_runs_like_the_model(monkeypatch, capsys, head_model_file, tmp_path):
    import onnxruntime

    from cunet.checkpoint import load_model
    from tests.test_cli import run

    code, out, err = run(monkeypatch, capsys, "export", str(head_model_file), "--onnx", "-o", str(tmp_path / "m.onnx"))
    assert (code, err) == (0, "") and out.strip() == f"wrote {tmp_path / 'm.onnx'}"
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    facts = session.get_modelmeta().custom_metadata_map
    assert facts["cunet.inputs"].startswith("(B, 7, H, W)") and "cunet.working_size" in facts
    model, _ = load_model(head_model_file)
    inputs, hint = torch.randn(2, 7, 24, 32), torch.rand(2, model.global_hint_size)
    ab, logits = session.run(None, {"inputs": inputs.numpy(), "global_hint": hint.numpy()})
    with torch.no_grad():
        expected_ab, expected_logits = model(inputs, hint)
    assert abs(ab - expected_ab.numpy()).max() < 1e-4 and abs(logits - expected_logits.numpy()).max() < 1e-3


def test_export_onnx_wants_an_onnx_name(monkeypatch, capsys, tiny_model_file, tmp_path):
    from tests.test_cli import run

    code, out, err = run(monkeypatch, capsys, "export", str(tiny_model_file), "--onnx", "-o", str(tmp_path / "m.bin"))
    assert code == 2 and err.strip() == f"error: {tmp_path / 'm.bin'}: ONNX files end in .onnx"

@pytest.fixture
def headed_weights(tiny_model_file, tmp_path):
    """A tiny model with both heads whose file stores choices, none of them the defaults."""
    from cunet.checkpoint import save_weights
    from cunet.gamut import num_bins
    from cunet.train_histogram import with_histogram_head

    torch.manual_seed(2)
    model = with_histogram_head(CUNet(CUNetConfig(width=4, global_bins=num_bins(), distribution_head=True))).eval()
    path = tmp_path / "headed.safetensors"
    save_weights(path, model, {"working_size": 64, "automatic_global": "predicted", "histogram_temperature": 0.5,
                               "decode": {"method": "blend", "temperature": 0.3, "blend": 0.25, "gain": 1.4}},
                 half=False)
    return path


@needs_onnx
def test_an_onnx_graph_gives_the_histogram_automatic_colouring_takes_and_says_how_to_use_it(
        monkeypatch, capsys, headed_weights, tmp_path):
    import json

    import onnxruntime

    from cunet.checkpoint import load_model
    from cunet.colorizer import sharpened
    from cunet.hints import encode_global_hint
    from tests.test_cli import run

    code, _, err = run(monkeypatch, capsys, "export", str(headed_weights), "--onnx", "-o", str(tmp_path / "m.onnx"))
    assert (code, err) == (0, "")
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    facts = session.get_modelmeta().custom_metadata_map
    assert json.loads(facts["cunet.decode"]) == {"method": "blend", "temperature": 0.3, "blend": 0.25, "gain": 1.4}
    assert json.loads(facts["cunet.automatic_global"]) == {"setting": "predicted", "histogram_temperature": 0.5}
    assert [o.name for o in session.get_outputs()] == ["ab", "logits", "histogram"]
    assert "twice" in facts["cunet.histogram"]
    model, _ = load_model(headed_weights)
    inputs = torch.randn(1, model.config.input_channels, 24, 32)
    zero = torch.zeros(1, model.global_hint_size)
    _, _, histogram = session.run(None, {"inputs": inputs.numpy(), "global_hint": zero.numpy()})
    with torch.no_grad():
        expected = model.predict_histogram(model.encode(inputs)[3])
        hint = encode_global_hint(sharpened(torch.from_numpy(histogram[0]), 0.5))[None]
        expected_ab, _ = model(inputs, hint)
    assert abs(histogram - expected.numpy()).max() < 1e-5
    ab, _, _ = session.run(None, {"inputs": inputs.numpy(), "global_hint": hint.numpy()})
    assert abs(ab - expected_ab.numpy()).max() < 1e-4


@needs_onnx
def test_an_onnx_graphs_choices_given_on_the_command_line_replace_the_stored_ones(
        monkeypatch, capsys, headed_weights, tmp_path):
    import json

    import onnxruntime

    from tests.test_cli import run

    code, _, err = run(monkeypatch, capsys, "export", str(headed_weights), "--onnx", "-o", str(tmp_path / "m.onnx"),
                       "--decode", "regression", "--histogram-temperature", "0.8")
    assert (code, err) == (0, "")
    facts = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"]
                                         ).get_modelmeta().custom_metadata_map
    assert json.loads(facts["cunet.decode"]) == {"method": "regression", "temperature": 0.3, "blend": 0.25, "gain": 1.4}
    assert json.loads(facts["cunet.automatic_global"]) == {"setting": "predicted", "histogram_temperature": 0.8}


def test_export_keeps_a_weights_files_choices_but_for_those_given(monkeypatch, capsys, headed_weights, tmp_path):
    from tests.test_cli import run

    code, _, err = run(monkeypatch, capsys, "export", str(headed_weights), "-o", str(tmp_path / "kept.safetensors"),
                       "--chroma-gain", "1.2")
    assert (code, err) == (0, "")
    kept = Colorizer.from_pretrained(tmp_path / "kept.safetensors")
    assert (kept.decode, kept.temperature, kept.blend, kept.chroma_gain) == ("blend", 0.3, 0.25, 1.2)
    assert (kept.automatic_global, kept.histogram_temperature) == ("predicted", 0.5)


def test_exporting_a_file_whose_stored_choice_its_model_cannot_run_names_the_file(monkeypatch, capsys, tiny_model_file,
                                                                                  tmp_path):
    from cunet.checkpoint import load_model, save_weights
    from tests.test_cli import assert_one_line_error, run

    broken = tmp_path / "broken.safetensors"
    save_weights(broken, load_model(tiny_model_file)[0], {"working_size": 64, "decode": {"method": "annealed"}})
    code, out, err = run(monkeypatch, capsys, "export", str(broken), "-o", str(tmp_path / "out.safetensors"))
    assert_one_line_error(code, err, f"{broken}: ")
    code, _, err = run(monkeypatch, capsys, "export", str(broken), "-o", str(tmp_path / "out.safetensors"),
                       "--decode", "regression")
    assert (code, err) == (0, "") and Colorizer.from_pretrained(tmp_path / "out.safetensors").decode == "regression"
