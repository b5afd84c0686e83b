"""The app's page logic through Streamlit's AppTest: the router, the sidebar's connection panel
and the Try-on page, on the embedded sandbox (and on extra sandboxes posing as live endpoints),
with a real ledger in a temporary data dir."""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest
from support import APP, RUN_TIMEOUT, connect, default_services, run_until, texts, try_on_rows

from mirrago.ledger import JobState
from mirrago.sandbox.server import EmbeddedSandbox

pytestmark = pytest.mark.app


def jpeg(
    size: tuple[int, int] = (300, 400),
    colour: tuple[int, int, int] = (90, 120, 160),
    orientation: int | None = None,
) -> bytes:
    image = Image.new("RGB", size, colour)
    out = io.BytesIO()
    if orientation is None:
        image.save(out, "JPEG")
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def png(size: tuple[int, int] = (300, 330)) -> bytes:
    image = Image.new("RGBA", size, (0, 0, 0, 0))
    image.paste((200, 30, 30, 255), (60, 40, 240, 300))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def image_urls(at: AppTest) -> set[str]:
    return {url for image in at.image for url in image.value}


def use_source(at: AppTest, picker: str, source: str) -> AppTest:
    at.segmented_control(key=f"tryon-{picker}-source").set_value(source).run()
    assert not at.exception, at.exception
    return at


# ---------------------------------------------------------------------------- router, sidebar


def test_app_opens_on_the_try_on_page_and_says_it_is_in_sandbox_mode(app: AppTest):
    assert app.title[0].value == "Virtual try-on"
    sidebar = "\n".join(m.value for m in app.sidebar.markdown)
    assert "Sandbox (local)" in sidebar
    assert not app.error


def test_embedded_sandbox_starts_once_per_server_process(app: AppTest):
    first = default_services()
    again = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    again.run()

    assert default_services() is first
    assert first.backend.is_sandbox


def test_wrong_secret_is_refused_in_one_line_and_the_session_stays_on_the_sandbox(
    app: AppTest, make_sandbox: Callable[..., EmbeddedSandbox]
):
    live = make_sandbox(client_secret="right-secret")

    connect(app, live.base_url, live.client_id, "wrong-secret")

    assert len(app.sidebar.error) == 1
    assert "client id or secret" in app.sidebar.error[0].value
    assert "Sandbox (local)" in "\n".join(m.value for m in app.sidebar.markdown)


def test_connecting_switches_the_session_and_never_shows_the_secret(
    app: AppTest, make_sandbox: Callable[..., EmbeddedSandbox]
):
    secret = "mrg_live_Q7x2LrT9sV4kW8pZ"
    live = make_sandbox(client_secret=secret)

    connect(app, live.base_url, live.client_id, secret)

    host = live.base_url.removeprefix("http://")
    assert host in "\n".join(m.value for m in app.sidebar.markdown)
    assert len(app.sidebar.success) == 1
    assert app.sidebar.text_input(key="connect-secret").value == ""
    assert secret not in texts(app)


# ---------------------------------------------------------------------------- generating


def test_generate_with_the_sample_pair_enqueues_one_try_on_row(app: AppTest):
    app.button(key="tryon-generate").click().run()

    services = default_services()
    rows = try_on_rows(services)
    assert len(rows) == 1
    row = rows[0]
    base = services.backend.base_url
    assert row.target.startswith(f"{base}/samples/persons/")
    assert row.garment.startswith(f"{base}/samples/garments/")
    assert row.background == "original"
    assert app.query_params["job"] == str(row.id)


def test_a_new_visitor_starts_on_the_pair_the_sandbox_renders_best(app: AppTest):
    # The astronaut in the striped tee was the weakest render of the samples; a first demo
    # shows the illustrated model in the denim shirt.
    app.button(key="tryon-generate").click().run()
    (row,) = try_on_rows(default_services())
    assert row.target.endswith("/samples/persons/studio-ana.jpg")
    assert row.garment.endswith("/samples/garments/denim-shirt.png")


def test_options_are_recorded_with_the_job(app: AppTest):
    app.segmented_control(key="tryon-background").set_value("studio")
    app.text_input(key="tryon-username").input("demo-acme")
    app.button(key="tryon-generate").click().run()

    (row,) = try_on_rows(default_services())
    assert (row.background, row.username) == ("studio", "demo-acme")


def test_running_job_shows_its_state_and_the_result_replaces_it_when_done(app: AppTest):
    app.button(key="tryon-generate").click().run()
    shown = texts(app)
    assert any(words in shown for words in ("Waiting", "Sending", "Queued", "Processing"))

    run_until(app, lambda at: len(at.download_button) == 1)

    assert "wearing" in texts(app)
    (row,) = try_on_rows(default_services())
    assert row.state is JobState.COMPLETED
    assert row.job_id and row.job_id in "\n".join(h.proto.body for h in app.html)


def test_job_in_the_url_reopens_it_in_a_new_session(app: AppTest):
    app.button(key="tryon-generate").click().run()
    (row,) = try_on_rows(default_services())

    fresh = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    fresh.query_params["job"] = str(row.id)
    fresh.run()

    assert not fresh.exception
    assert fresh.session_state["tryon-open-row"] == row.id


def test_recent_try_ons_list_jobs_and_open_one(app: AppTest):
    app.button(key="tryon-generate").click().run()
    # The same pair again: "Run again" while the first runs (one job per intent), else Generate.
    keys = {button.key for button in app.button}
    app.button(key="tryon-run-again" if "tryon-run-again" in keys else "tryon-generate").click()
    app.run()
    first, second = try_on_rows(default_services())[::-1]  # batches come newest first
    assert app.session_state["tryon-open-row"] == second.id

    app.button(key=f"tryon-reopen-{first.id}").click().run()

    assert app.session_state["tryon-open-row"] == first.id
    assert app.query_params["job"] == str(first.id)


def test_recent_try_ons_offer_see_all_which_opens_the_usage_history(app: AppTest):
    app.button(key="tryon-generate").click().run()
    see_all = app.button(key="tryon-see-all-button")
    assert see_all.label == "See all"
    see_all.click().run()
    assert any(heading.value == "Usage" for heading in app.title)


# ---------------------------------------------------------------------------- inputs


def test_text_file_uploaded_as_a_photo_gets_a_clear_error_and_nothing_is_sent(app: AppTest):
    use_source(app, "person", "upload")
    app.file_uploader(key="tryon-person-upload").upload(
        "photo.jpg", b"hello, world\n", "image/jpeg"
    ).run()

    assert len(app.error) == 1
    assert "image" in app.error[0].value.lower()
    assert app.button(key="tryon-generate").disabled
    assert try_on_rows(default_services()) == []


@pytest.mark.parametrize(
    ("name", "data"),
    [("empty.png", b""), ("cut.jpg", jpeg((800, 600))[:900]), ("page.png", b"%PDF-1.7\n...")],
    ids=["empty", "truncated", "pdf"],
)
def test_unusable_garment_file_gets_one_clear_error(app: AppTest, name: str, data: bytes):
    use_source(app, "garment", "upload")
    app.file_uploader(key="tryon-garment-upload").upload(name, data, "image/png").run()

    assert len(app.error) == 1
    assert app.button(key="tryon-generate").disabled
    assert try_on_rows(default_services()) == []


def test_uploads_are_saved_under_inputs_and_enqueued_as_paths(app: AppTest, data_dir: Path):
    use_source(app, "person", "upload")
    use_source(app, "garment", "upload")
    app.file_uploader(key="tryon-person-upload").upload("me.jpg", jpeg(), "image/jpeg").run()
    app.file_uploader(key="tryon-garment-upload").upload("tee.png", png(), "image/png").run()
    app.button(key="tryon-generate").click().run()

    (row,) = try_on_rows(default_services())
    target, garment = Path(row.target), Path(row.garment)
    assert target.parent == garment.parent == data_dir / "inputs"
    assert target.suffix == ".jpg" and garment.suffix == ".png"
    assert target.is_file() and garment.is_file()


def test_rotated_phone_photo_is_sent_upright(app: AppTest):
    use_source(app, "person", "upload")
    # 400×300 pixels stored, EXIF "rotate 90° clockwise": the photo is 300 wide, 400 high.
    rotated = jpeg((400, 300), orientation=6)
    app.file_uploader(key="tryon-person-upload").upload("phone.jpg", rotated, "image/jpeg").run()
    app.button(key="tryon-generate").click().run()

    (row,) = try_on_rows(default_services())
    assert Image.open(row.target).size == (300, 400)


def test_large_photo_is_shrunk_before_it_is_sent(app: AppTest):
    use_source(app, "person", "upload")
    big = jpeg((4000, 3000))  # 12 MP
    app.file_uploader(key="tryon-person-upload").upload("big.jpg", big, "image/jpeg").run()

    assert "Shrunk for upload" in texts(app)
    app.button(key="tryon-generate").click().run()
    (row,) = try_on_rows(default_services())
    assert max(Image.open(row.target).size) == 2048


def test_camera_photo_is_enqueued_as_a_saved_input(app: AppTest, data_dir: Path):
    use_source(app, "person", "camera")
    app.camera_input(key="tryon-person-camera").upload("shot.jpg", jpeg((640, 480))).run()
    app.button(key="tryon-generate").click().run()

    (row,) = try_on_rows(default_services())
    assert Path(row.target).parent == data_dir / "inputs"


@pytest.mark.parametrize("link", ["ftp://example.com/a.jpg", "example.com/a.jpg", "https://nohost"])
def test_bad_image_link_is_refused_under_the_field(app: AppTest, link: str):
    use_source(app, "garment", "url")
    app.text_input(key="tryon-garment-url").input(link).run()

    assert len(app.error) == 1
    assert app.button(key="tryon-generate").disabled


def test_image_link_is_enqueued_as_given(app: AppTest):
    use_source(app, "garment", "url")
    link = "https://cdn.example.com/garments/shirt.png"
    app.text_input(key="tryon-garment-url").input(link).run()
    assert not app.error
    app.button(key="tryon-generate").click().run()

    (row,) = try_on_rows(default_services())
    assert row.garment == link


# ---------------------------------------------------------------------------- errors


def test_failed_job_shows_one_clear_message_with_what_to_do(
    app: AppTest, make_sandbox: Callable[..., EmbeddedSandbox]
):
    failing = make_sandbox(job_fail_rate=1.0)
    connect(app, failing.base_url, failing.client_id, failing.client_secret)
    app.button(key="tryon-generate").click().run()

    run_until(app, lambda at: len(at.main.error) > 0)

    assert len(app.main.error) == 1
    message = app.main.error[0].value
    assert "This try-on failed." in message
    assert "Retry" in message or "retry" in message
    assert app.button(key=f"tryon-retry-{app.session_state['tryon-open-row']}")


def test_unreachable_endpoint_is_reported_in_one_line(app: AppTest):
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    connect(app, f"http://127.0.0.1:{port}", "demo-client", "whatever")

    assert len(app.sidebar.error) == 1
    assert "Sandbox (local)" in "\n".join(m.value for m in app.sidebar.markdown)


def test_no_credits_left_says_so_and_what_to_do(
    app: AppTest, make_sandbox: Callable[..., EmbeddedSandbox]
):
    broke = make_sandbox(starting_credits=0)
    connect(app, broke.base_url, broke.client_id, broke.client_secret)
    app.button(key="tryon-generate").click().run()

    run_until(app, lambda at: len(at.main.warning) + len(at.main.error) > 0)

    alerts = [a.value for a in app.main.warning] + [a.value for a in app.main.error]
    assert len(alerts) == 1
    assert "credit" in alerts[0].lower()


def test_rotated_credentials_mid_session_say_what_to_check(
    app: AppTest, make_sandbox: Callable[..., EmbeddedSandbox]
):
    live = make_sandbox(token_ttl=0.5)
    connect(app, live.base_url, live.client_id, live.client_secret)
    live.engine.config.client_secret = "rotated-by-the-admin"
    time.sleep(0.6)  # the token the connection test fetched expires
    app.button(key="tryon-generate").click().run()

    run_until(app, lambda at: len(at.main.warning) + len(at.main.error) > 0)

    alerts = [a.value for a in app.main.warning] + [a.value for a in app.main.error]
    assert len(alerts) == 1
    assert "client id" in alerts[0].lower() and "secret" in alerts[0].lower()


def test_link_to_a_live_endpoints_try_on_never_opens_a_local_row(
    app: AppTest, make_sandbox: Callable[..., EmbeddedSandbox]
):
    app.button(key="tryon-generate").click().run()  # row 1 of the local ledger
    live = make_sandbox()
    connect(app, live.base_url, live.client_id, live.client_secret)
    app.button(key="tryon-generate").click().run()  # row 1 of the live endpoint's ledger
    link = app.query_params["job"]
    assert link == f"1@{live.base_url.removeprefix('http://')}"

    fresh = AppTest.from_file(APP, default_timeout=RUN_TIMEOUT)
    fresh.query_params["job"] = link
    fresh.run()

    assert "tryon-open-row" not in fresh.session_state


def test_before_after_slider_redraws_the_comparison(app: AppTest):
    app.button(key="tryon-generate").click().run()
    run_until(app, lambda at: len(at.download_button) == 1)
    row_id = app.session_state["tryon-open-row"]
    shown = image_urls(app)

    app.slider(key=f"tryon-compare-{row_id}").set_value(50).run()

    assert not app.exception
    assert app.slider(key=f"tryon-compare-{row_id}").value == 50
    assert image_urls(app) - shown  # the comparison frame is a new image
