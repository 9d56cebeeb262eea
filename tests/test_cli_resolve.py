"""``nftwatch resolve URI`` resolves one tokenURI exactly as the workers do, through the local
IPFS gateway, and classifies a bad one with a non-zero exit."""

from __future__ import annotations

import hashlib
import io
import json

import pytest
from PIL import Image
from typer.testing import CliRunner

from nftwatch.cli import cli
from nftwatch.localstack.ipfs_gateway import LocalIpfsGateway


@pytest.fixture
def published():
    image = io.BytesIO()
    Image.new("RGBA", (24, 24), (200, 40, 40, 255)).save(image, format="PNG")
    png = image.getvalue()
    with LocalIpfsGateway() as gateway:
        images = gateway.add_directory({"1.png": png})
        meta = gateway.add_directory(
            {
                "1": json.dumps(
                    {
                        "name": "#1",
                        "image": f"ipfs://{images}/1.png",
                        "attributes": [{"trait_type": "Hat", "value": "Cap"}],
                    }
                ).encode()
            }
        )
        env = {"IPFS_GATEWAYS": gateway.base_url, "NFTWATCH_ALLOW_HOSTS": gateway.netloc}
        yield f"ipfs://{meta}/1", png, env


def test_resolve_prints_metadata_and_the_chosen_image(published) -> None:
    uri, png, env = published
    result = CliRunner().invoke(cli, ["resolve", uri, "--json"], env=env)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["metadata"]["attributes"] == [{"trait_type": "Hat", "value": "Cap"}]
    assert data["image"] == {
        "mime": "image/png",
        "width": 24,
        "height": 24,
        "bytes": len(png),
        "sha256": hashlib.sha256(png).hexdigest(),
    }
    text = CliRunner().invoke(cli, ["resolve", uri], env=env)
    assert text.exit_code == 0 and hashlib.sha256(png).hexdigest() in text.output


def test_bad_uris_exit_non_zero_with_their_class(published) -> None:
    _, _, env = published
    invalid = CliRunner().invoke(cli, ["resolve", "ipfs://not-a-cid/1", "--json"], env=env)
    assert invalid.exit_code == 3
    assert json.loads(invalid.output)["error_class"] == "InvalidURI"
    empty = CliRunner().invoke(cli, ["resolve", "   "], env=env)
    assert empty.exit_code == 3 and "NoTokenURI" in empty.output
    # loopback that is not allow-listed is refused by the SSRF guard
    blocked = CliRunner().invoke(cli, ["resolve", "http://127.0.0.1:9/x.json", "--json"])
    assert blocked.exit_code == 3
    assert json.loads(blocked.output)["error_class"] == "BlockedAddress"
