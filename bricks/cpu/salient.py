"""U²-Netp (Qin et al., 2020), the 4.6 MB salient-object network, on onnxruntime.

Pre- and post-processing are ours: the image is resized to the network's 320 x 320 input and
normalised with ImageNet's mean and deviation; the first (fused) output is already a sigmoid
map, which is resized back to the image. The session is made once per file and shared.
"""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np

from .weights import Weights

SIDE = 320
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)


class _Network:
    def __init__(self, path) -> None:
        import onnxruntime  # lazy: only a call that needs the model pays for the import

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = min(4, os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name
        self.output = self.session.get_outputs()[0].name
        self.lock = threading.Lock()  # one run at a time: calls share the session's threads anyway

    def __call__(self, rgb: np.ndarray) -> np.ndarray:
        x = cv2.resize(rgb, (SIDE, SIDE), interpolation=cv2.INTER_AREA).astype(np.float32) / 255
        x = ((x - _MEAN) / _STD).transpose(2, 0, 1)[None]
        with self.lock:
            (y,) = self.session.run([self.output], {self.input: np.ascontiguousarray(x)})
        return y[0, 0]


def saliency(image: np.ndarray, weights: Weights) -> np.ndarray:
    """float32 map in [0, 1] the size of `image`: how much each pixel belongs to the main subject."""
    network = weights.loaded("u2netp", "u2netp.onnx", _Network)
    small = network(np.ascontiguousarray(image[..., :3]))
    h, w = image.shape[:2]
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)
