"""No module but store/moves.py writes a status column: the checker reads the source of src/orchestrator
(ast for SQLAlchemy statements, a pattern for raw SQL) and reports every status it sees written."""

from __future__ import annotations

import ast
import re
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "orchestrator"
THE_MOVE = "store/moves.py"
# Creation is not a move: these files insert rows in their lifecycle's first status (`<LIFECYCLE>.initial`).
INITIAL_INSERTS = frozenset(
    {"store/agents.py", "store/tasks.py", "store/queue.py", "store/events.py", "store/webhooks.py"}
)
_RAW_SQL_WRITE = re.compile(
    r"\bset\b[^;]*\bstatus\s*=|\binsert\s+into\s+\w+\s*\([^)]*\bstatus\b", re.IGNORECASE | re.DOTALL
)


def _is_initial(value: ast.expr) -> bool:
    """`<LIFECYCLE>.initial.value`: the first status of a lifecycle."""
    return (
        isinstance(value, ast.Attribute)
        and value.attr == "value"
        and isinstance(value.value, ast.Attribute)
        and value.value.attr == "initial"
    )


def _statement_kind(receiver: ast.expr) -> str | None:
    """'insert' or 'update' for `insert(t)...` / `update(t).where(...)...`, the receiver of `.values`."""
    node = receiver
    while isinstance(node, ast.Call):
        if isinstance(node.func, ast.Name) and node.func.id in ("insert", "update"):
            return node.func.id
        if not isinstance(node.func, ast.Attribute):
            return None
        node = node.func.value
    return None


def _status_values(node: ast.AST, names: dict[str, list[ast.AST]]) -> list[ast.expr]:
    """Each value given to a `status` key in the subtree: keywords, dict keys, `x["status"] = ...`, and
    the same inside the local variables it spreads (`**values`)."""
    found: list[ast.expr] = []
    seen: set[str] = set()
    todo = [node]
    while todo:
        sub = todo.pop()
        for child in ast.walk(sub):
            if isinstance(child, ast.keyword):
                if child.arg == "status":
                    found.append(child.value)
                elif child.arg is None and isinstance(child.value, ast.Name) and child.value.id not in seen:
                    seen.add(child.value.id)
                    todo.extend(names.get(child.value.id, []))
            elif isinstance(child, ast.Dict):
                for key, value in zip(child.keys, child.values, strict=True):
                    if isinstance(key, ast.Constant) and key.value == "status":
                        found.append(value)
                    if key is None and isinstance(value, ast.Name) and value.id not in seen:
                        seen.add(value.id)
                        todo.extend(names.get(value.id, []))
            elif isinstance(child, ast.Name) and child.id not in seen and child.id in names:
                seen.add(child.id)
                todo.extend(names[child.id])
    return found


def _assignments(func: ast.AST) -> dict[str, list[ast.AST]]:
    """What each local name is bound to or changed with in a function: assignments, `x[k] = v` and
    calls on it (`x.update(...)`, `x.setdefault(...)`)."""
    out: dict[str, list[ast.AST]] = {}
    for node in ast.walk(func):
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Name) and node.value is not None:
                    out.setdefault(target.id, []).append(node.value)
                if isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name):
                    key = target.slice
                    if isinstance(key, ast.Constant) and key.value == "status" and node.value is not None:
                        out.setdefault(target.value.id, []).append(ast.Dict([key], [node.value]))
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and isinstance(node.func.value, ast.Name)
            and node.func.attr in ("update", "setdefault")
        ):
            if node.func.attr == "setdefault" and node.args and isinstance(node.args[0], ast.Constant):
                values = node.args[1:2] or [ast.Constant(None)]
                out.setdefault(node.func.value.id, []).append(ast.Dict([node.args[0]], values))
            else:
                out.setdefault(node.func.value.id, []).append(node)
    return out


def status_writes(source: str, relative: str) -> list[str]:
    """Where `source` (the file at `relative` under src/orchestrator) writes a status column, as
    `file:line: what`; empty for store/moves.py and for first statuses inserted by INITIAL_INSERTS."""
    if relative == THE_MOVE:
        return []
    tree = ast.parse(source)
    found: list[str] = []
    scopes: list[ast.AST] = [
        tree,
        *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)),
    ]
    reported: set[int] = set()
    # statements built once at module level and executed by name: `_S = update(t)...` then
    # `conn.execute(_S, {...})`
    built_once = {
        target.id: node.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    for scope in scopes:
        names = _assignments(scope) if scope is not tree else {}
        for node in ast.walk(scope):
            if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute):
                continue
            if id(node) in reported:
                continue
            if node.func.attr == "values":
                kind = _statement_kind(node.func.value)
                args: list[ast.AST] = [*node.args, *node.keywords]
            elif node.func.attr == "execute" and len(node.args) > 1:
                statement = node.args[0]
                if isinstance(statement, ast.Name) and statement.id in built_once:
                    statement = built_once[statement.id]
                kind = _statement_kind(statement) if isinstance(statement, ast.Call) else None
                args = list(node.args[1:])
            else:
                continue
            values = [v for arg in args for v in _status_values(arg, names)]
            if not values:
                continue
            allowed = relative in INITIAL_INSERTS and kind == "insert" and all(map(_is_initial, values))
            if not allowed:
                reported.add(id(node))
                found.append(f"{relative}:{node.lineno}: {ast.unparse(node)[:120]}")
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _RAW_SQL_WRITE.search(node.value)
        ):
            found.append(f"{relative}:{node.lineno}: raw SQL {node.value[:80]!r}")
    return found


def test_no_module_but_the_move_writes_a_status() -> None:
    found = [
        hit
        for path in sorted(SRC.rglob("*.py"))
        for hit in status_writes(path.read_text(), path.relative_to(SRC).as_posix())
    ]
    assert found == [], "status written outside store/moves.py:\n" + "\n".join(found)


def test_the_move_itself_exists_and_writes_the_status() -> None:
    source = (SRC / THE_MOVE).read_text()
    assert status_writes(source, "store/elsewhere.py"), "the checker no longer sees the move's own write"


def _hits(body: str, relative: str = "store/queue.py", module: str = "") -> list[str]:
    """The checker's findings in a function whose body is `body` (lines joined by newlines), after the
    module-level lines `module`."""
    source = module + "def f(conn, fields, e):\n" + "".join(f"    {line}\n" for line in body.splitlines())
    return status_writes(source, relative)


def test_the_checker_sees_every_shape_of_a_status_write() -> None:
    strays = {
        "keyword": "conn.execute(update(queue).where(x).values(status='failed'))",
        "dict": "conn.execute(update(queue).values({'status': 'failed'}))",
        "spread local": "values = {**fields, 'status': 'x'}\nconn.execute(update(agents).values(**values))",
        "key set later": "values = {}\nvalues['status'] = 'x'\nconn.execute(update(agents).values(**values))",
        "wrapped": "conn.execute(update(tasks).values(**e({'status': 'x'})))",
        "executemany": "conn.execute(update(tasks), [{'status': 'x'}])",
        "raw update": "conn.exec_driver_sql(\"UPDATE tasks SET status = 'x' WHERE id = 1\")",
        "raw insert": "conn.exec_driver_sql(\"INSERT INTO queue (id, status) VALUES (1, 'x')\")",
        "update to the first status": "conn.execute(update(queue).values(status=QUEUE_ITEMS.initial.value))",
        "insert in another status": "conn.execute(insert(queue).values(status='processing'))",
    }
    for name, body in strays.items():
        assert _hits(body), name
    initial = "conn.execute(insert(queue).values(status=QUEUE_ITEMS.initial.value))"
    assert _hits(initial) == []
    assert _hits(initial, "api/queue.py"), "a first status inserted outside the allowed files"
    not_writes = (
        "reply = Health(status='ok'), {'status': 'x'}\n"
        "conn.execute(update(queue).values(retry_at=None))\n"
        "conn.execute(select(queue).where(queue.c.status == 'queued'))"
    )
    assert _hits(not_writes) == []


def test_the_checker_sees_statements_built_once_at_module_level() -> None:
    module = "_UPDATE = update(queue).where(x)\n_INSERT = insert(queue).returning(y)\n"
    assert _hits("conn.execute(_UPDATE, {'status': 'failed'})", module=module)
    assert _hits("values = {**fields, 'status': 'x'}\nconn.execute(_UPDATE, values)", module=module)
    assert _hits("conn.execute(_INSERT, {'status': 'processing'})", module=module)
    assert _hits("conn.execute(_INSERT, {'status': QUEUE_ITEMS.initial.value})", module=module) == []
