"""Everyday runs leave the committed reference reports alone and say how they compare with them."""
import hashlib

from experiments import catalogue
from experiments.__main__ import main
from experiments.writing import REPORTS
from experiments.index import reference_verdict, write_index
from experiments.runner import run_experiment
from experiments.summary import Summary


def snapshot(folder):
    """Every file under folder with its SHA-256 (what git would see change)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_run_without_out_never_writes_under_reports(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DLSCRATCH_RUNS", str(tmp_path / "runs"))
    before = snapshot(REPORTS)
    assert main(["run", "forward_3layer", "perceptron_gates", "--profile", "tiny"]) == 0
    assert snapshot(REPORTS) == before
    assert (tmp_path / "runs" / "forward_3layer" / "report.md").is_file()
    index = (tmp_path / "runs" / "README.md").read_text()
    assert "against the reference" in index and "reference headline" in index
    assert "tiny profile: not comparable with the full reference" in index
    assert "against the reference: tiny profile: not comparable with the full reference" in capsys.readouterr().err


def summary(**over):
    base = {"experiment": "demo", "profile": "quick", "seed": 0, "mode": "lockstep", "dtype": "float64",
            "models": [{"label": "net", "tag": None, "mode": "lockstep", "seed": 0, "max_loss_rel_diff": 1e-14,
                        "control_max_loss_rel_diff": None,
                        "final": {"scratch": {"test_acc": 0.97, "train_loss": 0.1},
                                  "torch": {"test_acc": 0.97, "train_loss": 0.1}}}]}
    base.update(over)
    return Summary(**base)


def with_loss(value, drift=1e-14):
    s = summary()
    s.models[0]["final"]["scratch"]["train_loss"] = value
    s.models[0]["max_loss_rel_diff"] = drift
    return s


def test_verdicts_on_constructed_summaries():
    ref = summary()
    assert reference_verdict(summary(), None) == "no reference report"
    assert reference_verdict(summary(), ref).startswith("reproduces the reference (largest relative difference 0")
    assert reference_verdict(with_loss(0.1 * (1 + 1e-12)), ref).startswith("reproduces the reference")
    bad = reference_verdict(with_loss(0.1 * (1 + 1e-6)), ref)
    assert bad.startswith("DIFFERS from the reference: net scratch train_loss")
    assert "0.1000001 vs 0.1 (relative 1.00e-06 > tolerance 1.00e-09)" in bad
    # where the reference's own twins drifted apart by 1e-3, a machine's round-off may drift as far
    assert reference_verdict(with_loss(0.1 * (1 + 1e-6)), with_loss(0.1, drift=1e-3)).startswith("reproduces")
    assert reference_verdict(summary(profile="tiny"), summary(profile="full")) == (
        "tiny profile: not comparable with the full reference")
    assert reference_verdict(summary(seed=1), ref) == "not comparable with the reference: seed 1 vs 0"
    assert reference_verdict(summary(dtype="float32"), ref).startswith("not comparable with the reference: dtype")
    assert reference_verdict(summary(models=[]), summary(models=[])).startswith("same settings as the reference")


def test_same_settings_as_the_reference_reproduce_it(tmp_path):
    exp = catalogue.get("two_layer_mnist")
    run_experiment(exp, profile="tiny", out=tmp_path / "reference")
    run_experiment(exp, profile="tiny", out=tmp_path / "runs")
    index = write_index(tmp_path / "runs", [exp.name], reference=tmp_path / "reference").read_text()
    assert "reproduces the reference (largest relative difference 0," in index
    # and a run whose numbers moved is flagged
    s = Summary.read(tmp_path / "runs" / exp.name)
    s.models[0]["final"]["torch"]["test_acc"] += 0.01
    s.write(tmp_path / "runs" / exp.name)
    index = write_index(tmp_path / "runs", [exp.name], reference=tmp_path / "reference").read_text()
    assert "DIFFERS from the reference" in index and "torch test_acc" in index


def test_every_parity_cell_has_its_tolerance_and_a_verdict():
    from experiments.index import DIFFERS, HOLDS, ROUND_OFF_FLOOR, parity_cells

    def lockstep(drift, control=None):
        s = summary(lockstep_tolerance=1e-9, worst_loss_rel_diff=drift)
        s.models[0].update(max_loss_rel_diff=drift, control_max_loss_rel_diff=control)
        return s

    assert parity_cells(lockstep(1e-14)) == {"lockstep parity": "1.00e-14", "tolerance": "1e-9",
                                             "parity verdict": HOLDS}
    # beyond the bound, and the scratch twin 1 ulp from itself drifts beyond it too: the training's round-off
    floor = parity_cells(lockstep(314.9, control=14.18))
    assert floor == {"lockstep parity": "314.9 (1-ulp control: 14.18)", "tolerance": "1e-9",
                     "parity verdict": ROUND_OFF_FLOOR}
    # a control that stayed within the bound, or none at all: the twins differ
    assert parity_cells(lockstep(1e-6, control=1e-12))["parity verdict"] == DIFFERS
    assert parity_cells(lockstep(1e-6))["parity verdict"] == DIFFERS
    # nothing trained in lockstep: no figure, no verdict
    assert parity_cells(summary(models=[]))["lockstep parity"] == "-"


def test_the_committed_index_is_regenerated_from_the_committed_summaries(tmp_path):
    """reports/README.md is what write_index makes of the committed summary.json files (those written before
    the version field included), the legend under the table."""
    from experiments.writing import MARKER

    (tmp_path / MARKER).write_text("")
    for path in REPORTS.glob("*/summary.json"):
        (tmp_path / path.parent.name).mkdir()
        Summary.read(path.parent).write(tmp_path / path.parent.name)
    made = write_index(tmp_path, [e.name for e in catalogue.all_experiments()]).read_text()
    assert made == (REPORTS / "README.md").read_text()
    assert "| lockstep parity | tolerance | parity verdict |" in made and "**parity verdict**: *holds*" in made
    # the float32 references predate the shadow verdict's interval, and their rows say so
    row = next(line for line in made.splitlines() if "[deep_convnet]" in line)
    assert "median error ratio scratch / torch 0.6175 (median alone: the report predates its interval)" in row
