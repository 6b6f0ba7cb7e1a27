"""Repository-level pytest setup. The quantkit gates themselves come from the installed plugin
(``quantkit.plugin``, registered as a ``pytest11`` entry point), so a team's own repository gets
the same fixtures and options after ``pip install quantkit-yolo``.
"""

import os

from hypothesis import HealthCheck, settings

# "ci": no deadline (shared 2-core runners are noisy) and derandomized, so a red run replays.
settings.register_profile(
    "ci", deadline=None, derandomize=True, max_examples=60, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, max_examples=200)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
