"""The notebook runner: parameters read safely, overrides checked, profile chosen, notebooks executed."""

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from mecl_utils.book.kernel import NotebookExecutionError, QuietKernelManager, execute_notebook
from mecl_utils.book.parameters import notebook_parameters, validate_parameters
from mecl_utils.book.profile_choice import resolve_profile
from mecl_utils.networks.data import DataNotFoundError

HEADER = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
    format_version: 0.13
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
"""


def write_notebook(folder: Path, parameters: str, body: str = "x = 1", name: str = "tiny.md") -> Path:
    path = folder / name
    parameters_cell = f"```{{code-cell}} ipython3\n:tags: [parameters]\n\n{parameters}\n```\n"
    body_cell = f"```{{code-cell}} ipython3\n{body}\n```\n"
    path.write_text(f"{HEADER}\n# Tiny\n\n{parameters_cell}\n{body_cell}")
    return path


@pytest.fixture
def tiny(tmp_path):
    return write_notebook(
        tmp_path,
        'n: int = 3\nrate: float = 0.5\nname: str = "x"\nsizes: tuple = (1, 2)\nflag: bool = True\n'
        'data_dir: str = ""',
    )


def test_parameters_are_read_as_literals(tiny):
    assert notebook_parameters(tiny) == {
        "n": 3,
        "rate": 0.5,
        "name": "x",
        "sizes": (1, 2),
        "flag": True,
        "data_dir": "",
    }


def test_a_computed_parameter_is_rejected_naming_its_line(tmp_path):
    notebook = write_notebook(tmp_path, "n: int = 3\nm: int = n * 2")
    with pytest.raises(ValueError, match=r"line 2: 'm: int = n \* 2'"):
        notebook_parameters(notebook)


def test_an_unannotated_parameter_is_rejected_with_the_fix(tmp_path):
    with pytest.raises(ValueError, match="is not `name: type = <literal>`"):
        notebook_parameters(write_notebook(tmp_path, "n = 3"))


def test_an_annotation_that_contradicts_the_value_is_rejected(tmp_path):
    with pytest.raises(ValueError, match=r"e\.g\. `n: str = \.\.\.`"):
        notebook_parameters(write_notebook(tmp_path, 'n: int = "three"'))


def test_an_equals_sign_in_a_comment_is_rejected_because_papermill_stops_there(tmp_path):
    with pytest.raises(ValueError, match="no other '=' on its line"):
        notebook_parameters(write_notebook(tmp_path, 'data_dir: str = ""  # "" = the default'))


def test_a_notebook_without_a_parameters_cell_is_rejected(tmp_path):
    notebook = tmp_path / "plain.md"
    notebook.write_text(HEADER + "\n```{code-cell} ipython3\nx = 1\n```\n")
    with pytest.raises(ValueError, match="0 code cells tagged `parameters`"):
        notebook_parameters(notebook)


def test_an_unknown_parameter_is_rejected_listing_the_valid_ones(tiny):
    with pytest.raises(ValueError, match=r"no parameter.*'epochs'.*valid parameters: n, rate, name"):
        validate_parameters(tiny, {"epochs": 3})


def test_a_parameter_of_the_wrong_type_is_rejected(tiny):
    with pytest.raises(TypeError, match=r"parameter 'n' expects int .* got str 'three'"):
        validate_parameters(tiny, {"n": "three"})


def test_an_int_is_accepted_for_a_float_parameter(tiny):
    assert validate_parameters(tiny, {"rate": 1}) == {"rate": 1.0}


def test_a_path_is_accepted_where_the_default_is_an_empty_string(tiny):
    assert validate_parameters(tiny, {"data_dir": "/data"}) == {"data_dir": "/data"}


@pytest.fixture
def no_local_data(tmp_path, monkeypatch):
    for name in ("data", "keras"):
        (tmp_path / name).mkdir()
    monkeypatch.setenv("MECL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv("MECL_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("MECL_ALLOW_DOWNLOAD", raising=False)
    return tmp_path


def test_auto_falls_back_to_smoke_without_cifar10_saying_why(no_local_data):
    profile, reason = resolve_profile("auto")
    assert profile == "smoke"
    assert f"CIFAR-10 not found locally (looked in {no_local_data / 'data'})" in reason


def test_auto_picks_book_when_cifar10_and_the_weights_are_local(no_local_data, monkeypatch):
    cifar = no_local_data / "data" / "cifar-10-batches-py"
    cifar.mkdir()
    for name in ["test_batch", "batches.meta"] + [f"data_batch_{i}" for i in range(1, 6)]:
        (cifar / name).touch()
    (no_local_data / "keras" / "models").mkdir()
    (no_local_data / "keras" / "models" / "mobilenet_2_5_224_tf_no_top.h5").touch()
    profile, reason = resolve_profile("auto")
    assert profile == "book"
    assert f"CIFAR-10 found in {cifar}" in reason


def test_an_explicit_book_profile_without_cifar10_raises(no_local_data):
    with pytest.raises(DataNotFoundError, match="make book DATA_DIR=DIR"):
        resolve_profile("book")


@pytest.mark.slow
def test_an_override_is_injected_into_the_executed_notebook(tmp_path):
    notebook = write_notebook(tmp_path, 'greeting: str = "hello"', body="print(greeting)")
    execute_notebook(notebook, tmp_path / "out.ipynb", {"greeting": "bonjour"})
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert executed.cells[-1].outputs[0].text == "bonjour\n"


@pytest.mark.slow
def test_a_failing_cell_raises_naming_the_notebook(tmp_path):
    notebook = write_notebook(tmp_path, "n: int = 1", body="1 / 0", name="broken.md")
    with pytest.raises(NotebookExecutionError, match=r"notebook .*broken\.md failed .*ZeroDivisionError"):
        execute_notebook(notebook, tmp_path / "out.ipynb", {})


@pytest.mark.slow
def test_two_notebooks_started_at_once_in_one_folder_both_run(tmp_path):
    # Both kernels once took the socket files kernel-ipc-1..5 of the shared folder ("Invalid Signature").
    runs = []
    for name in ("first", "second"):
        notebook = write_notebook(tmp_path, "n: int = 1", body=f"print('{name}')", name=f"{name}.md")
        output = tmp_path / f"{name}.ipynb"
        command = [sys.executable, "-m", "mecl_utils.book", "run", str(notebook), str(output)]
        runs.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        logs = [run.communicate(timeout=120)[0] for run in runs]
    finally:
        for run in runs:
            run.kill()
    assert [run.returncode for run in runs] == [0, 0], logs
    for name in ("first", "second"):
        executed = nbformat.read(tmp_path / f"{name}.ipynb", as_version=4)
        assert executed.cells[-1].outputs[0].text == f"{name}\n"
    assert not list(tmp_path.glob("kernel-ipc-*"))


def test_each_kernel_gets_its_own_socket_prefix_outside_the_notebook_folder():
    first, second = QuietKernelManager(kernel_name="python3"), QuietKernelManager(kernel_name="python3")
    assert first.ip != second.ip
    assert Path(first.ip).is_absolute() and Path(second.ip).is_absolute()


def test_run_command_rejects_an_unknown_parameter_before_executing(tmp_path, capsys):
    from mecl_utils.book.__main__ import main

    pacing_chapter = str(Path(__file__).resolve().parents[1] / "notebooks" / "pacing.md")
    code = main(["run", pacing_chapter, str(tmp_path / "out.ipynb"), "-p", "batchsize", "128"])
    assert code == 1
    assert "batchsize" in capsys.readouterr().err
    assert not (tmp_path / "out.ipynb").exists()


def test_a_local_mathjax_is_bundled_into_the_book(tmp_path):
    from mecl_utils.book.build import _bundle_mathjax

    mathjax = tmp_path / "mathjax-es5"
    mathjax.mkdir()
    (mathjax / "tex-mml-chtml.js").write_text("// MathJax")
    config = {}
    assert _bundle_mathjax(tmp_path / "src", config, mathjax)
    assert (tmp_path / "src" / "_mathjax" / "mathjax" / "tex-mml-chtml.js").is_file()
    assert config["sphinx"]["config"]["mathjax_path"] == "../mathjax/tex-mml-chtml.js"


def test_without_a_local_mathjax_the_cdn_is_kept(tmp_path, monkeypatch):
    from mecl_utils.book.build import _bundle_mathjax

    monkeypatch.delenv("MECL_MATHJAX_DIR", raising=False)
    config = {}
    assert not _bundle_mathjax(tmp_path / "src", config, tmp_path / "none")
    assert config == {}
