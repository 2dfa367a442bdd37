"""Silences through the API and the command line: created with author, comment and end, listed
with their state, expired early; mistakes answered with what is wrong. Owners are listed."""

from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from driftline.collector.alerting.config import load_alerting
from tests.alerting.test_alert_config import GOOD
from tests.api_client import api_client
from tests.test_cli import driftline


def test_a_silence_is_created_listed_and_expired_through_the_api(engine: Engine) -> None:
    with api_client(engine) as api:
        created = api.post(
            "/silences",
            json={
                "matchers": ['model="credit-risk"', "feature=~debt.*"],
                "duration": "2h",
                "comment": "new applicant population; retraining",
            },
        )
        assert created.status_code == 201, created.text
        silence = created.json()
        assert silence["state"] == "active"
        assert silence["matchers"] == ['model="credit-risk"', 'feature=~"debt.*"']
        assert [s["id"] for s in api.get("/silences").json()] == [silence["id"]]

        expired = api.delete(f"/silences/{silence['id']}")
        assert expired.json()["state"] == "expired"
        assert api.get("/silences").json()[0]["state"] == "expired"
        assert api.delete("/silences/00000000-0000-4000-8000-000000000000").status_code == 404


def test_a_silence_that_cannot_work_is_refused_with_the_reason(engine: Engine) -> None:
    base: dict[str, Any] = {"comment": "x"}
    mistakes: list[tuple[dict[str, Any], str]] = [
        ({"matchers": ["model=~("], "duration": "1h"}, "bad regular expression"),
        ({"matchers": ['model="m"'], "duration": "soon"}, "'soon' is not a duration"),
        ({"matchers": ['model="m"']}, "give exactly one of ends_at and duration"),
    ]
    with api_client(engine) as api:
        for body, reason in mistakes:
            answer = api.post("/silences", json=base | body)
            assert answer.status_code == 422 and reason in answer.text, answer.text


def test_a_silences_author_is_the_token_that_made_it_never_the_body(engine: Engine) -> None:
    silence = {"matchers": ['model="m"'], "duration": "1h", "comment": "deploy"}
    with api_client(engine, "operator") as api:
        created = api.post("/silences", json=silence)
        assert created.status_code == 201, created.text
        assert created.json()["created_by"] == "test-operator"  # the token's name
        forged = api.post("/silences", json=silence | {"created_by": "head-of-risk"})
        assert forged.status_code == 422 and "created_by" in forged.text
        assert [s["created_by"] for s in api.get("/silences").json()] == ["test-operator"]


def test_a_silence_too_big_to_read_is_422_naming_what_is_too_big(engine: Engine) -> None:
    """At most 32 matchers, label names of 200 characters, values of 1,000, comments of 2,000."""
    fine: dict[str, Any] = {"matchers": ['model="m"'], "duration": "1h", "comment": "deploy"}
    too_big: list[tuple[dict[str, Any], str]] = [
        ({"comment": "c" * 2_001}, "comment"),
        ({"matchers": [f'f{n}="x"' for n in range(33)]}, "matchers"),
        ({"matchers": ['model="m"', "n" * 201 + '="x"']}, "matchers[1]"),
        ({"matchers": ['model="' + "v" * 1_001 + '"']}, "matchers[0]"),
        ({"matchers": ['model=~"' + "(a|b)" * 1_000 + '"']}, "matchers[0]"),
        ({"matchers": ['model="' + "\\u00e9" * 20_000 + '"']}, "matchers"),  # escaped, 120,000
    ]
    with api_client(engine) as api:
        for change, named in too_big:
            answer = api.post("/silences", json=fine | change)
            assert answer.status_code == 422, (named, answer.text[:200])
            assert named in answer.text, answer.text[:300]
        assert api.get("/silences").json() == []
        at_the_limits = {
            "matchers": ['model="' + "v" * 1_000 + '"'] + [f'f{n}="x"' for n in range(31)],
            "comment": "c" * 2_000,
        }
        assert api.post("/silences", json=fine | at_the_limits).status_code == 201


def test_owners_are_listed_from_the_alerting_file(engine: Engine, tmp_path: Path) -> None:
    path = tmp_path / "alerting.yaml"
    path.write_text(GOOD)
    with api_client(engine, alerting_config=load_alerting(path)) as api:
        (owner,) = api.get("/owners").json()
    assert owner["owner"] == "risk-ml-team"
    assert owner["matchers"] == ['model="credit-risk"']
    assert owner["escalation"] == ["a.kim", "head-of-risk"]


def test_silences_from_the_command_line(tmp_path: Path) -> None:
    env = {"DRIFTLINE_DATABASE_URL": f"sqlite:///{tmp_path / 'd.db'}", "COLUMNS": "200"}
    assert driftline("migrate", env=env).returncode == 0
    added = driftline(
        "silence", "add", "-m", 'model="credit-risk"', "--comment", "retraining",
        "--duration", "30m", "--author", "a.kim", env=env,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    silence_id = added.stdout.split()[2]
    listed = driftline("silence", "list", env=env)
    assert silence_id in listed.stdout and "active" in listed.stdout
    narrow = driftline("silence", "list", env=env | {"COLUMNS": "60"})  # the id is never cut
    assert silence_id in narrow.stdout, narrow.stdout
    assert driftline("silence", "expire", silence_id, env=env).returncode == 0
    assert "expired" in driftline("silence", "list", env=env).stdout
    bad = driftline("silence", "add", "-m", "model=~(", "--comment", "x", env=env)
    assert bad.returncode == 2 and "bad regular expression" in bad.stderr


def test_check_config_names_file_line_and_key_of_each_mistake(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(GOOD.replace("group_wait: 10s", "group_wait: soon"))
    result = driftline("check-config", str(broken), env={"COLUMNS": "300"})
    assert result.returncode == 1
    assert f"{broken}:4: route.group_wait: Value error, 'soon' is not a duration" in result.stderr
    good = tmp_path / "good.yaml"
    good.write_text(GOOD)
    fine = driftline("check-config", str(good), env={"COLUMNS": "300"})
    assert fine.returncode == 0
    assert "2 routes, 2 receivers, 1 inhibit rules, 1 owners" in fine.stdout


def test_route_without_an_alerting_file_says_what_to_set() -> None:
    # Kafka is set (to a port nobody listens on): the alerting file is what is missing.
    result = driftline(
        "route",
        env={"DRIFTLINE_ALERTING_CONFIG": "", "DRIFTLINE_KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"},
    )
    assert result.returncode == 2  # a missing setting, as for every command
    assert "DRIFTLINE_ALERTING_CONFIG is not set" in result.stderr
