"""People on CPU: MediaPipe's person segmenter and BlazeFace face detectors, on LiteRT.

The models are MediaPipe's own (`selfie_segmentation.tflite`, `face_detection_short_range.tflite`,
`face_detection_full_range_sparse.tflite`, fetched by `weights`); the pre- and post-processing
below follows MediaPipe's graphs (google-ai-edge/mediapipe, `mediapipe/modules/face_detection/
face_detection.pbtxt`, `face_detection_short_range.pbtxt`, `face_detection_full_range.pbtxt`,
`mediapipe/modules/selfie_segmentation/selfie_segmentation_cpu.pbtxt`, and the calculators
`ssd_anchors_calculator.cc`, `tensors_to_detections_calculator.cc`,
`non_max_suppression_calculator.cc`), written afresh with numpy and OpenCV.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from functools import cache

import cv2
import numpy as np

from ..errors import InvalidInput
from .weights import Weights

BUNDLE = "mediapipe"
SEGMENTER = "selfie_segmentation.tflite"
SEGMENTER_SIDE = 256
MIN_COMPONENT = 0.002  # share of the image below which a blob of the person mask is a speck ...
MIN_COMPONENT_OF_LARGEST = 0.02  # ... or share of the largest blob (a second person may be far smaller)

SCORE_CLIP = 100.0  # raw logits are clipped to +-100 before the sigmoid
NMS_IOU = 0.3  # boxes overlapping the best one more than this are averaged into it
# BlazeFace's box runs from about the middle of the forehead to the chin and from cheek to cheek
# (the full-range model's reaches higher, to the hairline).
# The face's ellipse is 1.15 x as wide and 1.3 x as tall as the box, its centre raised by 0.1 of
# the box's height: it reaches a quarter of the box above it (the forehead) and a twentieth below
# (under the chin), and is wide enough at eye level to keep the outer corners of the eyes.
FACE_WIDEN, FACE_HEIGHTEN, FACE_RAISE = 1.15, 1.30, 0.10


@dataclass(frozen=True)
class Detector:
    file: str
    side: int  # square input, also the box regressors' x/y/w/h scale
    strides: tuple[int, ...]  # one SSD layer per stride
    extra_anchor: bool  # interpolated_scale_aspect_ratio 1.0: a second anchor per layer and cell
    min_score: float


# Near faces (within ~2 m; selfies, portraits) and small faces in large photos (within ~5 m).
SHORT_RANGE = Detector("face_detection_short_range.tflite", 128, (8, 16, 16, 16), True, 0.5)
FULL_RANGE = Detector("face_detection_full_range_sparse.tflite", 192, (4,), False, 0.6)


class _Model:
    """One LiteRT interpreter; `invoke` is not thread-safe, so runs take turns on a lock."""

    def __init__(self, path) -> None:
        from ai_edge_litert.interpreter import Interpreter  # lazy: only a call that needs it pays

        self.interpreter = Interpreter(model_path=str(path), num_threads=min(4, os.cpu_count() or 1))
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.outputs = [d["index"] for d in self.interpreter.get_output_details()]
        self.lock = threading.Lock()

    def __call__(self, x: np.ndarray) -> list[np.ndarray]:
        with self.lock:
            self.interpreter.set_tensor(self.input, x[None])
            self.interpreter.invoke()
            return [self.interpreter.get_tensor(i)[0] for i in self.outputs]  # get_tensor copies


def _model(weights: Weights, name: str) -> _Model:
    return weights.loaded(BUNDLE, name, _Model)


def _rgb(image: np.ndarray) -> np.ndarray:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] not in (3, 4):
        raise InvalidInput(
            f"must be a uint8 RGB or RGBA image, got {image.dtype} of shape {image.shape}", param="image"
        )
    return np.ascontiguousarray(image[..., :3])


def _resize(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    shrinking = width < rgb.shape[1] or height < rgb.shape[0]
    return cv2.resize(rgb, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


# -- person segmentation -------------------------------------------------------------------


def person_probability(image: np.ndarray, weights: Weights) -> np.ndarray:
    """float32 map in [0, 1] the size of `image`: how likely each pixel is part of a person.

    The model was trained on selfies and assumes someone is there: on a picture of a cat or a
    cup it marks the cat or the cup, and what a person holds against the body (the astronaut's
    helmet) comes out as person too. `person_mask` checks for a face first; this map does not.

    The image is stretched to the model's 256 x 256 as MediaPipe's graph does (keep_aspect_ratio:
    false, values in [0, 1]) rather than letterboxed: on ten crops and padded 2:1 to 1:2 frames
    of the astronaut the two gave the same mean IoU (0.934 against 0.936, each case within 0.035,
    either way round), and stretching spends no input cells on black bars. The model ends in a
    sigmoid; its map is resized back bilinearly, which keeps the outline smooth."""
    rgb = _rgb(image)
    h, w = rgb.shape[:2]
    x = _resize(rgb, SEGMENTER_SIDE, SEGMENTER_SIDE).astype(np.float32) / 255
    (small,) = _model(weights, SEGMENTER)(x)
    return np.clip(cv2.resize(small[..., 0], (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)


def person_mask(image: np.ndarray, weights: Weights) -> np.ndarray:
    """uint8 0/255 mask of the people in `image`: probability above half, specks dropped.

    All zero when no face is found (short or full range): the segmenter alone would mark
    whatever stands out, so a visible face is taken as the sign that a person is there. People
    seen from behind, or too small for the face detectors, are missed for the same reason."""
    rgb = _rgb(image)
    if not face_boxes(rgb, weights):
        return np.zeros(rgb.shape[:2], np.uint8)
    person = (person_probability(rgb, weights) > 0.5).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(person, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if areas.size == 0:
        return person
    keep = areas >= max(MIN_COMPONENT * person.size, MIN_COMPONENT_OF_LARGEST * areas.max())
    return np.where(np.concatenate([[False], keep])[labels], 255, 0).astype(np.uint8)


# -- face detection ------------------------------------------------------------------------


def face_boxes(image: np.ndarray, weights: Weights) -> list[tuple[float, float, float, float, float]]:
    """Faces as (x0, y0, x1, y1, score) in pixels of `image`, best first.

    The short-range detector runs first; only when it finds nothing does the full-range one
    look for smaller faces."""
    rgb = _rgb(image)
    return _detect(rgb, SHORT_RANGE, weights) or _detect(rgb, FULL_RANGE, weights)


def face_mask(image: np.ndarray, weights: Weights) -> np.ndarray:
    """uint8 0/255 mask with a filled ellipse over each face, forehead and chin included;
    all zero when there is none."""
    boxes = face_boxes(image, weights)
    mask = np.zeros(image.shape[:2], np.uint8)
    for x0, y0, x1, y1, _ in boxes:
        bw, bh = x1 - x0, y1 - y0
        centre = (round((x0 + x1) / 2), round((y0 + y1) / 2 - FACE_RAISE * bh))
        axes = (max(1, round(bw * FACE_WIDEN / 2)), max(1, round(bh * FACE_HEIGHTEN / 2)))
        cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1)
    return mask


def _detect(rgb: np.ndarray, detector: Detector, weights: Weights) -> list[tuple[float, float, float, float, float]]:
    h, w = rgb.shape[:2]
    side = detector.side
    # Letterbox as MediaPipe's ImageToTensorCalculator (keep_aspect_ratio, BORDER_ZERO): the
    # image scaled to fit, centred, black bars; pixel values mapped from [0, 255] to [-1, 1].
    scale = side / max(h, w)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    ox, oy = (side - nw) // 2, (side - nh) // 2
    canvas = np.zeros((side, side, 3), np.uint8)
    canvas[oy : oy + nh, ox : ox + nw] = _resize(rgb, nw, nh)
    x = canvas.astype(np.float32) / 127.5 - 1

    outputs = _model(weights, detector.file)(x)
    raw = next(o for o in outputs if o.shape[-1] == 16)  # per anchor: box x, y, w, h, then 6 keypoints
    logits = next(o for o in outputs if o.shape[-1] == 1)[:, 0]
    scores = 1 / (1 + np.exp(-np.clip(logits.astype(np.float64), -SCORE_CLIP, SCORE_CLIP)))
    keep = scores >= detector.min_score
    if not keep.any():
        return []
    # Box regressors are in input pixels (x_scale = y_scale = w_scale = h_scale = side) relative to
    # anchors of fixed size 1, so: centre = anchor + offset / side, size = value / side.
    anchors = _anchors(detector)[keep]
    raw, scores = raw[keep, :4] / side, scores[keep]
    cx, cy = anchors[:, 0] + raw[:, 0], anchors[:, 1] + raw[:, 1]
    boxes = np.stack([cx - raw[:, 2] / 2, cy - raw[:, 3] / 2, cx + raw[:, 2] / 2, cy + raw[:, 3] / 2], axis=1)

    found = []
    for (bx0, by0, bx1, by1), score in _weighted_nms(boxes, scores):
        # Undo the letterbox: tensor units -> tensor pixels -> image pixels, clipped to the image.
        x0, x1 = (float(np.clip((v * side - ox) * w / nw, 0, w)) for v in (bx0, bx1))
        y0, y1 = (float(np.clip((v * side - oy) * h / nh, 0, h)) for v in (by0, by1))
        if x1 > x0 and y1 > y0:
            found.append((x0, y0, x1, y1, float(score)))
    return found


@cache
def _anchors(detector: Detector) -> np.ndarray:
    """SSD anchor centres (x, y) in [0, 1], in the order the model emits them.

    MediaPipe's SsdAnchorsCalculator with anchor_offset 0.5 and fixed_anchor_size: layers of the
    same stride share one grid of ceil(side / stride) cells, cell by cell in row-major order, each
    cell holding one anchor per layer (aspect ratio 1) plus one more when an interpolated
    scale is asked for. With fixed_anchor_size every anchor is 1 x 1, so only centres matter."""
    centres = []
    strides = list(detector.strides)
    while strides:
        stride = strides[0]
        layers = 1
        while layers < len(strides) and strides[layers] == stride:
            layers += 1
        del strides[:layers]
        cells = -(-detector.side // stride)
        per_cell = layers * (2 if detector.extra_anchor else 1)
        grid = (np.arange(cells, dtype=np.float32) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing="ij")
        centres.append(np.repeat(np.stack([xs.ravel(), ys.ravel()], axis=1), per_cell, axis=0))
    return np.concatenate(centres)


def _weighted_nms(boxes: np.ndarray, scores: np.ndarray) -> list[tuple[np.ndarray, float]]:
    """MediaPipe's WEIGHTED non-max suppression: the best remaining box gathers every box whose
    IoU with it exceeds `NMS_IOU` (itself included), becomes their score-weighted mean box and
    keeps its own score; the rest go round again."""
    order = np.argsort(-scores, kind="stable")
    boxes, scores = boxes[order], scores[order]
    out = []
    while len(scores):
        best = boxes[0]
        ix0, iy0 = np.maximum(boxes[:, 0], best[0]), np.maximum(boxes[:, 1], best[1])
        ix1, iy1 = np.minimum(boxes[:, 2], best[2]), np.minimum(boxes[:, 3], best[3])
        inter = np.clip(ix1 - ix0, 0, None) * np.clip(iy1 - iy0, 0, None)
        areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        union = areas + areas[0] - inter
        iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
        group = iou > NMS_IOU
        group[0] = True
        share = scores[group]
        out.append((share @ boxes[group] / share.sum(), float(scores[0])))
        boxes, scores = boxes[~group], scores[~group]
    return out
