"""shmcb against a dict model, driven by hypothesis: random stores, removes, lookups and clock
steps.  A roomy cache must behave exactly like the model; a cramped one may forget entries but
must never return anything but the latest value of a key."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from httpd_py.socache.shmcb import ShmcbCache

KEYS = [b"k%d" % i for i in range(12)] + [b"\x00" * 20, bytes(range(32))]
op = st.one_of(
    st.tuples(st.just("store"), st.sampled_from(KEYS), st.binary(max_size=600),
              st.integers(1, 50)),
    st.tuples(st.just("remove"), st.sampled_from(KEYS)),
    st.tuples(st.just("get"), st.sampled_from(KEYS)),
    st.tuples(st.just("tick"), st.integers(0, 20)),
)


def _run(size: int, ops, exact: bool) -> None:
    c = ShmcbCache(None, size)
    c.init("model")
    model: dict[bytes, tuple[bytes, float]] = {}
    latest: dict[bytes, bytes] = {}
    now = 1_000_000.0
    for o in ops:
        if o[0] == "store":
            _, k, v, ttl = o
            assert c.store(k, v, now + ttl, now=now)
            model[k] = (v, now + ttl)
            latest[k] = v
        elif o[0] == "remove":
            c.remove(o[1])
            model.pop(o[1], None)
            latest.pop(o[1], None)
        elif o[0] == "tick":
            now += o[1]
        else:
            k = o[1]
            got = c.retrieve(k, now=now)
            want = model[k][0] if k in model and model[k][1] > now else None
            if exact:
                assert got == want
            else:
                assert got is None or got == latest.get(k)
    live = {k: v for k, (v, e) in model.items() if e > now}
    listed = {k: v for k, v, _e in c.iterate(now=now)}
    if exact:
        assert listed == live
    else:
        assert all(latest.get(k) == v for k, v in listed.items())
    c.destroy()


@settings(max_examples=150, deadline=None)
@given(st.lists(op, max_size=300))
def test_roomy_cache_is_exactly_the_model(ops):
    _run(512_000, ops, exact=True)


@settings(max_examples=150, deadline=None)
@given(st.lists(op, max_size=300))
def test_cramped_cache_forgets_but_never_lies(ops):
    _run(8192, ops, exact=False)
