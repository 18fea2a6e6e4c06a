import csv

import fasttext
import pytest

from danqing import config, webnoise
from danqing.chinese_text import entropy_terms, is_word, read_word_list, reference_entropy, segment
from danqing.cnclip_unk import count_unk
from danqing.evaluation import real_sets
from danqing.filters import registry, source, text
from danqing.steps import caption_steps
from tests.conftest import pairs

CFG = config.load()["filters"]
COCO_CN = real_sets.shared_data() / "coco_cn_captions_sample.csv"


def kept_texts(result):
    return result.kept["alt_text"].to_list()


def test_is_word_is_any_alphanumeric_character():
    for code in range(0x110000):
        char = chr(code)
        assert is_word(char) == char.isalnum(), hex(code)
    for token in ("", "_", "__", " a", "_1", "—…", "²", "😀猫", "é", "\u0301"):
        assert is_word(token) == any(ch.isalnum() for ch in token), repr(token)


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
    df = pairs(
        [
            "正常的风景照片",
            "网上 赌-场 真人荷官",
            "ＡＶ女优写真",
            "警方破获卖淫嫖娼案件",
            "雨宫琴音 步兵 作品番号",
        ]
    )
    result = source.text_safety(df, CFG["text_safety"])
    # News about a crime is content; the offer of the service is not.
    assert kept_texts(result) == ["正常的风景照片", "警方破获卖淫嫖娼案件"]
    assert result.dropped["reason"].to_list() == [
        "unsafe_lexicon:gambling",
        "unsafe_lexicon:porn",
        "unsafe_lexicon:porn",
    ]
    with pytest.raises(ValueError, match="lexicon, a fasttext_model"):
        source.text_safety(df, {**CFG["text_safety"], "lexicon": None})


def test_lexicon_regex_terms_and_bad_lines(tmp_path):
    from danqing import safety

    good = tmp_path / "good.tsv"
    good.write_text("contact\t加微信\ncontact\tre:微信[a-z0-9_-]*\\d{5,}\n")
    lexicon = safety.load_lexicon(str(good))
    assert lexicon.match("盆景 微信 88508279") == ("contact", "微信88508279")
    assert lexicon.match("加 微-信") == ("contact", "加微信")
    assert lexicon.match("微信公众号文章") is None
    bad = tmp_path / "bad.tsv"
    bad.write_text("contact\tre:([\n")
    with pytest.raises(ValueError, match="bad pattern"):
        safety.load_lexicon(str(bad))


def test_text_safety_with_a_real_fasttext_classifier(tmp_path):
    unsafe = ["在线 赌场 下注 赢钱", "成人 视频 免费 观看", "赌博 网站 充值 返利", "裸聊 直播 约会"]
    safe = [
        "西湖 风景 秋天 游客",
        "红烧肉 家常 做法 美味",
        "新款 连衣裙 夏季 女装",
        "北京 地铁 新线 开通",
    ]
    lines = [f"__label__unsafe {t}" for t in unsafe] * 20 + [
        f"__label__safe {t}" for t in safe
    ] * 20
    train = tmp_path / "train.txt"
    train.write_text("\n".join(lines) + "\n")
    model = fasttext.train_supervised(
        str(train), epoch=20, lr=0.2, wordNgrams=1, dim=16, minCount=1, seed=1, thread=1
    )
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
    df = pairs(
        ["a", "b", "c", "d"],
        url=[
            "http://img.dummyimage.com/1.png",
            "http://notdummyimage.com/2.png",
            "http://img.alicdn.com/3.jpg",
            "http://img.alicdn.com/4.jpg",
        ],
        page_url=["https://x.cn", "https://y.cn", "https://www.placeholder.com/a", None],
        domain=["dummyimage.com", "notdummyimage.com", "alicdn.com", "alicdn.com"],
    )
    result = source.source_reliability(df, CFG["source_reliability"])
    assert result.kept["uid"].to_list() == ["u1", "u3"]
    assert result.dropped["value"].to_list() == [
        "domain:dummyimage.com",
        "page:www.placeholder.com",
    ]


def test_source_reliability_drops_logos_and_icons_by_their_url_path():
    urls = [
        "https://static.ws.126.net/f2e/news/res/channel_logo_new/news.png",
        "http://mat1.gtimg.com/pingjs/ext2020/dcom/article_logo.png",
        "https://n.netease.com/ucenter_old/data/avatar/000/79/73/56_avatar_small.jpg",
        "https://comment.sinaimg.cn/emoji/default/face_sina_102.png",
        "https://bbs.example.cn/static/image/stamp/011.small.gif",
        "https://static.ws.126.net/cnews/css13/img/end_news.png",  # a stylesheet's own image
        # content images, also when the host or a word inside a name says logo/icon
        "https://logo.example.cn/2020/0801/c92faa06j00qedl4g.jpg",
        "https://img.example.cn/catalogue/iconic-bridge.jpg",
        "https://img.example.cn/2019/09/07/20190907115529669.jpg",
        "https://img.example.cn/themes-of-spring/cssr.jpg",
    ]
    result = source.source_reliability(
        pairs(["图"] * len(urls), url=urls), CFG["source_reliability"]
    )
    assert result.dropped["reason"].to_list() == [
        "non_content_image:logo",
        "non_content_image:logo",
        "non_content_image:icon",
        "non_content_image:icon",
        "non_content_image:icon",
        "non_content_image:theme",
    ]
    assert result.kept.height == 4


def test_text_constraints_counts_characters():
    short = "红烧肉"
    ok = "2024新款韩版宽松连衣裙女士夏季"
    long = "，".join(["北京举行春季招聘会吸引数千名市民参加"] * 4)
    df = pairs([short, ok, long, "！！！？？？"])
    result = source.text_constraints(df, CFG["text_constraints"])
    assert kept_texts(result) == [ok]
    assert result.dropped["reason"].to_list() == [
        "too_few_words",
        "too_many_words",
        "too_few_words",
    ]
    assert result.kept["word_count"][0] == len(ok)
    assert result.kept["words"][0] == " ".join(segment(ok))
    # The jieba reading: 红烧肉 / 做法 is two words, too few.
    words = source.text_constraints(
        pairs(["红烧肉做法", ok]), {**CFG["text_constraints"], "unit": "jieba_words"}
    )
    assert kept_texts(words) == [ok]


def test_text_constraints_drops_file_names_interface_text_and_site_names():
    texts = [
        "3.jpg",
        "IMG_0012.JPG",
        "003ednc20190925",
        "attach_img",
        "http://t.cn/RxYz12",
        "返回顶部",
        "点击查看高清原图",
        "客户端下载",
        "游民星空",
        "新浪新闻客户端",
        # captions: a path-like product title, a document title, a headline
        "糖尿病一日三餐怎么吃/健康爱家系列",
        "中小学生必知鸟类识上.doc",
        "逆水寒再按照这个速度研发下去",
    ]
    titles = (
        [None] * 8
        + ["逆水寒研发速度|游民星空", "中国人习以为常的地方_新浪新闻"]
        + [None, None, "逆水寒再按照这个速度研发下去|游民星空"]
    )
    df = pairs(texts, page_title=titles)
    result = source.text_constraints(df, CFG["text_constraints"])
    assert (
        result.dropped["reason"].to_list()
        == ["file_name_alt"] * 5 + ["interface_text"] * 3 + ["site_name_alt"] * 2
    )
    assert kept_texts(result) == texts[-3:]


def test_cn_detect_keeps_chinese_and_drops_other_languages():
    chinese = [
        "一群人围坐在有一个生日蛋糕的桌子旁",
        "豆豉蒸肉饼",
        "攀援草莓苗",
        "bandai战斗暴龙兽",
        "臺北故宮博物院展覽",
    ]
    others = [
        "東京の夜景がとても綺麗でした",
        "Best wireless earbuds for running in 2024",
        "서울 여행 맛집 추천 리스트",
        "茶道お手前 その一 送料無料",
    ]
    result = text.cn_detect(pairs(chinese + others), CFG["cn_detect"])
    assert kept_texts(result) == chinese
    assert result.kept["chinese_score"][0] > 0.9
    assert set(result.dropped["reason"]) == {"not_chinese"}
    # lid.176 alone calls a short unspaced dish name English: the script decides.
    assert text.script_share("豆豉蒸肉饼") == 1.0
    assert text.script_share("茶道お手前") == 0.0


def test_font_conversion_rewrites_and_removes_none():
    df = pairs(["臺北故宮博物院展覽", "简体字不变"])
    result = text.font_conversion(df, CFG["font_conversion"])
    assert kept_texts(result) == ["台北故宫博物院展览", "简体字不变"]
    assert result.transformed == 1 and result.dropped.height == 0


def test_stop_words_drops_boilerplate_only_captions():
    df = pairs(
        ["点击查看更多图片 返回首页", "我们的这个那个一些", "西湖的秋天 2024", "2024 12 01 点击"]
    )
    result = text.stop_words(df, CFG["stop_words"])
    assert kept_texts(result) == ["西湖的秋天 2024"]
    assert result.dropped["reason"].unique().to_list() == ["only_stop_words"]


def test_nouns_requires_a_noun():
    df = pairs(
        [
            "真的太好看了 强烈推荐 值得购买",
            "桌子上放着一台笔记本电脑",
            "打雷闪电不要随处走动",
            "微软暂停收购TikTok",
            "今天是中秋节",
        ]
    )
    result = text.nouns(df, CFG["nouns"])
    assert kept_texts(result) == df["alt_text"].to_list()[1:]
    assert result.kept["noun_count"][0] >= 2
    # 闪电 is `v` in jieba's dictionary; its head 电 is a noun.
    plain = text.nouns(df, {**CFG["nouns"], "compound_heads": False})
    assert "打雷闪电不要随处走动" not in kept_texts(plain)


def test_numerals_with_a_time_unit_are_time_words():
    good = ["【2015，这一年】", "三天两夜"]
    junk = ["打起来了，真的打起来了吗？", "真的太好看了 强烈推荐 值得购买"]
    result = text.nouns(pairs(good + junk), CFG["nouns"])
    assert kept_texts(result) == good
    without = {
        **CFG["nouns"],
        "noun_tag_prefixes": [p for p in CFG["nouns"]["noun_tag_prefixes"] if p != "t"],
    }
    assert "【2015，这一年】" not in kept_texts(text.nouns(pairs(good), without))


def test_idioms_split_nouns_and_date_events_count_as_nouns():
    good = ["从“一马当先”到“万马奔腾”", "仍然是强袭高达", "#9·3直击不凡#"]
    junk = ["真的太好看了 强烈推荐 值得购买", "9.3 真的好看"]
    result = text.nouns(pairs(good + junk), CFG["nouns"])
    assert kept_texts(result) == good
    without = text.nouns(pairs(good), {**CFG["nouns"], "noun_morphemes": False})
    assert kept_texts(without) == []


def test_unk_tokens_counts_chinese_clip_unknowns():
    rare = "𠀀𠀁𠀂𠀃𠀄𠀅"
    quoted = "“这是两回事”……——‘引号’“再来”"
    df = pairs(["一群人在海边散步" + rare[:5], "一群人在海边散步" + rare, quoted])
    result = text.unk_tokens(df, CFG["unk_tokens"])
    assert result.kept["unk_count"].to_list() == [5, 0]
    assert result.dropped["value"].to_list() == ["6"]
    counted = text.unk_tokens(df, {**CFG["unk_tokens"], "count_punctuation": True})
    assert counted.dropped["uid"].to_list() == ["u1", "u2"]


def test_text_entropy_definition_and_threshold():
    freq, total = {"西湖": 600, "风景": 400}, 1000
    # -(0.6 log2 0.6) - 0.4 log2 0.4 over the tokens; unknown tokens add nothing.
    assert reference_entropy(["西湖", "风景", "未知"], entropy_terms(freq, total)) == pytest.approx(
        0.970951, 1e-5
    )
    assert reference_entropy(["西湖", "西湖"], entropy_terms(freq, total)) == pytest.approx(
        2 * 0.442179, 1e-5
    )
    from danqing.chinese_text import character_frequencies

    assert character_frequencies({"西湖": 6, "湖水": 4}, 10) == ({"西": 6, "湖": 10, "水": 4}, 20)
    headline, code = "糖尿病足成非外伤截肢主因", "ws c2960 24tc s 640_535"
    result = text.text_entropy(pairs([code, headline]), CFG["text_entropy"])
    assert kept_texts(result) == [headline]
    assert float(result.dropped["value"][0]) < 6e-4 < result.kept["text_entropy"][0]
    # Read over jieba words, the headline's rare words make it "low-information".
    words = text.text_entropy(pairs([headline]), {**CFG["text_entropy"], "unit": "words"})
    assert words.kept.height == 0


def test_text_entropy_with_a_custom_frequency_table(tmp_path):
    table = tmp_path / "freq.txt"
    table.write_text("张伟 50000\n王芳 50000\n其他 900000\n")
    cfg = {**CFG["text_entropy"], "frequency_table": str(table), "unit": "words"}
    result = text.text_entropy(pairs(["张伟 王芳 刘洋 陈静 杨帆"]), cfg)
    assert result.dropped.height == 0


def test_cleaning_removes_web_noise_and_keeps_meaningful_symbols():
    emoticons = CFG["emoji_special_chars"]["emoticons"]

    def clean(t):
        return webnoise.clean(t, emoticons)

    assert clean("🔥新款★连衣裙❤️夏季!!!!~~~ 👍🏻") == ("新款★连衣裙夏季!~", ("emoji",))
    assert clean("今天25℃，120㎡★ ¥99 100×200mm《书》【新闻】")[1] == ()
    assert clean("\u200b零宽\ue000私用区") == ("零宽私用区", ("emoji",))
    assert clean("[哈哈][doge]好开心 O网页链接 via@张小云") == (
        "好开心",
        ("mention", "link_stub", "emoticon"),
    )
    assert clean("#天津塘沽大爆炸#有一种友情&nbsp;叫 //@丛伟金陵: 转发微博") == (
        "天津塘沽大爆炸 有一种友情 叫",
        ("entity", "repost", "hashtag"),
    )
    assert clean("寻人 联系电话：13812345678 或 010-12345678")[1] == ("phone",)
    assert clean("看 http://t.cn/RxYz12 和 www.abc.com/x") == ("看 和", ("url",))
    assert clean("真相在这里 O韩国学者称《西游记》起源于韩国") == ("真相在这里", ("link_stub",))
    # Bracketed words that are not emoticons, O型 and U盘 stay.
    assert clean("[转载][兰州拉面]好吃 O型血 U盘")[0] == "[转载][兰州拉面]好吃 O型血 U盘"
    df = pairs(["✨西湖✨美景", "★☆★", "普通标题", "[哈哈] O网页链接"])
    result = text.emoji_special_chars(df, CFG["emoji_special_chars"])
    assert kept_texts(result) == ["西湖美景", "普通标题"]
    assert result.transformed == 2  # ★☆★ is left as it is, and then has no word
    assert result.dropped["reason"].to_list() == ["empty_after_cleaning"] * 2
    assert result.extra["removed"]["emoji"] == 1
    assert result.extra["removed"]["link_stub"] == 1


def test_content_safety_drops_advertising():
    df = pairs(
        [
            "新款连衣裙 加 微 信 领取优惠",
            "新款连衣裙夏季",
            "方中山胡辣汤加盟",
            "高青县卫计局举办全县流感防治培训班",
            "23岁富婆征友，条件只有一个…",
        ]
    )
    result = text.text_content_safety(df, CFG["text_content_safety"])
    assert kept_texts(result) == ["新款连衣裙夏季", "高青县卫计局举办全县流感防治培训班"]
    assert result.dropped["reason"].to_list() == [
        "unsafe_lexicon:contact",
        "unsafe_lexicon:recruitment",
        "unsafe_lexicon:dating",
    ]


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
    rare_han = [chr(c) for c in range(0x20000, 0x32400)]  # assigned and unassigned
    pool = [
        chr(c)
        for c in [
            *range(0x20, 0x7F),
            *range(0x3000, 0x3040),
            *range(0xFE10, 0xFE70),
            *range(0xFF00, 0xFFEF),
            0x9,
            0xA,
            0x301,
            0x308,
            0xE9,
            0xB7,
            0x2014,
            0x2026,
            0x201C,
            0x2122,
            0x2460,
            0x4E2D,
            0x6587,
            0xFE0F,
            0x1F600,
            0x20000,
        ]
    ]
    mixes = ["".join(rng.choice(pool) for _ in range(rng.randint(0, 12))) for _ in range(count)]
    return bmp + rare_han + [" " + c * 3 for c in bmp[:0x3100]] + mixes


def test_cleaning_fast_path_is_exact():
    emoticons = CFG["emoji_special_chars"]["emoticons"]
    real = [
        t
        for name in ("weibo", "wukong", "news")
        for t in real_sets.load(name)["alt_text"].drop_nulls().to_list()
    ]
    # The halves of an emoticon code that a cut leaves (`！闪电]`, `[哈哈 `), after text.
    names = read_word_list(emoticons)
    halves = [f"{n}]" for n in names] + [f"！{n}]好" for n in names] + [f"[{n} 好" for n in names]
    for sample in _mixed_strings(30_000) + real + halves:
        assert webnoise.clean(sample, emoticons) == webnoise.clean(sample, emoticons, fast=False), (
            repr(sample)
        )


def test_lexicon_matching_form_fast_path_is_exact():
    import unicodedata

    from danqing.chinese_text import _NOT_ALNUM, normalise_for_matching

    for sample in _mixed_strings(30_000, seed=2):
        expected = _NOT_ALNUM.sub("", unicodedata.normalize("NFKC", sample).lower())
        assert normalise_for_matching(sample) == expected, repr(sample)


def test_unk_prefilter_and_stop_word_number_test_are_exact():
    from danqing import cnclip

    tok = cnclip.tokenizer(None)
    samples = _mixed_strings(3_000, seed=3)[::7] + ["a" * 201, "中" + "x" * 250, "12.5%", "三"]
    expected = [sum(t == "[UNK]" for t in tok.tokenize(s)) for s in samples]
    assert count_unk(samples) == expected
    words = ["12.5%", "3/4", "+86", "中文", "abc", "１２", "2026-11", "", "٣"]
    assert [w for w in words if text.is_content_word(w, frozenset())] == [
        w for w in words if not text._NUMBER.match(w)
    ]


def test_per_caption_sums_equal_the_per_caption_loop():
    from danqing.chinese_text import per_caption_sums, tagged_weight

    captions = [row["alt_text"] for row in csv.DictReader(COCO_CN.open(encoding="utf-8"))]
    spaced = [" ".join(segment(t)) for t in captions[:400]] + ["", None, "的 的 的", "猫"]
    stop = text.load_word_set(tuple(str(p) for p in CFG["stop_words"]["lists"]))
    noun = tagged_weight(tuple(CFG["nouns"]["noun_tag_prefixes"]))
    for weight in (noun, lambda w: int(text.is_content_word(w, stop)), len):
        expected = [sum(weight(w) for w in s.split(" ")) if s else 0 for s in spaced]
        assert per_caption_sums(spaced, weight) == expected
    assert per_caption_sums([], len) == []


def test_script_share_fast_path_and_char_class_are_exact():
    import random
    import re

    from danqing.chinese_text import char_class

    def by_letters(sample: str) -> float:
        if text.has_kana(sample) or text._HANGUL.search(sample):
            return 0.0
        letters = sum(1 for ch in sample if ch.isalpha())
        han = sum(1 for ch in text._HAN.findall(sample) if ch.isalpha())
        return han / letters if letters else 0.0

    for sample in _mixed_strings(20_000, seed=4) + [
        "の中文",
        "中\ufa6e",
        "12",
        "中a",
        "\U00020000",
    ]:
        assert text.script_share(sample) == by_letters(sample), repr(sample)
    codes = random.Random(5).sample(range(0x20, 0x32000), 40_000)
    chosen = {chr(c) for c in codes if not 0xD800 <= c < 0xE000}
    pattern = re.compile(f"[{char_class(chosen)}]")
    for code in range(0x20, 0x32000, 3):
        if not 0xD800 <= code < 0xE000:
            assert bool(pattern.fullmatch(chr(code))) == (chr(code) in chosen), hex(code)


def test_cn_detect_asks_the_model_only_where_a_letter_is_not_han(monkeypatch):
    asked = []
    real_predict = text.safety.predict

    def predict(model, texts, k=-1):
        asked.extend(texts)
        return real_predict(model, texts, k)

    monkeypatch.setattr(text.safety, "predict", predict)
    captions = ["豆豉蒸肉饼", "2024新款连衣裙", "bandai战斗暴龙兽", "東京の夜景がとても綺麗でした"]
    scores = text.chinese_scores(captions)
    assert scores[:2] == [1.0, 1.0]
    assert 0.0 < scores[2] < 1.0 and scores[3] < 0.2
    assert asked == [" ".join(segment(c)) for c in captions[2:]]


def test_url_patterns_match_all_equals_match_url_by_url(tmp_path):
    import polars as pl

    from danqing.boilerplate import load_url_patterns

    news = real_sets.load("news")["url"].to_list()
    urls = news + [None, "", "HTTPS://IMG.EXAMPLE.CN/Static/Image/Smiley/1.GIF", "logo.png"]
    patterns = load_url_patterns(str(CFG["source_reliability"]["non_content_images"]))

    assert patterns.match_all(pl.Series(urls, dtype=pl.String)) == [patterns.match(u) for u in urls]
    assert sum(1 for u in news if patterns.match(u)) > 50
    # A pattern Polars' regex engine cannot compile (a lookbehind) is searched URL by URL.
    custom = tmp_path / "patterns.tsv"
    custom.write_text("banner\t(?<!no)banner\\d\nlogo\tlogo\n", encoding="utf-8")
    own = load_url_patterns(str(custom))
    some = ["http://a.cn/banner1.jpg", "http://a.cn/nobanner1.jpg", "http://a.cn/logo_banner2.png"]
    assert own.match_all(pl.Series(some)) == ["banner", None, "banner"]


def test_long_captions_are_too_long_unsegmented_and_cleaned_words_are_segmented_when_read():
    import polars as pl

    from danqing.chinese_text import spaced_words

    long = "，".join(["北京举行春季招聘会吸引数千名市民参加"] * 4)
    result = source.text_constraints(pairs([long, "北京举行春季招聘会"]), CFG["text_constraints"])
    assert result.dropped.row(0, named=True)["value"] == str(sum(c.isalnum() for c in long))
    cleaned = text.emoji_special_chars(
        result.kept.with_columns(alt_text=pl.Series(["北京举行春季招聘会[哈哈]"])),
        CFG["emoji_special_chars"],
    )
    assert cleaned.kept["words"].to_list() == [None]
    assert spaced_words(cleaned.kept) == [" ".join(segment("北京举行春季招聘会"))]
