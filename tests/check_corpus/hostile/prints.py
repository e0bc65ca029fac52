import numpy as np
from _ok_relu import Relu as _Relu

print("hello from the learner's file")


class Relu(_Relu):
    def forward(self, x):
        print("forward called")
        return super().forward(x)
