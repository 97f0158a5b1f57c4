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

import datasets

from shift_hub import generate as engine
from shift_hub.registry import REGISTRY
from shift_hub.sources import open_source


@dataclass
class ShiftHubConfig(datasets.BuilderConfig):
    source: str = "samples"
    seed: int = 0
    limit: int | None = None
    png: bool = False


class ShiftHub(datasets.GeneratorBasedBuilder):
    BUILDER_CONFIG_CLASS = ShiftHubConfig
    BUILDER_CONFIGS = [ShiftHubConfig(name=spec.name, description=spec.description) for spec in REGISTRY.values()]
    DEFAULT_CONFIG_NAME = "clean"

    def _info(self) -> datasets.DatasetInfo:
        spec = REGISTRY[self.config.name]
        return datasets.DatasetInfo(description=spec.description, citation=spec.citation, features=engine.features())

    def _split_generators(self, dl_manager):
        return [datasets.SplitGenerator(name=engine.SPLIT)]

    def _generate_examples(self):
        spec = REGISTRY[self.config.name]
        source = open_source(self.config.source)
        examples = engine.plan_examples(source, self.config.limit)
        encoding = engine.Encoding(format="PNG", quality=None) if self.config.png else spec.encoding
        job = engine.ShardJob(spec, 0, 1, tuple(examples), self.config.seed, encoding, "", "", source.describe())
        for row in engine.iter_rows(job, source, engine.ConfigReport(spec.name)):
            yield row["image_id"], row
