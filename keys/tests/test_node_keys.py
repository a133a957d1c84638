"""Python and the Node.js receiver (examples/backend-node/public-key.mjs) derive the same public
key from the same private key file: the draft's seeds, and new pairs of each suite."""

import base64
import json
import subprocess
from pathlib import Path

import pytest

from conftest import NODE_BACKEND, make_backend_keys, require_node_backend
from keys import hpke

VECTORS = json.loads((Path(__file__).parent / "xwing_vectors.json").read_text())["vectors"]


def node_entry(path: Path, kid: str) -> str:
    require_node_backend()
    run = subprocess.run(  # noqa: S603 (the test's own arguments)
        ["node", str(NODE_BACKEND / "public-key.mjs"), str(path), "--id", kid],  # noqa: S607
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (run.returncode, run.stderr) == (0, "")
    return run.stdout.strip()


@pytest.mark.parametrize("vector", VECTORS, ids=["vector 1", "vector 2", "vector 3"])
def test_node_derives_the_drafts_public_key_from_its_seed(tmp_path, vector):
    path = tmp_path / "backend-v.pem"
    hpke.write_private_key(path, hpke.seed_pem(bytes.fromhex(vector["seed"])))
    public = base64.b64encode(bytes.fromhex(vector["pk"])).decode()
    assert node_entry(path, "v") == f"v:MLKEM768_X25519:{public}"


@pytest.mark.parametrize("kem", ["X25519", "MLKEM768_X25519"])
def test_python_and_node_agree_on_a_new_key_pairs_public_entry(tmp_path, kem):
    keys = make_backend_keys(tmp_path, "n1", kem)
    assert node_entry(keys.pem_file, "n1") == keys.public_entry
