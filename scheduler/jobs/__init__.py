"""Every module here declares jobs with ``@job``; importing the package registers them all."""

from . import mentoring  # noqa: F401
from . import sanling  # noqa: F401
