"""Building photo collections for training: the paper's ImageNet synset sampler (section 3.1), the
same for any folder of photos, and compact packed copies to carry to a GPU machine.

Every collection is a folder with a manifest.csv (file, source, orig_name, width, height, sha256,
split); the split is fixed by the content hash, so a photo keeps its split whatever else changes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import shutil
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError
from tqdm import tqdm

from cunet.data import find_images, is_near_gray, read_manifest
from cunet.errors import CunetError
from cunet.io import IMAGE_SUFFIXES, open_image, write_atomic

MANIFEST_COLUMNS = ["file", "source", "orig_name", "width", "height", "sha256", "split"]
VAL_PERMILLE = 50  # 5 % of photos, chosen by hash


def split_for(sha256: str, val_permille: int = VAL_PERMILLE) -> str:
    """"val" for a stable ~val_permille/1000 of hashes, "train" for the rest."""
    return "val" if int(sha256[:8], 16) % 1000 < val_permille else "train"


def write_manifest(rows: list[dict], out_dir: Path) -> Path:
    """manifest.csv in out_dir, atomically, in the standard columns."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=MANIFEST_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: row[k] for k in MANIFEST_COLUMNS} for row in rows)
    path = out_dir / "manifest.csv"
    write_atomic(path, lambda handle: handle.write(buffer.getvalue().encode()))
    return path


# ---------------------------------------------------------------- ImageNet synsets


@dataclass
class SynsetSource:
    """Where one synset's photos live: an ILSVRC/21k folder or a 21k tar."""

    wnid: str
    folder: Path | None = None
    tar: Path | None = None
    members: list[str] = field(default_factory=list)

    def names(self) -> list[str]:
        if self.folder is not None:
            return sorted(p.name for p in self.folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        return self.members

    def read_all(self, names: list[str]):
        """Yield (name, bytes) for the given photos; a tar is read in one pass."""
        if self.folder is not None:
            for name in names:
                yield name, (self.folder / name).read_bytes()
            return
        wanted = set(names)
        with tarfile.open(self.tar) as archive:
            for member in archive:
                name = Path(member.name).name
                if member.isfile() and name in wanted:
                    yield name, archive.extractfile(member).read()


def find_synset(root: Path, wnid: str) -> SynsetSource:
    """The photos of synset `wnid` under an ImageNet root, in any of the layouts users have."""
    candidates = [root / "Data" / "CLS-LOC" / "train" / wnid, root / "train" / wnid, root / wnid]
    for folder in candidates:
        if folder.is_dir():
            return SynsetSource(wnid, folder=folder)
    for tar in (root / f"{wnid}.tar", root / "winter21_whole" / f"{wnid}.tar"):
        if tar.is_file():
            try:
                with tarfile.open(tar) as archive:
                    members = sorted(Path(m.name).name for m in archive.getmembers()
                                     if m.isfile() and Path(m.name).suffix.lower() in IMAGE_SUFFIXES)
            except tarfile.TarError as error:
                raise CunetError(f"{tar}: not a readable tar ({error})") from None
            return SynsetSource(wnid, tar=tar, members=members)
    looked = ", ".join(str(p) for p in candidates) + f", {root / (wnid + '.tar')}"
    raise CunetError(f"synset {wnid} not found under {root} (looked for {looked})")


def sample_names(names: list[str], fraction: float, count: int | None, rng: np.random.Generator) -> list[str]:
    """The paper's procedure: draw `fraction` of the photos at random, then keep at most `count` of them."""
    if not 0 < fraction <= 1:
        raise CunetError(f"fraction must be in (0, 1], got {fraction}")
    chosen = [names[i] for i in sorted(rng.choice(len(names), size=round(len(names) * fraction), replace=False))]
    if count is not None and len(chosen) > count:
        chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), size=count, replace=False))]
    return chosen


def _image_facts(data: bytes) -> tuple[int, int]:
    with open_image(data) as image:
        image = ImageOps.exif_transpose(image)
        return image.width, image.height


def sample_imagenet(
    root: Path, wnids: list[str], out_dir: Path, fraction: float = 0.2, count: int | None = 5000, seed: int = 0,
    link: bool = False, progress: bool = True,
) -> dict:
    """Sample photos of the given synsets into out_dir/<wnid>/ with a manifest.

    `count` caps the total over all synsets (split in proportion). Folders can be symlinked
    (`link`); photos inside tars are always copied out.
    """
    sources = [find_synset(Path(root), wnid) for wnid in wnids]
    rng = np.random.default_rng(seed)
    pools = [(source, sample_names(source.names(), fraction, None, rng)) for source in sources]
    total = sum(len(names) for _, names in pools)
    if count is not None and total > count:
        pools = [(source, sample_names(names, 1.0, round(count * len(names) / total), rng)) for source, names in pools]
    if not any(names for _, names in pools):
        raise CunetError(f"no photos sampled from {', '.join(wnids)} (fraction {fraction}, count {count})")
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, skipped = [], 0
    bar = tqdm(total=sum(len(names) for _, names in pools), desc="sampling", unit="photo", disable=not progress)
    photos = ((source, name, data) for source, names in pools for name, data in source.read_all(names))
    for source, name, data in photos:
        bar.update(1)
        try:
            width, height = _image_facts(data)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):  # CunetError is a ValueError
            skipped += 1
            continue
        target = out_dir / source.wnid / name
        target.parent.mkdir(exist_ok=True)
        if link and source.folder is not None:
            if target.is_symlink() or target.exists():
                target.unlink()
            os.symlink((source.folder / name).resolve(), target)
        else:
            write_atomic(target, lambda handle, data=data: handle.write(data))
        digest = hashlib.sha256(data).hexdigest()
        rows.append({"file": f"{source.wnid}/{name}", "source": source.wnid, "orig_name": name, "width": width,
                     "height": height, "sha256": digest, "split": split_for(digest)})
    bar.close()
    write_manifest(rows, out_dir)
    return {"photos": len(rows), "unreadable": skipped, "synsets": {s.wnid: len(n) for s, n in pools}}


# ---------------------------------------------------------------- any folder


def import_folder(source: Path, out_dir: Path, min_side: int = 128, link: bool = False, progress: bool = True) -> dict:
    """Copy (or link) a folder's usable colour photos into out_dir with a manifest.

    Drops undecodable photos, photos with a short side below `min_side`, near-gray photos, and
    duplicates (same bytes); returns how many of each.
    """
    if not Path(source).is_dir():
        raise CunetError(f"{source}: not a folder")
    paths = find_images(source)  # every image, even beside a manifest.csv
    out_dir.mkdir(parents=True, exist_ok=True)
    counts = {"photos": 0, "unreadable": 0, "too_small": 0, "near_gray": 0, "duplicates": 0}
    seen: set[str] = set()
    rows = []
    for path in tqdm(paths, desc="importing", unit="photo", disable=not progress):
        data = path.read_bytes()
        digest = hashlib.sha256(data).hexdigest()
        if digest in seen:
            counts["duplicates"] += 1
            continue
        try:
            with open_image(data, str(path)) as image:
                image = ImageOps.exif_transpose(image).convert("RGB")
                width, height = image.size
                if min(width, height) < min_side:
                    counts["too_small"] += 1
                    continue
                image.thumbnail((256, 256))
                if is_near_gray(np.asarray(image)):
                    counts["near_gray"] += 1
                    continue
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError):  # CunetError is a ValueError
            counts["unreadable"] += 1
            continue
        seen.add(digest)
        relative = path.relative_to(source)
        name = f"{digest[:12]}{path.suffix.lower()}"
        target = out_dir / name
        if link:
            if target.is_symlink() or target.exists():
                target.unlink()
            os.symlink(path.resolve(), target)
        else:
            shutil.copyfile(path, target)
        rows.append({"file": name, "source": str(relative.parent) if str(relative.parent) != "." else "folder",
                     "orig_name": relative.name, "width": width, "height": height, "sha256": digest,
                     "split": split_for(digest)})
    if not rows:
        raise CunetError(f"{source}: no usable colour photos ({counts})")
    write_manifest(rows, out_dir)
    counts["photos"] = len(rows)
    return counts


# ---------------------------------------------------------------- packing


def pack(manifest: Path, out_dir: Path, size: int = 160, quality: int = 85, progress: bool = True) -> dict:
    """Re-sized JPEG copies (short side <= size) of a manifest's photos, with the same splits."""
    if not 16 <= size <= 4096:
        raise CunetError(f"size must be 16..4096, got {size}")
    if not 1 <= quality <= 95:
        raise CunetError(f"quality must be 1..95, got {quality}")
    manifest = Path(manifest)
    with manifest.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    paths = read_manifest(manifest)
    out_dir.mkdir(parents=True, exist_ok=True)
    packed = []
    for row, path in tqdm(list(zip(rows, paths)), desc="packing", unit="photo", disable=not progress):
        with open_image(path) as image:
            image = ImageOps.exif_transpose(image).convert("RGB")
            if min(image.size) > size:
                scale = size / min(image.size)
                image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                                     Image.Resampling.LANCZOS)
            buffer = io.BytesIO()
            image.save(buffer, format="JPEG", quality=quality)
        name = Path(row["file"]).with_suffix(".jpg")
        (out_dir / name).parent.mkdir(parents=True, exist_ok=True)
        write_atomic(out_dir / name, lambda handle, data=buffer.getvalue(): handle.write(data))
        packed.append({**{k: row.get(k, "") for k in MANIFEST_COLUMNS}, "file": str(name),
                       "width": image.width, "height": image.height,
                       "split": row.get("split") or split_for(row.get("sha256") or hashlib.sha256(path.read_bytes()).hexdigest())})
    write_manifest(packed, out_dir)
    total = sum((out_dir / row["file"]).stat().st_size for row in packed)
    return {"photos": len(packed), "bytes": total}
