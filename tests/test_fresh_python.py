"""The shared interpreter of the remote-code tests is a user's interpreter without hf_deeplense."""

import pytest


def test_hf_deeplense_cannot_be_imported_and_each_script_gets_its_argv(fresh_python, tmp_path):
    with pytest.raises(AssertionError, match="import of hf_deeplense halted"):
        fresh_python.run("import hf_deeplense", cwd=tmp_path)
    script = "import os, sys; print(sys.argv[1:], os.getcwd(), 'PYTHONPATH' in os.environ)"
    assert fresh_python.run(script, "a", 1, cwd=tmp_path).split() == ["['a',", "'1']", str(tmp_path), "False"]
    assert fresh_python.unique_dir(tmp_path, "model") != fresh_python.unique_dir(tmp_path, "model")


def test_a_script_that_kills_the_interpreter_fails_and_the_next_one_runs(fresh_python, tmp_path):
    with pytest.raises(AssertionError, match="stopped or ran past"):
        fresh_python.run("import os; os._exit(3)", cwd=tmp_path)
    assert fresh_python.run("print(6 * 7)", cwd=tmp_path).strip() == "42"
