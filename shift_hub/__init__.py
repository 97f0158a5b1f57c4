"""shift_hub: regenerate ImageNet distribution-shift benchmarks and score any vision model on them.

The Python API is plain functions (`shift_hub.generate.generate` writes data); each imports its heavy dependencies (torch,
transformers, matplotlib) only when called, so `import shift_hub` stays fast.
"""
from ._version import __version__


def evaluate(model=None, data="samples", configs=None, **options):
    """Score one model on the configs of `data` (a generated folder, a Hub dataset id, a `datasets.Dataset` or
    `samples`); returns an EvaluationResult. See `shift_hub.evaluation.api.evaluate` for every option."""
    from .evaluation.api import evaluate as _evaluate

    return _evaluate(model, data, configs, **options)


def evaluate_many(models, data="samples", configs=None, **options):
    """Score several models on the same data: one results folder per model plus a leaderboard."""
    from .evaluation.api import evaluate_many as _evaluate_many

    return _evaluate_many(models, data, configs, **options)


def leaderboard(paths, out, sort=None, plots=True, bootstrap=1000, seed=0):
    """Rank results folders: markdown + CSV table, leaderboard.html and effective-robustness plots, with 95 %
    intervals and paired significance (`bootstrap` resamples, 0: none); returns (board, paths)."""
    from .evaluation.leaderboard import leaderboard as _leaderboard

    return _leaderboard(paths, out, sort=sort, plots=plots, bootstrap=bootstrap, seed=seed)


def push_results(results_dir, model_repo, create_pr=False, **options):
    """Upload a results folder's .eval_results/shift_hub.yaml to a Hub model repo (a PR when needed)."""
    from .hub.push_results import push_results as _push_results

    return _push_results(results_dir, model_repo, create_pr=create_pr, **options)


__all__ = ["evaluate", "evaluate_many", "leaderboard", "push_results", "__version__"]
