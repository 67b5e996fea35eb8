#!/usr/bin/python3
"""Doxygen input filter for include/platoon/*.h.

The public headers are written to be read as they are: plain C comments, parameters named as
@name in the prose (kernel-doc's habit). This filter shows Doxygen the same text as its own
markup, without changing the headers:

  - the comment that opens the file becomes the file's documentation (@file);
  - a comment that starts a line documents what follows it (/** ... */);
  - a comment after code on the same line documents that code (/**< ... */);
  - section banners (/* ===== */ lines) are dropped, and their titles kept as plain comments;
  - @name in the prose becomes \\p name (a parameter or field name in code font).

Doxygen runs it as `doxygen_filter.py FILE` and reads the result from its standard output.
"""
import re
import sys

BANNER = re.compile(r"^\s*/?\*?\s*={10,}.*$")


def convert(text):
    lines = text.split("\n")
    out = []
    in_comment = False
    first_comment = True
    in_banner = False
    for line in lines:
        if not in_comment:
            stripped = line.lstrip()
            if stripped.startswith("/* ====") or (in_banner and BANNER.match(line)):
                # "/* ===...", " * Title", " * ===... */": a banner, not documentation.
                in_banner = "*/" not in stripped
                out.append("")
                continue
            if in_banner:
                in_banner = "*/" not in line
                out.append("")
                continue
            m = re.match(r"^(\s*)/\*(?![*!])(.*)$", line)
            if m:
                body = m.group(2)
                if first_comment:
                    body = " @file" + ("\n *" + body if body.strip() else "")
                    first_comment = False
                line = m.group(1) + "/**" + body
            else:
                # Code, then a comment on the same line: the comment documents that code.
                line = re.sub(r"(\S.*?)(\s)/\*(?![*!])", r"\1\2/**<", line, count=1)
        in_comment = line.rfind("/*") > line.rfind("*/")
        out.append(line)
    text = "\n".join(out)
    return re.sub(r"/\*.*?\*/", prose, text, flags=re.S)


def prose(m):
    """Inside a comment: @name becomes \\p name, and '<' is a less-than sign, not a tag."""
    c = m.group(0).replace("<", "&lt;").replace("/**&lt;", "/**<")
    return re.sub(r"@(?!file\b)([A-Za-z_][A-Za-z0-9_]*)", r"\\p \1", c)


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        sys.stdout.write(convert(f.read()))


if __name__ == "__main__":
    main()
