"""A CJK font for the figures: Noto Sans CJK SC from the `noto-cjk-sans-otc` wheel (SIL OFL 1.1).

The wheel carries the Noto Sans CJK collection (one .ttc with JP, KR, SC, TC and HK faces).
matplotlib and Pillow (which wordcloud draws with) open the first face of a collection, the
Japanese one, whose glyph variants differ from Simplified Chinese for many shared characters. So the
SC face is written out once as a standalone OpenType file (fontTools copies its tables unchanged,
under a second) into a cache folder, and both libraries use that file.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from danqing.io import atomic_path

FAMILY = "Noto Sans CJK SC"
FILE_NAME = "NotoSansCJKsc-Regular.otf"


def _collection_path() -> Path:
    try:
        import noto_cjk_sans_otc
    except ImportError as exc:  # pragma: no cover - a pinned requirement
        raise ImportError(
            "the figures need the CJK font of the `noto-cjk-sans-otc` package "
            "(pip install -r requirements.txt)"
        ) from exc
    return Path(str(noto_cjk_sans_otc.FONT_PATH))


def cache_dir() -> Path:
    """$DANQING_FONT_DIR, else $XDG_CACHE_HOME/danqing/fonts (~/.cache/danqing/fonts)."""
    if os.environ.get("DANQING_FONT_DIR"):
        return Path(os.environ["DANQING_FONT_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "danqing" / "fonts"


@functools.cache
def cjk_font_path() -> Path:
    """Path of the Noto Sans CJK SC OpenType file, extracted from the wheel on first use."""
    out = cache_dir() / FILE_NAME
    if out.is_file() and out.stat().st_size > 0:
        return out
    from fontTools.ttLib import TTCollection

    collection = TTCollection(str(_collection_path()), lazy=True)
    faces = {font["name"].getDebugName(1): font for font in collection.fonts}
    if FAMILY not in faces:
        raise RuntimeError(f"{_collection_path()} has no {FAMILY} face (faces: {sorted(faces)})")
    with atomic_path(out) as tmp:
        faces[FAMILY].save(str(tmp))
    return out


def missing_glyphs(text: str, font_path: str | os.PathLike | None = None) -> list[str]:
    """Characters of `text` (other than whitespace) that the font's cmap does not map."""
    from fontTools.ttLib import TTFont

    font = TTFont(str(font_path or cjk_font_path()), lazy=True)
    cmap = font.getBestCmap()
    return sorted({ch for ch in text if not ch.isspace() and ord(ch) not in cmap})


@functools.cache
def use_cjk_font() -> str:
    """Register the CJK font with matplotlib and make it the default family; returns its name.

    DejaVu Sans stays as a fallback for the few symbols Noto Sans CJK lacks.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import font_manager, rcParams

    path = cjk_font_path()
    font_manager.fontManager.addfont(str(path))
    name = font_manager.FontProperties(fname=str(path)).get_name()
    rcParams["font.family"] = "sans-serif"
    rcParams["font.sans-serif"] = [name, "DejaVu Sans"]
    return name
