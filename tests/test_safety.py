"""Static guards: no code path in the package unpickles untrusted files by accident."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).parents[1] / "hf_deeplense"


def _calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            yield node


def _name(call: ast.Call) -> str:
    return ast.unparse(call.func)


def _keyword(call: ast.Call, name: str):
    for keyword in call.keywords:
        if keyword.arg == name:
            return (
                ast.literal_eval(keyword.value) if isinstance(keyword.value, ast.Constant) else "non-constant"
            )
    return "missing"


def test_every_torch_load_uses_weights_only():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{call.lineno}"
        for path in PACKAGE.rglob("*.py")
        for call in _calls(path)
        if _name(call) == "torch.load" and _keyword(call, "weights_only") is not True
    ]
    assert not offenders, f"torch.load without weights_only=True: {offenders}"


def test_no_pickle_module_loads():
    offenders = [
        f"{path.relative_to(PACKAGE.parent)}:{call.lineno}"
        for path in PACKAGE.rglob("*.py")
        for call in _calls(path)
        if _name(call) in ("pickle.load", "pickle.loads", "joblib.load", "dill.load")
    ]
    assert not offenders, f"pickle loads: {offenders}"


def test_predict_unpickles_only_on_the_opt_in():
    """Every np.load of predict passes the caller's `allow_pickle` through, and every default is False."""
    tree = ast.parse((PACKAGE / "predict.py").read_text())
    loads = [call for call in _calls(PACKAGE / "predict.py") if _name(call) in ("np.load", "numpy.load")]
    assert loads, "predict reads .npy/.npz with np.load"
    assert all(ast.unparse(keyword.value) == "allow_pickle" for call in loads for keyword in call.keywords)
    assert all(any(keyword.arg == "allow_pickle" for keyword in call.keywords) for call in loads)
    defaults = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            arguments = node.args.args + node.args.kwonlyargs
            values = [None] * (len(node.args.args) - len(node.args.defaults)) + node.args.defaults
            values += node.args.kw_defaults
            for argument, default in zip(arguments, values):
                if argument.arg == "allow_pickle":
                    defaults[node.name] = ast.literal_eval(default) if default is not None else "required"
    assert defaults and set(defaults.values()) == {False}, defaults
    assert not [call for call in _calls(PACKAGE / "cli.py") if _name(call) in ("np.load", "numpy.load")]


def test_every_unpickler_is_restricted():
    """A `pickle.Unpickler` subclass must override `find_class` (the split-file reader allows numpy
    string arrays only); a bare `pickle.Unpickler(...)` would run any payload."""
    subclasses, bare = [], []
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                ast.unparse(b) == "pickle.Unpickler" for b in node.bases
            ):
                methods = {item.name for item in node.body if isinstance(item, ast.FunctionDef)}
                subclasses.append((path.name, node.name, "find_class" in methods))
            if isinstance(node, ast.Call) and ast.unparse(node.func) == "pickle.Unpickler":
                bare.append(f"{path.name}:{node.lineno}")
    assert subclasses, "the split-file unpickler should be seen by this scan"
    assert all(restricted for *_, restricted in subclasses), subclasses
    assert not bare, bare
