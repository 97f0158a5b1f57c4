"""A `datasets.GeneratorBasedBuilder` whose configs are the registry's, sharing the engine's per-image path.

    from shift_hub.builders import ShiftHub
    builder = ShiftHub(config_name="clean", source="samples", cache_dir="/tmp/cache")
    builder.download_and_prepare(); ds = builder.as_dataset(split="validation")

Rows are byte-identical to those `shift-hub generate` writes for the same source and seed
(tested); the CLI writes Hub-layout parquet directly, this builder serves `datasets` users who
want the Arrow cache instead.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import datasets

from shift_hub import generate as engine
from shift_hub.registry import REGISTRY
from shift_hub.masks import for_spec
from shift_hub.sources import open_source


@dataclass
class ShiftHubConfig(datasets.BuilderConfig):
    source: str = "samples"
    seed: int = 0
    limit: int | None = None
    png: bool = False
    p_encoding: str = "png"  # ImageNet-P configs: "mp4" adds the release's x264 video (`video`), frames decoded from it


class ShiftHub(datasets.GeneratorBasedBuilder):
    BUILDER_CONFIG_CLASS = ShiftHubConfig
    BUILDER_CONFIGS = [ShiftHubConfig(name=spec.name, description=spec.description) for spec in REGISTRY.values()]
    DEFAULT_CONFIG_NAME = "clean"

    def _info(self) -> datasets.DatasetInfo:
        spec = REGISTRY[self.config.name]
        video = engine.video_for(spec, self.config.p_encoding) is not None
        return datasets.DatasetInfo(description=spec.description, citation=spec.citation,
                                    features=engine.features(spec, video=video))

    def _split_generators(self, dl_manager):
        return [datasets.SplitGenerator(name=engine.SPLIT)]

    def _generate_examples(self):
        spec = REGISTRY[self.config.name]
        source = open_source(self.config.source)
        examples = engine.plan_examples(source, self.config.limit)
        engine._preflight([spec])
        # object masks (XImageNet-12) are cached next to the builder's Arrow cache, as generate caches them in OUT
        masks = engine._mask_context([spec], examples, source, Path(self.cache_dir).parent / "shift_hub_masks", None)
        encoding = engine.encoding_for(spec, self.config.png)
        job = engine.ShardJob(spec, 0, 1, tuple(examples), self.config.seed, encoding, "", "", source.describe(),
                              masks=for_spec(spec, masks), video=engine.video_for(spec, self.config.p_encoding))
        report = engine.ConfigReport(spec.name)
        written = 0
        for row in engine.iter_rows(job, source, report):
            written += 1
            yield row["image_id"], row
        if not written:
            reasons = "; ".join(s["reason"] for s in report.skipped[:3])
            raise engine.GenerationError(f"{spec.name}: every image was skipped ({reasons})")
