"""The leaderboard's web page (index.html): a summary (best solver per problem and d, the figures
across d), then one section per problem and, within it, per d (sorted as numbers) the ranked
table and the time-to-target table beside the work–precision figure. Self-contained: CSS inline,
figures as files beside it, no script and no network. jinja2 escapes every value; the header's
markdown is rendered by markdown-it-py (a dependency of rich), raw HTML in it left as text."""

from __future__ import annotations

from pathlib import Path

import jinja2
import pandas as pd
from markdown_it import MarkdownIt

from harness import numbers, report
from harness.metrics import RANK_BY, SCHEMA
from harness.plots import scaling_key, section_key

#: columns left out of a section's table when every row has the same value (named above it)
_FOLDED = ("preset", "device")
#: the ranked table's columns printed as numbers (right-aligned)
_NUMERIC = {"rank", "seeds", "d", report.CI, f"best {RANK_BY.name}", *(m.name for m in SCHEMA)}

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>qdbench leaderboard</title>
<style>
body{font-family:system-ui,sans-serif;font-size:14px;line-height:1.4;margin:0 auto;
 padding:1em 1.5em;max-width:1600px;color:#222}
h1{margin:.2em 0}h2{border-bottom:2px solid #ddd;margin-top:2em}h3{margin:1.5em 0 .4em}
nav a{margin-right:1em}
table{border-collapse:collapse;margin:.4em 0 1em;font-size:12px}
th,td{border:1px solid #ccc;padding:2px 6px;vertical-align:top}th{background:#f3f3f3}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.worse td{color:#777}
.pair{display:grid;grid-template-columns:minmax(0,2fr) minmax(0,3fr);gap:1.5em;align-items:start}
@media (max-width:1100px){.pair{grid-template-columns:minmax(0,1fr)}}
.scroll{overflow-x:auto}
figure{margin:0}figure img{width:100%;height:auto;border:1px solid #eee}
figure.scaling img{max-width:1200px}
.more{display:flex;flex-wrap:wrap;gap:.5em}.more img{height:180px;width:auto;border:1px solid #eee}
.note{color:#555;font-size:12px}
pre{background:#f6f6f6;padding:.5em;overflow-x:auto}
</style>
</head>
<body>
{% macro table(heads, rows, numeric, worse=()) %}
<div class="scroll"><table>
<thead><tr>{% for h in heads %}<th>{{ h }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in rows %}
<tr{% if loop.index0 in worse %} class="worse"{% endif %}>{% for cell in row %}<td{% if heads[loop.index0] in numeric %} class="num"{% endif %}>{{ cell }}</td>{% endfor %}</tr>
{% endfor %}
</tbody></table></div>
{% endmacro %}
<h1>qdbench leaderboard</h1>
<nav>{% for p in problems %}<a href="#problem-{{ p.name }}">{{ p.name }}</a>{% endfor %}</nav>
{% if header %}<div class="header">{{ header | safe }}</div>{% endif %}
<section id="summary">
<h2>Summary</h2>
{{ table(summary_heads, summary_rows, numeric) }}
{% for fig in scaling %}
<figure class="scaling" data-problem="{{ fig.problem }}"><img src="{{ fig.src }}" alt="{{ fig.problem }} across d"></figure>
{% endfor %}
<details><summary>How to read the tables</summary>{{ legend | safe }}</details>
</section>
{% for p in problems %}
<section class="problem" id="problem-{{ p.name }}" data-problem="{{ p.name }}">
<h2>{{ p.name }}</h2>
{% for inst in p.instances %}
<section class="instance" id="{{ inst.key }}" data-d="{{ inst.d }}">
<h3>{{ inst.title }}</h3>
<p class="note">Reference: {{ inst.ref }}. Versions: {{ inst.versions }}.{% if inst.common %} Every row: {{ inst.common }}.{% endif %}</p>
{{ table(inst.columns, inst.rows, numeric, inst.worse) }}
<div class="pair">
<div>
{% if inst.targets %}<p class="note">Time to target (wall time, median over seeds):</p>
{{ table(target_heads, inst.targets, target_heads[1:]) }}{% endif %}
</div>
{% if inst.main %}<figure><img src="{{ inst.main }}" alt="work–precision, {{ inst.title }}"></figure>{% endif %}
</div>
{% if inst.more %}<div class="more">{% for src in inst.more %}<a href="{{ src }}"><img src="{{ src }}" alt="{{ src }}"></a>{% endfor %}</div>{% endif %}
</section>
{% endfor %}
</section>
{% endfor %}
</body>
</html>
"""


def _markdown(text: str) -> str:
    """CommonMark (with tables) as HTML; raw HTML in the text is escaped, not passed through."""
    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)


def _pngs(paths: list[Path], out: Path) -> list[str]:
    return [p.relative_to(out).as_posix() for p in paths if p.suffix == ".png"]


def _instance(problem: str, d: int, params: str, part: pd.DataFrame, ttt: pd.DataFrame,
              figures: dict[str, list[Path]], out: Path) -> dict:
    key = section_key(problem, d, params)
    pngs = _pngs(figures.get(key, []), out)
    main = [p for p in pngs if Path(p).name.startswith("workprecision_")]
    shown = report.shown(part)
    same = [c for c in _FOLDED if shown[c].nunique() == 1]  # said once, above the table
    shown = shown.drop(columns=same)
    targets = ttt[(ttt.problem == problem) & (ttt.d == d) & (ttt.params == params)]
    return dict(key=key, d=d, title=report.section_title(problem, d, params),
                ref=part.iloc[0]["ref"], versions=part.iloc[0]["versions"],
                common=", ".join(f"{c} {shown_value}" for c, shown_value
                                 in zip(same, report.shown(part)[same].iloc[0])),
                columns=list(shown.columns), rows=shown.astype(str).values.tolist(),
                worse=[i for i, v in enumerate(part["vs static"]) if v],
                targets=targets[["solver_shown", *report.target_columns()]].values.tolist(),
                main=main[0] if main else "", more=[p for p in pngs if p not in main])


def render(board: pd.DataFrame, ttt: pd.DataFrame, figures: dict[str, list[Path]], out: Path,
           header: str = "") -> str:
    """index.html for ``board`` (report.leaderboard), ``ttt`` (report.time_to_target) and the
    ``figures`` of plots.all_plots, whose paths lie under ``out``."""
    problems, summary = [], []
    for problem, rows in board.groupby("problem", sort=True):
        instances = []
        for (d, params), part in rows.groupby(["d", "params"], sort=True):
            instances.append(_instance(problem, int(d), params, part, ttt, figures, out))
            best = part[part["rank"] == 1]
            top = best.rank_value.min() if RANK_BY.better == "lower" else best.rank_value.max()
            summary.append([problem, int(d), ", ".join(best.label), top])
        problems.append(dict(name=problem, instances=instances))
    sci = numbers.scientific([row[-1] for row in summary])
    summary = [[*row[:-1], numbers.significant(row[-1], report.digits(RANK_BY) or 3, sci)]
               for row in summary]
    scaling = [dict(problem=p, src=src) for p in sorted(set(board.problem))
               for src in _pngs(figures.get(scaling_key(p), []), out)]
    env = jinja2.Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True,
                             undefined=jinja2.StrictUndefined)
    return env.from_string(_TEMPLATE).render(
        header=_markdown(header) if header.strip() else "", legend=_markdown("\n".join(report.legend())),
        problems=problems, scaling=scaling, numeric=_NUMERIC,
        summary_heads=["problem", "d", f"best by {RANK_BY.name} (rank 1)", f"best {RANK_BY.name}"],
        summary_rows=summary, target_heads=["solver", *report.target_columns()])
