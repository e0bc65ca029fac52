"""The README and docs/ stay true: links resolve, command blocks run, quoted figures match the committed reports.

The convention for fenced blocks in README.md and docs/*.md (defined here):

- ```python: run as written, offline (MNIST is conftest's small generated cache).
- ```sh: every command line runs here (a few seconds each) and must succeed; `python` and `experiments` are
  this project's. A block too long or impossible to run here (`make full`, a cluster, the book's own files)
  carries `<!-- illustrative: why -->` on the line before it.
- ```text (quoted output): `<!-- output of: COMMAND -->` on the line before it; the command runs and every
  quoted line must appear, in order, in what it prints (numbers within NUMBERS_RTOL, round-off alike).
  Otherwise it is illustrative, with where it came from.
- Any other block (no language) is illustrative and says so.
"""
import csv
import functools
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
MARKER = re.compile(r"<!--\s*(illustrative|output of):\s*(.*?)\s*-->")
# Quoted figures are printed to 3-4 significant digits; 2% covers their rounding and the drift of a figure
# computed on another machine. Figures below ROUND_OFF are round-off, compared only as round-off
# (docs/design.md, "Machine independence": not bit-stable across CPUs).
NUMBERS_RTOL = 0.02
ROUND_OFF = 1e-12


def blocks(page):
    """(language, marker kind, marker text, body, line) of each fenced block of a page."""
    lines, out, i = page.read_text().split("\n"), [], 0
    while i < len(lines):
        if lines[i].startswith("```"):
            lang, start = lines[i][3:].strip(), i
            j = i + 1
            while not lines[j].startswith("```"):
                j += 1
            m = MARKER.fullmatch(lines[start - 1].strip()) if start else None
            out.append((lang, m and m.group(1), m and m.group(2), "\n".join(lines[start + 1:j]), start + 1))
            i = j
        i += 1
    return out


ALL = [(p, *b) for p in PAGES for b in blocks(p)]


def _id(block):
    return f"{block[0].relative_to(REPO)}:{block[-1]}"


@pytest.mark.parametrize("block", ALL, ids=_id)
def test_every_block_runs_or_says_why_not(block):
    page, lang, kind, why, body, line = block
    where = f"{page.relative_to(REPO)} line {line}"
    if kind == "illustrative":
        assert why, f"{where}: an illustrative block says why (or where its output came from)"
    elif kind == "output of":
        assert lang == "text", f"{where}: `output of` marks a ```text block"
    else:
        assert lang in ("python", "sh"), (f"{where}: a ```{lang} block is run by no test: mark it "
                                          "<!-- illustrative: why --> or <!-- output of: COMMAND -->")


def _argv(command):
    """A documented command line as this project runs it: `python`/`experiments` are this interpreter's."""
    words = shlex.split(command, comments=True)
    if words[:1] == ["python"]:
        return [sys.executable, *words[1:]]
    if words[:1] == ["experiments"]:
        return [sys.executable, "-m", "experiments", *words[1:]]
    raise AssertionError(f"{command!r}: only python and experiments commands run here; mark the block illustrative")


# `experiments check` exits 1 when a layer is not `ok` (docs/checking.md, "Verdicts"); examples/book_layers.py
# holds the book's by-design differences, so 1 is its documented status. Every other command must succeed.
STATUS = {("check", "examples/book_layers.py"): 1}


@functools.cache
def run(command):
    argv = _argv(command)
    p = subprocess.run(argv, capture_output=True, text=True, cwd=REPO, timeout=300)
    sub = tuple(w for w in argv[3:] if not w.startswith("-"))[:2]
    assert p.returncode == STATUS.get(sub, 0), f"{command}: exit {p.returncode}\n{p.stderr[-2000:]}"
    return p.stdout


PYTHON = [b for b in ALL if b[1] == "python" and b[2] is None]


def test_the_docs_have_runnable_examples():
    assert len(PYTHON) >= 8


@pytest.mark.parametrize("block", PYTHON, ids=_id)
def test_python_blocks_run(block, small_mnist):
    """Each block runs as written; MNIST is a small generated cache (no download, no real data needed)."""
    exec(compile(block[4], _id(block), "exec"), {"__name__": "docs"})


SH = [b for b in ALL if b[1] == "sh" and b[2] is None]


@pytest.mark.parametrize("block", SH, ids=_id)
def test_sh_blocks_run(block):
    commands = [c for c in (line.split("#", 1)[0].strip() for line in block[4].splitlines()) if c]
    assert commands
    for command in commands:
        run(command)


NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def same_line(quoted, printed):
    """Equal words, and numbers within NUMBERS_RTOL (both round-off when below ROUND_OFF)."""
    a, b = quoted.split(), printed.split()
    if len(a) != len(b) or NUMBER.sub("#", quoted).split() != NUMBER.sub("#", printed).split():
        return False
    for x, y in zip(map(float, NUMBER.findall(quoted)), map(float, NUMBER.findall(printed))):
        if max(abs(x), abs(y)) < ROUND_OFF:
            continue
        if abs(x - y) > NUMBERS_RTOL * max(abs(x), abs(y)):
            return False
    return True


def test_same_line_compares_numbers_within_the_tolerance_and_words_exactly():
    assert same_line("Affine  torch.nn.Linear  5  1.87e-16  ok", "Affine torch.nn.Linear 5 5.55e-17 ok")
    assert same_line("ratio 1.004", "ratio 1.01")
    assert not same_line("ratio 1.004", "ratio 1.1")
    assert not same_line("Affine torch.nn.Linear 5 1.87e-16 ok", "Affine torch.nn.Linear 5 1.87e-16 mismatch")


OUTPUTS = [b for b in ALL if b[2] == "output of"]


@pytest.mark.parametrize("block", OUTPUTS, ids=_id)
def test_quoted_output_is_what_the_command_prints_now(block):
    """Regenerated and compared, not copied: every quoted line, in order, among the printed ones (a quote may
    leave lines out, as the checker's per-tensor tables)."""
    printed = run(block[3]).splitlines()
    at = 0
    for line in block[4].splitlines():
        if not line.strip() or line.startswith("$ "):
            continue
        while at < len(printed) and not same_line(line, printed[at]):
            at += 1
        assert at < len(printed), f"{_id(block)}: not printed (in this order) by {block[3]!r}: {line!r}"
        at += 1


# -- links -------------------------------------------------------------------------------------------------------
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def anchors(page):
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered."""
    seen, out = {}, set()
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    for heading in re.findall(r"^#+ (.*)$", text, re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def test_anchors_follow_githubs_rule():
    page = REPO / "docs" / "design.md"
    assert "tolerances-experimentscomparepy-tolerance" in anchors(page)
    assert "the-packages" in anchors(page)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_relative_link_resolves(page):
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
    links = [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]
    for target in links:
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.exists(), f"{page.name}: {target}: no such file"
        if anchor:
            assert anchor in anchors(file), f"{page.name}: {target}: no such heading in {file.name}"


def test_the_readme_links_every_docs_page():
    readme = (REPO / "README.md").read_text()
    for page in PAGES[1:]:
        assert f"(docs/{page.name})" in readme, page.name


def test_the_readme_is_one_screen_with_the_three_tasks():
    """The first screen: run the suite, check your own code, read a report; and the command CI runs."""
    lines = (REPO / "README.md").read_text().splitlines()
    assert len(lines) <= 70
    first = {task: next(i for i, line in enumerate(lines) if line.startswith(task))
             for task in ("make test", "python -m experiments check", "## Reading a report")}
    assert max(first.values()) < 45, first


# -- figures quoted from the committed reports ----------------------------------------------------------------------
REPORTS = REPO / "reports"


def summary(name, folder=REPORTS):
    return json.loads((folder / name / "summary.json").read_text())


def printed_as(quoted: str, value: float, scale: float = 1.0) -> bool:
    """`quoted` is `value * scale` rounded to the digits it shows (half a unit of its last digit, and 1e-9 of
    slack for the binary representation)."""
    digits = len(quoted.split(".")[1]) if "." in quoted else 0
    return abs(float(quoted) - value * scale) <= 0.5 * 10.0 ** -digits + 1e-9


def find(page, pattern):
    text = " ".join((REPO / page).read_text().split())
    m = re.search(pattern, text)
    assert m, f"{page} no longer quotes {pattern!r}: update the test with the page"
    return m.groups()


@pytest.mark.parametrize("name", ["simple_convnet", "deep_convnet", "residual_net"])
def test_the_reference_accuracies_times_and_shadow_ratios_quoted_in_running_md(name):
    s = summary(name)
    scratch, torch, minutes = find("docs/running.md", rf"`{name}` ([\d.]+)% / ([\d.]+)%[^)]*?(\d+) minutes\)")
    assert printed_as(scratch, s["extra"]["test_acc"]["scratch"], 100)
    assert printed_as(torch, s["extra"]["test_acc"]["torch"], 100)
    assert printed_as(minutes, s["wall_time_s"] / 60)
    (ratio,) = find("docs/running.md", rf"([\d.]+) on `{name}`")
    assert printed_as(ratio, s["models"][0]["float32_vs_shadow"]["median_ratio"])


@pytest.mark.parametrize("name", ["mlp_fit", "optimizer_compare_mnist"])
def test_the_legends_1ulp_control_figures(name):
    s = summary(name)
    twins, control = find("docs/running.md", rf"`{name}`: ([\d.]+) against ([\d.]+)")
    assert float(twins) == pytest.approx(s["worst_loss_rel_diff"], rel=1e-3)
    controls = [m["control_max_loss_rel_diff"] for m in s["models"] if m.get("control_max_loss_rel_diff")]
    assert float(control) == pytest.approx(max(controls), rel=1e-3)


def test_the_independent_evidence_quoted_in_scale_out_md():
    def stats(name, model):
        s = summary(name, REPORTS / "independent")
        return next(t for t in s["twin_statistics"] if t["model"] == model and t["metric"] == "test_acc")

    for act in ("ReLU", "sigmoid"):
        t = stats("two_layer_mnist", f"TwoLayerNet ({act.lower()})")
        sm, ss, tm, ts, diff, lo, hi = find(
            "docs/scale-out.md", rf"with {act} ([\d.]+) ± ([\d.]+) %(?: \(scratch\))? "
            r"against ([\d.]+) ± ([\d.]+) %(?: \(torch\))?, (?:difference )?"
            rf"([+−-][\d.]+) points,?(?: 95% CI)? \[([+−-][\d.]+), ([+−-][\d.]+)\]")
        for quoted, value in [(sm, t["mean"][0]), (ss, t["std"][0]), (tm, t["mean"][1]), (ts, t["std"][1]),
                              (diff, t["diff"]), (lo, t["ci95"][0]), (hi, t["ci95"][1])]:
            assert printed_as(quoted.replace("−", "-"), value, 100), (act, quoted, value)
        assert t["verdict"] == "equivalent"
    t = stats("simple_convnet", "SimpleConvNet")
    sm, ss, tm, ts, needed = find("docs/scale-out.md", r"([\d.]+) ± ([\d.]+) % against ([\d.]+) ± ([\d.]+) %, "
                                                       r"\*\*inconclusive\*\* \(about (\d+) seeds")
    for quoted, value in [(sm, t["mean"][0]), (ss, t["std"][0]), (tm, t["mean"][1]), (ts, t["std"][1])]:
        assert printed_as(quoted, value, 100)
    assert t["verdict"] == "inconclusive" and abs(int(needed) - t["seeds_needed"]) <= 0.05 * t["seeds_needed"]


BENCH_COLUMNS = {"plain path": "plain_ms", "plain": "plain_ms", "fast path": "scratch_ms", "fast": "scratch_ms",
                 "torch": "torch_ms", "fast / torch": "ratio", "best-of": "best_ratio",
                 "fast / torch, 1 thread": "ratio_1_thread", "plain / torch, 1 thread": "plain_ratio_1_thread",
                 "plain / fast": "fast_speedup", "plain / fast (what the engineering buys)": "fast_speedup"}


def test_the_bench_tables_of_paths_md_are_the_committed_bench():
    rows = list(csv.DictReader((REPORTS / "bench" / "bench.csv").open()))

    def bench(name, dtype):
        for r in rows:
            if r["dtype"] == dtype and (name == r["case"] or name.startswith(r["case"] + " (")
                                        or name == f"{r['case'].split()[0]} {r['notes']}"):
                return r
        raise AssertionError(f"no bench row for {name} {dtype}")

    paths = (REPO / "docs" / "paths.md").read_text()
    tables = re.findall(r"^(\| (?:case|step) \| dtype \|.*\n\| ---.*\n(?:\|.*\n)+)", paths, re.M)
    assert len(tables) == 2
    checked = 0
    for table in tables:
        header, _, *body = [[c.strip() for c in line.strip("|").split("|")] for line in table.strip().splitlines()]
        for cells in body:
            name = cells[0] if header[0] == "case" else f"step {cells[0]}"
            r = bench(name, cells[1])
            for column, quoted in zip(header[2:], cells[2:]):
                assert printed_as(quoted, float(r[BENCH_COLUMNS[column]])), (name, cells[1], column, quoted)
                checked += 1
    assert checked >= 100
