"""Every sentence a person reads lives in templates/: no handler passes Chinese text to an error it
raises, and every template key the code names exists — a reworded or renamed template fails here, not
on someone's message."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = ROOT / "templates"
# Where answers, refusals, usage reasons, import row errors and date/phrase errors are raised.
SOURCES = sorted([*ROOT.glob("handlers/**/*.py"), ROOT / "bot" / "dates.py", ROOT / "bot" / "phrases.py",
                  ROOT / "bot" / "gateway.py"])
# Calls whose first argument (and reason-like keywords) is a template key, never a sentence.
KEYED = {"UsageError", "RowError", "CellError", "Refusal", "NotFound", "DateError", "PhraseError", "Reasoned"}
READERS = {"word", "ticket", "rest"}  # handlers/args.py: the reason is the second argument
KEY_KEYWORDS = {"reason", "too_long"}
_CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def _name(call: ast.Call) -> str:
    func = call.func
    if isinstance(func, ast.Attribute):
        return func.attr if func.attr != "of" else f"{getattr(func.value, 'id', '')}.of"
    return getattr(func, "id", "")


def _texts(node: ast.AST) -> list[str]:
    """The literal text in an argument: a string, an f-string's fixed parts, either side of a conditional."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        return ["".join(v.value for v in node.values if isinstance(v, ast.Constant))]
    if isinstance(node, ast.IfExp):
        return _texts(node.body) + _texts(node.orelse)
    if isinstance(node, ast.BinOp):
        return _texts(node.left) + _texts(node.right)
    return []


def _keyed_arguments(tree: ast.AST) -> list[tuple[int, str, ast.AST]]:
    """(line, call, argument) for every argument that must be a template key."""
    found = []
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        name = _name(call)
        if name in KEYED and call.args:
            found.append((call.lineno, name, call.args[0]))
        elif name == "Answer.of" and call.args:
            found.append((call.lineno, name, call.args[0]))
        elif name in READERS and len(call.args) > 1:
            found.append((call.lineno, name, call.args[1]))
        if name in KEYED | READERS:
            found += [(call.lineno, name, k.value) for k in call.keywords if k.arg in KEY_KEYWORDS]
    return found


def test_no_handler_passes_a_sentence_to_an_error():
    offenders = []
    for path in SOURCES:
        for line, name, arg in _keyed_arguments(ast.parse(path.read_text(encoding="utf-8"))):
            if any(_CJK.search(t) for t in _texts(arg)):
                offenders.append(f"{path.relative_to(ROOT)}:{line} {name}({ast.unparse(arg)[:50]})")
    assert not offenders, "sentences belong in templates/:\n" + "\n".join(offenders)


def test_every_template_key_the_code_names_exists():
    missing = []
    for path in SOURCES:
        for line, name, arg in _keyed_arguments(ast.parse(path.read_text(encoding="utf-8"))):
            for key in _texts(arg):
                if isinstance(arg, ast.JoinedStr) or not key:
                    continue  # a key built at run time is checked where it is built
                if not (TEMPLATES / f"{key}.md").is_file():
                    missing.append(f"{path.relative_to(ROOT)}:{line} {name}({key!r})")
    assert not missing, "templates missing:\n" + "\n".join(missing)


def test_the_walk_finds_what_it_looks_for():
    """The checks above see a sentence where it would be, and a key where it is."""
    tree = ast.parse('raise UsageError(f"年份“{token}”不对", ex)\nraise RowError("x/y", field="a")\n'
                     'word(args, "请写上姓名")\nrest(args, "k/a", too_long="k/b")\nraise Refusal("k/c" if a else "k/d")')
    texts = [t for _, _, arg in _keyed_arguments(tree) for t in _texts(arg)]
    assert texts == ["年份“”不对", "x/y", "请写上姓名", "k/a", "k/b", "k/c", "k/d"]
