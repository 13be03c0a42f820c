"""ROSE components (Q.932 §8.2 / X.880): invoke, returnResult, returnError, reject.

This module owns the component envelope and its typed values: which tag, where the invoke
id, linked id, operation value and argument/result/error sit, and which ROSE reject
problem (X.880 Reject.problem, codes as in the digest §2.2) a malformed component
deserves:

* BER damage (truncation, bad lengths)              → generalProblem badlyStructuredComponent
* unknown component tag                             → generalProblem unrecognizedComponent
* wrong element in the envelope                     → generalProblem mistypedComponent
* unknown operation in an invoke                    → invokeProblem unrecognizedOperation
* bad argument                                      → invokeProblem mistypedArgument
* unknown operation / bad result in a returnResult  → returnResultProblem mistypedResult

The problem and, when it could be read, the invoke id travel in the raised
:class:`~ccbs_isdn.errors.FacilityError`; :func:`reject_for` turns one into the Reject to
send. Whether to send it (not for broadcast input, digest §7) is the caller's decision.

Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ccbs_isdn.errors import FacilityError
from ccbs_isdn.rose.ber import (
    Int,
    describe_tag,
    encode_error,
    fail,
    int_content,
    json_error,
    read_tlv,
    tlv,
)
from ccbs_isdn.rose.operations import (
    ERROR_BY_VALUE,
    OPERATION_BY_CODE,
    OPERATIONS,
    PROBLEM_CLASSES,
    PROBLEM_NAMES,
    Code,
    Operation,
    OperationSpec,
    RoseError,
    parse_code,
    rose_error,
)
from ccbs_isdn.rose.types import Argument, Result

# ------------------------------------------------------------------------------ values


@dataclass(frozen=True, slots=True)
class Invoke:
    """``invoke [1]``: ask the peer to perform ``operation`` with ``argument``.

    ``argument`` is the operation's ``<Operation>Arg`` dataclass, or None for operations
    without an argument (CCBS-T-Call, -Suspend, -Resume, -RemoteUserFree, -Available).
    """

    invoke_id: int
    operation: Operation
    argument: Argument | None = None
    linked_id: int | None = None


@dataclass(frozen=True, slots=True)
class ReturnResult:
    """``returnResult [2]``. With ``operation`` None the component is the empty form
    ``A2 03 02 01 id`` libpri sends for operations without a result value; decoding such a
    component leaves ``operation`` None (match it to your invoke by ``invoke_id``).
    ``operation`` set and ``result`` None encodes the opcode-only form mISDNuser uses."""

    invoke_id: int
    operation: Operation | None = None
    result: Result | None = None


@dataclass(frozen=True, slots=True)
class ReturnError:
    """``returnError [3]``. ``error`` carries the exact error value (see RoseError);
    ``operation`` is not on the wire (decode leaves it None) and only documents which
    invoke this answers. ``parameter`` is the raw TLV of an error parameter, if any."""

    invoke_id: int
    error: RoseError
    operation: Operation | None = None
    parameter: bytes | None = None


@dataclass(frozen=True, slots=True)
class Reject:
    """``reject [4]``. ``problem`` is ``(class, code)`` with class one of ``general``,
    ``invoke``, ``returnResult``, ``returnError`` (the shape of FacilityError.problem);
    ``invoke_id`` None is sent as NULL (the id could not be read)."""

    invoke_id: int | None
    problem: tuple[str, int]

    @property
    def problem_name(self) -> str:
        return problem_name(self.problem)


Component = Invoke | ReturnResult | ReturnError | Reject

COMPONENT_TAGS = {Invoke: 0xA1, ReturnResult: 0xA2, ReturnError: 0xA3, Reject: 0xA4}
COMPONENT_NAMES = {0xA1: "invoke", 0xA2: "returnResult", 0xA3: "returnError", 0xA4: "reject"}


def problem_name(problem: tuple[str, int]) -> str:
    """``("invoke", 1)`` → ``invokeProblem.unrecognizedOperation``."""
    kind, code = problem
    names = PROBLEM_NAMES[kind]
    label = names[code] if 0 <= code < len(names) else str(code)
    return f"{PROBLEM_CLASSES[kind][1]}.{label}"


def parse_problem(text: str) -> tuple[str, int]:
    """Inverse of :func:`problem_name` (also accepts a numeric code after the dot)."""
    head, _, tail = text.partition(".")
    for kind, (_tag, class_name) in PROBLEM_CLASSES.items():
        if head == class_name:
            names = PROBLEM_NAMES[kind]
            if tail in names:
                return kind, names.index(tail)
            if tail.lstrip("-").isdigit():
                return kind, int(tail)
    raise KeyError(text)


def reject_for(error: FacilityError) -> Reject | None:
    """The Reject answering a component that failed to decode, or None if none is due."""
    if error.problem is None or error.problem[0] not in PROBLEM_CLASSES:
        return None
    return Reject(error.invoke_id, error.problem)


# --------------------------------------------------------------------- codes (OIDs)


def oid_content(arcs: tuple[int, ...]) -> bytes:
    """X.690 §8.19: first two arcs as 40·a+b, then base-128 with continuation bits."""
    out = bytearray()
    for number in (arcs[0] * 40 + arcs[1], *arcs[2:]):
        chunk = [number & 0x7F]
        number >>= 7
        while number:
            chunk.append(0x80 | (number & 0x7F))
            number >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def oid_arcs(content: bytes) -> tuple[int, ...] | None:
    """Decode OID content octets; None if malformed (empty, dangling continuation)."""
    if not content or content[-1] & 0x80:
        return None
    numbers: list[int] = []
    value = 0
    for octet in content:
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            numbers.append(value)
            value = 0
    first = numbers[0]
    head = (0, first) if first < 40 else (1, first - 40) if first < 80 else (2, first - 80)
    return (*head, *numbers[1:])


def code_tlv(code: Code) -> bytes:
    if isinstance(code, int):
        return tlv(0x02, int_content(code))
    return tlv(0x06, oid_content(code))


def _code_key(data: bytes, tag: int, start: int, end: int, what: str) -> tuple[bytes | int, Code]:
    """Read an OperationValue/ErrorValue; returns (lookup key, code)."""
    if tag == 0x02:
        if not 1 <= end - start <= 4:
            raise fail(start, f"{what}: local value of {end - start} octets", ("general", 1))
        value = int.from_bytes(data[start:end], "big", signed=True)
        return value, value
    arcs = oid_arcs(data[start:end])
    if arcs is None:
        raise fail(start, f"{what}: malformed OBJECT IDENTIFIER", ("general", 1))
    return data[start:end], arcs


_OP_BY_KEY: dict[bytes | int, OperationSpec] = {
    (oid_content(c) if isinstance(c, tuple) else c): spec for c, spec in OPERATION_BY_CODE.items()
}
_ERROR_BY_KEY: dict[bytes | int, RoseError] = {
    (oid_content(c) if isinstance(c, tuple) else c): err for c, err in ERROR_BY_VALUE.items()
}
_OP_CODE_TLV: dict[Operation, bytes] = {op: code_tlv(spec.code) for op, spec in OPERATIONS.items()}

INVOKE_ID = Int("invokeId")
LINKED_ID = Int("linkedId", tag=0x80)

# ---------------------------------------------------------------------------- encoding


def _spec(operation: Any, where: str) -> OperationSpec:
    try:
        return OPERATIONS[Operation(operation)]
    except (ValueError, KeyError):
        raise encode_error(where, f"unknown operation {operation!r}") from None


def encode_component(component: Component) -> bytes:
    """One component TLV (A1/A2/A3/A4 ...) with minimal lengths, byte-identical to libpri."""
    if isinstance(component, Invoke):
        spec = _spec(component.operation, "invoke.operation")
        parts = [INVOKE_ID.encode(component.invoke_id, "invoke.invokeId")]
        if component.linked_id is not None:
            parts.append(LINKED_ID.encode(component.linked_id, "invoke.linkedId"))
        parts.append(_OP_CODE_TLV[spec.operation])
        if spec.argument is None:
            if component.argument is not None:
                raise encode_error(f"{spec.operation}", "this operation has no argument")
        elif component.argument is None:
            raise encode_error(f"{spec.operation}", "this operation needs an argument")
        else:
            parts.append(spec.argument.encode(component.argument, f"{spec.operation}.argument"))
        return tlv(0xA1, b"".join(parts))
    if isinstance(component, ReturnResult):
        invoke_id = INVOKE_ID.encode(component.invoke_id, "returnResult.invokeId")
        if component.operation is None:
            if component.result is not None:
                raise encode_error("returnResult", "a result needs its operation")
            return tlv(0xA2, invoke_id)
        spec = _spec(component.operation, "returnResult.operation")
        inner = _OP_CODE_TLV[spec.operation]
        if component.result is not None:
            if spec.result is None:
                raise encode_error(f"{spec.operation}", "this operation has no result value")
            inner += spec.result.encode(component.result, f"{spec.operation}.result")
        elif spec.result is not None:
            raise encode_error(f"{spec.operation}", "this operation's result needs a value")
        return tlv(0xA2, invoke_id + tlv(0x30, inner))
    if isinstance(component, ReturnError):
        if not isinstance(component.error, RoseError):
            raise encode_error(
                "returnError.error", f"expected a RoseError, got {component.error!r}"
            )
        body = INVOKE_ID.encode(component.invoke_id, "returnError.invokeId")
        body += code_tlv(component.error.value)
        if component.parameter is not None:
            parameter = bytes(component.parameter)
            try:
                single = parameter and read_tlv(parameter, 0, len(parameter))[3] == len(parameter)
            except FacilityError:
                single = False
            if not single:
                raise encode_error("returnError.parameter", "must be exactly one BER element")
            body += parameter
        return tlv(0xA3, body)
    if isinstance(component, Reject):
        if component.invoke_id is None:
            body = b"\x05\x00"
        else:
            body = INVOKE_ID.encode(component.invoke_id, "reject.invokeId")
        kind, code = component.problem
        if kind not in PROBLEM_CLASSES:
            raise encode_error("reject.problem", f"unknown problem class {kind!r}")
        body += tlv(PROBLEM_CLASSES[kind][0], int_content(code))
        return tlv(0xA4, body)
    raise encode_error("component", f"not a ROSE component: {component!r}")


# ---------------------------------------------------------------------------- decoding


def _invoke_id(data: bytes, start: int, end: int, component: str) -> tuple[int, int]:
    tag, cs, ce, pos = read_tlv(data, start, end)
    if tag != 0x02:
        raise fail(
            start,
            f"{component}: expected INTEGER invokeId (tag 02), found {describe_tag(tag)}",
            ("general", 1),
        )
    return INVOKE_ID.decode(data, tag, cs, ce), pos


def _check_trailing(data: bytes, pos: int, end: int) -> None:
    """Unknown trailing elements are tolerated, but they must be well-formed BER."""
    while pos < end:
        pos = read_tlv(data, pos, end)[3]


def _operation(
    data: bytes, pos: int, end: int, component: str
) -> tuple[OperationSpec | None, Code, int]:
    tag, cs, ce, nxt = read_tlv(data, pos, end)
    if tag not in (0x02, 0x06):
        raise fail(
            pos,
            f"{component}: expected operationValue (tag 02 or 06), found {describe_tag(tag)}",
            ("general", 1),
        )
    key, code = _code_key(data, tag, cs, ce, "operationValue")
    return _OP_BY_KEY.get(key), code, nxt


def _dotted(code: Code) -> str:
    return str(code) if isinstance(code, int) else ".".join(map(str, code))


def _decode_invoke(data: bytes, start: int, end: int) -> Invoke:
    invoke_id, pos = _invoke_id(data, start, end, "invoke")
    try:
        linked_id = None
        if pos < end and data[pos] == 0x80:
            tag, cs, ce, pos = read_tlv(data, pos, end)
            linked_id = LINKED_ID.decode(data, tag, cs, ce)
        if pos >= end:
            raise fail(pos, "invoke: expected operationValue, found the end", ("general", 1))
        op_pos = pos
        spec, code, pos = _operation(data, pos, end, "invoke")
        if spec is None:
            raise fail(op_pos, f"invoke: unknown operation {_dotted(code)}", ("invoke", 1))
        argument = None
        node = spec.argument
        if node is not None:
            if pos >= end:
                raise fail(
                    pos,
                    f"{spec.operation}: missing argument, expected {node.expect}",
                    ("invoke", 2),
                )
            arg_pos = pos
            tag, cs, ce, pos = read_tlv(data, pos, end)
            if tag not in node.tags:
                raise fail(
                    arg_pos,
                    f"{spec.operation}: expected argument {node.expect}, found {describe_tag(tag)}",
                    ("invoke", 2),
                )
            try:
                argument = node.decode(data, tag, cs, ce)
            except FacilityError as exc:
                exc.problem = ("invoke", 2)
                raise
        _check_trailing(data, pos, end)
        return Invoke(invoke_id, spec.operation, argument, linked_id)
    except FacilityError as exc:
        exc.invoke_id = invoke_id
        raise


def _decode_result(data: bytes, start: int, end: int) -> ReturnResult:
    invoke_id, pos = _invoke_id(data, start, end, "returnResult")
    try:
        if pos >= end:
            return ReturnResult(invoke_id)
        seq_pos = pos
        tag, cs, ce, pos = read_tlv(data, pos, end)
        if tag != 0x30:
            raise fail(
                seq_pos,
                f"returnResult: expected SEQUENCE (tag 30), found {describe_tag(tag)}",
                ("general", 1),
            )
        _check_trailing(data, pos, end)
        spec, code, inner = _operation(data, cs, ce, "returnResult")
        if spec is None:
            raise fail(cs, f"returnResult: unknown operation {_dotted(code)}", ("returnResult", 2))
        node = spec.result
        result = None
        if node is not None:
            if inner >= ce:
                raise fail(
                    inner,
                    f"{spec.operation}: missing result, expected {node.expect}",
                    ("returnResult", 2),
                )
            res_pos = inner
            tag, rs, re, inner = read_tlv(data, inner, ce)
            if tag not in node.tags:
                raise fail(
                    res_pos,
                    f"{spec.operation}: expected result {node.expect}, found {describe_tag(tag)}",
                    ("returnResult", 2),
                )
            try:
                result = node.decode(data, tag, rs, re)
            except FacilityError as exc:
                exc.problem = ("returnResult", 2)
                raise
        _check_trailing(data, inner, ce)
        return ReturnResult(invoke_id, spec.operation, result)
    except FacilityError as exc:
        exc.invoke_id = invoke_id
        raise


def _decode_error(data: bytes, start: int, end: int) -> ReturnError:
    invoke_id, pos = _invoke_id(data, start, end, "returnError")
    try:
        if pos >= end:
            raise fail(pos, "returnError: expected errorValue, found the end", ("general", 1))
        tag, cs, ce, nxt = read_tlv(data, pos, end)
        if tag not in (0x02, 0x06):
            raise fail(
                pos,
                f"returnError: expected errorValue (tag 02 or 06), found {describe_tag(tag)}",
                ("general", 1),
            )
        key, code = _code_key(data, tag, cs, ce, "errorValue")
        error = _ERROR_BY_KEY.get(key) or RoseError(code)
        parameter = None
        if nxt < end:
            param_end = read_tlv(data, nxt, end)[3]
            parameter = data[nxt:param_end]
            _check_trailing(data, param_end, end)
        return ReturnError(invoke_id, error, None, parameter)
    except FacilityError as exc:
        exc.invoke_id = invoke_id
        raise


_PROBLEM_BY_TAG = {tag: kind for kind, (tag, _name) in PROBLEM_CLASSES.items()}


def _decode_reject(data: bytes, start: int, end: int) -> Reject:
    tag, cs, ce, pos = read_tlv(data, start, end)
    invoke_id: int | None
    if tag == 0x02:
        invoke_id = INVOKE_ID.decode(data, tag, cs, ce)
    elif tag == 0x05 and cs == ce:
        invoke_id = None
    else:
        raise fail(
            start,
            f"reject: expected invokeId (tag 02) or NULL (05 00), found {describe_tag(tag)}",
            ("general", 1),
        )
    try:
        if pos >= end:
            raise fail(pos, "reject: expected problem (tag 80..83), found the end", ("general", 1))
        tag, cs, ce, nxt = read_tlv(data, pos, end)
        kind = _PROBLEM_BY_TAG.get(tag)
        if kind is None:
            raise fail(
                pos,
                f"reject: expected problem (tag 80..83), found {describe_tag(tag)}",
                ("general", 1),
            )
        if not 1 <= ce - cs <= 4:
            raise fail(cs, f"reject: problem code of {ce - cs} octets", ("general", 1))
        code = int.from_bytes(data[cs:ce], "big", signed=True)
        _check_trailing(data, nxt, end)
        return Reject(invoke_id, (kind, code))
    except FacilityError as exc:
        exc.invoke_id = invoke_id
        raise


_DECODERS: dict[int, Callable[[bytes, int, int], Component]] = {
    0xA1: _decode_invoke,
    0xA2: _decode_result,
    0xA3: _decode_error,
    0xA4: _decode_reject,
}


def decode_component(data: bytes, pos: int, end: int) -> tuple[Component, int]:
    """Decode the component TLV at ``pos``; returns (component, position after it)."""
    tag, cs, ce, nxt = read_tlv(data, pos, end)
    decoder = _DECODERS.get(tag)
    if decoder is None:
        raise fail(
            pos,
            f"expected a ROSE component (tag A1..A4), found {describe_tag(tag)}",
            ("general", 0),
        )
    return decoder(data, cs, ce), nxt


# --------------------------------------------------------------------------------- JSON


def component_to_json(component: Component) -> dict[str, Any]:
    """The JSON object of one component (shape documented in ``cli_facility``)."""
    if isinstance(component, Invoke):
        spec = OPERATIONS[component.operation]
        out: dict[str, Any] = {"component": "invoke", "invokeId": component.invoke_id}
        if component.linked_id is not None:
            out["linkedId"] = component.linked_id
        out["operation"] = spec.operation.value
        if spec.argument is not None and component.argument is not None:
            out["argument"] = spec.argument.to_json(component.argument)
        return out
    if isinstance(component, ReturnResult):
        out = {"component": "returnResult", "invokeId": component.invoke_id}
        if component.operation is not None:
            spec = OPERATIONS[component.operation]
            out["operation"] = spec.operation.value
            if spec.result is not None and component.result is not None:
                out["result"] = spec.result.to_json(component.result)
        return out
    if isinstance(component, ReturnError):
        out = {"component": "returnError", "invokeId": component.invoke_id}
        if component.operation is not None:
            out["operation"] = Operation(component.operation).value
        if component.error.name is not None:
            out["error"] = component.error.name
        value = component.error.value
        out["errorValue"] = value if isinstance(value, int) else component.error.dotted
        if component.parameter is not None:
            out["parameter"] = component.parameter.hex().upper()
        return out
    return {
        "component": "reject",
        "invokeId": component.invoke_id,
        "problem": problem_name(component.problem),
    }


_KEYS = {
    "invoke": {"component", "invokeId", "linkedId", "operation", "argument"},
    "returnResult": {"component", "invokeId", "operation", "result"},
    "returnError": {"component", "invokeId", "operation", "error", "errorValue", "parameter"},
    "reject": {"component", "invokeId", "problem"},
}


def _json_int(obj: dict[str, Any], key: str, path: str, *, nullable: bool = False) -> Any:
    if key not in obj:
        raise json_error(path, f"missing {key}")
    value = obj[key]
    if value is None and nullable:
        return None
    return INVOKE_ID.from_json(value, f"{path}.{key}")


def _json_operation(obj: dict[str, Any], path: str) -> OperationSpec:
    name = obj.get("operation")
    try:
        return OPERATIONS[Operation(str(name))]
    except (ValueError, KeyError):
        raise json_error(
            f"{path}.operation",
            f"unknown operation {name!r} (known: {', '.join(o.value for o in Operation)})",
        ) from None


def component_from_json(obj: Any, path: str = "component") -> Component:
    """Build a component from its JSON object; FacilityError names the bad JSON path."""
    if not isinstance(obj, dict):
        raise json_error(path, f"expected an object, got {obj!r}")
    kind = obj.get("component")
    if kind not in _KEYS:
        raise json_error(f"{path}.component", f"expected one of {', '.join(_KEYS)}, got {kind!r}")
    extra = set(obj) - _KEYS[kind]
    if extra:
        raise json_error(path, f"unknown key(s) {', '.join(sorted(extra))} in a {kind}")
    if kind == "reject":
        invoke_id = _json_int(obj, "invokeId", path, nullable=True)
        text = obj.get("problem")
        try:
            problem = parse_problem(text) if isinstance(text, str) else None
        except KeyError:
            problem = None
        if problem is None:
            raise json_error(
                f"{path}.problem",
                f'expected e.g. "invokeProblem.mistypedArgument", got {text!r}',
            )
        return Reject(invoke_id, problem)
    invoke_id = _json_int(obj, "invokeId", path)
    if kind == "invoke":
        spec = _json_operation(obj, path)
        linked_id = _json_int(obj, "linkedId", path) if "linkedId" in obj else None
        argument = None
        if spec.argument is not None:
            if "argument" not in obj:
                raise json_error(path, f"{spec.operation} needs an argument")
            argument = spec.argument.from_json(obj["argument"], f"{path}.argument")
        elif obj.get("argument") is not None:
            raise json_error(f"{path}.argument", f"{spec.operation} has no argument")
        return Invoke(invoke_id, spec.operation, argument, linked_id)
    if kind == "returnResult":
        if obj.get("operation") is None:
            if obj.get("result") is not None:
                raise json_error(path, "a result needs its operation")
            return ReturnResult(invoke_id)
        spec = _json_operation(obj, path)
        result = None
        if spec.result is not None:
            if "result" not in obj:
                raise json_error(path, f"{spec.operation} needs a result")
            result = spec.result.from_json(obj["result"], f"{path}.result")
        elif obj.get("result") is not None:
            raise json_error(f"{path}.result", f"{spec.operation} has no result value")
        return ReturnResult(invoke_id, spec.operation, result)
    # returnError
    operation = None
    if obj.get("operation") is not None:
        operation = _json_operation(obj, path).operation
    error = _json_error_value(obj, operation, path)
    parameter = None
    if obj.get("parameter") is not None:
        raw = obj["parameter"]
        try:
            parameter = bytes.fromhex(raw) if isinstance(raw, str) else None
        except ValueError:
            parameter = None
        if not parameter:
            raise json_error(f"{path}.parameter", f"expected hex of one BER element, got {raw!r}")
    return ReturnError(invoke_id, error, operation, parameter)


def _json_error_value(obj: dict[str, Any], operation: Operation | None, path: str) -> RoseError:
    by_value: RoseError | None = None
    if "errorValue" in obj:
        raw = obj["errorValue"]
        code: Code | None = None
        if isinstance(raw, int) and not isinstance(raw, bool):
            code = raw
        elif isinstance(raw, str):
            code = parse_code(raw)
        if code is None:
            raise json_error(f"{path}.errorValue", f"expected an int or a dotted OID, got {raw!r}")
        by_value = ERROR_BY_VALUE.get(code) or RoseError(code)
    name = obj.get("error")
    if name is None:
        if by_value is None:
            raise json_error(path, "a returnError needs error or errorValue")
        return by_value
    if not isinstance(name, str):
        raise json_error(f"{path}.error", f"expected an error name, got {name!r}")
    if by_value is not None:
        if by_value.name != name:
            raise json_error(
                f"{path}.error", f"{name!r} does not match errorValue {by_value.dotted}"
            )
        return by_value
    try:
        return rose_error(name, operation)
    except KeyError:
        raise json_error(f"{path}.error", f"unknown error name {name!r}") from None
