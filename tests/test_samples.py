"""The shipped sample images: enough of each kind, each one sound, each one accounted for."""

from __future__ import annotations

import pytest
from PIL import Image

from mirrago import review, samples
from mirrago.samples import SAMPLES_DIR, Sample
from mirrago.sandbox.inputs import sample_files, sample_path

PROVENANCE = (SAMPLES_DIR / "PROVENANCE.md").read_text(encoding="utf-8")
ALL = samples.persons() + samples.garments()


def _ids(sample: Sample) -> str:
    return sample.relative_path


def test_at_least_four_persons_and_six_garments_ship() -> None:
    assert len(samples.persons()) >= 4
    assert len(samples.garments()) >= 6


def test_samples_are_listed_by_kind_with_the_files_layout() -> None:
    assert {s.kind for s in samples.persons()} == {"person"}
    assert {s.kind for s in samples.garments()} == {"garment"}
    assert all(
        s.path.suffix == ".jpg" and s.path.parent.name == "persons" for s in samples.persons()
    )
    assert all(
        s.path.suffix == ".png" and s.path.parent.name == "garments" for s in samples.garments()
    )


def test_every_image_file_in_the_folders_is_listed() -> None:
    files = [*SAMPLES_DIR.glob("persons/*"), *SAMPLES_DIR.glob("garments/*")]
    on_disk = {p.relative_to(SAMPLES_DIR).as_posix() for p in files}
    assert on_disk == {s.relative_path for s in ALL}


@pytest.mark.parametrize("sample", ALL, ids=_ids)
def test_sample_decodes_completely(sample: Sample) -> None:
    with Image.open(sample.path) as image:
        image.load()
        assert image.format == ("JPEG" if sample.kind == "person" else "PNG")
        assert image.mode == "RGB"


@pytest.mark.parametrize("sample", ALL, ids=_ids)
def test_sample_size_is_sane_for_upload_and_display(sample: Sample) -> None:
    assert 10_000 < sample.path.stat().st_size <= 300 * 1024
    with Image.open(sample.path) as image:
        width, height = image.size
    assert 256 <= min(width, height) and max(width, height) <= 2048


@pytest.mark.parametrize("sample", samples.persons(), ids=_ids)
def test_person_is_portrait_framed(sample: Sample) -> None:
    with Image.open(sample.path) as image:
        width, height = image.size
    assert height >= width


@pytest.mark.parametrize("sample", samples.garments(), ids=_ids)
def test_garment_sits_on_a_plain_light_backdrop(sample: Sample) -> None:
    """The whole border is one light colour, so a flood fill from the edge removes it."""
    with Image.open(sample.path) as image:
        rgb = image.convert("RGB")
    width, height = rgb.size
    border = [rgb.getpixel((x, y)) for x in range(0, width, 7) for y in (0, height - 1)]
    border += [rgb.getpixel((x, y)) for y in range(0, height, 7) for x in (0, width - 1)]
    assert len(set(border)) == 1
    assert min(border[0]) >= 235
    # ...and the garment itself fills a good part of the frame, centred.
    box = rgb.point(lambda v: 255 if v < 225 else 0).convert("L").getbbox()
    assert box is not None
    left, top, right, bottom = box
    assert (right - left) * (bottom - top) > 0.3 * width * height
    assert abs((left + right) / 2 - width / 2) < width * 0.05


@pytest.mark.parametrize("sample", ALL, ids=_ids)
def test_provenance_names_every_file(sample: Sample) -> None:
    assert f"`{sample.relative_path}`" in PROVENANCE


@pytest.mark.parametrize("sample", ALL, ids=_ids)
def test_title_is_human_friendly(sample: Sample) -> None:
    assert sample.title and sample.title != sample.name
    assert sample.title[0].isupper() and "-" not in sample.title


def test_find_returns_the_sample_by_kind_and_name() -> None:
    first = samples.persons()[0]
    assert samples.find("person", first.name) == first
    assert samples.find("persons", first.path.name) == first
    garment = samples.garments()[0]
    assert samples.find("garment", garment.name) == garment


def test_find_unknown_name_says_which_names_exist() -> None:
    with pytest.raises(LookupError) as caught:
        samples.find("garment", "ball-gown")
    message = str(caught.value)
    assert "ball-gown" in message and samples.garments()[0].name in message


def test_find_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="person"):
        samples.find("shoes", "anything")


# ------------------------------------------------------------------ which sample an input names


def test_by_file_names_a_sample_by_its_folder_and_exact_file_name() -> None:
    astronaut = samples.find("person", "astronaut")
    assert samples.by_file("persons", "astronaut.jpg") == astronaut
    assert samples.by_file("garments", "astronaut.jpg") is None
    assert samples.by_file("persons", "astronaut") is None
    assert samples.by_file("persons", "../persons/astronaut.jpg") is None
    assert samples.by_file("..", "PROVENANCE.md") is None


@pytest.mark.parametrize("sample", ALL, ids=_ids)
def test_lookup_finds_a_sample_by_its_url_and_by_its_path(sample: Sample) -> None:
    url = f"http://127.0.0.1:8765/samples/{sample.relative_path}"
    assert samples.lookup(url) == sample
    assert samples.lookup(url, hosts={"127.0.0.1"}) == sample
    assert samples.lookup(str(sample.path)) == sample
    assert samples.lookup(f"/elsewhere/{sample.relative_path}") == sample  # a copied sample


def test_lookup_takes_a_url_only_from_the_samples_route_and_the_hosts_given() -> None:
    astronaut = samples.find("person", "astronaut")
    assert samples.lookup("https://cdn.example.com/samples/persons/astronaut.jpg") == astronaut
    assert samples.lookup("http://127.0.0.1/samples/persons/astronaut%2Ejpg") == astronaut
    on_other_host = "https://cdn.example.com/samples/persons/astronaut.jpg"
    assert samples.lookup(on_other_host, hosts={"127.0.0.1", "localhost"}) is None
    assert samples.lookup("https://cdn.example.com/img/persons/astronaut.jpg") is None
    assert samples.lookup("http://127.0.0.1/samples/persons/nobody.jpg") is None
    assert samples.lookup("/uploads/persons/nobody.jpg") is None
    assert samples.lookup("") is None


@pytest.mark.parametrize("sample", ALL, ids=_ids)
def test_the_sandbox_and_the_review_report_name_the_same_sample(sample: Sample) -> None:
    folder = sample.path.parent.name
    assert sample_path(folder, sample.path.name) == sample.path
    assert sample.path in sample_files(folder)
    assert review.input_label(f"http://127.0.0.1:8765/samples/{sample.relative_path}") == (
        sample.title
    )
    assert review.input_label(str(sample.path)) == sample.title


def test_sample_links_of_this_machine_come_from_loopback_or_the_backend_host() -> None:
    assert samples.local_hosts(None) == {"127.0.0.1", "localhost", "::1"}
    assert samples.local_hosts("https://api.example:8443/v1") == {
        "127.0.0.1",
        "localhost",
        "::1",
        "api.example",
    }
