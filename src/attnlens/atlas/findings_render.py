"""The findings report as Markdown (docs/findings.md) and as one self-contained HTML file with figures.

Both are rendered from the same blocks (headings, paragraphs, tables, figures), so they cannot disagree;
Markdown leaves the figures out and says so. Every figure shows its 95% interval.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

from attnlens.contracts.findings import PAPER_CLAIMS, TRANSFER_HOW_TO_READ, Estimate, Findings, Spread


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 2


@dataclass(frozen=True)
class Para:
    text: str


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass(frozen=True)
class Figure:
    figure: Any  # plotly Figure
    caption: str


Block = Heading | Para | Table | Figure


def pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}%"


def ci(e: Estimate | None, fmt: str = "pct") -> str:
    if e is None:
        return "–"
    if fmt == "pct":
        return f"{pct(e.estimate)} [{pct(e.low)}, {pct(e.high)}]"
    if fmt == "signed":
        return f"{_signed(e.estimate)} [{_signed(e.low)}, {_signed(e.high)}]"
    return f"{e.estimate:{fmt}} [{e.low:{fmt}}, {e.high:{fmt}}]"


def _signed(x: float) -> str:
    return f"{'+' if x >= 0 else '−'}{100 * abs(x):.1f} pt"


def _spread(s: Spread | None, fmt: str = ".3g") -> str:
    if s is None:
        return "–"
    iqr = f"IQR {s.q1:{fmt}}–{s.q3:{fmt}}"
    return f"median {s.median:{fmt}} ({iqr}, range {s.minimum:{fmt}}–{s.maximum:{fmt}}, n = {s.count})"


def blocks(f: Findings, *, figures: bool) -> list[Block]:
    """The report as blocks; figures only when `figures` (plotly is imported then)."""
    out: list[Block] = [
        Heading(f"Findings: the paper's claims measured on the {f.model} atlas", 1),
        Para(
            f"Generated {f.created_at} by `{f.command}` on {f.machine}. Patterns embedded by "
            f"`{f.embedder or 'unknown'}`. Every figure is as measured; nothing was tuned to the paper. "
            "Intervals are 95%: Wilson for accuracies, percentile bootstrap for differences and errors."
        ),
        Table(["task", "inferences"], [[t, str(n)] for t, n in f.inferences_per_task.items()]),
        Para("Time per section (s): " + ", ".join(f"{k} {v:.1f}" for k, v in f.seconds.items()) + "."),
    ]
    out += _reconstruction(f, figures)
    out += [
        Heading("(ii) Generalisation to an unseen model"),
        Para(f"Paper: {PAPER_CLAIMS['generalisation']}"),
    ]
    g = f.generalisation
    if g.reason or not g.rows:
        out.append(Para(f"Not measured: {g.reason}"))
    else:
        out.append(
            Para(
                "Masked-patch MSE [95% interval] of each checkpoint on held-out patterns of each model "
                "(files never trained or selected on), and its ratio [95% interval] to the better of two "
                "baselines "
                "that need no model (`attnlens eval-apmae --checkpoint C --model M`)."
            )
        )
        out.append(Table(g.header, g.rows))
        out.append(Para(TRANSFER_HOW_TO_READ))
    out += _recurrence(f)
    out += _correctness(f, figures)
    out += _dose(f, figures)
    return out


def _reconstruction(f: Findings, figures: bool) -> list[Block]:
    r = f.reconstruction
    out: list[Block] = [Heading("(i) Reconstruction"), Para(f"Paper: {PAPER_CLAIMS['reconstruction']}")]
    if r.reason or r.model is None or r.mean_image is None or r.mean_visible is None:
        return [*out, Para(f"Not measured: {r.reason}")]
    out.append(
        Para(
            f"Masked-patch mean squared error of checkpoint `{r.checkpoint}` on its `{r.split}` split "
            f"({r.patterns} patterns from {r.windows} windows of files neither its training nor its "
            "best-step selection saw), against two baselines that need no model: the training mean image, "
            "and each image's mean visible value. Intervals: bootstrap over windows."
        )
    )
    out.append(
        Table(
            ["predictor of the masked patches", "MSE [95% CI]", "AP-MAE / this"],
            [
                ["AP-MAE", ci(r.model, ".5f"), "1"],
                ["mean image", ci(r.mean_image, ".5f"), f"{r.model.estimate / r.mean_image.estimate:.3f}"],
                [
                    "mean of visible",
                    ci(r.mean_visible, ".5f"),
                    f"{r.model.estimate / r.mean_visible.estimate:.3f}",
                ],
            ],
        )
    )
    out.append(
        Table(
            ["layer", "AP-MAE", "mean image", "mean of visible"],
            [
                [str(x.layer), f"{x.model:.5f}", f"{x.mean_image:.5f}", f"{x.mean_visible:.5f}"]
                for x in r.per_layer
            ],
        )
    )
    if figures:
        import plotly.graph_objects as go

        layers = [x.layer for x in r.per_layer]
        fig = go.Figure(
            [
                go.Scatter(x=layers, y=[x.model for x in r.per_layer], name="AP-MAE", mode="lines+markers"),
                go.Scatter(x=layers, y=[x.mean_image for x in r.per_layer], name="mean image", mode="lines"),
                go.Scatter(
                    x=layers, y=[x.mean_visible for x in r.per_layer], name="mean of visible", mode="lines"
                ),
            ]
        )
        fig.update_layout(xaxis_title="layer", yaxis_title="masked-patch MSE", height=340)
        out.append(Figure(fig, "Masked-patch error per layer, AP-MAE against the two baselines."))
    return out


def _recurrence(f: Findings) -> list[Block]:
    r = f.recurrence
    out: list[Block] = [Heading("(iii) Recurring patterns"), Para(f"Paper: {PAPER_CLAIMS['recurrence']}")]
    if r.reason:
        return [*out, Para(f"Not measured: {r.reason}")]
    out.append(
        Para(
            f"Clustering {r.clustering_id}: {r.heads} heads, {r.patterns} patterns, {r.clusters} clusters "
            f"(noise not counted). Clusters per head: {_spread(r.clusters_per_head)}; "
            f"{r.heads_without_clusters} heads found none. Share of patterns HDBSCAN left as noise: "
            f"{pct(r.noise_fraction)}. "
            f"Clusters whose members come from at least two tasks, each at least {pct(r.task_share)} of the "
            f"members: {r.clusters_across_tasks} of {r.clusters} "
            f"({pct(r.clusters_across_tasks / max(r.clusters, 1))})."
        )
    )
    out.append(
        Para(
            "Stability: each sampled head's rows split at random into two halves; each half clustered with "
            "the same recipe; every row labelled by each half's clusters (kNN vote); the two labellings "
            "compared by adjusted Rand index (1 = same partition, about 0 = chance): "
            f"{_spread(r.stability_spread)}." + (f" {r.stability_reason}" if r.stability_reason else "")
        )
    )
    if r.stability:
        out.append(
            Table(
                ["head", "adjusted Rand", "clusters (half 1)", "clusters (half 2)"],
                [
                    [
                        s.head,
                        f"{s.adjusted_rand:.3f}",
                        str(s.clusters_first_half),
                        str(s.clusters_second_half),
                    ]
                    for s in r.stability
                ],
            )
        )
    return out


def _correctness(f: Findings, figures: bool) -> list[Block]:
    c = f.correctness
    out: list[Block] = [Heading("(iv) Correctness prediction"), Para(f"Paper: {PAPER_CLAIMS['correctness']}")]
    if c.reason:
        return [*out, Para(f"Not measured: {c.reason}")]
    out.append(
        Para(
            "Per task and predictor kind, 5-fold cross-validated first-token correctness: on all rows "
            "(chance = the majority-class rate), against the model's own confidence at the hole (logistic "
            "regression on top-1 probability, margin and entropy; same folds) and attention + confidence "
            "(gain: paired bootstrap); on a balanced draw (chance 50%, cross-validated again); and on holes "
            "that already sat on token boundaries. `noise` is the control: its labels alternate, so "
            "everything there should be at chance."
        )
    )
    rows = []
    for t in c.rows:
        rows.append(
            [
                t.task, t.kind, str(t.n_rows), pct(t.chance), ci(t.accuracy), ci(t.shuffled),
                ci(t.confidence), ci(t.combined), ci(t.gain, "signed"),
                "–" if t.balanced_per_class is None else f"{t.balanced_per_class} + {t.balanced_per_class}",
                ci(t.balanced_accuracy), ci(t.balanced_confidence),
                "–" if t.exact_rows is None else str(t.exact_rows), pct(t.exact_chance), ci(t.exact_accuracy),
            ]
        )  # fmt: skip
    out.append(
        Table(
            [
                "task",
                "kind",
                "rows",
                "chance",
                "accuracy",
                "shuffled labels",
                "confidence",
                "attention + confidence",
                "gain over confidence",
                "balanced rows",
                "balanced accuracy",
                "balanced confidence",
                "exact holes",
                "exact chance",
                "exact accuracy",
            ],
            rows,
        )  # fmt: skip
    )
    verdicts = []
    for t in c.rows:
        above = (
            "no chance level stored"
            if t.chance is None
            else "above chance"
            if t.accuracy.low > t.chance
            else "not clearly above chance"
        )
        adds = (
            "no confidence baseline"
            if t.gain is None
            else "adds over confidence"
            if t.gain.low > 0
            else "adds nothing measurable over confidence"
        )
        verdicts.append(f"{t.task} / {t.kind}: {above}; {adds}.")
    out.append(Para(" ".join(verdicts)))
    if figures:
        import plotly.graph_objects as go

        fig = go.Figure()
        for name, pick in (("attention", lambda t: t.accuracy), ("confidence", lambda t: t.confidence),
                           ("attention + confidence", lambda t: t.combined)):  # fmt: skip
            xs = [f"{t.task}<br>{t.kind}" for t in c.rows]
            es = [pick(t) for t in c.rows]
            fig.add_bar(
                x=xs, y=[e.estimate if e else None for e in es], name=name,
                error_y={"type": "data", "symmetric": False,
                         "array": [e.high - e.estimate if e else 0 for e in es],
                         "arrayminus": [e.estimate - e.low if e else 0 for e in es]},
            )  # fmt: skip
        fig.add_scatter(x=[f"{t.task}<br>{t.kind}" for t in c.rows], y=[t.chance for t in c.rows],
                        mode="markers", name="chance",
                        marker={"symbol": "line-ew-open", "size": 30, "color": "#D55E00"})  # fmt: skip
        fig.update_layout(barmode="group", yaxis={"range": [0, 1], "tickformat": ".0%"}, height=420)
        out.append(
            Figure(fig, "Stratified accuracy per task and kind, with the confidence baseline and chance.")
        )
    return out


def _dose(f: Findings, figures: bool) -> list[Block]:
    d = f.dose
    out: list[Block] = [Heading("(v) Ablation dose curve"), Para(f"Paper: {PAPER_CLAIMS['dose']}")]
    if d.reason:
        return [*out, Para(f"Not measured: {d.reason}")]
    out.append(
        Para(
            f"Experiment {d.experiment_id}: task `{d.task}`, {d.scenarios} held-out scenarios "
            f"({'balanced: equal baseline-correct and -incorrect' if d.balanced else 'not balanced'}), "
            f"baseline accuracy {pct(d.baseline_accuracy)}. Heads zero-ablated at their output; ranked by "
            f"{d.ranked_by or 'no ranking (random only)'}. "
            f"Flips count scenarios (of {d.scenarios}) whose first token turned right or wrong."
        )
    )
    out.append(
        Table(
            [
                "rule",
                "n",
                "heads ablated",
                "accuracy",
                "change",
                "incorrect → correct",
                "correct → incorrect",
            ],
            [
                [
                    p.rule,
                    str(p.n),
                    str(p.n_heads),
                    ci(p.accuracy),
                    ci(p.change, "signed"),
                    ci(p.incorrect_to_correct, ".0f"),
                    ci(p.correct_to_incorrect, ".0f"),
                ]
                for p in d.points
            ],
        )  # fmt: skip
    )
    if figures and d.points:
        import plotly.graph_objects as go

        fig = go.Figure()
        for rule in dict.fromkeys(p.rule for p in d.points):
            pts = [p for p in d.points if p.rule == rule]
            fig.add_scatter(
                x=[p.n for p in pts], y=[p.accuracy.estimate for p in pts], name=rule, mode="lines+markers",
                error_y={"type": "data", "symmetric": False,
                         "array": [p.accuracy.high - p.accuracy.estimate for p in pts],
                         "arrayminus": [p.accuracy.estimate - p.accuracy.low for p in pts]},
            )  # fmt: skip
        if d.baseline_accuracy is not None:
            fig.add_hline(y=d.baseline_accuracy, line_dash="dash", annotation_text="no ablation")
        fig.update_layout(
            # Ticks at the measured counts only: a log axis's minor labels ("2 3 4 ...") read as data.
            xaxis={"type": "log", "title": "heads ablated (n)", "tickvals": sorted({p.n for p in d.points})},
            yaxis={"title": "first-token accuracy", "tickformat": ".0%"},
            height=400,
        )
        out.append(
            Figure(fig, "Accuracy against the number of heads ablated, per selection rule (95% intervals).")
        )
    return out


def to_markdown(f: Findings) -> str:
    lines: list[str] = []
    for b in blocks(f, figures=False):
        if isinstance(b, Heading):
            lines += ["#" * b.level + " " + b.text, ""]
        elif isinstance(b, Para):
            lines += [b.text, ""]
        elif isinstance(b, Table):
            lines.append("| " + " | ".join(b.headers) + " |")
            lines.append("| " + " | ".join("---" for _ in b.headers) + " |")
            lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in b.rows]
            lines.append("")
    lines.append(
        "Figures: in the HTML report (`attnlens report --html FILE`) and on the app's Findings page."
    )
    return "\n".join(lines) + "\n"


def to_html(f: Findings) -> str:
    """One self-contained page (plotly.js inlined once; no network needed to view it)."""
    parts: list[str] = []
    first_figure = True
    for b in blocks(f, figures=True):
        if isinstance(b, Heading):
            parts.append(f"<h{b.level}>{html.escape(b.text)}</h{b.level}>")
        elif isinstance(b, Para):
            parts.append(f"<p>{html.escape(b.text)}</p>")
        elif isinstance(b, Table):
            head = "".join(f"<th>{html.escape(h)}</th>" for h in b.headers)
            body = "".join(
                "<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in b.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        else:
            parts.append(
                b.figure.to_html(full_html=False, include_plotlyjs="inline" if first_figure else False)
            )
            parts.append(f"<p class='caption'>{html.escape(b.caption)}</p>")
            first_figure = False
    style = (
        "body{font-family:system-ui,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#1d2330}"
        "table{border-collapse:collapse;margin:1em 0;font-size:13px}"
        "td,th{border:1px solid #ccd;padding:3px 6px;text-align:left}th{background:#f2f4f8}"
        ".caption{color:#5f6b7a;font-size:13px}"
    )
    title = html.escape(f"attnlens findings: {f.model}")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title>"
        f"<style>{style}</style></head><body>{''.join(parts)}</body></html>\n"
    )
