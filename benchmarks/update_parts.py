"""Where a colour-point update's time goes, part by part (issue 11; the v2 model's head and spread)

With the bundled model on a point map at working sizes 128 and 256 (square), the median of each
part of `Colorizer.predict_ab`, in this process:
- the edge-aware point spread (`propagate_points`): made from L* each time, and with the photo's
  kept `DomainTransform` (what a prepared photo runs), plus making that transform once; then the
  kept spread for each block size of its recurrences (`--blocks`; block 1 is the log-depth scan over
  the whole axis that it ran before), and the spread of a training batch (16 photos of 128 x 128,
  made from L* each time, as training runs it) for each block size;
- the encoder (conv1-4) and the decoder (conv5-10 and the regression head);
- the distribution head with its annealed mean: fused chunk by chunk (`gamut.annealed_mean_of_head`,
  what the colouriser runs) for each of `--chunks`, the same with fresh tensors in every chunk (what
  it ran before its buffers were kept), the head's full 261 logits per pixel then
  `gamut.decode_distribution`, and the head then the plain softmax formula.

The process keeps freed memory for reuse (`cunet.allocator`), as `benchmarks/speed.py` and the
`cunet` command do.

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

from cunet.allocator import keep_freed_memory
from cunet.colorizer import Colorizer
from cunet.gamut import HEAD_CHUNK_PIXELS, _bin_moments, annealed_mean_of_head, decode_distribution, in_gamut_bins
from cunet.hints import Hints, PointHint, encode_point_hints, network_inputs
from cunet.io import write_atomic
from cunet.propagation import BLOCK, DomainTransform, propagate_points


def softmax_annealed_mean(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """The textbook form: a softmax over the bin axis of NCHW logits, then the mean bin centre."""
    return torch.einsum("nqhw,qc->nchw", torch.softmax(logits.float() / temperature, dim=1), in_gamut_bins())


def fresh_tensor_annealed_mean(features: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor,
                               temperature: float, chunk_pixels: int = 1024) -> torch.Tensor:
    """`annealed_mean_of_head` as it was: every chunk's logits a new tensor."""
    batch, channels, height, width = features.shape
    pixels = features.float().permute(0, 2, 3, 1).reshape(-1, channels)
    scaled_weight, scaled_bias = weight.reshape(len(bias), channels) / temperature, bias / temperature
    moments = _bin_moments().T.contiguous()
    sums = torch.empty(len(pixels), 3)
    for start in range(0, len(pixels), chunk_pixels):
        logits = F.linear(pixels[start:start + chunk_pixels], scaled_weight, scaled_bias)
        logits -= logits.amax(dim=1, keepdim=True)
        logits.clamp_(min=-80.0).exp_()
        sums[start:start + chunk_pixels] = F.linear(logits, moments)
    ab = sums[:, :2] / sums[:, 2:]
    return ab.reshape(batch, height, width, 2).permute(0, 3, 1, 2).contiguous()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--blocks", default="1,4,8,16,32", help="Block sizes of the spread's recurrences to time.")
    parser.add_argument("--chunks", default="1024,2048,4096,8192", help="Pixels per chunk of the fused head to time.")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/update_parts.json"))
    args = parser.parse_args()
    keep_freed_memory()
    colorizer = Colorizer.from_pretrained()
    runtime = colorizer.runtime
    milliseconds = lambda function: round(statistics.median(timed(function, args.repeats)) * 1000, 2)

    def kept_spread_ms(lightness: torch.Tensor, point_maps: torch.Tensor, block: int) -> float:
        transform = DomainTransform(lightness, block=block)
        return milliseconds(lambda: propagate_points(lightness, point_maps, transform))

    blocks = args.blocks.split(",")
    batch_lightness = torch.rand(16, 1, 128, 128, generator=torch.Generator().manual_seed(0)) * 100
    batch_points = encode_point_hints([PointHint(40, 60, 20.0, -40.0, 9)], 128, 128)[None].expand(16, -1, -1, -1)
    training_batch = {block: milliseconds(lambda: propagate_points(
        batch_lightness, batch_points, DomainTransform(batch_lightness, block=int(block)))) for block in blocks}
    sizes = {}
    for size in (128, 256):
        lightness = torch.linspace(0, 100, size * size).view(1, 1, size, size)
        point_maps = encode_point_hints([PointHint(size / 3, size / 2, 20.0, -40.0, 9)], size, size)[None]
        transform = DomainTransform(lightness)
        inputs = network_inputs(lightness, point_maps, propagate=True)
        features = runtime.encode(inputs)
        global_hint = colorizer._global_hint(Hints())
        _, head_features = runtime.decode(features, global_hint)
        weight, bias = colorizer.model.distribution.weight.detach(), colorizer.model.distribution.bias.detach()
        temperature = colorizer.temperature
        head = lambda: F.conv2d(head_features, weight, bias)
        sizes[str(size)] = {
            "propagate_points_ms": milliseconds(lambda: propagate_points(lightness, point_maps)),
            "propagate_points_kept_transform_ms": milliseconds(lambda: propagate_points(lightness, point_maps, transform)),
            "make_transform_ms": milliseconds(lambda: DomainTransform(lightness)),
            "kept_spread_by_block_ms": {block: kept_spread_ms(lightness, point_maps, int(block)) for block in blocks},
            "encode_ms": milliseconds(lambda: runtime.encode(inputs)),
            "decode_ms": milliseconds(lambda: runtime.decode(features, global_hint)),
            "head_and_annealed_mean_fused_ms": milliseconds(
                lambda: annealed_mean_of_head(head_features, weight, bias, temperature)),
            "fused_by_chunk_pixels_ms": {chunk: milliseconds(
                lambda: annealed_mean_of_head(head_features, weight, bias, temperature, int(chunk)))
                for chunk in args.chunks.split(",")},
            "fused_fresh_tensors_per_chunk_ms": milliseconds(
                lambda: fresh_tensor_annealed_mean(head_features, weight, bias, temperature)),
            "head_then_annealed_mean_ms": milliseconds(lambda: decode_distribution(head(), temperature)),
            "head_then_softmax_formula_ms": milliseconds(lambda: softmax_annealed_mean(head(), temperature)),
        }
    report = {"command": "python benchmarks/update_parts.py", "threads": torch.get_num_threads(),
              "backend": colorizer.backend, "head_chunk_pixels": HEAD_CHUNK_PIXELS, "spread_block": BLOCK,
              "sizes": sizes, "training_batch_16x128x128_spread_by_block_ms": training_batch}
    write_atomic(args.out, lambda handle: handle.write(json.dumps(report, indent=2).encode() + b"\n"))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
