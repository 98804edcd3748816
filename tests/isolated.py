"""Run a module-level test function in a fresh process with its own gs.init(...)."""

import multiprocessing as mp
import traceback


def _child(queue, init_kwargs, fn, args):
    try:
        import sim as gs
        import toy_solver  # noqa: F401

        if init_kwargs is not None:
            gs.init(**init_kwargs)
        queue.put(("ok", fn(*args)))
    except BaseException as e:  # report any failure to the parent
        queue.put(("error", f"{type(e).__name__}: {e}\n{traceback.format_exc()}"))


def run_isolated(fn, *args, timeout=600, call_init=True, **init_kwargs):
    """fn(*args) in a new spawned process after gs.init(**init_kwargs) (skipped if call_init is
    False); returns its (picklable) result or raises AssertionError with the child's traceback."""
    init_kwargs = dict(init_kwargs, backend=init_kwargs.get("backend", "cpu")) if call_init else None
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(queue, init_kwargs, fn, args))
    proc.start()
    try:
        status, value = queue.get(timeout=timeout)
    finally:
        proc.join(timeout=30)
        if proc.is_alive():
            proc.kill()
    if status != "ok":
        raise AssertionError(f"isolated process failed:\n{value}")
    return value
