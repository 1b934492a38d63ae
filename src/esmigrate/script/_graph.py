"""The revision graph: parents (``down_revision``), heads, merges, order, and targets.

Pure logic over loaded :class:`~esmigrate.script.Script` objects; nothing here talks to a cluster.
A target says which revisions should be applied afterwards; the paths below turn it and the set of
applied revisions into the revisions to run, parents always before children.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from esmigrate.exceptions import RevisionGraphError, TargetError
from esmigrate.script._script import Script


@dataclass(frozen=True)
class Route:
    """What reaching a target means: the revisions to run, in the order to run them."""

    target: str
    direction: str  # "upgrade" or "downgrade"
    revisions: tuple[str, ...]


class RevisionGraph:
    """The revisions of a migrations folder, checked for duplicates, dangling links and cycles."""

    def __init__(self, scripts: Iterable[Script], *, where: str = "the migrations folder") -> None:
        self.where = where
        by_id: dict[str, Script] = {}
        for script in scripts:
            other = by_id.get(script.revision)
            if other is not None:
                raise RevisionGraphError(
                    f"Two migration scripts have the revision id {script.revision!r}: "
                    f"{other.path} and {script.path}.",
                    paths=(str(other.path), str(script.path)),
                    hint="Give one of them a new unique id (and update any down_revision that "
                    "pointed to it).",
                )
            by_id[script.revision] = script
        self.scripts: Mapping[str, Script] = by_id
        for script in by_id.values():
            for parent in script.down_revisions:
                if parent not in by_id:
                    raise RevisionGraphError(
                        f"The migration script {script.path} has down_revision {parent!r}, but "
                        f"no script in {where} has that revision id.",
                        paths=(str(script.path),),
                        hint="Point down_revision at an existing revision (see `esmigrate "
                        "history`), or restore the missing script.",
                    )
        self.children: dict[str, list[str]] = {rev: [] for rev in by_id}
        for script in by_id.values():
            for parent in script.down_revisions:
                self.children[parent].append(script.revision)
        self.order: tuple[str, ...] = self._topological_order()
        self._position = {rev: i for i, rev in enumerate(self.order)}
        self.heads: tuple[str, ...] = tuple(r for r in self.order if not self.children[r])
        self.bases: tuple[str, ...] = tuple(r for r in self.order if not by_id[r].down_revisions)

    def _topological_order(self) -> tuple[str, ...]:
        # Kahn's algorithm; ties broken by file name so the order is the same on every machine.
        waiting = {rev: len(s.down_revisions) for rev, s in self.scripts.items()}
        ready = [(self.scripts[r].path.name, r) for r, n in waiting.items() if n == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            _, rev = heapq.heappop(ready)
            order.append(rev)
            for child in self.children[rev]:
                waiting[child] -= 1
                if waiting[child] == 0:
                    heapq.heappush(ready, (self.scripts[child].path.name, child))
        if len(order) != len(self.scripts):
            cycle = self._find_cycle({r for r in self.scripts if r not in set(order)})
            files = tuple(str(self.scripts[r].path) for r in cycle)
            loop = " -> ".join([*cycle, cycle[0]])
            raise RevisionGraphError(
                f"The revisions in {self.where} form a cycle: {loop} (files: {', '.join(files)}).",
                paths=files,
                hint="Each down_revision must point to an older revision; fix the down_revision "
                "of one of these files to break the loop.",
            )
        return tuple(order)

    def _find_cycle(self, candidates: set[str]) -> list[str]:
        # Walk parents from any leftover node; a leftover always has a leftover parent, so the
        # walk must revisit a node, and the part from its first visit is the cycle.
        start = min(candidates)
        seen: dict[str, int] = {}
        walk: list[str] = []
        node = start
        while node not in seen:
            seen[node] = len(walk)
            walk.append(node)
            node = min(p for p in self.scripts[node].down_revisions if p in candidates)
        cycle = walk[seen[node] :]
        cycle.reverse()  # parent -> child reads as the order the scripts claim
        return cycle

    # -- queries --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.scripts)

    def __contains__(self, revision: object) -> bool:
        return revision in self.scripts

    def __getitem__(self, revision: str) -> Script:
        return self.scripts[revision]

    def sort(self, revisions: Iterable[str]) -> list[str]:
        """Known ``revisions`` in graph order (parents first)."""
        position = self._position
        return sorted((r for r in set(revisions) if r in position), key=lambda r: position[r])

    def ancestors(self, revision: str) -> set[str]:
        """``revision`` and everything it builds on."""
        found: set[str] = set()
        stack = [revision]
        while stack:
            rev = stack.pop()
            if rev not in found:
                found.add(rev)
                stack.extend(self.scripts[rev].down_revisions)
        return found

    def descendants(self, revision: str) -> set[str]:
        """``revision`` and everything that builds on it."""
        found: set[str] = set()
        stack = [revision]
        while stack:
            rev = stack.pop()
            if rev not in found:
                found.add(rev)
                stack.extend(self.children[rev])
        return found

    def resolve(self, name: str) -> Script:
        """The script whose revision id is ``name`` or starts with it (unique prefix)."""
        if name in self.scripts:
            return self.scripts[name]
        matches = [r for r in self.scripts if r.startswith(name)]
        if len(matches) == 1:
            return self.scripts[matches[0]]
        if matches:
            raise TargetError(
                f"The revision prefix {name!r} is ambiguous: it matches {', '.join(sorted(matches))}.",
                hint="Give more characters of the revision id.",
            )
        heads = ", ".join(self.heads) or "none"
        raise TargetError(
            f"Unknown revision {name!r}: no script in {self.where} has that id or prefix "
            f"(heads: {heads}).",
            hint="Use a revision id or unique prefix (see `esmigrate history`), `head`, `heads`, "
            "`base`, or a relative step such as +1 / -1.",
        )

    def head(self) -> str:
        """The single head; an error naming the heads when the graph has several."""
        if not self.heads:
            raise TargetError(
                f"There are no migration scripts in {self.where}.",
                hint='Create one with `esmigrate revision -m "..."`.',
            )
        if len(self.heads) > 1:
            files = tuple(str(self.scripts[h].path) for h in self.heads)
            raise RevisionGraphError(
                f"The revisions in {self.where} have {len(self.heads)} heads "
                f"({', '.join(self.heads)}: {', '.join(files)}), so `head` is ambiguous.",
                paths=files,
                hint='Join them with `esmigrate merge -m "merge"`, or name the target: '
                "`heads` (all of them) or one revision id.",
            )
        return self.heads[0]

    # -- paths ----------------------------------------------------------------------------------

    def upgrade_path(self, target: str, applied: Collection[str]) -> Route:
        """The revisions to apply to reach ``target`` from ``applied``, parents first.

        Targets: ``head`` (the single head), ``heads``, a revision id or unique prefix (it and
        its ancestors), ``+N`` (the next N pending revisions).
        """
        done = set(applied)
        if _relative(target) is not None:
            steps = _relative(target) or 0
            if steps <= 0:
                raise TargetError(
                    f"{target!r} is a downgrade step; upgrade takes +N.",
                    hint="Use `esmigrate downgrade -1` to go back, `upgrade +1` to go forward.",
                )
            pending = [r for r in self.order if r not in done]
            if steps > len(pending):
                raise TargetError(
                    f"Cannot go {target}: only {len(pending)} revision(s) are pending.",
                    hint="Use `esmigrate upgrade head` to apply all of them.",
                )
            return Route(target, "upgrade", tuple(pending[:steps]))
        if target == "base":
            raise TargetError(
                "`base` is a downgrade target (nothing applied).",
                hint="Use `esmigrate downgrade base` to undo every revision.",
            )
        wanted: set[str] = set()
        if target == "head":
            wanted = self.ancestors(self.head())
        elif target == "heads":
            for head in self.heads:
                wanted |= self.ancestors(head)
        else:
            wanted = self.ancestors(self.resolve(target).revision)
        return Route(target, "upgrade", tuple(r for r in self.order if r in wanted - done))

    def downgrade_path(self, target: str, applied: Collection[str]) -> Route:
        """The revisions to undo to come back to ``target``, children first.

        Targets: a revision id or prefix (keep it and its ancestors, undo every other applied
        revision), ``base`` (undo all), ``-N`` (undo the last N applied).
        """
        done = [r for r in self.order if r in set(applied)]
        steps = _relative(target)
        if steps is not None:
            if steps >= 0:
                raise TargetError(
                    f"{target!r} is an upgrade step; downgrade takes -N.",
                    hint="Use `esmigrate downgrade -1` to undo the last revision.",
                )
            if -steps > len(done):
                raise TargetError(
                    f"Cannot go {target}: only {len(done)} revision(s) are applied.",
                    hint="Use `esmigrate downgrade base` to undo all of them.",
                )
            return Route(target, "downgrade", tuple(reversed(done[steps:])))
        if target == "base":
            return Route(target, "downgrade", tuple(reversed(done)))
        if target in ("head", "heads"):
            raise TargetError(
                f"`{target}` is an upgrade target.",
                hint="Downgrade to a revision id, -N, or base.",
            )
        script = self.resolve(target)
        if script.revision not in set(done):
            raise TargetError(
                f"Revision {script.revision} ({script.path}) is not applied, so there is "
                "nothing to downgrade to.",
                hint="Downgrade to an applied revision (see `esmigrate status`), or upgrade to it.",
            )
        keep = self.ancestors(script.revision)
        return Route(target, "downgrade", tuple(r for r in reversed(done) if r not in keep))


def _relative(target: str) -> int | None:
    if len(target) > 1 and target[0] in "+-" and target[1:].isdigit():
        return int(target)
    return None
