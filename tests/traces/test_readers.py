"""Readers, tested on hand-written fixtures in each public format.

Every expected value below was worked out by hand from the fixture files in ``fixtures/``.
"""

from __future__ import annotations

import gzip
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from dlsched_gym import traces
from dlsched_gym.errors import ConfigError, TraceFormatError, WorkloadError

FIX = Path(__file__).parent / "fixtures"


def col(wl, name):
    return wl.table[name].tolist()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def edit(tmp_path: Path, fixture: str, old: str, new: str, name: str | None = None) -> Path:
    text = (FIX / fixture).read_text()
    assert old in text
    return write(tmp_path, name or Path(fixture).name, text.replace(old, new))


# --- Philly cluster_job_log -------------------------------------------------------------------


def test_philly_log_durations_from_attempts_and_gpus_from_detail():
    wl = traces.load(FIX / "cluster_job_log", format="philly-job-log")
    assert col(wl, "job_id") == ["application_1_0001", "application_1_0002"]
    assert col(wl, "submit_time") == [0.0, 300.0]  # 10:00:00 and 10:05:00
    assert col(wl, "duration") == [600.0, 160.0]  # 10 min; 60 s + 100 s over two attempts
    assert col(wl, "num_gpus") == [2, 4]  # 2 on m1; 2 + 2 on m2, m3 (and 4 on m4)
    assert col(wl, "status") == ["Pass", "Killed"]
    assert col(wl, "vc") == ["vcA", "vcB"]
    assert col(wl, "user") == ["u1", "u2"]
    assert wl.attrs["excluded"] == {
        "never started (no attempts)": 1,
        "still running at the end of the log (last attempt has no end_time)": 1,
    }


def test_philly_log_inferred_from_file_name():
    assert len(traces.load(FIX / "cluster_job_log")) == 2


def test_philly_log_bad_timestamp_names_job_and_field(tmp_path):
    path = edit(
        tmp_path, "cluster_job_log", '"end_time": "2017-10-03 10:07:00"', '"end_time": "2017-10-03 10:67:00"'
    )
    with pytest.raises(TraceFormatError, match=r"row 1, field 'attempts\[0\].end_time'.*10:67:00"):
        traces.load(path, format="philly-job-log")
    wl = traces.load(path, format="philly-job-log", lenient=True)
    assert col(wl, "job_id") == ["application_1_0001"]
    assert sum(wl.attrs["skipped"].values()) == 1


def test_philly_log_missing_field(tmp_path):
    path = edit(tmp_path, "cluster_job_log", '"submitted_time": "2017-10-03 10:00:00",', "")
    with pytest.raises(TraceFormatError, match=r"row 0, field 'submitted_time'.*missing field"):
        traces.load(path, format="philly-job-log")


def test_philly_log_truncated_and_wrong_format(tmp_path):
    text = (FIX / "cluster_job_log").read_text()
    path = write(tmp_path, "cluster_job_log", text[: len(text) // 2])
    with pytest.raises(TraceFormatError, match="invalid or truncated JSON"):
        traces.load(path, format="philly-job-log")
    with pytest.raises(TraceFormatError, match="philly-job-log"):
        traces.load(FIX / "helios_cluster_log.csv", format="philly-job-log")


# --- Pollux-processed Philly table -------------------------------------------------------------


def test_philly_pollux_table(tmp_path):
    gz = tmp_path / "philly.csv.gz"
    gz.write_bytes(gzip.compress((FIX / "pollux_philly.csv").read_bytes()))
    for path in (FIX / "pollux_philly.csv", gz):
        wl = traces.load(path, format="philly-pollux")
        assert col(wl, "job_id") == ["1", "2", "0"]  # source rows, sorted by time
        assert col(wl, "submit_time") == [0.0, 60.0, 2932.0]  # 06:13:03, 06:14:03, 07:01:55
        assert col(wl, "duration") == [2951.0, 10.0, 66.0]
        assert col(wl, "num_gpus") == [2, 8, 1]
        assert col(wl, "vc") == ["6214e9", "6214e9", "11cb48"]


def test_philly_pollux_inconsistent_gpu_time(tmp_path):
    path = edit(tmp_path, "pollux_philly.csv", "2951.0,2,5902.0", "2951.0,2,5900.0")
    with pytest.raises(
        TraceFormatError, match=r"row 1 \(line 3\), field 'gpu_time': expected duration x num_gpus"
    ):
        traces.load(path, format="philly-pollux")


# --- Helios -----------------------------------------------------------------------------------


def test_helios_gpu_jobs():
    wl = traces.load(FIX / "helios_cluster_log.csv")  # inferred from the header
    assert col(wl, "job_id") == ["j1", "j5", "j4"]
    assert col(wl, "submit_time") == [0.0, 30.0, 110.0]
    assert col(wl, "duration") == [3600.0, 60.0, 100.0]
    assert col(wl, "num_gpus") == [8, 2, 16]
    assert col(wl, "status") == ["COMPLETED", "TIMEOUT", "FAILED"]
    assert col(wl, "vc") == ["vcX", "vcX", "vcY"]
    assert wl.attrs["excluded"] == {"CPU-only job (gpu_num 0)": 1, "zero duration": 1}
    assert wl.attrs["time_offset_s"] == pd.Timestamp("2020-04-01 00:00:10").timestamp()


def test_helios_bad_timestamp_and_lenient(tmp_path):
    path = edit(
        tmp_path, "helios_cluster_log.csv", "FAILED,2020-04-01 00:02:00", "FAILED,2020-04-31 00:02:00"
    )
    with pytest.raises(TraceFormatError, match=r"row 3 \(line 5\), field 'submit_time'.*2020-04-31"):
        traces.load(path, format="helios")
    wl = traces.load(path, format="helios", lenient=True)
    assert col(wl, "job_id") == ["j1", "j5"]
    assert list(wl.attrs["skipped"].values()) == [1]
    assert "submit_time" in next(iter(wl.attrs["skipped"]))


def test_helios_truncated_row(tmp_path):
    text = (FIX / "helios_cluster_log.csv").read_text()
    path = write(tmp_path, "cluster_log.csv", text + "j6,uA,vcX,4")
    with pytest.raises(TraceFormatError, match=r"row 5 \(line 7\), field 'submit_time'.*missing field"):
        traces.load(path, format="helios")


def test_helios_reader_rejects_other_format():
    with pytest.raises(TraceFormatError, match=r"not a helios file: missing column"):
        traces.load(FIX / "elasticflow_raw.csv", format="helios")


# --- Alibaba PAI 2020 --------------------------------------------------------------------------


def test_pai_join_of_job_and_task_tables():
    for path in (FIX / "pai", FIX / "pai" / "pai_job_table.csv"):
        wl = traces.load(path, format="alibaba-pai-2020") if path.is_file() else traces.load(path)
        assert col(wl, "job_id") == ["j1", "j2"]
        assert col(wl, "submit_time") == [0.0, 60.0]  # 100, 160
        assert col(wl, "duration") == [305.0, 100.0]  # 410 - 105; 270 - 170
        assert col(wl, "num_gpus") == [3, 1]  # 2 x 100% + 1 x 100%; ceil(50%)
        assert col(wl, "gpu_type") == ["V100", "T4"]
        assert col(wl, "user") == ["u1", "u2"]
        assert wl.attrs["fractional_gpu_jobs"] == 1
        assert wl.attrs["excluded"] == {
            "no rows in pai_task_table": 1,
            "CPU-only job (no plan_gpu)": 1,
            "unfinished task (no end_time)": 1,
        }


def test_pai_bad_task_row(tmp_path):
    shutil.copy(FIX / "pai" / "pai_job_table.csv", tmp_path)
    edit(
        tmp_path,
        "pai/pai_task_table.csv",
        "j2,tensorflow,1,Terminated,170,270",
        "j2,tensorflow,x,Terminated,170,270",
    )
    with pytest.raises(TraceFormatError, match=r"pai_task_table.csv: row 2 \(line 3\), field 'inst_num'"):
        traces.load(tmp_path, format="alibaba-pai-2020")


def test_pai_wrong_field_count():
    with pytest.raises(TraceFormatError, match="line 1 has 12 fields.*6 per line"):
        traces.load(
            FIX / "helios_cluster_log.csv",
            format="alibaba-pai-2020",
            task_table=FIX / "pai" / "pai_task_table.csv",
        )


# --- Acme ---------------------------------------------------------------------------------------


def test_acme_time_zones_and_gpu_jobs():
    wl = traces.load(FIX / "trace_seren.csv")
    assert col(wl, "job_id") == ["s1", "s3"]
    assert col(wl, "submit_time") == [0.0, 3620.0]  # 00:00:00 UTC and 01:00:20 UTC
    assert col(wl, "duration") == [3600.0, 120.0]
    assert col(wl, "num_gpus") == [8, 1]
    assert col(wl, "status") == ["COMPLETED", "FAILED"]
    assert wl.attrs["job_types"] == {"Pretrain": 1, "Evaluation": 1}
    assert wl.attrs["excluded"] == {"CPU-only job (gpu_num 0)": 1}


def test_acme_bad_number(tmp_path):
    path = edit(tmp_path, "trace_seren.csv", ",120,0,120", ",two,0,120")
    with pytest.raises(TraceFormatError, match=r"row 2 \(line 4\), field 'duration': expected a number"):
        traces.load(path, format="acme")


# --- ElasticFlow --------------------------------------------------------------------------------


def test_elasticflow_raw_layout():
    wl = traces.load(FIX / "elasticflow_raw.csv")
    assert col(wl, "job_id") == ["a", "c", "b"]
    assert col(wl, "submit_time") == [0.0, 101.0, 501.0]
    assert col(wl, "duration") == [2429.0, 600.0, 1532.0]
    assert col(wl, "num_gpus") == [64, 8, 1]
    assert wl.attrs["time_offset_s"] == 1999.0


def test_elasticflow_artifact_layout():
    wl = traces.load(FIX / "elasticflow_artifact.csv", format="elasticflow")
    assert col(wl, "model") == ["vgg16", "vgg16"]
    assert col(wl, "iterations") == [1282877.0, 26446831.0]
    assert col(wl, "deadline") == [771220.0, 2065619.0]
    assert col(wl, "batch_size") == [256, 64]
    assert col(wl, "duration") == [976570.0, 1792395.0]
    assert wl.attrs["unused_columns"] == ["real_iteration", "real_duration"]


def test_elasticflow_unknown_column(tmp_path):
    path = edit(tmp_path, "elasticflow_raw.csv", "num_gpu\n", "num_gpu,colour\n")
    with pytest.raises(TraceFormatError, match=r"unexpected column\(s\) \['colour'\]"):
        traces.load(path, format="elasticflow")


# --- Pollux -------------------------------------------------------------------------------------


def test_pollux_with_given_durations():
    wl = traces.load(
        FIX / "pollux_workload.csv", durations={"cifar10": 100.0, "deepspeech2": 200.0, "ncf": 30.0}
    )
    assert col(wl, "job_id") == ["cifar10-0", "deepspeech2-1", "ncf-2"]
    assert col(wl, "submit_time") == [0.0, 3.0, 28.0]
    assert col(wl, "duration") == [100.0, 200.0, 30.0]
    assert col(wl, "num_gpus") == [6, 6, 1]
    assert col(wl, "batch_size") == [2048, 320, 32768]
    assert col(wl, "model") == ["cifar10", "deepspeech2", "ncf"]
    assert wl.attrs["augmented"]["duration"]["rule"] == "caller-supplied seconds per application"


def test_pollux_default_durations_are_application_medians_of_elasticflow_pollux():
    ref = traces.load("elasticflow-pollux-195").table
    wl = traces.load(FIX / "pollux_workload.csv", format="pollux")
    for model, duration in zip(col(wl, "model"), col(wl, "duration"), strict=True):
        assert duration == ref.loc[ref["model"] == model, "duration"].median()
    assert "median" in wl.attrs["augmented"]["duration"]["rule"]


def test_pollux_unknown_application(tmp_path):
    with pytest.raises(TraceFormatError, match=r"row 2 \(line 4\), field 'application'"):
        traces.load(FIX / "pollux_workload.csv", durations={"cifar10": 1.0, "deepspeech2": 1.0})


# --- Synergy ------------------------------------------------------------------------------------


def test_synergy_units():
    wl = traces.load(FIX / "synergy_trace.csv", format="synergy")
    assert col(wl, "submit_time") == pytest.approx([0.0, 0.163, 0.194])
    assert col(wl, "duration") == [3349.0, 26435.0, 13451.0]  # 1 s per iteration
    assert col(wl, "num_gpus") == [4, 1, 2]
    assert col(wl, "iterations") == [3349.0, 26435.0, 13451.0]
    wl = traces.load(
        FIX / "synergy_trace.csv",
        format="synergy",
        time_unit=3600,
        seconds_per_iteration={"alexnet": 0.1, "gnmt": 0.2, "transformer": 0.5},
    )
    assert col(wl, "submit_time") == pytest.approx([0.0, 586.8, 698.4])
    assert col(wl, "duration") == pytest.approx([334.9, 5287.0, 6725.5])


def test_synergy_rejects_csv_with_header():
    with pytest.raises(TraceFormatError, match="line 1 has 6 fields"):
        traces.load(FIX / "pcs_trace.csv", format="synergy")


# --- Gavel --------------------------------------------------------------------------------------


def test_gavel_duration_from_throughputs():
    wl = traces.load(FIX / "gavel_msr.trace", throughputs=FIX / "gavel_throughputs.json")
    assert col(wl, "submit_time") == [0.0, 30.0, 60.0, 90.0]
    # 400 / 4.0; 700 / 7.0; 1400 / (7.0 * 4 / 2) extrapolated; 50 / 2.5
    assert col(wl, "duration") == [100.0, 100.0, 100.0, 20.0]
    assert col(wl, "num_gpus") == [1, 2, 4, 1]
    assert col(wl, "model") == ["ResNet-50", "ResNet-50", "ResNet-50", "A3C"]
    assert col(wl, "batch_size") == [64, 64, 64, 0]
    assert col(wl, "iterations") == [400.0, 700.0, 1400.0, 50.0]
    assert wl.attrs["augmented"]["duration"]["extrapolated_jobs"] == 1
    k80 = traces.load(FIX / "gavel_msr.trace", throughputs=FIX / "gavel_throughputs.json", worker_type="k80")
    assert col(k80, "duration") == [400.0, 350.0, 350.0, 100.0]  # 1.0 x sf extrapolated; 50 / 0.5


def test_gavel_physical_layout_and_bundled_throughputs():
    wl = traces.load(FIX / "gavel_physical.trace", throughputs=FIX / "gavel_throughputs.json")
    assert col(wl, "duration") == [20.0]
    bundled = traces.load(FIX / "gavel_msr.trace")  # Gavel's simulation_throughputs.json, v100
    assert col(bundled, "duration")[0] == pytest.approx(400 / 4.39, rel=0.01)  # ResNet-50 bs 64: 4.39 steps/s


def test_gavel_bad_input(tmp_path):
    with pytest.raises(TraceFormatError, match="line 1 has 1 tab-separated fields"):
        traces.load(FIX / "pcs_trace.csv", format="gavel")
    path = edit(tmp_path, "gavel_msr.trace", "\t700\t", "\tseven\t")
    with pytest.raises(TraceFormatError, match=r"row 1 \(line 2\), field 'total_steps'"):
        traces.load(path, throughputs=FIX / "gavel_throughputs.json")
    path = edit(tmp_path, "gavel_msr.trace", "A3C\t", "Unknown\t")
    with pytest.raises(TraceFormatError, match=r"row 3 \(line 4\), field 'job_type'"):
        traces.load(path, throughputs=FIX / "gavel_throughputs.json")
    with pytest.raises(ConfigError, match="worker_type 'h100'"):
        traces.load(FIX / "gavel_msr.trace", worker_type="h100")


# --- PCS ----------------------------------------------------------------------------------------


def test_pcs_columns():
    wl = traces.load(FIX / "pcs_trace.csv", vc="6214e9")
    assert col(wl, "job_id") == ["6214e9-0", "6214e9-1", "6214e9-2"]
    # service is the 1-GPU service time: run time on num_jobs GPUs = service / num_jobs
    assert col(wl, "duration") == pytest.approx([3613015.0, 3879832.0 / 2, 3877586.0 / 8])
    assert col(wl, "num_gpus") == [1, 2, 8]
    assert col(wl, "model") == ["TransformerModel256", "VggnetModel256", "Resnet50Model128"]
    assert col(wl, "vc") == ["6214e9"] * 3


def test_pcs_missing_field(tmp_path):
    path = edit(
        tmp_path,
        "pcs_trace.csv",
        "2,266566.0,3877586.0,8,2.0,Resnet50Model128",
        "2,266566.0,,8,2.0,Resnet50Model128",
    )
    with pytest.raises(TraceFormatError, match=r"row 2 \(line 4\), field 'service'.*missing field"):
        traces.load(path, format="pcs")
    wl = traces.load(path, format="pcs", lenient=True)
    assert len(wl) == 2 and wl.attrs["skipped"] == {"service: expected a number >= 0": 1}


# --- normalized CSV / parquet -----------------------------------------------------------------


def test_normalized_csv_and_parquet(tmp_path):
    wl = traces.load(FIX / "normalized.csv", format="normalized")
    assert col(wl, "job_id") == ["y", "x"]
    assert col(wl, "duration") == [50.0, 100.0]
    assert col(wl, "model") == ["", "resnet"]
    assert math.isnan(col(wl, "deadline")[0]) and col(wl, "deadline")[1] == 500.0
    path = tmp_path / "w.parquet"
    pd.DataFrame(
        {"job_id": ["p", "q"], "submit_time": [5.0, 1.0], "duration": [3.0, 4.0], "num_gpus": [1, 4]}
    ).to_parquet(path)
    wl = traces.load(path)
    assert col(wl, "job_id") == ["q", "p"] and col(wl, "max_gpus") == [4, 1]


def test_normalized_bad_rows(tmp_path):
    path = write(tmp_path, "bad.csv", "job_id,submit_time,duration,num_gpus\na,0,10,1\nb,5,-3,1\n")
    with pytest.raises(WorkloadError, match=r"row 1 \(job_id 'b'\), column 'duration'"):
        traces.load(path, format="normalized")
    wl = traces.load(path, format="normalized", lenient=True)
    assert col(wl, "job_id") == ["a"] and sum(wl.attrs["dropped"].values()) == 1
    with pytest.raises(WorkloadError, match="column 'num_gpus': required column missing"):
        traces.load(
            write(tmp_path, "missing.csv", "job_id,submit_time,duration\na,0,1\n"), format="normalized"
        )
    with pytest.raises(WorkloadError, match="column 'vc_name': unknown column"):
        traces.load(
            write(tmp_path, "x.csv", "job_id,submit_time,duration,num_gpus,vc_name\na,0,1,1,v\n"),
            format="normalized",
        )


# --- dispatch -----------------------------------------------------------------------------------


def test_unknown_format_option_and_ambiguous_file(tmp_path):
    with pytest.raises(ConfigError, match="unknown trace format 'nope'"):
        traces.load(FIX / "pcs_trace.csv", format="nope")
    with pytest.raises(ConfigError, match=r"unknown option\(s\) \['colour'\].*'lenient'"):
        traces.load(FIX / "pcs_trace.csv", colour=1)
    with pytest.raises(ConfigError, match="pass format="):
        traces.load(FIX / "synergy_trace.csv")
    with pytest.raises(ConfigError, match="neither a catalogue trace"):
        traces.load(tmp_path / "nothing.csv")


def test_every_reader_is_registered_and_documented():
    assert set(traces.READERS) == {
        "philly-job-log",
        "philly-pollux",
        "helios",
        "alibaba-pai-2020",
        "acme",
        "elasticflow",
        "pollux",
        "synergy",
        "gavel",
        "pcs",
        "normalized",
    }
    for reader in traces.READERS.values():
        assert reader.description and reader.read.__doc__
    assert np.all([r.name == k for k, r in traces.READERS.items()])


# --- every reader: a file of another format, and a truncated file --------------------------------

WRONG_FILE = {
    "philly-job-log": "helios_cluster_log.csv",
    "philly-pollux": "pcs_trace.csv",
    "helios": "elasticflow_raw.csv",
    "alibaba-pai-2020": "helios_cluster_log.csv",
    "acme": "helios_cluster_log.csv",
    "elasticflow": "pcs_trace.csv",
    "pollux": "pcs_trace.csv",
    "synergy": "pcs_trace.csv",
    "gavel": "pcs_trace.csv",
    "pcs": "pollux_workload.csv",
    "normalized": "helios_cluster_log.csv",
}
FIXTURE = {
    "philly-pollux": "pollux_philly.csv",
    "helios": "helios_cluster_log.csv",
    "alibaba-pai-2020": "pai/pai_job_table.csv",
    "acme": "trace_seren.csv",
    "elasticflow": "elasticflow_raw.csv",
    "pollux": "pollux_workload.csv",
    "synergy": "synergy_trace.csv",
    "gavel": "gavel_msr.trace",
    "pcs": "pcs_trace.csv",
    "normalized": "normalized.csv",
}


@pytest.mark.parametrize("fmt", sorted(WRONG_FILE))
def test_reader_given_another_format_fails_naming_the_file(fmt):
    options = {"task_table": FIX / "pai" / "pai_task_table.csv"} if fmt == "alibaba-pai-2020" else {}
    other = FIX / WRONG_FILE[fmt]
    with pytest.raises((TraceFormatError, WorkloadError), match=str(other.name)):
        traces.load(other, format=fmt, **options)


@pytest.mark.parametrize("fmt", sorted(FIXTURE))
def test_truncated_last_line_fails_naming_the_row(tmp_path, fmt):
    text = (FIX / FIXTURE[fmt]).read_text().rstrip("\n")
    start = text.rfind("\n") + 1
    last_row = text.count("\n") - (0 if fmt in ("synergy", "gavel", "alibaba-pai-2020") else 1)
    path = write(tmp_path, Path(FIXTURE[fmt]).name, text[: start + (len(text) - start) // 3])
    if fmt == "alibaba-pai-2020":
        shutil.copy(FIX / "pai" / "pai_task_table.csv", tmp_path)
    with pytest.raises((TraceFormatError, WorkloadError), match=rf"row {last_row}\b"):
        traces.load(path, format=fmt)
