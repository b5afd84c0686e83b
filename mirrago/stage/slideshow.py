"""The one slideshow page: a deck as a single self-contained HTML file that plays it.

Pictures are embedded as `data:` URLs and the style and script are inline, so the file makes
no request at all: it opens offline, can be emailed, and the Stage page shows the very same
page full-screen (in an iframe), so the keys behave the same in both. Every name, label and
note is HTML-escaped: a note is text, never markup.

Keys: → or PageDown next, ← or PageUp previous (presentation clickers send those), Home/End
first/last, Space before/after, N notes, Esc leaves presenting (on the Stage page) or full
screen. F asks the browser for full screen.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Sequence

from mirrago.stage.slides import StageSlide

# Class names of the Stage page's buttons the embedded slideshow presses (see
# mirrago/ui/stage/present.py): the page's own widgets do the work, the slideshow only asks.
LEAVE_BUTTON = "stage-leave"
LIVE_BUTTON = "stage-live-open"

PLACEHOLDER_TEXT = "The pictures of this slide are no longer on this computer."

_STYLE = """
*{box-sizing:border-box}
html,body{margin:0;height:100%;overflow:hidden;background:#17142a;color:#ece9f8;
  font-family:Helvetica,Arial,sans-serif}
.slide{position:absolute;inset:0;display:none;padding:3vh 3vw 6vh;gap:2.5vw;
  align-items:center;justify-content:center}
.slide.current{display:flex}
figure{margin:0;display:flex;flex-direction:column;align-items:center;gap:.6vh}
figure img{display:block;object-fit:contain;border-radius:.8vh;background:#231f3d}
figcaption{font-size:1.6vh;color:#a99fd0;letter-spacing:.04em;text-transform:uppercase}
.result img{height:84vh;max-width:62vw}
body:not(.compare) .result figcaption{display:none}
.inputs{display:flex;flex-direction:column;gap:2vh}
.inputs img{height:36vh;max-width:24vw}
.result{order:1}.inputs{order:3}
body.compare .slide.has-person .person-slot img{height:84vh;max-width:46vw}
body.compare .slide.has-person .result img{max-width:46vw}
body.compare .slide.has-person .garment{display:none}
body.compare .slide.has-person .inputs{order:0}
.caption{position:absolute;left:3vw;bottom:1.6vh;font-size:1.8vh;color:#c4b8ff}
.placeholder{height:84vh;width:min(64vh,80vw);display:flex;align-items:center;
  justify-content:center;text-align:center;padding:4vh;border:2px dashed #4a4370;
  border-radius:1vh;color:#a99fd0;font-size:2.2vh}
.counter{position:fixed;right:2vw;bottom:1.6vh;font-size:1.5vh;color:#ece9f8;opacity:.45;
  font-variant-numeric:tabular-nums}
.notes{position:fixed;left:50%;transform:translateX(-50%);bottom:5vh;width:min(70vw,900px);
  max-height:24vh;overflow:auto;display:none;background:rgba(15,12,30,.92);color:#fff;
  border:1px solid #4a4370;border-radius:1vh;padding:1.6vh 2vw;font-size:2vh;line-height:1.45;
  white-space:pre-wrap}
body.show-notes .slide.current .notes{display:block}
body.show-notes .slide{align-items:flex-start}
body.show-notes .result img,body.show-notes.compare .slide.has-person .person-slot img{height:62vh}
body.show-notes .inputs img{height:26vh}
body.show-notes .placeholder{height:62vh}
.controls{position:fixed;top:1.6vh;right:1.6vw;display:flex;gap:.8vw;opacity:.35}
.controls:hover{opacity:1}
.controls button{font:inherit;font-size:1.5vh;color:#ece9f8;background:#231f3d;
  border:1px solid #4a4370;border-radius:.8vh;padding:.6vh 1vw;cursor:pointer}
.empty{position:absolute;inset:0;display:flex;align-items:center;justify-content:center;
  font-size:2.4vh;color:#a99fd0}
"""

_SCRIPT = """
(function () {
  const config = JSON.parse(document.getElementById('stage-config').textContent);
  const slides = Array.from(document.querySelectorAll('.slide'));
  const counter = document.querySelector('.counter');
  const storeKey = 'mirrago-stage-' + config.key;
  let index = 0;
  try { index = Math.min(slides.length - 1, Math.max(0, +sessionStorage.getItem(storeKey) || 0)); }
  catch (e) { index = 0; }
  function show(next) {
    if (!slides.length) return;
    index = Math.min(slides.length - 1, Math.max(0, next));
    slides.forEach(function (slide, i) { slide.classList.toggle('current', i === index); });
    document.body.classList.remove('compare');
    counter.textContent = (index + 1) + ' / ' + slides.length;
    document.body.dataset.slide = String(index + 1);
    try { sessionStorage.setItem(storeKey, String(index)); } catch (e) {}
  }
  function host() {
    try {
      if (window.parent !== window && window.frameElement && window.frameElement.isConnected) {
        return window.parent.document;
      }
    } catch (e) {}
    return null;
  }
  function press(key) {
    const page = host();
    const button = page && page.querySelector('.st-key-' + key + ' button');
    if (button) button.click();
    return Boolean(button);
  }
  function onKey(event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target && /^(INPUT|TEXTAREA|SELECT)$/.test(target.tagName || '')) return;
    const key = event.key;
    if (key === 'ArrowRight' || key === 'PageDown') show(index + 1);
    else if (key === 'ArrowLeft' || key === 'PageUp') show(index - 1);
    else if (key === 'Home') show(0);
    else if (key === 'End') show(slides.length - 1);
    else if (key === ' ' || key === 'Spacebar') document.body.classList.toggle('compare');
    else if (key === 'n' || key === 'N') document.body.classList.toggle('show-notes');
    else if (key === 'l' || key === 'L') { if (!press(config.live)) return; }
    else if (key === 'f' || key === 'F') {
      if (!host() && document.documentElement.requestFullscreen) {
        document.documentElement.requestFullscreen().catch(function () {});
      }
    }
    else if (key === 'Escape') {
      if (!press(config.leave) && document.fullscreenElement) document.exitFullscreen();
    }
    else return;
    event.preventDefault();
  }
  document.addEventListener('keydown', onKey);
  // On the Stage page the slideshow sits in an iframe: keys pressed while the page around it
  // has the focus are handled too (one handler at a time, dropped once the iframe is gone).
  const page = host();
  if (page) {
    const win = page.defaultView;
    if (win.__mirragoStageKeys) page.removeEventListener('keydown', win.__mirragoStageKeys);
    const forward = function (event) {
      if (!host()) { page.removeEventListener('keydown', forward); return; }
      onKey(event);
    };
    win.__mirragoStageKeys = forward;
    page.addEventListener('keydown', forward);
  }
  document.querySelectorAll('[data-press]').forEach(function (button) {
    button.addEventListener('click', function () { press(button.dataset.press); });
  });
  show(index);
  window.focus();
})();
"""


def _image(data: bytes, alt: str) -> str:
    source = "data:image/jpeg;base64," + base64.b64encode(data).decode("ascii")
    return f'<img src="{source}" alt="{html.escape(alt, quote=True)}">'


def _slide_html(slide: StageSlide, number: int) -> str:
    notes = f'<div class="notes">{html.escape(slide.notes)}</div>' if slide.notes else ""
    caption = f'<p class="caption">{html.escape(slide.caption)}</p>' if slide.caption else ""
    if slide.result is None:
        body = f'<div class="placeholder">{html.escape(PLACEHOLDER_TEXT)}</div>'
        return f'<section class="slide" data-number="{number}">{body}{notes}</section>'
    parts = [
        f'<figure class="result">{_image(slide.result, "Result: " + slide.caption)}'
        "<figcaption>After</figcaption></figure>"
    ]
    inputs = []
    if slide.person is not None:
        inputs.append(
            f'<figure class="person-slot">{_image(slide.person, "Person: " + slide.person_label)}'
            "<figcaption>Before</figcaption></figure>"
        )
    if slide.garment is not None:
        inputs.append(
            f'<figure class="garment">{_image(slide.garment, "Garment: " + slide.garment_label)}'
            "<figcaption>Garment</figcaption></figure>"
        )
    if inputs:
        parts.append(f'<div class="inputs">{"".join(inputs)}</div>')
    kind = "slide has-person" if slide.person is not None else "slide"
    return (
        f'<section class="{kind}" data-number="{number}">{"".join(parts)}{caption}{notes}</section>'
    )


def slideshow_html(
    name: str, slides: Sequence[StageSlide], *, key: str = "deck", embedded: bool = False
) -> str:
    """The deck `name` as one self-contained HTML page. `key` tells decks apart (the slide a
    tab was on is remembered per deck); `embedded` adds the Stage page's small Leave and Try it
    live buttons, which press that page's own buttons."""
    config = json.dumps({"key": key, "leave": LEAVE_BUTTON, "live": LIVE_BUTTON})
    body = "".join(_slide_html(slide, number) for number, slide in enumerate(slides, 1))
    if not slides:
        body = '<div class="empty">This deck has no slides yet.</div>'
    controls = ""
    if embedded:
        controls = (
            '<div class="controls">'
            f'<button type="button" data-press="{LIVE_BUTTON}" title="L">Try it live</button>'
            f'<button type="button" data-press="{LEAVE_BUTTON}" title="Esc">Leave</button>'
            "</div>"
        )
    # `</` inside the JSON would end the script element early: escape it.
    safe_config = config.replace("</", "<\\/")
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(name)}</title><style>{_STYLE}</style></head><body>"
        f"{body}{controls}"
        f'<div class="counter" aria-live="polite"></div>'
        f'<script type="application/json" id="stage-config">{safe_config}</script>'
        f"<script>{_SCRIPT}</script></body></html>"
    )


def slideshow_file_name(deck_id: int, name: str) -> str:
    """A file name for a deck's slideshow: `deck-<id>-<name>.html`."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-").lower()[:40] or "deck"
    return f"deck-{deck_id}-{slug}.html"
