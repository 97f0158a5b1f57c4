"""Scoring checkpoints on shift configs: models, label spaces, metrics, runner, reports, the robustness suite,
results sharing and leaderboards. The public entry points are `shift_hub.evaluate`, `shift_hub.evaluate_many`,
`shift_hub.leaderboard` and `shift_hub.push_results`; nothing heavy is imported until a function runs."""
