import gc
import os

import pytest
from fresh_python import FreshPython

# Tests never touch the network: any Hub request raises OfflineModeIsEnabled.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def pytest_collection_modifyitems(items):
    """Tests marked `slow` (end-to-end runs, subprocesses: 10-70 s each) run first, the rest in their order after
    them: under `pytest -n 2` the short tests then fill both workers to the end instead of one worker finishing a
    long test alone."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def pytest_collection_finish(session):
    """The imported libraries (~600k objects) live as long as the test process: kept out of the collector, the
    full collection after every in-process Trainer run (accelerate's `free_memory`) takes microseconds, not ~0.3 s."""
    gc.freeze()


@pytest.fixture(scope="session")
def fresh_python(tmp_path_factory):
    """One interpreter per test worker where hf_deeplense cannot be imported (see `fresh_python.py`)."""
    interpreter = FreshPython(tmp_path_factory.mktemp("fresh_python"))
    yield interpreter
    interpreter.close()
