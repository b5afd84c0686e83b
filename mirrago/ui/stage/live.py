"""Try it live: a visitor's own photo (camera or upload) in one of the deck's garments, run by
the runner and shown full-screen with its progress; Reset (the button or Esc), or a while
without a key or click, deletes it the way the privacy delete does (`mirrago.stage.visitors`).
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import streamlit as st

from mirrago.datadir import save_input
from mirrago.ledger import DeckRecord, JobRecord, JobState
from mirrago.services import Services
from mirrago.stage.visitors import reset_visitor, start_visitor_try_on
from mirrago.ui import identity, session
from mirrago.ui.errors import plain
from mirrago.ui.frames import framed, framed_file
from mirrago.ui.job_card import live_status, result_bytes
from mirrago.ui.photo import photo
from mirrago.ui.stage.present import hide_app_chrome
from mirrago.ui.tryon.picker import image_picker

LIVE_KEY = "stage-live"  # the deck whose live try-on is on screen
VISITOR_KEY = "stage-visitor-row"
ROUND_KEY = "stage-visitor-round"  # a new visitor gets new (empty) photo widgets
SANDBOX_KEY = "stage-on-sandbox"  # the live API failed: the stage continues on the sandbox
RESET_BUTTON = "stage-reset"
WATCH_TITLE = "Stage idle watch"

_LIVE_CSS = f"""
<style>
[data-testid="stMainBlockContainer"] {{ padding: 1.2rem 2rem 0 !important; max-width: none; }}
.st-key-stage-live-result img {{ height: 80vh; width: auto; max-width: 100%;
  object-fit: contain; margin: 0 auto; display: block; }}
.st-key-stage-live-side img {{ max-height: 32vh; width: auto; object-fit: contain; }}
.st-key-stage-live-progress img {{ max-height: 62vh; width: auto; margin: 0 auto; display: block; }}
.st-key-stage-live-garment img {{ max-height: 40vh; width: auto; }}
iframe[title="{WATCH_TITLE}"] {{ position: fixed; width: 0; height: 0; border: 0; }}
#stage-idle-countdown {{ position: fixed; inset: 0; z-index: 999999; display: flex;
  align-items: center; justify-content: center; background: rgba(23, 20, 42, .82);
  color: #fff; font: 600 3.2vh Helvetica, Arial, sans-serif; text-align: center; }}
</style>
"""

# Watches the page for keys and clicks (from a hidden iframe of the same origin); after the
# idle time it counts down on top of the page, then presses Reset. Any key or click stops it.
_WATCH = """
<script>
(function () {
  const config = JSON.parse(document.getElementById('config').textContent);
  const page = window.parent.document, win = window.parent;
  if (win.__mirragoIdle) win.__mirragoIdle();
  let last = Date.now(), overlay = null;
  const kinds = ['keydown', 'pointerdown', 'click', 'touchstart'];
  function clear() { if (overlay) { overlay.remove(); overlay = null; } }
  function activity() { last = Date.now(); clear(); }
  function stop() {
    clearInterval(timer); clear();
    kinds.forEach(function (kind) { page.removeEventListener(kind, activity, true); });
    if (win.__mirragoIdle === stop) win.__mirragoIdle = null;
  }
  function alive() {
    try { return Boolean(window.frameElement && window.frameElement.isConnected); }
    catch (e) { return false; }
  }
  kinds.forEach(function (kind) { page.addEventListener(kind, activity, true); });
  const timer = setInterval(function () {
    if (!alive()) { stop(); return; }
    const idle = Date.now() - last;
    if (idle < config.idle_ms) return;
    const left = Math.ceil((config.idle_ms + config.countdown_ms - idle) / 1000);
    if (left <= 0) {
      stop();
      const button = page.querySelector('.st-key-' + config.reset + ' button');
      if (button) button.click();
      return;
    }
    if (!overlay) {
      overlay = page.createElement('div');
      overlay.id = 'stage-idle-countdown';
      page.body.appendChild(overlay);
    }
    overlay.textContent = 'Still there? The stage resets in ' + left +
      ' s. Press any key or click to stay.';
  }, 200);
  win.__mirragoIdle = stop;
})();
</script>
"""


def countdown_seconds(idle_minutes: float) -> float:
    """How long the countdown shows before the reset: 10 s, less for a very short idle time."""
    return min(10.0, max(2.0, idle_minutes * 60 / 3))


def _idle_watch(idle_minutes: float) -> None:
    config = {
        "idle_ms": round(idle_minutes * 60_000),
        "countdown_ms": round(countdown_seconds(idle_minutes) * 1000),
        "reset": RESET_BUTTON,
    }
    page = f'<script type="application/json" id="config">{json.dumps(config)}</script>{_WATCH}'
    st.iframe(page, height=1, alt=WATCH_TITLE)


def open_live(deck_id: int) -> None:
    st.session_state[LIVE_KEY] = deck_id


def live_services(services: Services) -> Services:
    """The services the visitor's try-on runs on: the page's, or the embedded sandbox once the
    live API failed during the demo and the presenter chose to continue there."""
    if not st.session_state.get(SANDBOX_KEY) or services.backend.is_sandbox:
        return services
    base = session.default_settings()
    sandbox = replace(base, base_url=None, client_id=None, client_secret=None, base_url_typed=False)
    return session.services_for(sandbox)


def reset(services: Services) -> None:
    """The visitor leaves: their try-on deleted (files and personal fields), the screen back
    to the deck, the photo widgets empty for the next visitor."""
    row_id = st.session_state.pop(VISITOR_KEY, None)
    if row_id is not None:
        run = live_services(services)
        reset_visitor(run.runner, run.ledger, row_id, run.settings.data_dir)
    st.session_state[ROUND_KEY] = st.session_state.get(ROUND_KEY, 0) + 1
    st.session_state.pop(LIVE_KEY, None)


def deck_garments(services: Services, deck: DeckRecord) -> dict[str, str]:
    """The deck's garments still on this machine: path → label, in slide order."""
    found: dict[str, str] = {}
    for number, slide in enumerate(services.ledger.slides(deck.id), 1):
        path = slide.garment_path
        if path and path not in found and "://" not in path and Path(path).is_file():
            found[path] = slide.garment_label or f"Garment of slide {number}"
    return found


def live_view(services: Services, deck: DeckRecord, idle_minutes: float) -> None:
    hide_app_chrome()
    st.html(_LIVE_CSS)
    _idle_watch(idle_minutes)
    run = live_services(services)
    row_id = st.session_state.get(VISITOR_KEY)
    job = run.ledger.job(row_id) if row_id is not None else None
    title, buttons = st.columns([3, 1], vertical_alignment="center")
    with title:
        st.subheader(":material/photo_camera: Try it live", anchor=False)
    with buttons:
        st.button(
            "Reset",
            key=RESET_BUTTON,
            icon=":material/restart_alt:",
            shortcut="Escape",
            on_click=reset,
            args=(services,),
            type="primary" if job is not None else "secondary",
            width="stretch",
            help="Deletes the visitor's photo and result, and goes back to the deck.",
        )
    if job is None or job.deleted_at is not None:
        _inputs(run, deck)
    elif not job.state.is_final:
        with st.container(key="stage-live-progress"):
            live_status(run, job.id, framed_file(job.target) if job.target else None)
        _live_api_problem(services, run, job)
    elif job.state is JobState.COMPLETED and result_bytes(job) is not None:
        _result(job)
    else:
        _failed(services, run, job)


def _inputs(run: Services, deck: DeckRecord) -> None:
    garments = deck_garments(run, deck)
    if not garments:
        st.warning("This deck has no garment photo on this computer to try on.")
        return
    round_number = st.session_state.get(ROUND_KEY, 0)
    person_col, garment_col = st.columns(2, gap="large")
    with person_col:
        st.markdown("**Your photo**")
        person = image_picker(
            "person", key=f"stage-visitor-{round_number}", sources=("camera", "upload")
        )
    with garment_col:
        st.markdown("**A garment**")
        chosen = st.segmented_control(
            "Garment",
            list(garments),
            default=next(iter(garments)),
            required=True,
            format_func=garments.__getitem__,
            key=f"stage-garment-{round_number}",
            label_visibility="collapsed",
        )
        with st.container(key="stage-live-garment"):
            picture = framed_file(chosen) if chosen else None
            if picture:
                photo(picture, width=260)
        clicked = st.button(
            "Try it on",
            type="primary",
            icon=":material/auto_awesome:",
            disabled=person is None or person.prepared is None,
            key="stage-live-go",
            width="stretch",
        )
    if clicked and person is not None and person.prepared is not None and chosen:
        saved = save_input(person.prepared, run.settings.data_dir)
        job = start_visitor_try_on(run.runner, str(saved), chosen, identity.current_owner())
        if job is not None:
            st.session_state[VISITOR_KEY] = job.id
        st.rerun()


def _result(job: JobRecord) -> None:
    result, side = st.columns([3, 1], gap="medium")
    with result, st.container(key="stage-live-result"):
        photo(framed(result_bytes(job) or b"") or result_bytes(job) or b"")
    with side, st.container(key="stage-live-side"):
        for path in (job.target, job.garment):
            picture = framed_file(path) if path and "://" not in path else None
            if picture:
                photo(picture)
        st.caption("Press **Esc** or **Reset** when you are done: nothing of you is kept.")


def _failed(services: Services, run: Services, job: JobRecord) -> None:
    if not _live_api_problem(services, run, job):
        st.error(
            f"This try-on did not work: {plain((job.error or 'no reason given')[:160])}. "
            "Press Reset and try another photo."
        )


def _live_api_problem(services: Services, run: Services, job: JobRecord) -> bool:
    """On the live API, a failure or a runner that cannot send: one plain line, and the offer
    to continue on the embedded sandbox (the deck itself never needs the API)."""
    if run.backend.is_sandbox:
        return False
    error = job.error if job.state in (JobState.FAILED, JobState.UNCERTAIN) else None
    error = error or getattr(run.runner, "last_error", None)
    if not error:
        return False
    st.error(f"The live service failed: {plain(str(error)[:160])}")
    if st.button("Continue on the embedded sandbox", key="stage-to-sandbox", type="primary"):
        st.session_state[SANDBOX_KEY] = True
        sandbox = live_services(services)
        again = start_visitor_try_on(sandbox.runner, job.target, job.garment, job.owner)
        reset_visitor(run.runner, run.ledger, job.id, run.settings.data_dir)
        st.session_state[VISITOR_KEY] = again.id if again is not None else None
        st.rerun()
    return True
