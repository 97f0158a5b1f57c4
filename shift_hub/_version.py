"""The version, in a module of its own: a module that records it imports this, not the package's `__init__`,
whose `evaluate`/`leaderboard`/`push_results` import the modules that record it (an import cycle otherwise)."""
__version__ = "0.1.0"
