"""Detection rules: load and validate rule files, run the correlation engine, fold alerts.

Pure: stdlib and pyyaml only. The rule format is documented in ``docs/rules-format.md``.
"""

from rules.detect.alerts import fold
from rules.detect.engine import Engine
from rules.detect.examples import ExampleResult, run_examples
from rules.detect.loader import DEFAULT_RULES_DIR, load_rules
from rules.detect.model import Alert, Detection, EngineEvent, LoadError, Rule, RuleLoadErrors
from rules.detect.report import lint_report, test_report
from rules.detect.ruleset import RuleSet

__all__ = [
    "DEFAULT_RULES_DIR",
    "Alert",
    "Detection",
    "Engine",
    "EngineEvent",
    "ExampleResult",
    "LoadError",
    "Rule",
    "RuleLoadErrors",
    "RuleSet",
    "fold",
    "lint_report",
    "load_rules",
    "run_examples",
    "test_report",
]
