"""Argument types shared by the commands (kept free of heavy imports: every command's parser uses them)."""
import argparse


def at_least(minimum: int):
    """An argparse type: an integer of at least ``minimum`` (the commands' counts and sizes)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"expected a positive integer, got {text!r}" if minimum == 1
                else f"expected an integer >= {minimum}, got {text!r}")
        return value
    return parse


def folder(text):
    """An argparse type: a folder path, never the empty string (which would mean the current folder)."""
    from pathlib import Path

    if not text.strip():
        raise argparse.ArgumentTypeError("expected a folder, got an empty string")
    return Path(text)


def seconds(text):
    """An argparse type: a positive number of seconds (a deadline)."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


MACHINE_FACTOR = 4  # threads or worker processes beyond this many per CPU only slow a run down


def machine_count(text):
    """An argparse type: a count of threads or processes, from 1 to ``MACHINE_FACTOR`` times this machine's
    CPUs (far more cannot help, and fails later with an error that names something else)."""
    import os

    value = at_least(1)(text)
    cpus = os.cpu_count() or 1
    if value > MACHINE_FACTOR * cpus:
        raise argparse.ArgumentTypeError(f"expected at most {MACHINE_FACTOR * cpus} ({MACHINE_FACTOR} x this "
                                         f"machine's {cpus} CPUs), got {text!r}")
    return value
