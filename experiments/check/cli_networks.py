"""The command line's part for what is not a layer: network classes, optimizers, and ``--train`` runs."""
import ast
import textwrap

import numpy as np

from experiments.check.networks import DEFAULT_BATCH, check_network_named, networks_in
from experiments.check.optimizers import DEFAULT_STEPS, check_optimizer_named, optimizers_in
from experiments.check.results import summary_record
from experiments.check.training import DEFAULT_BATCH as TRAIN_BATCH
from experiments.check.training import DEFAULT_STEPS as TRAIN_STEPS
from experiments.check.training import main_train  # noqa: F401  (cli.main calls it through this module)


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
    train.add_argument("--optimizer", metavar="NAME",
                       help="an optimizer class or function of the file (default: plain SGD, lr 0.1)")
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


def check_all(args, mod) -> list:
    """[(JSON record, result)] for every network class and optimizer of the module."""
    namespace = vars(mod)
    ctor = parse_args_option(args.args)
    out = []
    for name, cls in networks_in(namespace).items():
        result, kwargs = check_network_named(name, cls, ctor, seed=args.seed, batch=args.batch)
        record = summary_record(result, "network", constructor={k: repr(v) for k, v in kwargs.items()},
                                located=result.located, numerical=result.numerical)
        if result.not_checked:
            record.update(checked=False, ok=None, verdict="not checked: " + result.refused,
                          diagnosis="not checked: " + result.refused)
        out.append((record, result))
    for name, obj in optimizers_in(namespace).items():
        result = check_optimizer_named(name, obj, steps=args.optim_steps, dtype=np.dtype(args.dtype),
                                       seed=args.seed)
        record = summary_record(result, "optimizer")
        if result.refused.startswith("no torch.optim rule known"):
            record.update(checked=False, ok=None, verdict="not checked: " + result.refused,
                          diagnosis="not checked: " + result.refused)
        out.append((record, result))
    return out


def print_table(items) -> None:
    """Networks, then optimizers: one line each, the diagnosis and the table of the failing ones below it."""
    for kind in ("network", "optimizer"):
        rows = [(r, res) for r, res in items if r["kind"] == kind]
        if not rows:
            continue
        print(f"\n{kind:22s} {'against':44s} {'worst':>9s}  verdict")
        for r, res in rows:
            worst = "-" if r["worst"] is None else f"{r['worst']:9.2e}"
            against = r["against"] if len(r["against"]) <= 44 else r["against"][:41] + "..."
            print(f"{r['layer']:22s} {against:44s} {worst:>9s}  {r['verdict'].split(':')[0]}")
            if r["ok"] is not True:
                print(textwrap.fill(r["diagnosis"], 116, initial_indent="    ", subsequent_indent="    "))
            if r["checked"] and r["ok"] is False and res.records:
                print("\n".join("    " + line for line in str(res).splitlines()[1:]))
            elif kind == "network" and r.get("numerical"):
                print(textwrap.fill(f"numerical gradient (chapter 5's check, beside): {r['numerical']}", 116,
                                    initial_indent="    ", subsequent_indent="    "))
