"""Configuration files, --set overrides, the list of environment settings, version, file hash."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

import xanesnet
from xanesnet.checksums import file_sha256
from xanesnet.config import ENVIRONMENT, apply_override, env_setting, load_config, read_config

PACKAGE = Path(xanesnet.__file__).resolve().parent


def test_read_config_toml_and_sections(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[data]\nxyz_dir = "x"\n[training]\nepochs = 3\n')
    assert read_config(path, ("data", "training"))["training"]["epochs"] == 3
    assert read_config(path)["data"]["xyz_dir"] == "x"  # no section check
    with pytest.raises(ValueError, match=r"c\.toml: unknown sections \['training'\]"):
        read_config(path, ("data",))
    path.write_text("[data\n")
    with pytest.raises(ValueError, match="invalid TOML"):
        read_config(path, ("data",))
    with pytest.raises(FileNotFoundError, match="not found"):
        read_config(tmp_path / "none.toml", ("data",))


def test_overrides_parse_toml_values(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text("[training]\nepochs = 3\n")
    sets = ["training.epochs=10", "training.network.hidden=[8, 8]", "training.name=plain text"]
    config = load_config(path, ("training",), sets)
    assert config["training"]["epochs"] == 10
    assert config["training"]["network"]["hidden"] == [8, 8]
    assert config["training"]["name"] == "plain text"
    with pytest.raises(ValueError, match="KEY=VALUE"):
        apply_override(config, "training.epochs")
    with pytest.raises(ValueError, match="not inside a table"):
        apply_override(config, "training.epochs.x=1")


def test_every_environment_setting_read_by_the_package_is_listed() -> None:
    listed = {s.name for s in ENVIRONMENT}
    used = set()
    for path in PACKAGE.rglob("*.py"):
        # a name in quotes is one the code reads (docstrings write them in ``backticks``)
        used |= set(re.findall(r"[\"'](XANESNET_[A-Z_]+)[\"']", path.read_text()))
    assert used <= listed, f"not in xanesnet.config.ENVIRONMENT: {sorted(used - listed)}"
    for setting in ENVIRONMENT:
        assert setting.values and setting.default and setting.meaning and setting.read_by


def test_env_setting(monkeypatch) -> None:
    monkeypatch.setenv("XANESNET_BACKEND", " numba ")
    assert env_setting("XANESNET_BACKEND") == "numba"
    monkeypatch.setenv("XANESNET_BACKEND", "")
    assert env_setting("XANESNET_BACKEND") is None
    with pytest.raises(KeyError, match="not a listed"):
        env_setting("XANESNET_NO_SUCH_THING")


def test_one_version() -> None:
    import tomllib

    # the checkout's project file (the installed package has none beside it)
    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())
    assert xanesnet.__version__ == pyproject["project"]["version"]


def test_file_sha256(tmp_path: Path) -> None:
    path = tmp_path / "blob"
    data = bytes(range(256)) * 9000  # more than one 1 MiB block
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
