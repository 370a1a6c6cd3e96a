# SPDX-License-Identifier: GPL-3.0-or-later
"""Static checks the shop's Python services run inside their own image (standard library only).

    python3 tools/shopcheck.py style PATH...
    python3 tools/shopcheck.py duplication [--min-lines N] PATH...
    python3 tools/shopcheck.py outdated dependencies.txt
    python3 tools/shopcheck.py licences --allow ID[,ID...] dependencies.txt PATH...

dependencies.txt: one Debian package a line, with the SPDX licence it was reviewed under
(``python3.11 PSF-2.0``). Each command prints one line per finding and exits 1 when it found any.
"""

import argparse
import ast
import hashlib
import os
import sys

MAX_LINE = 100


def python_files(paths):
    for path in paths:
        if os.path.isfile(path):
            yield path
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            yield from (os.path.join(root, name) for name in sorted(files) if name.endswith(".py"))


def imported_names(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield (alias.asname or alias.name.split(".")[0]), node.lineno
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                yield (alias.asname or alias.name), node.lineno


def style(paths):
    findings = []
    for path in python_files(paths):
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        for number, line in enumerate(text.splitlines(), 1):
            if len(line) > MAX_LINE:
                findings.append(f"{path}:{number}: line longer than {MAX_LINE}")
            if line != line.rstrip():
                findings.append(f"{path}:{number}: trailing whitespace")
            if "\t" in line:
                findings.append(f"{path}:{number}: tab character")
        if text and not text.endswith("\n"):
            findings.append(f"{path}: no newline at end of file")
        try:
            tree = ast.parse(text, path)
        except SyntaxError as exc:
            findings.append(f"{path}:{exc.lineno}: syntax error: {exc.msg}")
            continue
        if os.path.basename(path) == "__init__.py":
            continue
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        for name, lineno in imported_names(tree):
            if name != "*" and name not in used:
                findings.append(f"{path}:{lineno}: {name} imported but unused")
    return findings


def duplication(paths, min_lines):
    seen, findings = {}, []
    for path in python_files(paths):
        with open(path, encoding="utf-8") as handle:
            lines = [(n, line.strip()) for n, line in enumerate(handle, 1)]
        code = [(n, text) for n, text in lines if text and not text.startswith("#")]
        for start in range(len(code) - min_lines + 1):
            window = code[start:start + min_lines]
            key = hashlib.sha256("\n".join(text for _, text in window).encode()).hexdigest()
            here = f"{path}:{window[0][0]}-{window[-1][0]}"
            if key in seen and not seen[key].startswith(path + ":"):
                findings.append(f"{here}: {min_lines} lines repeat {seen[key]}")
            seen.setdefault(key, here)
    return findings


def read_dependencies(path):
    deps = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            fields = line.split("#")[0].split()
            if not fields:
                continue
            if len(fields) != 2:
                raise SystemExit(f"{path}:{number}: expected '<package> <SPDX licence>'")
            deps.append(tuple(fields))
    return deps


def outdated(dependencies):
    import apt_pkg  # python3-apt, in the image; imported here so style checks need no apt

    apt_pkg.init()
    cache = apt_pkg.Cache(None)
    policy = apt_pkg.Policy(cache)
    policy.init_defaults()
    findings = []
    for name, _licence in read_dependencies(dependencies):
        try:
            package = cache[name]  # apt_pkg.Cache has no get()
        except KeyError:
            package = None
        if package is None or package.current_ver is None:
            findings.append(f"{name}: declared but not installed")
            continue
        candidate = policy.get_candidate_ver(package)
        installed = package.current_ver.ver_str
        if candidate is not None and apt_pkg.version_compare(installed, candidate.ver_str) < 0:
            findings.append(f"{name}: installed {installed}, newer {candidate.ver_str} available")
    return findings


def licences(allowed, dependencies, paths):
    findings = []
    for name, licence in read_dependencies(dependencies):
        if licence not in allowed:
            findings.append(f"{name}: licence {licence} is not allowed")
        if not os.path.exists(f"/usr/share/doc/{name}/copyright"):
            findings.append(f"{name}: no /usr/share/doc/{name}/copyright in the image")
    for path in python_files(paths):
        with open(path, encoding="utf-8") as handle:
            head = handle.read(400)
        marker = "SPDX-License-Identifier:"
        if os.path.getsize(path) == 0:
            continue
        if marker not in head:
            findings.append(f"{path}: no {marker} header")
        elif head.split(marker, 1)[1].split()[0] not in allowed:
            findings.append(f"{path}: licence {head.split(marker, 1)[1].split()[0]} is not allowed")
    return findings


def main(argv=None):
    parser = argparse.ArgumentParser(prog="shopcheck")
    sub = parser.add_subparsers(dest="check", required=True)
    sub.add_parser("style").add_argument("paths", nargs="+")
    dup = sub.add_parser("duplication")
    dup.add_argument("--min-lines", type=int, default=6)
    dup.add_argument("paths", nargs="+")
    sub.add_parser("outdated").add_argument("dependencies")
    lic = sub.add_parser("licences")
    lic.add_argument("--allow", required=True)
    lic.add_argument("dependencies")
    lic.add_argument("paths", nargs="+")
    args = parser.parse_args(argv)
    if args.check == "style":
        findings = style(args.paths)
    elif args.check == "duplication":
        findings = duplication(args.paths, args.min_lines)
    elif args.check == "outdated":
        findings = outdated(args.dependencies)
    else:
        findings = licences(set(args.allow.split(",")), args.dependencies, args.paths)
    for finding in findings:
        print(finding)
    print(f"{args.check}: {len(findings)} finding(s)")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
