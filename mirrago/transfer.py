"""What the runner sends to and takes from the server besides requests: an input prepared for
upload, and a result downloaded with retries."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mirrago.backoff import backoff
from mirrago.errors import BadRequestError, ImageError, MirragoError, RateLimitError

if TYPE_CHECKING:
    from mirrago.client import MirragoClient


def prepared(value: str, role: str) -> Any:
    """A local image is prepared (oriented, capped, re-encoded) before upload; a URL is
    passed as is, for the server to fetch."""
    text = value.strip()
    if "://" in text:
        return text
    path = Path(text).expanduser()
    try:
        data = path.read_bytes()
    except OSError:
        return text  # let the client word the error about the path
    from mirrago.images import prepare_image

    return prepare_image(data, role=role).data


def download(
    client: MirragoClient, url: str, attempts: int, stopping: threading.Event
) -> tuple[bytes | None, str | None]:
    """The result's bytes, or None and a note saying why not: tried up to `attempts` times
    (a refused or unusable image is not tried again), waiting between tries unless
    `stopping` is set."""
    attempts = max(1, attempts)
    problem = ""
    for attempt in range(attempts):
        try:
            return client.download(url), None
        except (ImageError, BadRequestError) as error:  # not worth retrying
            problem = error.message
            break
        except MirragoError as error:
            problem = error.message
            retry_after = error.retry_after if isinstance(error, RateLimitError) else None
            delay = backoff(attempt, retry_after=retry_after)
            if attempt + 1 < attempts and stopping.wait(delay):
                break
    return None, f"The result could not be downloaded: {problem}"
