"""Tests for the Lambda's deployment zip and CloudFormation template."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
SOURCE = REPOSITORY / "lambda_src"
TEMPLATE = SOURCE / "template.yaml"
BUILD = REPOSITORY / "scripts" / "build_lambda.py"


def build(output: Path, source: Path = SOURCE) -> str:
    result = subprocess.run(
        [sys.executable, str(BUILD), "--output", str(output), "--source", str(source)],
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout


def load_template() -> Any:
    yaml = pytest.importorskip("yaml")

    class TemplateLoader(yaml.SafeLoader):
        """Read CloudFormation's short-form tags as {"Tag": value}."""

    def tagged(loader: Any, suffix: str, node: Any) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            return {suffix: loader.construct_scalar(node)}
        if isinstance(node, yaml.SequenceNode):
            return {suffix: loader.construct_sequence(node, deep=True)}
        return {suffix: loader.construct_mapping(node, deep=True)}

    TemplateLoader.add_multi_constructor("!", tagged)
    return yaml.load(TEMPLATE.read_text(), Loader=TemplateLoader)


def role_statements() -> list[dict[str, Any]]:
    """Return the role's statements, conditional ones as if granted."""
    role = load_template()["Resources"]["FunctionRole"]["Properties"]
    [policy] = role["Policies"]
    return [
        statement["If"][1] if "If" in statement else statement
        for statement in policy["PolicyDocument"]["Statement"]
    ]


def test_two_builds_are_byte_identical(tmp_path: Path) -> None:
    first, second = tmp_path / "first.zip", tmp_path / "second.zip"

    build(first)
    build(second)

    assert first.read_bytes() == second.read_bytes()


def test_build_prints_path_and_sha256(tmp_path: Path) -> None:
    output = tmp_path / "lambda.zip"

    printed = build(output)

    digest = hashlib.sha256(output.read_bytes()).hexdigest()
    assert printed.strip() == f"{output} sha256={digest}"


def test_build_ignores_file_times_modes_caches_and_tests(tmp_path: Path) -> None:
    copy = tmp_path / "lambda_src"
    shutil.copytree(SOURCE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "handler.py").chmod(0o755)
    (copy / "handler.py").touch()
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "handler.cpython-311.pyc").write_bytes(b"\x00")
    (copy / "tests").mkdir()
    (copy / "tests" / "helpers.py").write_text("")
    (copy / "test_handler.py").write_text("")
    (copy / "conftest.py").write_text("")

    build(tmp_path / "original.zip")
    build(tmp_path / "copy.zip", source=copy)

    original = (tmp_path / "original.zip").read_bytes()
    assert (tmp_path / "copy.zip").read_bytes() == original


def test_zip_holds_only_runtime_modules_with_fixed_metadata(tmp_path: Path) -> None:
    output = tmp_path / "lambda.zip"

    build(output)

    with zipfile.ZipFile(output) as archive:
        entries = archive.infolist()
    names = [entry.filename for entry in entries]
    assert "handler.py" in names
    assert names == sorted(names)
    assert all(name.endswith(".py") for name in names)
    assert not any("test" in name or "__" in name for name in names)
    assert {entry.date_time for entry in entries} == {(1980, 1, 1, 0, 0, 0)}
    assert {entry.external_attr >> 16 for entry in entries} == {0o100644}


def test_zipped_handler_imports_from_the_zip_root(tmp_path: Path) -> None:
    output = tmp_path / "lambda.zip"
    build(output)
    # Lambda puts the unpacked zip on sys.path; zipimport does the same here.
    script = f"import sys; sys.path.insert(0, {str(output)!r}); import handler; "
    script += "print(handler.__file__, callable(handler.handler))"

    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )

    assert result.stdout.split() == [str(output / "handler.py"), "True"]


def test_template_handler_and_runtime_match_the_zip() -> None:
    function = load_template()["Resources"]["Function"]["Properties"]

    assert function["Handler"] == "handler.handler"
    assert function["Runtime"] in ("python3.11", "python3.12")
    assert function["TracingConfig"] == {"Mode": "Active"}
    assert function["DeadLetterConfig"] == {
        "TargetArn": {"GetAtt": "DeadLetterQueue.Arn"}
    }


def test_template_reads_photos_only_under_the_photo_prefix() -> None:
    statements = role_statements()

    [s3] = [
        statement for statement in statements if statement["Action"] == "s3:GetObject"
    ]
    assert s3["Resource"] == {
        "Sub": "arn:${AWS::Partition}:s3:::${PhotosBucket}/photos/*"
    }


def test_template_reads_one_secret_parameter() -> None:
    statements = role_statements()

    [ssm] = [
        statement
        for statement in statements
        if statement["Action"] == "ssm:GetParameter"
    ]
    assert ssm["Resource"] == {
        "Sub": "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}"
        ":parameter${CallbackSecretParameter}"
    }


def test_template_grants_wildcard_resources_only_where_aws_requires_it() -> None:
    statements = role_statements()

    wildcard = [
        statement["Action"] for statement in statements if statement["Resource"] == "*"
    ]
    assert wildcard == [
        "rekognition:DetectLabels",
        ["xray:PutTraceSegments", "xray:PutTelemetryRecords"],
    ]
    assert not any("*" in str(statement["Action"]) for statement in statements)


def test_template_passes_cfn_lint() -> None:
    cfn_lint = shutil.which("cfn-lint") or str(
        Path(sys.executable).with_name("cfn-lint")
    )
    if not Path(cfn_lint).exists():
        pytest.skip("cfn-lint is not installed")

    result = subprocess.run(
        [cfn_lint, "--", str(TEMPLATE)], capture_output=True, text=True
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""
