"""The quality checks on real sandbox renders: each defect kind gets its own flag, a good render
none; a result that cannot be checked says why; the chips and the score."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from mirrago.samples import garments, persons
from mirrago.triage import CHECKS, FLAG_CODES, check_result, chip, suspect_score
from mirrago.triage.testset import DEFECT_FLAGS


def checked(cases: list, kind: str) -> list:
    chosen = [case for case in cases if case.kind == kind]
    assert chosen, f"no {kind} case in the test set"
    return [(case, check_result(case.person, case.garment, case.result)) for case in chosen]


@pytest.mark.slow
def test_good_renders_get_no_flag(triage_cases: list) -> None:
    for case, found in checked(triage_cases, "good"):
        assert found.checked and found.flags == (), (case.pair, found.values)
        assert found.score is not None and found.score < 0.5


@pytest.mark.slow
@pytest.mark.parametrize("kind", list(DEFECT_FLAGS))
def test_each_defect_kind_gets_its_own_flag(triage_cases: list, kind: str) -> None:
    for case, found in checked(triage_cases, kind):
        assert DEFECT_FLAGS[kind] in found.flags, (case.pair, found.values)
        assert found.score is not None and found.score > 0.5


@pytest.mark.slow
def test_a_background_the_job_asked_for_is_no_defect(triage_cases: list) -> None:
    for case in [c for c in triage_cases if c.kind == "background_replaced"]:
        found = check_result(case.person, case.garment, case.result, background="white")
        assert "background_changed" not in found.flags
        assert found.values["background_changed"] is None


def test_a_missing_input_file_is_not_checked_and_says_which(tmp_path: Path) -> None:
    person, garment = persons()[0].path, garments()[0].path
    found = check_result(tmp_path / "gone.jpg", garment, person)
    assert not found.checked and found.score is None and found.flags == ()
    assert found.reason == "the person photo file is missing"
    assert check_result(person, tmp_path / "gone.png", person).reason == (
        "the garment photo file is missing"
    )


def test_an_image_that_does_not_decode_is_not_checked(tmp_path: Path) -> None:
    broken = tmp_path / "result.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really" * 20)
    found = check_result(persons()[0].path, garments()[0].path, broken)
    assert not found.checked and found.score is None
    assert found.reason is not None and found.reason.startswith("the result does not decode")


def test_a_result_over_the_pixel_limit_is_not_checked_and_never_decoded(tmp_path: Path) -> None:
    huge = tmp_path / "result.png"
    Image.new("1", (8000, 8000)).save(huge)  # 64 megapixels, a few kB on disk
    found = check_result(persons()[0].path, garments()[0].path, huge)
    assert not found.checked and found.score is None
    assert found.reason == "the result is over 60 megapixels: too large to check"


def test_each_flag_has_a_label_and_a_chip_that_says_why() -> None:
    assert FLAG_CODES == (
        "unchanged",
        "face_changed",
        "background_changed",
        "colour_off",
        "pattern_lost",
        "low_quality",
        "framing_changed",
    )
    assert chip("colour_off", 23.4) == "Colour off: ΔE 23"
    for code, check in CHECKS.items():
        assert check.label and check.means
        assert chip(code, check.limit).startswith(check.label + ": ")
        assert chip(code, None) == check.label


def test_the_score_passes_one_half_exactly_when_a_flag_is_raised() -> None:
    quiet = {code: None for code in CHECKS} | {"colour_off": 10.9, "face_changed": 0.24}
    assert suspect_score(quiet) < 0.5
    loud = quiet | {"colour_off": 11.1}
    assert suspect_score(loud) > 0.5
    worse = loud | {"colour_off": 30.0, "low_quality": 0.9}
    assert 0.5 < suspect_score(loud) < suspect_score(worse) <= 1.0
    assert suspect_score(dict.fromkeys(CHECKS)) == 0.0
