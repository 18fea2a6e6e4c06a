# Keep captions that fastText language ID finds Chinese.
rule cn_detect:
    input:
        shard=step_input("cn_detect"),
    output:
        **step_outputs("cn_detect"),
    log:
        step_log("cn_detect"),
    conda:
        "../envs/text.yaml"
    params:
        step="cn_detect",
        cfg=config["filters"]["cn_detect"],
    script:
        "../scripts/filter_shard.py"


# Convert Traditional to Simplified Chinese with OpenCC (removes none).
rule font_conversion:
    input:
        shard=step_input("font_conversion"),
    output:
        **step_outputs("font_conversion"),
    log:
        step_log("font_conversion"),
    conda:
        "../envs/text.yaml"
    params:
        step="font_conversion",
        cfg=config["filters"]["font_conversion"],
    script:
        "../scripts/filter_shard.py"


# Drop captions with no word outside the stop-word lists.
rule stop_words:
    input:
        shard=step_input("stop_words"),
    output:
        **step_outputs("stop_words"),
    log:
        step_log("stop_words"),
    conda:
        "../envs/text.yaml"
    params:
        step="stop_words",
        cfg=config["filters"]["stop_words"],
    script:
        "../scripts/filter_shard.py"


# Drop captions in which jieba's POS tagger finds no noun.
rule nouns:
    input:
        shard=step_input("nouns"),
    output:
        **step_outputs("nouns"),
    log:
        step_log("nouns"),
    conda:
        "../envs/text.yaml"
    params:
        step="nouns",
        cfg=config["filters"]["nouns"],
    script:
        "../scripts/filter_shard.py"


# Drop captions with more than 5 [UNK] tokens under Chinese-CLIP's tokenizer.
rule unk_tokens:
    input:
        shard=step_input("unk_tokens"),
    output:
        **step_outputs("unk_tokens"),
    log:
        step_log("unk_tokens"),
    conda:
        "../envs/text.yaml"
    params:
        step="unk_tokens",
        cfg=config["filters"]["unk_tokens"],
    script:
        "../scripts/filter_shard.py"


# Drop low information-density captions (reference-corpus token entropy).
rule text_entropy:
    input:
        shard=step_input("text_entropy"),
    output:
        **step_outputs("text_entropy"),
    log:
        step_log("text_entropy"),
    conda:
        "../envs/text.yaml"
    params:
        step="text_entropy",
        cfg=config["filters"]["text_entropy"],
    script:
        "../scripts/filter_shard.py"


# Remove emoji and special characters (removes none).
rule emoji_special_chars:
    input:
        shard=step_input("emoji_special_chars"),
    output:
        **step_outputs("emoji_special_chars"),
    log:
        step_log("emoji_special_chars"),
    conda:
        "../envs/text.yaml"
    params:
        step="emoji_special_chars",
        cfg=config["filters"]["emoji_special_chars"],
    script:
        "../scripts/filter_shard.py"


# Drop advertising and other unsafe captions.
rule text_content_safety:
    input:
        shard=step_input("text_content_safety"),
    output:
        **step_outputs("text_content_safety"),
    log:
        step_log("text_content_safety"),
    conda:
        "../envs/text.yaml"
    params:
        step="text_content_safety",
        cfg=config["filters"]["text_content_safety"],
    script:
        "../scripts/filter_shard.py"
