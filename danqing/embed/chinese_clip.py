"""Chinese-CLIP image and text embeddings (the paper's Chinese-CLIP-L14), built from cn_clip's own code.

The model is cn_clip's `CLIP` class, configured from cn_clip's `model_configs/*.json` exactly as
`cn_clip.clip.utils.create_model("<vision>@<text>")` does: the vision JSON and the text JSON are
merged into the constructor arguments. The checkpoint is read as cn_clip's `create_model` /
`load_from_name` read it: `torch.load(...)["state_dict"]`, the `module.` prefix of
DistributedDataParallel stripped, `bert.pooler.*` dropped (cn_clip's BertModel has no pooler),
then `load_state_dict(strict=True)`. Missing keys, unexpected keys and shape mismatches are
reported together in one clear error: a wrong checkpoint is never used.

`cn_clip/clip/__init__.py` and `utils.py` import torchvision, which this workflow does not install,
so the package is reached through `danqing.cnclip.module(...)`; tokenisation (`[CLS]` + word
pieces cut to 50 + `[SEP]`, zero-padded to 52) and the image transform (`preprocess.clip_batch`)
are re-implemented identically.

With `checkpoint: null` and a `download_root`, cn_clip's own `_download` fetches the named model
(`ViT-L-14` -> clip_cn_vit-l-14.pt) from Hugging Face or ModelScope: that path needs network
access, torchvision (cn_clip's utils import it) and huggingface_hub (or modelscope) installed.

Inference runs in fp16 on a GPU and in fp32 on the CPU, in batches.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from danqing import cnclip
from danqing.embed.preprocess import clip_batch
from danqing.vectors import l2_normalise

CONTEXT_LENGTH = 52
# cn_clip.clip.utils._MODEL_INFO: the text tower each released vision tower was trained with.
TEXT_TOWER = {
    "ViT-B-16": "RoBERTa-wwm-ext-base-chinese",
    "ViT-L-14": "RoBERTa-wwm-ext-base-chinese",
    "ViT-L-14-336": "RoBERTa-wwm-ext-base-chinese",
    "ViT-H-14": "RoBERTa-wwm-ext-large-chinese",
    "RN50": "RBT3-chinese",
}


class CheckpointError(ValueError):
    """The checkpoint is missing, unreadable, or does not fit the configured architecture."""


def model_info(
    architecture: str, text_architecture: str | None = None, config_dir: str | Path | None = None
) -> dict:
    """CLIP constructor arguments from `<config_dir>/<vision>.json` + `<text>.json`."""
    config_dir = Path(config_dir) if config_dir else cnclip.config_dir()
    text_architecture = text_architecture or TEXT_TOWER.get(architecture)
    if text_architecture is None:
        raise ValueError(
            f"no default text tower for vision architecture {architecture!r}; set "
            "embedding.text_architecture (e.g. RoBERTa-wwm-ext-base-chinese)"
        )
    info: dict = {}
    for name in (architecture, text_architecture):
        path = config_dir / f"{name.replace('/', '-')}.json"
        if not path.is_file():
            known = sorted(p.stem for p in config_dir.glob("*.json"))
            raise ValueError(f"no Chinese-CLIP model config {path}; known: {known}")
        info.update(json.loads(path.read_text(encoding="utf-8")))
    if isinstance(info.get("vision_layers"), str):  # RN50 writes "[3,4,6,3]"
        info["vision_layers"] = json.loads(info["vision_layers"])
    return info


def build_model(info: dict) -> torch.nn.Module:
    return cnclip.module("model").CLIP(**info)


def read_state_dict(checkpoint: str | Path) -> dict[str, torch.Tensor]:
    """The model weights of a cn_clip checkpoint, keys as the CLIP module names them."""
    path = Path(checkpoint)
    if not path.is_file():
        raise CheckpointError(f"Chinese-CLIP checkpoint not found: {path}")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as error:
        raise CheckpointError(f"cannot read Chinese-CLIP checkpoint {path}: {error}") from error
    state = saved.get("state_dict", saved) if isinstance(saved, dict) else None
    if not isinstance(state, dict) or not state:
        raise CheckpointError(
            f"{path} holds no state_dict (cn_clip checkpoints store "
            "{'state_dict': {'module.<name>': tensor}})"
        )
    if next(iter(state)).startswith("module."):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return {k: v for k, v in state.items() if "bert.pooler" not in k}


def check_state_dict(model: torch.nn.Module, state: dict, source: str, arch: str) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in expected.items()
        if k in state and state[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:

        def show(items: list[str]) -> str:
            return f"{len(items)} {items[:5]}{' ...' if len(items) > 5 else ''}"

        raise CheckpointError(
            f"checkpoint {source} does not fit Chinese-CLIP {arch}: missing keys "
            f"{show(missing)}, unexpected keys {show(unexpected)}, shape mismatches "
            f"{show(mismatched)}. Check embedding.architecture / text_architecture."
        )


def download_checkpoint(name: str, download_root: str | Path) -> Path:
    """cn_clip's own download of a released model (needs network, torchvision, huggingface_hub)."""
    try:
        utils = cnclip.module("utils")
    except ImportError as error:
        raise CheckpointError(
            f"downloading Chinese-CLIP {name} uses cn_clip.clip.utils, which imports torchvision "
            f"({error}); install torchvision and huggingface_hub, or download the checkpoint "
            "yourself and set embedding.checkpoint to its path"
        ) from error
    if name not in utils._MODELS:
        raise CheckpointError(
            f"{name!r} is not a released Chinese-CLIP model: {list(utils._MODELS)}"
        )
    return Path(utils._download(name, str(download_root)))


def tokenize(texts: Sequence[str], context_length: int = CONTEXT_LENGTH) -> torch.Tensor:
    """cn_clip.clip.utils.tokenize: [CLS] + word pieces[:context-2] + [SEP], zero-padded."""
    tokenizer = cnclip.tokenizer()
    cls_id, sep_id = tokenizer.vocab["[CLS]"], tokenizer.vocab["[SEP]"]
    result = torch.zeros(len(texts), context_length, dtype=torch.long)
    for i, text in enumerate(texts):
        ids = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(text))[: context_length - 2]
        tokens = [cls_id, *ids, sep_id]
        result[i, : len(tokens)] = torch.tensor(tokens)
    return result


class ChineseClipEmbedder:
    """Image and text embeddings of a Chinese-CLIP checkpoint (`has_text = True`)."""

    has_text = True

    def __init__(
        self,
        checkpoint: str | Path | None,
        architecture: str = "ViT-L-14",
        text_architecture: str | None = None,
        config_dir: str | Path | None = None,
        download_root: str | Path | None = None,
        device: str | None = None,
        batch_size: int = 64,
    ):
        if checkpoint is None:
            if download_root is None:
                raise CheckpointError(
                    "embedding.model is chinese-clip but no embedding.checkpoint is set (and no "
                    "embedding.download_root to download one): Chinese-CLIP weights are never "
                    "replaced by another model"
                )
            checkpoint = download_checkpoint(architecture, download_root)
        info = model_info(architecture, text_architecture, config_dir)
        self.name = f"chinese-clip-{architecture}"
        self.architecture = f"{architecture}@{text_architecture or TEXT_TOWER[architecture]}"
        model = build_model(info)
        state = read_state_dict(checkpoint)
        check_state_dict(model, state, str(checkpoint), self.architecture)
        model.load_state_dict(state, strict=True)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        # As cn_clip's load_from_name: its convert_weights (fp16 convolutions, linear layers,
        # attention and BERT; LayerNorms stay fp32) on the GPU, fp32 everywhere on the CPU.
        if self.device.type == "cuda":
            cnclip.module("model").convert_weights(model)
        else:
            model = model.float()
        self.model = model.to(self.device).eval()
        self.dim = int(info["embed_dim"])
        self.resolution = int(info["image_resolution"])
        self.batch_size = batch_size

    @torch.inference_mode()
    def embed_images(self, images: Sequence[bytes]) -> np.ndarray:
        out = [np.zeros((0, self.dim), np.float32)]
        for start in range(0, len(images), self.batch_size):
            x = torch.from_numpy(
                clip_batch(images[start : start + self.batch_size], self.resolution)
            ).to(self.device)
            out.append(self.model.encode_image(x).float().cpu().numpy())
        return l2_normalise(np.concatenate(out))

    @torch.inference_mode()
    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        out = [np.zeros((0, self.dim), np.float32)]
        for start in range(0, len(texts), self.batch_size):
            tokens = tokenize(texts[start : start + self.batch_size]).to(self.device)
            out.append(self.model.encode_text(tokens).float().cpu().numpy())
        return l2_normalise(np.concatenate(out))
