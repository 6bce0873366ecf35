"""Every sentence a person reads lives in templates/: no handler passes Chinese text to an error it
raises, nor to a note or warning an import report shows. (That every template key the code names
exists is checked once, for all production code, in ``tests/test_declared.py``.)"""

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
KEYED = {"UsageError", "RowError", "CellError", "SheetError", "Refusal", "NotFound", "DateError", "PhraseError",
         "Reasoned"}
# Errors and notes whose every value is data (a name, a number, a list): no Chinese literal at all, not even
# a separator to join a list with — the template joins it.
DATA_ONLY = {"SheetError"}
# A report's notes and warnings (``sheet.notes``, ``report.warnings``) carry a template key and values: what
# is appended to them is a keyed call, never text.
CARRIERS = {"notes", "warnings"}
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
        if name in DATA_ONLY:
            found += [(call.lineno, name, a) for a in call.args[1:]] + [(call.lineno, name, k.value) for k in call.keywords]
    return sorted(found, key=lambda f: f[0])


def _all_texts(node: ast.AST) -> list[str]:
    """Every string literal inside an expression, however deep (``"、".join(names)`` included)."""
    return [n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _carried(tree: ast.AST) -> list[tuple[int, str, ast.AST]]:
    """(line, call, argument) for everything appended or added to a report's notes or warnings."""
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in ("append", "extend")
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr in CARRIERS):
            found += [(node.lineno, f"{node.func.value.attr}.{node.func.attr}", a) for a in node.args]
        elif (isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Attribute)
              and node.target.attr in CARRIERS):
            found.append((node.lineno, f"{node.target.attr} +=", node.value))
    return sorted(found, key=lambda f: f[0])


def _sentence_in(name: str, arg: ast.AST) -> bool:
    """Text where a template key and values belong: Chinese anywhere in what is carried, or an appended
    item that is not a keyed call (``Reasoned("imports/…", …)``)."""
    if isinstance(arg, ast.Call) and _name(arg) in KEYED:
        return any(_CJK.search(t) for k in arg.keywords for t in _all_texts(k.value)) or any(
            _CJK.search(t) for a in arg.args for t in _texts(a))
    if name.endswith("append"):
        return True
    return any(_CJK.search(t) for t in _all_texts(arg))


def test_no_handler_passes_a_sentence_to_an_error():
    offenders = []
    for path in SOURCES:
        for line, name, arg in _keyed_arguments(ast.parse(path.read_text(encoding="utf-8"))):
            if any(_CJK.search(t) for t in (_all_texts(arg) if name in DATA_ONLY else _texts(arg))):
                offenders.append(f"{path.relative_to(ROOT)}:{line} {name}({ast.unparse(arg)[:50]})")
    assert not offenders, "sentences belong in templates/:\n" + "\n".join(offenders)


def test_import_notes_and_warnings_carry_template_keys():
    offenders = []
    for path in SOURCES:
        for line, name, arg in _carried(ast.parse(path.read_text(encoding="utf-8"))):
            if _sentence_in(name, arg):
                offenders.append(f"{path.relative_to(ROOT)}:{line} {name}({ast.unparse(arg)[:50]})")
    assert not offenders, "notes and warnings are template keys with values:\n" + "\n".join(offenders)


def test_the_walk_finds_what_it_looks_for():
    """The checks above see a sentence where it would be, and a key where it is."""
    tree = ast.parse('raise UsageError(f"年份“{token}”不对", ex)\nraise RowError("x/y", field="a")\n'
                     'word(args, "请写上姓名")\nrest(args, "k/a", too_long="k/b")\nraise Refusal("k/c" if a else "k/d")')
    texts = [t for _, _, arg in _keyed_arguments(tree) for t in _texts(arg)]
    assert texts == ["年份“”不对", "x/y", "请写上姓名", "k/a", "k/b", "k/c", "k/d"]
    tree = ast.parse('raise SheetError("k/e", names="、".join(n), what="表格", sheet=s.name)\n'
                     'sheet.notes.append(f"从第 {n} 行起")\nself.report.warnings.append(Reasoned("k/f", n=1))\n'
                     'report.warnings += sheet.notes\nreport.warnings += ["提示"]\nreport.warnings.append(text)')
    texts = [t for _, name, arg in _keyed_arguments(tree) for t in _all_texts(arg) if name == "SheetError"]
    assert texts == ["k/e", "、", "表格"]
    carried = [(name, _sentence_in(name, arg)) for _, name, arg in _carried(tree)]
    assert carried == [("notes.append", True), ("warnings.append", False), ("warnings +=", False),
                       ("warnings +=", True), ("warnings.append", True)]
