"""Where a colour-point update's time goes, part by part (issue 11; the v2 model's head and spread)

With the bundled model on a point map at working sizes 128 and 256 (square), the median of each
part of `Colorizer.predict_ab`: the edge-aware point spread (`propagate_points`), the encoder
(conv1-4), the decoder (conv5-10 and the regression head), and the distribution head with its
annealed mean three ways, in this process: fused chunk by chunk (`gamut.annealed_mean_of_head`,
what the colouriser runs), the head's full 261 logits per pixel then `gamut.decode_distribution`
(what it ran before), and the head then the plain softmax formula (what that replaced).

    python benchmarks/update_parts.py --out benchmarks/results/update_parts.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
import torch.nn.functional as F

from speed import timed  # beside this file

from cunet.colorizer import Colorizer
from cunet.gamut import annealed_mean_of_head, decode_distribution, in_gamut_bins
from cunet.hints import Hints, PointHint, encode_point_hints, network_inputs
from cunet.io import write_atomic
from cunet.propagation import propagate_points


def softmax_annealed_mean(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The textbook form: a softmax over the bin axis of NCHW logits, then the mean bin centre."""
    return torch.einsum("nqhw,qc->nchw", torch.softmax(logits.float() / temperature, dim=1), in_gamut_bins())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/update_parts.json"))
    args = parser.parse_args()
    colorizer = Colorizer.from_pretrained()
    runtime = colorizer.runtime
    milliseconds = lambda function: round(statistics.median(timed(function, args.repeats)) * 1000, 2)
    sizes = {}
    for size in (128, 256):
        lightness = torch.linspace(0, 100, size * size).view(1, 1, size, size)
        point_maps = encode_point_hints([PointHint(size / 3, size / 2, 20.0, -40.0, 9)], size, size)[None]
        inputs = network_inputs(lightness, point_maps, propagate=True)
        features = runtime.encode(inputs)
        global_hint = colorizer._global_hint(Hints())
        _, head_features = runtime.decode(features, global_hint)
        weight, bias = colorizer.model.distribution.weight.detach(), colorizer.model.distribution.bias.detach()
        temperature = colorizer.temperature
        head = lambda: F.conv2d(head_features, weight, bias)
        sizes[str(size)] = {
            "propagate_points_ms": milliseconds(lambda: propagate_points(lightness, point_maps)),
            "encode_ms": milliseconds(lambda: runtime.encode(inputs)),
            "decode_ms": milliseconds(lambda: runtime.decode(features, global_hint)),
            "head_and_annealed_mean_fused_ms": milliseconds(
                lambda: annealed_mean_of_head(head_features, weight, bias, temperature)),
            "head_then_annealed_mean_ms": milliseconds(lambda: decode_distribution(head(), temperature)),
            "head_then_softmax_formula_ms": milliseconds(lambda: softmax_annealed_mean(head(), temperature)),
        }
    report = {"command": "python benchmarks/update_parts.py", "threads": torch.get_num_threads(),
              "backend": colorizer.backend, "sizes": sizes}
    write_atomic(args.out, lambda handle: handle.write(json.dumps(report, indent=2).encode() + b"\n"))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
