"""Connector channel templates: Coralogix's Tera templates render as documented, and no template,
however hostile, hangs, exhausts memory or reaches Python internals."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from typing import Any

import pytest

from cxslack import templating
from cxslack.errors import EXIT_FAILED, EXIT_USAGE, UsageError
from cxslack.templating import TemplateRenderError, render_template, sample_payload, validate_template

ALERTS = sample_payload("alerts")
CASES = sample_payload("cases")
TEST_NOTIFICATIONS = sample_payload("test-notifications")

# The reference's real templates, and the connector example's overrides.
CHANNEL_LABEL = "{{alertDef.entityLabels.channel}}"
BY_PRIORITY = (
    '{% if alertDef.priority == "P1" %}critical_alerts_channel{% elif alertDef.priority == "P3" %}'
    "warn_alerts_channel{% else %}default_channel{% endif %}"
)
BY_GROUP_KEY = (
    '{% if alert.groups[0].keyValues[alertDef.groupByKeys[1]]|lower == "sample" %}sample-channel'
    "{% else %}generic-channel{% endif %}"
)
CONTEXT_LABEL = '{{ _context.entityLabels["channel"][0] }}'
ALERTS_OVERRIDE = "{{alertDef.entityLabels.team}}-alerts"
CASES_OVERRIDE = '{% if _context.entityLabels["team"][0] == "db" %}db-cases{% else %}cases{% endif %}'


def render_bounded(template: str, context: dict[str, Any], limit: float = 15.0) -> tuple[Any, float]:
    """Render in a thread so a hang fails the test instead of the run; return (outcome, seconds)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = render_template(template, context)
        except BaseException as exc:  # the test inspects whatever came out, crash included
            outcome["value"] = exc

    thread = threading.Thread(target=run, daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(limit)
    assert not thread.is_alive(), f"render did not return within {limit} s: {template[:80]!r}"
    return outcome["value"], time.monotonic() - started


def render_error(template: str, context: dict[str, Any] | None = None) -> TemplateRenderError:
    with pytest.raises(TemplateRenderError) as caught:
        render_template(template, ALERTS if context is None else context)
    return caught.value


# -- (a) the reference's templates ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "payload", "channel"),
    [
        (CHANNEL_LABEL, ALERTS, "payments-alerts"),
        (BY_PRIORITY, ALERTS, "critical_alerts_channel"),  # P1
        (BY_PRIORITY, TEST_NOTIFICATIONS, "warn_alerts_channel"),  # P3
        (BY_PRIORITY, {**ALERTS, "alertDef": {**ALERTS["alertDef"], "priority": "P2"}}, "default_channel"),
        (BY_GROUP_KEY, ALERTS, "sample-channel"),  # the subsystem is "Sample": |lower makes it match
        (BY_GROUP_KEY, TEST_NOTIFICATIONS, "generic-channel"),
        (CONTEXT_LABEL, ALERTS, "payments-alerts"),
        (CONTEXT_LABEL, CASES, "db-incidents"),
        (ALERTS_OVERRIDE, ALERTS, "payments-alerts"),
        (CASES_OVERRIDE, CASES, "db-cases"),
        (CASES_OVERRIDE, ALERTS, "cases"),
    ],
)
def test_reference_templates_render_as_coralogix_documents(
    template: str, payload: dict[str, Any], channel: str
) -> None:
    validate_template(template)
    assert render_template(template, payload) == channel


def test_samples_carry_every_field_the_reference_templates_use() -> None:
    for payload in (ALERTS, TEST_NOTIFICATIONS):
        definition, alert = payload["alertDef"], payload["alert"]
        assert {"name", "priority", "groupByKeys"} <= definition.keys()
        assert {"team", "channel"} <= definition["entityLabels"].keys()
        assert alert["status"] in {"Triggered", "Resolved"} and alert["timestamp"]
        assert set(definition["groupByKeys"]) <= alert["groups"][0]["keyValues"].keys()
    for payload in (ALERTS, CASES, TEST_NOTIFICATIONS):
        context = payload["_context"]
        assert context["entityType"] and context["entitySubType"] and context["system"]["name"]
        assert all(isinstance(values, list) for values in context["entityLabels"].values())
    assert {"id", "readableId", "title", "status", "priority", "labels"} <= CASES["case"].keys()
    assert [p["_context"]["entityType"] for p in (ALERTS, CASES, TEST_NOTIFICATIONS)] == list(
        templating.ENTITY_TYPES
    )


def test_sample_payloads_are_fresh_copies_and_unknown_entity_types_are_usage_errors() -> None:
    sample_payload("alerts")["alertDef"]["name"] = "changed"
    assert sample_payload("alerts")["alertDef"]["name"] == ALERTS["alertDef"]["name"]
    with pytest.raises(UsageError) as caught:
        sample_payload("ALERTS")
    assert caught.value.code == "invalid_entity_type" and "test-notifications" in (caught.value.hint or "")


# -- (b) Tera's filters, tests, functions and syntax ---------------------------------------------


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ alertDef.name | lower }}", "payments api 5xx rate"),
        ("{{ alertDef.name | upper }}", "PAYMENTS API 5XX RATE"),
        ('{{ alert.timestamp | date(format="%Y-%m-%d %H:%M") }}', "2026-11-29 08:30"),
        ('{{ 1795941000 | date(format="%Y-%m-%d %H:%M") }}', "2026-11-29 08:30"),  # epoch seconds
        ('{{ 1795941000000 | date(format="%Y-%m-%d %H:%M") }}', "2026-11-29 08:30"),  # epoch milliseconds
        ('{{ "2026-11-29T10:30:00.123456789+02:00" | date(format="%H:%M %z") }}', "10:30 +0200"),
        ('{{ "2026-11-29" | date }}', "2026-11-29"),  # Tera's default format
        ('{{ alert.timestamp | date(format="%H:%M", timezone="Europe/Berlin") }}', "09:30"),
        ("{{ alertDef.entityLabels | json_encode }}", '{"channel":"payments-alerts","team":"payments"}'),
        (
            "{{ _context.entityLabels | json_encode(pretty=true) }}",
            '{\n  "channel": [\n    "payments-alerts"\n  ],\n  "team": [\n    "payments"\n  ]\n}',
        ),
        (
            '{{ "  x  " | trim }}-{{ alertDef.name | replace(from=" ", to="-") | lower }}',
            "x-payments-api-5xx-rate",
        ),
        ("{{ alertDef.groupByKeys | length }} {{ alertDef.name | length }}", "2 21"),
        ('{{ _context.entityLabels.channel | join(sep=",") }}', "payments-alerts"),
        (
            '{{ alertDef.owner | default(value="ops") }}-{{ alertDef.priority | default(value="P5") }}',
            "ops-P1",
        ),
    ],
)
def test_filters(template: str, expected: str) -> None:
    assert render_template(template, ALERTS) == expected


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("alertDef.name is defined", True),
        ("alertDef.owner is defined", False),
        ("alertDef.owner.email is defined", False),  # Tera resolves the whole path
        ("alertDef.owner is not defined", True),
        ("nothing is undefined", True),
        ('alertDef.name is starting_with("Payments")', True),
        ('alertDef.name is starting_with("payments")', False),
        ('alertDef.name is ending_with("rate")', True),
        ('alertDef.name is containing("5xx")', True),
        ('alertDef.groupByKeys is containing("coralogix.metadata.subsystemName")', True),
        ('alertDef.entityLabels is containing("team")', True),
        ('alertDef.entityLabels is containing("owner")', False),
        ('"CPU usage high" is matching("(?i)^cpu")', True),
        ('alertDef.name is matching("(?i)^cpu")', False),
        ('alertDef.name is not matching("^[A-Z][a-z]+ API")', False),
        ('alertDef.name is matching(".*5xx.*")', True),
    ],
)
def test_tests(condition: str, expected: bool) -> None:
    assert render_template(f"{{% if {condition} %}}yes{{% else %}}no{{% endif %}}", ALERTS) == (
        "yes" if expected else "no"
    )


def test_get_context_returns_every_variable() -> None:
    assert json.loads(render_template("{{ get_context() | json_encode }}", ALERTS)) == ALERTS
    assert json.loads(render_template("{% set route = 1 %}{{ get_context() | json_encode }}", {"a": 1})) == {
        "a": 1,
        "route": 1,
    }


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        (
            '{% if alertDef.priority == "P1" and not (alert.status == "Resolved" or false) %}page{% endif %}',
            "page",
        ),
        ('{{ _context.system.name ~ "-" ~ alertDef.priority | lower ~ "-" ~ 2 }}', "acme-prod-p1-2"),
        ('{% if "payments" in _context.entityLabels.team %}yes{% endif %}', "yes"),
        ('{% if "ops" not in _context.entityLabels.team %}yes{% endif %}', "yes"),
        ('{% if "team" in alertDef.entityLabels and "5xx" in alertDef.name %}yes{% endif %}', "yes"),
        (
            "{% for key, value in alertDef.entityLabels %}{{ key }}={{ value }};{% endfor %}",
            "channel=payments-alerts;team=payments;",
        ),
        (
            "{% for g in alert.groups %}{{ loop.index }}{{ loop.index0 }}{{ loop.first }}{{ loop.last }}{% endfor %}",
            "10truetrue",
        ),
        (
            "{% for x in [1, 2, 3, 4] %}{% if x == 1 %}{% continue %}{% endif %}{% if x == 4 %}{% break %}{% endif %}{{ x }}{% endfor %}",
            "23",
        ),
        ("{% for x in [] %}x{% else %}empty{% endfor %}", "empty"),
        ("{% set team = alertDef.entityLabels.team %}{{ team }}", "payments"),
        (
            "{{ range(end=3) }} {{ range(start=1, end=6, step_by=2) }} {{ range(2) }}",
            "[0, 1, 2] [1, 3, 5] [0, 1]",
        ),
        ("{{ 7 // 2 }} {{ 7 % 4 }} {{ 1 + 2 * 3 }} {{ 2 ** 10 }} {{ 3 / 2 }}", "3 3 7 1024 1.5"),
        # Tera prints booleans lower-case, null as nothing, arrays bare and maps as [object]
        (
            '{{ true }} [{{ none }}] {{ [1, "a", [false]] }} {{ alertDef.entityLabels }}',
            "true [] [1, a, [false]] [object]",
        ),
        # A missing field is an error wherever it is used, except bare in {% if %}: falsy, as in Tera.
        ("{% if alertDef.owner %}owner{% else %}nobody{% endif %}", "nobody"),
        ("{% raw %}{{ not rendered }}{% endraw %}", "{{ not rendered }}"),
        ("\n   {{- alertDef.priority -}}   \n", "P1"),
        ("   payments-alerts \n", "payments-alerts"),  # Coralogix strips the rendered value
    ],
)
def test_tera_syntax(template: str, expected: str) -> None:
    assert render_template(template, ALERTS) == expected


@pytest.mark.parametrize(
    ("template", "named"),
    [
        ("{{ alertDef.owner }}", "'owner'"),
        ("{{ alertDefs.name }}", "'alertDefs'"),
        ("{{ alert.groups[3].keyValues }}", "index 3"),
        ('{% if alertDef.owner == "me" %}x{% endif %}', "'owner'"),
        ("{{ alertDef.owner | lower }}", "'owner'"),
        ("{% for x in alertDef.owners %}{% endfor %}", "'owners'"),
    ],
)
def test_a_missing_field_is_field_not_found_and_names_it(template: str, named: str) -> None:
    error = render_error(template)
    assert error.code == "field_not_found" and named in error.message
    assert error.exit_code == EXIT_FAILED and error.hint


def test_render_reports_coralogix_reasons() -> None:
    assert render_error("{% if x %}").code == "invalid_template"
    assert render_error("x" * (templating.MAX_TEMPLATE_CHARS + 1)).code == "template_exceeds_max_length"
    assert render_error("{{ alertDef.description }}" * 20).code == "rendered_value_exceeds_max_length"
    assert render_template("{{ 'x' }}" * 10, ALERTS) == "x" * 10
    assert render_error('{{ "a" + "b" }}').code == "render_error"
    assert "join strings with ~" in render_error('{{ "a" + "b" }}').message
    assert render_error("{{ 1 / 0 }}").code == "render_error"
    assert "not both" in render_error("{{ range(5, end=3) }}").message


# -- (c) hostile templates -----------------------------------------------------------------------

HOSTILE = [
    # reaching Python internals
    ("{{ ''.__class__ }}", "render_error"),
    ("{{ ''.__class__.__mro__[1].__subclasses__() }}", "invalid_template"),
    ("{{ foo.__globals__ }}", "field_not_found"),
    ("{{ get_context.__globals__ }}", "render_error"),
    ("{{ cycler.__init__.__globals__.os }}", "field_not_found"),
    ("{{ self._TemplateReference__context }}", "render_error"),
    ("{{ [].__class__.__base__.__subclasses__() }}", "invalid_template"),
    ("{{ alertDef.name['__class__'] }}", "render_error"),
    ("{{ range.__self__ }}", "render_error"),
    ("{% for x in alert.groups %}{{ loop.__class__ }}{% endfor %}", "render_error"),
    ("{{ alertDef.keys }}", "field_not_found"),  # `.` reads JSON keys, never dict methods
    # format-string tricks
    ("{{ alertDef.name|attr('__class__') }}", "invalid_template"),
    ('{{ "%s"|format(alertDef) }}', "invalid_template"),
    ('{{ "{0.__class__}".format(alertDef.name) }}', "invalid_template"),
    ("{% set fmt = alertDef.name.format %}{{ fmt }}", "render_error"),
    ('{{ "%0999999999d" % 1 }}', "render_error"),
    # unsupported tags that buffer output or recurse
    ("{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}", "invalid_template"),
    ("{% for x in [[1]] recursive %}{{ loop(x) }}{% endfor %}", "invalid_template"),
    ("{% filter upper %}{% for i in range(9999) %}{{ alertDef.description }}{% endfor %}{% endfilter %}", "invalid_template"),
    ("{% set x %}{% for i in range(9999) %}xxxx{% endfor %}{% endset %}{{ x|length }}", "invalid_template"),
    ('{% include "/etc/passwd" %}', "invalid_template"),
    # huge loops and work
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}", "render_error"),
    ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", "render_timeout"),
    ("{% for i in range(10000) %}{% for j in range(10000) %}{{ alertDef.name }}{% endfor %}{% endfor %}", "rendered_value_exceeds_max_length"),
    ("{% for i in range(9999) %}{% for j in range(9999) %}{% if get_context() %}{% endif %}{% endfor %}{% endfor %}", "render_timeout"),
    # giant values
    ('{{ "x" * 1000000000 }}', "render_error"),
    ("{{ range(10**9)|list }}", "invalid_template"),
    ("{{ range(10**9) }}", "render_error"),
    ("{{ 10 ** 10 ** 10 }}", "render_error"),
    ("{{ 9223372036854775807 * 9223372036854775807 }}", "render_error"),
    ('{% set s = "xxxxxxxxxx" %}' + "{% set s = s ~ s %}" * 40 + "{{ s }}", "render_error"),
    ("{% set a = [0] %}" + "{% set a = [a, a] %}" * 60 + "{{ a == a }}", "render_error"),
    ("{% set a = range(9999) %}{{ [a, a, a, a, a, a, a, a, a, a, a] | json_encode(pretty=true) }}", "render_error"),
    ("{{ range(9999) | join(sep=alertDef.description) }}", "render_error"),
    (
        "{% set t = alertDef.description %}" + "{% set t = t ~ t %}" * 5
        + '{{ alertDef.description | replace(from="", to=t) }}',
        "render_error",
    ),
    ("x" * 10_001, "template_exceeds_max_length"),
    ("{{ " + "(" * 3000 + "1" + ")" * 3000 + " }}", "invalid_template"),
    ("{{ " + "[" * 3000 + "]" * 3000 + " }}", "invalid_template"),
    ("{% for i in range(2) %}" * 30 + "{% endfor %}" * 30, "invalid_template"),
    # regex bombs
    ('{{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!" is matching("(a+)+$") }}', "invalid_template"),
    ('{{ alertDef.name is matching("(a|aa)*$") }}', "invalid_template"),
    ('{{ alertDef.name is matching("(\\\\w+\\\\s?)*$") }}', "invalid_template"),
    ('{{ alertDef.name is matching("(x)\\\\1") }}', "invalid_template"),  # no backreferences in Tera
    ('{% set p = "(a+)" ~ "+$" %}{{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa!" is matching(p) }}', "render_error"),
    (
        '{% set s = "aa" %}' + "{% set s = s ~ s %}" * 9 + '{{ s is matching("\\\\w+\\\\s*\\\\w+\\\\s*=") }}',
        "render_error",
    ),
    (
        '{% set s = "ab" %}' + "{% set s = s ~ s %}" * 8
        + '{% for i in range(9999) %}{% if s is matching("(ab|cd)+x") %}{% endif %}{% endfor %}',
        "render_timeout",
    ),
]  # fmt: skip


@pytest.fixture
def quick_deadline(monkeypatch: pytest.MonkeyPatch) -> float:
    monkeypatch.setattr(templating, "RENDER_CPU_SECONDS", 0.25)
    return 0.25


@pytest.mark.parametrize(("template", "code"), HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
def test_hostile_templates_fail_with_a_bounded_error(template: str, code: str, quick_deadline: float) -> None:
    outcome, seconds = render_bounded(template, ALERTS)
    assert isinstance(outcome, TemplateRenderError), f"{template[:80]!r} gave {outcome!r}"
    assert outcome.code == code, outcome.message
    assert seconds < quick_deadline + 2.0


def test_the_default_deadline_stops_a_runaway_loop_within_about_a_second() -> None:
    outcome, seconds = render_bounded(
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}", ALERTS
    )
    assert isinstance(outcome, TemplateRenderError) and outcome.code == "render_timeout"
    assert templating.RENDER_CPU_SECONDS <= seconds < templating.RENDER_CPU_SECONDS + 2.0


def test_self_referencing_and_deep_payloads_stay_bounded() -> None:
    # Structural bounds, not the deadline, must stop these: keep the real 1 s CPU deadline so a
    # slow-but-bounded path on a loaded machine is not mistaken for a runaway.
    node: dict[str, Any] = {"name": "x"}
    node["self"] = node
    first: list[Any] = []
    first.append(first)
    second: list[Any] = []
    second.append(second)
    deep: list[Any] = []
    for _ in range(10_000):
        deep = [deep]
    payload = {"node": node, "first": first, "second": second, "deep": deep}
    for template in (
        "{{ node | json_encode }}",
        "{{ first }}",
        "{{ [node] }}",
        "{{ first == second }}",
        "{{ deep }}",
        "{{ deep | json_encode }}",
        "{{ get_context() | json_encode }}",
    ):
        outcome, _ = render_bounded(template, payload)
        assert isinstance(outcome, TemplateRenderError) and outcome.code == "render_error", template
    nested = '{% for k, v in node.self %}{% if k == "self" %}{% for k2, v2 in v %}{{ k2 }}{% endfor %}{% endif %}{% endfor %}'
    outcome, _ = render_bounded(nested, payload)
    assert outcome == "nameself"


def test_renders_in_parallel_threads_keep_their_own_deadline_and_tracer(quick_deadline: float) -> None:
    runaway = "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}"
    results: dict[int, Any] = {}

    def marker(frame: Any, event: str, arg: Any) -> None:
        return None

    def work(index: int) -> None:
        sys.settrace(marker)
        try:
            if index % 3 == 0:
                try:
                    render_template(runaway, ALERTS)
                except TemplateRenderError as exc:
                    results[index] = exc.code
            else:
                results[index] = {render_template(BY_GROUP_KEY, ALERTS) for _ in range(200)}
            results[index] = (results[index], sys.gettrace() is marker)
        finally:
            sys.settrace(None)

    threads = [threading.Thread(target=work, args=(index,)) for index in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == {
        index: ("render_timeout" if index % 3 == 0 else {"sample-channel"}, True) for index in range(6)
    }


# -- (d) validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("template", "position", "detail"),
    [
        ("{% if x %}a{% endfi %}", "line 1, column 12", "unknown tag 'endfi'"),
        (BY_PRIORITY.replace('== "P3"', "=="), "line 1, column 58", "unexpected 'end of statement block'"),
        ("{{ alertDef.name | }}", "line 1, column 1", "expected token 'name'"),
        ('first line\n{{ alertDef.name }} {{ "unterminated }}', "line 2, column 24", "unexpected char '\"'"),
        (
            "{% if alertDef.name %}\n{% for x in y %}\n{{ x }}\n",
            "line 3, column 8",
            "Unexpected end of template",
        ),
        ("x\n  {{ alertDef.name | lowr }}", "line 2, column 20", "unknown filter 'lowr'"),
        ("{% if alertDef.name is fooo %}{% endif %}", "line 1, column 21", "unknown test 'fooo'"),
        ("{{ x }}\n{{ x }} {{ alertDef.items() }}", "line 2, column 21", "only range() and get_context()"),
        ("{{ x }} {% macro m() %}{% endmacro %}", "line 1, column 9", "{% macro %} is not supported"),
        ('{{ x is matching("(x+)+y") }}', "line 1, column 6", "exponential"),
        ('{{ {"a": 1} }}', "line 1, column 4", "no map literals"),
    ],
)
def test_syntax_errors_carry_line_and_column(template: str, position: str, detail: str) -> None:
    with pytest.raises(UsageError) as caught:
        validate_template(template)
    error = caught.value
    assert (error.code, error.exit_code) == ("invalid_template", EXIT_USAGE)
    assert f"at {position}:" in error.message and detail in error.message
    assert "Jinja" not in error.message and "Tera syntax" in (error.hint or "")


def test_validate_rejects_over_long_templates_and_accepts_valid_ones() -> None:
    with pytest.raises(UsageError) as caught:
        validate_template("{{ x }}" * 2000)
    assert caught.value.code == "template_exceeds_max_length" and "14,000" in caught.value.message
    for template in (CHANNEL_LABEL, BY_PRIORITY, BY_GROUP_KEY, CONTEXT_LABEL, CASES_OVERRIDE, "#general"):
        validate_template(template)


def test_importing_the_module_does_not_import_jinja2() -> None:
    probe = "import sys, cxslack.templating; print('jinja2' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
