"""The README is code: every code block in it runs, as written.

- ```python blocks run in a fresh interpreter;
- blocks of ``>>>`` lines (the shell tour) run as doctests;
- ```sh and ```console blocks run command by command in bash (``$ `` lines of a
  console block; every line of a sh block; a trailing ``\\`` joins lines;
  ``pip install`` is skipped: the test environment is the installed one).

They run in a temporary folder where ``pcaps/``, ``examples/`` and
``scapy_geneve/data/`` of this checkout are reachable under their own names, so
the README's paths work.  A command is expected to exit 0, or the code an
``<!-- exit: N -->`` comment right before its block says (``lint`` exits 1 on
findings).  A block that cannot run here (a real Dask or Spark cluster, real
interfaces) is marked ``<!-- not run: reason -->`` and listed by
:func:`test_blocks_not_run_say_why`.
"""

import doctest
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import List, NamedTuple, Optional, Tuple

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")  # indented too: a block inside a list item
MARK = re.compile(r"<!--\s*(not run|exit):\s*(.*?)\s*-->")


class Block(NamedTuple):
    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    not_run: Optional[str]
    exit_code: int


def blocks() -> List[Block]:
    out: List[Block] = []
    lines = README.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        start, indent, lang = i, m.group(1), m.group(2)
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith("```"):
            j += 1
        not_run, code = None, 0
        k = start - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marks = MARK.findall(lines[k]) if k >= 0 else []
        for kind, value in marks:
            if kind == "not run":
                not_run = value
            else:
                code = int(value)
        body = [ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[start + 1 : j]]
        out.append(Block(start + 1, lang, "\n".join(body), not_run, code))
        i = j + 1
    return out


def _kind(block: Block) -> str:
    if block.lang in ("sh", "console", "bash"):
        return "shell"
    if block.lang in ("", "python") and (
        block.text.lstrip().startswith(">>>") or block.text.startswith("$ scapy-geneve shell")
    ):
        return "doctest"  # a session: ```python blocks of >>> lines too
    if block.lang == "python":
        return "python"
    if "\n>>> " in block.text:
        return "doctest"
    return "text"


RUNNABLE = [b for b in blocks() if _kind(b) != "text"]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    for name in ("pcaps", "examples", "bench"):
        (tmp_path / name).symlink_to(ROOT / name)
    (tmp_path / "scapy_geneve").mkdir()
    (tmp_path / "scapy_geneve" / "data").symlink_to(ROOT / "scapy_geneve" / "data")
    return tmp_path


def _env() -> dict:
    path = os.environ.get("PYTHONPATH")
    return dict(os.environ, PYTHONPATH=str(ROOT) + (os.pathsep + path if path else ""))


def _commands(block: Block) -> List[Tuple[str, Optional[str]]]:
    """(command, expected output) pairs.

    In a console block the lines after a ``$ `` command, up to the next one,
    are what it prints (compared with doctest's ``...`` and whitespace rules);
    a command followed by no line is not compared.  A sh block has no output.
    """
    text = block.text.replace("\\\n", " ")
    cmds: List[Tuple[str, Optional[str]]] = []
    expected: List[str] = []

    def close() -> None:
        if cmds and block.lang == "console" and expected:
            cmds[-1] = (cmds[-1][0], "\n".join(expected) + "\n")
        expected.clear()

    for raw in text.splitlines():
        line = raw.strip()
        if block.lang == "console" and not line.startswith("$ "):
            if cmds and raw.strip():
                expected.append(raw)
            continue
        close()
        if block.lang == "console":
            line = line[2:]
        if not line or line.startswith("#"):
            continue
        for part in re.split(r"\s*&&\s*", line):
            if not part.startswith("pip install"):
                cmds.append((part, None))
    close()
    return cmds


def _doctest_source(block: Block) -> str:
    lines = [ln for ln in block.text.splitlines() if not ln.startswith("$ ")]
    return "\n".join(lines) + "\n"


DOCTEST_RUNNER = (
    "import doctest, sys\n"
    "from scapy.all import *\n"
    "from scapy_geneve import *\n"
    "src = sys.stdin.read()\n"
    "test = doctest.DocTestParser().get_doctest(src, globals(), 'README', 'README.md', %d)\n"
    "runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | "
    "doctest.NORMALIZE_WHITESPACE | doctest.IGNORE_EXCEPTION_DETAIL)\n"
    "runner.run(test)\n"
    "sys.exit(1 if runner.failures else 0)\n"
)


def _run(args: List[str], workdir: Path, stdin: Optional[str] = None) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        args,
        cwd=str(workdir),
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
    )


def _run_python(block: Block, workdir: Path) -> None:
    res = _run([sys.executable, "-c", block.text], workdir)
    assert res.returncode == 0, "README.md:%d\n%s" % (block.line, res.stderr[-3000:])


def _run_doctest(block: Block, workdir: Path) -> None:
    res = _run([sys.executable, "-c", DOCTEST_RUNNER % block.line], workdir, _doctest_source(block))
    assert res.returncode == 0, "README.md:%d\n%s%s" % (block.line, res.stdout[-3000:], res.stderr[-2000:])


def _run_shell(block: Block, workdir: Path) -> None:
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    for cmd, want in _commands(block):
        res = _run(["bash", "-o", "pipefail", "-c", cmd], workdir)
        out = res.stdout[-1500:] + res.stderr[-1500:]
        assert res.returncode == block.exit_code, "README.md:%d: %s -> exit %d\n%s" % (
            block.line,
            cmd,
            res.returncode,
            out,
        )
        if want is not None:
            assert checker.check_output(want, res.stdout, flags), "README.md:%d: %s printed\n%s" % (
                block.line,
                cmd,
                res.stdout[-3000:],
            )


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: "README.md:%d" % b.line)
def test_readme_block_runs(block: Block, workdir: Path) -> None:
    if block.not_run:
        pytest.skip("README.md:%d not run: %s" % (block.line, block.not_run))
    run = {"python": _run_python, "doctest": _run_doctest, "shell": _run_shell}[_kind(block)]
    run(block, workdir)


def test_blocks_not_run_say_why() -> None:
    skipped = [b for b in RUNNABLE if b.not_run]
    assert all(len(b.not_run or "") > 10 for b in skipped)
    assert len(skipped) <= 6, ["README.md:%d %s" % (b.line, b.not_run) for b in skipped]


def test_every_code_block_is_runnable_or_plain_output() -> None:
    # Plain ``` blocks are program output (tables, findings); anything else is run above.
    for block in blocks():
        if _kind(block) == "text":
            assert block.lang == "", "README.md:%d: unknown block language %r" % (block.line, block.lang)


def test_doctest_import_is_available() -> None:
    assert doctest.ELLIPSIS
