"""Reads the .trx files test.sh's `dotnet test` writes.

    trx.py failed DIR   one line per failed test: its name, a tab, the first line of its message
    trx.py passed DIR   one line per passed test: its name
"""
import pathlib
import sys
import xml.etree.ElementTree as ET

NS = {"t": "http://microsoft.com/schemas/VisualStudio/TeamTest/2010"}


def results(directory):
    for trx in sorted(pathlib.Path(directory).glob("*.trx")):
        for result in ET.parse(trx).getroot().iterfind(".//t:UnitTestResult", NS):
            yield result


def main(what, directory):
    for result in results(directory):
        outcome = result.get("outcome")
        if what == "passed" and outcome == "Passed":
            print(result.get("testName"))
        elif what == "failed" and outcome not in ("Passed", "NotExecuted"):
            lines = result.findtext(".//t:Message", default="", namespaces=NS).strip().splitlines()
            print(f"{result.get('testName')}\t{lines[0][:300] if lines else outcome}")


if __name__ == "__main__":
    main(*sys.argv[1:3])
