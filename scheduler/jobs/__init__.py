"""Every module here declares jobs with ``@job``; importing the package registers them all."""

from . import changqing, mentoring, sanling  # noqa: F401
