"""Pollux's goodput model (dlsched_gym.goodput). Expected values computed by hand (arithmetic in
the comments) on small made-up profiles."""

from pathlib import Path

import numpy as np
import pytest

from dlsched_gym import goodput as g
from dlsched_gym.engine import Engine
from dlsched_gym.errors import ConfigError
from dlsched_gym.workload import from_records

ZERO_SYNC = {"alpha_local": 0.0, "beta_local": 0.0, "alpha_node": 0.0, "beta_node": 0.0}
SHARED_PROFILES = (Path(__file__).resolve().parents[3] / "shared" / "traces" / "pollux"
                   / "pollux_app_profiles.tar.gz")


def app(**kw):
    base = {"alpha_grad": 1.0, "beta_grad": 0.0, **ZERO_SYNC, "gamma": 1.0, "phi": 1000.0,
            "init_batch": 10, "max_batch": 1000, "max_local_batch": 10, "target_samples": 1e6}
    return g.AppParams(**{**base, **kw})


def test_efficiency():
    # (phi + M0) / (phi + M) = (1000 + 10) / (1000 + 100)
    assert g.efficiency(app(), 100) == pytest.approx(1010 / 1100)
    assert g.efficiency(app(), 10) == pytest.approx(1.0)


def test_sync_time_local_and_across_nodes():
    p = app(alpha_local=0.1, beta_local=0.02, alpha_node=0.5, beta_node=0.05)
    assert g.sync_time(p, 1, 1) == 0.0
    assert g.sync_time(p, 4, 1) == pytest.approx(0.1 + 0.02 * 2)  # 0.14
    assert g.sync_time(p, 6, 2) == pytest.approx(0.5 + 0.05 * 4)  # 0.7


def test_iteration_time_overlap_and_accumulation():
    # T_grad = 3, T_sync = 4 (2 GPUs, one node), gamma 2: (9 + 16)^(1/2) = 5; one extra
    # accumulation step adds T_grad: 8.
    p = app(alpha_grad=3.0, alpha_local=4.0, gamma=2.0)
    assert float(g.iteration_time(p, 5, 0, 2, 1)) == pytest.approx(5.0)
    assert float(g.iteration_time(p, 5, 1, 2, 1)) == pytest.approx(8.0)


def test_fixed_goodput_accumulates_when_memory_is_short():
    # batch 40 on 2 GPUs of 10 samples each: 2 steps of m = 10; T = 1 (accumulate) + 1 = 2 s;
    # 40 / 2 = 20 samples/s x E(40) = 1010 / 1040.
    assert g.fixed_goodput(app(), 2, 1, 40) == pytest.approx(20 * 1010 / 1040)


def test_best_goodput_uses_the_largest_batch_that_pays():
    # Constant 1 s steps: throughput = K m, so m = 10 (memory limit), no accumulation; K = 4:
    # M = 40, goodput 40 x 1010 / 1040.
    good, batch = g.best_goodput(app(), 4, 1)
    assert batch == pytest.approx(40)
    assert good == pytest.approx(40 * 1010 / 1040)


def test_high_noise_scale_prefers_large_batches():
    # T_grad = 1 + 0.1 m on 1 GPU, M = m: goodput f(m) = m / (1 + 0.1 m) x (phi + 10) / (phi + m).
    # phi = 1000: f' has the sign of 1000 - 0.1 m^2 >= 0 on [1, 100] -> m = 100:
    #   100 / 11 x 1010 / 1100 = 8.3471.
    # phi = 10: f = 200 m / (10 + m)^2, largest at m = 10 = M0: 10 / 2 x 1 = 5.
    p = app(beta_grad=0.1, max_local_batch=100)
    assert g.best_goodput(p, 1, 1) == pytest.approx((100 / 11 * 1010 / 1100, 100.0))
    assert g.best_goodput(p, 1, 1, phi=10.0) == pytest.approx((5.0, 10.0))


def test_no_batch_fits_more_gpus_than_samples():
    # max_batch 1000 and at least one sample per GPU: 1001 GPUs cannot be used.
    assert g.best_goodput(app(), 1001, 1) == (0.0, 0.0)


def test_bad_shapes_and_names():
    with pytest.raises(ConfigError, match="nodes <= gpus"):
        g.best_goodput(app(), 2, 3)
    with pytest.raises(ConfigError, match="batch must be >= 1"):
        g.fixed_goodput(app(), 1, 1, 0)
    with pytest.raises(ConfigError, match="no Pollux profile for model 'vgg19'"):
        g.params("vgg19")


def test_app_names():
    assert g.app_name("ResNet50") == "imagenet"
    assert g.app_name("resnet18") == "cifar10"
    assert g.app_name("BERT") == "bert"
    assert g.app_name("gpt2") is None
    assert g.params("ncf") is g.APPS["ncf"]


def test_packed_nodes():
    assert [g.packed_nodes(k, 4) for k in (1, 4, 5, 8, 9)] == [1, 1, 2, 2, 3]


def test_fitted_profiles_match_the_artifact_measurements():
    # Facts of the measured profiles: synchronising across nodes costs more than within one.
    for name, p in g.APPS.items():
        assert p.alpha_node > p.alpha_local, name
        assert p.init_batch < p.max_batch, name
    # Stated constants come from fit_profiles on the shared artifact bundle.
    if not SHARED_PROFILES.exists():
        pytest.skip("shared Pollux profiles not available")
    fitted = g.fit_profiles(SHARED_PROFILES)
    assert sorted(fitted) == sorted(g.APPS)
    for name, p in fitted.items():
        for field, value in vars(p).items():
            assert getattr(g.APPS[name], field) == pytest.approx(value, rel=1e-5, abs=1e-6), \
                (name, field)


def _one_job_jct(perf):
    wl = from_records([{"job_id": "a", "submit_time": 0, "num_gpus": 1, "duration": 100.0,
                        "model": "toy", "batch_size": 10}])
    res = Engine(wl, "1x4-V100", perf=perf, timeline_interval=None).run(_Fifo())
    return float(res.end_time[0] - res.submit_time[0])


class _Fifo:
    name = "test-fifo"
    round_seconds = None

    def reset(self, spec, jobs, rng):
        pass

    def schedule(self, view):
        from dlsched_gym.scheduler import Start

        return [Start(j) for j in list(view.queue)]


def test_goodput_model_rates():
    # Profile T_grad = 1 + 0.1 m, phi = 1000, M0 = 10. The job asks 1 GPU with batch 10:
    # fixed goodput 10 / 2 x E(10) = 5 -> rate 1 at its request: JCT = 100 s.
    # Adaptive: best 100 / 11 x 1010 / 1100 = 8.3471 -> rate 1.66942, JCT = 100 x 5 / 8.3471
    # = 6,050,000 / 101,000 = 59.901 s.
    p = app(beta_grad=0.1, max_local_batch=100)
    fixed = g.GoodputModel(adaptive=False, profiles={"toy": p})
    adaptive = g.GoodputModel(adaptive=True, profiles={"toy": p})
    assert _one_job_jct(fixed) == pytest.approx(100.0)
    assert _one_job_jct(adaptive) == pytest.approx(6_050_000 / 101_000)


def test_goodput_model_rejects_unknown_models():
    with pytest.raises(ConfigError, match=r"model\(s\) \['toy'\] have no Pollux profile"):
        _one_job_jct(g.GoodputModel())
    with pytest.raises(ConfigError, match="must be AppParams"):
        g.GoodputModel(profiles={"toy": 1.0})


def test_shared_gpu_runs_at_a_fraction():
    # One job alone on its requested GPU runs at rate 1; two jobs on it at 1/2 each.
    p = app()
    m = g.GoodputModel(adaptive=False, profiles={"toy": p})
    wl = from_records([{"job_id": "a", "submit_time": 0, "num_gpus": 1, "duration": 1.0,
                        "model": "toy", "batch_size": 10}])
    eng = Engine(wl, "1x1-V100", perf=m, timeline_interval=None)
    eng.reset(_Fifo())
    assert m.rate(0, np.array([0]), 1) == pytest.approx(1.0)
    assert m.rate(0, np.array([0]), 2) == pytest.approx(0.5)
