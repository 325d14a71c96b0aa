"""Does the network use the colour points it is given? Fidelity at the points and error against the
distance to the nearest point, for cunet and Levin et al. fed the same points (the evaluate protocol).

For each point count: the mean a*b* error (ΔE in the a*b* plane) inside the given patches (a user who
clicks a colour expects it there), and the error in rings of distance from the nearest point. Where
Levin et al. wins at many points, this says whether cunet ignores its points or only spreads them worse.

    python benchmarks/hint_usage.py --model src/cunet/weights/default.safetensors --limit 16 \
        --out benchmarks/results/hint_usage.json   [--upsample bilinear] [--no-point-fill]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt
from tqdm import tqdm

from cunet.color import denormalize_ab
from cunet.colorizer import Colorizer
from cunet.evaluate import Harness, _lab_of, evaluation_set, load_eval_photo, protocol_points
from cunet.hints import encode_point_hints
from cunet.io import write_atomic

RINGS = ((0, 1), (1, 8), (8, 16), (16, 32), (32, 64), (64, 1000))


def measure(colorizer: Colorizer, paths: list[Path], counts: list[int]) -> dict:
    harness = Harness(colorizer)
    sums: dict = {}
    for index, path in enumerate(tqdm(paths, desc="photos", unit="photo")):
        rgb8 = load_eval_photo(path)
        lab = _lab_of(rgb8)
        for count in counts:
            points = protocol_points(lab[1:], count, index)
            maps = encode_point_hints(points, *lab.shape[-2:])
            mask = maps[2].numpy() > 0
            distance = distance_transform_edt(~mask)
            hint_ab = denormalize_ab(maps[:2])  # the given colours
            for method in ("cunet", "levin"):
                output_ab = _lab_of(harness.run(method, lab[:1], points, None))[1:]
                error = (output_ab - lab[1:]).norm(dim=0).numpy()
                entry = sums.setdefault(f"{method}/{count}", {"fidelity": [], "rings": {f"{a}-{b}": [] for a, b in RINGS}})
                entry["fidelity"].append(float((output_ab - hint_ab).norm(dim=0).numpy()[mask].mean()))
                for a, b in RINGS:
                    ring = (distance >= a) & (distance < b)
                    if ring.any():
                        entry["rings"][f"{a}-{b}"].append(float(error[ring].mean()))
    return {key: {"fidelity": float(np.mean(v["fidelity"])),
                  "rings": {ring: float(np.mean(e)) if e else None for ring, e in v["rings"].items()}}
            for key, v in sums.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", nargs="+", default=["../shared/data/people", "../shared/data/people-scenes"])
    parser.add_argument("--model", default=None)
    parser.add_argument("--limit", type=int, default=16, help="first N val photos of each source")
    parser.add_argument("--points", default="10,50")
    parser.add_argument("--upsample", default="guided", help="guided or bilinear")
    parser.add_argument("--no-point-fill", action="store_true", help="the network's own answer to the points")
    parser.add_argument("--out", default="benchmarks/results/hint_usage.json")
    args = parser.parse_args()
    torch.set_grad_enabled(False)
    paths, _ = evaluation_set(args.data, "val", args.limit)
    colorizer = Colorizer.from_pretrained(args.model, upsample=args.upsample)
    colorizer.point_fill = not args.no_point_fill
    results = measure(colorizer, paths, [int(n) for n in args.points.split(",")])
    text = json.dumps({"model": args.model or "bundled default", "photos": len(paths), "upsample": args.upsample,
                       "point_fill": colorizer.point_fill, "results": results}, indent=2)
    write_atomic(Path(args.out), lambda handle: handle.write(text.encode() + b"\n"))
    print(f"{'method/points':<14}{'at points':>10}" + "".join(f"{a}-{b}px".rjust(10) for a, b in RINGS))
    for key, value in results.items():
        rings = "".join(f"{v:>10.2f}" if v is not None else f"{'–':>10}" for v in value["rings"].values())
        print(f"{key:<14}{value['fidelity']:>10.2f}{rings}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
