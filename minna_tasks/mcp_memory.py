"""The 16 Minna memory tools over MCP, with the names, arguments and results the
Minna documentation gives them, so a spine tool that speaks Minna works unchanged.

Each tool calls one `MinnaMemory` method (or `TaskStore.remember`, which keeps a
task's own fields out of reach) through the server's runner, which turns our
errors into tool errors; nothing here holds a rule. `minna-tasks mcp --tools
memory` serves exactly these tools: a drop-in Minna memory server.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations

from .mcp_handshake import MEMORY_INSTRUCTIONS
from .mcp_schemas import (
    ConflictsResult,
    EntitiesResult,
    EntityIdResult,
    EntityResult,
    MemoriesResult,
    MemoryIdResult,
    PreferenceResult,
    PreferencesResult,
    ProfileResult,
    RelatedResult,
    RelationIdResult,
    Scalar,
    StatsResult,
    SummariesResult,
    SummaryIdResult,
    VerifiedResult,
)
from .memory import ENTITY_TYPES, check_entity_type
from .store import TaskStore

# Runs one store call and answers with its JSON (or a tool error with our message).
Runner = Callable[[Callable[[], Any]], Awaitable[CallToolResult]]

# name: (title, reads only). The order is the documentation's.
MEMORY_TOOLS: dict[str, tuple[str, bool]] = {
    "memory_store": ("Store a memory", False),
    "memory_recall": ("Recall memories", True),
    "memory_search": ("Search memories", True),
    "memory_who": ("Profile of an entity", True),
    "memory_add_entity": ("Add an entity", False),
    "memory_get_entity": ("Get an entity", True),
    "memory_find_entities": ("Find entities", True),
    "memory_relate": ("Relate two entities", False),
    "memory_get_related": ("Get related entities", True),
    "memory_set_preference": ("Set or read a preference", False),
    "memory_get_preferences": ("List preferences", True),
    "memory_summarize_session": ("Store a session summary", False),
    "memory_get_context": ("Recent session summaries", True),
    "memory_stats": ("Memory statistics", True),
    "memory_detect_conflicts": ("Find contradicting memories", True),
    "memory_verify": ("Re-confirm a memory", False),
}
# Writes that replace what was there (the rest only add).
REPLACING = {"memory_set_preference"}


def _or_null(result: CallToolResult) -> CallToolResult:
    """For a tool answering an object or null: the text stays that value, the structured
    content is `{"result": value}` either way (an output schema must be an object)."""
    if result.is_error:
        return result
    (block,) = result.content
    assert isinstance(block, TextContent)
    return result.model_copy(update={"structured_content": {"result": json.loads(block.text)}})


class MemoryTools:
    """The tool handlers: each calls one memory method and returns its JSON."""

    def __init__(self, store: TaskStore, run: Runner) -> None:
        self.store = store
        self.memory = store.memory
        self._run = run

    async def memory_store(
        self,
        entity: str,
        attribute: str,
        value: Scalar,
        source: str | None = "mcp",
        confidence: float = 1.0,
        context: str | None = None,
    ) -> MemoryIdResult:
        """Remember that `entity`'s `attribute` is `value` (a new memory; older values stay
        in the log, newest first). Returns {"memory_id"}. A task's own fields (status,
        owner, ...) are refused: they change only through the task tools."""
        return await self._run(
            lambda: {
                "memory_id": self.store.remember(
                    entity, attribute, value, source, confidence, context
                )
            }
        )

    async def memory_recall(
        self,
        entity: str | None = None,
        attribute: str | None = None,
        limit: int | None = 10,
        include_decay: bool = False,
        half_life_days: float = 90,
        min_confidence: float = 0.0,
    ) -> MemoriesResult:
        """Memories about `entity` and/or `attribute`, newest first: {"memories": [...]}.
        Each carries `effective_confidence` (confidence halved every `half_life_days` since
        it was verified or made); `min_confidence` filters on it; with `include_decay`
        `confidence` is reported decayed too."""
        return await self._run(
            lambda: {
                "memories": self.memory.recall(
                    entity, attribute, limit, include_decay, half_life_days, min_confidence
                )
            }
        )

    async def memory_search(self, query: str, limit: int = 10) -> MemoriesResult:
        """Full-text search over entity, attribute and value, best match first:
        {"memories": [...]}. Memories holding every word come first; if none does,
        those holding any of them."""
        return await self._run(lambda: {"memories": self.memory.search(query, limit=limit)})

    async def memory_who(self, name: str) -> ProfileResult:
        """Everything known about an entity (a name or an alias): name, entity_type,
        aliases, facts ({attribute: newest value}), memories (newest first) and related
        entities. null when nothing is known about it."""
        return _or_null(await self._run(lambda: self.memory.who(name)))

    async def memory_add_entity(
        self, name: str, entity_type: str, aliases: list[str] | None = None
    ) -> EntityIdResult:
        """Create an entity (or add aliases to an existing one); returns {"entity_id"}.
        `entity_type` is one of person, project, concept, topic, preference (use concept
        with a prefixed name such as "agent:coder-1" for anything else)."""
        return await self._run(
            lambda: {
                "entity_id": self.memory.add_entity(name, check_entity_type(entity_type), aliases)
            }
        )

    async def memory_get_entity(self, name: str) -> EntityResult:
        """The entity with this name or alias (id, name, entity_type, aliases,
        created_at), or null."""
        return _or_null(await self._run(lambda: self.memory.get_entity(name)))

    async def memory_find_entities(
        self, query: str | None = None, entity_type: str | None = None, limit: int = 20
    ) -> EntitiesResult:
        """Entities whose name or an alias contains `query` (any case), of `entity_type`
        if given, by name: {"entities": [...]}."""
        return await self._run(
            lambda: {"entities": self.memory.find_entities(query, entity_type, limit)}
        )

    async def memory_relate(
        self, from_entity: str, to_entity: str, rel_type: str
    ) -> RelationIdResult:
        """Record that `from_entity` `rel_type` `to_entity` (e.g. works_on); returns
        {"relation_id"}."""
        return await self._run(
            lambda: {"relation_id": self.memory.relate(from_entity, to_entity, rel_type)}
        )

    async def memory_get_related(self, entity: str, rel_type: str | None = None) -> RelatedResult:
        """Relations of `entity`, oldest first: {"related": [...]}, each with the other
        `entity`, `rel_type`, `direction` ("out" or "in"), `id` and `created_at`."""
        return await self._run(lambda: {"related": self.memory.get_related(entity, rel_type)})

    async def memory_set_preference(
        self, category: str, key: str, value: Scalar = None
    ) -> PreferenceResult:
        """Set the preference (`category`, `key`) to `value`; with no value, read it.
        Returns {"category", "key", "value"} with the value now stored (null if unset)."""
        return await self._run(
            lambda: {
                "category": category,
                "key": key,
                "value": self.memory.set_preference(category, key, value),
            }
        )

    async def memory_get_preferences(self, category: str | None = None) -> PreferencesResult:
        """Every preference, or one category's: {"preferences": [{category, key, value,
        updated_at}]}, by category then key."""
        return await self._run(lambda: {"preferences": self.memory.get_preferences(category)})

    async def memory_summarize_session(
        self,
        session_id: str,
        summary: str,
        topics: list[str] | None = None,
        entity_ids: list[int | str] | None = None,
    ) -> SummaryIdResult:
        """Keep a session's summary for the next session, with its topics and the ids of
        the entities it was about; returns {"summary_id"}."""
        return await self._run(
            lambda: {
                "summary_id": self.memory.summarize_session(session_id, summary, topics, entity_ids)
            }
        )

    async def memory_get_context(self, limit: int = 5) -> SummariesResult:
        """The newest session summaries, newest first: {"summaries": [...]}."""
        return await self._run(lambda: {"summaries": self.memory.get_context(limit)})

    async def memory_stats(self) -> StatsResult:
        """How many memories, entities, relations, sessions and preferences the file
        holds, and entities per type."""
        return await self._run(self.memory.stats)

    async def memory_detect_conflicts(
        self, entity: str | None = None, attribute: str | None = None
    ) -> ConflictsResult:
        """Each (entity, attribute) whose memories hold more than one distinct value:
        {"conflicts": [{entity, attribute, values, memory_ids}]}. A task's own fields are
        its history, not contradictions, and are never reported."""
        return await self._run(lambda: self.memory.detect_conflicts(entity, attribute))

    async def memory_verify(self, memory_id: int) -> VerifiedResult:
        """Re-confirm a memory: its decay starts again from now. Returns {"memory_id",
        "verified_at"}."""
        return await self._run(
            lambda: {"memory_id": memory_id, "verified_at": self.memory.verify(memory_id)}
        )


def add_memory_tools(server: MCPServer, tools: MemoryTools) -> None:
    """Register the 16 memory tools on `server`."""
    for name, (title, read_only) in MEMORY_TOOLS.items():
        annotations = ToolAnnotations(
            title=title,
            read_only_hint=read_only,
            destructive_hint=None if read_only else name in REPLACING,
            open_world_hint=False,
        )
        server.add_tool(getattr(tools, name), name=name, title=title, annotations=annotations)


__all__ = ["ENTITY_TYPES", "MEMORY_INSTRUCTIONS", "MEMORY_TOOLS", "MemoryTools", "add_memory_tools"]
