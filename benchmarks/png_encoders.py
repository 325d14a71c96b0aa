"""PNG encoders for the studio's previews: Pillow against `cunet.png` (issue 12's round trip)

Colours the benchmark photos (as in benchmarks/speed.py) with the bundled model, shrinks each result
to the studio's preview side (768) and encodes it, in this process: Pillow at zlib level 1 (its
adaptive per-row filters, one core), `cunet.png.encode_png` on 1 and 2 threads, and imagecodecs
(libpng, "Up" filter) when it is installed. Median time per preview and total size; time as a
ratio to Pillow's.

    python benchmarks/png_encoders.py --out benchmarks/results/png_encoders.json
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
from pathlib import Path

import numpy as np
import torch

from speed import source_photos, timed  # beside this file

from cunet.colorizer import Colorizer
from cunet.io import Photo, write_atomic
from cunet.png import encode_png
from cunet.studio.app import PREVIEW_SIDE
from cunet.studio.store import preview_photo


def pillow_png(pixels: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/png_encoders.json"))
    args = parser.parse_args()
    colorizer = Colorizer.from_pretrained()
    previews = []
    for photo in source_photos(args.photos):
        rgb = np.asarray(colorizer.colorize(photo), dtype=np.float32) / 255
        small = preview_photo(Photo(rgb, None), PREVIEW_SIDE).rgb
        previews.append(np.clip(np.rint(small * 255), 0, 255).astype(np.uint8))
    encoders = {"pillow_level1": pillow_png,
                "cunet_png_1_thread": lambda pixels: encode_png(pixels, threads=1),
                "cunet_png_2_threads": lambda pixels: encode_png(pixels, threads=2)}
    try:
        import imagecodecs

        encoders["imagecodecs_up_filter"] = lambda pixels: imagecodecs.png_encode(
            pixels, level=1, filter=imagecodecs.PNG.FILTER.UP)
    except ImportError:
        pass
    results = {}
    for name, encode in encoders.items():
        medians = [statistics.median(timed(lambda: encode(pixels), args.repeats, 1)) for pixels in previews]
        results[name] = {"ms_per_preview": round(1000 * statistics.median(medians), 2),
                         "total_kb": round(sum(len(encode(pixels)) for pixels in previews) / 1024)}
    baseline = results["pillow_level1"]["ms_per_preview"]
    for result in results.values():
        result["time_vs_pillow"] = round(result["ms_per_preview"] / baseline, 3)
    report = {"command": "python benchmarks/png_encoders.py", "threads": torch.get_num_threads(),
              "previews": f"{len(previews)} colourised photos, long side {PREVIEW_SIDE}", "encoders": results}
    write_atomic(args.out, lambda handle: handle.write(json.dumps(report, indent=2).encode() + b"\n"))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
