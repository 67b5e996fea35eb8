#!/usr/bin/python3
"""Checks that every PT_API function of the public headers is documented.

    check_header_docs.py HEADER...

A declaration is documented when a comment ends on the line just before it, or when it belongs
to a group of consecutive PT_API declarations that such a comment opens (e.g. a getter pair
described together). `make docs` renders these comments with Doxygen; this check keeps the
rule in `make check`, where Doxygen is not installed. Exits 1 and names the undocumented ones.
"""
import re
import sys


def undocumented(path):
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    missing = []
    documented_group = False
    prev_kind = "other"  # what the previous non-blank line was: comment, decl, decl-cont, other
    in_decl = False
    for no, line in enumerate(lines, 1):
        s = line.strip()
        if in_decl:
            in_decl = ";" not in s and "{" not in s
            continue
        if s.startswith("PT_API"):
            if prev_kind == "comment":
                documented_group = True
            elif prev_kind != "decl":
                documented_group = False
            if not documented_group:
                name = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", s)
                missing.append((no, name[0] if name else s))
            in_decl = ";" not in s and "{" not in s
            prev_kind = "decl"
            continue
        if s.endswith("*/"):
            prev_kind = "comment"
        elif s == "" and prev_kind == "decl":
            prev_kind = "other"  # a blank line ends a group
        elif s != "" and not s.startswith("*") and not s.startswith("/*"):
            prev_kind = "other"
    return missing


def main(argv):
    bad = 0
    for path in argv[1:]:
        for no, name in undocumented(path):
            print(f"{path}:{no}: {name} is PT_API but has no comment before it")
            bad += 1
    if bad:
        return 1
    print(f"check_header_docs: every PT_API declaration of {len(argv) - 1} headers is documented")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
