"""Find the person in a photo: 33 pose landmarks and a person mask, from MediaPipe's models.

The three Apache-2.0 `.tflite` files in `models/` (see `models/PROVENANCE.md`) run with
`ai-edge-litert`'s interpreter; nothing is downloaded. The pipeline follows MediaPipe's own
BlazePose graph: the detector finds the body's centre and extent, a rotated square crop around
it goes to the landmark model, and a second landmark pass runs on the crop its own landmarks
define (MediaPipe's tracking step), which places shoulders and arms better on a still photo.
The selfie-segmentation model gives the person mask.

When `ai-edge-litert` is not installed (a platform without a wheel), `find_body` returns None
with the reason in `unavailable_reason()`, and the renderer falls back to a plain placement.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mirrago.sandbox.render.memo import PictureMemo

log = logging.getLogger(__name__)

MODELS = Path(__file__).parent / "models"

# MediaPipe's landmark indices (the person's left is on the image's right in a frontal photo).
NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR = 0, 2, 5, 7, 8
MOUTH_LEFT, MOUTH_RIGHT = 9, 10
LEFT_SHOULDER, RIGHT_SHOULDER = 11, 12
LEFT_ELBOW, RIGHT_ELBOW = 13, 14
LEFT_WRIST, RIGHT_WRIST = 15, 16
LEFT_HIP, RIGHT_HIP = 23, 24
_HIPS_CENTRE, _BODY_EXTENT = 33, 34  # the landmark model's own alignment points

_DETECTOR_SIDE = 224
_LANDMARK_SIDE = 256
_SEGMENTER_SIDE = 256
_MIN_DETECTION_SCORE = 0.5
_MIN_PRESENCE = 0.5


@dataclass(frozen=True)
class Body:
    """A person found in an image, in that image's pixel coordinates.

    `points` is (33, 2) x, y; `visibility` (33,) in 0…1; `mask` a float32 (height, width)
    person probability in 0…1.
    """

    points: np.ndarray
    visibility: np.ndarray
    mask: np.ndarray

    def point(self, index: int) -> np.ndarray:
        return self.points[index]

    @property
    def shoulder_width(self) -> float:
        return float(np.linalg.norm(self.points[LEFT_SHOULDER] - self.points[RIGHT_SHOULDER]))

    def face_box(self) -> tuple[int, int, int, int]:
        """A box (left, top, right, bottom) around the face: eyes, ears, nose and mouth,
        widened to the forehead and chin."""
        face = self.points[
            [NOSE, LEFT_EYE, RIGHT_EYE, LEFT_EAR, RIGHT_EAR, MOUTH_LEFT, MOUTH_RIGHT]
        ]
        left, top = face.min(axis=0)
        right, bottom = face.max(axis=0)
        width = right - left
        return (
            round(left - 0.1 * width),
            round(top - 0.6 * width),
            round(right + 0.1 * width),
            round(bottom + 0.35 * width),
        )

    def face_mask(self, size: tuple[int, int], offset: tuple[int, int] = (0, 0)) -> np.ndarray:
        """The face: the ellipse inscribed in `face_box()`, as a boolean (height, width) mask
        of an image of `size` whose top-left corner is at `offset` in this body's image."""
        left, top, right, bottom = self.face_box()
        x, y = offset
        mask = Image.new("L", size, 0)
        ImageDraw.Draw(mask).ellipse((left - x, top - y, right - x - 1, bottom - y - 1), fill=255)
        return np.asarray(mask) > 0


class _Models:
    """The three interpreters, loaded once per process and used under one lock (a litert
    interpreter is not thread-safe; the sandbox renders on several worker threads)."""

    def __init__(self) -> None:
        from ai_edge_litert.interpreter import Interpreter

        def load(name: str) -> Interpreter:
            interpreter = Interpreter(model_path=str(MODELS / name), num_threads=1)
            interpreter.allocate_tensors()
            return interpreter

        self.detector = load("pose_detection.tflite")
        self.landmarks = load("pose_landmark_full.tflite")
        self.segmenter = load("selfie_segmentation.tflite")
        self.anchors = _anchors()
        self.lock = threading.Lock()

    @staticmethod
    def run(interpreter, tensor: np.ndarray) -> list[np.ndarray]:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], tensor[None])
        interpreter.invoke()
        return [interpreter.get_tensor(d["index"])[0] for d in interpreter.get_output_details()]


_models: _Models | None = None
_unavailable: str | None = None
_load_lock = threading.Lock()


def _get_models() -> _Models | None:
    global _models, _unavailable
    with _load_lock:
        if _models is None and _unavailable is None:
            try:
                _models = _Models()
            except ImportError:
                _unavailable = "ai-edge-litert is not installed"
            except Exception as exc:  # a broken model file or runtime: fall back, say why
                _unavailable = f"the pose models could not be loaded ({exc})"
            if _unavailable:
                log.warning("sandbox renderer: %s; using the plain placement", _unavailable)
        return _models


def unavailable_reason() -> str | None:
    """Why body finding is off in this process (None when the models are loaded)."""
    _get_models()
    return _unavailable


class NoPerson(Exception):
    """No person found; the message says why, for the sandbox log."""


_found: PictureMemo[Body | NoPerson] = PictureMemo(8)


def find_body(image: Image.Image) -> Body:
    """The person in `image` (RGB). Raises NoPerson with a reason when there is none.

    Remembers the last few photos' answers (by content): a sandbox, a demo or a batch renders
    the same person with many garments.
    """
    answer = _found.get(image, _body_or_reason)
    if isinstance(answer, NoPerson):
        raise NoPerson(str(answer))
    return answer


def _body_or_reason(image: Image.Image) -> Body | NoPerson:
    try:
        return _find_body(image)
    except NoPerson as reason:
        return reason


def _find_body(image: Image.Image) -> Body:
    models = _get_models()
    if models is None:
        raise NoPerson(_unavailable or "the pose models are unavailable")
    with models.lock:
        rect = _detect(models, image)
        if rect is None:
            raise NoPerson("the pose detector found no person")
        points, visibility, presence, _ = _landmarks(models, image, rect, with_mask=False)
        if presence < _MIN_PRESENCE:
            raise NoPerson(f"the pose landmarks were not confident (presence {presence:.2f})")
        # Refine on the crop the landmarks themselves define.
        points, visibility, presence, body_mask = _landmarks(
            models, image, _rect_from(points[_HIPS_CENTRE], points[_BODY_EXTENT])
        )
        if presence < _MIN_PRESENCE:
            raise NoPerson(f"the pose landmarks were not confident (presence {presence:.2f})")
        # The pose model's mask holds whole bodies, arms and legs; the selfie model's is
        # sharper on head-and-shoulders portraits. The person is where either sees one.
        half = np.maximum(_segment(models, image), np.clip(body_mask, 0.0, 1.0))
    mask = np.asarray(
        Image.fromarray(half, "F").resize(image.size, Image.Resampling.BILINEAR),
        dtype=np.float32,
    )
    if mask.mean() < 0.02:
        raise NoPerson("the person mask is empty")
    return Body(points=points[:33], visibility=visibility[:33], mask=mask)


# --- the detector ------------------------------------------------------------------------------


def _anchors() -> np.ndarray:
    """BlazePose detector's SSD anchors (x, y centres), as MediaPipe's SsdAnchorsCalculator
    makes them: strides 8, 16, 32, 32, 32, two anchors per cell, fixed size."""
    centres = []
    for stride, per_cell in ((8, 2), (16, 2), (32, 6)):
        cells = _DETECTOR_SIDE // stride
        ys, xs = np.mgrid[0:cells, 0:cells]
        grid = np.stack([(xs + 0.5) / cells, (ys + 0.5) / cells], axis=-1).reshape(-1, 2)
        centres.append(np.repeat(grid, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


def _letterbox(image: Image.Image, side: int) -> tuple[np.ndarray, float, float, float]:
    """The image padded to a square and resized to side×side (RGB 0…1), with the scale and
    padding that map back: x = u * scale - pad_x."""
    longest = max(image.size)
    square = Image.new("RGB", (longest, longest), (0, 0, 0))
    pad_x, pad_y = (longest - image.width) // 2, (longest - image.height) // 2
    square.paste(image, (pad_x, pad_y))
    small = square.resize((side, side), Image.Resampling.BILINEAR)
    return np.asarray(small, dtype=np.float32) / 255.0, longest / side, pad_x, pad_y


def _detect(models: _Models, image: Image.Image):
    tensor, scale, pad_x, pad_y = _letterbox(image, _DETECTOR_SIDE)
    boxes, scores = models.run(models.detector, tensor * 2.0 - 1.0)
    scores = 1.0 / (1.0 + np.exp(-np.clip(scores[:, 0], -50, 50)))
    best = int(scores.argmax())
    if scores[best] < _MIN_DETECTION_SCORE:
        return None
    keypoints = boxes[best, 4:12].reshape(4, 2) / _DETECTOR_SIDE + models.anchors[best]
    keypoints = keypoints * _DETECTOR_SIDE * scale - (pad_x, pad_y)
    return _rect_from(keypoints[0], keypoints[1])


def _rect_from(centre: np.ndarray, extent: np.ndarray) -> tuple[float, float, float, float]:
    """MediaPipe's body crop: centred on the hips, twice the hips-to-extent distance, ×1.25,
    turned so that hips→extent points up. Returns (cx, cy, side, rotation radians)."""
    dx, dy = extent - centre
    rotation = np.pi / 2 - np.arctan2(-dy, dx)
    rotation = (rotation + np.pi) % (2 * np.pi) - np.pi
    side = 2.0 * float(np.hypot(dx, dy)) * 1.25
    return float(centre[0]), float(centre[1]), max(side, 8.0), float(rotation)


def _landmarks(models: _Models, image: Image.Image, rect, with_mask: bool = True):
    cx, cy, side, rotation = rect
    cos, sin = np.cos(rotation), np.sin(rotation)
    step = side / _LANDMARK_SIDE
    # Output pixel (u, v) samples input (x, y) = centre + R·((u, v) − half)·step.
    half = _LANDMARK_SIDE / 2
    a, b = cos * step, -sin * step
    d, e = sin * step, cos * step
    c = cx - a * half - b * half
    f = cy - d * half - e * half
    crop = image.transform(
        (_LANDMARK_SIDE, _LANDMARK_SIDE),
        Image.Transform.AFFINE,
        (a, b, c, d, e, f),
        resample=Image.Resampling.BILINEAR,
    )
    outputs = models.run(models.landmarks, np.asarray(crop, dtype=np.float32) / 255.0)
    raw = outputs[0].reshape(39, 5)
    presence = float(1.0 / (1.0 + np.exp(-outputs[1][0])))
    u, v = raw[:, 0], raw[:, 1]
    points = np.stack([a * u + b * v + c, d * u + e * v + f], axis=1)
    visibility = 1.0 / (1.0 + np.exp(-raw[:, 3]))
    if not with_mask:
        return points, visibility, presence, None
    # The landmark model's own body mask (logits in the crop), mapped back onto the image.
    logits = np.clip(outputs[2][..., 0], -30, 30)
    crop_mask = Image.fromarray((1.0 / (1.0 + np.exp(-logits))).astype(np.float32), "F")
    inverse = np.linalg.inv(np.array([[a, b, c], [d, e, f], [0, 0, 1]]))[:2]
    inverse[:, :2] *= 2  # made at half size: the masks are smooth, and upscaled once later
    body_mask = crop_mask.transform(
        _half(image.size),
        Image.Transform.AFFINE,
        tuple(inverse.ravel()),
        resample=Image.Resampling.BILINEAR,
    )
    return points, visibility, presence, np.asarray(body_mask, dtype=np.float32)


def _segment(models: _Models, image: Image.Image) -> np.ndarray:
    tensor, scale, pad_x, pad_y = _letterbox(image, _SEGMENTER_SIDE)
    (probability,) = models.run(models.segmenter, tensor)
    # Cut the letterbox padding off, then scale to the image's size.
    inner = probability[..., 0]
    x0, y0 = pad_x / scale, pad_y / scale
    box = (x0, y0, x0 + image.width / scale, y0 + image.height / scale)
    mask = Image.fromarray(inner.astype(np.float32), "F").transform(
        _half(image.size), Image.Transform.EXTENT, box, resample=Image.Resampling.BILINEAR
    )
    return np.clip(np.asarray(mask, dtype=np.float32), 0.0, 1.0)


def _half(size: tuple[int, int]) -> tuple[int, int]:
    return max(1, size[0] // 2), max(1, size[1] // 2)
