"""The former home of the benchmark study runner, now `hf_deeplense.study` (it runs training and evaluation, so it
sits above both); its names stay importable from here."""

from ..study.runner import *  # noqa: F403
from ..study.runner import __all__  # noqa: F401  (the same names)
