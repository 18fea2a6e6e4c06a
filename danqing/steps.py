"""The ordered steps of the DanQing pipeline (paper Sec. 3.2, Table 6).

The Snakefile chains per-shard steps in this order and the report labels table rows with it, so a
step is added in one place. `paper_row` groups steps the way Table 6 merges them; `paper_left` and
`paper_stage_filter_pct` are the paper's published figures, kept only to print a calibration
comparison next to the workflow's own numbers (never used to compute them).
"""

from __future__ import annotations

from dataclasses import dataclass

COLLECTED_LABEL = "Collected image URL and text pairs"
PAPER_COLLECTED = 1_047_085_609


@dataclass(frozen=True)
class Step:
    name: str
    stage: str
    label: str
    kind: str  # "filter" removes rows, "transform" rewrites them and removes none
    scope: str  # "shard" (one job per shard), "batch" (per batch), "global" (one job)
    paper_row: str
    paper_left: int
    paper_stage_filter_pct: float
    # The workflow side: the conda env of its rule (envs/<env>.yaml); its named inputs beside the
    # shard, each (name, the rule whose output of that name it reads); own_rule: its rule is
    # written out in rules/ (download_images), else rules/filters.smk generates it.
    env: str = "text"
    upstream: tuple[tuple[str, str], ...] = ()
    own_rule: bool = False
    reads_embeddings: bool = False  # its decision rests on the image_embeddings rule's output
    # The cluster request of its generated rule: a key of RESOURCE_CLASSES (None: own rule).
    resources: str | None = "lookup"

    @property
    def requests(self) -> dict[str, int]:
        """mem_mb and runtime (minutes) of its rule's jobs."""
        return RESOURCE_CLASSES[self.resources]

    @property
    def module(self) -> str:
        """The module of its filter function, which is named like the step."""
        return FILTER_MODULES[self.stage]


# Cluster requests of a step's rule by what its job does, sized for shards of up to 1,000,000 rows
# (partition.shard_size; docs/cluster.md: all 12 text steps on 100,000 rows peak at 420 MB in one
# process, ~3,000 rows/s). A site overrides them with set-resources in its profile.
RESOURCE_CLASSES = {
    "lookup": {"mem_mb": 3000, "runtime": 10},  # a test per row, or a join by uid and a threshold
    "converting": {"mem_mb": 3000, "runtime": 20},  # OpenCC rewrites every caption
    "tokenising": {"mem_mb": 4000, "runtime": 20},  # jieba or BERT tokens of every caption
    "tagging": {"mem_mb": 4000, "runtime": 30},  # jieba part-of-speech tags of every caption
}

SOURCE = "Data Source Selection"
TEXT = "Text Refinement"
VISUAL = "Visual Diversification"
CROSS = "Cross-Modal Cross-Batch Filtering"
# Where each stage's filter functions live (danqing/filters/).
FILTER_MODULES = {
    SOURCE: "danqing.filters.source",
    TEXT: "danqing.filters.text",
    VISUAL: "danqing.filters.image",
    CROSS: "danqing.filters.image",
}

# Table 6 prints 69.37% and 67.29% as "Stage Filter %" for its first and download rows: those are the
# kept shares. The removed shares consistent with its Left Data Num column are used here.
STEPS: tuple[Step, ...] = (
    Step(
        "language_control",
        SOURCE,
        "Language Control",
        "filter",
        "shard",
        "Language Control & Content Safety",
        726_334_674,
        30.63,
    ),
    Step(
        "text_safety",
        SOURCE,
        "Content Safety",
        "filter",
        "shard",
        "Language Control & Content Safety",
        726_334_674,
        30.63,
    ),
    Step(
        "source_reliability",
        SOURCE,
        "Source Reliability",
        "filter",
        "shard",
        "Source Reliability & Text Constraints",
        706_069_936,
        2.79,
    ),
    Step(
        "text_constraints",
        SOURCE,
        "Text Constraints",
        "filter",
        "shard",
        "Source Reliability & Text Constraints",
        706_069_936,
        2.79,
        resources="tokenising",
    ),
    Step(
        "download_images",
        SOURCE,
        "Download Success",
        "filter",
        "shard",
        "Download Success",
        475_104_485,
        32.71,
        env="image",
        own_rule=True,
        resources=None,  # rules/download.smk sizes its rule
    ),
    Step(
        "cn_detect",
        TEXT,
        "Linguistic Structure (CN-Detect)",
        "filter",
        "shard",
        "Linguistic Structure (CN-Detect)",
        467_455_303,
        1.61,
        resources="tokenising",
    ),
    Step(
        "font_conversion",
        TEXT,
        "Linguistic Structure (Font conversion)",
        "transform",
        "shard",
        "Linguistic Structure (Font conversion)",
        467_455_303,
        0.00,
        resources="converting",
    ),
    Step(
        "stop_words",
        TEXT,
        "Text Quality (Stop words)",
        "filter",
        "shard",
        "Text Quality (Stop words)",
        442_680_171,
        5.30,
        resources="tokenising",
    ),
    Step(
        "nouns",
        TEXT,
        "Text Quality (Nouns)",
        "filter",
        "shard",
        "Text Quality (Nouns)",
        431_878_774,
        2.44,
        resources="tagging",
    ),
    Step(
        "unk_tokens",
        TEXT,
        "Text Quality ([UNK])",
        "filter",
        "shard",
        "Text Quality ([UNK])",
        431_619_647,
        0.06,
        resources="tokenising",
    ),
    Step(
        "text_entropy",
        TEXT,
        "Information Density (Entropy)",
        "filter",
        "shard",
        "Information Density (Entropy)",
        400_068_251,
        7.31,
        resources="tokenising",
    ),
    Step(
        "emoji_special_chars",
        TEXT,
        "Information Density (Emoji&special chars)",
        "transform",
        "shard",
        "Information Density (Emoji&special chars)",
        400_068_251,
        0.00,
    ),
    Step(
        "text_content_safety",
        TEXT,
        "Content Safety",
        "filter",
        "shard",
        "Content Safety (text)",
        397_187_759,
        0.72,
    ),
    Step(
        "image_geometry",
        VISUAL,
        "Visual Fidelity (Aspect ratio & min edge)",
        "filter",
        "shard",
        "Visual Fidelity",
        352_663_012,
        11.21,
        env="image",
        upstream=(("metrics", "image_metrics"),),
    ),
    Step(
        "low_textual_images",
        VISUAL,
        "Visual Fidelity (Low-textual images)",
        "filter",
        "shard",
        "Visual Fidelity (Low-textual images)",
        352_204_550,
        0.13,
        env="image",
        upstream=(("metrics", "image_metrics"),),
    ),
    Step(
        "blurry_images",
        VISUAL,
        "Visual Fidelity (Blurry images)",
        "filter",
        "shard",
        "Visual Fidelity (Blurry images)",
        333_255_945,
        5.38,
        env="image",
        upstream=(("metrics", "image_metrics"),),
    ),
    Step(
        "image_entropy",
        VISUAL,
        "Information Density",
        "filter",
        "shard",
        "Information Density (image)",
        316_359_868,
        5.07,
        env="image",
        upstream=(("metrics", "image_metrics"),),
    ),
    # Table 6 counts identical and near-duplicate images in one row; the paper gives no count
    # after the identical ones alone, so this step carries the row's input as its left count.
    Step(
        "exact_dedup",
        VISUAL,
        "Perceptual Redundancy (identical bytes)",
        "filter",
        "batch",
        "Perceptual and Semantic Redundancy",
        316_359_868,
        41.20,
        env="image",
        upstream=(("clusters", "exact_dedup_clusters"),),
    ),
    Step(
        "semantic_dedup",
        VISUAL,
        "Perceptual and Semantic Redundancy",
        "filter",
        "batch",
        "Perceptual and Semantic Redundancy",
        186_019_602,
        41.20,
        env="image",
        upstream=(("clusters", "semantic_dedup_clusters"),),
        reads_embeddings=True,
    ),
    Step(
        "image_safety",
        VISUAL,
        "Content Safety",
        "filter",
        "shard",
        "Content Safety (image)",
        178_601_215,
        3.25,
        env="image",
        upstream=(("scores", "nsfw_scores"),),
    ),
    Step(
        "cross_modal_alignment",
        CROSS,
        "Cross-Modal Alignment Assessment",
        "filter",
        "shard",
        "Cross-Modal Alignment Assessment",
        154_293_590,
        13.61,
        env="image",
        upstream=(("distances", "image_embeddings"),),
        reads_embeddings=True,
    ),
    Step(
        "cross_batch_dedup",
        CROSS,
        "Cross-Batch Redundancy Removal",
        "filter",
        "global",
        "Cross-Batch Redundancy Removal",
        99_892_381,
        35.26,
        env="image",
        upstream=(("clusters", "cross_batch_dedup_clusters"),),
        reads_embeddings=True,
    ),
)

BY_NAME = {step.name: step for step in STEPS}


def step_names(enabled: set[str] | None = None) -> list[str]:
    """Step names in pipeline order, restricted to `enabled` when given."""
    return [s.name for s in STEPS if enabled is None or s.name in enabled]


def generated_rule_steps() -> list[Step]:
    """The steps whose rule rules/filters.smk generates: every one but those with their own."""
    return [s for s in STEPS if not s.own_rule]


def steps_reading(rule: str) -> tuple[str, ...]:
    """The steps that read an output of `rule` (their `upstream`), in pipeline order."""
    return tuple(s.name for s in STEPS if any(producer == rule for _, producer in s.upstream))


def embedding_steps() -> tuple[str, ...]:
    """The steps that need the image (and caption) embeddings."""
    return tuple(s.name for s in STEPS if s.reads_embeddings)


def image_steps() -> list[str]:
    """The steps that decide on the downloaded images (they need download_images)."""
    return [s.name for s in STEPS if s.stage in (VISUAL, CROSS)]


def caption_steps() -> list[str]:
    """The steps that decide on a pair's text and metadata alone (no downloaded image needed)."""
    return [s.name for s in STEPS if s.stage in (SOURCE, TEXT) and s.name != "download_images"]
