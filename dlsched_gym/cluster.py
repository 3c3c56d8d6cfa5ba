"""Cluster specifications: nodes, GPU types, racks, regions, extra pools, and named presets.

A :class:`ClusterSpec` is immutable and cheap to share between processes. The engine indexes GPUs
globally (``0 .. num_gpus-1``, node by node); ``gpu_node[g]`` maps a GPU to its node.

Presets (see :func:`make_cluster`):

- ``philly``: the 552 machines of Philly's ``cluster_machine_list`` (321 x 2 GPUs with 12 GB,
  231 x 8 GPUs with 24 GB; Jeon et al., ATC'19, CC BY 4.0);
- ``philly-vc/<vc>``: one Philly virtual cluster at the node count the Helios artifact assigns it
  (``philly_vc.csv``, 8 GPUs per node; a modelling choice of that artifact, not recorded hardware);
- ``helios-<cluster>``: Venus, Earth, Saturn, Uranus at their recorded GPU counts
  (``helios_cluster_summary.csv``, 8 GPUs per node as in the Helios artifact);
- ``NxG`` or ``NxG-TYPE``: N identical nodes of G GPUs (e.g. ``16x8-V100``);
- a path to a TOML file (see :func:`from_toml`).
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import io
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path

import numpy as np

from dlsched_gym.errors import ClusterSpecError

#: Python and numpy real-number types (for option checks).
_REAL = (int, float, np.integer, np.floating)
#: GPU type assumed when a spec names none.
DEFAULT_GPU_TYPE = "V100"


@dataclasses.dataclass(frozen=True)
class Node:
    """One server.

    Attributes:
        gpus: number of GPUs (>= 0).
        gpu_type: GPU model name (e.g. ``"V100"``).
        rack: rack (or switch) label, for locality.
        region: region label, for geo-distributed scheduling.
        bandwidth_gbps: the node's network link bandwidth in Gbit/s.
        gpu_mem_gb: memory per GPU in GB.
        pool: ``"training"`` (always available) or ``"inference"`` (lent to training only while
            the cluster's ``inference_schedule`` says so; Lyra).
    """

    gpus: int
    gpu_type: str = DEFAULT_GPU_TYPE
    rack: str = "r0"
    region: str = "default"
    bandwidth_gbps: float = 100.0
    gpu_mem_gb: float = 32.0
    pool: str = "training"


#: Node pools.
POOLS = ("training", "inference")


@dataclasses.dataclass(frozen=True)
class CloudPool:
    """An external pool with no capacity limit, paid per GPU-hour (Starburst)."""

    price_per_gpu_hour: float = 2.48  # AWS p3 on-demand V100 per GPU-hour, 2023 list price


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
    """An immutable description of the cluster.

    Attributes:
        nodes: the servers.
        name: a label (the preset name or file).
        gpu_share_limit: how many jobs may share one GPU (1 = exclusive).
        cloud: an optional unlimited cloud pool.
        inference_schedule: ``((time, lendable_nodes), ...)``: from each time on, that many
            ``pool="inference"`` nodes are lent to training (none before the first entry).
        region_storage_tb: dataset storage per region in TB (decimal), ``{region: TB}``; a
            region not named has no limit. Used only when the engine models datasets.
        replication_gbps: bandwidth of a dataset copy between two regions in Gbit/s: copying
            ``s`` TB takes ``s x 8e12 / (replication_gbps x 1e9)`` seconds. A parameter of the
            simulation (the MAST paper gives no figure); 100 Gbit/s by default.
    """

    nodes: tuple[Node, ...]
    name: str = "cluster"
    gpu_share_limit: int = 1
    cloud: CloudPool | None = None
    inference_schedule: tuple[tuple[float, int], ...] = ()
    region_storage_tb: Mapping[str, float] = dataclasses.field(default_factory=dict, hash=False)
    replication_gbps: float = 100.0

    def __post_init__(self) -> None:
        if not self.nodes:
            raise ClusterSpecError(f"cluster {self.name!r} has no nodes")
        for i, node in enumerate(self.nodes):
            if not isinstance(node.gpus, (int, np.integer)) or node.gpus < 0:
                raise ClusterSpecError(
                    f"cluster {self.name!r}, node {i}: gpus must be an integer >= 0, got {node.gpus!r}"
                )
            if not (node.bandwidth_gbps > 0):
                raise ClusterSpecError(
                    f"cluster {self.name!r}, node {i}: bandwidth_gbps must be > 0, "
                    f"got {node.bandwidth_gbps!r}"
                )
        if self.num_gpus == 0:
            raise ClusterSpecError(f"cluster {self.name!r} has no GPUs")
        if self.gpu_share_limit < 1:
            raise ClusterSpecError(f"gpu_share_limit must be >= 1, got {self.gpu_share_limit}")
        for i, node in enumerate(self.nodes):
            if node.pool not in POOLS:
                raise ClusterSpecError(f"cluster {self.name!r}, node {i}: pool must be one of {POOLS}, "
                                       f"got {node.pool!r}")
        pool_size = int(self.node_pool_inference.sum())
        last = -math.inf
        for k, entry in enumerate(self.inference_schedule):
            t, lendable = entry
            if not (t >= last and math.isfinite(t)) or not (0 <= lendable <= pool_size):
                raise ClusterSpecError(
                    f"cluster {self.name!r}: inference_schedule[{k}] = {entry!r}: expected times in "
                    f"increasing order and 0 <= lendable nodes <= {pool_size} (the inference pool)"
                )
            last = t
        self._check_storage()

    def _check_storage(self) -> None:
        if not isinstance(self.region_storage_tb, Mapping):
            raise ClusterSpecError(f"cluster {self.name!r}: region_storage_tb must map region names "
                                   f"to TB, got {self.region_storage_tb!r}")
        for region, tb in self.region_storage_tb.items():
            if region not in self.regions:
                raise ClusterSpecError(f"cluster {self.name!r}: region_storage_tb names region "
                                       f"{region!r}, but the regions are {list(self.regions)}")
            if isinstance(tb, bool) or not isinstance(tb, _REAL) or not (tb >= 0):
                raise ClusterSpecError(f"cluster {self.name!r}: region_storage_tb[{region!r}] must "
                                       f"be a number of TB >= 0, got {tb!r}")
        g = self.replication_gbps
        if isinstance(g, bool) or not isinstance(g, _REAL) or not (0 < g < math.inf):
            raise ClusterSpecError(f"cluster {self.name!r}: replication_gbps must be a finite "
                                   f"number of Gbit/s > 0, got {g!r}")

    def storage_tb(self, region: str) -> float:
        """Dataset storage of ``region`` in TB (``inf`` when it has no limit)."""
        return float(self.region_storage_tb.get(region, math.inf))

    @functools.cached_property
    def node_gpus(self) -> np.ndarray:
        """GPUs per node (int64 array of length ``num_nodes``)."""
        return np.array([n.gpus for n in self.nodes], dtype=np.int64)

    @functools.cached_property
    def node_first_gpu(self) -> np.ndarray:
        """Global index of each node's first GPU (length ``num_nodes + 1``; last = num_gpus)."""
        return np.concatenate([[0], np.cumsum(self.node_gpus)]).astype(np.int64)

    @functools.cached_property
    def gpu_node(self) -> np.ndarray:
        """Node index of every GPU."""
        return np.repeat(np.arange(self.num_nodes, dtype=np.int64), self.node_gpus)

    @functools.cached_property
    def gpu_node_list(self) -> list[int]:
        """``gpu_node`` as a Python list (for scalar lookups in hot loops; do not modify)."""
        return self.gpu_node.tolist()

    @functools.cached_property
    def gpu_types(self) -> tuple[str, ...]:
        """The distinct GPU types, sorted."""
        return tuple(sorted({n.gpu_type for n in self.nodes if n.gpus}))

    @functools.cached_property
    def node_type_index(self) -> np.ndarray:
        """Index into ``gpu_types`` of each node's GPU type."""
        lookup = {t: i for i, t in enumerate(self.gpu_types)}
        return np.array([lookup.get(n.gpu_type, 0) for n in self.nodes], dtype=np.int64)

    @functools.cached_property
    def regions(self) -> tuple[str, ...]:
        """The distinct regions, sorted."""
        return tuple(sorted({n.region for n in self.nodes}))

    @functools.cached_property
    def node_region_index(self) -> np.ndarray:
        """Index into ``regions`` of each node's region."""
        lookup = {r: i for i, r in enumerate(self.regions)}
        return np.array([lookup[n.region] for n in self.nodes], dtype=np.int64)

    @functools.cached_property
    def region_gpus(self) -> np.ndarray:
        """GPUs per region, in the order of ``regions``."""
        return np.bincount(self.node_region_index, weights=self.node_gpus,
                           minlength=len(self.regions)).astype(np.int64)

    @functools.cached_property
    def node_pool_inference(self) -> np.ndarray:
        """True for the nodes of the lendable inference pool."""
        return np.array([n.pool == "inference" for n in self.nodes], dtype=bool)

    @functools.cached_property
    def node_rack_index(self) -> np.ndarray:
        """Integer rack id of every node."""
        lookup: dict[str, int] = {}
        return np.array([lookup.setdefault(n.rack, len(lookup)) for n in self.nodes], dtype=np.int64)

    @property
    def num_nodes(self) -> int:
        """Number of nodes."""
        return len(self.nodes)

    @functools.cached_property
    def num_gpus(self) -> int:
        """Total GPUs."""
        return int(sum(n.gpus for n in self.nodes))

    @functools.cached_property
    def max_node_gpus(self) -> int:
        """GPUs on the largest node."""
        return int(self.node_gpus.max())

    def gpus_of_type(self, gpu_type: str) -> int:
        """Total GPUs of one type."""
        return int(sum(n.gpus for n in self.nodes if n.gpu_type == gpu_type))

    def describe(self) -> str:
        """One line: nodes, GPUs and types."""
        groups: dict[tuple[int, str], int] = {}
        for n in self.nodes:
            groups[(n.gpus, n.gpu_type)] = groups.get((n.gpus, n.gpu_type), 0) + 1
        parts = ", ".join(f"{c} x {g} {t}" for (g, t), c in sorted(groups.items()))
        return f"{self.name}: {self.num_nodes} nodes, {self.num_gpus} GPUs ({parts})"


def uniform(num_nodes: int, gpus_per_node: int, gpu_type: str = DEFAULT_GPU_TYPE, *,
            nodes_per_rack: int | None = None, name: str | None = None) -> ClusterSpec:
    """``num_nodes`` identical nodes; racks of ``nodes_per_rack`` nodes (one rack if None)."""
    if num_nodes < 1 or gpus_per_node < 1:
        raise ClusterSpecError(
            f"need at least one node and one GPU per node, got {num_nodes}x{gpus_per_node}"
        )
    per_rack = nodes_per_rack or num_nodes
    nodes = tuple(
        Node(gpus=gpus_per_node, gpu_type=gpu_type, rack=f"r{i // per_rack}") for i in range(num_nodes)
    )
    return ClusterSpec(nodes=nodes, name=name or f"{num_nodes}x{gpus_per_node}-{gpu_type}")


_NXG = re.compile(r"^(\d+)x(\d+)(?:-([A-Za-z0-9_.]+))?$")


def _data_text(filename: str) -> str:
    return resources.files("dlsched_gym.traces").joinpath("data", filename).read_text()


def _philly() -> ClusterSpec:
    rows = list(csv.reader(io.StringIO(_data_text("philly_machines.csv"))))[1:]
    nodes = []
    for machine, gpus, mem in rows:
        mem_gb = float(mem.strip().removesuffix("GB"))
        nodes.append(Node(gpus=int(gpus), gpu_type=f"philly-{int(mem_gb)}GB", gpu_mem_gb=mem_gb,
                          rack=machine))
    return ClusterSpec(nodes=tuple(nodes), name="philly")


def philly_vc_nodes() -> dict[str, int]:
    """Node count of each Philly VC, as the Helios artifact models it (8 GPUs per node)."""
    rows = list(csv.reader(io.StringIO(_data_text("philly_vc_nodes.csv"))))[1:]
    return {vc: int(n) for vc, n in rows}


#: GPUs of each Helios cluster (six-month average of the VC quotas; helios_cluster_summary.csv).
HELIOS_GPUS = {"venus": 1022, "earth": 997, "saturn": 2080, "uranus": 2119}


def _helios(cluster: str) -> ClusterSpec:
    gpus = HELIOS_GPUS[cluster]
    full, rest = divmod(gpus, 8)
    nodes = [Node(gpus=8, gpu_type="V100") for _ in range(full)]
    if rest:
        nodes.append(Node(gpus=rest, gpu_type="V100"))
    return ClusterSpec(nodes=tuple(nodes), name=f"helios-{cluster}")


def _presets() -> dict[str, Callable[[], ClusterSpec]]:
    table: dict[str, Callable[[], ClusterSpec]] = {"philly": _philly}
    for vc, n in philly_vc_nodes().items():
        table[f"philly-vc/{vc}"] = functools.partial(uniform, n, 8, DEFAULT_GPU_TYPE,
                                                     name=f"philly-vc/{vc}")
    for cluster in HELIOS_GPUS:
        table[f"helios-{cluster}"] = functools.partial(_helios, cluster)
    return table


@functools.cache
def presets() -> dict[str, Callable[[], ClusterSpec]]:
    """Registry of named cluster presets: name -> factory."""
    return _presets()


def from_toml(path: str | Path) -> ClusterSpec:
    """Load a spec from TOML.

    Format::

        name = "my-cluster"
        gpu_share_limit = 1          # optional
        [[nodes]]                    # one table per node group
        count = 4
        gpus = 8
        gpu_type = "V100"
        rack = "r0"                  # optional; "{i}" is replaced by the node's index in the group
        region = "us"                # optional
        bandwidth_gbps = 100         # optional
        gpu_mem_gb = 32              # optional
        [cloud]                      # optional
        price_per_gpu_hour = 2.48
        inference_schedule = [[0, 2], [3600, 0]]   # optional: (time s, lendable inference nodes)
        replication_gbps = 100       # optional: inter-region dataset copy bandwidth
        [region_storage_tb]          # optional: dataset storage per region (TB); others unlimited
        us = 500
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ClusterSpecError(f"{path}: cannot read cluster TOML: {exc}") from exc
    groups = data.get("nodes")
    if not isinstance(groups, list) or not groups:
        raise ClusterSpecError(f"{path}: expected at least one [[nodes]] table")
    allowed = {f.name for f in dataclasses.fields(Node)} | {"count"}
    nodes: list[Node] = []
    for k, group in enumerate(groups):
        if not isinstance(group, dict):
            raise ClusterSpecError(f"{path}: [[nodes]] #{k}: expected a table of node options, "
                                   f"got {group!r}")
        extra = set(group) - allowed
        if extra:
            raise ClusterSpecError(f"{path}: [[nodes]] #{k}: unknown keys {sorted(extra)}; "
                                   f"expected {sorted(allowed)}")
        count = group.get("count", 1)
        if not isinstance(count, int) or count < 1:
            raise ClusterSpecError(f"{path}: [[nodes]] #{k}: count must be an integer >= 1")
        if "gpus" not in group:
            raise ClusterSpecError(f"{path}: [[nodes]] #{k}: missing 'gpus'")
        fields = {key: v for key, v in group.items() if key != "count"}
        for i in range(count):
            f = dict(fields)
            if "rack" in f:
                f["rack"] = str(f["rack"]).replace("{i}", str(i))
            nodes.append(Node(**f))
    cloud = None
    if "cloud" in data:
        keys = {f.name for f in dataclasses.fields(CloudPool)}
        if not isinstance(data["cloud"], dict) or set(data["cloud"]) - keys:
            raise ClusterSpecError(f"{path}: [cloud]: expected a table with keys {sorted(keys)}, "
                                   f"got {data['cloud']!r}")
        cloud = CloudPool(**data["cloud"])
    schedule = tuple((float(t), int(k)) for t, k in data.get("inference_schedule", []))
    storage = data.get("region_storage_tb", {})
    if not isinstance(storage, dict):
        raise ClusterSpecError(f"{path}: [region_storage_tb]: expected a table of region = TB, "
                               f"got {storage!r}")
    return ClusterSpec(nodes=tuple(nodes), name=str(data.get("name", path.stem)),
                       gpu_share_limit=int(data.get("gpu_share_limit", 1)), cloud=cloud,
                       inference_schedule=schedule, region_storage_tb=storage,
                       replication_gbps=data.get("replication_gbps", 100.0))


def make_cluster(spec: str | ClusterSpec) -> ClusterSpec:
    """Resolve a preset name, an ``NxG[-TYPE]`` string or a TOML path to a :class:`ClusterSpec`."""
    if isinstance(spec, ClusterSpec):
        return spec
    if not isinstance(spec, str) or not spec:
        raise ClusterSpecError(f"cluster spec must be a non-empty string, got {spec!r}")
    if spec in presets():
        return presets()[spec]()
    m = _NXG.match(spec)
    if m:
        n, g, t = m.groups()
        return uniform(int(n), int(g), t or DEFAULT_GPU_TYPE, name=spec)
    if spec.endswith(".toml"):
        return from_toml(spec)
    raise ClusterSpecError(
        f"unknown cluster spec {spec!r}: expected a preset ({', '.join(sorted(presets()))}), "
        f"'NxG' or 'NxG-TYPE' (e.g. '16x8-V100'), or a .toml file"
    )

