"""Plots of the recorded benchmark results (benchmarks/results/*.md) as PNG files for the README.

    python benchmarks/plot.py [--results benchmarks/results] [--out docs]

- throughput.png: env-steps/s against envs per shard, per driver mode, on 1 / 2 / 4 shards
  (results/distributed.md, "Stepping").
- overhead.png: the coordinator's overhead per step (wall time minus the slowest shard's own step)
  against envs per shard, per mode (same table).
- recovery.png: what a recovery costs on the time axis (results/recovery.md): the call that meets a
  killed shard, split into the recovery (replace, rebuild, restore, replay) and the call itself,
  with an ordinary step of the same scene beside it.

The numbers are read from the Markdown tables the benchmark scripts write, so a rerun of a
benchmark followed by this script updates the pictures.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MODES = {  # mode in the table: (label, colour, line style); in this order in the legends
    "gd": ("gd.VecEnv (step connection)", "tab:blue", "-"),
    "gd-ray": ("gd.VecEnv, Ray-call steps", "tab:cyan", "--"),
    "naive": ("naive ray.get loop", "tab:red", ":"),
    "gym-async": ("gymnasium AsyncVectorEnv", "tab:gray", "-."),
    "gd+cgraph": ("Ray Compiled Graph", "tab:purple", "--"),
    "in-process": ("one process, all envs", "black", "-"),
}


def tables(path: str) -> list[list[dict[str, str]]]:
    """Every Markdown table in a file, as rows of {header: cell}."""
    found, header, rows = [], None, []
    with open(path) as f:
        for line in list(f) + [""]:
            cells = [c.strip() for c in line.strip().strip("|").split("|")] if line.lstrip().startswith("|") else None
            if cells is None:
                if header is not None:
                    found.append(rows)
                header, rows = None, []
            elif header is None:
                header = cells
            elif not all(re.fullmatch(r":?-+:?", c) for c in cells):
                rows.append(dict(zip(header, cells)))
    return found


def table_with(path: str, *columns: str) -> list[dict[str, str]]:
    """The first table of `path` that has all these columns."""
    for rows in tables(path):
        if rows and all(c in rows[0] for c in columns):
            return rows
    raise ValueError(f"{path} has no table with columns {columns}")


def number(cell: str) -> float:
    return float(cell.replace(",", ""))


def _by_mode(rows, shards: str, column: str):
    series = {}
    for r in rows:
        if r["shards"] == shards:
            series.setdefault(r["mode"], []).append((number(r["envs/shard"]), number(r[column])))
    return series


def plot_stepping(rows, column: str, ylabel: str, title: str, path: str, skip=()) -> None:
    shard_counts = sorted({r["shards"] for r in rows}, key=int)
    fig, axes = plt.subplots(1, len(shard_counts), figsize=(4.2 * len(shard_counts), 4.2), sharey=True)
    for ax, shards in zip(axes, shard_counts):
        series = _by_mode(rows, shards, column)
        for mode, (label, colour, style) in MODES.items():
            if mode in series and mode not in skip:
                xs, ys = zip(*sorted(series[mode]))
                ax.plot(xs, ys, style, color=colour, marker="o", label=label, linewidth=2 if mode == "gd" else 1.2)
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("envs per shard")
        ax.set_title(f"{shards} shard{'s' if shards != '1' else ''}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel(ylabel)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_recovery(steady, failed, path: str) -> None:
    """One bar per configuration: the call that meets the failure, split into recovery and the step,
    with an ordinary step's time (from the same scene without a failure) written beside it."""
    step_s = {r["envs/shard"]: 2 * number(r["envs/shard"]) / number(r["env-steps/s"])  # 2 shards
              for r in steady if r["policy"] == "memory, every 100"}
    fig, ax = plt.subplots(figsize=(8.5, 3.8))
    labels = []
    for i, r in enumerate(failed):
        total, recovery = number(r["step that meets the failure, s"]), number(r["of which recovery, s"])
        ax.barh(i, recovery, color="tab:orange",
                label="recovery: replace the shard, rebuild its scene, restore the snapshot, replay" if i == 0 else None)
        ax.barh(i, total - recovery, left=recovery, color="tab:blue", label="the call itself, made again" if i == 0 else None)
        ax.text(total + 0.08, i, f"{total:.2f} s  (an ordinary step: {1000 * step_s[r['envs/shard']]:.0f} ms)",
                va="center", fontsize=9)
        labels.append(f"{r['envs/shard']} envs/shard,\n{r['steps replayed']} step(s) replayed")
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set_xlabel("seconds after the call that meets a killed shard (2 shards, CPU)")
    ax.set_xlim(0, max(number(r["step that meets the failure, s"]) for r in failed) * 1.55)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=1, fontsize=8, frameon=False)
    ax.set_title("Recovery: one shard killed, the scene continues")
    ax.grid(True, axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> list[str]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=os.path.join(HERE, "results"))
    parser.add_argument("--out", default=os.path.join(os.path.dirname(HERE), "docs"))
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    distributed = os.path.join(args.results, "distributed.md")
    recovery = os.path.join(args.results, "recovery.md")
    stepping = table_with(distributed, "envs/shard", "shards", "mode", "env-steps/s", "overhead us")
    written = [os.path.join(args.out, name) for name in ("throughput.png", "overhead.png", "recovery.png")]
    plot_stepping(stepping, "env-steps/s", "env-steps per second", "Throughput (FrankaReach, CPU, 2 shared cores)",
                  written[0])
    plot_stepping(stepping, "overhead us", "overhead per step (µs)",
                  "Coordinator overhead per step: wall time minus the slowest shard's own step", written[1],
                  skip=("in-process",))
    plot_recovery(table_with(recovery, "policy", "env-steps/s"),
                  table_with(recovery, "steps replayed", "of which recovery, s"), written[2])
    return written


if __name__ == "__main__":
    for path in main(sys.argv[1:]):
        print(path)
