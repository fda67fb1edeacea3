"""Review comments against a pull request's diff: a line the hunk shows on its side is taken; a
line outside any hunk, a file not in the diff, or a range across hunks is not."""

from __future__ import annotations

from openinspect.integrations.github.diffcheck import DiffMap, LineComment, parse_patch
from openinspect.scm.base import PullFile

PATCH = "\n".join(
    [
        "@@ -1,4 +1,5 @@",
        " def add(a, b):",
        "-    return a - b",
        "+    # the sum",
        "+    return a + b",
        " ",
        " ",
        "@@ -20,2 +21,3 @@ class Calc:",
        "     x = 1",
        "+    y = 2",
        "     z = 3",
        "\\ No newline at end of file",
    ]
)


def test_the_lines_each_side_of_a_hunk_shows() -> None:
    lines = parse_patch(PATCH)
    assert sorted(lines.right) == [1, 2, 3, 4, 5, 21, 22, 23]
    assert sorted(lines.left) == [1, 2, 3, 4, 20, 21]
    assert lines.right[3] == 0 and lines.right[22] == 1


def test_comments_inside_the_diff_pass_and_the_others_say_why() -> None:
    diff = DiffMap.from_files(
        [PullFile("calc.py", "modified", 3, 1, PATCH), PullFile("logo.png", "added", 0, 0)]
    )
    assert diff.why_not(LineComment("calc.py", 3)) is None
    assert diff.why_not(LineComment("calc.py", 2, side="LEFT")) is None
    assert diff.why_not(LineComment("calc.py", 3, start_line=2)) is None
    assert "outside" in (diff.why_not(LineComment("calc.py", 10)) or "")
    assert "not in" in (diff.why_not(LineComment("README.md", 1)) or "")
    assert "not in" in (diff.why_not(LineComment("logo.png", 1)) or "")  # no patch
    assert "same hunk" in (diff.why_not(LineComment("calc.py", 22, start_line=3)) or "")
    assert "before" in (diff.why_not(LineComment("calc.py", 3, start_line=3)) or "")
