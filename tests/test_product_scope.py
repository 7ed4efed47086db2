"""kb/product_scope.yml: a question that names another company's product, and not the service, gets no article."""
from __future__ import annotations

import os
import time
from pathlib import Path

from bot.kb.product_scope import ProductScope, ProductScopeFile

SCOPE = ProductScope(own=("Lumio",), others=("Disney Plus", "Disney+", "Max", "gym", "McDonald's"))


def test_another_companys_product_is_named_as_the_file_writes_it() -> None:
    assert SCOPE.other_product("how do i cancel my DISNEY   PLUS subscription") == "Disney Plus"
    assert SCOPE.other_product("disney+ keeps buffering") == "Disney+"
    assert SCOPE.other_product("cancel my gym membership") == "gym"
    assert SCOPE.other_product("mcdonald's app crashed") == "McDonald's"


def test_names_match_whole_and_the_services_own_name_wins() -> None:
    assert SCOPE.other_product("what is the maximum video quality") is None  # "max" inside a word
    assert SCOPE.other_product("gymnastics channel on lumio?") is None
    assert SCOPE.other_product("lumio buffers but disney plus is fine") is None
    assert SCOPE.other_product("how do i cancel") is None
    assert ProductScope().other_product("cancel my gym membership") is None


def test_the_file_is_reread_when_a_lead_edits_it(tmp_path: Path) -> None:
    path = tmp_path / "product_scope.yml"
    served = ProductScopeFile(path, recheck_seconds=0)
    assert served.current().other_product("cancel my gym") is None  # no file: every question is ours
    path.write_text("own: [Lumio]\nothers: [gym]\n")
    assert served.current().other_product("cancel my gym") == "gym"
    path.write_text("own: [Lumio]\nothers: not a list\n")
    later = time.time() + 2
    os.utime(path, (later, later))
    assert served.current().other_product("cancel my gym") == "gym"  # a broken edit keeps the last good scope
