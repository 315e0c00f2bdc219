"""mkdocs hook: pages generated at build time, so that they cannot drift from the code.

* `configuration.md`: every key of `ptbxl_xai/resources/config.schema.yaml` with its type (from the schema), its
  default (the schema's, else `config.yaml`'s, the one home of defaults) and its description (the schema's
  `description`, else the comment beside or above the key in `config.yaml`, else `docs/_hooks/config_notes.yaml`
  for the few keys `config.yaml` does not set). A key without any description, or a note for a key the schema
  does not have, is a warning, which `mkdocs build --strict` turns into a failure.
* `api/...`: one mkdocstrings page per module of the `ptbxl_xai` package, found by walking the package folder,
  and the "API reference" entry of the navigation that lists them.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import yaml
from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.generate")

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "ptbxl_xai"
SCHEMA = PACKAGE / "resources" / "config.schema.yaml"
CONFIG = ROOT / "config.yaml"
NOTES = Path(__file__).with_name("config_notes.yaml")
API_NAV_TITLE = "API reference"
CONFIG_PAGE = "configuration.md"


# ---------------------------------------------------------------------------------------------- schema walk
def resolve(schema: dict, node: dict) -> tuple[dict, str | None]:
    """`node` with its `$ref` (local, `#/...`) merged in, and the ref itself (None without one)."""
    ref = node.get("$ref")
    if not ref:
        return node, None
    target = schema
    for part in ref.lstrip("#/").split("/"):
        target = target[part]
    return {**target, **{k: v for k, v in node.items() if k != "$ref"}}, ref


def schema_keys(schema: dict) -> list[tuple[str, dict, str | None]]:
    """(key path, resolved node, path of the first key with the same `$ref` or None), in schema order.

    A mapping with free names (`additionalProperties` as a schema) gets `<name>` in its path. A `$ref` to an
    object is expanded at its first key only; later keys with the same ref point to that first one.
    """
    out: list[tuple[str, dict, str | None]] = []
    expanded: dict[str, str] = {}
    REQUIRED.clear()

    def walk(node: dict, prefix: str) -> None:
        children = list(node.get("properties", {}).items())
        extra = node.get("additionalProperties")
        if isinstance(extra, dict):
            children.append(("<name>", extra))
        for key, sub in children:
            path = f"{prefix}.{key}" if prefix else key
            if key in node.get("required", []):
                REQUIRED.add(path)
            sub, ref = resolve(schema, sub)
            if ref and ref in expanded and _has_keys(sub):
                out.append((path, sub, expanded[ref]))
                continue
            if ref:
                expanded[ref] = path
            out.append((path, sub, None))
            walk(sub, path)

    walk(schema, "")
    return out


REQUIRED: set[str] = set()  # key paths their parent requires, filled by schema_keys


def _has_keys(node: dict) -> bool:
    return bool(node.get("properties")) or isinstance(node.get("additionalProperties"), dict)


# ------------------------------------------------------------------------------------ config.yaml comments
_KEY = re.compile(r"^(\s*)([A-Za-z_][A-Za-z0-9_.-]*):(\s|$)")


def _split_comment(line: str) -> tuple[str, str | None, int]:
    """(code, comment or None, column of the '#') of one line, ignoring '#' inside quotes."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i], line[i + 1 :], i
    return line, None, -1


def config_comments(text: str) -> dict[str, list[str]]:
    """Key path -> comment lines of `config.yaml`: the block just above the key and the one beside it.

    A comment line aligned with the previous key's side comment continues it. Keys inside flow mappings
    (`{...}`) are not separated: the comment belongs to the key the flow mapping is the value of.
    """
    comments: dict[str, list[str]] = {}
    stack: list[tuple[int, str]] = []
    pending: list[str] = []
    side_col, side_path = -1, None
    for line in text.splitlines():
        code, comment, col = _split_comment(line)
        if not code.strip():
            if comment is None:  # blank line: a block above no key
                pending, side_col = [], -1
            elif col == side_col and side_path:
                comments[side_path].append(comment)
            else:
                pending.append(comment)
                side_col = -1
            continue
        m = _KEY.match(code)
        if not m or code.lstrip().startswith("-"):
            pending, side_col = [], -1
            continue
        indent = len(m.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, m.group(2)))
        path = ".".join(k for _, k in stack)
        comments[path] = pending + ([comment] if comment is not None else [])
        inner = _flow_single_key(code[m.end() :])
        if inner and comment is not None:  # `shap: {npermutations: 1}  # ...`: the comment is the inner key's
            comments[path] = pending
            path = f"{path}.{inner}"
            comments[path] = [comment]
        pending = []
        side_col, side_path = (col, path) if comment is not None else (-1, None)
    return comments


def _flow_single_key(value: str) -> str | None:
    """The key of a one-key flow mapping with a scalar value (`{npermutations: 1}`), else None."""
    value = value.strip()
    if not value.startswith("{"):
        return None
    try:
        parsed = yaml.safe_load(value)
    except yaml.YAMLError:
        return None
    if isinstance(parsed, dict) and len(parsed) == 1:
        ((key, inner),) = parsed.items()
        if not isinstance(inner, (dict, list)):
            return str(key)
    return None


def _comment_text(lines: list[str]) -> str:
    """Comment lines as one paragraph; a line indented past the '# ' starts a new line (a list in YAML)."""
    out: list[str] = []
    for raw in lines:
        text = raw[1:] if raw.startswith(" ") else raw
        if out and text.startswith(" ") and text.strip():
            out.append("\n" + text.strip())
        elif text.strip():
            out.append((" " if out else "") + text.strip())
    return "".join(out)


# --------------------------------------------------------------------------------------------- rendering
_CODE = re.compile(r"(`[^`]*`)")


def _cell(text: str) -> str:
    """Text for a Markdown table cell: pipes escaped outside code spans, '<' escaped, line breaks as <br>."""
    parts = _CODE.split(text)
    for i in range(0, len(parts), 2):
        parts[i] = parts[i].replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")
    return "".join(parts).replace("\n", "<br>")


def _value(v) -> str:
    if isinstance(v, dict) and len(v) > 4:
        return "names: " + ", ".join(f"`{k}`" for k in v)
    text = yaml.safe_dump(v, default_flow_style=True, width=10_000, sort_keys=False).strip()
    text = text.removesuffix("...").strip()
    return f"`{text}`"


def type_text(node: dict) -> str:
    kinds = node.get("type")
    kinds = kinds if isinstance(kinds, list) else [kinds] if kinds else []
    main = [k for k in kinds if k != "null"]
    if "enum" in node:
        text = "one of " + ", ".join(f"`{v}`" for v in node["enum"])
    elif "const" in node:
        text = f"`{node['const']}`"
    else:
        text = " or ".join(main) if main else "any"
        limits = []
        for key, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
            if key in node:
                limits.append(f"{sign} {node[key]}")
        if "multipleOf" in node:
            limits.append(f"multiple of {node['multipleOf']}")
        if "minLength" in node:
            limits.append("not empty" if node["minLength"] == 1 else f"length ≥ {node['minLength']}")
        if "pattern" in node:
            limits.append(f"matching `{node['pattern']}`")
        if "items" in node and "array" in main:
            limits.append("items: " + type_text(node["items"]))
        if "minItems" in node or "maxItems" in node:
            lo, hi = node.get("minItems"), node.get("maxItems")
            limits.append(f"{lo} items" if lo == hi else f"≥ {lo} items" if hi is None else f"{lo}-{hi} items")
        if node.get("additionalProperties") is False and node.get("properties"):
            limits.append("the keys below")
        elif isinstance(node.get("additionalProperties"), dict):
            limits.append("any names" if "propertyNames" not in node else "names as `<name>` below")
        if limits:
            text += " (" + "; ".join(limits) + ")"
    if "null" in kinds:
        text += ", or `null`"
    return text


def _lookup(tree, path: str):
    node = tree
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None, False
        node = node[part]
    return node, True


def configuration_page() -> str:
    schema = yaml.safe_load(SCHEMA.read_text())
    config_text = CONFIG.read_text()
    defaults = yaml.safe_load(config_text)
    comments = config_comments(config_text)
    notes = yaml.safe_load(NOTES.read_text()) or {}
    keys = schema_keys(schema)
    paths = {p for p, _, _ in keys}
    for path in notes:
        if path not in paths:
            log.warning("docs/_hooks/config_notes.yaml: %s is not a key of config.schema.yaml", path)

    lines = [
        "# Configuration reference",
        "",
        "Generated from `ptbxl_xai/resources/config.schema.yaml` when the site is built: every key the schema",
        "accepts, its type, its default and what it does. Defaults come from the schema or from `config.yaml`",
        "(the one home of defaults); descriptions from the schema or from the comments of `config.yaml`.",
        "Keys are checked against the schema before any job runs, so a typo fails at once, naming the key.",
        "`<name>` stands for a name you choose (a run, an ablation variant, a record). How to pass values:",
        "[Usage](usage.md#configuration-files-and-config).",
        "",
    ]
    section = None
    for path, node, same_as in keys:
        top = path.split(".")[0]
        if top != section:
            section = top
            lines += ["", f"## {top}", "", "| key | type | default | description |", "|---|---|---|---|"]
        note = notes.get(path) or {}
        if same_as:
            target = f"[`{same_as}`](#{same_as})" if "." not in same_as else f"`{same_as}`"
            kind = f"object: the keys of {target}"
        else:
            kind = type_text(node)
        if "default" in node and not (node.get("properties") and node["default"] == {}):
            default = _value(node["default"])
        elif "default" in note:
            default = note["default"]
        else:
            value, found = _lookup(defaults, path)
            if found and not (isinstance(value, dict) and _has_keys(node) and node.get("properties")):
                default = _value(value)
            elif found:
                default = ""
            else:
                default = "required" if path in REQUIRED else "" if "<name>" in path else "unset"
        description = node.get("description") or _comment_text(comments.get(path, []))
        if description and note.get("description"):
            log.warning("docs/_hooks/config_notes.yaml: %s is described in config.yaml or the schema already", path)
        description = description or note.get("description")
        if not description:
            log.warning(
                "config key %s has no description: add a comment beside it in config.yaml, a `description` in "
                "config.schema.yaml, or an entry in docs/_hooks/config_notes.yaml",
                path,
            )
            description = ""
        lines.append(f"| `{path}` | {_cell(kind)} | {_cell(default)} | {_cell(description.strip())} |")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ API reference
def api_modules() -> list[str]:
    """Dotted names of every module and package under ptbxl_xai/, packages before their modules."""
    names = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(ROOT).with_suffix("")
        parts = list(rel.parts)
        if "__pycache__" in parts or not all(p.isidentifier() for p in parts):
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        elif parts[-1] == "__main__" or parts[-1].startswith("_"):
            continue
        if all((ROOT.joinpath(*parts[:i], "__init__.py")).exists() for i in range(1, len(parts))):
            names.append(".".join(parts))
    return sorted(set(names), key=lambda n: n.split("."))


def _is_package(name: str) -> bool:
    return ROOT.joinpath(*name.split("."), "__init__.py").exists()


def _api_uri(name: str) -> str:
    parts = name.split(".")
    return "api/" + "/".join(parts) + ("/index.md" if _is_package(name) else ".md")


def api_nav(names: list[str]) -> list:
    """Nested navigation: a section per package, its own page first (Material's section index)."""

    def build(package: str) -> list:
        items: list = [_api_uri(package)]
        depth = package.count(".") + 1
        for name in names:
            if name.startswith(package + ".") and name.count(".") == depth:
                title = name.rsplit(".", 1)[-1]
                items.append({title: build(name)} if _is_package(name) else {title: _api_uri(name)})
        return items

    return build("ptbxl_xai")


def api_page(name: str) -> str:
    """The module's own heading (level 1, its anchor the dotted name) comes from mkdocstrings."""
    return f"::: {name}\n    options:\n      show_root_heading: true\n      heading_level: 1\n"


# ---------------------------------------------------------------------------------------------- the hooks
_MODULES: list[str] = []  # one walk per build, shared by the navigation and the pages


def on_config(config):
    _MODULES[:] = api_modules()
    nav = config.get("nav") or []
    for i, entry in enumerate(nav):
        if isinstance(entry, dict) and API_NAV_TITLE in entry:
            nav[i] = {API_NAV_TITLE: api_nav(_MODULES)}
    return config


def on_files(files, config):
    files.append(File.generated(config, CONFIG_PAGE, content=configuration_page()))
    for name in _MODULES:
        files.append(File.generated(config, _api_uri(name), content=api_page(name)))
    return files
