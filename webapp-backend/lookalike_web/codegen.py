"""The files generated from ``lookalike_web.contract``, and the TypeScript generator they need.

    .venv/bin/python -m lookalike_web.codegen          # write the stale ones
    .venv/bin/python -m lookalike_web.codegen --check  # only list them (exit status 1)

- ``docs/openapi.json``: :func:`lookalike_web.contract.openapi`, as JSON;
- ``webapp-frontend/src/api/contract.ts``: the upload limit, the error codes and one TypeScript
  declaration per schema of ``contract.SCHEMAS`` (:func:`declarations`).

``declarations`` understands the subset of JSON Schema (2020-12) the contract uses: ``type``
(one or a list of ``object``, ``array``, ``string``, ``integer``, ``number``, ``boolean``,
``null``), ``properties`` / ``required`` / ``additionalProperties``, ``items`` /
``prefixItems`` (a tuple), ``enum``, ``const``, ``anyOf`` / ``oneOf``, ``$ref`` to another name
and ``description`` (a doc comment). Keywords that only narrow values (``minimum``,
``pattern``, ...) have no TypeScript form and are left to the schema's validation; anything else
raises ``ValueError``, so the generated types never silently say less than the schema.

Not imported by the server: only the developer and ``webapp-backend/tests/test_contract.py``
run it.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lookalike_web import contract
from lookalike_web.contract import ERROR_CODES, MAX_UPLOAD_BYTES, REGENERATE, SCHEMAS

Schema = Mapping[str, Any]

REPO_ROOT = Path(__file__).resolve().parents[2]
OPENAPI_FILE = REPO_ROOT / "docs" / "openapi.json"
TYPESCRIPT_FILE = REPO_ROOT / "webapp-frontend" / "src" / "api" / "contract.ts"

INDENT = "  "
# Past this many characters a top-level union is written one member a line.
LINE_LENGTH = 100
_IDENTIFIER = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")
_PRIMITIVES = {"string": "string", "integer": "number", "number": "number", "boolean": "boolean"}
_KNOWN = {
    *("type", "properties", "required", "additionalProperties", "items", "prefixItems"),
    *("enum", "const", "anyOf", "oneOf", "$ref", "description"),
    # Narrowing only: validated by the schema, no TypeScript form.
    *("minimum", "maximum", "minItems", "maxItems", "minLength", "pattern", "format"),
}


def declarations(schemas: Mapping[str, Schema]) -> str:
    """``export`` declarations of every named schema, separated by blank lines."""
    return "\n\n".join(_declaration(name, schema) for name, schema in schemas.items()) + "\n"


def _declaration(name: str, schema: Schema) -> str:
    doc = _doc(schema.get("description"), "")
    if _is_interface(schema):
        return f"{doc}export interface {name} {_object(schema, '')}"
    line = f"export type {name} = {_type(schema, '')};"
    members = _union_members(schema)
    if len(line) > LINE_LENGTH and len(members) > 1:
        line = (
            f"export type {name} ="
            + "".join(f"\n{INDENT}| {_type(member, INDENT)}" for member in members)
            + ";"
        )
    return doc + line


def _is_interface(schema: Schema) -> bool:
    return schema.get("type") == "object" and "properties" in schema


def _union_members(schema: Schema) -> list[Schema]:
    if "enum" in schema:
        return [{"const": value} for value in schema["enum"]]
    return list(schema.get("anyOf") or schema.get("oneOf") or [])


def _doc(text: str | None, indent: str) -> str:
    if not text:
        return ""
    lines = text.strip().splitlines()
    if len(lines) == 1:
        return f"{indent}/** {lines[0]} */\n"
    return f"{indent}/**\n" + "".join(f"{indent} * {line}\n" for line in lines) + f"{indent} */\n"


def _literal(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    return json.dumps(value)


def _type(schema: Schema, indent: str) -> str:
    """The TypeScript type of ``schema``, written at nesting ``indent``."""
    unknown = set(schema) - _KNOWN
    if unknown:
        raise ValueError(f"no TypeScript for the JSON Schema keywords {sorted(unknown)}")
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "const" in schema:
        return _literal(schema["const"])
    if "enum" in schema:
        return " | ".join(_literal(value) for value in schema["enum"])
    if "anyOf" in schema or "oneOf" in schema:
        return " | ".join(_type(member, indent) for member in _union_members(schema))
    kind = schema.get("type")
    if isinstance(kind, list):
        return " | ".join(_type({**schema, "type": one}, indent) for one in kind)
    if kind == "null":
        return "null"
    if kind in _PRIMITIVES:
        return _PRIMITIVES[kind]
    if kind == "array":
        return _array(schema, indent)
    if kind == "object":
        return _object(schema, indent)
    raise ValueError(f"no TypeScript for the JSON Schema type {kind!r}")


def _array(schema: Schema, indent: str) -> str:
    if "prefixItems" in schema:
        if schema.get("items", True) is not False:
            raise ValueError("a tuple (prefixItems) must not allow more items")
        return "[" + ", ".join(_type(item, indent) for item in schema["prefixItems"]) + "]"
    item = _type(schema["items"], indent)
    return f"({item})[]" if " | " in item else f"{item}[]"


def _object(schema: Schema, indent: str) -> str:
    properties = schema.get("properties", {})
    extra = schema.get("additionalProperties", True)
    if extra is True:
        raise ValueError("say what an object's other properties are (additionalProperties)")
    if not properties:
        value = _type(extra, indent) if extra is not False else "never"
        return f"Record<string, {value}>"
    inner = indent + INDENT
    required = set(schema.get("required", ()))
    lines = []
    for key, value in properties.items():
        name = key if _IDENTIFIER.match(key) else _literal(key)
        optional = "" if key in required else "?"
        lines.append(
            f"{_doc(value.get('description'), inner)}{inner}{name}{optional}: "
            f"{_type(value, inner)};"
        )
    if extra is not False:
        lines.append(f"{inner}[key: string]: {_type(extra, inner)};")
    return "{\n" + "\n".join(lines) + f"\n{indent}}}"


# -- the files --------------------------------------------------------------------------


def openapi_json() -> str:
    """The text of ``docs/openapi.json``."""
    return json.dumps(contract.openapi(), indent=2, ensure_ascii=False) + "\n"


def typescript() -> str:
    """The text of ``webapp-frontend/src/api/contract.ts``: these values and types for the page."""
    lines = [
        "// Generated from webapp-backend/lookalike_web/contract.py: do not edit. Regenerate with",
        f"// {REGENERATE} (it writes docs/openapi.json too).",
        "",
        "/** Most bytes of a photo sent to the server in one upload. */",
        f"export const MAX_UPLOAD_BYTES = {MAX_UPLOAD_BYTES};",
        "",
        "/** Every `error.code` the API answers with, and its HTTP status. */",
        "export const ERROR_STATUS = {",
        *(f"  {code}: {status}," for code, (status, _meaning) in ERROR_CODES.items()),
        "} as const satisfies Record<ErrorCode, number>;",
        "",
        "// The JSON of every response: the schemas of docs/openapi.json (components.schemas).",
        "",
        declarations(SCHEMAS),
    ]
    return "\n".join(lines)


GENERATED = {OPENAPI_FILE: openapi_json, TYPESCRIPT_FILE: typescript}


def stale_files() -> list[Path]:
    """The generated files whose text differs from what this module generates now."""
    return [
        path
        for path, text in GENERATED.items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text()
    ]


def main(argv: list[str]) -> int:
    """Write the generated files (``--check``: only list the stale ones, exit 1 if any)."""
    stale = stale_files()
    if "--check" in argv:
        for path in stale:
            print(f"out of date: {path.relative_to(REPO_ROOT)} (regenerate: {REGENERATE})")
        return 1 if stale else 0
    for path in stale:
        path.write_text(GENERATED[path](), encoding="utf-8")
        print(f"wrote {path.relative_to(REPO_ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
