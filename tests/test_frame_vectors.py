"""The shared frame vectors (tests/fixtures/frame_vectors.json), for the Python codec; the
JavaScript codec of stelar.js is held to the same file by tests/js/codec.test.mjs, and its client
to the Python session's bytes by tests/js/client.test.mjs, both run here with Node's built-in
test runner."""

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from stelar_core.errors import ProtocolError
from stelar_core.protocol import Frame, FrameType, decode_frame, encode_frame
from stelar_core.protocol.publications import Position, Publication, decode_publication, encode_publication

HERE = Path(__file__).parent
VECTORS = json.loads((HERE / "fixtures" / "frame_vectors.json").read_text())


@pytest.mark.parametrize("vector", VECTORS["valid"], ids=lambda v: f"{v['type']}-{v['event'][:10]}")
def test_the_python_codec_writes_and_reads_every_vector(vector):
    kind, payload, ack_id = FrameType(vector["type"]), bytes.fromhex(vector["payload"]), vector["ack_id"]
    assert encode_frame(kind, vector["event"], payload, ack_id).hex() == vector["bytes"]
    assert decode_frame(bytes.fromhex(vector["bytes"])) == Frame(kind, vector["event"], payload, ack_id)


@pytest.mark.parametrize("vector", VECTORS["invalid"], ids=lambda v: v["bytes"] or "empty")
def test_the_python_codec_refuses_every_bad_vector_with_its_reason(vector):
    with pytest.raises(ProtocolError) as refused:
        decode_frame(bytes.fromhex(vector["bytes"]))
    assert refused.value.code == vector["code"]
    assert refused.value.reason.startswith(vector["reason_start"])


@pytest.mark.parametrize("vector", VECTORS["traced"]["valid"], ids=lambda v: f"traced-{v['type']}")
def test_the_python_codec_writes_and_reads_every_traced_vector(vector):
    kind, payload, ack_id = FrameType(vector["type"]), bytes.fromhex(vector["payload"]), vector["ack_id"]
    trace = vector["trace"]
    assert encode_frame(kind, vector["event"], payload, ack_id, trace).hex() == vector["bytes"]
    decoded = decode_frame(bytes.fromhex(vector["bytes"]))
    assert decoded == Frame(kind, vector["event"], payload, ack_id, trace.encode())


@pytest.mark.parametrize("vector", VECTORS["traced"]["invalid"], ids=lambda v: v["bytes"])
def test_the_python_codec_refuses_every_bad_traced_vector_with_its_reason(vector):
    with pytest.raises(ProtocolError) as refused:
        decode_frame(bytes.fromhex(vector["bytes"]))
    assert refused.value.code == vector["code"]
    assert refused.value.reason.startswith(vector["reason_start"])


@pytest.mark.parametrize(
    ("kind", "ack_id", "trace", "message"),
    [
        (FrameType.PING, None, "00-x", "carries no trace context"),
        (FrameType.JSON, 1, "00-x", "carries no ack id"),
        (FrameType.ACK_REQUEST, None, "00-x", "needs an ack id"),
        (FrameType.JSON, None, "", "a trace context is 1..255 bytes, got 0"),
        (FrameType.JSON, None, "x" * 256, "a trace context is 1..255 bytes, got 256"),
        (FrameType.JSON, None, "é", "a trace context is ASCII"),
    ],
)
def test_encoding_refuses_a_trace_context_no_frame_can_carry(kind, ack_id, trace, message):
    with pytest.raises(ValueError, match=message):
        encode_frame(kind, "e", b"", ack_id, trace)


@pytest.mark.parametrize(
    "vector", VECTORS["publications"]["valid"], ids=lambda v: f"{v['room']}-{v['offset']}"
)
def test_the_python_codec_writes_and_reads_every_publication(vector):
    inner = bytes.fromhex(vector["inner"])
    assert (
        encode_publication(vector["room"], vector["epoch"], vector["offset"], inner).hex() == vector["bytes"]
    )
    publication = decode_publication(decode_frame(bytes.fromhex(vector["bytes"])))
    assert publication == Publication(
        vector["room"], Position(vector["epoch"], vector["offset"]), decode_frame(inner)
    )


@pytest.mark.parametrize("vector", VECTORS["publications"]["invalid"], ids=lambda v: v["reason_start"][:30])
def test_the_python_codec_refuses_every_bad_publication(vector):
    with pytest.raises(ProtocolError) as refused:
        decode_publication(decode_frame(bytes.fromhex(vector["bytes"])))
    assert refused.value.code == vector["code"]
    assert refused.value.reason.startswith(vector["reason_start"])


def test_the_javascript_codec_agrees_with_the_vectors():
    node = shutil.which("node")
    assert node is not None, "Node.js 20+ runs the JavaScript codec's tests (apt-get install nodejs)"
    result = subprocess.run(
        [node, "--test", str(HERE / "js")], capture_output=True, text=True, timeout=120, cwd=HERE.parent
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "# fail 0" in result.stdout and "# pass 0" not in result.stdout
