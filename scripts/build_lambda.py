"""Build a byte-for-byte reproducible deployment zip of the labelling Lambda."""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
import zipfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPOSITORY / "lambda_src"
DEFAULT_OUTPUT = REPOSITORY / "dist" / "lambda.zip"

# The earliest date a zip entry can hold; the files' own mtimes would make
# every checkout build a different zip.
FIXED_DATE_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644
COMPRESS_LEVEL = 9
# Only there so tests can import the folder as a package; Lambda loads
# handler.py from the zip's root.
NOT_RUNTIME = {"__init__.py", "conftest.py"}


def runtime_files(source: Path) -> list[Path]:
    """Return the Python modules Lambda needs, sorted by their path in the zip."""
    files = []
    for path in source.rglob("*.py"):
        relative = path.relative_to(source)
        if any(part.startswith((".", "__pycache__")) for part in relative.parts):
            continue
        if any(part in ("tests", "test") for part in relative.parts[:-1]):
            continue
        if path.name in NOT_RUNTIME or path.name.startswith("test_"):
            continue
        files.append(relative)
    return sorted(files, key=lambda relative: relative.as_posix())


def build_zip(source: Path, output: Path) -> str:
    """Write the zip of the source's runtime files and return its sha256."""
    files = runtime_files(source)
    if not any(relative.as_posix() == "handler.py" for relative in files):
        raise SystemExit(f"no handler.py in {source}")

    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(output.name + ".partial")
    with zipfile.ZipFile(partial, "w") as archive:
        for relative in files:
            entry = zipfile.ZipInfo(relative.as_posix(), date_time=FIXED_DATE_TIME)
            entry.create_system = 3  # Unix, so the mode bits below are read.
            entry.external_attr = FILE_MODE << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(
                entry, (source / relative).read_bytes(), compresslevel=COMPRESS_LEVEL
            )
    os.replace(partial, output)

    return hashlib.sha256(output.read_bytes()).hexdigest()


def main(argv: list[str] | None = None) -> None:
    """Build the zip named on the command line and print its path and sha256."""
    parser = argparse.ArgumentParser(
        description="Build a reproducible deployment zip of the labelling Lambda."
    )
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    arguments = parser.parse_args(argv)

    digest = build_zip(arguments.source, arguments.output)
    print(f"{arguments.output} sha256={digest}")


if __name__ == "__main__":
    main(sys.argv[1:])
