"""``python -m experiments check PATH.py``: every layer of a file against torch, one line per layer as it is known.

The file is the user's code and runs with the user's rights, as pytest runs a test file. It is imported in
a child process (forked from this one, which has numpy and torch loaded already), and each layer is checked
in a child of its own with a time limit (``--timeout``), so that an exception, ``sys.exit``, ``os._exit``, a
crash or a loop in the user's code becomes that layer's verdict "error" while the other layers are still
checked. Exit status: 0 when the table is complete and every checked layer matches torch; 1 when a layer
mismatches, differs by design, errs or is refused; 2 when nothing is checkable (the file cannot be imported,
has no layer the checker knows) or the arguments are wrong.
"""
import importlib
import importlib.util
import multiprocessing
import os
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from experiments.check import cli_networks
from experiments.check.layer import check_class, run_case
from experiments.check.recognize import BOOK, items
from experiments.check.results import traceback_tail

DEFAULT_TIMEOUT = 60.0  # seconds per layer (and for importing the file): a correct layer takes about one
WIDTH = 116  # the diagnosis is wrapped to this width


def add_arguments(parser):
    parser.add_argument("path", metavar="PATH.py", help="a Python file defining layers: the book's classes ("
                        + ", ".join(BOOK) + ", also under other names: ReLU, Linear, Dense, MaxPooling...), "
                        "scratch.nn-style modules, CS231n-style <name>_forward/<name>_backward functions")
    parser.add_argument("--layers", nargs="+", metavar="NAME",
                        help="check only these (layer classes or functions, networks, optimizers)")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="dtype of inputs and weights (float64)")
    parser.add_argument("--configs", type=int, default=5, help="configurations per layer and mode (5): exact "
                        "zeros and ties, batch size 1, then random shapes")
    parser.add_argument("--seed", type=int, default=0, help="seed of the checker's stream (0)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT,
                        help=f"seconds allowed per layer and for importing the file ({DEFAULT_TIMEOUT:g})")
    parser.add_argument("--json", action="store_true", help="print a JSON list, one record per layer, at the end")
    cli_networks.add_arguments(parser)


def main(args) -> int:
    path = Path(args.path)
    if args.configs < 1:
        return _usage("--configs must be >= 1")
    if not args.timeout > 0:
        return _usage("--timeout must be > 0")
    if not path.is_file():
        return _usage(f"cannot import {path}: no such file")
    path = path.resolve()
    status, listing = in_child(_listing, (str(path),), args.timeout)
    if status != "ok":
        return _usage(f"cannot import {args.path}: {_failure(status, listing, args.timeout, 'importing it')}")
    if args.train:
        return cli_networks.main_train(args, path)
    _, wholes = in_child(cli_networks.listing, (str(path),), args.timeout)  # networks and optimizers
    if args.layers:
        every = [it[0] for it in listing] + [n for n, _ in wholes]
        unknown = [n for n in args.layers if not any(n == it or n == it.split("/")[0] for it in every)]
        if unknown:
            return _usage(f"{args.path} has no layer class {', '.join(unknown)} "
                          f"(it has {', '.join(every) or 'none'})")
        listing = [it for n in args.layers for it in listing if n in (it[0], it[0].split("/")[0])]
        wholes = [w for w in wholes if w[0] in args.layers]
    records = []
    widths = (max([22] + [len(it[0]) for it in listing]), max([26] + [len(it[2] or "") for it in listing]))
    if not args.json and listing:
        print(f"{'layer':{widths[0]}s} {'against':{widths[1]}s} {'configs':>7s} {'worst':>9s}  verdict", flush=True)
    for name, kind, against, reason in listing:
        if kind == "unmapped":
            record = dict(layer=name, against=None, ok=None, checked=False, worst=None, configs=0,
                          diagnosis=reason, verdict="not checked: " + reason, codes=[], notes=[], traceback="")
            detail = []
        else:
            status, got = in_child(_check_item, (str(path), name, args.dtype, args.configs, args.seed),
                                   args.timeout)
            if status == "ok":
                record, detail = got
            else:
                text = _failure(status, got, args.timeout, f"checking {name}")
                record = dict(layer=name, against=against, ok=False, checked=True, worst=None, configs=0,
                              diagnosis=text, verdict="error: " + text, codes=[], notes=[],
                              traceback=got[1] if status == "raised" else "")
                detail = []
        records.append(record)
        if not args.json:
            _print_row(record, detail, widths)
    records += cli_networks.check_all(args, path, wholes)  # the file's networks and optimizers, each in a child
    if args.json:
        import json
        print(json.dumps(records, indent=1))
    checked = [r for r in records if r["checked"]]
    if not checked:
        print(f"experiments check: no layer class or function it knows in {args.path}, nor a network or an "
              "optimizer", file=sys.stderr)
        return 2
    return 0 if all(r["ok"] for r in checked) else 1


def _usage(text) -> int:
    print(f"experiments check: {text}", file=sys.stderr)
    return 2


def _failure(status, got, timeout, doing) -> str:
    if status == "timeout":
        return f"{doing} did not finish within {timeout:g} s (--timeout): a loop or a hang in the file's code"
    if status == "raised":
        return got[0]
    return (f"the process exited with code {got} while {doing} (sys.exit, os._exit or a crash in the file's "
            "code), before any result")


def _print_row(r, detail, widths) -> None:
    worst = "-" if r.get("worst") is None else f"{r['worst']:9.2e}"
    print(f"{r['layer']:{widths[0]}s} {r['against'] or '-':{widths[1]}s} {r.get('configs', 0):7d} {worst:>9s}  "
          f"{r['verdict'].split(':')[0]}")
    if r["ok"] is not True:
        for i, para in enumerate(r["diagnosis"].split("\n")):
            print(textwrap.fill(para, WIDTH, initial_indent="    ", subsequent_indent="    ") if i == 0
                  else "    " + para)
    for note in r.get("notes", ()):
        print(textwrap.fill("note: " + note, WIDTH, initial_indent="    ", subsequent_indent="      "))
    for line in r.get("traceback", "").splitlines():
        print("    | " + line)
    for line in detail:
        print("    " + line)
    sys.stdout.flush()


# -- the user's file, in children --------------------------------------------------------------------------
def import_file(path: str):
    """Import the user's file as the book's scripts expect: its folder, its package root and the current
    folder on sys.path (the same for the console script and ``python -m``); a file inside a package is
    imported by its dotted name, so that its relative imports work."""
    file = Path(path)
    root = file.parent
    parts = [file.stem]
    while (root / "__init__.py").is_file():
        parts.insert(0, root.name)
        root = root.parent
    for folder in (str(Path.cwd()), str(root), str(file.parent)):
        if folder not in sys.path:
            sys.path.insert(0, folder)
    if len(parts) > 1:
        return importlib.import_module(".".join(parts))
    name = f"_checked_{file.stem}"
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _listing(path):
    module = import_file(path)
    return [(name, kind, case.against if case else None, reason)
            for name, kind, _, case, reason in items(module)]


def _check_item(path, name, dtype, configs, seed):
    module = import_file(path)
    found = next(it for it in items(module) if it[0] == name)
    _, kind, target, case, _ = found
    dtype = np.dtype(dtype)
    if kind == "class":
        record, results = check_class(name, target, dtype, configs, seed)
    else:
        record, results = run_case(name, case, target, dtype, configs, seed)
    shown = next((x for x in results if not x.ok and x.kind != "error"), None)
    detail = []
    if shown is not None and shown.records:
        where = ", ".join(filter(None, (shown.dtype, shown.mode, shown.inputs)))
        detail = [f"first failing configuration: {where}"] + str(shown).splitlines()[1:]
    return record, detail


def in_child(function, args, timeout):
    """Run ``function(*args)`` in a child process with a time limit.

    Returns ("ok", value), ("raised", (message, traceback tail)), ("exited", exit code) or ("timeout", None).
    The child is forked where the platform allows (numpy and torch are loaded already), else spawned; its
    stdout is sent to stderr, so that what the user's code prints never mixes with the table.
    """
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    receive, send = ctx.Pipe(duplex=False)
    sys.stdout.flush()
    sys.stderr.flush()
    child = ctx.Process(target=_child, args=(send, function, args), daemon=True)
    child.start()
    send.close()
    deadline = time.monotonic() + timeout
    message = None
    try:
        if receive.poll(max(deadline - time.monotonic(), 0)):
            message = receive.recv()
    except EOFError:  # the child ended without a word: sys.exit in a C extension, os._exit, a crash
        message = None
    except BaseException:  # interrupted (Ctrl-C): the child goes first
        child.kill()
        child.join()
        raise
    finally:
        receive.close()
    child.join(timeout=max(min(deadline - time.monotonic(), 5.0), 1.0) if message is None else 5.0)
    if child.is_alive():
        child.kill()
        child.join()
        if message is None:
            return "timeout", None
    if message is None:
        return "exited", child.exitcode
    return message


def _child(send, function, args):
    _die_with_parent()
    os.dup2(2, 1)  # the user's prints go to stderr; the table is the parent's
    sys.stdout = sys.stderr
    try:
        import torch
        torch.set_num_threads(1)  # small tensors; and a forked OpenMP pool must not be reused
        send.send(("ok", function(*args)))
    except BaseException as e:  # noqa: BLE001 - SystemExit and KeyboardInterrupt are the user's code too
        text = (f"the file's code called sys.exit({e.code!r})" if isinstance(e, SystemExit)
                else f"{type(e).__name__}: {e}")
        send.send(("raised", (text, traceback_tail(e))))
    finally:
        send.close()


def _die_with_parent():
    """Linux: the kernel kills this child when the command dies, even by SIGKILL (a loop never outlives it)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass
