"""Command line: ``python -m experiments {list,run,gradcheck,check,bench,data} ...``.

Each command lives in its own module, which provides ``add_arguments(parser)``
and ``main(args) -> int``; it is imported only when that command runs, so
``--help`` stays fast.
"""
import argparse
import importlib
import sys

COMMANDS = {
    # name: (module, one-line help)
    "list": ("experiments.runner", "list the experiments of the catalogue"),
    "run": ("experiments.runner", "run experiments (names or 'all') and write reports/"),
    "gradcheck": ("experiments.gradcheck", "check every scratch layer against torch autograd and central differences"),
    "check": ("experiments.check.cli", "check your own NumPy layers (a .py file, the book's API) against torch"),
    "bench": ("experiments.bench", "time the NumPy twin against the PyTorch twin and write reports/bench/"),
    "data": ("experiments.data", "fetch, verify and cache MNIST (offline after the first time)"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="experiments",
        description="Deep Learning from Scratch, twice: NumPy and PyTorch twins side by side.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name, (module_name, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(_module=module_name)
        # Arguments are added lazily (below) only for the command being run.
    return parser


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    if not argv or argv[0] not in COMMANDS:
        parser.parse_args(argv)  # prints help or the list of valid commands, and exits
        return 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    sub = argparse.ArgumentParser(prog=f"experiments {name}", description=COMMANDS[name][1])
    adder = getattr(module, f"add_{name}_arguments", None) or module.add_arguments
    adder(sub)
    args = sub.parse_args(argv[1:])
    runner = getattr(module, f"main_{name}", None) or module.main
    try:
        return int(runner(args) or 0)
    except KeyboardInterrupt:
        # One line, not a traceback: every report and cache is written whole or not at all.
        done = ("the reports finished before it are in place; the one in progress was not written"
                if name == "run" else "nothing was left half-written")
        print(f"\nexperiments {name}: interrupted (Ctrl-C); {done}", file=sys.stderr, flush=True)
        return 130


if __name__ == "__main__":
    sys.exit(main())
