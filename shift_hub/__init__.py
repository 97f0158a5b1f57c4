"""shift_hub: regenerate ImageNet distribution-shift benchmarks and score any vision model on them."""
__version__ = "0.1.0"


def __getattr__(name):
    # `shift_hub.evaluate(model, data, ...)`: the evaluate subpackage is callable; importing it
    # lazily keeps `import shift_hub` free of torch/transformers.
    if name == "evaluate":
        import importlib

        return importlib.import_module(".evaluate", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
