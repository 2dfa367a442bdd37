"""An agent killed with SIGKILL while its spool holds events: the restarted agent delivers them."""

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from driftline.agent import Driftline
from driftline.agent.contract import decode
from driftline.collector.runtime.broker import EmbeddedBroker, free_port
from tests.topic_reader import read_topic

DECISIONS = 300

# The first agent's broker is unreachable, so everything it records goes to its spool; it says
# so and then waits to be killed.
FIRST_AGENT = textwrap.dedent(
    """
    import json, sys, time
    from driftline.agent import Driftline
    spool, broker, ids_file = sys.argv[1:4]
    agent = Driftline(service="s", kafka_bootstrap_servers=broker, spool_dir=spool,
                      delivery_timeout_ms=1000)
    ids = [
        str(agent.record_decision(model="m", version="1", inputs={"n": n}, output=n,
                                  confidence=0.5, latency_ms=1))
        for n in range(int(sys.argv[4]))
    ]
    with open(ids_file, "w") as out:
        json.dump(ids, out)
    while agent.flush(timeout_s=0.2).spooled < len(ids):
        pass
    print("spooled", flush=True)
    time.sleep(600)
    """
)


def test_a_killed_agent_delivers_its_spool_when_started_again(
    broker: EmbeddedBroker, topic: str, tmp_path: Path
) -> None:
    spool = tmp_path / "agent-spool"
    ids_file = tmp_path / "ids.json"
    nowhere = f"127.0.0.1:{free_port()}"
    first = subprocess.Popen(
        [sys.executable, "-c", FIRST_AGENT, str(spool), nowhere, str(ids_file), str(DECISIONS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert first.stdout is not None
        assert "spooled" in (line.strip() for line in first.stdout)  # log lines come first
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    assert list(spool.glob("*.seg")), "the killed agent left no spool behind"

    with Driftline(
        service="s", kafka_bootstrap_servers=broker.bootstrap_servers, topic=topic, spool_dir=spool
    ) as restarted:
        report = restarted.flush(timeout_s=30)

    assert (report.recorded, report.delivered) == (DECISIONS, DECISIONS)
    assert report.ok
    recorded_ids = json.loads(ids_file.read_text())
    delivered = [
        decode(r.value).decision_id for r in read_topic(broker.bootstrap_servers, topic, DECISIONS)
    ]
    assert sorted(str(d) for d in delivered) == sorted(recorded_ids)
    assert not list(spool.glob("*.seg"))
