"""The high-level tools: `lego_edit` (plan, run and judge), `plan_edit` (plan only), `run_workflow`,
`judge_edit` (score an edit), and the resources `lego://workflow/schema` and `lego://builder/prompt`.

No `from __future__ import annotations` here: the SDK evaluates the tool signatures, whose
resolver markers name local functions.
"""

import base64
import json
import warnings
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import anyio.to_thread
import mcp.types as types
from mcp.server.mcpserver import Context, Resolve, Sample
from mcp.shared.exceptions import MCPDeprecationWarning
from pydantic import BaseModel, Field, WithJsonSchema

from bricks import InvalidInput
from bricks.images import thumbnail
from bricks.render import IMAGE_RESULT_SCHEMA
from builder.editor import MAX_INSTRUCTION, EditFailed, Editor, check_instruction, run_workflow
from builder.executor import Execution, StepFailed, store_inits
from builder.judges.base import JudgeRequest, JudgeUnavailable
from builder.judges.sampling import SamplingJudge
from builder.judges.select import choose_judge
from builder.planners.base import PlannerUnavailable, feedback_text
from builder.planners.sampling import SamplingPlanner
from builder.planners.select import choose
from builder.prompt import instruction_text

from .edit_view import VIEW_KEY, view_data, wants_view
from .results import error_result, image_content
from .tasks import has_request, progress_of

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from .runtime import Runtime

ImageArg = Annotated[str, Field(description="Image reference")]
MaskArg = Annotated[str | None, Field(description="The region meant (mask reference).")]
InstructionArg = Annotated[str, Field(description="What to change, e.g. 'blur the background'.")]
InputsArg = Annotated[dict[str, str] | None, Field(description="More images, e.g. a logo to add: name -> image reference (init[<name>]).")]
ImageResults = Annotated[list[dict[str, Any]], WithJsonSchema({"type": "array", "items": IMAGE_RESULT_SCHEMA})]


class EditResult(BaseModel):
    results: ImageResults
    reasoning: str
    workflow: dict[str, Any]
    timings: dict[str, float]
    warnings: list[str]
    attempts: list[dict[str, Any]]
    judge: dict[str, Any]
    chosen_attempt: int


class JudgeResult(BaseModel):
    overall: float
    semantic_consistency: int
    perceptual_quality: int
    scores: dict[str, int]
    critique: str
    judge: str
    seconds: float


class PlanResult(BaseModel):
    reasoning: str
    workflow: dict[str, Any]
    warnings: list[str]
    attempts: list[dict[str, Any]]


class RunResult(BaseModel):
    results: ImageResults
    workflow: dict[str, Any]
    timings: dict[str, float]
    warnings: list[str]


def register(server: "MCPServer[Any]", runtime: "Runtime") -> None:
    registry, settings, prompt = runtime.registry, runtime.settings, runtime.prompt

    def wants_sampling(ctx: Context[Any, Any]) -> bool:
        caps = _capabilities(ctx)
        return choose(settings.planning, registry.model_config, can_sample=caps is not None and caps.sampling is not None) == "sampling"

    async def sample_first_plan(
        image: str, instruction: str, mask: str | None, ctx: Context[Any, Any], inputs: dict[str, str] | None = None
    ) -> Sample | None:
        """Resolver: when the host's model is the planner, ask it for the first plan (both protocol eras)."""
        if not wants_sampling(ctx) or not instruction.strip() or len(instruction) > MAX_INSTRUCTION:
            return None  # the tool body reports a bad instruction

        def preview() -> tuple[bytes, str]:
            uri = store_inits(registry, {"image": image}, {"image": "Image"})["image"]
            return thumbnail(registry.store.get(registry.store.parse_uri(uri)), max_side=1024, max_bytes=4_000_000)

        try:
            data, mime = await anyio.to_thread.run_sync(preview)  # decoding and encoding: off the loop
        except InvalidInput:
            return None  # the tool body reports the bad image
        text = prompt.render(instruction_text(instruction, mask is not None, list(inputs or ())))
        message = types.SamplingMessage(
            role="user",
            content=[types.ImageContent(data=base64.b64encode(data).decode(), mime_type=mime), types.TextContent(text=text)],
        )
        return Sample([message], max_tokens=4096, temperature=0.2)

    def editor_for(ctx: Context[Any, Any], sampled: types.CreateMessageResult | None) -> Editor:
        planner = SamplingPlanner(_text_of(sampled), _legacy_ask(ctx, feedback_text)) if sampled is not None else None
        caps = _capabilities(ctx)
        can_sample = caps is not None and caps.sampling is not None
        return runtime.editor(planner, _legacy_ask(ctx, _judge_messages) if can_sample else None)

    async def edit(image: str, instruction: str, mask: str | None, inputs: dict[str, str] | None, ctx: Context[Any, Any], sampled: Any, run: bool):
        """lego_edit (run=True) and plan_edit: plan, check, maybe run; the tool result either way."""
        try:
            outcome = await editor_for(ctx, sampled).edit(image, instruction, mask, inputs, run=run, on_progress=progress_of(ctx))
        except (EditFailed, InvalidInput, PlannerUnavailable) as exc:
            return error_result(exc)
        if run:
            structured = {**outcome.plan(), "timings": outcome.execution.timings(), **outcome.verification()}
            return await _with_images(runtime, outcome.execution, "lego_edit", structured, wants_view(ctx))
        structured = outcome.plan()
        return types.CallToolResult(content=[types.TextContent(text=json.dumps(structured))], structured_content=structured)

    def planning_tool(name: str, description: str, result: type[BaseModel], run: bool) -> None:
        """lego_edit and plan_edit: one signature (the SDK reads the schema from it), one body."""

        async def tool(
            image: ImageArg,
            instruction: InstructionArg,
            ctx: Context[Any, Any],
            mask: MaskArg = None,
            inputs: InputsArg = None,
            sampled: Annotated[types.CreateMessageResult | None, Resolve(sample_first_plan)] = None,
        ) -> Annotated[types.CallToolResult, result]:
            return await edit(image, instruction, mask, inputs, ctx, sampled, run=run)

        server.tool(name=name, description=description, annotations=types.ToolAnnotations(read_only_hint=True))(tool)

    planning_tool("lego_edit", (
        "Edit an image as a plain-language instruction says: the Builder plans a workflow of these tools "
        "and the server runs it, judges the result and re-plans when it scores low. Returns the best results, "
        "the plan, its timings and every plan tried with its scores."
    ), EditResult, run=True)
    planning_tool("plan_edit", "Plan an edit without running it: the reasoning and the checked workflow, for run_workflow.",
                  PlanResult, run=False)

    @server.tool(
        name="run_workflow",
        description=(
            "Run a workflow (its JSON Schema, with the tools' workflow ids: the resource lego://workflow/schema); "
            "nothing runs if it is invalid. init[image] is image, init[mask] is mask, init[<name>] is inputs[<name>]."
        ),
        annotations=types.ToolAnnotations(read_only_hint=True),
    )
    async def run_workflow_tool(
        workflow: Annotated[dict[str, Any] | str, Field(description="{process, pipeline: [steps..., {result}]}, as an object or JSON text.")],
        image: ImageArg,
        ctx: Context[Any, Any],
        mask: MaskArg = None,
        inputs: InputsArg = None,
    ) -> Annotated[types.CallToolResult, RunResult]:
        try:
            parsed, warnings, execution = await run_workflow(registry, workflow, image, mask, inputs, on_progress=progress_of(ctx))
        except (StepFailed, InvalidInput) as exc:
            return error_result(exc)
        return await _with_images(runtime, execution, "run_workflow", {
            "workflow": parsed.to_json(),
            "timings": execution.timings(),
            "warnings": warnings,
        }, wants_view(ctx))

    def wants_sampled_verdict(ctx: Context[Any, Any]) -> bool:
        caps = _capabilities(ctx)
        return choose_judge(settings.planning, registry.model_config, can_sample=caps is not None and caps.sampling is not None) == "sampling"

    async def sample_verdict(image: str, edited: str, instruction: str, ctx: Context[Any, Any]) -> Sample | None:
        """Resolver: when the host's model is the judge, ask it before the body runs (both protocol eras)."""
        if not wants_sampled_verdict(ctx) or not instruction.strip():
            return None
        try:  # decoding and encoding: off the loop
            messages = await anyio.to_thread.run_sync(lambda: _judge_messages(judge_request(image, edited, instruction)))
        except InvalidInput:
            return None  # the tool body reports it
        return Sample(messages, max_tokens=1024, temperature=0.0)

    def judge_request(image: str, edited: str, instruction: str) -> JudgeRequest:
        check_instruction(instruction, "give the instruction the edit was made for")
        uris = store_inits(registry, {"image": image, "edited": edited}, {"image": "Image", "edited": "Image"})
        source, result = (registry.store.get(registry.store.parse_uri(uris[k])) for k in ("image", "edited"))
        return JudgeRequest(source, result, instruction.strip())

    @server.tool(
        name="judge_edit",
        description=(
            "Score an edit as GEdit-Bench does (VIEScore): semantic consistency and perceptual quality, each 0-10, "
            "overall sqrt(SC x PQ), and a short critique."
        ),
        annotations=types.ToolAnnotations(read_only_hint=True),
    )
    async def judge_edit_tool(
        image: Annotated[str, Field(description="The original image (reference).")],
        edited: Annotated[str, Field(description="The edited image (reference).")],
        instruction: Annotated[str, Field(description="The instruction the edit was made for.")],
        ctx: Context[Any, Any],
        sampled: Annotated[types.CreateMessageResult | None, Resolve(sample_verdict)] = None,
    ) -> Annotated[types.CallToolResult, JudgeResult]:
        try:
            request = await anyio.to_thread.run_sync(judge_request, image, edited, instruction)
            if sampled is not None:
                judge = SamplingJudge(lambda _: _answer(sampled))
            else:
                judge, why_not = runtime.judge()
                if judge is None:
                    raise JudgeUnavailable(why_not)
            verdict = await judge.judge(request)
        except (InvalidInput, JudgeUnavailable) as exc:
            return error_result(exc)
        structured = verdict.as_dict()
        return types.CallToolResult(content=[types.TextContent(text=json.dumps(structured))], structured_content=structured)

    @server.resource("lego://workflow/schema", name="workflow-schema", mime_type="application/json",
                     description="JSON Schema of a workflow for run_workflow, over the bricks available now")
    def workflow_schema() -> str:
        from builder.schema import workflow_json_schema

        return json.dumps(workflow_json_schema([b.spec for b in registry.available()]), indent=1)

    @server.resource("lego://builder/prompt", name="builder-prompt", mime_type="text/plain",
                     description="The Builder's current prompt, rendered from the available bricks")
    def builder_prompt() -> str:
        return prompt.render("<instruction>")


async def _with_images(
    runtime: "Runtime", execution: Execution, label: str, structured: dict[str, Any], view: bool
) -> types.CallToolResult:
    """The result of a run: per image a link and a thumbnail, the structured result, and for the
    edit view (`view`) its data in `_meta`."""

    def contents() -> tuple[list[tuple[dict[str, Any], list[types.ContentBlock]]], dict[str, Any] | None]:
        settings = runtime.settings.results
        images = [image_content(runtime.registry, settings, f"{label}.result{i}", image) for i, image in enumerate(execution.results, 1)]
        return images, {VIEW_KEY: view_data(runtime.registry, execution)} if view else None

    content: list[types.ContentBlock] = []
    results = []
    images, meta = await anyio.to_thread.run_sync(contents)  # thumbnails and saved copies: off the loop, one hop
    for entry, blocks in images:
        results.append(entry)
        content += blocks
    structured = {"results": results, **structured}
    content.append(types.TextContent(text=json.dumps(structured)))
    return types.CallToolResult(content=content, structured_content=structured, _meta=meta)


def _capabilities(ctx: Context[Any, Any]) -> types.ClientCapabilities | None:
    """The caller's capabilities; none for a call with no request behind it (a task's work)."""
    return ctx.client_capabilities if has_request(ctx) else None


def _text_of(result: types.CreateMessageResult) -> str:
    content = result.content if isinstance(result.content, list) else [result.content]
    return "".join(c.text for c in content if isinstance(c, types.TextContent))


def _legacy_ask(ctx: Context[Any, Any], messages: Callable[[Any], str | list[types.SamplingMessage]]):
    """A sampling request in the middle of a call (a re-plan, a judgement): handshake-era sessions only.
    `messages` turns the request asked about into the text or messages sent."""
    if not has_request(ctx) or ctx.request_context.session is None:
        return None
    if str(getattr(ctx, "protocol_version", "")) >= "2026-07-28":
        return None

    async def ask(request: Any) -> str:
        sent = await anyio.to_thread.run_sync(messages, request)  # images are encoded: off the loop
        if isinstance(sent, str):
            sent = [types.SamplingMessage(role="user", content=types.TextContent(text=sent))]
        with warnings.catch_warnings():  # deprecated in 2026-07-28 (SEP-2577), still the handshake era's way
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            result = await ctx.session.create_message(sent, max_tokens=4096, related_request_id=ctx.request_id)
        return _text_of(result)

    return ask


def _judge_messages(request: JudgeRequest) -> list[types.SamplingMessage]:
    """The original, the edit and the rubric, as one sampling message."""

    def image(pixels: Any) -> types.ImageContent:
        data, mime = thumbnail(pixels, max_side=1024, max_bytes=4_000_000)
        return types.ImageContent(data=base64.b64encode(data).decode(), mime_type=mime)

    content = [image(request.source), image(request.edited), types.TextContent(text=request.prompt())]
    return [types.SamplingMessage(role="user", content=content)]


async def _answer(result: types.CreateMessageResult) -> str:
    return _text_of(result)
