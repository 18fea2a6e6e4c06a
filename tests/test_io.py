"""danqing.io: the atomic writers' files and the mapped .npz reader."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from danqing.io import npz_memmap, write_npz


def test_a_mapped_npz_array_equals_the_loaded_one(tmp_path):
    path = tmp_path / "a.npz"
    arrays = {
        "vectors": np.random.default_rng(1).standard_normal((300, 7)).astype(np.float16),
        "uids": np.array([f"u{k:05d}" for k in range(300)]),
        "rows": np.arange(300, dtype=np.int64),
        "fortran": np.asfortranarray(np.arange(12.0).reshape(3, 4)),
        "empty": np.zeros((0, 7), np.float16),
    }
    write_npz(path, **arrays)
    with np.load(path) as data:
        for name, array in arrays.items():
            mapped = npz_memmap(path, name)
            assert mapped.dtype == array.dtype and mapped.shape == array.shape
            assert np.array_equal(mapped, data[name])
    assert isinstance(npz_memmap(path, "vectors"), np.memmap)


def test_a_compressed_npz_array_is_refused(tmp_path):
    path = tmp_path / "c.npz"
    np.savez_compressed(path, vectors=np.ones((10, 3)))
    assert zipfile.ZipFile(path).getinfo("vectors.npy").compress_type == zipfile.ZIP_DEFLATED
    with pytest.raises(ValueError, match="compressed"):
        npz_memmap(path, "vectors")
