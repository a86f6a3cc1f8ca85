"""Real stages: generate through embed,retrieve,denoise and edit through edit, on the emoji database at 32², with the
images checked as PNG files another reader opens (Debian's python3 with PIL) and by their own bytes."""

from __future__ import annotations

import json
import os
import subprocess
from typing import Any, Iterator, Tuple

import pytest

from hume_client import BadInput, Client, Job, JobFailed, StageImage
from hume_client.fleet import LocalFleet

from conftest import hume_bin
from pngcheck import png_structure

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, with python3-pil from Ops/setup.sh
# A 24x16 JPEG made for the tests, stored sideways with an EXIF orientation (Tests/Fixtures/jpeg).
SIDEWAYS_JPEG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "Tests", "Fixtures", "jpeg",
                             "orientation6.jpg")


@pytest.fixture(scope="module")
def stages(tmp_path_factory: Any) -> Iterator[LocalFleet]:
    f = LocalFleet(str(tmp_path_factory.mktemp("stages")), stages="embed,retrieve,denoise,edit", hume=hume_bin())
    try:
        for s in ("embed", "retrieve", "denoise", "edit"):
            f.start_worker(s)
        f.wait_for_workers(4, timeout=60)
        yield f
    finally:
        f.stop()


def read_with_pil(png: bytes, tmp_path: Any, name: str) -> Tuple[list, str, bytes, dict]:
    """Size, mode, pixel bytes and text chunks as PIL (another PNG reader) sees them."""
    path = str(tmp_path / name)
    with open(path, "wb") as fh:
        fh.write(png)
    code = ("import json, sys; from PIL import Image; im = Image.open(sys.argv[1]); im.load(); "
            "print(json.dumps([im.size, im.mode, im.tobytes().hex(), dict(im.text)]))")
    assert os.access(SYSTEM_PYTHON, os.X_OK), "Debian's python3 is needed to check PNGs (Ops/setup.sh)"
    p = subprocess.run([SYSTEM_PYTHON, "-c", code, path], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, "PIL cannot read the PNG: %s" % p.stderr
    size, mode, hexpix, text = json.loads(p.stdout)
    return size, mode, bytes.fromhex(hexpix), text


@pytest.mark.limit(240)
def test_generate_and_edit_with_real_stages(stages: LocalFleet, tmp_path: Any) -> None:
    with Client(stages.clients, timeout=120) as c:
        r = c.generate("grinning face", database="emoji", size=32, steps=4, k=4, seed=1)
        img = r.image()
        assert (img.width, img.height) == (32, 32) and img.mask is None
        assert img.metadata["prompt"] == "grinning face" and img.metadata["database"] == "emoji"
        assert img.metadata["size"] == 32 and img.metadata["steps"] == 4 and img.metadata["seed"] == 1
        png = img.png()
        assert png_structure(png) == (32, 32, 3, img.rgb)
        size, mode, pixels, text = read_with_pil(png, tmp_path, "face.png")
        assert (size, mode, pixels) == ([32, 32], "RGB", img.rgb)
        assert json.loads(text["hume"]) == img.metadata
        # The same request again is the same job (derived key): answered from the journal with the same bytes.
        again = c.generate("grinning face", database="emoji", size=32, steps=4, k=4, seed=1)
        assert again.duplicate and again.job_id == r.job_id and again.body == r.body

        # Edit the generated face: the result is the source outside the mask, to the byte.
        e = c.edit(png, "wearing sunglasses", caption="grinning face", database="emoji", size=32, seed=1)
        out = e.image()
        assert (out.width, out.height) == (32, 32)
        mask = out.mask
        assert mask is not None and len(mask) == 32 * 32 and set(mask) <= {0, 255}
        section = out.section("MASK")
        assert section is not None and (section.width, section.height, section.channels) == (32, 32, 1)
        kept = [i for i in range(32 * 32) if mask[i] == 0]
        assert 0 < len(kept) < 32 * 32, "the mask should edit part of the picture"
        for i in kept:
            assert out.rgb[3 * i:3 * i + 3] == img.rgb[3 * i:3 * i + 3], "pixel %d outside the mask changed" % i
        assert out.metadata["edit"] == "wearing sunglasses" and out.metadata["caption"] == "grinning face"
        assert abs(out.metadata["mask_fraction"] - (1024 - len(kept)) / 1024) < 0.01
        mask_png = out.mask_png()
        assert mask_png is not None and png_structure(mask_png) == (32, 32, 1, mask)
        size, mode, pixels, _ = read_with_pil(mask_png, tmp_path, "mask.png")
        assert (size, mode, pixels) == ([32, 32], "L", mask)
        size, mode, pixels, _ = read_with_pil(out.png(), tmp_path, "edited.png")
        assert (size, mode, pixels) == ([32, 32], "RGB", out.rgb)

        # A JPEG source is edited as a PNG is; bytes that are neither are refused before anything is sent.
        with open(SIDEWAYS_JPEG, "rb") as f:
            photo = c.edit(f.read(), "wearing sunglasses", database="emoji", size=32, seed=1).image()
        assert (photo.width, photo.height) == (32, 32) and photo.mask is not None
        with pytest.raises(BadInput) as refused:
            c.edit(b"GIF89a and so on", "wearing sunglasses")
        assert "must be a PNG or JPEG file" in str(refused.value)

        # Several prompts: a run, results as they finish.
        many = list(c.generate(["a red apple", "a cat"], database="emoji", size=32, steps=2, k=4))
        assert sorted(r.index for r in many) == [0, 1]
        assert all(StageImage.parse(r.body).width == 32 for r in many)

        # Bare data with no params takes every stage's defaults; a stage's refusal is a failed job with its sentence.
        plain = c.submit(b"a red apple", "embed,retrieve,denoise", batch="generate-plain").result()
        assert plain.image().width == 128
        with pytest.raises(JobFailed) as err:
            c.submit(Job(data="a red apple", params={"database": "emoji", "k": 0}), "embed,retrieve,denoise",
                     batch="generate-plain").result()
        assert err.value.status == "failed"
        assert err.value.message.startswith("Stage retrieve refused the job: ")
        assert 'The "k" parameter is 0' in err.value.message
