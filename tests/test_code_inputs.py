"""Every package module a rule's script runs is declared as an input of that rule."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from unetscape.workflow.code_inputs import code_inputs, script_modules

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((REPO / "scripts").glob("*.py"))


def runtime_imports(script: Path) -> set[str]:
    """Package modules that importing the script loads, in a fresh interpreter (its body runs
    only under __main__, so this executes exactly its imports)."""
    code = (
        "import importlib.util, json, sys\n"
        f"spec = importlib.util.spec_from_file_location('rule_script', {str(script)!r})\n"
        "spec.loader.exec_module(importlib.util.module_from_spec(spec))\n"
        "print(json.dumps(sorted(m.__file__ for n, m in sys.modules.items()"
        " if n.split('.')[0] == 'unetscape' and getattr(m, '__file__', None))))\n"
    )
    env = {"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return {str(Path(p).resolve()) for p in json.loads(out.stdout.splitlines()[-1])}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_static_closure_holds_every_module_the_script_really_imports(script):
    declared = {str(p) for p in script_modules(script, REPO / "src")}
    missing = runtime_imports(script) - declared
    assert not missing, f"{script.name} imports {sorted(missing)}, which its rule does not declare"


def test_every_rule_declares_the_code_of_its_own_script():
    rules = "\n".join(p.read_text() for p in sorted((REPO / "rules").glob("*.smk")))
    blocks = re.split(r"\n(?=[ ]*(?:rule|checkpoint) \w+:)", rules)
    run = set()
    for block in blocks:
        script = re.search(r'script:\s*\n\s*"\.\./scripts/([\w.]+)"', block)
        if not script:
            continue
        name = re.match(r"(?:rule|checkpoint) (\w+):", block.strip()).group(1)
        code = re.findall(r'code=code\("([\w.]+)"\)', block)
        assert code == [script.group(1)], f"rule {name} runs {script.group(1)} but declares code {code}"
        run.add(script.group(1))
    assert run == {p.name for p in SCRIPTS}  # every script is some rule's (external runs share scripts)


def test_lazy_imports_and_lazy_package_names_are_followed(tmp_path):
    src = tmp_path / "src"
    pkg = src / "unetscape"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n    return g\n")
    (pkg / "b.py").write_text("from unetscape.sub import thing\n")
    (pkg / "sub" / "__init__.py").write_text('_SOURCES = {"thing": "impl"}\n')
    (pkg / "sub" / "impl.py").write_text("thing = 1\n")
    (pkg / "unused.py").write_text("")
    script = tmp_path / "s.py"
    script.write_text("from unetscape.a import f\n")
    names = sorted(p.relative_to(src).as_posix() for p in script_modules(script, src))
    assert names == ["unetscape/__init__.py", "unetscape/a.py", "unetscape/b.py", "unetscape/sub/__init__.py",
                     "unetscape/sub/impl.py"]
    # relative to the working directory, so a moved project keeps the same inputs
    assert all(not Path(p).is_absolute() for p in code_inputs(script, src, start=tmp_path))
