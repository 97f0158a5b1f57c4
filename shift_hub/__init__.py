"""shift_hub: regenerate ImageNet distribution-shift benchmarks and score any vision model on them."""
__version__ = "0.1.0"
