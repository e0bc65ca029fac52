"""The command line's part for what is not a layer: network classes, optimizers, and ``--train`` runs."""
import ast
import sys
import textwrap

import numpy as np

from experiments.check.networks import DEFAULT_BATCH, check_network_named, networks_in
from experiments.check.optimizers import DEFAULT_STEPS, check_optimizer_named, optimizers_in
from experiments.check.results import summary_record
from experiments.check.training import DEFAULT_BATCH as TRAIN_BATCH
from experiments.check.training import DEFAULT_STEPS as TRAIN_STEPS


def add_arguments(parser):
    parser.add_argument("--args", nargs="+", metavar="NAME=VALUE", default=[],
                        help="constructor arguments of the file's network classes, as Python literals "
                             "(hidden_size=50 hidden_size_list=[100,100]); the book's input_size, hidden_size, "
                             "hidden_size_list, output_size and input_dim are guessed (MNIST-shaped) when absent")
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH,
                        help=f"batch of MNIST-shaped images a network is checked on ({DEFAULT_BATCH})")
    train = parser.add_argument_group("training in lockstep (--train)")
    train.add_argument("--train", action="store_true",
                       help="train each network class of the file and its torch twin in lockstep, write a report")
    train.add_argument("--steps", type=int, default=TRAIN_STEPS, help=f"training steps ({TRAIN_STEPS})")
    train.add_argument("--train-batch", type=int, default=TRAIN_BATCH, help=f"training batch size ({TRAIN_BATCH})")
    train.add_argument("--optimizer", metavar="[FILE.py:]NAME",
                       help="an optimizer class or function of the file, or of another file (../common/optimizer.py:"
                            "Adam); default: plain SGD, lr 0.1")
    train.add_argument("--lr", type=float, help="learning rate given to --optimizer's class (or to plain SGD)")
    train.add_argument("--data", choices=("mnist", "synthetic"), default="mnist",
                       help="MNIST (cached; fetched once) or generated MNIST-like digits (mnist)")
    train.add_argument("--network", nargs="+", metavar="NAME", help="train only these network classes")
    train.add_argument("--out", help="report folder (default: runs/check/FILE/NETWORK)")
    parser.add_argument("--optim-steps", type=int, default=DEFAULT_STEPS,
                        help=f"optimizer steps on the checker's gradient stream ({DEFAULT_STEPS})")


def parse_args_option(items) -> dict:
    """``["hidden_size=50", "hidden_size_list=[10, 10]"]`` -> {"hidden_size": 50, ...} (literals, else strings)."""
    out = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.isidentifier():
            raise ValueError(f"--args takes NAME=VALUE, got {item!r}")
        try:
            out[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[name] = value
    return out


def listing(path) -> list:
    """(In a child.) [(name, "network" | "optimizer")] of the user's file."""
    from experiments.check.cli import import_file

    namespace = vars(import_file(path))
    return [(n, "network") for n in networks_in(namespace)] + [(n, "optimizer") for n in optimizers_in(namespace)]


def check_all(args, path, names) -> list:
    """Each network and optimizer of the file checked in a child of its own (``cli.in_child``): JSON records.

    Printed as each is known (unless ``--json``), networks then optimizers, below the layers' table.
    """
    from experiments.check.cli import _failure, in_child

    records, header = [], None
    for name, kind in names:
        status, got = in_child(_check_whole, (str(path), name, kind, vars(args)), _limit(args, kind))
        if status == "ok":
            record, lines = got
        else:
            text = _failure(status, got, _limit(args, kind), f"checking {name}")
            record = dict(kind=kind, layer=name, against="", ok=False, checked=True, worst=None, diagnosis=text,
                          verdict="error: " + text, configs=0, dtype="", codes=[], notes=[],
                          traceback=got[1] if status == "raised" else "")
            lines = [line for line in record["traceback"].splitlines()]
        records.append(record)
        if not args.json:
            if header != kind:
                header = kind
                print(f"\n{kind:22s} {'against (torch twin)' if kind == 'network' else 'against (torch.optim)':44s} "
                      f"{'worst':>9s}  verdict")
            _print_row(record, lines)
    return records


def _limit(args, kind) -> float:
    """A network check runs a few layer checks and chapter 5's numerical gradient: ten layers' time."""
    return args.timeout * (10 if kind == "network" else 1)


def _check_whole(path, name, kind, options):
    """(In a child.) One network or optimizer of the file: (JSON record, lines of detail)."""
    from experiments.check.cli import import_file

    namespace = vars(import_file(path))
    if kind == "network":
        result, kwargs = check_network_named(name, namespace[name], parse_args_option(options["args"]),
                                             seed=options["seed"], batch=options["batch"])
        record = summary_record(result, "network", constructor={k: repr(v) for k, v in kwargs.items()},
                                located=result.located, numerical=result.numerical)
        if result.not_checked:
            record.update(checked=False, ok=None, verdict="not checked: " + result.refused,
                          diagnosis=result.refused)
    else:
        result = check_optimizer_named(name, namespace[name], steps=options["optim_steps"],
                                       dtype=np.dtype(options["dtype"]), seed=options["seed"])
        record = summary_record(result, "optimizer")
        if result.refused.startswith("no torch.optim rule known"):
            record.update(checked=False, ok=None, verdict="not checked: " + result.refused,
                          diagnosis=result.refused)
    lines = []
    if record["checked"] and record["ok"] is False and result.records:
        lines = str(result).splitlines()[1:]
    elif kind == "network" and record.get("numerical"):
        lines = textwrap.wrap(f"numerical gradient (chapter 5's check, beside): {record['numerical']}", 112)
    return record, lines


def _print_row(r, lines) -> None:
    worst = "-" if r["worst"] is None else f"{r['worst']:9.2e}"
    prefix = "torch twin: " if r["kind"] == "network" else "torch.optim."
    against = r["against"].replace(prefix, "")
    if len(against) > 44:  # a deep network's twin, an optimizer's many hyperparameters: on a line of their own
        print(f"{r['layer']:22s} {'':44s} {worst:>9s}  {r['verdict'].split(':')[0]}")
        print(textwrap.fill(prefix + against, 116, initial_indent="    ", subsequent_indent="      "))
    else:
        print(f"{r['layer']:22s} {against:44s} {worst:>9s}  {r['verdict'].split(':')[0]}")
    if r["ok"] is not True:
        print(textwrap.fill(r["diagnosis"], 116, initial_indent="    ", subsequent_indent="    "))
    for line in lines:
        print("    " + line)
    sys.stdout.flush()


def main_train(args, path) -> int:
    """``experiments check FILE --train``: each network class of the file trained in lockstep with its twin, each
    in a child (``cli.in_child``, allowed ``--timeout`` per step), its verdict printed and its report written."""
    from experiments.check.cli import _failure, _usage, in_child

    status, wholes = in_child(listing, (str(path),), args.timeout)
    if status != "ok":
        return _usage(f"cannot import {args.path}: {_failure(status, wholes, args.timeout, 'importing it')}")
    nets = [n for n, kind in wholes if kind == "network"]
    if args.network:
        missing = [n for n in args.network if n not in nets]
        if missing:
            return _usage(f"{args.path} has no network class {', '.join(missing)} (it has {', '.join(nets) or 'none'})")
        nets = list(args.network)
    if not nets:
        return _usage(f"--train needs a network class in {args.path} (params, layers, loss, gradient); there is none")
    limit = args.timeout * max(args.steps, 1)
    worst = 0
    for name in nets:
        status, got = in_child(_train_one, (str(path), name, vars(args)), limit)
        if status != "ok":
            print(f"{name}: error: {_failure(status, got, limit, f'training {name}')}")
            for line in (got[1] if status == "raised" else "").splitlines():
                print("    | " + line)
            worst = max(worst, 1)
            continue
        code, text, out = got
        print(f"{name}: {text}")
        if out:
            print(f"    report: {out}")
        sys.stdout.flush()
        worst = max(worst, code)
    return worst


def _train_one(path, name, options):
    """(In a child.) Train one network of the file: (exit code, verdict line, report path)."""
    from pathlib import Path

    from experiments.check.cli import import_file
    from experiments.check.networks import NeedsArguments, build_network
    from experiments.check.results import Refused
    from experiments.check.training import PlainSGD, train_network, write_report
    from experiments.writing import OutputError, check_target, runs_dir

    out = Path(options["out"]) / name if options["out"] else runs_dir() / "check" / Path(path).stem / name
    try:  # a folder the runner may not write into is refused before the training, not after it
        check_target(out)
    except OutputError as e:
        return 2, f"not trained: {e}", ""
    namespace = vars(import_file(path))
    optimizer = None
    if options["optimizer"]:
        where, _, opt_name = options["optimizer"].rpartition(":")
        source = vars(import_file(str(Path(where).resolve()))) if where else namespace
        optimizer = source.get(opt_name)
        if optimizer is None:
            return 2, f"not trained: --optimizer {options['optimizer']}: no such name in {where or path}", ""
        if isinstance(optimizer, type):
            optimizer = optimizer(**({"lr": options["lr"]} if options["lr"] is not None else {}))
        elif options["lr"] is not None:
            return 2, "not trained: --lr sets a class's learning rate; a function takes it from its config", ""
    elif options["lr"] is not None:
        optimizer = PlainSGD(options["lr"])
    try:
        net, _ = build_network(namespace[name], parse_args_option(options["args"]), options["seed"])
        summary = train_network(net, steps=options["steps"], batch=options["train_batch"], optimizer=optimizer,
                                data=options["data"], dtype=np.dtype(options["dtype"]), seed=options["seed"],
                                name=name, progress=sys.stderr.isatty())
    except (Refused, NeedsArguments) as e:
        return 2, f"not trained: {e}", ""
    write_report(summary, out)
    return (0 if summary["ok"] else 1), summary["verdict"], str(out / "report.md")
