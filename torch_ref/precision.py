"""Exact float32 for the torch twin on a GPU, and a record of what its arithmetic was allowed to do.

On NVIDIA GPUs since Ampere, PyTorch may compute float32 convolutions (and, if
asked, matrix products) in TF32, a 10-bit mantissa: cuDNN's convolutions do by
default (``torch.backends.cudnn.allow_tf32`` is True), cuBLAS's products do not
(``torch.backends.cuda.matmul.allow_tf32`` is False,
``torch.get_float32_matmul_precision()`` "highest"). A reference comparison of
float32 against a float64 shadow is about float32, so the torch twin on CUDA is
set to IEEE float32 everywhere (``exact_float32``) and the report records the
settings it ran with (``settings``). Half-precision products may also reduce in
half precision (``allow_fp16/bf16_reduced_precision_reduction``, True by
default): no twin computes in half precision during training, but they are set
off and recorded too, so the record is the whole story.

PyTorch 2.9 replaced the ``allow_tf32`` flags with ``fp32_precision`` attributes
("ieee" or "tf32"; "none": inherit) and refuses a mix of the two interfaces in
one process, so only the new one is used where it exists.
"""
import torch


def _new_api() -> bool:
    return hasattr(torch.backends.cuda.matmul, "fp32_precision") and hasattr(torch.backends.cudnn, "conv")


def exact_float32() -> None:
    """IEEE float32 for cuBLAS products and cuDNN convolutions; no reduced-precision reductions."""
    if _new_api():
        torch.backends.cuda.matmul.fp32_precision = "ieee"
        torch.backends.cudnn.conv.fp32_precision = "ieee"
        torch.backends.cudnn.rnn.fp32_precision = "ieee"
    else:  # before PyTorch 2.9
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        torch.set_float32_matmul_precision("highest")
    torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction = False
    torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction = False


def tf32_allowed() -> dict:
    """Whether cuBLAS products (``matmul``) and cuDNN convolutions (``conv``) may use TF32."""
    if _new_api():
        cudnn = torch.backends.cudnn.conv.fp32_precision
        if cudnn == "none":
            cudnn = torch.backends.cudnn.fp32_precision
        matmul = torch.backends.cuda.matmul.fp32_precision
        if matmul == "none":
            matmul = getattr(torch.backends, "fp32_precision", "none")
        # "none" all the way up is PyTorch's default: products in IEEE float32, convolutions in TF32
        return {"matmul": matmul == "tf32", "conv": cudnn in ("tf32", "none")}
    return {"matmul": bool(torch.backends.cuda.matmul.allow_tf32), "conv": bool(torch.backends.cudnn.allow_tf32)}


def settings(device) -> dict:
    """The torch twin's device and float32 arithmetic, for summary.json and the report.

    ``device``, ``device_name`` (the GPU's or "cpu"), ``tf32_matmul``, ``tf32_conv`` (may cuBLAS products /
    cuDNN convolutions use TF32), ``reduced_precision_reduction`` (may fp16 / bf16 products reduce in
    half precision) and ``exact_float32`` (none of these allowed). On the CPU: TF32 does not apply.
    """
    device = torch.device(device)
    if device.type != "cuda":
        return {"device": str(device), "device_name": "cpu", "tf32_matmul": False, "tf32_conv": False,
                "reduced_precision_reduction": False, "exact_float32": True}
    tf32 = tf32_allowed()
    reduced = bool(torch.backends.cuda.matmul.allow_fp16_reduced_precision_reduction
                   or torch.backends.cuda.matmul.allow_bf16_reduced_precision_reduction)
    return {"device": str(device), "device_name": torch.cuda.get_device_name(device),
            "tf32_matmul": tf32["matmul"], "tf32_conv": tf32["conv"], "reduced_precision_reduction": reduced,
            "exact_float32": not (tf32["matmul"] or tf32["conv"] or reduced)}


def describe(record: dict) -> str:
    """One line for the report: "cuda:0 (NVIDIA H200): TF32 off, ...", or the device alone on the CPU."""
    if not record or record.get("device_name", "cpu") == "cpu":
        return (record or {}).get("device", "cpu")
    onoff = lambda flag: "allowed" if flag else "off"  # noqa: E731
    return (f"{record['device']} ({record['device_name']}): TF32 products {onoff(record['tf32_matmul'])}, "
            f"TF32 convolutions {onoff(record['tf32_conv'])}, reduced-precision reductions "
            f"{onoff(record['reduced_precision_reduction'])}")
