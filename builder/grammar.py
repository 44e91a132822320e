"""The decoding grammar of a workflow: a constrained Builder can only write valid plans.

The workflow is written one pipeline element at a time. Before each element a grammar (the
Lark dialect of llguidance) is built from the available bricks and the steps written so far:
step k names a brick and gives all its declared inputs in order, each one a reference of a
fitting type (`init[...]` or a non-null output of an earlier step; a Mask may feed an Image,
an Int a Float), a literal in the input's range, or null where the input is optional; its
outputs are `stepk[key]` or null. The result lists produced images and masks only. So every
plan these grammars accept also passes `validate_workflow`.

Strings, numbers, whitespace and the number of steps are bounded, so is a plan's length
(`WorkflowGrammar.max_bytes`): a generation given that many tokens always finishes.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from bricks.spec import IMAGE_TYPES, BrickSpec, Param
from bricks.types import TYPES, compatible

from .number_regex import decimal_regex, int_regex

Piece = tuple[str, int]  # a Lark expression and the most bytes it can match


class GrammarError(Exception):
    """The grammar cannot be built, or a token or text does not follow it."""


@dataclass(frozen=True)
class GrammarLimits:
    max_steps: int = 8
    max_string: int = 80
    """Characters in a string literal (a prompt, a style)."""
    max_whitespace: int = 24
    """Whitespace before any JSON token: room for the indented layout the Builder was trained on."""
    decimals: int = 3
    """Fractional digits of a number literal."""

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.max_string < 1 or self.max_whitespace < 0 or self.decimals < 0:
            raise ValueError(f"bad grammar limits: {self}")


@dataclass(frozen=True)
class _Value:
    """Something a step may cite: `init[image]`, `step2[mask]`, with its type."""

    ref: str
    type: str


class WorkflowGrammar:
    """The grammars of one plan: `element(steps)` gives the next element's grammar."""

    def __init__(
        self, bricks: Sequence[BrickSpec], inits: Mapping[str, str], process: str, limits: GrammarLimits = GrammarLimits()
    ):
        self.bricks = {b.builder_id: b for b in bricks}
        self.inits = [_Value(f"init[{name}]", kind) for name, kind in inits.items()]
        self.process = process
        self.limits = limits
        if not self.bricks:
            raise GrammarError("no bricks to plan with")

    def element(self, steps: Sequence[Mapping[str, Any]]) -> str:
        """The grammar of the next pipeline element, given the steps written so far (as JSON).

        The first element starts the document; a step element ends with its comma; the result
        element ends the document. Each step element is captured as `step`.
        """
        lark = _Lark(self.limits.max_whitespace)
        values = self._values(steps)
        number = len(steps) + 1
        alternatives = []
        if number <= self.limits.max_steps:
            # the last possible step must produce an image if none exists yet, so a result can follow
            need_image = number == self.limits.max_steps and not any(v.type in IMAGE_TYPES for v in values[len(self.inits):])
            step = self._step(lark, number, values, need_image)
            if step is not None:
                lark.rule("step[capture]", step[0])
                alternatives.append(f"step {lark.tail()[0]}")
        result = self._result(lark, [v for v in values[len(self.inits):] if v.type in IMAGE_TYPES])
        if result is not None:
            alternatives.append(_seq(result, lark.piece("]"), lark.piece("}"))[0])
        if not alternatives:
            raise GrammarError(f"no brick can run as step {number} with the values at hand")
        head = self._head(lark)[0] + " " if number == 1 else ""
        lark.rule("start", f"{head}({' | '.join(alternatives)})")
        return lark.text()

    def max_bytes(self) -> int:
        """An upper bound on the UTF-8 length of any workflow the grammars accept."""
        lark = _Lark(self.limits.max_whitespace)
        last = self.limits.max_steps
        produced = [_Value(f"step{last}[{o.name}]", o.type) for b in self.bricks.values() for o in b.outputs]
        step = self._step(lark, last, self.inits + produced, need_image=False)
        most = max(sum(o.type in IMAGE_TYPES for o in b.outputs) for b in self.bricks.values())
        longest = max((v for v in produced if v.type in IMAGE_TYPES), key=lambda v: len(v.ref), default=produced[0])
        result = _seq(self._result(lark, [longest] * max(1, last * most)), lark.piece("]"), lark.piece("}"))
        return self._head(lark)[1] + last * ((step[1] if step else 0) + lark.tail()[1]) + result[1]

    # -- pieces ------------------------------------------------------------------
    def _values(self, steps: Sequence[Mapping[str, Any]]) -> list[_Value]:
        values = list(self.inits)
        for step in steps:
            spec = self.bricks[step["model"]]
            kinds = {o.name: o.type for o in spec.outputs}
            values += [_Value(ref, kinds[key]) for key, ref in step["output"].items() if ref is not None]
        return values

    def _head(self, lark: _Lark) -> Piece:
        return _seq(
            lark.piece("{"), lark.piece('"process"'), lark.piece(":"),
            lark.piece(json.dumps(self.process, ensure_ascii=False)), lark.piece(","),
            lark.piece('"pipeline"'), lark.piece(":"), lark.piece("["),
        )

    def _step(self, lark: _Lark, number: int, values: list[_Value], need_image: bool) -> Piece | None:
        bricks = [p for spec in self.bricks.values() if (p := self._brick(lark, spec, number, values, need_image))]
        if not bricks:
            return None
        return _object(lark, [("step", lark.piece(str(number))), ("model", _alt(bricks))], open_end=True)

    def _brick(self, lark: _Lark, spec: BrickSpec, number: int, values: list[_Value], need_image: bool) -> Piece | None:
        """`"RES", "input": {...}, "output": {...}}`: the rest of a step element for one brick."""
        if need_image and not any(o.type in IMAGE_TYPES for o in spec.outputs):
            return None
        ways = []  # one per input set: its inputs, and the outputs those inputs produce
        for group in spec.input_sets or (None,):
            inputs = self._inputs(lark, spec, values, group)
            outputs = self._outputs(lark, spec, number, group, need_image)
            if inputs is not None and outputs is not None:
                ways.append(_seq(_object(lark, inputs), lark.piece(","), lark.piece('"output"'), lark.piece(":"), _object(lark, outputs)))
        if not ways:
            return None  # a required input (or every input set) nothing here can feed
        body = _seq(
            lark.piece(json.dumps(spec.builder_id)), lark.piece(","), lark.piece('"input"'), lark.piece(":"),
            _alt(ways), lark.piece("}"),
        )
        return lark.rule(f"brick_{spec.builder_id.lower().replace('-', '_')}", body[0]), body[1]

    def _inputs(
        self, lark: _Lark, spec: BrickSpec, values: list[_Value], group: tuple[str, ...] | None
    ) -> list[tuple[str, Piece]] | None:
        """The input members for one of the spec's input sets (`group`), or None if it cannot be fed.

        Inputs of the chosen set must be given, those of the other sets must be null."""
        in_sets = {n for g in spec.input_sets for n in g}
        members = []
        for param in spec.inputs:
            if group is not None and param.name in in_sets and param.name not in group:
                options = [lark.piece("null")]
            else:
                options = self._options(lark, param, values)
                if not param.required and not (group is not None and param.name in group):
                    options.append(lark.piece("null"))
            if not options:
                return None
            members.append((param.name, _alt(options)))
        return members

    def _outputs(
        self, lark: _Lark, spec: BrickSpec, number: int, group: tuple[str, ...] | None, need_image: bool
    ) -> list[tuple[str, Piece]] | None:
        """The output members when the inputs of `group` are given; None if no image can come out
        where one is needed."""
        in_sets = {n for g in spec.input_sets for n in g}
        members, image = [], False
        for out in spec.outputs:
            null = lark.piece("null")
            if group is not None and out.when_given in in_sets and out.when_given not in group:
                members.append((out.name, null))  # its input is null in this way of calling
                continue
            ref = lark.piece(json.dumps(f"step{number}[{out.name}]"))
            forced = need_image and out.type in IMAGE_TYPES
            image |= forced
            members.append((out.name, ref if forced else _alt([ref, null])))
        return None if need_image and not image else members

    def _options(self, lark: _Lark, param: Param, values: list[_Value]) -> list[Piece]:
        options = [lark.piece(json.dumps(v.ref)) for v in values if compatible(v.type, param.type)]
        kind = TYPES[param.type].json  # the fragment of each JSON kind
        if kind is None:  # images and masks: references only
            return options
        if kind == "string":
            if param.enum:
                return options + [lark.piece(json.dumps(e, ensure_ascii=False)) for e in param.enum]
            n = self.limits.max_string
            return options + [lark.regex(_string_terminal(n), 2 + 4 * n)]
        if kind == "boolean":
            return options + [lark.piece("true"), lark.piece("false")]
        lo = param.minimum if param.minimum is not None else -1e6
        hi = param.maximum if param.maximum is not None else 1e6
        if kind == "integer":
            lo, hi = math.ceil(lo), math.floor(hi)
            rx = int_regex(lo, hi)
            return options + [lark.regex(f"/{rx}/", 1 + len(str(max(abs(lo), abs(hi)))))]
        try:
            rx = decimal_regex(Fraction(str(lo)), Fraction(str(hi)), self.limits.decimals)
        except ValueError as exc:
            raise GrammarError(str(exc)) from None
        return options + [lark.regex(f"/{rx}/", 2 + self.limits.decimals + len(str(int(max(abs(lo), abs(hi))))))]

    def _result(self, lark: _Lark, images: list[_Value]) -> Piece | None:
        """`{"result": "[step2[image], step1[mask]]"}`, naming produced images and masks only."""
        if not images:
            return None
        refs = "(" + "|".join(dict.fromkeys(v.ref.replace("[", r"\[").replace("]", r"\]") for v in images)) + ")"
        longest = max(len(v.ref) for v in images)
        listing = lark.regex(rf'/"\[{refs}(, ?{refs}){{0,{len(images) - 1}}}\]"/', 4 + len(images) * (longest + 2))
        return _seq(lark.piece("{"), lark.piece('"result"'), lark.piece(":"), listing, lark.piece("}"))


class _Lark:
    """The terminals and rules of one grammar; every terminal may start with whitespace."""

    def __init__(self, whitespace: int):
        self.whitespace = whitespace
        self.terminals: dict[str, str] = {}
        self.rules: dict[str, str] = {}

    def piece(self, json_text: str) -> Piece:
        """A fixed bit of JSON text, e.g. '"step"' or '{'."""
        return self.regex(json.dumps(json_text, ensure_ascii=False), len(json_text.encode()))

    def regex(self, body: str, max_bytes: int) -> Piece:
        """A terminal from a Lark string, regex or terminal expression."""
        name = self.terminals.setdefault(body, f"T{len(self.terminals)}")
        return name, max_bytes + self.whitespace

    def tail(self) -> Piece:
        """The comma after a step, with the whitespace after it (so a token like ',\\n' fits)."""
        return self.regex(rf"/,[ \t\n]{{0,{self.whitespace}}}/", 1 + self.whitespace)

    def rule(self, name: str, body: str) -> str:
        self.rules[name] = body
        return name.partition("[")[0]

    def text(self) -> str:
        lines = [f"{name}: {body}" for name, body in reversed(self.rules.items())]
        ws = ""
        if self.whitespace:
            lines.append(f"WS: /[ \\t\\n]{{0,{self.whitespace}}}/")
            ws = "WS "
        lines += [f"{name}: {ws}{body}" for body, name in self.terminals.items()]
        return "\n".join(lines) + "\n"


def _seq(*pieces: Piece) -> Piece:
    return " ".join(p[0] for p in pieces), sum(p[1] for p in pieces)


def _alt(pieces: Sequence[Piece]) -> Piece:
    return "(" + " | ".join(dict.fromkeys(p[0] for p in pieces)) + ")", max(p[1] for p in pieces)


def _object(lark: _Lark, members: Sequence[tuple[str, Piece]], open_end: bool = False) -> Piece:
    """`{"a": ..., "b": ...}` with the members in order; `open_end` leaves it unclosed."""
    parts = [lark.piece("{")]
    for i, (key, value) in enumerate(members):
        if i:
            parts.append(lark.piece(","))
        parts += [lark.piece(json.dumps(key)), lark.piece(":"), value]
    if not open_end:
        parts.append(lark.piece("}"))
    return _seq(*parts)


def _string_terminal(n: int) -> str:
    """A JSON string of 1..n characters that cannot be read as a reference.

    Only the escapes \\" \\\\ \\/ are allowed, so the text cannot spell `init[...]` or
    `stepN[...]` through escapes; a reference after whitespace is refused too, as the workflow
    parser strips it.
    """
    chars = r'(\\["\\\/]|[^"\\\x00-\x1F\x7F])'
    return rf'(/"{chars}{{1,{n}}}"/ & ~/"\s*(init|step\d+)\[(?s:.*)/)'


# -- following the grammars token by token -------------------------------------------
class GrammarCompiler:
    """Compiles element grammars for one llguidance tokenizer, keeping the most recent ones:
    compiling takes milliseconds at a real vocabulary size, copying a compiled one microseconds,
    and the states after the first element recur from plan to plan."""

    def __init__(self, tokenizer: Any, size: int = 256):
        self.tokenizer = tokenizer
        self._compiled = functools.lru_cache(size)(self._compile)

    def matcher(self, grammar_text: str) -> Any:
        """A fresh llguidance matcher for the grammar."""
        return self._compiled(grammar_text).deep_copy()

    def _compile(self, grammar_text: str) -> Any:
        import llguidance

        matcher = llguidance.LLMatcher(self.tokenizer, llguidance.LLMatcher.grammar_from_lark(grammar_text), log_level=0)
        if matcher.is_error():
            raise GrammarError(f"bad grammar: {matcher.get_error()}")
        return matcher


@functools.lru_cache(maxsize=4)
def compiler_for(tokenizer: Any) -> GrammarCompiler:
    """The compiler of one llguidance tokenizer, kept while its model is (a few models at most)."""
    return GrammarCompiler(tokenizer)


class StepwiseMatcher:
    """Walks one workflow through its elements, rebuilding the grammar after each step.

    `consume` takes the sampled tokens; `unsafe_compute_mask_ptr` writes the allowed next tokens,
    as an llguidance matcher's does.
    `done` turns true once the result element closes the document.
    """

    def __init__(self, grammar: WorkflowGrammar, compiler: GrammarCompiler):
        self.grammar = grammar
        self.compiler = compiler
        self.steps: list[dict[str, Any]] = []
        self.done = False
        self._matcher = compiler.matcher(grammar.element(self.steps))

    def consume(self, token: int) -> None:
        if self.done or not self._matcher.consume_token(token):
            raise GrammarError(f"token {token} breaks the workflow grammar: {self._matcher.get_error() or 'already done'}")
        if self._matcher.is_accepting():
            step = self._matcher.get_capture("step")
            if step is None:
                self.done = True
            else:
                self.steps.append(json.loads(step))
                self._matcher = self.compiler.matcher(self.grammar.element(self.steps))

    def unsafe_compute_mask_ptr(self, pointer: int, size: int) -> None:
        """Write the allowed next tokens, one bit each, into `size` bytes of int32 memory at `pointer`."""
        self._matcher.unsafe_compute_mask_ptr(pointer, size)
