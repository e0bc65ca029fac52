"""Check your own NumPy layer against PyTorch: ``check_layer``, ``assert_matches_torch``, ``experiments check``.

A layer is anything with ``forward(*inputs)`` and ``backward(dout)``: the book's
classes (parameters kept as attributes ``W, b, gamma, beta, running_mean,
running_var``, gradients left in ``dW, db, dgamma, dbeta``) or a
``scratch.nn``-style module (parameters by torch's names, gradients in
``param.grad``). ``check_layer`` copies the torch module's weights into the
layer in the layer's layout (the book's Affine keeps ``W`` as torch's
``weight.T``), runs both forward and backward on the same inputs and upstream
gradient, and returns a ``CheckResult``: one record per tensor, named by the
layer's own attribute names (out, dx, dW, db, running_var ...), with the max
absolute error, the scaled error (max abs / max |torch's value|), where it is,
the tolerance (docs/design.md: 1e-10 in float64, 1e-5 in float32) and a verdict.

What the checker does, in order (each step is a documented contract):

1. Weights: every parameter and buffer of the torch module is copied into the
   layer (``params={"my_W": "weight.T"}`` names what it cannot guess). If one
   cannot be copied, the check is **refused**, never run: a correct layer is not
   reported wrong because its weights differ from torch's.
2. Randomness: upstream gradients (and, from the command line, inputs and
   weights) come from the checker's own stream, ``checker_rng(seed)`` =
   ``numpy.random.default_rng((CHECK_STREAM, seed))``, independent of
   ``np.random``'s global state and of ``default_rng(seed)``, so an upstream
   gradient is never a copy of the user's input.
3. Order: torch's output shape first (a wrong shape is the layer's), then the layer's forward (its input
   compared afterwards: an in-place write is a mismatch), its backward, then torch. A train-mode dropout is
   compared through the mask the layer drew (its ``mask`` attribute, or the non-zero pattern of its output).
4. Torch is the judge: a tensor within tolerance of torch's is never failed by a secondary test. Diagnoses
   explain the tensors that disagree (``diagnoses``): a by-design variant applied to torch (the book's eps
   inside the log, non-inverted dropout, BatchNormalization's eps and biased running variance, a loss backward
   that assumes dout = 1, float64 im2col buffers) is kept only when it reproduces what it explains, and gives
   "differs by design: <variant>" (not a pass); anything else is "mismatch: <diagnosis>" (a sign, 1/N, a
   transpose, another mask, a kink, a tie, NaN...), the kink-aware dot-product test last. The user's code
   raising is "error"; what the checker cannot compare honestly is "refused".

The package's files are its parts: results (records, verdicts, JSON), inputs (the checker's stream, the
inputs and weights per layer kind), adapters (the user's side of the comparison, function pairs), recognize
(what a file holds and which torch counterpart each item is checked against), torchrun (the one way of
running torch), diagnoses, adjoint (the dot-product test), layer (check_layer, check_class) and cli
(``experiments check``: each layer in a child process, with a time limit). Beyond one layer: networks
(``check_network``: a book-style network against a torch twin built from its own layers, the faulty layer
located), optimizers (``check_optimizer``: ``update(params, grads)`` classes and CS231n's ``f(w, dw, config)``
functions against ``torch.optim``), training (``train_network``: the network and its twin trained in
lockstep) and cli_networks (their part of ``experiments check``, and ``--train``).
"""
from experiments.check.adapters import FunctionPair, LossFunction
from experiments.check.adjoint import ADJOINT_STEP, ADJOINT_TOL, dot_product_test
from experiments.check.diagnoses import VARIANTS
from experiments.check.inputs import CHECK_STREAM, checker_rng
from experiments.check.layer import assert_matches_torch, check_class, check_functions, check_layer
from experiments.check.networks import (NetworkResult, assert_network_matches_torch, build_network,
                                        check_network)
from experiments.check.optimizers import OptimizerResult, assert_optimizer_matches_torch, check_optimizer
from experiments.check.results import CheckResult, Diagnosis, Refused, TensorRecord, UserCodeError
from experiments.check.training import train_network, write_report

__all__ = ["ADJOINT_STEP", "ADJOINT_TOL", "CHECK_STREAM", "CheckResult", "Diagnosis", "FunctionPair", "LossFunction",
           "Refused", "TensorRecord", "UserCodeError", "VARIANTS", "assert_matches_torch", "check_class",
           "check_functions", "check_layer", "checker_rng", "dot_product_test",
           "NetworkResult", "OptimizerResult", "assert_network_matches_torch", "assert_optimizer_matches_torch",
           "build_network", "check_network", "check_optimizer", "train_network", "write_report"]
