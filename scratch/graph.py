"""Computational-graph nodes of chapter 5: the book's multiply and add layers.

Each node keeps its inputs from ``forward`` and, in ``backward``, returns the
upstream gradient times the local derivative for each input: the chain rule,
one node at a time. ``buy_apples`` and ``buy_apples_and_oranges`` are the
book's shopping examples built from them.
"""


class MulLayer:
    """z = x * y;  dz/dx = y, dz/dy = x."""

    def __init__(self):
        self.x = None
        self.y = None

    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, dout):
        return dout * self.y, dout * self.x


class AddLayer:
    """z = x + y;  dz/dx = dz/dy = 1."""

    def forward(self, x, y):
        return x + y

    def backward(self, dout):
        return dout * 1, dout * 1


def buy_apples(apple=100, apple_num=2, tax=1.1):
    """price = apple * apple_num * tax, with the gradients of price by each input.

    Returns (price, {"apple": ..., "apple_num": ..., "tax": ...}); the book's
    values are 220 and 2.2, 110, 200.
    """
    mul_apple, mul_tax = MulLayer(), MulLayer()
    price = mul_tax.forward(mul_apple.forward(apple, apple_num), tax)
    d_apple_price, d_tax = mul_tax.backward(1)
    d_apple, d_apple_num = mul_apple.backward(d_apple_price)
    return price, {"apple": d_apple, "apple_num": d_apple_num, "tax": d_tax}


def buy_apples_and_oranges(apple=100, apple_num=2, orange=150, orange_num=3, tax=1.1):
    """price = (apple * apple_num + orange * orange_num) * tax, with all five gradients.

    The book's values: 715; apple 2.2, apple_num 110, orange 3.3, orange_num 165, tax 650.
    """
    mul_apple, mul_orange, add, mul_tax = MulLayer(), MulLayer(), AddLayer(), MulLayer()
    apple_price = mul_apple.forward(apple, apple_num)
    orange_price = mul_orange.forward(orange, orange_num)
    price = mul_tax.forward(add.forward(apple_price, orange_price), tax)
    d_total, d_tax = mul_tax.backward(1)
    d_apple_price, d_orange_price = add.backward(d_total)
    d_orange, d_orange_num = mul_orange.backward(d_orange_price)
    d_apple, d_apple_num = mul_apple.backward(d_apple_price)
    return price, {"apple": d_apple, "apple_num": d_apple_num, "orange": d_orange,
                   "orange_num": d_orange_num, "tax": d_tax}
