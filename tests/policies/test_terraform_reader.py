"""The Terraform reader: the HCL parser, expressions evaluated as `terraform plan` would, and
the module loader (count, for_each, modules, variables, providers)."""

from __future__ import annotations

from pathlib import Path

import hcl2
import pytest
from lark.exceptions import UnexpectedInput

from aifinops.policies.terraform import hcl
from aifinops.policies.terraform.evaluate import Scope, apply_steps, evaluate
from aifinops.policies.terraform.load import load
from aifinops.policies.values import UNKNOWN, OpenMap

CORPUS = Path(__file__).resolve().parents[1] / "fixtures" / "corpus"


def value(text: str, **names: object) -> object:
    """One expression evaluated with `var.*` from `names` (anything else unknown)."""

    def lookup(root: str, steps: list, scope: Scope) -> object:
        if root == "var" and steps and steps[0][1] in names:
            return apply_steps(names[steps[0][1]], steps[1:], scope)
        return UNKNOWN

    return evaluate(hcl.parse_expression(text), Scope(lookup))


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return folder


def test_every_real_tf_file_of_the_corpus_parses() -> None:
    paths = [p for p in CORPUS.rglob("*.tf")]
    assert len(paths) > 60
    for path in paths:
        hcl.parse(path.read_text(), str(path))


def test_syntax_errors_name_the_file_and_line() -> None:
    with pytest.raises(hcl.HclError) as raised:
        hcl.parse('resource "aws_instance" "a" {\n  instance_type = \n}\n', "main.tf")
    assert str(raised.value).startswith("main.tf:2: ")


def test_blocks_keep_their_lines_in_a_large_file() -> None:
    text = "".join(
        f'resource "aws_instance" "r{i}" {{\n  ami = "a" # {i}\n}}\n' for i in range(3000)
    )
    blocks = hcl.parse(text, "main.tf").blocks
    assert [(b.line, b.end_line, b.body.attributes["ami"].line) for b in blocks[2999:]] == [
        (8998, 9000, 8999)
    ]


def test_errors_python_hcl2_lets_through_are_errors_as_in_terraform() -> None:
    for text, message in [
        ("a = 1\na = 2\n", "main.tf:2: attribute 'a' set twice"),
        ('resource "a${x}" "b" {}\n', "main.tf:1: block labels cannot contain interpolations"),
        ("a = [1, 2\nb = 3\n", "main.tf:2: expected ',' or ']' or a new line, found 'b'"),
    ]:
        with pytest.raises(hcl.HclError) as raised:
            hcl.parse(text, "main.tf")
        assert str(raised.value) == message


def test_a_rule_of_a_later_python_hcl2_is_a_file_not_read_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    parses_to_tree = hcl2.parses_to_tree

    def later(text: str) -> object:
        tree = parses_to_tree(text)
        for node in tree.iter_subtrees():
            if node.data == "tuple":
                node.data = "tuple_v9"
        return tree

    monkeypatch.setattr(hcl2, "parses_to_tree", later)
    root = write(tmp_path, {"main.tf": 'resource "aws_instance" "x" {\n  ami = ["a"]\n}\n'})
    loaded = load([str(root)])
    assert [(n.line, n.kind) for n in loaded.notices] == [(2, "parse-error")]
    assert "gave 'tuple_v9', which this reader does not read" in loaded.notices[0].message


def test_heredoc_templates_are_read_here_python_hcl2_keeps_them_as_one_token() -> None:
    assert value('<<EOF\ntype ${var.size} "q" \\n $${x}\nEOF\n', size="g5") == (
        'type g5 "q" \\n ${x}\n'  # no escapes in a heredoc; `$${` is a literal `${`
    )
    assert value('<<-EOT\n    a ${upper("b")} ${ {k = "}"}["k"] }\n      c\n    EOT\n') == (
        "a B }\n  c\n"
    )
    assert value("<<EOF\n%{ if true }x%{ endif }\nEOF\n") is UNKNOWN  # directives: unknown
    assert value("<<EOF\n${var.undefined}\nEOF\n") is UNKNOWN
    assert value("<<EOF\nEOF\n") == ""


def test_strip_markers_python_hcl2_cannot_parse_are_read() -> None:
    """`"${~ x ~}"` is HCL (template strip markers) but not in python-hcl2's grammar: the file
    is parsed again with the markers blanked (same length: lines and text as written)."""
    text = 'a = "p5.${~ var.size ~}"\nb = 1\n'
    with pytest.raises(UnexpectedInput):
        hcl2.parses_to_tree(text)  # when this passes, python-hcl2 reads them itself
    body = hcl.parse(text, "main.tf")
    assert (body.attributes["a"].expr.text, body.attributes["b"].line) == (
        '"p5.${~ var.size ~}"',
        2,
    )
    assert value('"p5.${~ var.size ~}"', size="48xlarge") == "p5.48xlarge"


def test_an_expression_text_is_the_expression_without_the_comment_after_it(
    tmp_path: Path,
) -> None:
    root = write(tmp_path, {"main.tf": '''
variable "on" { type = bool }
resource "aws_instance" "x" {
  count         = var.on && var.on ? 1 : 0 # why
  instance_type = var.on ? "p5.48xlarge" : var.on # big
}
'''})  # fmt: skip
    (only,) = load([str(root)]).resources
    assert only.created_source == "count = var.on && var.on ? 1 : 0"
    assert only.unknown_sources == {
        "instance_type": 'instance_type = var.on ? "p5.48xlarge" : var.on'
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # HCL: `?:` binds loosest, `&&` before it (checkov's renderer reads this as 1)
        ("false && true ? 1 : 0", 0),
        ("true && false || true ? 1 : 0", 1),
        ('"p5.${var.size}"', "p5.48xlarge"),
        ("merge({a = 1}, {b = 2})", {"a": 1, "b": 2}),
        ('lookup({a = "x"}, "b", "dflt")', "dflt"),
        ('try(var.missing.attr, "fallback")', "fallback"),
        ('[for k, v in {a = 1, b = 2} : "${k}${v}" if v > 1]', ["b2"]),
        ('{for s in ["a", "b"] : s => upper(s)}', {"a": "A", "b": "B"}),
        ('coalesce(null, "", "g5.xlarge")', "g5.xlarge"),
        ('length(toset(["a", "a", "b"]))', 2),
        ("[{t = 1}, {t = 2}][*].t", [1, 2]),
        # precedence: `*` before `+` before comparisons before `&&` before `||`; left-assoc
        ("1 + 2 * 3 == 7 && !false || false", True),
        ("10 - 3 - 2", 5),
        ("2 * 3 + 4 * 5 - 6 / 2 % 4", 23),
        ("-2 * -3 >= 6 != false", True),
        ('"a$b %d\\n${"x"}"', "a$b %d\nx"),
    ],
)
def test_expressions_evaluate_as_terraform_does(text: str, expected: object) -> None:
    assert value(text, size="48xlarge", missing={}) == expected


def test_what_the_code_alone_does_not_decide_is_unknown() -> None:
    assert value("var.undefined") is UNKNOWN
    assert value('try(var.undefined, "g5.xlarge")') is UNKNOWN  # try() of an unknown
    assert value("data.aws_ssm_parameter.x.value") is UNKNOWN
    assert value('file("x")') is UNKNOWN  # not implemented: never guessed
    merged = value('merge(var.undefined, {Name = "x"})')
    assert isinstance(merged, OpenMap) and merged == {"Name": "x"} and merged.prefixes is None
    keyed = value('{"kubernetes.io/cluster/${var.undefined}" = "owned", Name = "x"}')
    assert isinstance(keyed, OpenMap) and keyed.prefixes == ("kubernetes.io/cluster/",)


def test_blocks_that_create_nothing_are_skipped_with_their_reason(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "main.tf": '''
variable "n" { default = 0 }
resource "aws_instance" "zero" {
  count         = 0
  instance_type = "p5.48xlarge"
}
resource "aws_instance" "zero_var" {
  count         = var.n
  instance_type = "p5.48xlarge"
}
resource "aws_instance" "empty" {
  for_each      = {}
  instance_type = "p5.48xlarge"
}
module "off" {
  source = "./mod"
  create = false
}
module "none" {
  source = "./mod"
  count  = 0
}
''',
        "mod/main.tf": '''
variable "create" { default = true }
variable "spot" { default = true }
resource "aws_instance" "gpu" {
  count         = var.create && var.spot ? 1 : 0
  instance_type = "p5.48xlarge"
}
''',
    })  # fmt: skip
    loaded = load([str(root)])
    assert loaded.resources == []
    assert sorted((s.address, s.reason) for s in loaded.skipped) == [
        ("aws_instance.empty", "for_each is empty (for_each = {})"),
        ("aws_instance.zero", "count = 0"),
        ("aws_instance.zero_var", "count = var.n evaluates to 0"),
        ("module.none", "count = 0"),
        ("module.off.aws_instance.gpu", "count = var.create && var.spot ? 1 : 0 evaluates to 0"),
    ]


def test_module_for_each_variables_and_defaults_reach_the_resources(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "main.tf": '''
variable "pools" {
  type = map(object({ instance_type = string, spot = optional(bool, true) }))
}
module "pool" {
  source   = "./pool"
  for_each = var.pools
  type     = each.value.instance_type
  spot     = each.value.spot
}
''',
        "terraform.tfvars": 'pools = { a = { instance_type = "g5.xlarge" }, b = { instance_type = "p4d.24xlarge", spot = false } }\n',
        "pool/main.tf": '''
variable "type" {}
variable "spot" {}
resource "aws_launch_template" "this" {
  instance_type = var.type
  instance_market_options {
    market_type = var.spot ? "spot" : null
  }
}
''',
    })  # fmt: skip
    loaded = load([str(root)])
    found = {r.address: r for r in loaded.resources}
    assert sorted(found) == [
        'module.pool["a"].aws_launch_template.this',
        'module.pool["b"].aws_launch_template.this',
    ]
    a, b = (
        found['module.pool["a"].aws_launch_template.this'],
        found['module.pool["b"].aws_launch_template.this'],
    )
    assert a.attributes["instance_type"] == "g5.xlarge"
    assert a.attributes["instance_market_options"] == [{"market_type": "spot"}]
    assert b.attributes["instance_market_options"] == [{"market_type": None}]
    assert (a.file, a.line) == (str(root / "pool" / "main.tf"), 4)


def test_unknown_count_leaves_one_instance_that_may_not_exist(tmp_path: Path) -> None:
    root = write(tmp_path, {"main.tf": '''
variable "enabled" { type = bool }
resource "aws_instance" "maybe" {
  count         = var.enabled ? 1 : 0
  instance_type = "p5.48xlarge"
}
'''})  # fmt: skip
    (only,) = load([str(root)]).resources
    assert (only.created, only.created_source) == (None, "count = var.enabled ? 1 : 0")


def test_provider_default_tags_and_regions_reach_resources_and_modules(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "main.tf": '''
provider "aws" {
  region = "us-west-2"
  default_tags {
    tags = { Project = "vision" }
  }
}
provider "aws" {
  alias  = "east"
  region = "us-east-1"
}
resource "aws_instance" "west" { instance_type = "g5.xlarge" }
resource "aws_instance" "east" {
  provider      = aws.east
  instance_type = "g5.xlarge"
}
module "inherits" { source = "./mod" }
module "mapped" {
  source    = "./mod"
  providers = { aws = aws.east }
}
''',
        "mod/main.tf": 'resource "aws_instance" "x" { instance_type = "g5.xlarge" }\n',
    })  # fmt: skip
    by_address = {r.address: r.provider for r in load([str(root)]).resources}
    assert {a: (p.region, p.default_tags) for a, p in by_address.items() if p} == {
        "aws_instance.west": ("us-west-2", {"Project": "vision"}),
        "aws_instance.east": ("us-east-1", None),
        "module.inherits.aws_instance.x": ("us-west-2", {"Project": "vision"}),
        "module.mapped.aws_instance.x": ("us-east-1", None),
    }


def test_modules_installed_by_terraform_init_load_and_missing_ones_are_listed(
    tmp_path: Path,
) -> None:
    root = write(tmp_path, {
        "main.tf": '''
module "nodes" {
  source  = "example/nodes/aws"
  version = "1.0.0"
}
module "absent" { source = "example/absent/aws" }
''',
        ".terraform/modules/modules.json": '{"Modules": [{"Key": "", "Dir": "."}, '
        '{"Key": "nodes", "Source": "registry.terraform.io/example/nodes/aws", "Dir": ".terraform/modules/nodes"}]}',
        ".terraform/modules/nodes/main.tf": 'resource "aws_instance" "n" { instance_type = "g5.xlarge" }\n',
    })  # fmt: skip
    loaded = load([str(root)])
    assert [r.address for r in loaded.resources] == ["module.nodes.aws_instance.n"]
    assert [n.message for n in loaded.notices] == [
        "module.absent: module source 'example/absent/aws' is not on disk (run `terraform "
        "init` first, or vendor the module); its resources were not checked"
    ]


def test_unrendered_dynamic_blocks_and_unknown_values_name_their_source(tmp_path: Path) -> None:
    root = write(tmp_path, {"main.tf": '''
variable "specs" {}
resource "aws_launch_template" "t" {
  instance_type = var.specs.type
  dynamic "tag_specifications" {
    for_each = var.specs
    content {
      resource_type = tag_specifications.value
    }
  }
}
'''})  # fmt: skip
    (template,) = load([str(root)]).resources
    assert template.attributes["tag_specifications"] == [UNKNOWN]
    assert template.unknown_sources == {
        "instance_type": "instance_type = var.specs.type",
        "tag_specifications": 'dynamic "tag_specifications" (for_each = var.specs)',
    }


def test_root_modules_are_the_folders_no_other_folder_calls(tmp_path: Path) -> None:
    root = write(tmp_path, {
        "envs/dev/main.tf": 'module "m" { source = "../../modules/m" }\n',
        "modules/m/main.tf": 'resource "aws_instance" "x" { instance_type = "g5.xlarge" }\n',
    })  # fmt: skip
    loaded = load([str(root)])
    assert loaded.roots == [str(root / "envs" / "dev")]
    assert [r.address for r in loaded.resources] == ["module.m.aws_instance.x"]
