"""The pySigma processing pipeline: Sigma log sources -> model tables, Sigma fields -> columns.

This is where the project's field names live (ARCHITECTURE: field mapping in pipelines, SQL
spelling in the backend). A rule may use the Sigma Windows taxonomy (``Image``,
``CommandLine``, ``ScriptBlockText``, ...) or the model's CIM column names directly
(``process``, ``parent_process_name``, ...); both compile to the same columns.

Two rewrites make one rule work on every source of a model:
* ``Image|endswith: '\\x.exe'`` (and ``ParentImage``) is a basename test, so it compiles to
  ``process_name = 'x.exe'``: CrowdStrike events often carry only the parent's name, and
  an image logged without a folder still matches (spec: "basename equality").
* ``wmi_event`` rules only see Sysmon rows and ``service: wmi`` rules only WMI-Activity rows
  of the shared ``wmi_activity`` table (a condition on ``data_source`` is added).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from sigma.conditions import ConditionAND, ConditionOR
from sigma.correlations import SigmaCorrelationRule
from sigma.processing.conditions import LogsourceCondition
from sigma.processing.pipeline import ProcessingItem, ProcessingPipeline
from sigma.processing.transformations import (
    AddConditionTransformation,
    FieldMappingTransformation,
    SetStateTransformation,
)
from sigma.processing.transformations.base import (
    DetectionItemTransformation,
    PreprocessingTransformation,
)
from sigma.rule import SigmaDetection, SigmaDetectionItem, SigmaRule
from sigma.types import SigmaFieldReference, SigmaString, SpecialChars

from .backend.errors import KEYWORDS, LOGSOURCE_NOT_MODELLED, UNKNOWN_FIELD, RuleRejected
from .backend.sql import TABLE_STATE
from .models import MODELS

#: Fields every Windows event has, whatever the log source.
_EVENT_FIELDS: dict[str, str] = {
    "Computer": "dest",
    "EventID": "event_id",  # text in the models: 4688, 20, ProcessRollup2
    "Channel": "channel",
    "Provider_Name": "provider",
}

PROCESS_CREATION_FIELDS: dict[str, str] = {
    **_EVENT_FIELDS,
    "Image": "process_path",
    "CommandLine": "process",
    "OriginalFileName": "original_file_name",
    "User": "user",
    "ProcessId": "process_id",
    "ProcessGuid": "process_guid",
    "ParentImage": "parent_process_path",
    "ParentCommandLine": "parent_process",
    "ParentProcessId": "parent_process_id",
    "ParentProcessGuid": "parent_process_guid",
    "IntegrityLevel": "integrity_level",
    "LogonId": "logon_id",
    "CurrentDirectory": "current_directory",
    "Hashes": "hashes",
    # Security 4688 names, for rules written against the raw event
    "NewProcessName": "process_path",
    "ParentProcessName": "parent_process_path",
    "SubjectLogonId": "logon_id",
    "TargetLogonId": "target_logon_id",
    "MandatoryLabel": "integrity_level",
    "TokenElevationType": "token_elevation_type",
}

#: Sysmon 19/20/21 (Sigma category ``wmi_event``); values are the cleaned ones.
SYSMON_WMI_FIELDS: dict[str, str] = {
    **_EVENT_FIELDS,
    "Operation": "operation",
    "User": "user",
    "EventNamespace": "namespace",
    "Name": "name",
    "Query": "query",
    "Type": "consumer_type",
    "Destination": "destination",
    "Consumer": "consumer",
    "Filter": "filter",
}

#: Microsoft-Windows-WMI-Activity/Operational 5857-5861 (Sigma ``service: wmi``).
WMI_ACTIVITY_FIELDS: dict[str, str] = {
    **_EVENT_FIELDS,
    "Namespace": "namespace",
    "NamespaceName": "namespace",
    "Query": "query",
    "User": "user",
    "ESS": "filter",
    "CONSUMER": "consumer",
    "Consumer": "consumer",
    "PossibleCause": "possible_cause",
    "Processid": "client_process_id",
    "ClientProcessId": "client_process_id",
    "ClientMachine": "client_machine",
    "MachineName": "client_machine",
    "Operation": "operation",
    "ProviderName": "provider_name",
    "Provider": "provider_name",
    "HostProcess": "host_process",
    "ProviderPath": "provider_path",
    "Message": "message",
}

PS_SCRIPT_FIELDS: dict[str, str] = {
    **_EVENT_FIELDS,
    "ScriptBlockText": "script_block_text",
    "ScriptBlockId": "script_block_id",
    "MessageNumber": "message_number",
    "MessageTotal": "message_total",
    "Path": "path",
}


@dataclass(frozen=True)
class Route:
    """One modelled Sigma log source: where its rules run and how its fields are named."""

    name: str
    table: str
    fields: Mapping[str, str]
    category: str | None = None
    product: str | None = None
    service: str | None = None
    data_source: str | None = None  # restrict a shared table to one source

    @property
    def condition(self) -> LogsourceCondition:
        return LogsourceCondition(
            category=self.category, product=self.product, service=self.service
        )


ROUTES: tuple[Route, ...] = (
    Route(
        "process_creation", "process_start", PROCESS_CREATION_FIELDS, category="process_creation"
    ),
    Route(
        "wmi_event", "wmi_activity", SYSMON_WMI_FIELDS, category="wmi_event", data_source="sysmon"
    ),
    Route(
        "wmi",
        "wmi_activity",
        WMI_ACTIVITY_FIELDS,
        product="windows",
        service="wmi",
        data_source="wmi_activity",
    ),
    Route("ps_script", "script_block", PS_SCRIPT_FIELDS, category="ps_script"),
)

ROUTE_STATE = "wmihunt_route"

#: path column -> basename column, for the basename rewrite
_BASENAME_COLUMNS = {"process_path": "process_name", "parent_process_path": "parent_process_name"}


def route_for(rule: SigmaRule) -> Route | None:
    """The route a rule's log source takes, or None when it is not modelled."""
    if rule.logsource.product not in (None, "windows"):
        return None
    for route in ROUTES:
        if rule.logsource in route.condition.logsource:
            return route
    return None


def _basename(value: object) -> str | None:
    r"""'*\\name' (nothing special after the backslash) -> 'name', else None."""
    if not isinstance(value, SigmaString) or len(value.s) != 2:
        return None
    first, rest = value.s
    if first is not SpecialChars.WILDCARD_MULTI or not isinstance(rest, str):
        return None
    if not rest.startswith("\\") or len(rest) < 2 or "\\" in rest[1:] or "/" in rest:
        return None
    return rest[1:]


@dataclass
class BasenameTransformation(DetectionItemTransformation):
    r"""``process_path|endswith: '\x'`` -> ``process_name: 'x'`` (same for the parent)."""

    def apply_detection_item(
        self, detection_item: SigmaDetectionItem
    ) -> SigmaDetection | SigmaDetectionItem | None:
        target = _BASENAME_COLUMNS.get(str(detection_item.field))
        if target is None:
            return None
        values = detection_item.value
        names = [_basename(v) for v in values]
        if not any(n is not None for n in names):
            return None
        if all(n is not None for n in names):
            if len(values) > 1 and detection_item.value_linking is ConditionAND:
                return None  # '|all' over several basenames: leave the path test alone
            return dataclasses.replace(
                detection_item,
                field=target,
                value=[SigmaString.from_str(str(n)) for n in names],
                auto_modifiers=False,
            )
        if detection_item.negated or detection_item.value_linking is ConditionAND:
            return None
        by_name = [SigmaString.from_str(str(n)) for n in names if n is not None]
        by_path = [v for v, n in zip(values, names, strict=True) if n is None]
        return SigmaDetection(
            [
                dataclasses.replace(
                    detection_item, field=target, value=by_name, auto_modifiers=False
                ),
                dataclasses.replace(detection_item, value=by_path, auto_modifiers=False),
            ],
            item_linking=ConditionOR,
        )


@dataclass
class ModelCheckTransformation(PreprocessingTransformation):
    """Last step: reject what the models cannot answer, with a reason a user can act on."""

    routes: tuple[Route, ...] = field(default=ROUTES)

    def apply(self, rule: SigmaRule | SigmaCorrelationRule) -> None:
        super().apply(rule)
        if not isinstance(rule, SigmaRule):
            return
        route = route_for(rule)
        state = self._pipeline.state if self._pipeline is not None else {}
        if route is None or state.get(TABLE_STATE) != route.table:
            ls = rule.logsource
            spec = ", ".join(
                f"{k}={v}"
                for k, v in (
                    ("product", ls.product),
                    ("category", ls.category),
                    ("service", ls.service),
                )
                if v
            )
            raise RuleRejected(LOGSOURCE_NOT_MODELLED, spec or "no log source")
        columns = set(MODELS[route.table].column_names)
        for detection in rule.detection.detections.values():
            for item in _items(detection):
                if item.field is None:
                    raise RuleRejected(KEYWORDS, "values without a field name (keywords)")
                fields = [item.field] + [
                    v.field for v in item.value if isinstance(v, SigmaFieldReference)
                ]
                for name in fields:
                    if name not in columns:
                        raise RuleRejected(
                            UNKNOWN_FIELD,
                            f"{name!r} on {route.name} (table {route.table}); known fields: "
                            + ", ".join(sorted(route.fields))
                            + "; model columns: "
                            + ", ".join(MODELS[route.table].column_names),
                        )


def _items(detection: SigmaDetection) -> list[SigmaDetectionItem]:
    out: list[SigmaDetectionItem] = []
    for item in detection.detection_items:
        if isinstance(item, SigmaDetection):
            out.extend(_items(item))
        else:
            out.append(item)
    return out


def model_pipeline() -> ProcessingPipeline:
    """The pipeline every rule goes through before the SQL backend."""
    items: list[ProcessingItem] = []
    for route in ROUTES:
        items.append(
            ProcessingItem(
                SetStateTransformation(TABLE_STATE, route.table),
                rule_conditions=[route.condition],
                identifier=f"wmihunt_table_{route.name}",
            )
        )
        items.append(
            ProcessingItem(
                FieldMappingTransformation(dict(route.fields)),
                rule_conditions=[route.condition],
                identifier=f"wmihunt_fields_{route.name}",
            )
        )
        if route.data_source:
            items.append(
                ProcessingItem(
                    AddConditionTransformation({"data_source": route.data_source}),
                    rule_conditions=[route.condition],
                    identifier=f"wmihunt_source_{route.name}",
                )
            )
    items.append(ProcessingItem(BasenameTransformation(), identifier="wmihunt_basename"))
    items.append(ProcessingItem(ModelCheckTransformation(), identifier="wmihunt_model_check"))
    return ProcessingPipeline(name="wmihunt models", priority=20, items=items)


def known_fields(route: Route) -> list[str]:
    """Sigma names and model columns a rule on ``route`` may use."""
    return sorted(set(route.fields) | set(MODELS[route.table].column_names))
