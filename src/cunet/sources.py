"""Which data sources make the headline figure.

A macro average over sources still lies when one source is far easier than the rest: face crops
fill the frame with skin, and a model gains ~+8 dB on them where scenes gain +0.3. So the headline
is the macro average over the sources that are *not* face crops; face-crop sources keep their own
rows beside it, and the macro over every source is kept too, under its own name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

#: Sources of face crops in the project's data (`../shared/data/people`, UTKFace crop_part1).
FACE_CROP_SOURCES: tuple[str, ...] = ("utkface",)


def headline_sources(sources: Iterable[str], exclude: Iterable[str] = FACE_CROP_SOURCES) -> list[str]:
    """The sources whose macro average is the headline: every source not in `exclude`, sorted.

    When `exclude` would leave nothing (a face-crop set evaluated alone), every source counts:
    a report of faces only still has a headline, and it says which sources made it.
    """
    sources = sorted(set(sources))
    kept = [source for source in sources if source not in set(exclude)]
    return kept or sources


def macro_mean(by_source: Mapping[str, float], sources: Iterable[str]) -> float:
    """The mean of `by_source[s]` over `sources`, every source weighing the same."""
    sources = list(sources)
    return sum(by_source[source] for source in sources) / len(sources)
