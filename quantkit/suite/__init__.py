"""The gate suite: run it on any model with ``pytest --pyargs quantkit.suite --quantkit-model ...``."""
