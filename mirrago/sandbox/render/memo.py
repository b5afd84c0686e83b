"""Remember an answer per picture: the sandbox renders the same garment on many persons and the
same person in many garments, so work that depends on one picture alone is done once."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

from PIL import Image

T = TypeVar("T")


class PictureMemo(Generic[T]):
    """The last `size` answers of `make(picture)`, keyed by the picture's pixels and size.

    Thread-safe; two threads asking for the same new picture at once may both compute it.
    """

    def __init__(self, size: int) -> None:
        self._size = size
        self._answers: OrderedDict[str, T] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(picture: Image.Image) -> str:
        digest = hashlib.blake2b(picture.tobytes(), digest_size=16).hexdigest()
        return f"{digest}{picture.mode}{picture.size}"

    def get(self, picture: Image.Image, make: Callable[[Image.Image], T]) -> T:
        key = self.key(picture)
        with self._lock:
            if key in self._answers:
                self._answers.move_to_end(key)
                return self._answers[key]
        answer = make(picture)
        with self._lock:
            self._answers[key] = answer
            while len(self._answers) > self._size:
                self._answers.popitem(last=False)
        return answer

    def clear(self) -> None:
        """Forget every answer (benchmarks measure the work itself)."""
        with self._lock:
            self._answers.clear()
