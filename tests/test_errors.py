"""Exit codes are a contract: stable numbers, one per error class, documented in the README."""

from __future__ import annotations

import re

from mam_install import _errors
from mam_install._errors import ExitCode, MamError
from workspaces import ROOT


def test_every_error_class_has_its_own_exit_code():
    classes = [c for c in vars(_errors).values() if isinstance(c, type) and issubclass(c, MamError)]
    codes = [c.exit_code for c in classes if c is not MamError]
    assert len(codes) == len(set(codes)) == 10


def test_the_readme_documents_exactly_these_exit_codes():
    readme = (ROOT / "README.md").read_text()
    documented = {int(n) for n in re.findall(r"^\| (\d+) \| ", readme, flags=re.MULTILINE)}
    assert documented == {int(code) for code in ExitCode}
