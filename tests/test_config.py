"""``process.toml``: every section and key checked; a wrong file is a ConfigError, never a traceback."""
from __future__ import annotations

import dataclasses
import datetime as dt
import math
import sys
import tomllib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coachnb.cli import main
from coachnb.config import (ACTIVITY_TYPES, DEFAULT_STAGES, METRIC_KEYS, METRIC_KINDS, PRESENTATION_KEYS,
                            PROCESS_KEYS, SECTIONS, THRESHOLD_RANGES, ProcessConfig, Thresholds, config_from_dict,
                            load_config)
from coachnb.formatting import Currency, fmt_money
from coachnb.demo import process_toml
from coachnb.errors import ConfigError
from coachnb.loading import validate

sys.path.insert(0, str(Path(__file__).parent))
from datafolders import PROCESS_TOML, write_folder  # noqa: E402

REPO = Path(__file__).resolve().parent.parent


def error_of(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        config_from_dict(raw)
    return str(info.value)


# --------------------------------------------------------------------------- valid files load unchanged


REPO_CONFIGS = [p.read_text(encoding="utf-8") for p in sorted(REPO.glob("data/**/process.toml"))]


@pytest.mark.parametrize("text", [process_toml(), PROCESS_TOML, *REPO_CONFIGS])
def test_the_repos_configs_load_as_before(text):
    raw = tomllib.loads(text)
    cfg = config_from_dict(raw)
    assert cfg.stages == tuple(raw["process"]["stages"])
    assert cfg.timezone == raw["process"]["timezone"]
    assert cfg.thresholds == Thresholds()


def test_the_documented_example_loads():
    cfg = config_from_dict(tomllib.loads("""
        [process]
        stages = ["Discovery", "Qualification", "Proposal", "Negotiation"]
        week_start = "Monday"
        timezone = "Europe/Berlin"
        [activity_types]
        "Phone Call" = "Call"
        [thresholds]
        stalled_percentile = 80
        late_logging_days = 0
        baseline_gap_weeks = 0
        min_pre_weeks = 8.0
        min_teammates = 5
        [commitment_metrics.linkedin_messages_per_week]
        label = "LinkedIn messages per week"
        kind = "activity_count"
        activity_types = ["other"]
        [commitment_metrics.new_deals]
        kind = "opportunities_created"
    """))
    assert cfg.week_start == "monday" and cfg.activity_type_map == {"Phone Call": "call"}
    # a float where a percentile is asked stays a float, a whole-number float where weeks are asked an int,
    # so the config's repr (part of the data fingerprint) is what it was before validation existed
    assert cfg.thresholds.stalled_percentile == 80.0 and isinstance(cfg.thresholds.stalled_percentile, float)
    assert cfg.thresholds.min_pre_weeks == 8 and isinstance(cfg.thresholds.min_pre_weeks, int)
    assert cfg.thresholds.min_teammates == 5 and cfg.thresholds.late_logging_days == 0.0
    assert cfg.commitment_metrics["linkedin_messages_per_week"].activity_types == ("other",)
    assert cfg.commitment_metrics["new_deals"].label == "new deals"
    assert "calls_per_week" in cfg.commitment_metrics


def test_empty_file_is_the_defaults():
    assert config_from_dict({}) == ProcessConfig()
    assert ProcessConfig().thresholds.min_teammates == 3


def test_every_threshold_has_a_range_and_its_default_is_in_it():
    assert set(THRESHOLD_RANGES) == {f.name for f in dataclasses.fields(Thresholds)}
    for name, rng in THRESHOLD_RANGES.items():
        assert rng.holds(getattr(Thresholds(), name)), name


# --------------------------------------------------------------------------- the cases of issue 19


@pytest.mark.parametrize("raw, words", [
    ({"process": 5}, ["[process] must be a table", "integer 5"]),
    ({"process": {"stages": 5}}, ["[process] stages must be an array", "integer 5"]),
    ({"process": {"stages": "Discovery"}}, ["[process] stages must be an array", "string 'Discovery'"]),
    ({"process": {"stages": ["A", 3]}}, ["[process] stages must hold only stage names", "integer 3"]),
    ({"process": {"stages": []}}, ["[process] stages must be a non-empty list"]),
    ({"process": {"stages": ["A", " "]}}, ["[process] stages must be a non-empty list"]),
    ({"process": {"stages": ["A", "A"]}}, ["[process] stages has a name twice"]),
    ({"process": {"week_start": 1}}, ["[process] week_start must be a weekday name", "integer 1"]),
    ({"process": {"week_start": "mon"}}, ["[process] week_start must be a weekday name", "'mon'"]),
    ({"process": {"timezone": 1}}, ["[process] timezone must be a time zone name", "integer 1"]),
    ({"process": {"timezone": "Mars/Olympus"}}, ["[process] timezone 'Mars/Olympus' is not an IANA time zone"]),
    ({"process": {"timezone": "America"}}, ["is not an IANA time zone"]),  # a folder of the zone database
    ({"process": {"timezone": "x" * 5000}}, ["is not an IANA time zone"]),  # OSError: file name too long
    ({"process": {"timezone": "\x00"}}, ["is not an IANA time zone"]),
    ({"thresholds": 5}, ["[thresholds] must be a table", "integer 5"]),
    ({"activity_types": ["call"]}, ["[activity_types] must be a table"]),
    ({"activity_types": {"Phone": 5}}, ["[activity_types] 'Phone' must map to one of call", "integer 5"]),
    ({"activity_types": {"Phone": "ring"}}, ["[activity_types] 'Phone' must map to one of call", "'ring'"]),
    ({"activity_types": {"Call": "email"}}, ["[activity_types] 'Call' is already coachnb's type 'call'"]),
    ({"activity_types": {"Ring": "call", " ring": "email"}}, ["maps to 'email' but the same name"]),
    ({"commitment_metrics": ["x"]}, ["[commitment_metrics] must be a table", "array ['x']"]),
    ({"commitment_metrics": {"x": "calls"}}, ["[commitment_metrics.x] must be a table", "string 'calls'"]),
    ({"commitment_metrics": {"x": {"kind": "vibes"}}}, ["[commitment_metrics.x] kind must be one of"]),
    ({"commitment_metrics": {"x": {"kind": ["a"]}}}, ["[commitment_metrics.x] kind must be one of", "array"]),
    ({"commitment_metrics": {"x": {}}}, ["[commitment_metrics.x] activity_types must list types"]),
    ({"commitment_metrics": {"x": {"activity_types": "call"}}}, ["activity_types must be an array", "string 'call'"]),
    ({"commitment_metrics": {"x": {"activity_types": ["ring"]}}}, ["activity_types must list types", "['ring']"]),
    ({"commitment_metrics": {"x": {"kind": "stage_advancements", "activity_types": ["call"]}}},
     ["activity_types is only used with kind = \"activity_count\""]),
    ({"commitment_metrics": {"x": {"activity_types": ["call"], "label": 7}}}, ["[commitment_metrics.x] label", "integer 7"]),
    ({"commitment_metrics": {"x": {"activity_types": ["call"], "label": ""}}}, ["label must be a non-empty text"]),
    ({"commitment_metrics": {"x": {"activity_types": ["call"], "unit": []}}}, ["[commitment_metrics.x] unit", "array"]),
    ({"commitment_metrics": {" ": {"activity_types": ["call"]}}}, ["has a metric with an empty name"]),
])
def test_wrong_type_or_value_names_the_file_section_key_and_rule(raw, words):
    message = error_of(raw)
    assert message.startswith("process.toml: ")
    for w in words:
        assert w in message, (w, message)


def test_a_wrong_kind_is_one_problem_not_two():
    message = error_of({"commitment_metrics": {"x": {"kind": "vibes", "activity_types": ["call"]}}})
    assert "\n" not in message and "kind must be one of" in message


@pytest.mark.parametrize("key, value", [
    ("stalled_percentile", 0), ("stalled_percentile", 100), ("stalled_percentile", -1), ("behind_percentile", 100.5),
    ("late_logging_days", -0.5), ("late_logging_days", 1e300), ("baseline_gap_weeks", -1),
    ("baseline_gap_weeks", 2.5), ("min_pre_weeks", -3), ("min_pre_weeks", 0), ("min_pre_weeks", 10**18),
    ("equivalence_margin", 0), ("equivalence_margin", 1), ("equivalence_margin", 1.5), ("cadence_days", 0),
    ("min_teammates", 2), ("min_teammates", 0), ("min_teammates", 3.5),
    ("cadence_days", True), ("min_teammates", True), ("late_logging_days", False),  # a boolean is not a number
    ("stalled_percentile", math.nan), ("late_logging_days", math.inf), ("min_pre_weeks", -math.inf),
    ("late_logging_days", "2"), ("min_pre_weeks", [8]), ("cadence_days", {"days": 21}),
    ("cadence_days", dt.date(2026, 1, 1)), ("pipeline_lag_weeks", -1), ("pipeline_lag_weeks", 27),
    ("pipeline_lag_weeks", 1.5), ("pipeline_lag_weeks", "2"),
])
def test_threshold_out_of_range_or_not_a_number(key, value):
    message = error_of({"thresholds": {key: value}})
    assert f"process.toml: [thresholds] {key} must be a " in message
    assert ("whole number" in message) == THRESHOLD_RANGES[key].whole


@pytest.mark.parametrize("key, value", [("stalled_percentile", 0.01), ("stalled_percentile", 99.9),
                                        ("late_logging_days", 0), ("baseline_gap_weeks", 0), ("min_pre_weeks", 1),
                                        ("equivalence_margin", 0.5), ("min_teammates", 3), ("cadence_days", 3650),
                                        ("pipeline_lag_weeks", 0), ("pipeline_lag_weeks", 26)])
def test_threshold_at_the_edge_of_its_range_is_accepted(key, value):
    assert getattr(config_from_dict({"thresholds": {key: value}}).thresholds, key) == value


@pytest.mark.parametrize("raw, words", [
    ({"process": {"timezon": "Europe/Berlin"}}, "[process] has an unknown key 'timezon'; did you mean 'timezone'?"),
    ({"proces": {}}, "the top level has an unknown key 'proces'; did you mean 'process'?"),
    ({"treshold": {}}, "did you mean 'thresholds'?"),
    ({"thresholds": {"min_pre_week": 8}}, "[thresholds] has an unknown key 'min_pre_week'; did you mean 'min_pre_weeks'?"),
    ({"activity_type": {}}, "did you mean 'activity_types'?"),
    ({"commitment_metrics": {"x": {"activity_types": ["call"], "lable": "X"}}},
     "[commitment_metrics.x] has an unknown key 'lable'; did you mean 'label'?"),
    ({"zzz": 1}, "the top level has an unknown key 'zzz'; known: process, activity_types"),
])
def test_unknown_key_is_an_error_with_did_you_mean(raw, words):
    assert words in error_of(raw)


def test_every_problem_is_reported_at_once_one_a_line():
    message = error_of({"process": {"timezon": "Europe/Berlin", "stages": "Discovery"},
                        "thresholds": {"min_pre_weeks": -3, "cadence_days": True}, "extra": {}})
    lines = message.split("\n")
    assert len(lines) == 5
    assert all(line.strip().startswith("process.toml: ") for line in lines)
    assert ["timezon" in message, "stages" in message, "min_pre_weeks" in message, "cadence_days" in message] == [True] * 4


def test_the_known_keys_are_what_the_docs_list():
    docs = (REPO / "docs" / "data.md").read_text()
    section = docs[docs.index("## process.toml"):]
    for key in (*[s for s in SECTIONS if s != "presentation"], *PROCESS_KEYS, *METRIC_KEYS, *THRESHOLD_RANGES,
                *METRIC_KINDS):
        assert key in section, key
    # [presentation] (currency, paper) is documented with the rest of how reports look
    presentation = (REPO / "docs" / "presentation.md").read_text()
    for key in ("[presentation]", *PRESENTATION_KEYS):
        assert key in presentation, key


# --------------------------------------------------------------------------- [presentation]


def test_no_presentation_section_names_no_currency_and_prints_on_a4():
    cfg = config_from_dict({})
    assert cfg.presentation.currency == Currency() and cfg.presentation.paper == "A4"
    assert fmt_money(397_213, cfg.presentation.currency) == "397,213"


@pytest.mark.parametrize("spec, amount, shown", [
    ({"currency": "GBP"}, 38_707, "£38,707"),
    ({"currency": "gbp", "thousands_separator": " "}, 1_234_567, "£1 234 567"),
    ({"currency": "€", "currency_position": "after", "thousands_separator": "."}, 49_838, "49.838\u00a0€"),
    ({"currency": "CHF", "thousands_separator": "'"}, 12_900, "CHF\u00a012'900"),
    ({"currency": "SEK", "currency_position": "after", "thousands_separator": ""}, 12_900, "12900\u00a0SEK"),
    ({"currency": "$"}, -1_500, "-$1,500"),
])
def test_the_currency_and_separator_set_how_every_amount_is_written(spec, amount, shown):
    assert fmt_money(amount, config_from_dict({"presentation": spec}).presentation.currency) == shown


def test_paper_is_a4_or_letter_in_any_case():
    assert config_from_dict({"presentation": {"paper": "letter"}}).presentation.paper == "Letter"
    assert "[presentation] paper must be one of A4, Letter, not 'A5'" in error_of({"presentation": {"paper": "A5"}})


@pytest.mark.parametrize("spec, rule", [
    ({"currency": 826}, "currency must be a currency code or symbol in quotes, not integer 826"),
    ({"currency": "1£"}, "currency must be an ISO 4217 code"),
    ({"currency": "Pounds"}, "currency must be an ISO 4217 code"),
    ({"currency": "U S"}, "currency must be an ISO 4217 code"),
    ({"currency": "\x1b[31m"}, "currency must be an ISO 4217 code"),
    ({"thousands_separator": "-"}, "thousands_separator must be one of"),
    ({"thousands_separator": True}, "thousands_separator must be one of"),
    ({"currency_position": "left"}, 'currency_position must be "before" or "after", not \'left\''),
    ({"curency": "GBP"}, "has an unknown key 'curency'; did you mean 'currency'?"),
])
def test_a_wrong_presentation_key_names_the_key_and_the_rule(spec, rule):
    message = error_of({"presentation": spec})
    assert message.startswith("process.toml: [presentation]") and rule in message


# --------------------------------------------------------------------------- the file itself


def test_toml_syntax_error_names_the_file_and_line(tmp_path):
    (tmp_path / "process.toml").write_text('[process]\nstages = ["A",\nweek_start = "monday"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"^process\.toml: not valid TOML: .*line 3"):
        load_config(tmp_path)


def test_not_utf8_names_the_file_and_line(tmp_path):
    (tmp_path / "process.toml").write_bytes('[process]\nstages = ["Découverte"]\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"^process\.toml: is not UTF-8 text \(byte 0xe9 on line 2\)"):
        load_config(tmp_path)


def test_utf8_with_bom_is_fine(tmp_path):
    (tmp_path / "process.toml").write_bytes('\ufeff[process]\nstages = ["Découverte"]\n'.encode("utf-8"))
    assert load_config(tmp_path).stages == ("Découverte",)


def test_deeply_nested_toml_and_a_folder_named_process_toml(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "process.toml").write_text("x = " + "[" * 50_000, encoding="utf-8")
    with pytest.raises(ConfigError, match="process.toml: not valid TOML"):
        load_config(tmp_path / "a")
    (tmp_path / "b" / "process.toml").mkdir(parents=True)
    with pytest.raises(ConfigError, match="process.toml: is not a file"):
        load_config(tmp_path / "b")


def test_validate_lists_every_config_problem_and_goes_on(tmp_path):
    path = write_folder(tmp_path, process_toml='[process]\ntimezon = "Europe/Berlin"\n[thresholds]\nmin_pre_weeks = -3\n')
    report = validate(path)
    problems = [p for p in report.problems if p.rule == "invalid_config"]
    assert len(problems) == 1 and problems[0].file == "process.toml"
    assert "did you mean 'timezone'?" in problems[0].message and "min_pre_weeks" in problems[0].message
    assert any(p.rule == "unknown_activity_type" for p in report.problems)  # the data was still checked


@pytest.mark.parametrize("text", ["process = 5\n", "[process]\nstages = 5\n", "thresholds = 5\n",
                                  'commitment_metrics = ["x"]\n', "[commitment_metrics]\nx = \"calls\"\n",
                                  "[process\n"])
def test_cli_validate_and_run_refuse_a_wrong_config_without_a_traceback(tmp_path, capsys, text):
    path = write_folder(tmp_path / "data", process_toml=text)
    assert main(["validate", str(path)]) == 1
    out = capsys.readouterr()
    assert "[invalid_config]" in out.out + out.err and "Traceback" not in out.out + out.err
    assert main(["run", str(path), "--as-of", "2026-11-23", "--out", str(tmp_path / "reports")]) == 2
    err = capsys.readouterr().err
    # the run says what it is doing first ("coachnb: validating the data in ..."), then the error
    assert any(line.startswith("coachnb: process.toml: ") for line in err.splitlines()) and "Traceback" not in err
    assert not (tmp_path / "reports").exists() or not any((tmp_path / "reports").rglob("*.html"))


# --------------------------------------------------------------------------- fuzz

SCALARS = st.one_of(
    st.booleans(), st.integers(), st.integers(min_value=-2**63, max_value=2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([math.nan, math.inf, -math.inf, 1e308, -0.0]),
    st.text(max_size=20), st.sampled_from(["", " ", "\x00", "🙂", "Europe/Berlin", "America", "../etc/passwd", "x" * 300,
                                           "monday", "call", "CALL", "activity_count", "stage_advancements"]),
    st.dates(), st.datetimes(), st.times(),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=8), inner, max_size=4)),
                      max_leaves=12)


def keyed(keys, values=VALUES):
    """Tables whose keys are mostly the real ones (so each is checked), sometimes a near miss."""
    key = st.one_of(st.sampled_from(list(keys)), st.text(max_size=12))
    return st.dictionaries(key, values, max_size=len(keys) + 1)


PLAUSIBLE_METRIC = st.fixed_dictionaries({}, optional={
    "label": VALUES, "kind": st.one_of(st.sampled_from(METRIC_KINDS), VALUES), "unit": VALUES,
    "activity_types": st.one_of(st.lists(st.sampled_from(ACTIVITY_TYPES), max_size=3), VALUES)})
SECTION = {
    "process": st.one_of(keyed(PROCESS_KEYS, st.one_of(VALUES, st.lists(st.text(max_size=12), max_size=5))), VALUES),
    "activity_types": st.one_of(st.dictionaries(st.text(max_size=10), st.one_of(st.sampled_from(ACTIVITY_TYPES), VALUES),
                                                max_size=4), VALUES),
    "thresholds": st.one_of(keyed(THRESHOLD_RANGES, st.one_of(SCALARS, st.integers(-5, 200))), VALUES),
    "commitment_metrics": st.one_of(st.dictionaries(st.text(max_size=10), st.one_of(PLAUSIBLE_METRIC, VALUES),
                                                    max_size=3), VALUES),
    "presentation": st.one_of(keyed(PRESENTATION_KEYS, st.one_of(VALUES, st.sampled_from(["GBP", "€", ".", "after",
                                                                                          "Letter"]))), VALUES),
}
CONFIGS = st.one_of(st.fixed_dictionaries({}, optional=SECTION), keyed(SECTIONS), VALUES)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIGS)
def test_fuzz_any_toml_value_gives_a_config_or_a_config_error(raw):
    try:
        cfg = config_from_dict(raw)
    except ConfigError as exc:
        assert str(exc).startswith("process.toml: ")
        return
    # what is accepted is usable: the zone, the week and every threshold in its range
    assert isinstance(cfg, ProcessConfig)
    assert cfg.tz is not None and cfg.week_freq.startswith("W-")
    assert all(isinstance(s, str) and s.strip() for s in cfg.stages)
    for name, rng in THRESHOLD_RANGES.items():
        assert rng.holds(getattr(cfg.thresholds, name)), name
    assert set(cfg.activity_type_map.values()) <= set(ACTIVITY_TYPES)
    # an accepted currency writes amounts whose digits stay readable
    money = fmt_money(1234, cfg.presentation.currency)
    assert "234" in money and not any(ch.isdigit() for ch in cfg.presentation.currency.symbol)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300) | st.text(max_size=300).map(str.encode))
def test_fuzz_any_file_bytes_give_a_config_or_a_config_error(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("cfg")
    (folder / "process.toml").write_bytes(data)
    try:
        assert isinstance(load_config(folder), ProcessConfig)
    except ConfigError as exc:
        assert str(exc).startswith("process.toml: ")


def test_default_stages_are_the_documented_ones():
    assert config_from_dict({"process": {}}).stages == DEFAULT_STAGES
