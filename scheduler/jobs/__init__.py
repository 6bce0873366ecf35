"""Every module here declares jobs with ``@job``; importing the package registers them all."""

from . import changqing, housekeeping, mentoring, sanling, sanling_cases  # noqa: F401
