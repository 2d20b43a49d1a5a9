"""The package as a whole: its modules import one another without circles (checked on the source,
function-level imports included), and a method's name appears only where that method lives."""

import ast
import graphlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "lstsd_edu"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for p in PACKAGE.rglob("*.py")}


def imported(path: Path, known: dict[str, Path]) -> set[str]:
    """Every lstsd_edu module `path` imports, at any depth (function-level imports included)."""
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            submodules = {f"{target}.{alias.name}" for alias in node.names} & set(known)
            if submodules:  # `from .. import fused`: the submodule itself
                found |= submodules
            elif target in known:
                found.add(target)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
    return found - {here}


def test_no_import_circles():
    known = modules()
    graph = {name: imported(path, known) for name, path in known.items()}
    # a package's __init__ gathers its submodules; a submodule importing its own package's
    # __init__ back would be a circle, and is one here too
    list(graphlib.TopologicalSorter(graph).static_order())  # raises CycleError on a circle


def test_a_method_is_named_only_in_its_own_file_and_the_registry():
    """Born-Again, the method with the most unusual needs (two generations), is known only to its
    own file, where its settings and tuned values are declared too, and the registry."""
    allowed = {PACKAGE / "methods" / "born_again.py", PACKAGE / "methods" / "__init__.py"}
    files = [p for p in PACKAGE.rglob("*") if p.is_file() and "__pycache__" not in p.parts]  # any kind
    offenders = [
        str(p.relative_to(PACKAGE))
        for p in files
        if p not in allowed and any(name in p.read_bytes() for name in (b"born_again", b"BornAgain"))
    ]
    assert not offenders, f"Born-Again named outside its own file: {offenders}"
