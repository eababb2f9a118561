"""What the MCP tools return, as pydantic models: the output schemas they declare.

A tool declares its output with `Annotated[CallToolResult, Model]`: the SDK
publishes the model's JSON schema as the tool's `outputSchema` and checks each
successful result's structured content against it. Records keep every field
the store returns (extra keys are allowed), so a field added later is no break.
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.types import CallToolResult
from pydantic import BaseModel, ConfigDict, Field

JSON_TYPES = ["object", "array", "string", "number", "integer", "boolean", "null"]

# A free-form JSON argument (a task's payload or result): any JSON value, said so in
# the schema, since an empty schema reads as "nothing declared" to some hosts.
AnyJSON = Annotated[
    Any,
    Field(
        description="Any JSON value: object, array, string, number, boolean or null.",
        json_schema_extra={"type": JSON_TYPES},
    ),
]

Scalar = str | int | float | None


class _Record(BaseModel):
    model_config = ConfigDict(extra="allow")


# -- tasks ----------------------------------------------------------------------


class TaskOut(_Record):
    """A task: its current fields."""

    id: str
    title: str
    status: str
    attempts: int
    description: str | None = None
    priority: int | None = None
    max_attempts: int | None = None
    payload: AnyJSON = None
    result: AnyJSON = None
    error: str | None = None
    owner: str | None = None
    lease_expires_at: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    claim_token: int | None = None  # pass it as `token` to the task's later calls


class TransitionOut(_Record):
    """One status change of a task."""

    from_state: str | None
    to_state: str
    at: str
    actor: str | None = None
    note: str | None = None


class TaskWithHistory(TaskOut):
    """A task with every status change, oldest first."""

    history: list[TransitionOut]


class TaskList(BaseModel):
    """Tasks, oldest first."""

    result: list[TaskOut]


class MaybeTask(_Record):
    """The claimed task, or `{"result": null}` when no task is ready."""

    id: str | None = None
    title: str | None = None
    status: str | None = None
    attempts: int | None = None
    result: AnyJSON = None
    claim_token: int | None = None  # pass it as `token` to the task's later calls


# -- memory -----------------------------------------------------------------------


class MemoryOut(_Record):
    """One remembered fact, with its confidence decayed by age."""

    id: int
    entity: str
    attribute: str
    value: Scalar
    source: str | None
    confidence: float
    effective_confidence: float
    context: str | None
    created_at: str
    verified_at: str | None


class EntityOut(_Record):
    """A named entity and its aliases."""

    id: int
    name: str
    entity_type: str
    aliases: list[str]
    created_at: str


class RelatedOut(_Record):
    """A relation seen from one entity: the other end and the direction."""

    id: int
    entity: str
    rel_type: str
    direction: str
    created_at: str


class ProfileOut(BaseModel):
    """Everything known about an entity."""

    name: str
    entity_type: str | None
    aliases: list[str]
    facts: dict[str, Scalar]
    memories: list[MemoryOut]
    related: list[RelatedOut]


class PreferenceOut(BaseModel):
    category: str
    key: str
    value: Scalar
    updated_at: str | None = None


class SummaryOut(_Record):
    """A session's summary."""

    id: int
    session_id: str
    summary: str
    topics: list[str]
    entity_ids: list[int | str]
    created_at: str


class ConflictOut(BaseModel):
    entity: str
    attribute: str
    values: list[Scalar]
    memory_ids: list[int]


class MemoryId(BaseModel):
    memory_id: int


class Memories(BaseModel):
    memories: list[MemoryOut]


class MaybeProfile(BaseModel):
    """The profile, or null when nothing is known about the name."""

    result: ProfileOut | None


class EntityId(BaseModel):
    entity_id: int


class MaybeEntity(BaseModel):
    """The entity, or null when no entity has that name or alias."""

    result: EntityOut | None


class Entities(BaseModel):
    entities: list[EntityOut]


class RelationId(BaseModel):
    relation_id: int


class Related(BaseModel):
    related: list[RelatedOut]


class Preference(BaseModel):
    category: str
    key: str
    value: Scalar


class Preferences(BaseModel):
    preferences: list[PreferenceOut]


class SummaryId(BaseModel):
    summary_id: int


class Summaries(BaseModel):
    summaries: list[SummaryOut]


class MemoryStats(BaseModel):
    memories: int
    entities: int
    relations: int
    sessions: int
    preferences: int
    entity_types: dict[str, int]


class Conflicts(BaseModel):
    conflicts: list[ConflictOut]


class Verified(BaseModel):
    memory_id: int
    verified_at: str


# The return annotations of the tools (what mypy sees is a CallToolResult).
TaskResult = Annotated[CallToolResult, TaskOut]
MaybeTaskResult = Annotated[CallToolResult, MaybeTask]
TaskWithHistoryResult = Annotated[CallToolResult, TaskWithHistory]
TaskListResult = Annotated[CallToolResult, TaskList]
MemoryIdResult = Annotated[CallToolResult, MemoryId]
MemoriesResult = Annotated[CallToolResult, Memories]
ProfileResult = Annotated[CallToolResult, MaybeProfile]
EntityIdResult = Annotated[CallToolResult, EntityId]
EntityResult = Annotated[CallToolResult, MaybeEntity]
EntitiesResult = Annotated[CallToolResult, Entities]
RelationIdResult = Annotated[CallToolResult, RelationId]
RelatedResult = Annotated[CallToolResult, Related]
PreferenceResult = Annotated[CallToolResult, Preference]
PreferencesResult = Annotated[CallToolResult, Preferences]
SummaryIdResult = Annotated[CallToolResult, SummaryId]
SummariesResult = Annotated[CallToolResult, Summaries]
StatsResult = Annotated[CallToolResult, MemoryStats]
ConflictsResult = Annotated[CallToolResult, Conflicts]
VerifiedResult = Annotated[CallToolResult, Verified]
