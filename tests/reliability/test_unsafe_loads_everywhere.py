"""Static guard over everything shipped besides the package (tests/test_safety.py covers hf_deeplense/):
recipes, dataset scripts, the demo app and the benchmarks never unpickle by themselves."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FOLDERS = ["hf_deeplense", "recipes", "dataset_scripts", "app", "bench"]
PICKLE_LOADS = {
    "pickle.load",
    "pickle.loads",
    "joblib.load",
    "dill.load",
    "cloudpickle.load",
    "torch.serialization.load",
}


def _files():
    return [path for folder in FOLDERS for path in sorted((REPO / folder).rglob("*.py"))]


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name:
            return keyword.value.value if isinstance(keyword.value, ast.Constant) else "non-constant"
    return "missing"


def _offences(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        where = f"{path.relative_to(REPO)}:{node.lineno}"
        if name == "torch.load" and _keyword(node, "weights_only") is not True:
            found.append(f"{where}: torch.load without weights_only=True")
        elif name in PICKLE_LOADS:
            found.append(f"{where}: {name}")
        elif name in ("np.load", "numpy.load") and _keyword(node, "allow_pickle") not in ("missing", False):
            found.append(f"{where}: np.load(allow_pickle={_keyword(node, 'allow_pickle')})")
    return found


# The places that may unpickle: the converter's opt-in branch (`--allow-pickle`), tested in
# tests/data/test_convert.py::test_pickle_payload_does_not_run_without_the_flag, and predict's reads, which pass
# the caller's `allow_pickle` (default False, checked in tests/test_safety.py), tested in
# tests/test_cli.py::test_allow_pickle_reads_axion_files_and_a_payload_runs_only_with_the_flag.
ALLOWED = {
    "hf_deeplense/data/convert.py: np.load(allow_pickle=True)",
    "hf_deeplense/predict.py: np.load(allow_pickle=non-constant)",
}


def test_nothing_shipped_unpickles_outside_the_converter_opt_in():
    offences = [offence for path in _files() for offence in _offences(path)]
    unexpected = [offence for offence in offences if _without_line(offence) not in ALLOWED]
    assert not unexpected, unexpected
    assert offences, "the converter's opt-in np.load(allow_pickle=True) should be seen by this scan"


def _without_line(offence: str) -> str:
    location, what = offence.split(": ", 1)
    return f"{location.rsplit(':', 1)[0]}: {what}"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("torch.load(p)", 1),
        ("torch.load(p, weights_only=False)", 1),
        ("torch.load(p, weights_only=True)", 0),
        ("np.load(p, allow_pickle=True)", 1),
        ("np.load(p, allow_pickle=flag)", 1),
        ("np.load(p)", 0),
        ("pickle.loads(b)", 1),
    ],
)
def test_the_scan_catches_each_unsafe_call(tmp_path, monkeypatch, source, expected):
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    (tmp_path / "snippet.py").write_text(source + "\n")
    assert len(_offences(tmp_path / "snippet.py")) == expected
