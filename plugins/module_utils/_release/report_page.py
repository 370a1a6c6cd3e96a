# Copyright: Slipway engineers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The release report's page: a Jinja2 template (autoescaped) of one self-contained HTML file.

It is Python text rather than a ``.j2`` file because a module carries only Python files of ``module_utils`` with it
(AnsiballZ). The page loads nothing: styles inline, no script, no external address, and a Content-Security-Policy
that would refuse them anyway; ``<details>`` folds the longer diffs, so it reads the same without JavaScript.
"""

from __future__ import annotations

PAGE = r"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="slipway.platform.release_report">
<title>{{ report.title }}</title>
<style>
body { font: 14px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 80rem; padding: 1rem 1.5rem; color: #1d2330; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 2px solid #d6dae3; padding-bottom: .2rem; margin-top: 2.2rem; }
h3 { margin-top: 1.4rem; } .muted { color: #5d6678; }
table { border-collapse: collapse; width: 100%; margin: .4rem 0 1rem; }
th, td { border: 1px solid #d6dae3; padding: .25rem .45rem; text-align: left; vertical-align: top; }
th { background: #f1f3f7; } code, pre { font: 12px/1.4 ui-monospace, monospace; }
code { overflow-wrap: anywhere; } pre { margin: .2rem 0; padding: .4rem; background: #f7f8fb; overflow-x: auto; }
.outcome { font-weight: 600; padding: 0 .35rem; border-radius: .25rem; white-space: nowrap; }
.outcome-succeeded { background: #d8f2dd; color: #185c27; } .outcome-failed { background: #fbd9d6; color: #8a1c12; }
.badge { font-size: .75rem; background: #e3e7f5; border-radius: .25rem; padding: 0 .35rem; vertical-align: middle; }
.reason { white-space: pre-wrap; overflow-wrap: anywhere; }
.pair { border-left: 4px solid #c5cbe0; padding: .1rem .8rem; margin: .8rem 0; }
.pair h4 { margin: .3rem 0; } .lines { list-style: none; padding-left: 0; margin: .2rem 0; }
.lines li { font-family: ui-monospace, monospace; font-size: 12px; white-space: pre-wrap; }
.add { background: #e4f7e7; display: block; } .del { background: #fde7e5; display: block; }
.hunk { color: #5d6678; display: block; } .same { display: block; }
details { margin: .3rem 0; } summary { cursor: pointer; }
nav ul { padding-left: 1.2rem; columns: 3; }
</style>
</head>
<body>
{%- macro outcome(value) -%}
<span class="outcome outcome-{{ value }}">{{ value or "-" }}</span>
{%- endmacro -%}
{%- macro pair(p, open) -%}
<div class="pair" data-from="{{ p.from if p.from is not none else '' }}" data-to="{{ p.to }}">
<h4>{% if p.from is none %}revision {{ p.to }}, the first{% else %}revision {{ p.from }} &rarr; {{ p.to }}{% endif %}
 <span class="muted">({{ p.diff.lines[0] }})</span></h4>
<ul class="lines">
{%- for line in p.diff.lines[1:] %}
<li>{{ line }}</li>
{%- endfor %}
</ul>
{%- if p.manifests %}
<details class="manifests"{% if open %} open{% endif %}>
<summary>manifest changes ({{ p.manifests | length }} object{{ "s" if p.manifests | length != 1 }};
 Secret values redacted)</summary>
{%- for m in p.manifests %}
<div class="object" data-system="{{ m.system }}" data-change="{{ m.change }}">
<p><strong>{{ m.system }}</strong>: {{ m.object }} <em>{{ m.change }}</em></p>
<pre class="diff">{% for l in m.lines %}<span class="{{ l.kind }}">{{ l.text }}</span>{% endfor %}</pre>
</div>
{%- endfor %}
</details>
{%- elif p.manifests_note %}
<p class="muted">{{ p.manifests_note }}</p>
{%- endif %}
</div>
{%- endmacro -%}
{%- macro context_section(c, index, kind) -%}
<section class="context" id="{{ kind }}-{{ index }}" data-context="{{ c.name }}" data-kind="{{ kind }}">
<h2>{{ c.name }}{% if c.showroom %} <span class="badge">showroom</span>{% endif %}</h2>
{%- if c.journal %}<p class="muted">Journal: namespace <code>{{ c.journal }}</code>.</p>{% endif %}
{%- if c.showroom_facts %}
<table class="facts">{% for k, v in c.showroom_facts %}<tr><th>{{ k }}</th><td>{{ v }}</td></tr>{% endfor %}</table>
{%- endif %}
{%- if not c.latest %}
<p class="muted">No release recorded in this context's journal.</p>
{%- else %}
<p>Latest: revision {{ c.latest.revision }} ({{ c.latest.action }}) {{ outcome(c.latest.outcome) }}
 at {{ c.latest.finished_at }} by {{ c.latest.actor }}
{%- if c.last_good is not none %}; last good: revision {{ c.last_good }}{% endif %}.</p>
<h3>What runs there</h3>
<table class="running">
<thead><tr><th>system</th><th>namespace</th><th>images</th><th>git SHA</th><th>revision</th><th>when</th><th>by</th>
<th>outcome</th></tr></thead>
<tbody>
{%- for r in c.running %}
<tr data-system="{{ r.system }}"><td>{{ r.system }}</td><td>{{ r.namespace }}</td>
<td class="images">{% for name, ref in r.images %}
<div>{{ name }}: <code class="image">{{ ref }}</code></div>{% endfor %}</td>
<td><code class="git" title="{{ r.git_sha }}">{{ r.git_sha[:12] or "-" }}</code></td><td>{{ r.revision }}</td>
<td>{{ r.at or "-" }}</td><td>{{ r.actor or "-" }}</td>
<td>{{ outcome(r.outcome) }}</td></tr>
{%- endfor %}
</tbody>
</table>
<h3>History</h3>
{%- if c.older_not_shown %}<p class="muted">{{ c.older_not_shown }} older release(s) not shown.</p>{% endif %}
<table class="history">
<thead><tr><th>revision</th><th>action</th><th>outcome</th><th>finished</th><th>by</th><th>message</th></tr></thead>
<tbody>
{%- for h in c.history %}
<tr data-revision="{{ h.revision }}"><td><a href="#{{ kind }}-{{ index }}-r{{ h.revision }}">{{ h.revision }}</a></td>
<td>{{ h.action }}</td><td>{{ outcome(h.outcome) }}</td><td>{{ h.finished_at }}</td><td>{{ h.actor }}</td>
<td class="reason">{{ h.message }}</td></tr>
{%- endfor %}
</tbody>
</table>
<h3>Changes, release by release</h3>
{%- for h in c.history %}
<div id="{{ kind }}-{{ index }}-r{{ h.revision }}" class="release" data-revision="{{ h.revision }}">
{%- if h.change %}{{ pair(h.change, loop.first) }}
{%- else %}<p class="muted">revision {{ h.revision }}: the release before it is not shown.</p>{% endif %}
</div>
{%- endfor %}
{%- set compared = c.others | selectattr("pairs") | list %}
{%- if compared %}
<h3>Any two releases</h3>
{%- for o in compared %}
<details class="compare" data-to="{{ o.to }}">
<summary>revision {{ o.to }} against revision
{%- for p in o.pairs %} {{ p.from }}{{ "," if not loop.last }}{% endfor %}</summary>
{%- for p in o.pairs %}{{ pair(p, false) }}{% endfor %}
</details>
{%- endfor %}
{%- endif %}
{%- endif %}
</section>
{%- endmacro %}
<header>
<h1>{{ report.title }}</h1>
<p class="muted">Journal state as of {{ report.as_of or "-" }}: {{ report.contexts | length }} context(s),
 {{ report.showrooms | length }} showroom(s),
 {{ report.failures | length }} failed deliver{{ "y" if report.failures | length == 1 else "ies" }}.</p>
{%- for u in report.unread %}
<p class="unread">Journals in namespace <code>{{ u.namespace }}</code> not read: {{ u.reason }}</p>
{%- endfor %}
</header>
<nav><ul>
{%- for c in report.contexts %}<li><a href="#context-{{ loop.index }}">{{ c.name }}</a></li>{% endfor %}
{%- for c in report.showrooms %}<li><a href="#showroom-{{ loop.index }}">{{ c.name }}</a> (showroom)</li>{% endfor %}
<li><a href="#failures">failed deliveries</a></li>
</ul></nav>
<h2>Overview</h2>
<table class="overview">
<thead><tr><th>context</th><th>kind</th><th>latest revision</th><th>outcome</th><th>when</th><th>by</th>
<th>systems</th></tr></thead>
<tbody>
{%- for kind, group in [("context", report.contexts), ("showroom", report.showrooms)] %}{% for c in group %}
<tr data-context="{{ c.name }}"><td><a href="#{{ kind }}-{{ loop.index }}">{{ c.name }}</a></td><td>{{ kind }}</td>
{%- if c.latest %}<td>{{ c.latest.revision }}</td><td>{{ outcome(c.latest.outcome) }}</td>
<td>{{ c.latest.finished_at }}</td><td>{{ c.latest.actor }}</td>
<td>{{ c.running | map(attribute="system") | join(", ") }}</td>
{%- else %}<td colspan="5" class="muted">no release recorded</td>{% endif %}</tr>
{%- endfor %}{% endfor %}
</tbody>
</table>
<section id="failures">
<h2>Failed deliveries</h2>
{%- if report.failures %}
<table class="failures">
<thead><tr><th>context</th><th>revision</th><th>action</th><th>when</th><th>by</th><th>systems</th><th>reason</th></tr></thead>
<tbody>
{%- for f in report.failures %}
<tr data-context="{{ f.context }}" data-revision="{{ f.revision if f.revision is not none else '' }}">
<td>{{ f.context }}</td><td>{{ f.revision if f.revision is not none else "not recorded" }}</td><td>{{ f.action }}</td>
<td>{{ f.at }}</td><td>{{ f.actor }}</td><td>{{ f.systems | join(", ") }}</td>
<td class="reason">{{ f.reason }}</td></tr>
{%- endfor %}
</tbody>
</table>
{%- else %}
<p class="muted">None.</p>
{%- endif %}
</section>
{%- for c in report.contexts %}
{{ context_section(c, loop.index, "context") }}
{%- endfor %}
{%- for c in report.showrooms %}
{{ context_section(c, loop.index, "showroom") }}
{%- endfor %}
<footer><p class="muted">Written by slipway.platform.release_report from the release journals; secrets never enter the
journal, and Secret values in manifest changes are keyed hashes.</p></footer>
</body>
</html>
"""
