"""stelar.js outside the browser: under Node.js against a live server, and as an npm package
(packed here, not published)."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

HERE = Path(__file__).parent
STATIC = HERE.parent / "stelar_ws" / "static"
NODE = shutil.which("node")
NPM = shutil.which("npm")

pytestmark = pytest.mark.one_loop


async def test_the_module_runs_under_node(stelar_server_factory):
    assert NODE is not None, "Node.js 20+ is needed (apt-get install nodejs)"
    server = await stelar_server_factory(port=0)
    server.on_ack("double", lambda ctx: ctx.data * 2)
    process = await asyncio.create_subprocess_exec(
        NODE,
        "--experimental-websocket",
        "--no-warnings",
        str(HERE / "js" / "node_client.mjs"),
        f"ws://127.0.0.1:{server.get_port('ws')}/",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        line = await asyncio.wait_for(process.stdout.readline(), 30)
        result = json.loads(line)
        assert result["joined"]["room"] == "r" and result["doubled"] == 42
        assert result["refused"] == "no_handler"
        assert await server.request(result["id"], "whoami") == "node"
        assert server.get_room_members("r") == [result["id"]]
        server.to_id(result["id"], "bye", None)
        assert await asyncio.wait_for(process.wait(), 30) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def test_the_npm_package_holds_the_module_and_its_types(tmp_path):
    assert NPM is not None, "npm packs the package (it comes with Node.js)"
    packed = subprocess.run(
        [NPM, "pack", "--json", "--pack-destination", str(tmp_path)],
        cwd=STATIC,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    (info,) = json.loads(packed.stdout)
    assert info["name"] == "stelar-client"
    assert sorted(entry["path"] for entry in info["files"]) == ["package.json", "stelar.d.ts", "stelar.js"]
    # Installed into a project of its own, it imports by name (no network: it has no dependencies).
    project = tmp_path / "app"
    project.mkdir()
    (project / "package.json").write_text('{"name": "app", "type": "module", "private": true}')
    subprocess.run(
        [NPM, "install", "--offline", "--no-audit", "--no-fund", str(tmp_path / info["filename"])],
        cwd=project,
        capture_output=True,
        check=True,
        timeout=120,
    )
    check = "import { StelarClient, FrameType } from 'stelar-client';"
    check += "console.log(typeof StelarClient, FrameType.JOIN)"
    out = subprocess.run(
        [NODE, "--input-type=module", "-e", check], cwd=project, capture_output=True, text=True, timeout=60
    )
    assert out.stdout.strip() == "function 8", out.stderr


def test_the_stelar_ws_wheel_ships_the_client_files(tmp_path):
    build = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run(
        [*build, "-w", str(tmp_path), str(STATIC.parent.parent)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = tmp_path.glob("stelar_ws-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("stelar.js", "stelar.d.ts", "package.json", "demo.html"):
        assert f"stelar_ws/static/{name}" in names
