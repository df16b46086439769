#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""kdoc2man.py HEADER OUTDIR - one man3 page per exported function.

Reads the kernel-doc comments of HEADER (include/gmem.h) and writes
OUTDIR/NAME.3 for each documented declaration marked GMEM_API:

    /**
     * gmem_foo() / gmem_bar() - one-line summary, which may go on
     * over more lines up to the first blank line or @argument.
     * @arg: what it is, continued on lines
     *       indented under it.
     * @a, @b: two arguments described together.
     *
     * Description paragraphs, separated by blank lines.
     *
     * Context: locks and sleeping.
     * Return: values and errnos.
     */
    GMEM_API int gmem_foo(...);
    GMEM_API int gmem_bar(...);

A comment documents the names of its title line and every GMEM_API
declaration that follows it up to the next comment or preprocessor line.
The first name gets the page; the others get a one-line ".so man3/FIRST.3"
page.  Comments whose title names a struct or enum, and comments followed
by no GMEM_API declaration, are skipped.  The
output depends on HEADER alone (no date), so that a test can regenerate
the pages and compare them with the committed ones.
"""

import os
import re
import sys

WIDTH = 72


def die(msg):
    sys.stderr.write("kdoc2man: %s\n" % msg)
    sys.exit(1)


def esc(text):
    """Escape plain text for roff (not at the start of a line)."""
    text = text.replace("\\", "\\e")
    text = text.replace("-", "\\-")
    return text


def inline(text, known):
    """Plain comment text to roff: @arg italic, names bold."""
    out = []
    pos = 0
    pat = re.compile(r"@(\w+)|\b(\w+)\(\)|\b(GMEM_[A-Z0-9_]+)\b|"
                     r"(?<![\w-])(-E[A-Z0-9]+)\b|\b(gmem_stat_keys|"
                     r"gmem_stat_nr_listed)\b")
    for m in pat.finditer(text):
        out.append(esc(text[pos:m.start()]))
        if m.group(1):
            out.append("\\fI%s\\fP" % esc(m.group(1)))
        elif m.group(2):
            out.append("\\fB%s\\fP()" % esc(m.group(2)))
        elif m.group(3):
            out.append("\\fB%s\\fP" % esc(m.group(3)))
        elif m.group(4):
            out.append("\\fB%s\\fP" % esc(m.group(4)))
        else:
            out.append("\\fB%s\\fP" % esc(m.group(5)))
        pos = m.end()
    out.append(esc(text[pos:]))
    line = "".join(out)
    if line.startswith((".", "'")):
        line = "\\&" + line
    return line


def paragraphs(lines):
    """Lines to a list of paragraphs (lists of stripped lines)."""
    paras, cur = [], []
    for line in lines:
        if line.strip():
            cur.append(line.strip())
        elif cur:
            paras.append(cur)
            cur = []
    if cur:
        paras.append(cur)
    return paras


def capital(paras):
    """A section's first word to a capital, unless it is a name."""
    if paras and re.match(r"^[a-z]+\b(?![(_])", paras[0][0]):
        paras[0][0] = paras[0][0][0].upper() + paras[0][0][1:]
    return paras


def fill(paras, known):
    out = []
    for i, para in enumerate(paras):
        if i:
            out.append(".PP")
        out.extend(inline(l, known) for l in para)
    return out


TITLE = re.compile(r"^((?:(?:struct|enum)\s+)?\w+(?:\(\))?"
                   r"(?:\s*/\s*\w+(?:\(\))?)*)\s+-\s+(.*)$")


def parse_comment(body):
    """body: the comment's lines without ' * '.  Returns a dict or None."""
    # Title: up to the first blank line or @argument.
    i = 0
    title = []
    while i < len(body) and body[i].strip() and \
            not re.match(r"^\s*@\w+", body[i]) and \
            not re.match(r"^\s*(Context|Return):", body[i]):
        title.append(body[i].strip())
        i += 1
    m = TITLE.match(" ".join(title))
    if not m:
        return None
    names_part, summary = m.group(1), m.group(2)
    if re.match(r"^(struct|enum)\s", names_part):
        return None
    names = [n.strip().rstrip("()").strip() for n in names_part.split("/")]
    args = []           # [(names, [lines])]
    desc = []           # lines
    sections = {}       # "Context"/"Return" -> lines
    cur = None
    for line in body[i:]:
        am = re.match(r"^\s*((?:@\w+)(?:\s*,\s*@\w+)*):\s?(.*)$", line)
        sm = re.match(r"^\s*(Context|Return):\s*(.*)$", line)
        in_section = any(cur is v for v in sections.values())
        if am and not in_section:
            args.append(([a.strip()[1:] for a in am.group(1).split(",")],
                         [am.group(2)]))
            cur = args[-1][1]
        elif sm:
            if sm.group(1) in sections:
                die("%s: two %s sections" % (names[0], sm.group(1)))
            sections[sm.group(1)] = [sm.group(2)]
            cur = sections[sm.group(1)]
        elif not line.strip():
            # A blank line ends an argument; a section goes on only to
            # its first blank line too (kernel-doc's rule).
            if cur is not None and cur is not desc:
                cur = None
            desc.append("")
        else:
            if cur is None:
                cur = desc
            cur.append(line)
    return {"names": names, "summary": summary, "args": args,
            "desc": desc, "sections": sections}


def split_params(params):
    """Top-level comma split of a parameter list."""
    out, depth, cur = [], 0, ""
    for ch in params:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def synopsis(decl):
    """A declaration (one string) to roff lines for .nf, with the name in
    bold and the parameter names in italics."""
    decl = re.sub(r"\s+", " ", decl).strip()
    decl = re.sub(r"\s*;$", ";", decl)
    m = re.match(r"^(.*?)\b(\w+)\s*\((.*)\);$", decl)
    if not m:
        # A variable: extern TYPE NAME[];
        vm = re.match(r"^(.*?)\b(\w+)(\[\])?;$", decl)
        if not vm:
            die("cannot parse: %s" % decl)
        return ["%s\\fB%s\\fP%s;" % (esc(vm.group(1)), esc(vm.group(2)),
                                     vm.group(3) or "")]
    ret, name, params = m.group(1), m.group(2), m.group(3)
    head = "%s%s(" % (ret, name)
    indent = len(head)
    parts = []
    for p in split_params(params):
        pm = re.match(r"^(.*?)(\w+)(\[\])?$", p)
        if pm and p != "void" and pm.group(1).strip():
            parts.append((p, "%s\\fI%s\\fP%s" % (esc(pm.group(1)),
                                                 esc(pm.group(2)),
                                                 pm.group(3) or "")))
        else:
            parts.append((p, esc(p)))
    lines, plain, rendered = [], head, "%s\\fB%s\\fP(" % (esc(ret),
                                                           esc(name))
    for i, (p, r) in enumerate(parts):
        tail = ");" if i == len(parts) - 1 else ","
        piece = p + tail
        sep = "" if plain.endswith("(") else " "
        if len(plain) + len(sep) + len(piece) > WIDTH and \
                not plain.endswith("("):
            lines.append(rendered)
            plain, rendered = " " * indent, " " * indent
            sep = ""
        plain += sep + piece
        rendered += sep + r + tail
    lines.append(rendered)
    return lines


def parse_header(text):
    """Yields (comment body lines, [declarations])."""
    lines = text.split("\n")
    i = 0
    out = []
    while i < len(lines):
        if lines[i].strip().startswith("/**"):
            body = []
            first = lines[i].strip()[3:]
            if first.strip().endswith("*/"):
                body.append(first.strip()[:-2].strip())
            else:
                if first.strip():
                    body.append(first.strip())
                i += 1
                while i < len(lines) and "*/" not in lines[i]:
                    body.append(re.sub(r"^\s*\* ?", "", lines[i]))
                    i += 1
            i += 1
            decls = []
            cur = None
            while i < len(lines):
                s = lines[i].strip()
                if s.startswith(("/*", "#")) or (not s and cur is None and
                                                 decls):
                    break
                if cur is not None:
                    cur += " " + s
                elif s.startswith("GMEM_API"):
                    cur = s[len("GMEM_API"):].strip()
                elif s:
                    # something not exported (a struct, an enum): stop
                    if not decls:
                        break
                if cur is not None and cur.endswith(";"):
                    decls.append(cur)
                    cur = None
                i += 1
            out.append((body, decls))
        else:
            i += 1
    return out


def decl_name(decl):
    m = re.match(r"^.*?\b(\w+)\s*\(", decl)
    if m:
        return m.group(1)
    m = re.match(r"^.*?\b(\w+)(\[\])?\s*;$", decl)
    return m.group(1) if m else None


def page(doc, decls, version, known):
    names = doc["names"]
    for d in decls:
        n = decl_name(d)
        if n not in names:
            names.append(n)
    byname = {decl_name(d): d for d in decls}
    for n in names:
        if n not in byname:
            die("%s is documented but not declared GMEM_API after its "
                "comment" % n)
    out = [".\\\" SPDX-License-Identifier: MIT",
           ".\\\" Generated from include/gmem.h by man/kdoc2man.py: "
           "do not edit.",
           '.TH %s 3 "" "gmem %s" "Library Functions Manual"' %
           (names[0].upper(), version),
           ".nh", ".SH NAME",
           "%s \\- %s" % (", ".join(esc(n) for n in names),
                          esc(doc["summary"].replace("@", "")).rstrip(".")),
           ".SH SYNOPSIS", ".nf", ".B #include <gmem.h>", ".PP"]
    for n in names:
        out.extend(synopsis(byname[n]))
    out += [".fi", ".PP", "Link with",
            ".IR \"$(pkg\\-config \\-\\-cflags \\-\\-libs gmem)\" ."]
    desc = paragraphs(doc["desc"])
    if desc:
        out.append(".SH DESCRIPTION")
        out.extend(fill(desc, known))
    if doc["args"]:
        out.append(".SH ARGUMENTS")
        for anames, lines in doc["args"]:
            out.append(".TP")
            if len(anames) == 1:
                out.append(".I " + esc(anames[0]))
            else:
                out.append(".IR " + ' ", " '.join(esc(a) for a in anames))
            for para in paragraphs(lines):
                out.extend(inline(l, known) for l in para)
    if "Context" in doc["sections"]:
        out.append(".SH CONTEXT")
        out.extend(fill(capital(paragraphs(doc["sections"]["Context"])),
                        known))
    if "Return" in doc["sections"]:
        out.append(".SH RETURN VALUE")
        out.extend(fill(capital(paragraphs(doc["sections"]["Return"])),
                        known))
    out.append(".SH SEE ALSO")
    text = " ".join(doc["desc"] + [l for _, ls in doc["args"] for l in ls] +
                    [l for ls in doc["sections"].values() for l in ls])
    see = []
    for m in re.finditer(r"\b(gmem_\w+)(?:\(\)|\b)", text):
        n = m.group(1)
        if n in known and n not in names and (n, 3) not in see:
            see.append((n, 3))
    for m in re.finditer(r"\b(gmem-trace)\(5\)", text):
        if (m.group(1), 5) not in see:
            see.append((m.group(1), 5))
    see.append(("libgmem", 3))
    for i, (n, sec) in enumerate(see):
        out.append(".BR %s (%d)%s" % (esc(n), sec,
                                       "," if i < len(see) - 1 else ""))
    return names, "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        die("usage: kdoc2man.py HEADER OUTDIR")
    header, outdir = sys.argv[1], sys.argv[2]
    text = open(header).read()
    vm = re.search(r'GMEM_VERSION_STRING "([^"]*)"', text)
    if not vm:
        die("no GMEM_VERSION_STRING in " + header)
    version = vm.group(1)
    docs = []
    for body, decls in parse_header(text):
        doc = parse_comment(body)
        # A comment followed by no GMEM_API declaration (a macro's, say)
        # documents nothing exported: no page.
        if doc and decls:
            docs.append((doc, decls))
    known = set()
    for doc, decls in docs:
        known.update(doc["names"])
        known.update(decl_name(d) for d in decls)
    os.makedirs(outdir, exist_ok=True)
    written = set()
    for doc, decls in docs:
        names, roff = page(doc, decls, version, known)
        for n in names:
            if n in written:
                die("%s is documented twice" % n)
            written.add(n)
        with open(os.path.join(outdir, names[0] + ".3"), "w") as f:
            f.write(roff)
        for n in names[1:]:
            with open(os.path.join(outdir, n + ".3"), "w") as f:
                f.write(".so man3/%s.3\n" % names[0])
    # Every GMEM_API declaration must have a page.
    for m in re.finditer(r"^GMEM_API\s+([^;]*;)", text, re.M):
        n = decl_name(re.sub(r"\s+", " ", m.group(1)))
        if n not in written:
            die("%s is declared GMEM_API but has no kernel-doc comment" % n)


if __name__ == "__main__":
    main()
