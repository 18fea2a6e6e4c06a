"""Real photographs that ship inside installed wheels (scikit-image, scikit-learn, matplotlib):
the offline stand-ins for web photos in calibrations, tests and benchmarks."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from PIL import Image

# Sharp real photographs.
PHOTOS = {
    "astronaut": ("skimage", "data/astronaut.png"),
    "coffee": ("skimage", "data/coffee.png"),
    "chelsea": ("skimage", "data/chelsea.png"),
    "rocket": ("skimage", "data/rocket.jpg"),
    "camera": ("skimage", "data/camera.png"),
    "hubble_deep_field": ("skimage", "data/hubble_deep_field.jpg"),
    "motorcycle_left": ("skimage", "data/motorcycle_left.png"),
    "coins": ("skimage", "data/coins.png"),
    "china": ("sklearn", "datasets/images/china.jpg"),
    "flower": ("sklearn", "datasets/images/flower.jpg"),
    "grace_hopper": ("matplotlib", "mpl-data/sample_data/grace_hopper.jpg"),
}
# Real but non-photographic or special images, reported separately.
OTHER_REAL = {
    "clock_motion (real motion blur)": ("skimage", "data/clock_motion.png"),
    "moon": ("skimage", "data/moon.png"),
    "retina": ("skimage", "data/retina.jpg"),
    "cell (microscopy)": ("skimage", "data/cell.png"),
    "brick (texture)": ("skimage", "data/brick.png"),
    "page (scanned text)": ("skimage", "data/page.png"),
    "text (photographed text)": ("skimage", "data/text.png"),
    "horse (silhouette)": ("skimage", "data/horse.png"),
}


def package_file(package: str, relative: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ImportError(f"{package} is not installed")
    return Path(spec.origin).parent / relative


def load_photo(name: str) -> Image.Image:
    package, relative = {**PHOTOS, **OTHER_REAL}[name]
    return Image.open(package_file(package, relative)).convert("RGB")
