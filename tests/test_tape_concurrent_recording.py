"""Several processes record distinct runs into one tape while another process follows it:
nothing is lost, every body reads back against its hash, every digest verifies."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from seamtape.tape import Tape, run_digest, verify

WRITERS, STEPS = 4, 25

WRITER = """
import json, sys
import httpx2, seamtape

path, tag, steps = sys.argv[1], sys.argv[2], int(sys.argv[3])
sys.stdin.readline()  # all writers start together, when the test says go

def answer(request):
    return httpx2.Response(200, json={"echo": len(request.content), "tag": tag})

messages = []
with seamtape.record(path, name=tag) as session:
    with session.httpx2_client(transport=httpx2.MockTransport(answer)) as client:
        for i in range(steps):
            # A growing conversation: each request is stored as a delta against the last.
            messages.append({"role": "user", "content": f"{tag} {i} " + "words " * 200})
            client.post("http://model.test/v1", json={"messages": messages})
            session.nondet.uuid4()
print(json.dumps({"run": session.run_id, "digest": session.digest}))
"""

READER = """
import json, sys
from seamtape.tape import Tape, blob_hash

path, writers, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print("ready", flush=True)
seen, reads = {}, 0
with Tape(path) as tape:
    while True:
        runs = tape.runs()
        for run in runs:
            exchanges = tape.exchanges(run.id)
            assert len(exchanges) >= seen.get(run.id, 0), "an exchange disappeared"
            seen[run.id] = len(exchanges)
            for ex in exchanges[-2:]:  # the newest: stored as deltas while we read
                assert blob_hash(ex.request_bytes()) == ex.request_body
                reads += 1
        done = [r for r in runs if r.status == "complete"]
        if len(done) == writers and all(seen[r.id] == steps for r in done):
            break
print(json.dumps({"reads": reads, "runs": len(seen)}))
"""


def test_processes_record_distinct_runs_into_one_tape_while_a_reader_follows(
    tmp_path: Path,
) -> None:
    path = tmp_path / "shared.tape"
    Tape(path, create=True).close()
    reader = subprocess.Popen(
        [sys.executable, "-c", READER, str(path), str(WRITERS), str(STEPS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert reader.stdout is not None and reader.stdout.readline().strip() == "ready"
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), f"w{i}", str(STEPS)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(WRITERS)
    ]
    for writer in writers:
        assert writer.stdin is not None
        writer.stdin.write("go\n")
        writer.stdin.flush()
    results = []
    for writer in writers:
        out, _ = writer.communicate(timeout=300)
        assert writer.returncode == 0
        results.append(json.loads(out))
    out, _ = reader.communicate(timeout=300)
    assert reader.returncode == 0
    followed = json.loads(out)
    assert followed["runs"] == WRITERS and followed["reads"] > 0

    report = verify(path)
    assert report.ok, report.problems
    with Tape(path) as tape:
        assert len(tape.runs()) == WRITERS
        for result in results:
            run = tape.run(result["run"])
            assert run.exchanges == STEPS and run.draws == STEPS
            assert run.digest == result["digest"] == run_digest(tape, run.id)
        deltas = tape._db.execute("SELECT count(*) FROM blob WHERE base IS NOT NULL").fetchone()[0]
    assert deltas >= WRITERS * (STEPS - 2)
