"""Declarative document transformations: rules, their Painless compilation, ready rules, preview.

A :class:`RuleSet` is a pure ``doc -> doc`` function; :meth:`RuleSet.painless` gives the same
transformation as one Painless script (or None when a rule has no exact Painless form).
"""

from esmigrate.transform._paths import Transform
from esmigrate.transform.conditions import (
    All,
    AnyOf,
    Condition,
    Equals,
    Exists,
    In,
    IsEmpty,
    Missing,
    Not,
    Predicate,
)
from esmigrate.transform.painless import parse_failure
from esmigrate.transform.rules import (
    Apply,
    Cast,
    Compute,
    Convert,
    Copy,
    Default,
    Move,
    Remove,
    Rename,
    Rule,
    RuleSet,
    Set,
    When,
)
from esmigrate.transform.standard import (
    DEFAULT_CATEGORIES,
    Categorize,
    ExtractHashtags,
    ExtractMetadata,
    NormalizeText,
    ReadingTime,
    WordCount,
)

__all__ = [
    "DEFAULT_CATEGORIES",
    "All",
    "AnyOf",
    "Apply",
    "Cast",
    "Categorize",
    "Compute",
    "Condition",
    "Convert",
    "Copy",
    "Default",
    "Equals",
    "Exists",
    "ExtractHashtags",
    "ExtractMetadata",
    "In",
    "IsEmpty",
    "Missing",
    "Move",
    "NormalizeText",
    "Not",
    "Predicate",
    "ReadingTime",
    "Remove",
    "Rename",
    "Rule",
    "RuleSet",
    "Set",
    "Transform",
    "When",
    "WordCount",
    "parse_failure",
]
