"""The chapter 5 shopping examples with torch autograd in place of hand-written nodes."""
import torch


def buy_apples(apple=100.0, apple_num=2.0, tax=1.1):
    """price = apple * apple_num * tax; returns (price, gradients) like scratch.graph.buy_apples."""
    inputs = {k: torch.tensor(float(v), dtype=torch.float64, requires_grad=True)
              for k, v in dict(apple=apple, apple_num=apple_num, tax=tax).items()}
    price = inputs["apple"] * inputs["apple_num"] * inputs["tax"]
    price.backward()
    return price.item(), {k: v.grad.item() for k, v in inputs.items()}


def buy_apples_and_oranges(apple=100.0, apple_num=2.0, orange=150.0, orange_num=3.0, tax=1.1):
    """price = (apple * apple_num + orange * orange_num) * tax, gradients by autograd."""
    inputs = {k: torch.tensor(float(v), dtype=torch.float64, requires_grad=True)
              for k, v in dict(apple=apple, apple_num=apple_num, orange=orange, orange_num=orange_num,
                               tax=tax).items()}
    price = (inputs["apple"] * inputs["apple_num"] + inputs["orange"] * inputs["orange_num"]) * inputs["tax"]
    price.backward()
    return price.item(), {k: v.grad.item() for k, v in inputs.items()}
