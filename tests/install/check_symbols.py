#!/usr/bin/python3
"""Checks that a shared library exports exactly the PT_API declarations of its public headers.

    check_symbols.py LIBRARY HEADER...

Lists the library's dynamic symbols with `nm -D --defined-only` and compares them, both ways,
with the names declared PT_API in the headers: a symbol exported but not declared is an
internal name leaking into the ABI; a declared one that is missing is a broken promise.
Exits 0 when both sets agree, 1 otherwise (and says which names differ).
"""
import re
import subprocess
import sys

# A PT_API declaration: everything up to the first '(' (a function) or ';' / '=' / '[' (an
# object); the declared name is the last identifier before it. Declarations may span lines.
DECL = re.compile(r"\bPT_API\b([^;({=\[]*)")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def declared(headers):
    names = {}
    for path in headers:
        with open(path, encoding="utf-8") as f:
            text = strip_comments(f.read())
        # The macro's own definition is not a declaration.
        text = re.sub(r"#\s*define\s+PT_API[^\n]*", " ", text)
        for m in DECL.finditer(text):
            idents = IDENT.findall(m.group(1))
            if idents:
                names[idents[-1]] = path
    return names


def exported(library):
    out = subprocess.run(["nm", "-D", "--defined-only", library], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        fields = line.split()
        # "ADDRESS TYPE NAME"; versioned names carry "@VERSION".
        if len(fields) >= 3:
            names.add(fields[2].split("@")[0])
    return names


def main(argv):
    if len(argv) < 3:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    library, headers = argv[1], argv[2:]
    want = declared(headers)
    have = exported(library)
    leaking = sorted(have - set(want))
    missing = sorted(set(want) - have)
    for name in leaking:
        print(f"{library}: exports {name}, which no public header declares PT_API")
    for name in missing:
        print(f"{library}: does not export {name}, declared PT_API in {want[name]}")
    if leaking or missing:
        return 1
    print(f"{library}: exports exactly the {len(want)} PT_API names of {len(headers)} headers")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
