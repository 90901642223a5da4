"""The trend of failures per area and per DAG over the last nightly runs, drawn with matplotlib as a PNG:
embedded as a data URI in the report files (an <img> works with JavaScript off), and referred to as
`cid:` in the mail, where it travels as a related part (mail clients do not show data URIs)."""

from __future__ import annotations

import base64
import io
from collections import Counter

from dagcheck.report.results import RunResults

CID = "trend@dagcheck"  # the Content-ID of the trend's related part in the mail


def render(runs: list[RunResults], last: int = 30) -> str:
    """The trend as an <img> with the PNG inline (a report file); empty without a trend."""
    made = png(runs, last)
    return img("data:image/png;base64," + base64.b64encode(made).decode("ascii")) if made else ""


def img(src: str) -> str:
    """The trend's <img> for a source: a data URI in a file, `cid:` + CID in a mail. It shrinks to a phone's width."""
    return f"<img alt='trend of failures per area and per DAG' style='max-width:100%;height:auto' src='{src}'>"


def png(runs: list[RunResults], last: int = 30) -> bytes | None:
    """The trend drawn as a PNG, or None with fewer than two runs."""
    runs = runs[-last:]
    if len(runs) < 2:
        return None  # one point is not a trend
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    labels = [r.run.get("started", "")[5:16].replace("T", " ") for r in runs]
    areas = sorted({c.area for r in runs for c in r.failing()})
    dag_of = {s: d for r in runs for d, servers in r.inventory.get("dags", {}).items() for s in servers}
    dags = sorted(set(dag_of.values()))
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3), dpi=80)
    for area in areas:
        left.plot(labels, [Counter(c.area for c in r.failing())[area] for r in runs], marker="o", label=area)
    for dag in dags:
        right.plot(labels, [sum(1 for c in r.failing() if dag_of.get(c.server) == dag) for r in runs], marker="o", label=dag)
    for ax, title in ((left, "failures per area"), (right, "failures per DAG")):
        ax.set_title(title)
        ax.tick_params(axis="x", labelrotation=45, labelsize=7)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
