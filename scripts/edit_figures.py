"""Figures for edge-aware colour (issue 20): point and stroke edits before and after, and full-resolution
crops of bilinear beside guided up-sampling, on real black-and-white photos; and, for a model whose
automatic colouring has a predicted palette or a chroma gain, the same edits with both kept everywhere
beside the default, where the hints take over from them (`Colorizer.hints_lead`).

"Before" is the old pipeline (bilinear up-sampling, the network's own answer to the hints); "after"
is today's default (guided up-sampling, points filled over their regions). Each row: the photo with
the hints drawn, before, after, and a crop of both around the first hint.

    python scripts/edit_figures.py --bw-photos ../shared/data/bw-photos/deoldify --out-dir docs/edits
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from cunet.colorizer import Colorizer
from cunet.hints import Hints, PointHint, StrokeHint

#: (photo, title, points (x, y, colour, size), strokes (vertices, colour, width)) in the photo's pixels.
CASES = [
    ("Ballet1890Russia.jpg", "a red point on a pale tutu", [(150, 470, "#c01010", 5)], []),
    ("Ballet1890Russia.jpg", "a green point on a striped costume", [(352, 420, "#1f8a3a", 5)], []),
    ("wh-auden.jpg", "a blue point on a sleeve", [(640, 590, "#2050c0", 7)], []),
    ("royal_family.jpg", "a green point on a plaid kilt", [(327, 615, "#1f8a3a", 7)], []),
    ("royal_family.jpg", "a red stroke along a skirt", [], [([(790, 515), (845, 548), (900, 580)], "#b02030", 9)]),
]
#: (photo, crop box, points): automatic colouring is faint, so the last crop adds a vivid point.
CROPS = [("marktwain.jpg", (720, 170, 880, 330), []), ("smoking_kid.jpg", (330, 190, 490, 350), []),
         ("wh-auden.jpg", (560, 520, 720, 680), [(640, 590, "#2050c0", 7)])]
ROW_HEIGHT = 300


def hints_of(points, strokes) -> Hints:
    return Hints(tuple(PointHint.from_rgb(x, y, colour, size) for x, y, colour, size in points),
                 strokes=tuple(StrokeHint.from_rgb(vertices, colour, width) for vertices, colour, width in strokes))


def drawn(photo: Image.Image, points, strokes) -> Image.Image:
    """The photo with its hints drawn as the studio does: a ringed dot per point, a line per stroke."""
    image = photo.convert("RGB")
    draw = ImageDraw.Draw(image)
    radius = max(image.size) / 90
    for vertices, colour, width in strokes:
        draw.line(vertices, fill=colour, width=width, joint="curve")
    for x, y, colour, size in points:
        r = radius * (0.7 + size / 6)
        draw.ellipse([x - r, y - r, x + r, y + r], fill=colour, outline="white", width=2)
    return image


def fit_height(image: Image.Image, height: int) -> Image.Image:
    return image.resize((max(1, round(image.width * height / image.height)), height), Image.Resampling.LANCZOS)


def labelled_row(images: list[Image.Image], labels: list[str], height: int) -> Image.Image:
    tiles = [fit_height(image, height) for image in images]
    font = ImageFont.load_default()
    row = Image.new("RGB", (sum(t.width for t in tiles) + 6 * (len(tiles) - 1), height + 18), "white")
    x = 0
    draw = ImageDraw.Draw(row)
    for tile, label in zip(tiles, labels):
        row.paste(tile, (x, 18))
        draw.text((x + 2, 3), label, fill="black", font=font)
        x += tile.width + 6
    return row


def stacked(rows: list[Image.Image]) -> Image.Image:
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height + 8 for r in rows)), "white")
    y = 0
    for row in rows:
        sheet.paste(row, (0, y))
        y += row.height + 8
    return sheet


def crop_around(image: Image.Image, x: float, y: float, side: int) -> Image.Image:
    left = int(min(max(0, x - side / 2), max(0, image.width - side)))
    top = int(min(max(0, y - side / 2), max(0, image.height - side)))
    return image.crop((left, top, left + side, top + side))


def colourings(colorizer: Colorizer, photo: Image.Image, hints: Hints) -> tuple[Image.Image, Image.Image]:
    """(before: bilinear, no fill; after: guided, filled)."""
    colorizer.upsample, colorizer.point_fill = "bilinear", False
    before = colorizer.colorize(photo, hints)
    colorizer.upsample, colorizer.point_fill = "guided", True
    return before, colorizer.colorize(photo, hints)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bw-photos", type=Path, required=True, help="folder of the black-and-white photos")
    parser.add_argument("--model", default=None, help="weights file (default: the bundled model)")
    parser.add_argument("--out-dir", type=Path, default=Path("docs/edits"))
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    colorizer = Colorizer.from_pretrained(args.model)
    rows = []
    for name, title, points, strokes in CASES:
        photo = Image.open(args.bw_photos / name).convert("L")
        before, after = colourings(colorizer, photo, hints_of(points, strokes))
        x, y = (points[0][0], points[0][1]) if points else strokes[0][0][len(strokes[0][0]) // 2]
        side = min(photo.size) // 2
        rows.append(labelled_row(
            [drawn(photo, points, strokes), before, after, crop_around(before, x, y, side), crop_around(after, x, y, side)],
            [f"{name}: {title}", "before", "after", "before (crop)", "after (crop)"], ROW_HEIGHT))
    stacked(rows).save(args.out_dir / "point_edits.png")
    rows = []
    for name, box, points in CROPS:
        photo = Image.open(args.bw_photos / name).convert("L")
        hints = hints_of(points, [])
        colorizer.point_fill = True
        colorizer.upsample = "bilinear"
        bilinear = colorizer.colorize(photo, hints).crop(box)
        colorizer.upsample = "guided"
        guided = colorizer.colorize(photo, hints).crop(box)
        rows.append(labelled_row([photo.crop(box).convert("RGB"), bilinear, guided],
                                 [f"{name} {box} (full resolution)", "bilinear", "guided"], ROW_HEIGHT))
    stacked(rows).save(args.out_dir / "upsampling_crops.png")
    print(f"wrote {args.out_dir / 'point_edits.png'} and {args.out_dir / 'upsampling_crops.png'}")
    if colorizer.automatic_global == "predicted" or colorizer.chroma_gain != 1.0:
        rows = []
        for name, title, points, strokes in CASES:
            photo = Image.open(args.bw_photos / name).convert("L")
            hints = hints_of(points, strokes)
            kept = replace(colorizer, hints_lead=False).colorize(photo, hints)
            rows.append(labelled_row([drawn(photo, points, strokes), colorizer.colorize(photo), kept,
                                      colorizer.colorize(photo, hints)],
                                     [f"{name}: {title}", "automatic", "palette and gain kept", "hints lead (default)"],
                                     ROW_HEIGHT))
        stacked(rows).save(args.out_dir / "hints_lead.jpg", quality=88)  # a photo sheet: a tenth of the PNG
        print(f"wrote {args.out_dir / 'hints_lead.jpg'}")


if __name__ == "__main__":
    main()
