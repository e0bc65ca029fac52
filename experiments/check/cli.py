"""``python -m experiments check PATH.py``: every layer class of a file against torch, as a table or JSON."""
import inspect
import json
import textwrap
from collections import OrderedDict

import numpy as np

from experiments.check import cli_networks
from experiments.check.layer import check_class
from experiments.check.recognize import BOOK


def add_arguments(parser):
    parser.add_argument("path", metavar="PATH.py", help="a Python file defining layers (the book's names: "
                        + ", ".join(BOOK) + "; or scratch.nn-style modules named as torch's)")
    parser.add_argument("--layers", nargs="+", metavar="NAME", help="check only these classes")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="dtype of inputs and weights (float64)")
    parser.add_argument("--configs", type=int, default=5, help="random shapes per layer and mode (5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the checker's stream (0)")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one record per layer")
    cli_networks.add_arguments(parser)


def main(args) -> int:
    import importlib.util
    import sys
    from pathlib import Path

    path = Path(args.path)
    if args.configs < 1:
        print("experiments check: --configs must be >= 1", file=sys.stderr)
        return 2
    try:
        spec = importlib.util.spec_from_file_location(f"_checked_{path.stem}", path)
        if spec is None or not path.is_file():
            raise FileNotFoundError(f"no such file: {path}")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
    except BaseException as e:  # noqa: BLE001 - one line, not a traceback
        if isinstance(e, KeyboardInterrupt):
            raise
        print(f"experiments check: cannot import {path}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    classes = OrderedDict((n, c) for n, c in vars(mod).items() if inspect.isclass(c) and hasattr(c, "forward")
                          and hasattr(c, "backward"))
    if args.layers:
        unknown = [n for n in args.layers if n not in classes]
        if unknown:
            print(f"experiments check: {path} has no layer class {', '.join(unknown)} "
                  f"(it has {', '.join(classes) or 'none'})", file=sys.stderr)
            return 2
        classes = OrderedDict((n, classes[n]) for n in args.layers)
    if getattr(args, "train", False):
        return cli_networks.main_train(args, mod, path)
    reports = [check_class(n, c, np.dtype(args.dtype), args.configs, args.seed) for n, c in classes.items()]
    others = cli_networks.check_all(args, mod)
    if args.json:
        print(json.dumps([r for r, _ in reports] + [r for r, _ in others], indent=1))
    elif reports:
        print(f"{'layer':22s} {'against':26s} {'configs':>7s} {'worst':>9s}  verdict")
        for r, results in reports:
            worst = "-" if r["worst"] is None else f"{r['worst']:9.2e}"
            print(f"{r['layer']:22s} {r['against'] or '-':26s} {r.get('configs', 0):7d} {worst:>9s}  "
                  f"{r['verdict'].split(':')[0]}")
            if r["ok"] is False:
                print(textwrap.fill(r["diagnosis"], 116, initial_indent="    ", subsequent_indent="    "))
            shown = next((x for x in results if not x.ok), None)
            if shown is not None and not shown.refused:
                where = ", ".join(filter(None, (shown.dtype, shown.mode, shown.inputs)))
                print(f"    first failing configuration: {where}")
                print("\n".join("    " + line for line in str(shown).splitlines()[1:]))
    if not args.json:
        cli_networks.print_table(others)
    checked = [r for r, _ in reports + others if r["checked"]]
    if not checked:
        print(f"experiments check: no layer class it knows in {path}, nor a network or an optimizer", file=sys.stderr)
        return 2
    return 0 if all(r["ok"] for r in checked) else 1
