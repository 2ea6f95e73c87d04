"""How ``scapy-geneve lint`` writes its findings: text, JSON, JUnit XML, SARIF.

Every writer is streamed: a flagged packet is written when it is found and
then forgotten, so memory does not grow with the findings (JUnit's counts
come first in the file, so its test cases are spooled to a temporary file).
Each writer gets ``begin()``, ``packet(number, findings)`` per flagged
packet, and ``end(summary, error)``.
"""

import json
import tempfile
from typing import IO, Any, Dict, List, Optional

from scapy_geneve import __version__
from scapy_geneve.conformance.lint import RULES, Finding

__all__ = ["WRITERS", "Writer", "summary_text"]

_SARIF_LEVEL = {"MUST": "error", "SHOULD": "warning", "INFO": "note"}


class Writer:
    """The text writer: one line per finding, then the summary line."""

    def __init__(self, out: IO[str], path: str) -> None:
        self.out, self.path = out, path

    def begin(self) -> None:
        pass

    def packet(self, number: int, findings: List[Finding]) -> None:
        for f in findings:
            where = " @%d" % f.offset if f.offset is not None else ""
            self.out.write(
                "#%-6d %s %-6s %s%s [%s]: %s\n"
                % (number, f.rule, f.level, f.field, where, f.section, f.message)
            )

    def end(self, summary: Dict[str, Any], error: Optional[str]) -> None:
        text = summary_text(self.path, summary)
        if "interrupted" in summary:
            text += "\nINCOMPLETE: %s; findings cover the %d packets read." % (
                summary["interrupted"],
                summary["packets"],
            )
        elif error is not None:
            text += (
                "\nINCOMPLETE: the file is damaged; findings cover the %d packets before "
                "the damage." % summary["packets"]
            )
        self.out.write(text + "\n")


def summary_text(path: str, summary: Dict[str, Any]) -> str:
    rules = ", ".join("%s x%d" % (r, n) for r, n in summary["rules"].items())
    levels = ", ".join("%d %s" % (n, lv) for lv, n in summary["levels"].items() if n)
    noun = "packet" if summary["packets"] == 1 else "packets"
    text = "%s: %d %s, %d with findings%s%s" % (
        path,
        summary["packets"],
        noun,
        summary["packets_with_findings"],
        " (%s)" % levels if levels else "",
        ": " + rules if rules else "",
    )
    if summary.get("guessed"):
        text += (
            "\nnote: %d packets of keyed GRE carrying Ethernet were read as NVGRE (a "
            "guess); --gre-as nvgre|gre settles it" % summary["guessed"]
        )
    return text


class JsonWriter(Writer):
    """One JSON document: file, packets (streamed), summary, complete."""

    def begin(self) -> None:
        self.out.write('{"file": %s,\n "packets": [' % json.dumps(self.path))
        self.first = True

    def packet(self, number: int, findings: List[Finding]) -> None:
        doc = {"number": number, "findings": [f.as_dict() for f in findings]}
        self.out.write(("\n  " if self.first else ",\n  ") + json.dumps(doc, ensure_ascii=False))
        self.first = False

    def end(self, summary: Dict[str, Any], error: Optional[str]) -> None:
        self.out.write(
            '],\n "summary": %s,\n "complete": %s}\n'
            % (json.dumps(summary, ensure_ascii=False), json.dumps(error is None))
        )


def quoteattr(text: str) -> str:
    """XML's quoted attribute value; xml.sax.saxutils is imported here, for JUnit output
    only (it imports urllib.request: some 30 ms of every ``lint``'s start-up)."""
    from xml.sax.saxutils import quoteattr as quote

    return quote(text)


def escape(text: str) -> str:
    """XML's character data (see :func:`quoteattr`)."""
    from xml.sax.saxutils import escape as xml_escape

    return xml_escape(text)


class JUnitWriter(Writer):
    """JUnit XML: one test case per finding (a failure), one passing case when there is none."""

    def begin(self) -> None:
        self.spool: IO[str] = tempfile.TemporaryFile("w+", encoding="utf-8")
        self.cases = 0

    def packet(self, number: int, findings: List[Finding]) -> None:
        for f in findings:
            self.cases += 1
            self.spool.write(
                "    <testcase classname=%s name=%s file=%s>\n      <failure type=%s message=%s>"
                "%s</failure>\n    </testcase>\n"
                % (
                    quoteattr("lint.%s" % f.rule),
                    quoteattr("packet %d: %s" % (number, f.field)),
                    quoteattr(self.path),
                    quoteattr(f.level),
                    quoteattr("%s %s: %s" % (f.rule, f.level, f.message)),
                    escape("%s [%s] @%s: %s" % (f.field, f.section, f.offset, f.message)),
                )
            )

    def end(self, summary: Dict[str, Any], error: Optional[str]) -> None:
        tests = max(self.cases, 1) + (1 if error else 0)
        self.out.write(
            '<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="scapy-geneve '
            'lint" tests="%d" failures="%d" errors="%d">\n' % (tests, self.cases, 1 if error else 0)
        )
        self.out.write(
            '  <testsuite name=%s tests="%d" failures="%d" errors="%d">\n'
            % (quoteattr(self.path), tests, self.cases, 1 if error else 0)
        )
        if not self.cases:
            self.out.write(
                '    <testcase classname="lint" name=%s/>\n'
                % quoteattr("%d packets conform" % summary["packets"])
            )
        self.spool.seek(0)
        for line in self.spool:
            self.out.write(line)
        self.spool.close()
        if error:
            self.out.write(
                '    <testcase classname="lint" name="capture"><error message=%s/>'
                "</testcase>\n" % quoteattr(error)
            )
        self.out.write("  </testsuite>\n</testsuites>\n")


class SarifWriter(Writer):
    """SARIF 2.1.0: the rules once, then one result per finding (streamed)."""

    def begin(self) -> None:
        rules = [
            {
                "id": rid,
                "shortDescription": {"text": r.title},
                "properties": {"level": r.level, "section": r.section},
                "defaultConfiguration": {"level": _SARIF_LEVEL[r.level]},
            }
            for rid, r in RULES.items()
        ]
        driver = {
            "name": "scapy-geneve lint",
            "version": __version__,
            "informationUri": "https://github.com/scapy-geneve/scapy-geneve",
            "rules": rules,
        }
        self.out.write(
            '{"$schema": "https://json.schemastore.org/sarif-2.1.0.json", '
            '"version": "2.1.0",\n "runs": [{"tool": {"driver": %s},\n  "results": [' % json.dumps(driver)
        )
        self.first = True
        self.index = {rid: i for i, rid in enumerate(RULES)}

    def packet(self, number: int, findings: List[Finding]) -> None:
        for f in findings:
            region = {"byteOffset": f.offset, "byteLength": 1} if f.offset is not None else {}
            result = {
                "ruleId": f.rule,
                "ruleIndex": self.index[f.rule],
                "level": _SARIF_LEVEL[f.level],
                "message": {"text": "packet %d: %s: %s" % (number, f.field, f.message)},
                "locations": [
                    {
                        "physicalLocation": {"artifactLocation": {"uri": self.path}, "region": region},
                        "logicalLocations": [{"name": f.field, "kind": "member"}],
                    }
                ],
                "properties": {"packet": number, "field": f.field, "section": f.section},
            }
            self.out.write(("\n   " if self.first else ",\n   ") + json.dumps(result, ensure_ascii=False))
            self.first = False

    def end(self, summary: Dict[str, Any], error: Optional[str]) -> None:
        invocation = {"executionSuccessful": error is None}
        if error is not None:
            invocation["toolExecutionNotifications"] = [
                {
                    "level": "error",  # type: ignore[assignment]
                    "message": {"text": error},
                }
            ]
        self.out.write(
            '],\n  "invocations": [%s],\n  "properties": {"summary": %s}}]}\n'
            % (json.dumps(invocation), json.dumps(summary))
        )


WRITERS = {"text": Writer, "json": JsonWriter, "junit": JUnitWriter, "sarif": SarifWriter}
