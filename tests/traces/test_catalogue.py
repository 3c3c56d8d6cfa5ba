"""The catalogue: every bundled trace loads, validates and matches its manifest entry."""

from __future__ import annotations

import hashlib
import json
from importlib import resources

import numpy as np
import pytest

from dlsched_gym import traces
from dlsched_gym.cluster import philly_vc_nodes
from dlsched_gym.errors import ConfigError
from dlsched_gym.workload import SCHEMA, normalize

DATA = resources.files("dlsched_gym.traces").joinpath("data")
NAMES = [info.name for info in traces.catalogue()]


@pytest.mark.parametrize("name", NAMES)
def test_every_catalogue_trace_loads_validates_and_matches_its_entry(name):
    info = traces.info(name)
    wl = traces.load(name)
    assert list(wl.table.columns) == list(SCHEMA)
    again = normalize(wl.table, name=name)  # a valid workload re-normalizes to the same table
    assert again.table.equals(wl.table)
    assert len(wl) == info.jobs > 0
    assert wl.span_seconds == pytest.approx(info.span_seconds)
    assert wl.table["submit_time"].iloc[0] == 0.0
    assert info.source and info.license and info.citation and info.description
    assert info.generated == name.endswith("-synth")
    if info.file:
        assert hashlib.sha256(DATA.joinpath(info.file).read_bytes()).hexdigest() == info.sha256


def test_expected_names_and_sizes():
    expected = {
        "philly": 82247,
        "gavel-philly": 2000,
        "elasticflow-philly-103959": 876,
        "elasticflow-pollux-195": 195,
        "pollux": 160,
        "synergy": 100,
    }  # SOURCES.md row counts
    for name, jobs in expected.items():
        assert traces.info(name).jobs == jobs
    assert {f"philly-vc/{vc}" for vc in philly_vc_nodes()} <= set(NAMES)
    assert len([n for n in NAMES if n.startswith("philly-vc/")]) == 11
    assert {f"helios-{c}-synth" for c in ("venus", "earth", "saturn", "uranus")} <= set(NAMES)


def test_philly_matches_sources_md():
    wl = traces.load("philly")
    t = wl.table
    assert t["job_id"].is_unique
    assert t["vc"].value_counts()["6214e9"] == 41226 and t["vc"].nunique() == 15
    assert (t["num_gpus"] == 1).sum() == 76627 and t["num_gpus"].max() == 128
    assert t["duration"].median() == 1144.0 and t["duration"].max() == 4628226.0
    # 2017-09-04 10:30:41 to 2017-12-22 08:02:11
    assert wl.span_seconds == (
        np.datetime64("2017-12-22T08:02:11") - np.datetime64("2017-09-04T10:30:41")
    ).astype(int)


def test_philly_vc_option_and_vc_names():
    vc = traces.load("philly", vc="11cb48")
    named = traces.load("philly-vc/11cb48")
    assert len(vc) == len(named) == 16091
    assert vc.table["submit_time"].iloc[0] == 0.0 and set(vc.table["vc"]) == {"11cb48"}
    assert vc.table.equals(named.table)


def test_elasticflow_variants_and_clusters():
    raw = traces.load("elasticflow", cluster=2, variant="raw")
    aug = traces.load("elasticflow", cluster=2, variant="augmented")
    assert len(raw) == len(aug) == 5778  # SOURCES.md: cluster02 5,778 jobs
    assert raw.table["duration"].equals(aug.table["duration"])
    assert (raw.table["model"] == "").all() and raw.table["deadline"].isna().all()
    assert set(aug.table["batch_size"]) <= {32, 64, 128, 256} and aug.table["deadline"].notna().all()
    assert sum(len(traces.load("elasticflow", cluster=k)) for k in range(1, 11)) == 69351


def test_gavel_seeds_share_arrivals():
    a, b = traces.load("gavel-philly", seed=0, vc="0e4a51"), traces.load("gavel-philly", seed=3, vc="0e4a51")
    assert len(a) == len(b) == 1181  # SOURCES.md: seed 0, 0e4a51: 1,181 jobs
    assert a.table["submit_time"].equals(b.table["submit_time"])
    assert a.table["num_gpus"].equals(b.table["num_gpus"])


def test_pcs_pollux_synergy_options():
    assert len(traces.load("pcs-philly", vc="ee9e8c")) == 5452
    assert len(traces.load("pollux", workload=8, scale=2)) == 320
    assert len(traces.load("pollux", workload="8", scale=2.0)) == 320
    assert len(traces.load("pollux", workload=8, scale="realistic")) == 160
    assert len(traces.load("pollux", workload=1, scale=0.5)) == 80
    assert len(traces.load("synergy", trace="test")) == 8


def test_bad_options_name_the_valid_ones():
    with pytest.raises(
        ConfigError, match=r"unknown option\(s\) \['vcc'\]; valid options: \['drop_invalid', 'vc'\]"
    ):
        traces.load("philly", vcc="x")
    with pytest.raises(ConfigError, match=r"option cluster=11; expected one of \[1, 2"):
        traces.load("elasticflow", cluster=11)
    with pytest.raises(ConfigError, match="format= applies to file paths only"):
        traces.load("philly", format="helios")
    with pytest.raises(ConfigError, match="unknown trace 'nope'"):
        traces.info("nope")


def test_manifest_lists_every_bundled_file_and_size_budget():
    manifest = json.loads(DATA.joinpath("manifest.json").read_text())
    files = {i.file for i in traces.catalogue() if i.file}
    assert files <= set(manifest["files"])
    total = sum(DATA.joinpath(f).stat().st_size for f in manifest["files"])
    assert total < 15e6
