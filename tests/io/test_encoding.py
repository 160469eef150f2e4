"""Attribute text arrives intact whatever code page the file was written in."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.io.conftest import hydrant_frame, run, write
from twin.geodesy import haversine
from twin.io.encoding import sniff_bytes


def _strip_cpg(shp: Path) -> None:
    shp.with_suffix(".cpg").unlink(missing_ok=True)


def _set_ldid(shp: Path, ldid: int) -> None:
    dbf = shp.with_suffix(".dbf")
    data = bytearray(dbf.read_bytes())
    data[29] = ldid
    dbf.write_bytes(bytes(data))


def test_gbk_shapefile_without_cpg_in_gauss_kruger_keeps_chinese_and_lands_within_a_metre(tmp_path, store):
    truth = hydrant_frame()
    shp = write(truth.to_crs(4528), tmp_path / "上海消火栓.shp", encoding="GBK")
    _strip_cpg(shp)
    assert shp.with_suffix(".dbf").read_bytes()[29] == 0  # no code page in the .dbf either
    report = run(store, shp)
    assert report.encoding == "GB18030" and "detected" in report.encoding_how
    assert report.crs == "EPSG:4528" and report.inserted == len(truth)
    got = store.features("hydrant").sort_values("road").reset_index(drop=True)
    want = truth.sort_values("road").reset_index(drop=True)
    assert got["road"].tolist() == want["road"].tolist()
    dist = [haversine(np.array([g.x]), np.array([g.y]), w.x, w.y)[0]
            for g, w in zip(got.geometry, want.geometry, strict=True)]
    assert max(dist) < 1.0


def test_cpg_file_is_honoured(tmp_path, store):
    shp = write(hydrant_frame(), tmp_path / "h.shp", encoding="GBK")
    assert shp.with_suffix(".cpg").read_text().strip() == "GBK"
    report = run(store, shp)
    assert report.encoding_how.startswith(".cpg") and report.encoding == "GB18030"
    assert set(store.features("hydrant")["road"]) == set(hydrant_frame()["road"])


def test_dbf_code_page_byte_is_honoured(tmp_path, store):
    shp = write(hydrant_frame(), tmp_path / "h.shp", encoding="GBK")
    _strip_cpg(shp)
    _set_ldid(shp, 0x4D)  # ESRI's LDID for code page 936 (GBK)
    report = run(store, shp)
    assert "LDID 0x4D" in report.encoding_how
    assert set(store.features("hydrant")["road"]) == set(hydrant_frame()["road"])


def test_utf8_shapefile_without_cpg_is_detected_as_utf8(tmp_path, store):
    shp = write(hydrant_frame(), tmp_path / "h.shp", encoding="UTF-8")
    _strip_cpg(shp)
    report = run(store, shp)
    assert report.encoding == "UTF-8"
    assert set(store.features("hydrant")["road"]) == set(hydrant_frame()["road"])


def test_encoding_option_overrides_a_wrong_cpg(tmp_path, store):
    shp = write(hydrant_frame(), tmp_path / "h.shp", encoding="GBK")
    shp.with_suffix(".cpg").write_text("UTF-8")  # the .cpg lies
    report = run(store, shp, encoding="GBK")
    assert report.encoding_how == "--encoding"
    assert set(store.features("hydrant")["road"]) == set(hydrant_frame()["road"])


def test_destroyed_text_is_warned_about(tmp_path, store):
    frame = hydrant_frame()
    frame["road"] = ["???" + str(i) for i in range(len(frame))]
    report = run(store, write(frame, tmp_path / "h.geojson"))
    assert any("runs of '?'" in w and "'road'" in w for w in report.warnings)


def test_gbk_csv_is_read(tmp_path, store):
    frame = hydrant_frame()
    csv = tmp_path / "h.csv"
    table = frame.drop(columns="geometry").assign(经度=frame.geometry.x, 纬度=frame.geometry.y)
    table.to_csv(csv, index=False, encoding="gbk")
    report = run(store, csv)
    assert report.encoding == "GB18030" and report.inserted == len(frame)
    assert set(store.features("hydrant")["road"]) == set(frame["road"])


class _GbkName(zipfile.ZipInfo):
    """A zip entry whose name is stored as GBK bytes without the UTF-8 flag, as Chinese Windows tools write."""

    def _encodeFilenameFlags(self):
        return self.filename.encode("gbk"), self.flag_bits


def test_zip_with_gbk_member_names_is_read(tmp_path, store):
    write(hydrant_frame(), tmp_path / "消火栓.shp", encoding="GBK")
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for part in tmp_path.glob("消火栓.*"):
            zf.writestr(_GbkName("资料/" + part.name), part.read_bytes())
    with zipfile.ZipFile(archive) as zf:
        assert not zf.infolist()[0].flag_bits & 0x800
        assert "消火栓" not in zf.namelist()[0]  # zipfile alone gets the name wrong
    report = run(store, archive)
    assert report.source == "data.zip!资料/消火栓.shp"
    assert report.inserted == len(hydrant_frame())


@pytest.mark.parametrize(("data", "expected"), [
    ("人民广场".encode(), "UTF-8"), ("人民广场".encode("gbk"), "GB18030"), (b"plain ascii", "UTF-8"),
])
def test_sniff_bytes(data, expected):
    assert sniff_bytes(data * 50) == expected
