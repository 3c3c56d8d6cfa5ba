"""The report: PNG plots and a self-contained HTML page from a results directory."""

from __future__ import annotations

import re

import pytest

from dlsched_gym.errors import ConfigError
from dlsched_gym.evaluate import expand_grid, run_grid
from dlsched_gym.report import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_report_files(tmp_path):
    trace = tmp_path / "trace.csv"
    trace.write_text("job_id,submit_time,duration,num_gpus\n"
                     "a,0,1000,2\nb,100,500,4\nc,200,300,1\nd,5000,4000,8\ne,5100,20,1\n")
    cells = expand_grid(["fifo", "fifo-backfill"], [str(trace)], ["2x4"], loads=[1, 2], seeds=[0, 1])
    run_grid(cells, tmp_path / "res", workers=1, progress=False)
    html_path = write_report(tmp_path / "res")
    assert html_path == tmp_path / "res" / "report" / "report.html"
    pngs = sorted(p.name for p in html_path.parent.glob("*.png"))
    kinds = ("jct_cdf", "jct_by_size", "timeline")
    assert pngs == sorted(f"{kind}_{i}.png" for kind in kinds for i in (0, 1))
    for name in pngs:
        data = (html_path.parent / name).read_bytes()
        assert data.startswith(PNG_MAGIC) and len(data) > 5000
    page = html_path.read_text()
    assert len(re.findall(r'<img [^>]*src="data:image/png;base64,', page)) == 6
    assert not re.search(r'src="(?!data:)', page)  # nothing loaded from elsewhere
    assert "fifo-backfill" in page and "avg JCT (s)" in page and "load 2.0" in page


def test_report_of_empty_directory(tmp_path):
    with pytest.raises(ConfigError, match="no results"):
        write_report(tmp_path)
