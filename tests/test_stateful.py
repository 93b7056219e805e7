"""Stateful property tests: one hypothesis ``RuleBasedStateMachine`` per front.

Each machine drives a subject env with random sequences of valid and invalid
``reset``/``step`` calls, pickle and deepcopy round trips and (for the batched
env) tampering with the returned buffers, and an untouched twin with the valid
calls only. A small model (started? which hour?) says which calls are valid:

- a valid call must succeed on both and give bit-identical results;
- an invalid call must raise the documented exception and change no state:
  the subject's full state (its pickled state, RNGs included) still equals the
  twin's, and every later result still matches.

``make test`` runs a small fixed-seed budget; ``make fuzz`` sets
``PM_FUZZ_EXAMPLES`` (and ``PM_FUZZ_STEPS``) for a long run.
"""

from __future__ import annotations

import copy
import os
import pickle
import struct
import warnings

import gymnasium
import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import powermarket as pm

FUZZ_EXAMPLES = int(os.environ.get("PM_FUZZ_EXAMPLES", "0"))
SETTINGS = settings(
    max_examples=FUZZ_EXAMPLES or 30,
    stateful_step_count=int(os.environ.get("PM_FUZZ_STEPS", "40" if FUZZ_EXAMPLES else "25")),
    derandomize=not FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
ENV_ID = "powermarket/Market-v0"
N, T, M = 3, 4, 3
SCENARIO = pm.Scenario.default(n=N, t=T)
SHORT = pm.Scenario.default(n=2, t=3).replace(shortage_price=500.0)

# --- comparing results bit for bit ---------------------------------------------------------


def assert_same(a, b, path: str = "result") -> None:
    """Bit-identical values: same types, shapes, dtypes and bytes (NaN == NaN)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b), f"{path}: keys {list(a)} vs {b}"
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b), f"{path}: {a!r} vs {b!r}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.asarray(a), np.asarray(b)
        assert (x.dtype, x.shape) == (y.dtype, y.shape), f"{path}: {x.dtype}{x.shape} vs {y}"
        if x.dtype == object:
            for i in range(x.size):
                assert_same(x.flat[i], y.flat[i], f"{path}.flat[{i}]")
        else:
            assert x.tobytes() == y.tobytes(), f"{path}: {x!r} != {y!r}"
    elif isinstance(a, float):
        assert isinstance(b, float), f"{path}: {a!r} vs {b!r}"
        assert struct.pack("<d", a) == struct.pack("<d", b), f"{path}: {a!r} != {b!r}"
    else:
        assert type(a) is type(b) and a == b, f"{path}: {a!r} != {b!r}"


def detach(x):
    """A deep copy of a result (the batched env's arrays are reused buffers)."""
    if isinstance(x, dict):
        return {k: detach(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(detach(v) for v in x)
    if isinstance(x, np.ndarray):
        return x.copy()
    return x


def state_of(obj):
    """The full state a native env pickles (RNG words included), comparable.

    For ``VecMarketEnv`` the thread count (configuration, not state) is left
    out, and ``final_obs`` rows count only where ``final_mask`` is set: the
    other rows are unspecified (Gymnasium's ``_final_obs`` convention).
    """
    fn, args = obj.__reduce__()[:2]
    out = []
    for a in args:
        if isinstance(a, pm.Scenario):
            a = a.to_dict()
        elif isinstance(a, dict) and "outputs" in a:
            a = {k: v for k, v in a.items() if k != "num_threads"}
            a["scenario"] = a["scenario"].to_dict()
            o = dict(a["outputs"])
            rows = np.asarray(o["final_obs"]).reshape(len(o["final_mask"]), -1).copy()
            rows[~np.asarray(o["final_mask"], bool)] = 0
            o["final_obs"] = rows.ravel()
            a["outputs"] = o
        out.append(a)
    return tuple(out)


def final_rows(result):
    """A batched step's result with ``final_obs`` kept only where ``_final_obs``."""
    result = detach(result)
    info = result[-1]
    if "final_obs" in info:
        info["final_obs"][~np.asarray(info["_final_obs"], bool)] = 0
    return result


def rng_state(env):
    """The Gymnasium ``np_random`` state, without creating one (None if unset)."""
    rng = getattr(env, "_np_random", None)
    return None if rng is None else rng.bit_generator.state


def round_trip(obj, how: str):
    return pickle.loads(pickle.dumps(obj)) if how == "pickle" else copy.deepcopy(obj)


# --- strategies -------------------------------------------------------------------------------

valid_seeds = st.one_of(
    st.none(), st.integers(0, 2**64 - 1), st.sampled_from([0, 1, 2**63, 2**64 - 1])
)
bad_seeds = st.sampled_from([-1, 2**64, 2**70, 1.5, "1", b"1", [1.0], True])
BAD_SEED_ERRORS = (ValueError, TypeError)
box_values = st.one_of(
    st.floats(-12.0, 12.0, width=32),
    st.sampled_from([0.0, 1.0, -10.0, 10.0, 1e30, -1e30, 1e300, -1e300]),
)


def actions_of(shape):
    count = int(np.prod(shape))
    return st.tuples(
        st.lists(box_values, min_size=count, max_size=count),
        st.sampled_from([np.float32, np.float64]),
    ).map(lambda t: np.clip(np.array(t[0]), -3e38, 3e38).astype(t[1]).reshape(shape))


def bad_actions_of(shape):
    """(actions, exception): NaN/inf somewhere, a wrong shape or a non-number dtype."""
    count = int(np.prod(shape))
    non_finite = st.tuples(
        st.integers(0, count - 1), st.sampled_from([np.nan, np.inf, -np.inf])
    ).map(lambda t: (_with(np.zeros(shape, np.float32), *t), ValueError))
    wrong_shape = st.sampled_from(
        [
            (np.zeros((count + 2,), np.float32).reshape(-1, 2), ValueError),
            # A 1-D action of another size (the single env accepts any
            # array of exactly 2 values, e.g. (2, 1), as one action).
            (np.zeros(shape + (1,)) if len(shape) > 1 else np.zeros((count + 1,)), ValueError),
        ]
    )
    wrong_type = st.sampled_from(
        [(np.zeros(shape, np.complex128), TypeError), (np.full(shape, "a"), TypeError)]
    )
    return st.one_of(non_finite, wrong_shape, wrong_type)


def _with(a: np.ndarray, flat: int, value: float) -> np.ndarray:
    a.flat[flat] = value
    return a


# --- MarketEnv ---------------------------------------------------------------------------------


# --- the machines share their clone rule and their state check ---------------------------------


class TwinMachine(RuleBasedStateMachine):
    """A subject env and an untouched twin. ``clone`` replaces the subject by a
    pickled or deep-copied copy; after every rule, ``same_state`` checks that
    the subject's full state still equals the twin's (``compare``)."""

    def compare(self) -> None:
        raise NotImplementedError

    def after_clone(self) -> None:
        """What a machine forgets when its subject is replaced."""

    @rule(how=st.sampled_from(["pickle", "deepcopy"]))
    def clone(self, how):
        self.env = round_trip(self.env, how)
        self.after_clone()

    @invariant()
    def same_state(self):
        if hasattr(self, "env"):
            self.compare()


class MarketEnvMachine(TwinMachine):
    @initialize(
        observer=st.sampled_from(pm.OBSERVERS),
        tie_rule=st.sampled_from(pm.TIE_RULES),
        scenario=st.sampled_from([SCENARIO, SHORT]),
        seed=st.integers(0, 2**64 - 1),
    )
    def setup(self, observer, tie_rule, scenario, seed):
        self.n, self.horizon = scenario.n, scenario.t
        self.env = pm.MarketEnv(scenario, observer=observer, seed=seed, tie_rule=tie_rule)
        self.twin = pm.MarketEnv(scenario, observer=observer, seed=seed, tie_rule=tie_rule)
        self.t: int | None = None

    def steppable(self) -> bool:
        return self.t is not None and self.t < self.horizon

    @rule(seed=valid_seeds)
    def reset(self, seed):
        assert_same(self.env.reset(seed=seed), self.twin.reset(seed=seed))
        self.t = 0

    @rule(seed=bad_seeds)
    def bad_reset(self, seed):
        with pytest.raises(BAD_SEED_ERRORS):
            self.env.reset(seed=seed)

    @rule(data=st.data())
    def step(self, data):
        a = data.draw(actions_of((self.n, 2)))
        if self.steppable():
            assert_same(self.env.step(a), self.twin.step(a))
            self.t += 1
        else:
            with pytest.raises(RuntimeError):
                self.env.step(a)

    @rule(data=st.data())
    def bad_step(self, data):
        a, exc = data.draw(bad_actions_of((self.n, 2)))
        with pytest.raises((exc, RuntimeError) if not self.steppable() else exc):
            self.env.step(a)

    @rule()
    def shallow_copy(self):
        self.env = copy.copy(self.env)

    def compare(self):
        assert_same(state_of(self.env), state_of(self.twin))
        assert_same(self.env.episode_record(), self.twin.episode_record())


# --- VecMarketEnv -------------------------------------------------------------------------------

valid_vec_seeds = st.one_of(
    valid_seeds, st.lists(st.integers(0, 2**64 - 1), min_size=M, max_size=M)
)
bad_vec_seeds = st.one_of(
    bad_seeds, st.sampled_from([[1, 2], [1, 2, 3, 4], [0, -1, 0], [0, 0, 2**64], [0, True, 0]])
)
valid_masks = st.one_of(
    st.none(),
    st.lists(st.booleans(), min_size=M, max_size=M).map(np.array),
    st.lists(st.sampled_from([0.0, 0.5, 256.0, np.nan, -1.0]), min_size=M, max_size=M).map(
        np.array
    ),
)
bad_masks = st.sampled_from(
    [
        (np.ones(M + 1, bool), ValueError),
        (np.ones((M, 1)), ValueError),
        (np.array(["x"] * M), TypeError),
        (np.ones(M, np.complex64), TypeError),
    ]
)
TAMPER = ["strides", "writeable", "dtype", "shape", "scribble"]


class VecMarketEnvMachine(TwinMachine):
    @initialize(
        observer=st.sampled_from(pm.OBSERVERS),
        tie_rule=st.sampled_from(pm.TIE_RULES),
        seed=st.integers(0, 2**64 - 1),
        threads=st.sampled_from([None, 1, 3]),
    )
    def setup(self, observer, tie_rule, seed, threads):
        kw = dict(observer=observer, seed=seed, tie_rule=tie_rule)
        self.env = pm.VecMarketEnv(SCENARIO, M, num_threads=threads, **kw)
        self.twin = pm.VecMarketEnv(SCENARIO, M, **kw)
        self.hours = [None] * M
        self.last: tuple | None = None

    @rule(seed=valid_vec_seeds, mask=valid_masks)
    def reset(self, seed, mask):
        got = self.env.reset(seed=seed, mask=mask)
        want = self.twin.reset(seed=seed, mask=mask, copy=True)
        assert_same(detach(got), want)
        self.last = got
        chosen = range(M) if mask is None else np.flatnonzero(np.asarray(mask) != 0)
        for i in chosen:
            self.hours[i] = 0

    @rule(seed=bad_vec_seeds)
    def bad_reset_seed(self, seed):
        with pytest.raises(BAD_SEED_ERRORS):
            self.env.reset(seed=seed)

    @rule(mask=bad_masks, seed=valid_seeds)
    def bad_reset_mask(self, mask, seed):
        with pytest.raises(mask[1], match="mask"):
            self.env.reset(seed=seed, mask=mask[0])

    @rule(data=st.data())
    def step(self, data):
        a = data.draw(actions_of((M, N, 2)))
        if all(h is not None for h in self.hours):
            got = self.env.step(a)
            assert_same(final_rows(got), final_rows(self.twin.step(a, copy=True)))
            self.last = got
            self.hours = [(h + 1) % T for h in self.hours]
        else:
            with pytest.raises(RuntimeError):
                self.env.step(a)

    @rule(data=st.data())
    def bad_step(self, data):
        a, exc = data.draw(bad_actions_of((M, N, 2)))
        with pytest.raises((exc, RuntimeError)):
            self.env.step(a)

    @precondition(lambda self: self.last is not None)
    @rule(data=st.data(), kind=st.sampled_from(TAMPER))
    def tamper(self, data, kind):
        """Mangle one of the last returned buffers; the env must not care."""
        out = self.last
        arrays = [x for x in out[:4] if isinstance(x, np.ndarray)] + [
            v for v in out[-1].values() if isinstance(v, np.ndarray)
        ]
        target = data.draw(st.sampled_from(arrays))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            if kind == "strides":
                target.strides = (0,) * target.ndim
            elif kind == "writeable":
                target.flags.writeable = False
            elif kind == "dtype" and target.itemsize % 2 == 0 and target.flags.c_contiguous:
                target.dtype = np.uint16
            elif kind == "shape" and target.flags.c_contiguous:
                target.shape = (target.size,)
            elif kind == "scribble" and target.flags.writeable and target.flags.c_contiguous:
                target.view(np.uint8)[...] = 0xFF

    def after_clone(self):
        self.last = None

    def compare(self):
        assert_same(state_of(self.env), state_of(self.twin))
        assert [None if h < 0 else int(h) for h in self.env.hours] == self.hours


# --- PettingZoo ---------------------------------------------------------------------------------


class PettingZooMachine(TwinMachine):
    @initialize(observer=st.sampled_from(pm.OBSERVERS), seed=st.integers(0, 2**64 - 1))
    def setup(self, observer, seed):
        self.env = pm.parallel_env(SCENARIO, observer=observer, seed=seed)
        self.twin = pm.parallel_env(SCENARIO, observer=observer, seed=seed)
        self.t: int | None = None

    @rule(seed=valid_seeds)
    def reset(self, seed):
        assert_same(self.env.reset(seed=seed), self.twin.reset(seed=seed))
        self.t = 0

    @rule(seed=bad_seeds)
    def bad_reset(self, seed):
        with pytest.raises(BAD_SEED_ERRORS):
            self.env.reset(seed=seed)

    def _dict(self, a: np.ndarray) -> dict:
        return {f"gen_{i}": a[i] for i in range(N)}

    @rule(data=st.data())
    def step(self, data):
        acts = self._dict(data.draw(actions_of((N, 2))))
        if self.t is not None and self.t < T:
            assert_same(self.env.step(acts), self.twin.step(acts))
            self.t += 1
        else:
            with pytest.raises(RuntimeError):
                self.env.step(acts)

    @rule(data=st.data(), kind=st.sampled_from(["nan", "missing", "unknown", "short"]))
    def bad_step(self, data, kind):
        acts = self._dict(np.zeros((N, 2), np.float32))
        if kind == "nan":
            acts["gen_1"] = np.array([0.0, np.nan], np.float32)
        elif kind == "missing":
            del acts["gen_2"]
        elif kind == "unknown":
            acts["gen_99"] = np.zeros(2, np.float32)
        else:
            acts["gen_0"] = np.zeros(1, np.float32)
        with pytest.raises((ValueError, RuntimeError)):
            self.env.step(acts)

    def compare(self):
        assert self.env.agents == self.twin.agents
        assert_same(state_of(self.env.market), state_of(self.twin.market))


# --- Gymnasium, single learner -------------------------------------------------------------------


def _opponent(obs):
    return np.array([0.1, 4.0 * float(obs[0]) - 2.0])


OPPONENTS = ["random", ("markup", 7.0), ["truthful", _opponent, "random"]]


class GymSingleMachine(TwinMachine):
    @initialize(opponents=st.sampled_from(OPPONENTS), seed=st.integers(0, 2**64 - 1))
    def setup(self, opponents, seed):
        kw = dict(scenario=SCENARIO, opponents=opponents, seed=seed, observer="market")
        self.env = gymnasium.make(ENV_ID, **kw).unwrapped
        self.twin = gymnasium.make(ENV_ID, **kw).unwrapped
        self.t: int | None = None

    @rule(seed=valid_seeds)
    def reset(self, seed):
        assert_same(self.env.reset(seed=seed), self.twin.reset(seed=seed))
        self.t = 0

    @rule(seed=bad_seeds)
    def bad_reset(self, seed):
        with pytest.raises(BAD_SEED_ERRORS):
            self.env.reset(seed=seed)

    @rule(options=st.sampled_from([{"x": 1}, {"reset_mask": np.ones(1, bool)}, 3]))
    def bad_reset_options(self, options):
        with pytest.raises((ValueError, TypeError)):
            self.env.reset(seed=1, options=options)

    @rule(data=st.data())
    def step(self, data):
        a = data.draw(actions_of((2,)))
        if self.t is not None and self.t < T:
            assert_same(self.env.step(a), self.twin.step(a))
            self.t += 1
        else:
            with pytest.raises(RuntimeError):
                self.env.step(a)

    @rule(data=st.data())
    def bad_step(self, data):
        a, exc = data.draw(bad_actions_of((2,)))
        with pytest.raises((exc, RuntimeError)):
            self.env.step(a)

    def compare(self):
        assert_same(state_of(self.env.market), state_of(self.twin.market))
        assert pickle.dumps(self.env.plan.rust) == pickle.dumps(self.twin.plan.rust)
        assert rng_state(self.env) == rng_state(self.twin)


# --- Gymnasium vector ----------------------------------------------------------------------

valid_gym_seeds = st.one_of(
    valid_seeds,
    st.lists(st.one_of(st.none(), st.integers(0, 2**64 - 1)), min_size=M, max_size=M),
)


class GymVectorMachine(TwinMachine):
    @initialize(opponents=st.sampled_from(OPPONENTS), seed=st.integers(0, 2**64 - 1))
    def setup(self, opponents, seed):
        kw = dict(scenario=SCENARIO, opponents=opponents, seed=seed, observer="market")
        make = gymnasium.make_vec
        self.env = make(ENV_ID, num_envs=M, vectorization_mode="vector_entry_point", **kw)
        self.twin = make(ENV_ID, num_envs=M, vectorization_mode="vector_entry_point", **kw)
        self.env, self.twin = self.env.unwrapped, self.twin.unwrapped
        self.hours = [None] * M

    @rule(seed=valid_gym_seeds, mask=valid_masks)
    def reset(self, seed, mask):
        opts = None if mask is None else {"reset_mask": mask}
        assert_same(
            self.env.reset(seed=seed, options=opts), self.twin.reset(seed=seed, options=opts)
        )
        for i in range(M) if mask is None else np.flatnonzero(np.asarray(mask) != 0):
            self.hours[i] = 0

    @rule(seed=bad_vec_seeds)
    def bad_reset_seed(self, seed):
        with pytest.raises(BAD_SEED_ERRORS):
            self.env.reset(seed=seed)

    @rule(mask=bad_masks, seed=valid_seeds)
    def bad_reset_mask(self, mask, seed):
        with pytest.raises(mask[1], match="reset_mask"):
            self.env.reset(seed=seed, options={"reset_mask": mask[0]})

    @rule(data=st.data())
    def step(self, data):
        a = data.draw(actions_of((M, 2)))
        if all(h is not None for h in self.hours):
            assert_same(self.env.step(a), self.twin.step(a))
            self.hours = [(h + 1) % T for h in self.hours]
        else:
            with pytest.raises(RuntimeError):
                self.env.step(a)

    @rule(data=st.data())
    def bad_step(self, data):
        a, exc = data.draw(bad_actions_of((M, 2)))
        with pytest.raises((exc, RuntimeError)):
            self.env.step(a)

    def compare(self):
        assert_same(state_of(self.env.vec), state_of(self.twin.vec))
        assert pickle.dumps(self.env.plan.rust) == pickle.dumps(self.twin.plan.rust)
        assert rng_state(self.env) == rng_state(self.twin)


# --- Stable-Baselines3 adapter ------------------------------------------------------------


class SB3Machine(TwinMachine):
    """The twin is stepped with ``step`` (async + wait) only when a wait is valid."""

    @initialize(seed=st.integers(0, 2**64 - 1))
    def setup(self, seed):
        from powermarket.sb3 import MarketVecEnv

        self.env = MarketVecEnv(SCENARIO, num_markets=M, seed=seed)
        self.twin = MarketVecEnv(SCENARIO, num_markets=M, seed=seed)
        self.started = False
        self.pending: np.ndarray | None = None

    @rule(seed=st.integers(0, 2**64 - 1))
    def seed(self, seed):
        assert_same(self.env.seed(seed), self.twin.seed(seed))

    @rule(seed=bad_seeds)
    def bad_seed(self, seed):
        with pytest.raises(BAD_SEED_ERRORS):
            self.env.seed(seed)

    @rule()
    def reset(self):
        assert_same(self.env.reset(), self.twin.reset())
        self.started, self.pending = True, None

    @rule(data=st.data())
    def step_async(self, data):
        a = data.draw(actions_of((M * N, 2)))
        self.env.step_async(a)
        self.pending = a

    @rule(data=st.data())
    def bad_step_async(self, data):
        a, exc = data.draw(bad_actions_of((M * N, 2)))
        with pytest.raises(exc):
            self.env.step_async(a)

    @rule()
    def step_wait(self):
        if self.pending is not None and self.started:
            assert_same(self.env.step_wait(), self.twin.step(self.pending))
        else:
            with pytest.raises(RuntimeError):
                self.env.step_wait()
        self.pending = None  # consumed, even by a failed wait

    def compare(self):
        assert_same(state_of(self.env.vec), state_of(self.twin.vec))


# --- the tests -----------------------------------------------------------------------------------


def _run(machine) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        machine.TestCase.settings = SETTINGS
        machine.TestCase().runTest()


def test_market_env_machine():
    _run(MarketEnvMachine)


def test_vec_market_env_machine():
    _run(VecMarketEnvMachine)


def test_pettingzoo_machine():
    _run(PettingZooMachine)


def test_gymnasium_single_machine():
    _run(GymSingleMachine)


def test_gymnasium_vector_machine():
    _run(GymVectorMachine)


@pytest.mark.integration  # needs stable-baselines3 (make test-integration)
def test_sb3_machine():
    pytest.importorskip("stable_baselines3")
    _run(SB3Machine)
