import csv
from pathlib import Path

import fasttext
import pytest

from danqing import config
from danqing.filters import registry, source, text
from danqing.steps import caption_steps
from danqing.text import reference_entropy, segment
from tests.conftest import pairs

CFG = config.load()["filters"]
COCO_CN = Path(__file__).resolve().parent / "data" / "coco_cn_captions_sample.csv"


def kept_texts(result):
    return result.kept["alt_text"].to_list()


def test_every_filter_handles_an_empty_shard():
    empty = pairs([])
    for name, fn in registry().items():
        result = fn(empty, CFG[name])
        assert result.kept.height == 0 and result.dropped.height == 0, name
        assert result.dropped.columns == ["uid", "step", "reason", "value"], name


def test_language_control_needs_the_zho_tag():
    df = pairs(["一", "二", "三", "四", "五"], languages=["zho", "eng,zho", "eng", "", None])
    result = source.language_control(df, CFG["language_control"])
    assert result.kept["uid"].to_list() == ["u0", "u1"]
    assert result.dropped["reason"].unique().to_list() == ["language_tag"]
    assert result.dropped["value"].to_list() == ["eng", "", ""]


def test_text_safety_lexicon_matches_through_spacing_and_width(tmp_path):
    df = pairs(["正常的风景照片", "网上 赌-场 真人荷官", "ＡＶ女优写真", "卖淫嫖娼"])
    result = source.text_safety(df, CFG["text_safety"])
    assert kept_texts(result) == ["正常的风景照片"]
    assert result.dropped["reason"].to_list() == [
        "unsafe_lexicon:gambling", "unsafe_lexicon:porn", "unsafe_lexicon:porn"]
    with pytest.raises(ValueError, match="lexicon, a fasttext_model"):
        source.text_safety(df, {**CFG["text_safety"], "lexicon": None})


def test_text_safety_with_a_real_fasttext_classifier(tmp_path):
    unsafe = ["在线 赌场 下注 赢钱", "成人 视频 免费 观看", "赌博 网站 充值 返利", "裸聊 直播 约会"]
    safe = ["西湖 风景 秋天 游客", "红烧肉 家常 做法 美味", "新款 连衣裙 夏季 女装", "北京 地铁 新线 开通"]
    lines = [f"__label__unsafe {t}" for t in unsafe] * 20 + [f"__label__safe {t}" for t in safe] * 20
    train = tmp_path / "train.txt"
    train.write_text("\n".join(lines) + "\n")
    model = fasttext.train_supervised(str(train), epoch=20, lr=0.2, wordNgrams=1, dim=16,
                                      minCount=1, seed=1, thread=1)
    path = tmp_path / "safety.bin"
    model.save_model(str(path))
    cfg = {**CFG["text_safety"], "lexicon": None, "fasttext_model": str(path), "threshold": 0.5}
    df = pairs(["在线赌场下注赢钱", "西湖秋天的风景"])
    result = source.text_safety(df, cfg)
    assert kept_texts(result) == ["西湖秋天的风景"]
    assert result.dropped["reason"].to_list() == ["unsafe_classifier"]
    assert result.kept["text_safety_score"][0] < 0.5 < float(result.dropped["value"][0])
    with pytest.raises(ValueError, match="label"):
        source.text_safety(df, {**cfg, "unsafe_label": "__label__nope"})
    with pytest.raises(FileNotFoundError):
        source.text_safety(df, {**cfg, "fasttext_model": str(tmp_path / "missing.bin")})


def test_source_reliability_matches_parent_domains_on_label_boundaries():
    df = pairs(["a", "b", "c", "d"],
               url=["http://img.dummyimage.com/1.png", "http://notdummyimage.com/2.png",
                    "http://img.alicdn.com/3.jpg", "http://img.alicdn.com/4.jpg"],
               page_url=["https://x.cn", "https://y.cn", "https://www.placeholder.com/a", None],
               domain=["dummyimage.com", "notdummyimage.com", "alicdn.com", "alicdn.com"])
    result = source.source_reliability(df, CFG["source_reliability"])
    assert result.kept["uid"].to_list() == ["u1", "u3"]
    assert result.dropped["value"].to_list() == ["domain:dummyimage.com", "page:www.placeholder.com"]


def test_text_constraints_counts_jieba_words():
    short = "红烧肉做法"  # 红烧肉 / 做法
    ok = "2024新款韩版宽松连衣裙女士夏季"
    long = "，".join(["北京举行春季招聘会吸引数千名市民参加"] * 10)
    result = source.text_constraints(pairs([short, ok, long, "！！！？？"]), CFG["text_constraints"])
    assert kept_texts(result) == [ok]
    assert result.dropped["reason"].to_list() == ["too_few_words", "too_many_words", "too_few_words"]
    assert result.kept["word_count"][0] == len(segment(ok)) >= 5


def test_cn_detect_keeps_chinese_and_drops_other_languages():
    df = pairs(["一群人围坐在有一个生日蛋糕的桌子旁", "東京の夜景がとても綺麗でした",
                "Best wireless earbuds for running in 2024", "서울 여행 맛집 추천 리스트"])
    result = text.cn_detect(df, CFG["cn_detect"])
    assert result.kept["uid"].to_list() == ["u0"]
    assert result.kept["lang_zh_prob"][0] > 0.9
    assert set(result.dropped["reason"]) == {"not_chinese"}


def test_font_conversion_rewrites_and_removes_none():
    df = pairs(["臺北故宮博物院展覽", "简体字不变"])
    result = text.font_conversion(df, CFG["font_conversion"])
    assert kept_texts(result) == ["台北故宫博物院展览", "简体字不变"]
    assert result.transformed == 1 and result.dropped.height == 0


def test_stop_words_drops_boilerplate_only_captions():
    df = pairs(["点击查看更多图片 返回首页", "我们的这个那个一些", "西湖的秋天 2024", "2024 12 01 点击"])
    result = text.stop_words(df, CFG["stop_words"])
    assert kept_texts(result) == ["西湖的秋天 2024"]
    assert result.dropped["reason"].unique().to_list() == ["only_stop_words"]


def test_nouns_requires_a_noun():
    df = pairs(["真的太好看了 强烈推荐 值得购买", "桌子上放着一台笔记本电脑"])
    result = text.nouns(df, CFG["nouns"])
    assert kept_texts(result) == ["桌子上放着一台笔记本电脑"]
    assert result.kept["noun_count"][0] >= 2


def test_unk_tokens_counts_chinese_clip_unknowns():
    rare = "𠀀𠀁𠀂𠀃𠀄𠀅"
    df = pairs(["一群人在海边散步" + rare[:5], "一群人在海边散步" + rare])
    result = text.unk_tokens(df, CFG["unk_tokens"])
    assert result.kept["unk_count"].to_list() == [5]
    assert result.dropped["value"].to_list() == ["6"]


def test_text_entropy_definition_and_threshold():
    freq, total = {"西湖": 600, "风景": 400}, 1000
    # -(0.6 log2 0.6) - 0.4 log2 0.4 over the tokens; unknown tokens add nothing.
    assert reference_entropy(["西湖", "风景", "未知"], freq, total) == pytest.approx(0.970951, 1e-5)
    assert reference_entropy(["西湖", "西湖"], freq, total) == pytest.approx(2 * 0.442179, 1e-5)
    df = pairs(["张伟 王芳 刘洋 陈静 杨帆", "一群人围坐在有一个生日蛋糕的桌子旁"])
    result = text.text_entropy(df, CFG["text_entropy"])
    assert kept_texts(result) == ["一群人围坐在有一个生日蛋糕的桌子旁"]
    assert float(result.dropped["value"][0]) < 6e-4 < result.kept["text_entropy"][0]


def test_text_entropy_with_a_custom_frequency_table(tmp_path):
    table = tmp_path / "freq.txt"
    table.write_text("张伟 50000\n王芳 50000\n其他 900000\n")
    cfg = {**CFG["text_entropy"], "frequency_table": str(table)}
    result = text.text_entropy(pairs(["张伟 王芳 刘洋 陈静 杨帆"]), cfg)
    assert result.dropped.height == 0


def test_emoji_and_special_characters_are_removed():
    assert text.clean_caption("🔥新款★连衣裙❤️夏季!!!!~~~ 👍🏻") == "新款连衣裙夏季!~"
    assert text.clean_caption("价格¥99 尺寸100×200mm 温度25°C") == "价格¥99 尺寸100×200mm 温度25°C"
    assert text.clean_caption("\u200b零宽\ue000私用区") == "零宽私用区"
    df = pairs(["✨西湖✨美景", "★☆★", "普通标题"])
    result = text.emoji_special_chars(df, CFG["emoji_special_chars"])
    assert kept_texts(result) == ["西湖美景", "普通标题"]
    assert result.transformed == 2
    assert result.dropped["reason"].to_list() == ["empty_after_cleaning"]


def test_content_safety_drops_advertising():
    df = pairs(["新款连衣裙 加 微 信 领取优惠", "新款连衣裙夏季"])
    result = text.text_content_safety(df, CFG["text_content_safety"])
    assert kept_texts(result) == ["新款连衣裙夏季"]
    assert result.dropped["reason"].to_list() == ["unsafe_lexicon:advertising"]


def test_text_filters_keep_nearly_all_human_captions():
    """Real human-written captions (COCO-CN sample) are clean: the text stages keep them."""
    with open(COCO_CN, encoding="utf-8") as handle:
        captions = [row["alt_text"] for row in csv.DictReader(handle)]
    df = pairs(captions, domain=["cocodataset.org"] * len(captions))
    funcs = registry()
    for step in config.load()["steps"]:
        if step in caption_steps():
            df = funcs[step](df, CFG[step]).kept
    assert df.height >= 0.98 * len(captions)


# --- fast paths give exactly what the plain definitions give ---------------------------------


def _mixed_strings(count: int, seed: int = 1) -> list[str]:
    """Every BMP character alone, runs of three of each, and random mixes of ASCII, CJK and
    full-width punctuation, spaces, combining marks, emoji and compatibility characters."""
    import random

    rng = random.Random(seed)
    bmp = [chr(c) for c in range(0x20, 0x10000) if not 0xD800 <= c < 0xE000]
    pool = [chr(c) for c in [*range(0x20, 0x7F), *range(0x3000, 0x3040), *range(0xFE10, 0xFE70),
                             *range(0xFF00, 0xFFEF), 0x9, 0xA, 0x301, 0x308, 0xE9, 0xB7, 0x2014,
                             0x2026, 0x201C, 0x2122, 0x2460, 0x4E2D, 0x6587, 0xFE0F, 0x1F600,
                             0x20000]]
    mixes = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 12))) for _ in range(count)]
    return bmp + [" " + c * 3 for c in bmp[:0x3100]] + mixes


def test_clean_caption_fast_path_is_exact():
    def plain(t: str) -> str:
        kept = text._REPEATED_PUNCT.sub(r"\1", text._NOISE.sub("", t))
        return text._SPACES.sub(" ", kept).strip()

    for sample in _mixed_strings(30_000):
        assert text.clean_caption(sample) == plain(sample), repr(sample)


def test_lexicon_matching_form_fast_path_is_exact():
    import unicodedata

    from danqing.text import _NOT_ALNUM, normalise_for_matching

    for sample in _mixed_strings(30_000, seed=2):
        expected = _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", sample).lower())
        assert normalise_for_matching(sample) == expected, repr(sample)


def test_unk_prefilter_and_stop_word_number_test_are_exact():
    from danqing import cnclip

    tok = cnclip.tokenizer(None)
    samples = _mixed_strings(3_000, seed=3)[::7] + ["a" * 201, "中" + "x" * 250, "12.5%", "三"]
    expected = [sum(t == "[UNK]" for t in tok.tokenize(s)) for s in samples]
    assert text.count_unk(samples) == expected
    words = ["12.5%", "3/4", "+86", "中文", "abc", "１２", "2026-11", "", "٣"]
    assert [w for w in words if text.is_content_word(w, frozenset())] == [
        w for w in words if not text._NUMBER.match(w)
    ]


def test_per_caption_sums_equal_the_per_caption_loop():
    from danqing.text import per_caption_sums, tagged_weight

    captions = [row["alt_text"] for row in csv.DictReader(COCO_CN.open(encoding="utf-8"))]
    spaced = [" ".join(segment(t)) for t in captions[:400]] + ["", None, "的 的 的", "猫"]
    stop = text.load_stop_words(tuple(str(p) for p in CFG["stop_words"]["lists"]))
    noun = tagged_weight(tuple(CFG["nouns"]["noun_tag_prefixes"]))
    for weight in (noun, lambda w: int(text.is_content_word(w, stop)), len):
        expected = [sum(weight(w) for w in s.split(" ")) if s else 0 for s in spaced]
        assert per_caption_sums(spaced, weight) == expected
    assert per_caption_sums([], len) == []
