"""Blocks marked `# Copied from hf_deeplense.models.<arch>.modeling_<arch>.Name[.method] [with A->B, C->D]` must
equal their source after the replacements, up to `ruff format` (a compact version of transformers'
`utils/check_copies.py`).

Shared layers are copied, not imported, because each model folder must load as remote code on its own.
"""

import ast
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
MODELS_DIR = PACKAGE_ROOT / "hf_deeplense" / "models"
COPIED_FROM = re.compile(
    r"^(?P<indent>\s*)# Copied from (?P<target>hf_deeplense\.[\w.]+?)(?: with (?P<replace>.+))?\s*$"
)


def find_definition(tree: ast.Module, qualified_name: str) -> ast.AST | None:
    """The class / function node named `Name` or `Class.method` in a module."""
    nodes: list[ast.AST] = tree.body
    node = None
    for part in qualified_name.split("."):
        node = next(
            (
                candidate
                for candidate in nodes
                if isinstance(candidate, (ast.ClassDef, ast.FunctionDef)) and candidate.name == part
            ),
            None,
        )
        if node is None:
            return None
        nodes = node.body
    return node


def definition_source(lines: list[str], node: ast.AST) -> str:
    start = min([node.lineno] + [decorator.lineno for decorator in node.decorator_list])
    return textwrap.dedent("\n".join(lines[start - 1 : node.end_lineno]))


def ruff_format(source: str) -> str:
    """`source` as `ruff format` (the project's settings) writes it: a replacement such as `with A->B` changes line
    lengths, so the formatter may wrap or join lines of the copy differently from its source."""
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--stdin-filename", "copy.py", "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=PACKAGE_ROOT,
        check=True,
    )
    return result.stdout


def resolve(target: str) -> tuple[Path, str]:
    """`hf_deeplense.models.vit.modeling_vit.DeepLenseViTModel.forward` -> (file, `DeepLenseViTModel.forward`)."""
    parts = target.split(".")
    for split in range(len(parts) - 1, 0, -1):
        path = PACKAGE_ROOT.joinpath(*parts[:split]).with_suffix(".py")
        if path.is_file():
            return path, ".".join(parts[split:])
    raise AssertionError(f"no module for {target}")


def copied_blocks():
    """(file, line number, target, replacements, copied source) for every `# Copied from` comment."""
    blocks = []
    for path in sorted(MODELS_DIR.rglob("*.py")):
        text = path.read_text()
        lines = text.splitlines()
        tree = ast.parse(text)
        definitions = [node for node in ast.walk(tree) if isinstance(node, (ast.ClassDef, ast.FunctionDef))]
        for index, line in enumerate(lines):
            match = COPIED_FROM.match(line)
            if match is None:
                continue
            first_line = index + 2  # the definition right below the comment (1-based line numbers)
            node = next(
                (
                    node
                    for node in definitions
                    if min([node.lineno] + [d.lineno for d in node.decorator_list]) == first_line
                ),
                None,
            )
            assert node is not None, (
                f"{path}:{index + 1}: '# Copied from' is not right above a class or function"
            )
            replacements = []
            if match["replace"]:
                for pair in match["replace"].split(","):
                    old, new = pair.strip().split("->")
                    replacements.append((old.strip(), new.strip()))
            blocks.append((path, index + 1, match["target"], replacements, definition_source(lines, node)))
    return blocks


BLOCKS = copied_blocks()


def test_copies_exist():
    assert any("vit.modeling_vit" in target for _, _, target, _, _ in BLOCKS)


# Code shared by the heads of several architectures: a marker that disappears leaves the copy unchecked.
EXPECTED_COPIES = [
    ("equivariant/modeling_equivariant.py", "cnn.modeling_cnn.DeepLenseCNNForImageClassification.forward"),
    ("equivariant/modeling_equivariant.py", "cnn.modeling_cnn.DeepLenseCNNForRegression.forward"),
    ("equivariant/modeling_equivariant.py", "vit.modeling_vit.DeepLenseViTPreTrainedModel.save_pretrained"),
    ("equivariant/configuration_equivariant.py", "vit.configuration_vit._per_target"),
    ("lensfinder/modeling_lensfinder.py", "vit.modeling_vit.DeepLenseViTPreTrainedModel.save_pretrained"),
    ("hybrid/modeling_hybrid.py", "vit.modeling_vit.DeepLenseViTForImageClassification.__init__"),
    ("hybrid/modeling_hybrid.py", "vit.modeling_vit.DeepLenseViTForImageClassification.forward"),
    ("hybrid/modeling_hybrid.py", "vit.modeling_vit.DeepLenseViTForRegression.__init__"),
    ("hybrid/modeling_hybrid.py", "vit.modeling_vit.DeepLenseViTForRegression.forward"),
]


@pytest.mark.parametrize("copy_file, target", EXPECTED_COPIES)
def test_shared_head_code_is_marked(copy_file, target):
    marked = {(f"{path.parent.name}/{path.name}", target) for path, _, target, _, _ in BLOCKS}
    assert (copy_file, f"hf_deeplense.models.{target}") in marked, (
        f"no '# Copied from' for {target} in {copy_file}"
    )


@pytest.mark.parametrize(
    "path, line, target, replacements, copy",
    BLOCKS,
    ids=[f"{path.parent.name}/{path.name}:{line}" for path, line, *_ in BLOCKS],
)
def test_copied_block_matches_source(path, line, target, replacements, copy):
    source_path, qualified_name = resolve(target)
    source_text = source_path.read_text()
    node = find_definition(ast.parse(source_text), qualified_name)
    assert node is not None, f"{path}:{line}: {target} not found"
    expected = definition_source(source_text.splitlines(), node)
    for old, new in replacements:
        expected = expected.replace(old, new)
    if replacements and copy != expected:
        copy, expected = ruff_format(copy), ruff_format(expected)
    assert copy == expected, f"{path}:{line} differs from {target} (with {replacements}); update the copy"
