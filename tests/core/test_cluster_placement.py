"""Cluster presets and specs, and the placement strategies."""

from __future__ import annotations

import numpy as np
import pytest

from dlsched_gym.cluster import ClusterSpec, Node, from_toml, make_cluster
from dlsched_gym.errors import ClusterSpecError, ConfigError
from dlsched_gym.placement import make_placement


def test_philly_preset_matches_machine_list():
    # Philly cluster_machine_list: 321 machines x 2 GPUs (12 GB) + 231 x 8 GPUs (24 GB) = 2,490 GPUs
    spec = make_cluster("philly")
    assert spec.num_nodes == 552 and spec.num_gpus == 321 * 2 + 231 * 8
    assert spec.gpus_of_type("philly-12GB") == 642


def test_vc_and_helios_presets():
    assert make_cluster("philly-vc/6214e9").num_gpus == 64 * 8  # philly_vc.csv: 64 nodes
    assert make_cluster("philly-vc/103959").num_gpus == 8 * 8
    assert make_cluster("helios-venus").num_gpus == 1022


def test_nxg_spec_and_gpu_type():
    spec = make_cluster("16x8-K80")
    assert spec.num_gpus == 128 and spec.gpu_types == ("K80",)
    assert make_cluster("2x4").gpu_types == ("V100",)


@pytest.mark.parametrize("bad", ["16x", "x8", "bogus", "0x8", "4x0", ""])
def test_bad_specs(bad):
    with pytest.raises(ClusterSpecError):
        make_cluster(bad)


def test_toml(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('name = "mix"\n[[nodes]]\ncount = 2\ngpus = 8\ngpu_type = "V100"\nrack = "r{i}"\n'
                 '[[nodes]]\ngpus = 4\ngpu_type = "K80"\n')
    spec = from_toml(p)
    assert spec.num_gpus == 20 and spec.gpu_types == ("K80", "V100")
    assert [n.rack for n in spec.nodes] == ["r0", "r1", "r0"]
    p.write_text('[[nodes]]\ngpus = 8\ncolour = "red"\n')
    with pytest.raises(ClusterSpecError, match="unknown keys"):
        from_toml(p)


def _state(spec, used):
    load = np.zeros(spec.num_gpus, dtype=np.int64)
    load[used] = 1
    node_free = np.bincount(spec.gpu_node[load == 0], minlength=spec.num_nodes)
    return node_free, load


def test_consolidated_best_fit_and_span():
    spec = ClusterSpec(nodes=tuple(Node(gpus=4) for _ in range(3)))
    # node 0: 1 free (GPU 3), node 1: 3 free (GPUs 5-7), node 2: 4 free (8-11)
    node_free, load = _state(spec, [0, 1, 2, 4])
    place = make_placement("consolidated").place
    assert place(1, node_free, load, spec, 0).tolist() == [3]          # fullest node that fits
    assert place(3, node_free, load, spec, 0).tolist() == [5, 6, 7]
    assert place(4, node_free, load, spec, 0).tolist() == [8, 9, 10, 11]
    # 6 GPUs > node size: most-free nodes first (node 2 then node 1)
    assert place(6, node_free, load, spec, 0).tolist() == [8, 9, 10, 11, 5, 6]
    assert place(9, node_free, load, spec, 0) is None                 # only 8 free


def test_other_strategies():
    spec = ClusterSpec(nodes=tuple(Node(gpus=4) for _ in range(2)))
    node_free, load = _state(spec, [0])
    assert make_placement("first-fit").place(4, node_free, load, spec, 0).tolist() == [1, 2, 3, 4]
    assert sorted(make_placement("spread").place(2, node_free, load, spec, 0).tolist()) == [1, 4]
    r = make_placement("random", seed=3).place(3, node_free, load, spec, 0)
    assert len(set(r.tolist())) == 3 and 0 not in r.tolist()
    with pytest.raises(ConfigError, match="unknown placement 'best'"):
        make_placement("best")
