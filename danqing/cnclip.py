"""Access to the `cn_clip` package's own code (Chinese-CLIP tokenizer and model architecture).

`cn_clip/clip/__init__.py` imports `torchvision` for its image transforms, which this workflow does
not use (it preprocesses images itself, identically, with Pillow and NumPy) and which costs
gigabytes on a CPU machine. We therefore register the `cn_clip.clip` package without running its
`__init__` and import the submodules we need from the installed wheel. When torchvision is
installed the regular package import is used instead.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
import types
from pathlib import Path


def _register_package() -> None:
    if "cn_clip.clip" in sys.modules:
        return
    spec = importlib.util.find_spec("cn_clip")
    if spec is None or spec.origin is None:
        raise ImportError(
            "cn_clip is not installed; install it with `pip install --no-deps cn_clip==1.6.0`"
        )
    if importlib.util.find_spec("torchvision") is not None:
        importlib.import_module("cn_clip.clip")
        return
    package = types.ModuleType("cn_clip.clip")
    package.__path__ = [str(Path(spec.origin).parent / "clip")]
    package.__package__ = "cn_clip.clip"
    sys.modules["cn_clip.clip"] = package
    bert_tokenizer = importlib.import_module("cn_clip.clip.bert_tokenizer")
    # model.py reads the shared tokenizer from the package, as the real __init__ provides it.
    package._tokenizer = bert_tokenizer.FullTokenizer()


def module(name: str) -> types.ModuleType:
    """`cn_clip.clip.<name>`, e.g. `module("model")` or `module("bert_tokenizer")`."""
    _register_package()
    return importlib.import_module(f"cn_clip.clip.{name}")


def vocab_path() -> Path:
    return Path(module("bert_tokenizer").default_vocab())


def config_dir() -> Path:
    return vocab_path().parent / "model_configs"


@functools.cache
def tokenizer(vocab_file: str | None = None):
    bert_tokenizer = module("bert_tokenizer")
    return bert_tokenizer.FullTokenizer(vocab_file=vocab_file or bert_tokenizer.default_vocab())
