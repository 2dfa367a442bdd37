"""An auditor holds the checkpoint public key and nothing else: with it they verify the ledger,
write and check a proof, copy the checkpoints out and run the go-live gate, and no command
of theirs reads, needs or makes the private key."""

import json
import os
from pathlib import Path

import pytest
from sqlalchemy import Engine

from driftline.collector.audit.checkpoints import SigningKeyError
from driftline.collector.audit.integrity import KeyRing
from driftline.collector.cli.golive import EXIT_CODES
from driftline.collector.core.settings import CollectorSettings
from tests import events
from tests.audit.test_exports_erasure_replay import about
from tests.audit.test_search_and_lineage import store
from tests.test_cli import driftline

THRESHOLDS = """\
thresholds:
  - model: credit-risk
    version: "3"
    window: 7d
    min_decisions: 1
    governance: {ledger_verifies: true}
"""


@pytest.mark.parametrize("their_key_file", ["absent", "unreadable"])
def test_an_auditor_verifies_proves_and_gates_with_the_public_key_alone(
    tmp_path: Path, engine: Engine, database_url: str, their_key_file: str
) -> None:
    decision = about("s-1")
    store(engine, [decision, events.review(decision.decision_id)])
    operator = {"DRIFTLINE_DATABASE_URL": database_url}
    signing_key = Path(os.environ["DRIFTLINE_SIGNING_KEY_FILE"])
    assert driftline("audit", "keygen", "--out", str(signing_key)).returncode == 0
    assert driftline("audit", "checkpoint", env=operator).returncode == 0
    public_key = tmp_path / "handed-to-the-auditor.pem"
    public_key.write_bytes(signing_key.with_name("signing-key.pub.pem").read_bytes())

    # The auditor's own machine: no private key where the setting points (or a file that is
    # not one), no public key file beside it, no producer key of their own.
    auditor = tmp_path / "auditor"
    auditor.mkdir()
    their_private = auditor / "signing-key.pem"
    if their_key_file == "unreadable":
        their_private.write_text("not a key")
    env = {
        "DRIFTLINE_DATABASE_URL": database_url,
        "DRIFTLINE_SIGNING_KEY_FILE": str(their_private),
        "DRIFTLINE_PRODUCER_KEY_FILE": str(auditor / "producer-key.pem"),
    }
    trust = ("--public-key", str(public_key))

    verified = driftline("audit", "verify", *trust, env=env)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert "intact" in verified.stdout
    proof = auditor / "proof.json"
    proven = driftline("audit", "prove", str(decision.decision_id), "--out", str(proof), *trust,
                       env=env)  # fmt: skip
    assert proven.returncode == 0, proven.stderr
    checked = driftline("audit", "check-proof", str(proof), *trust, env=env)
    assert checked.returncode == 0 and "is in the chain" in checked.stdout, checked.stderr
    copied = driftline("audit", "checkpoints", "--out", str(auditor / "cp.json"), *trust, env=env)
    assert copied.returncode == 0, copied.stderr
    (auditor / "thresholds.yaml").write_text(THRESHOLDS)
    gate = driftline(
        "readiness", "--model", "credit-risk", "--version", "3", "--json", "--no-record",
        "--thresholds", str(auditor / "thresholds.yaml"), *trust, env=env,
    )  # fmt: skip
    evaluation = json.loads(gate.stdout)  # a verdict (no owner is named here: no-go)
    assert gate.returncode == EXIT_CODES[evaluation["verdict"]], gate.stderr
    criteria = {c["name"]: c["status"] for c in evaluation["criteria"]}
    assert criteria["ledger verifies"] == "pass"

    # Nothing of theirs touched a private key, and what signs refuses without one.
    assert their_private.exists() == (their_key_file == "unreadable")
    assert not (auditor / "producer-key.pem").exists()
    refused = driftline("audit", "checkpoint", env=env)
    assert refused.returncode == 2 and "DRIFTLINE_SIGNING_KEY_FILE" in refused.stderr


def test_a_key_the_checkpoints_were_not_signed_with_does_not_verify_them(
    tmp_path: Path, engine: Engine, database_url: str
) -> None:
    store(engine, [about("s-2")])
    signing_key = Path(os.environ["DRIFTLINE_SIGNING_KEY_FILE"])
    assert driftline("audit", "keygen", "--out", str(signing_key)).returncode == 0
    assert (
        driftline("audit", "checkpoint", env={"DRIFTLINE_DATABASE_URL": database_url}).returncode
        == 0
    )
    stranger = tmp_path / "other" / "key.pem"
    assert driftline("audit", "keygen", "--out", str(stranger)).returncode == 0
    result = driftline(
        "audit", "verify", "--public-key", str(stranger.with_name("key.pub.pem")),
        env={"DRIFTLINE_DATABASE_URL": database_url},
    )  # fmt: skip
    assert result.returncode == 1 and "unknown key" in result.stdout


def test_without_any_public_key_verification_says_how_to_give_one(
    tmp_path: Path, engine: Engine, database_url: str
) -> None:
    result = driftline(
        "audit", "verify",
        env={"DRIFTLINE_DATABASE_URL": database_url,
             "DRIFTLINE_SIGNING_KEY_FILE": str(tmp_path / "none.pem")},
    )  # fmt: skip
    assert result.returncode == 2
    assert "--public-key" in result.stderr and "DRIFTLINE_SIGNING_PUBLIC_KEY_FILE" in result.stderr


def test_a_public_key_file_of_another_key_stops_signing_before_it_misleads_verifiers(
    tmp_path: Path,
) -> None:
    # The signing key made again (a new host, a deleted file) beside the old public half:
    # verifiers reading that file would call every new checkpoint forged.
    old = tmp_path / "old.pem"
    KeyRing.for_signing(CollectorSettings(signing_key_file=old), create=True)
    key = tmp_path / "signing-key.pem"
    public = tmp_path / "signing-key.pub.pem"
    public.write_bytes((tmp_path / "old.pub.pem").read_bytes())
    with pytest.raises(SigningKeyError, match="is not the public half of"):
        KeyRing.for_signing(CollectorSettings(signing_key_file=key), create=True)
    public.unlink()  # put right: written again from the key
    ring = KeyRing.for_signing(CollectorSettings(signing_key_file=key), create=True)
    verifying = KeyRing.for_verifying(CollectorSettings(signing_key_file=key))
    assert verifying.trusted.keys() == ring.trusted.keys()


def test_the_public_keys_are_printed_for_auditors(tmp_path: Path) -> None:
    """From the public key file, else from the signing key; the producer key's on request;
    none to be had: exit 2, naming the settings."""
    signing = tmp_path / "signing-key.pem"
    made = driftline("audit", "keygen", "--out", str(signing))
    assert made.returncode == 0, made.stderr
    env = {"DRIFTLINE_SIGNING_KEY_FILE": str(signing),
           "DRIFTLINE_PRODUCER_KEY_FILE": str(tmp_path / "producer.pem")}  # fmt: skip
    printed = driftline("audit", "public-key", env=env)
    assert printed.returncode == 0, printed.stderr
    pem = (tmp_path / "signing-key.pub.pem").read_text()
    assert printed.stdout == pem and made.stdout.endswith(pem)
    assert printed.stderr.startswith("key id ")
    (tmp_path / "signing-key.pub.pem").unlink()
    assert driftline("audit", "public-key", env=env).stdout == pem  # from the key

    assert driftline("audit", "keygen", "--out", str(tmp_path / "producer.pem")).returncode == 0
    producer = driftline("audit", "public-key", "--producer", env=env)
    assert (
        producer.returncode == 0 and producer.stdout == (tmp_path / "producer.pub.pem").read_text()
    )
    signing.unlink()
    missing = driftline("audit", "public-key", env=env)
    assert missing.returncode == 2 and "DRIFTLINE_SIGNING_PUBLIC_KEY_FILE" in missing.stderr
