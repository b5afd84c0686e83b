"""One try-on job on screen: its live status while it runs, then the result with a before/after
comparison, a download button and the details; or one clear message when it went wrong.

Everything is read from the ledger row: the runner (a background thread of the server process)
moves the job, so a refresh or a new tab shows exactly the same thing.
"""

from __future__ import annotations

import html
import mimetypes
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

import streamlit as st

from mirrago import samples
from mirrago.backend import Backend, describe_backend
from mirrago.batchfile import is_url
from mirrago.durations import duration_text
from mirrago.intents import delete_try_on
from mirrago.ledger import JobRecord, JobState
from mirrago.services import Services
from mirrago.ui import identity
from mirrago.ui.errors import advice_for, page_guard, plain
from mirrago.ui.frames import before_after, dimmed, empty_frame, framed, framed_stored, link_frame
from mirrago.ui.photo import photo
from mirrago.ui.plain import md_text

STATE_BADGES: dict[JobState, tuple[str, str]] = {
    # state: (badge colour, icon); the words are the state's own (`JobState.words`)
    JobState.QUEUED: ("gray", ":material/schedule:"),
    JobState.SUBMITTING: ("blue", ":material/upload:"),
    JobState.SUBMITTED: ("blue", ":material/autorenew:"),
    JobState.COMPLETED: ("green", ":material/check_circle:"),
    JobState.FAILED: ("red", ":material/error:"),
    JobState.UNCERTAIN: ("orange", ":material/help:"),
    JobState.CANCELED: ("gray", ":material/block:"),
}
_SERVER_WAITING = {"pending", "queued"}
_DELETED_KEY = "tryon-deleted-from-decks"  # the decks the last privacy delete took a slide from


def state_words(job: JobRecord, backend: str | None = None) -> str:
    """The job's state in a few words; an unfinished row of a backend other than `backend`
    (this runner's) waits for that one: this instance never sends it."""
    if backend is not None and job.backend != backend and not job.state.is_final:
        return f"Waiting for {describe_backend(job.backend)}"
    if job.state is JobState.SUBMITTED and (job.server_status or "").lower() in _SERVER_WAITING:
        return "Queued"
    return job.state.words


def state_badge(job: JobRecord, backend: str | None = None) -> None:
    color, icon = STATE_BADGES[job.state]
    st.badge(state_words(job, backend), color=color, icon=icon)  # type: ignore[arg-type]


def state_badge_md(job: JobRecord, backend: str | None = None) -> str:
    """`state_badge` as Markdown, to share one element with other text (a gallery card)."""
    color, icon = STATE_BADGES[job.state]
    return f":{color}-badge[{icon} {md_text(state_words(job, backend))}]"


def seconds_text(seconds: float) -> str:
    """How long a person waited, to the second (or tenth of one)."""
    return duration_text(seconds, precise=True)


def elapsed(job: JobRecord, now: datetime | None = None) -> float:
    end = job.finished_at or now or datetime.now(job.created_at.tzinfo)
    return (end - job.created_at).total_seconds()


def sample_for(value: str, backend: Backend) -> samples.Sample | None:
    """The shipped sample a job input refers to: a sandbox `/samples/...` URL (this sandbox,
    or one from an earlier run on this machine) or a sample's local path."""
    return samples.lookup(value, hosts=samples.local_hosts(backend.base_url))


def local_image(value: str, backend: Backend) -> bytes | None:
    """The bytes of a job input when they are on this machine (a saved upload, a sample)."""
    sample = sample_for(value, backend)
    if sample is not None:
        path = sample.path
    elif urlsplit(value).scheme in ("http", "https"):
        return None  # somebody else's link: the page does not fetch it
    else:
        path = Path(value)
    try:
        return path.read_bytes()
    except OSError:
        return None


def describe_input(value: str, backend: Backend, role: str) -> str:
    """A job input in a few words: the sample's title, the link's host, or "your photo"."""
    sample = sample_for(value, backend)
    if sample is not None:
        return sample.title
    if urlsplit(value).scheme in ("http", "https"):
        return f"an image from {urlsplit(value).hostname or 'a link'}"
    return "your photo" if role == "person" else "your garment"


def result_bytes(job: JobRecord) -> bytes | None:
    if not job.result_path:
        return None
    try:
        return Path(job.result_path).read_bytes()
    except OSError:
        return None


USERNAME_SHOWN = 200  # a CLI or batch row may carry a longer one: never a 5,000 px table


def _shortened(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def job_details(job: JobRecord) -> None:
    """The job's identifiers and timings, as a small table (never raw JSON)."""
    rows = [
        ("Status", state_words(job)),
        ("Job id", job.job_id or "—"),
        ("Cloth id", job.cloth_id or "—"),
        ("Credits before", f"{job.credits_before:,}" if job.credits_before is not None else "—"),
        ("Background", job.background or "original"),
        ("Username", _shortened(job.username or "—", USERNAME_SHOWN)),
        ("Created", job.created_at.astimezone().strftime("%Y-%m-%d %H:%M:%S")),
    ]
    if job.submitted_at:
        waited = (job.submitted_at - job.created_at).total_seconds()
        rows.append(("Sent after", seconds_text(waited)))
    if job.finished_at and job.submitted_at:
        rows.append(
            ("Mirrago took", seconds_text((job.finished_at - job.submitted_at).total_seconds()))
        )
    if job.finished_at:
        rows.append(("Total", seconds_text(elapsed(job))))
    if job.attempts > 1:
        rows.append(("Attempts", str(job.attempts)))
    cells = "".join(
        f"<tr><th>{html.escape(name)}</th><td>{html.escape(value)}</td></tr>"
        for name, value in rows
    )
    st.html(f'<table class="mirrago-details">{cells}</table>')


def problem(job: JobRecord, services: Services) -> None:
    """One clear message for a job that did not complete, with what to do next."""
    detail = (job.error or "").strip()
    if job.state is JobState.FAILED:
        title = "This try-on failed."
        advice = advice_for(detail)
    elif job.state is JobState.UNCERTAIN:
        title = "We could not confirm whether Mirrago received this try-on."
        advice = (
            "It may have been charged. Retry only if it does not show up as done in a minute "
            "(a retry may spend another credit)."
        )
    else:
        title = "This try-on was canceled."
        advice = "Generate again when you are ready."
    body = f"**{title}**"
    if detail:
        body += f"  \n{plain(detail)}"
    st.error(f"{body}  \n{advice}", icon=":material/error:")
    if job.state in (JobState.FAILED, JobState.UNCERTAIN) and st.button(
        "Retry", key=f"tryon-retry-{job.id}", icon=":material/refresh:"
    ):
        services.runner.retry(job.id)
        st.rerun()


def _waiting_frame(before: bytes | None) -> bytes:
    return (dimmed(before) if before else None) or empty_frame()


def live_status(services: Services, row_id: int, before: bytes | None) -> None:
    """A status card that refreshes itself every second until the job is final, then reruns
    the page so the result replaces it. It only reads the ledger: it never blocks."""

    @st.fragment(run_every=1.0)
    def card() -> None:
        with page_guard("the live status"):
            job = services.ledger.job(row_id)
            if job is None or job.state.is_final:
                st.rerun(scope="app")
            photo(_waiting_frame(before))
            with st.container(border=True, key="tryon-status"):
                left, right = st.columns([3, 2], vertical_alignment="center")
                with left:
                    state_badge(job, services.runner.backend)
                with right:
                    st.markdown(f"**{seconds_text(elapsed(job))}**", text_alignment="right")
                st.progress(_progress(job), text=_status_note(job))
                _runner_problem(services, job)
                if job.state is JobState.QUEUED and st.button(
                    "Cancel", key=f"tryon-cancel-{job.id}", icon=":material/close:"
                ):
                    services.runner.cancel(job.id)
                    st.rerun(scope="app")

    card()


def _runner_problem(services: Services, job: JobRecord) -> None:
    """Why a job is not moving, when the runner knows (credentials refused, no credits…)."""
    runner = services.runner
    error = getattr(runner, "last_error", None)
    if not error or job.state not in (JobState.QUEUED, JobState.SUBMITTING):
        return
    st.warning(
        f"**Not sent yet.** {plain(error)}  \n{advice_for(str(error))}", icon=":material/warning:"
    )
    if getattr(runner, "paused", False) and st.button(
        "Try sending again", key=f"tryon-resume-{job.id}", icon=":material/play_arrow:"
    ):
        runner.resume()


def _progress(job: JobRecord) -> float:
    # Steps, not a time estimate: the service gives none.
    if job.state is JobState.QUEUED:
        return 0.05
    if job.state is JobState.SUBMITTING:
        return 0.2
    if (job.server_status or "").lower() in _SERVER_WAITING:
        return 0.4
    return 0.7


def _status_note(job: JobRecord) -> str:
    if job.state is JobState.QUEUED:
        return "In line to be sent to the service"
    if job.state is JobState.SUBMITTING:
        return "Uploading the photos"
    return "Mirrago is dressing the photo (usually a few seconds)"


def result_view(services: Services, job: JobRecord, before: bytes | None) -> None:
    """The finished job: result (with a before/after slider), download, details."""
    after = result_bytes(job)
    if job.state is JobState.COMPLETED and after is None:
        _remote_result(job)
        return
    if job.state is not JobState.COMPLETED or after is None:
        photo(_waiting_frame(before))
        problem(job, services)
        _details_expander(job, services)
        return
    person = describe_input(job.target, services.backend, "person")
    garment = describe_input(job.garment, services.backend, "garment")
    caption = f"{person[:1].upper()}{person[1:]} wearing {garment}"
    _comparison(job, before, after, caption)
    mime = mimetypes.guess_type(job.result_path or "")[0] or "image/png"
    # With sign-in, the file is made only on the owner's click: rendering the button does not
    # put the result behind a /media/ URL.
    st.download_button(
        "Download the result",
        data=(lambda: after) if identity.sign_in_configured() else after,
        file_name=f"mirrago-tryon-{job.job_id or job.id}{Path(job.result_path or '.png').suffix}",
        mime=mime,
        icon=":material/download:",
        type="primary",
        width="stretch",
        key=f"tryon-download-{job.id}",
        on_click="ignore",
    )
    _details_expander(job, services)


def _remote_result(job: JobRecord) -> None:
    """A completed job whose image could not be copied here: show it from the service."""
    if job.result_url and is_url(job.result_url):  # never a javascript: or data: link
        link_frame(job.result_url, "The result could not be loaded from the service")
        st.link_button(
            "Open the result", job.result_url, icon=":material/open_in_new:", width="stretch"
        )
    else:
        photo(empty_frame())
    st.warning(
        "**The result was made but not saved here.** "
        f"{plain(job.error)}  \nOpen it from the service now: its link may expire.",
        icon=":material/warning:",
    )
    _details_expander(job)


def _details_expander(job: JobRecord, services: Services | None = None) -> None:
    with st.expander("Job details", icon=":material/receipt_long:"):
        job_details(job)
        if services is not None:
            _delete_control(services, job)


def _delete_control(services: Services, job: JobRecord) -> None:
    """Delete this try-on: its photos, result and thumbnail leave the disk for good."""
    with st.popover("Delete this try-on", icon=":material/delete:"):
        st.write("Its photos and result are removed from this computer. This cannot be undone.")
        if st.button("Delete", type="primary", key=f"tryon-delete-{job.id}"):
            deleted = delete_try_on(services.ledger, job.id, services.settings.data_dir)
            st.session_state[_DELETED_KEY] = deleted.decks if deleted is not None else ()
            st.query_params.pop("job", None)
            st.session_state.pop("tryon-open-row", None)
            st.rerun(scope="app")


def deletion_notice() -> None:
    """After a privacy delete: that it happened, and which Stage decks lost its slide."""
    decks = st.session_state.pop(_DELETED_KEY, None)
    if decks is None:
        return
    text = "The try-on was deleted: its photos and result are gone from this computer."
    if decks:
        names = ", ".join(f"“{plain(name[:60])}”" for name in decks)
        text += f"  \nIt was also taken out of the deck(s) {names}."
    st.success(text, icon=":material/delete:")


def _comparison(job: JobRecord, before: bytes | None, after: bytes, caption: str) -> None:
    """The result, and a slider that reveals the original photo from the left."""

    @st.fragment
    def compare() -> None:
        with page_guard("the comparison"):
            split = 0
            if before is not None:
                split = st.session_state.get(f"tryon-compare-{job.id}", 0)
            image = before_after(before, after, split / 100) if before and split else None
            photo(image or framed_stored(job.result_path) or framed(after) or after)
            st.caption(caption)
            if before is not None:
                st.slider(
                    "Compare with the original",
                    0,
                    100,
                    key=f"tryon-compare-{job.id}",
                    format="%d%%",
                    help="Drag to reveal the original photo from the left.",
                )

    compare()
