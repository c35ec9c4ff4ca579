"""Compiling a template: Tera's syntax checked, jinja2's nodes rewritten to Tera's meaning, on a sandbox."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, NoReturn

from cxslack.templating.limits import MAX_TEMPLATE_CHARS, SYNTAX_HINT, TemplateRenderError, type_name
from cxslack.templating.regex_guard import RegexRefused, regex
from cxslack.templating.tera import (
    FILTERS,
    TESTS,
    check_built,
    check_operands,
    check_result,
    tera_range,
    to_text,
)

if TYPE_CHECKING:
    from jinja2 import Template, TemplateSyntaxError, nodes
    from jinja2.sandbox import SandboxedEnvironment


_LOOP_FIELDS = frozenset({"index", "index0", "first", "last"})  # Tera's loop variables
# Statement nodes whose tag is not their lower-cased class name, for "{% … %} is not supported".
_TAG_NAMES = {
    "AssignBlock": "set",
    "CallBlock": "call",
    "FilterBlock": "filter",
    "FromImport": "from",
    "ExprStmt": "do",
}


class _Engine(NamedTuple):
    env: SandboxedEnvironment
    prepare: Callable[[str, nodes.Template], nodes.Template]  # Tera checks, then Tera rewrites


@functools.lru_cache(maxsize=256)
def compile_template(text: str) -> Template:
    if len(text) > MAX_TEMPLATE_CHARS:
        raise TemplateRenderError(
            "template_exceeds_max_length",
            f"template is {len(text):,} characters long; the limit is {MAX_TEMPLATE_CHARS:,}",
            "Shorten the template, for example with fewer {% elif %} branches.",
        )
    from jinja2 import TemplateSyntaxError

    engine = _engine()
    try:
        ast = engine.env.parse(text)
    except TemplateSyntaxError as exc:
        raise _invalid(text, exc.message or str(exc), _parse_error_position(engine.env, text, exc)) from None
    except (RecursionError, MemoryError):
        raise _invalid(text, "the template is nested too deeply", None) from None
    try:
        return engine.env.from_string(engine.prepare(text, ast))
    except TemplateSyntaxError as exc:
        raise _invalid(text, exc.message or str(exc), (exc.lineno, None)) from None
    except (SyntaxError, RecursionError, MemoryError):  # Python's own limits on the generated code
        raise _invalid(text, "the template is nested too deeply", None) from None


def _invalid(text: str, detail: str, position: tuple[int, int | None] | None) -> TemplateRenderError:
    # The position replaces the lexer's " at <offset>"; the product is Tera, not Jinja.
    detail = re.sub(r" at \d+$", "", detail).replace("Jinja was looking for", "Expected")
    where = ""
    if position is not None:
        line, column = position
        where = f" at line {line}" + (f", column {column}" if column is not None else "")
    return TemplateRenderError("invalid_template", f"invalid template{where}: {detail}", SYNTAX_HINT)


def _parse_error_position(
    env: SandboxedEnvironment, text: str, exc: TemplateSyntaxError
) -> tuple[int, int | None]:
    """Line and column of a syntax error; jinja reports only the line.

    The lexer names the offset of a bad character; the end of input is where an unclosed block is
    noticed; any other error lies in the first tag whose prefix of the template reproduces it.
    """
    from jinja2 import TemplateSyntaxError

    normalized = text.replace("\r\n", "\n").replace("\r", "\n")  # the lexer's own offsets
    offset = re.search(r" at (\d+)$", exc.message or "")
    if offset:
        return _line_column(normalized, int(offset.group(1)))
    if (exc.message or "").startswith("Unexpected end of template"):
        return _line_column(normalized, len(normalized.rstrip("\n")))
    starts = [match.start() for match in re.finditer(r"\{[{%#]", normalized)]
    if not starts:
        return exc.lineno, None

    def reproduces(tag: int) -> bool:
        end = starts[tag + 1] if tag + 1 < len(starts) else len(normalized)
        try:
            env.parse(normalized[:end])
        except TemplateSyntaxError as prefix_exc:
            return prefix_exc.message == exc.message and prefix_exc.lineno == exc.lineno
        return False

    low, high = 0, len(starts) - 1  # a parse error, once reached, persists in every longer prefix
    while low < high:
        middle = (low + high) // 2
        if reproduces(middle):
            high = middle
        else:
            low = middle + 1
    return _line_column(normalized, starts[low])


def _line_column(text: str, offset: int) -> tuple[int, int]:
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _pattern_position(text: str, lineno: int, pattern: str) -> tuple[int, int | None]:
    """Line and column of the first match of `pattern` on line `lineno`; jinja's nodes know only the line."""
    lines = text.splitlines()
    found = re.search(pattern, lines[lineno - 1]) if 0 < lineno <= len(lines) else None
    return lineno, found.start() + 1 if found else None


@functools.cache
def _engine() -> _Engine:
    # jinja2 costs ~100 ms to import: only commands that render templates pay for it.
    from jinja2 import StrictUndefined, nodes, pass_context
    from jinja2.exceptions import SecurityError
    from jinja2.runtime import Context, LoopContext, Undefined
    from jinja2.sandbox import SandboxedEnvironment
    from jinja2.tests import test_defined, test_undefined
    from jinja2.visitor import NodeTransformer

    class TeraUndefined(StrictUndefined):
        """A missing field fails wherever it is used, as in Tera, except that a bare
        `{% if missing %}` is false, also as in Tera."""

        def __bool__(self) -> bool:  # type: ignore[override]  # StrictUndefined's raises (NoReturn)
            return False

    class TeraSandbox(SandboxedEnvironment):
        intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})

        def getattr(self, obj: Any, attribute: str) -> Any:
            if isinstance(obj, LoopContext) and attribute in _LOOP_FIELDS:
                return getattr(obj, attribute)
            return self.getitem(obj, attribute)

        def getitem(self, obj: Any, argument: Any) -> Any:
            # Tera values are JSON: `.` and `[]` read keys and indexes, never Python attributes.
            if isinstance(obj, Undefined):
                return obj  # Tera resolves the whole path: `a.b.c is defined` is false, not an error
            if isinstance(obj, dict):
                if argument in obj:
                    return obj[argument]
                return self.undefined(hint=f"field {argument!r} is missing", obj=obj, name=argument)
            if isinstance(obj, list | str) and isinstance(argument, int) and not isinstance(argument, bool):
                if -len(obj) <= argument < len(obj):
                    return obj[argument]
                return self.undefined(hint=f"index {argument} is out of range ({len(obj)} items)")
            raise SecurityError(f"cannot read {argument!r} from {type_name(obj)}")

        def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
            if not (isinstance(__obj, Undefined) or __obj is tera_range or __obj is get_context):
                raise SecurityError(f"{type_name(__obj)} cannot be called")
            return __context.call(__obj, *args, **kwargs)

        def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
            check_operands(operator, left, right)
            return check_result(self.binop_table[operator](left, right))

    @pass_context
    def get_context(context: Context) -> dict[str, Any]:
        variables = context.get_all().items()
        return check_built({k: v for k, v in variables if not (k in env.globals and env.globals[k] is v)})

    @pass_context
    def finalize(context: Context, value: Any) -> str:
        # pass_context also stops jinja from evaluating constant {{ … }} at compile time, where no
        # deadline applies.
        return to_text(value)

    env = TeraSandbox(
        undefined=TeraUndefined,
        autoescape=False,
        finalize=finalize,
        optimized=False,  # no constant folding: every filter and test runs under the deadline
        extensions=["jinja2.ext.loopcontrols"],  # Tera's {% break %} and {% continue %}
    )
    env.globals = {"range": tera_range, "get_context": get_context}
    env.filters = dict(FILTERS)
    env.tests = {"defined": test_defined, "undefined": test_undefined, **TESTS}
    statements = (nodes.Output, nodes.If, nodes.For, nodes.Assign, nodes.Break, nodes.Continue)

    def check(text: str, ast: nodes.Template) -> None:
        def fail(detail: str, node: nodes.Node, pattern: str) -> NoReturn:
            raise _invalid(text, detail, _pattern_position(text, node.lineno, pattern))

        for node in ast.find_all(nodes.Node):
            if isinstance(node, nodes.Stmt) and not isinstance(node, statements):
                tag = _TAG_NAMES.get(type(node).__name__, type(node).__name__.lower())
                fail(f"{{% {tag} %}} is not supported in connector templates", node, rf"\{{%-?\s*{tag}\b")
            elif isinstance(node, nodes.For) and node.recursive:
                fail("recursive loops are not supported", node, r"\brecursive\b")
            elif isinstance(node, nodes.Dict):
                fail("Tera has no map literals", node, r"(?<!\{)\{(?![{%#])")
            elif isinstance(node, nodes.Tuple) and node.ctx == "load":
                fail("Tera has no tuples; use an array [a, b]", node, r"\(")
            elif isinstance(node, nodes.Filter) and node.name not in env.filters:
                fail(f"unknown filter {node.name!r}", node, rf"\|\s*{re.escape(node.name)}\b")
            elif isinstance(node, nodes.Test) and node.name not in env.tests:
                fail(f"unknown test {node.name!r}", node, rf"\bis\s+(not\s+)?{re.escape(node.name)}\b")
            elif isinstance(node, nodes.Call) and not (
                isinstance(node.node, nodes.Name) and node.node.name in env.globals
            ):
                callee = (
                    node.node.attr if isinstance(node.node, nodes.Getattr) else getattr(node.node, "name", "")
                )
                fail("only range() and get_context() can be called", node, rf"{re.escape(callee)}\s*\(")
            elif isinstance(node, nodes.Test) and node.name == "matching" and node.args:
                pattern = node.args[0]
                if isinstance(pattern, nodes.Const) and isinstance(pattern.value, str):
                    try:
                        regex(pattern.value)
                    except RegexRefused as exc:
                        fail(f"matching: {exc}", node, r"\bis\s+(not\s+)?matching\b")

    class TeraRewriter(NodeTransformer):
        """Give jinja's nodes Tera's meaning where the two differ."""

        def filtered(self, node: nodes.Node, name: str, args: Sequence[nodes.Node]) -> nodes.Filter:
            new = nodes.Filter(node, name, list(args), [], None, None, lineno=node.lineno)
            new.set_environment(env)
            return new

        def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
            self.generic_visit(node)
            return self.filtered(node.nodes[0], "tera concat", node.nodes[1:])

        def visit_List(self, node: nodes.List) -> nodes.Node:
            self.generic_visit(node)
            return self.filtered(node, "tera array", [])

        def visit_For(self, node: nodes.For) -> nodes.Node:
            self.generic_visit(node)
            if isinstance(node.target, nodes.Tuple):
                node.iter = self.filtered(node.iter, "tera pairs", [])
            return node

    def prepare(text: str, ast: nodes.Template) -> nodes.Template:
        check(text, ast)
        rewritten: nodes.Template = TeraRewriter().visit(ast)
        return rewritten

    return _Engine(env, prepare)
