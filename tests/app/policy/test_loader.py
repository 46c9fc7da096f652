import re
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.policy import (
    DEFAULT_POLICY_PATH,
    Policy,
    PolicyFileError,
    PolicyProblem,
    check_policy_file,
    load_policy,
    parse_policy,
)
from app.policy.__main__ import main as policy_main

LINE_PREFIX = re.compile(r"^(?P<source>.+?):(?P<line>\d+):(?P<column>\d+): ")


def problems_of(text: str) -> list[str]:
    with pytest.raises(PolicyFileError) as caught:
        parse_policy(text, source="p.yaml")
    return [str(problem) for problem in caught.value.problems]


class TestValidFiles:
    def test_empty_file_is_the_shipped_policy(self):
        assert parse_policy("") == Policy()
        assert parse_policy("# only a comment\n") == Policy()

    def test_partial_file_overrides_only_what_it_names(self, tmp_path: Path):
        path = tmp_path / "policy.yaml"
        path.write_text("approvals:\n  quorum: 3\nretention:\n  inactivity_months: 24\n", encoding="utf-8")
        policy = load_policy(path)
        assert policy.approvals.quorum == 3
        assert policy.retention.inactivity_months == 24
        assert policy.approvals.ttl_hours == Policy().approvals.ttl_hours

    def test_check_returns_no_messages_for_a_valid_file(self):
        assert check_policy_file(DEFAULT_POLICY_PATH) == []


class TestErrorsNameTheLine:
    def test_unknown_key_with_a_suggestion(self):
        assert problems_of("version: 1\napprovals:\n  quorom: 2\n") == [
            "p.yaml:3:3: approvals.quorom: unknown key 'quorom'; did you mean 'quorum'?"
        ]

    def test_unknown_key_lists_allowed_keys_when_nothing_is_close(self):
        [message] = problems_of("disposal:\n  zzz: 1\n")
        assert message.startswith("p.yaml:2:3: disposal.zzz: unknown key 'zzz'; allowed: soft_delete_grace_days")

    def test_unknown_top_level_key(self):
        assert problems_of("retension:\n  inactivity_months: 12\n") == [
            "p.yaml:1:1: retension: unknown key 'retension'; did you mean 'retention'?"
        ]

    def test_quoted_number_is_not_coerced(self):
        assert problems_of("approvals:\n  quorum: '2'\n") == [
            "p.yaml:2:3: approvals.quorum: Input should be a valid integer"
        ]

    def test_out_of_range_value(self):
        assert problems_of("disposal:\n  proof_retention_years: 0\n") == [
            "p.yaml:2:3: disposal.proof_retention_years: Input should be greater than or equal to 1"
        ]

    def test_error_inside_a_list_item_points_at_that_item(self):
        text = (
            "classification:\n"
            "  patterns:\n"
            "    - id: ok\n"
            "      name: fine\n"
            "      regex: 'A\\d+'\n"
            "    - id: broken\n"
            "      name: bad regex\n"
            "      regex: 'HĐ-(\\d{4}'\n"
        )
        [message] = problems_of(text)
        assert message.startswith("p.yaml:8:7: classification.patterns.1.regex: not a valid regular expression")

    def test_missing_required_key_points_at_its_parent(self):
        text = "attribution:\n  locations:\n    - id: x\n      scope: path\n"
        assert problems_of(text) == ["p.yaml:3:7: attribution.locations.0: required key 'pattern' is missing"]

    def test_several_problems_are_all_reported_in_line_order(self):
        text = "approvals:\n  ttl_hours: 10\nlabels:\n  names:\n    public: 3\n  colour: red\n"
        assert problems_of(text) == [
            "p.yaml:2:3: approvals.ttl_hours: must be later than escalate_after_hours (48)",
            "p.yaml:5:5: labels.names.public: Input should be a valid string",
            "p.yaml:6:3: labels.colour: unknown key 'colour'; allowed: names, apply_to, override_manual_labels",
        ]

    def test_duplicate_key(self):
        assert problems_of("approvals:\n  quorum: 2\n  quorum: 3\n") == ["p.yaml:3:3: approvals.quorum: duplicate key"]

    def test_aliases_are_refused(self):
        [message] = problems_of("organization:\n  name: &n X\nlabels:\n  names:\n    public: *n\n")
        assert "anchors and aliases are not supported" in message

    def test_yaml_syntax_error(self):
        [message] = problems_of("approvals:\n  quorum: [2\n")
        assert LINE_PREFIX.match(message)
        assert "YAML error" in message

    def test_unsafe_tag_is_an_error_not_code(self):
        [message] = problems_of("organization:\n  name: !!python/object/apply:os.getcwd []\n")
        assert message.startswith("p.yaml:2:9: YAML error: could not determine a constructor")

    def test_top_level_must_be_a_mapping(self):
        assert problems_of("- a\n- b\n") == ["p.yaml:1:1: the policy must be a mapping of keys"]

    def test_location_pattern_rules(self):
        text = (
            "attribution:\n"
            "  locations:\n"
            "    - {id: a, scope: path, pattern: 'Customers/x'}\n"
            "    - {id: b, scope: site, pattern: '{customer}-site'}\n"
            "    - {id: c, scope: path, pattern: 'Cust*/{customer}'}\n"
        )
        assert problems_of(text) == [
            "p.yaml:3:28: attribution.locations.0.pattern: needs exactly one '{customer}' placeholder",
            "p.yaml:4:28: attribution.locations.1.pattern: '{customer}' must end its path segment "
            "(a literal prefix such as 'KH-' is allowed)",
            "p.yaml:5:28: attribution.locations.2.pattern: wildcards must be whole segments ('*' or '**'), not 'Cust*'",
        ]

    def test_rule_ids_are_unique(self):
        text = (
            "attribution:\n"
            "  locations:\n"
            "    - {id: c, scope: path, pattern: 'A/{customer}'}\n"
            "    - {id: c, scope: path, pattern: 'B/{customer}'}\n"
        )
        assert problems_of(text) == ["p.yaml:2:3: attribution.locations: duplicate id(s): c"]

    def test_notice_template_with_an_unknown_variable(self):
        text = "notices:\n  deletion_confirmation:\n    en:\n      subject: 'Hi {{ password }}'\n      body: x\n"
        [message] = problems_of(text)
        assert message.startswith("p.yaml:4:7: notices.deletion_confirmation.en.subject: unknown variable(s) password")

    def test_notice_template_syntax_error(self):
        text = "notices:\n  compelled_disclosure:\n    vi:\n      subject: s\n      body: '{% if %}'\n"
        [message] = problems_of(text)
        assert message.startswith("p.yaml:5:7: notices.compelled_disclosure.vi.body: template error")


class TestCheckCommand:
    def test_messages_and_exit_codes(self, tmp_path: Path, capsys: pytest.CaptureFixture[str]):
        good = tmp_path / "good.yaml"
        good.write_text("retention:\n  inactivity_months: 18\n", encoding="utf-8")
        bad = tmp_path / "bad.yaml"
        bad.write_text("retention:\n  inactivity_month: 18\n", encoding="utf-8")
        assert check_policy_file(good) == []
        assert check_policy_file(bad) == [
            f"{bad}:2:3: retention.inactivity_month: unknown key 'inactivity_month'; did you mean 'inactivity_months'?"
        ]
        assert policy_main(["check", str(good)]) == 0
        assert policy_main(["check", str(good), str(bad)]) == 1
        assert "inactivity_month" in capsys.readouterr().err
        assert policy_main([]) == 2

    def test_unreadable_and_binary_files(self, tmp_path: Path):
        [missing] = check_policy_file(tmp_path / "nope.yaml")
        assert missing.endswith("cannot read: No such file or directory")
        binary = tmp_path / "binary.yaml"
        binary.write_bytes(b"\xff\xfe\x00garbage")
        [message] = check_policy_file(binary)
        assert "not UTF-8 text" in message


# Malformed files: whatever the damage, the loader answers with line-numbered problems, never a traceback.
_DEFAULT_TEXT = DEFAULT_POLICY_PATH.read_text(encoding="utf-8")
_DEFAULT_LINES = _DEFAULT_TEXT.splitlines()
_WRONG_VALUES = st.sampled_from(["'2'", "-1", "[]", "{}", "yes", "null", "1.5", "'x'", "99999999999", "[a, [b]]"])


def _assert_problems_have_lines(text: str) -> None:
    problems: list[PolicyProblem] = []
    try:
        parse_policy(text, source="p.yaml")
    except PolicyFileError as error:
        problems = error.problems
        assert problems
    for problem in problems:
        assert problem.line is not None, str(problem)
        assert problem.line >= 1, str(problem)
        assert LINE_PREFIX.match(str(problem)), str(problem)


class TestMalformedFilesProperties:
    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(line=st.integers(0, len(_DEFAULT_LINES) - 1), value=_WRONG_VALUES)
    def test_a_wrong_value_anywhere(self, line: int, value: str):
        lines = list(_DEFAULT_LINES)
        key, sep, _ = lines[line].partition(":")
        if sep and not key.strip().startswith("#"):
            lines[line] = f"{key}: {value}"
        _assert_problems_have_lines("\n".join(lines))

    @settings(max_examples=100, deadline=None)
    @given(line=st.integers(0, len(_DEFAULT_LINES) - 1), key=st.from_regex(r"[a-z_]{1,12}", fullmatch=True))
    def test_an_unknown_key_anywhere(self, line: int, key: str):
        lines = list(_DEFAULT_LINES)
        original = lines[line]
        indent = original[: len(original) - len(original.lstrip())]
        lines.insert(line, f"{indent}{key}: 1")
        _assert_problems_have_lines("\n".join(lines))

    @settings(max_examples=200, deadline=None)
    @given(text=st.text(max_size=200))
    def test_arbitrary_text(self, text: str):
        _assert_problems_have_lines(text)

    @settings(max_examples=100, deadline=None)
    @given(cut=st.integers(0, len(_DEFAULT_TEXT)), junk=st.text(alphabet=":-[]{}&*!|>'\"#%@` \n\t", max_size=8))
    def test_damaged_default_file(self, cut: int, junk: str):
        _assert_problems_have_lines(_DEFAULT_TEXT[:cut] + junk + _DEFAULT_TEXT[cut:])


def test_the_shipped_file_round_trips_through_yaml():
    # The loader reads the same data PyYAML does: the shipped policy has nothing the loader would mangle.
    assert Policy.model_validate(yaml.safe_load(_DEFAULT_TEXT)) == parse_policy(_DEFAULT_TEXT)
