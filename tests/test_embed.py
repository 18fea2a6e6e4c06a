import json

import numpy as np
import pytest
import torch
from PIL import Image, ImageEnhance

from danqing import cnclip, config
from danqing.embed import (
    Embeddings,
    alignment_distance,
    alignment_frame,
    embed_items,
    load_embedder,
    read_embeddings,
    write_embeddings,
)
from danqing.embed import chinese_clip as cc
from danqing.embed import efficientnet_lite as eff
from danqing.embed.preprocess import CLIP_MEAN, CLIP_STD, clip_pixels
from tests.test_image_metrics import encode, photo

# ImageNet class indices a correct classifier gives these wheel photos.
CATS = {281, 282, 283, 284, 285, 287}  # tabby, tiger cat, Persian, Siamese, Egyptian cat, lynx
COFFEE = {967, 968, 504}  # espresso, cup, coffee mug
ROCKET = {657, 744, 812}  # missile, projectile, space shuttle
HOPPER = {652, 457, 834, 400, 667}  # military uniform, bow tie, suit, academic gown, mortarboard


@pytest.fixture(scope="module")
def lite0():
    return eff.EfficientNetLite0Embedder(device="cpu")


def test_efficientnet_lite0_classifies_real_photos(lite0):
    names = ["chelsea", "coffee", "rocket", "grace_hopper"]
    probs = lite0.classify([encode(photo(n)) for n in names])
    top5 = [set(np.argsort(p)[::-1][:5].tolist()) for p in probs]
    assert int(probs[0].argmax()) in CATS and int(probs[1].argmax()) in COFFEE
    assert top5[2] & ROCKET and top5[3] & HOPPER


def test_efficientnet_embeddings_separate_near_duplicates_from_distinct_photos(lite0):
    beta = 0.1
    originals = {n: photo(n) for n in ("chelsea", "coffee", "china")}
    variants = []
    for image in originals.values():
        w, h = image.size
        variants += [
            image.crop((int(w * 0.05), int(h * 0.05), int(w * 0.95), int(h * 0.95))),
            image.resize((w // 2, h // 2), Image.Resampling.BILINEAR),
            ImageEnhance.Color(ImageEnhance.Brightness(image).enhance(1.15)).enhance(0.7),
        ]
    base = lite0.embed_images([encode(i) for i in originals.values()])
    near = lite0.embed_images([encode(v, quality=60) for v in variants])
    assert base.shape == (3, eff.FEATURE_DIM) and base.dtype == np.float32
    assert np.allclose(np.linalg.norm(base, axis=1), 1.0, atol=1e-5)
    distinct = 1 - base @ base.T
    assert distinct[np.triu_indices(3, 1)].min() > 3 * beta
    for k in range(3):
        assert (1 - near[3 * k : 3 * k + 3] @ base[k]).max() < beta
    alone = lite0.embed_images([encode(originals["chelsea"])])[0]
    assert np.allclose(alone, base[0], atol=1e-5)  # batch composition changes only rounding
    with pytest.raises(NotImplementedError):
        lite0.embed_texts(["猫"])


def test_onnxruntime_and_torch_give_the_same_embeddings_and_classes(lite0):
    assert lite0.runtime == "onnxruntime"  # the CPU default
    torch_runtime = eff.EfficientNetLite0Embedder(device="cpu", runtime="torch")
    images = [encode(photo(n)) for n in ("chelsea", "coffee", "rocket", "grace_hopper", "china")]
    images.append(encode(photo("coffee").resize((57, 233))))  # odd sizes are squashed first
    onnx_vectors, torch_vectors = lite0.embed_images(images), torch_runtime.embed_images(images)
    # as stored (float16), the two runtimes differ by at most a few units in the last place
    stored = [v.astype(np.float16).astype(np.float32) for v in (onnx_vectors, torch_vectors)]
    assert np.abs(stored[0] - stored[1]).max() <= 1e-4
    assert np.abs(lite0.classify(images) - torch_runtime.classify(images)).max() < 1e-4
    with pytest.raises(ValueError, match="unknown runtime"):
        eff.EfficientNetLite0Embedder(device="cpu", runtime="tvm")


def test_efficientnet_weights_must_match_exactly(tmp_path):
    state = torch.load(eff.weights_path(), map_location="cpu", weights_only=True)
    del state["_fc.bias"]
    torch.save(state, tmp_path / "broken.pth")
    with pytest.raises(ValueError, match="not an EfficientNet-Lite0 state dict"):
        eff.load_model(tmp_path / "broken.pth")
    with pytest.raises(FileNotFoundError):
        eff.load_model(tmp_path / "absent.pth")


# --- Chinese-CLIP: a tiny model made with cn_clip's own architecture code ----------------------

TINY_VISION = {
    "embed_dim": 16,
    "image_resolution": 32,
    "vision_layers": 2,
    "vision_width": 64,
    "vision_patch_size": 8,
}
TINY_TEXT = {
    "vocab_size": 21128,
    "text_attention_probs_dropout_prob": 0.1,
    "text_hidden_act": "gelu",
    "text_hidden_dropout_prob": 0.1,
    "text_hidden_size": 32,
    "text_initializer_range": 0.02,
    "text_intermediate_size": 64,
    "text_max_position_embeddings": 64,
    "text_num_attention_heads": 2,
    "text_num_hidden_layers": 2,
    "text_type_vocab_size": 2,
}


@pytest.fixture()
def tiny_clip(tmp_path):
    configs = tmp_path / "model_configs"
    configs.mkdir()
    (configs / "Tiny-ViT.json").write_text(json.dumps(TINY_VISION))
    (configs / "Tiny-BERT.json").write_text(json.dumps(TINY_TEXT))
    torch.manual_seed(0)
    model = cc.build_model(cc.model_info("Tiny-ViT", "Tiny-BERT", configs))
    state = {f"module.{k}": v for k, v in model.state_dict().items()}  # as DDP training saves
    state["module.bert.pooler.dense.weight"] = torch.zeros(32, 32)  # dropped as cn_clip does
    checkpoint = tmp_path / "tiny.pt"
    torch.save({"epoch": 1, "state_dict": state}, checkpoint)
    return configs, checkpoint, model


def test_tiny_chinese_clip_round_trip(tiny_clip):
    configs, checkpoint, model = tiny_clip
    cfg = config.section(
        "embedding",
        {
            "model": "chinese-clip",
            "checkpoint": str(checkpoint),
            "architecture": "Tiny-ViT",
            "text_architecture": "Tiny-BERT",
            "config_dir": str(configs),
            "batch_size": 2,
        },
    )
    embedder = load_embedder(cfg, device="cpu")
    assert (embedder.dim, embedder.has_text) == (16, True)
    images = [encode(photo(n)) for n in ("chelsea", "coffee", "rocket")]
    texts = ["一只橘猫趴在沙发上", "一杯拿铁咖啡", "火箭发射升空" * 20]
    image_vectors = embedder.embed_images(images)
    text_vectors = embedder.embed_texts(texts)
    assert image_vectors.shape == (3, 16) and text_vectors.shape == (3, 16)
    assert np.allclose(np.linalg.norm(image_vectors, axis=1), 1, atol=1e-5)
    assert np.allclose(np.linalg.norm(text_vectors, axis=1), 1, atol=1e-5)
    # Same numbers as running cn_clip's CLIP directly on our preprocessing and tokens.
    model.eval()
    with torch.no_grad():
        direct = model.encode_image(
            torch.from_numpy(np.stack([clip_pixels(d, 32) for d in images]))
        )
        direct_text = model.encode_text(cc.tokenize(texts))
    direct = (direct / direct.norm(dim=1, keepdim=True)).numpy()
    direct_text = (direct_text / direct_text.norm(dim=1, keepdim=True)).numpy()
    assert np.allclose(image_vectors, direct, atol=1e-5)
    assert np.allclose(text_vectors, direct_text, atol=1e-5)
    again = load_embedder(cfg, device="cpu")  # deterministic: same checkpoint, same vectors
    assert np.array_equal(again.embed_images(images), image_vectors)


def test_tokenizer_matches_cn_clip_conventions():
    tokens = cc.tokenize(["你好世界", "长" * 100])
    vocab = cnclip.tokenizer().vocab
    assert tokens.shape == (2, 52) and tokens.dtype == torch.long
    assert tokens[0, :6].tolist() == [
        vocab["[CLS]"],
        vocab["你"],
        vocab["好"],
        vocab["世"],
        vocab["界"],
        vocab["[SEP]"],
    ]
    assert tokens[0, 6:].eq(0).all()
    assert tokens[1, 0] == vocab["[CLS]"] and tokens[1, 51] == vocab["[SEP]"]


def test_clip_preprocessing_of_a_flat_colour():
    pixels = clip_pixels(encode(Image.new("RGB", (50, 70), (255, 0, 128)), "PNG"), 32)
    expected = (np.array([255, 0, 128]) / 255.0 - CLIP_MEAN) / CLIP_STD
    assert pixels.shape == (3, 32, 32)
    assert np.allclose(pixels[:, 5, 5], expected, atol=1e-5)


def test_a_wrong_or_missing_checkpoint_is_a_clear_error(tiny_clip, tmp_path):
    configs, checkpoint, model = tiny_clip
    arch = {
        "architecture": "Tiny-ViT",
        "text_architecture": "Tiny-BERT",
        "config_dir": configs,
        "device": "cpu",
    }
    with pytest.raises(cc.CheckpointError, match="not found"):
        cc.ChineseClipEmbedder(tmp_path / "absent.pt", **arch)
    with pytest.raises(cc.CheckpointError, match="no embedding.checkpoint"):
        cc.ChineseClipEmbedder(None, **arch)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith("text_projection")}
    torch.save({"state_dict": state}, tmp_path / "partial.pt")
    with pytest.raises(cc.CheckpointError, match=r"missing keys 1 \['text_projection'\]"):
        cc.ChineseClipEmbedder(tmp_path / "partial.pt", **arch)
    wider = {**TINY_VISION, "vision_width": 128}
    (configs / "Wide-ViT.json").write_text(json.dumps(wider))
    with pytest.raises(cc.CheckpointError, match="shape mismatches"):
        cc.ChineseClipEmbedder(checkpoint, **{**arch, "architecture": "Wide-ViT"})
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(cc.CheckpointError, match="cannot read"):
        cc.ChineseClipEmbedder(tmp_path / "junk.pt", **arch)
    with pytest.raises(ValueError, match="no Chinese-CLIP model config"):
        cc.model_info("No-Such-ViT", "Tiny-BERT", configs)


# --- storage and alignment -------------------------------------------------------------------


def test_embeddings_round_trip_through_npz(tmp_path, lite0):
    items = [(f"u{i}", encode(photo(n))) for i, n in enumerate(["chelsea", "coffee"])]
    emb = embed_items(lite0, iter(items), captions={"u0": "猫", "u1": "咖啡"}, chunk=1)
    assert emb.uids == ["u0", "u1"] and emb.image.dtype == np.float16 and emb.text is None
    path = tmp_path / "shard.npz"
    write_embeddings(emb, path)
    back = read_embeddings(path, uids=["u1", "u0"])
    assert back.uids == ["u1", "u0"] and back.model == "efficientnet-lite0"
    assert np.array_equal(back.image, emb.image[::-1])
    with pytest.raises(KeyError, match="no embedding for 1 uids"):
        read_embeddings(path, uids=["u9"])
    frame = alignment_frame(back)
    assert frame["distance"].null_count() == 2 and frame["model"][0] == "efficientnet-lite0"


def test_alignment_distance_is_the_l2_distance_of_unit_vectors():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((50, 8))
    b = rng.standard_normal((50, 8))
    an = a / np.linalg.norm(a, axis=1, keepdims=True)
    bn = b / np.linalg.norm(b, axis=1, keepdims=True)
    expected = np.linalg.norm(an - bn, axis=1)
    assert np.allclose(alignment_distance(a, b), expected, atol=1e-6)
    assert np.allclose(
        alignment_distance(an.astype(np.float16), bn.astype(np.float16)), expected, atol=2e-3
    )
    cos = 1 - 1.06**2 / 2  # a pair exactly at the window's lower edge
    edge = alignment_distance(np.array([[1.0, 0.0]]), np.array([[cos, np.sqrt(1 - cos**2)]]))
    assert edge[0] == pytest.approx(1.06)
    emb = Embeddings(
        ["x"],
        np.array([[1.0, 0.0]], np.float16),
        np.array([[cos, np.sqrt(1 - cos**2)]], np.float16),
        "clip",
    )
    assert alignment_frame(emb)["distance"][0] == pytest.approx(1.06, abs=2e-3)
