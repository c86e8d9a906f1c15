#!/usr/bin/env python3
"""Sizes (issue "Restructure once"): outside tests/ and bench/, no C++ source file is longer
than MAX_FILE lines and no function body longer than MAX_FUNCTION lines. Prints every file
and function over its limit (path, line, length) and exits 1 if there is one. Run by ctest
as `sizes`.

Functions are found by their braces, with comments, strings and character literals left
out: a block opened at namespace or class scope after a closing parenthesis (a parameter
list, possibly followed by const, noexcept, override, a trailing return type or a
constructor's initializer list) is a function body, lambdas inside it included."""

import pathlib
import re
import subprocess
import sys

MAX_FILE = 450  # "about 400"
MAX_FUNCTION = 80
SKIP = {"tests", "bench", "cmake"}


def strip(text):
    """The text with comments, string and character literals blanked (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            i = j
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            out.append("\n" * text.count("\n", i, j))
            i = j
        elif text.startswith('R"', i):
            m = re.match(r'R"([^(]*)\(', text[i:])
            end = text.find(")" + m.group(1) + '"', i) if m else -1
            j = n if end < 0 else end + len(m.group(1)) + 2
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j
        elif c in "\"'":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            out.append(c + c)
            i = j + 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def functions(text):
    """(first line, body lines, name) of each function body."""
    text = strip(text)
    stack = []  # kinds of the open blocks: "scope" (namespace, class) or "other"
    head_start = 0  # where the text before the next block starts
    line = 1
    found = []
    for i, c in enumerate(text):
        if c == "\n":
            line += 1
        elif c == "{":
            head = text[head_start:i]
            scope = all(k == "scope" for k, *_ in stack)
            if scope and re.search(r"\b(namespace|class|struct|union|enum)\b[^()]*$", head):
                stack.append(("scope", line, ""))
            elif scope and re.search(r"\)[^;()]*$", head.replace("\n", " ")) or (
                scope and re.search(r"\)\s*(const|noexcept|override|final|\s|->[^{;]*|:.*)*$", head, re.S)
            ):
                name = re.findall(r"([~\w:]+)\s*\(", head)
                stack.append(("function", line, name[0] if name else "?"))
            else:
                stack.append(("other", line, ""))
            head_start = i + 1
        elif c == "}":
            if stack:
                kind, start, name = stack.pop()
                if kind == "function":
                    found.append((start, line - start - 1, name))
            head_start = i + 1
        elif c == ";":
            head_start = i + 1
    return found


def main():
    root = pathlib.Path(__file__).resolve().parent.parent
    # The sources git knows (build trees, whatever their name, are not sources).
    listed = subprocess.run(["git", "-C", str(root), "ls-files", "*.cpp", "*.hpp"],
                            capture_output=True, text=True, check=True).stdout.split()
    bad = 0
    for name in sorted(listed):
        rel = pathlib.Path(name)
        path = root / rel
        if rel.parts[0] in SKIP or not path.exists():
            continue
        text = path.read_text()
        lines = text.count("\n")
        if lines > MAX_FILE:
            print(f"{rel}: {lines} lines (at most {MAX_FILE})")
            bad += 1
        for start, length, name in functions(text):
            if length > MAX_FUNCTION:
                print(f"{rel}:{start}: {name} is {length} lines long (at most {MAX_FUNCTION})")
                bad += 1
    if bad:
        print(f"sizes: {bad} over the limit; split them")
        return 1
    print(f"sizes: every file has at most {MAX_FILE} lines, every function at most {MAX_FUNCTION}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
