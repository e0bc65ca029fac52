"""Where a Dask run's time goes besides training (docs/paths.md, "Dask's scaling").

Measures, on this machine: the imports a fresh worker pays as it starts (its preload, experiments.worker); the time to send
the training data to N workers (``Client.scatter(broadcast=True)``, as ``DaskEngine.map`` does), as
float64 arrays and packed to 8 bits (``experiments.packing``); and the size of what one unit sends back
(two_layer_mnist's quick recipe, independent mode, both twins, cut to ``--steps`` steps).

    python tools/dask_costs.py [--workers 2] [--steps 200]

Needs the MNIST cache (``python -m experiments data``).
"""
import argparse
import logging
import pickle
import subprocess
import sys
import time



def import_seconds() -> float:
    code = "import experiments.worker as w; print(w.IMPORT_SECONDS)"  # what a worker's preload imports
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200)
    args = parser.parse_args(argv)
    from distributed import Client, LocalCluster

    from experiments import catalogue
    from experiments.catalogue._data import mnist
    from experiments.lockstep import TrainUnit, train_unit
    from experiments.packing import pack
    from experiments.runner import make_config
    from experiments.threads import threads
    from experiments.training import Recipe
    from scratch.models.two_layer import TwoLayerNet
    from torch_ref.models.two_layer import TwoLayerNet as TorchTwoLayerNet

    print(f"a worker's imports as it starts: {min(import_seconds() for _ in range(3)):.2f} s (best of 3)")

    class Ctx:
        config = make_config(catalogue.get("two_layer_mnist"), "quick")
        seed = 0
    data = mnist(Ctx)
    packed = pack(data)
    raw_mb = sum(a.nbytes for a in (data.x_train, data.t_train, data.x_test, data.t_test)) / 1e6
    print(f"MNIST as the trainers take it: {raw_mb:.0f} MB; packed: {packed.nbytes / 1e6:.0f} MB")
    with LocalCluster(n_workers=args.workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None,
                      memory_limit=0, silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        for name, payload in (("float64", data), ("packed", packed), ("float64", data), ("packed", packed)):
            t0 = time.perf_counter()
            futures = client.scatter([payload], broadcast=True, hash=False)
            print(f"scatter to {args.workers} workers, {name}: {time.perf_counter() - t0:.2f} s")
            del futures
            time.sleep(1)
    recipe = Recipe(scratch_model=lambda dtype, rand: TwoLayerNet(784, 50, 10, "relu", 0.01, dtype=dtype,
                                                                  generator=rand.init),
                    torch_model=lambda dtype, rand: TorchTwoLayerNet(784, 50, 10, "relu", 0.01, dtype=dtype),
                    optimizer="SGD", optimizer_kwargs=dict(lr=0.1), batch_size=100, iterations=args.steps,
                    tag="relu")
    with threads(1):
        t0 = time.perf_counter()
        result = train_unit(TrainUnit(recipe, "independent", 0, "float64", light=True), data)
        seconds = time.perf_counter() - t0
    size = len(pickle.dumps(result))
    rows = len(pickle.dumps(result[1]))
    print(f"one unit of {args.steps} steps: {seconds:.1f} s; sends back {size / 1e6:.2f} MB "
          f"({rows / 1e6:.2f} MB of metric rows, {len(result[1])} rows)")


if __name__ == "__main__":
    main()
